"""conformance-packs/secure-ml-environment.yaml: valid, within the conformance-pack limits, and in agreement
with every rule's parameters.json (one source of truth).

The pack is read the way AWS Config deploys it: parameters take their defaults (or the values a test sets),
Conditions, ``Fn::If``/``AWS::NoValue``, ``Ref`` and ``Fn::Sub`` are resolved, and the *effective* rule input
parameters and remediation bindings are compared with the catalog. :func:`drift` lists every disagreement;
a test proves it notices a tampered pack.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml

from ml_guardrails import catalog
from ml_guardrails.catalog import RuleSpec
from ml_guardrails.params import ENGINE_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "conformance-packs" / "secure-ml-environment.yaml"
SPECS = catalog.discover(ROOT / "rules")

# PutConformancePack: TemplateBody 1-51,200 bytes; custom packs take at most 60 input parameters; a pack
# holds at most 130 rules (botocore's config model and the Config developer guide's service limits).
MAX_TEMPLATE_BYTES = 51_200
MAX_PARAMETERS = 60
# "You can use a YAML template with two resource types" (PutConformancePack, TemplateBody).
RESOURCE_TYPES = {"AWS::Config::ConfigRule", "AWS::Config::RemediationConfiguration"}
# What AWS's own published packs use (awslabs/aws-config-rules aws-config-conformance-packs/*.yaml).
INTRINSICS = {"Ref", "Fn::If", "Fn::Not", "Fn::Equals", "Fn::Sub"}
TOP_LEVEL = {"Parameters", "Conditions", "Resources"}
TRIGGERS = [
    "ConfigurationItemChangeNotification",
    "OversizedConfigurationItemChangeNotification",
    "ScheduledNotification",
]
PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": "111111111111", "AWS::Region": "eu-west-1"}
NO_VALUE = object()


def logical_id(rule_name: str) -> str:
    """SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET -> SagemakerNotebookNoDirectInternet (as in template.yaml)."""
    return "".join(word.capitalize() for word in rule_name.split("_"))


def load_pack(path: Path = PACK) -> dict[str, Any]:
    return dict(cfn_yaml.load(str(path)))


@pytest.fixture(scope="module")
def pack() -> dict[str, Any]:
    return load_pack()


# ------------------------------------------------------------------------------------- a tiny resolver
class Resolver:
    """Resolves the pack's intrinsic functions for given parameter values (defaults otherwise)."""

    def __init__(self, template: dict[str, Any], values: dict[str, str] | None = None) -> None:
        self.template = template
        params = template.get("Parameters", {})
        self.values = {name: spec.get("Default") for name, spec in params.items()}
        self.values.update(values or {})
        missing = [name for name in params if self.values.get(name) is None]
        for name in missing:  # parameters without a default (the function ARNs) get a recognisable value
            self.values[name] = f"<{name}>"

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name not in self.values:
            raise KeyError(f"Ref to unknown parameter {name}")
        return self.values[name]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Sub":
                return re.sub(r"\$\{([\w:]+)\}", lambda m: str(self.ref(m.group(1))), arg)
            if key == "Condition":
                return self.condition(arg)
        if isinstance(node, dict):
            out = {k: self.resolve(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not NO_VALUE}
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        return node


def refs_in(node: Any) -> set[str]:
    """Every parameter name ``node`` refers to (Ref and ${...} in Fn::Sub), pseudo parameters excluded."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, arg in node.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::Sub" and isinstance(arg, str):
                found.update(re.findall(r"\$\{([\w:]+)\}", arg))
            else:
                found |= refs_in(arg)
    elif isinstance(node, list):
        for item in node:
            found |= refs_in(item)
    return {name for name in found if not name.startswith("AWS::")}


def intrinsics_in(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, arg in node.items():
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                found.add(key)
            found |= intrinsics_in(arg)
    elif isinstance(node, list):
        for item in node:
            found |= intrinsics_in(item)
    return found


def sample_value(template: dict[str, Any], parameter: str) -> str:
    """A value for ``parameter`` different from its default (an allowed value when the list is closed)."""
    spec = template["Parameters"][parameter]
    allowed = [str(v) for v in spec.get("AllowedValues", [])]
    others = [v for v in allowed if v != str(spec.get("Default"))]
    return others[0] if others else f"sample-{parameter}"


# ------------------------------------------------------------------------------------------ the checker
def _by_rule_name(template: dict[str, Any], kind: str, rule: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (lid, res)
        for lid, res in template["Resources"].items()
        if res.get("Type") == kind and res.get("Properties", {}).get("ConfigRuleName") == rule
    ]


def drift(template: dict[str, Any], spec: RuleSpec) -> list[str]:
    """Every way the pack disagrees with ``spec`` (parameters.json); empty when they agree."""
    problems: list[str] = []
    rules = _by_rule_name(template, "AWS::Config::ConfigRule", spec.name)
    if len(rules) != 1:
        return [f"{spec.name}: expected one AWS::Config::ConfigRule, found {len(rules)}"]
    rule_id, rule = rules[0]
    if rule_id != logical_id(spec.name):
        problems.append(f"{spec.name}: logical id {rule_id}, expected {logical_id(spec.name)}")
    defaults = Resolver(template)
    props = defaults.resolve(rule["Properties"])

    # resource types and triggers
    types = props.get("Scope", {}).get("ComplianceResourceTypes", [])
    if types != list(spec.resource_types):
        problems.append(f"{spec.name}: Scope {types} != SourceEvents {list(spec.resource_types)}")
    source = props.get("Source", {})
    if source.get("Owner") != "CUSTOM_LAMBDA":
        problems.append(f"{spec.name}: Source.Owner must be CUSTOM_LAMBDA")
    arn_param = f"{logical_id(spec.name)}FunctionArn"
    if rule["Properties"]["Source"].get("SourceIdentifier") != {"Ref": arn_param}:
        problems.append(f"{spec.name}: SourceIdentifier must be Ref {arn_param}")
    elif "Default" in template["Parameters"].get(arn_param, {"Default": None}):
        problems.append(f"{spec.name}: {arn_param} must have no default (the deployer names the function)")
    details = source.get("SourceDetails", [])
    expected = TRIGGERS if spec.resource_types else TRIGGERS[2:]
    if spec.periodic is None:
        expected = [t for t in expected if t != "ScheduledNotification"]
    if [d.get("MessageType") for d in details] != expected:
        problems.append(f"{spec.name}: triggers {[d.get('MessageType') for d in details]} != {expected}")
    if any(d.get("EventSource") != "aws.config" for d in details):
        problems.append(f"{spec.name}: every SourceDetail needs EventSource aws.config")
    for detail in details:
        if detail.get("MessageType") == "ScheduledNotification":
            if detail.get("MaximumExecutionFrequency") != spec.periodic:
                problems.append(
                    f"{spec.name}: default frequency {detail.get('MaximumExecutionFrequency')} "
                    f"!= SourcePeriodic {spec.periodic}"
                )
        elif "MaximumExecutionFrequency" in detail:
            problems.append(f"{spec.name}: only the periodic trigger takes a frequency")

    # input parameters: names, defaults, and each one settable through its own pack parameter
    declared = {**spec.input_parameters, **spec.optional_parameters}
    raw_inputs = rule["Properties"].get("InputParameters", {})
    names = set(raw_inputs) - set(ENGINE_PARAMETERS)
    if names != set(declared):
        problems.append(
            f"{spec.name}: pack passes {sorted(names)}, parameters.json declares {sorted(declared)}"
        )
    effective = {k: v for k, v in props.get("InputParameters", {}).items() if k not in ENGINE_PARAMETERS}
    wanted = {k: v for k, v in declared.items() if v != ""}
    if effective != wanted:
        problems.append(f"{spec.name}: default input parameters {effective} != parameters.json {wanted}")
    engine = {k: v for k, v in props.get("InputParameters", {}).items() if k in ENGINE_PARAMETERS}
    if engine.get("AssumeRoleMode") != "true" or not engine.get("ExecutionRoleName"):
        problems.append(
            f"{spec.name}: the central-account pattern needs ExecutionRoleName and AssumeRoleMode"
        )
    for name in sorted(names & set(declared)):
        wired = refs_in(raw_inputs[name])
        if len(wired) != 1:
            problems.append(f"{spec.name}: {name} must come from exactly one pack parameter, got {wired}")
            continue
        (parameter,) = wired
        value = sample_value(template, parameter)
        changed = Resolver(template, {parameter: value}).resolve(rule["Properties"])["InputParameters"]
        before = props.get("InputParameters", {})
        moved = sorted(k for k in set(changed) | set(before) if changed.get(k) != before.get(k))
        if changed.get(name) != value or moved != [name]:
            problems.append(
                f"{spec.name}: setting {parameter}={value!r} passes {name}={changed.get(name)!r} "
                f"and changes {moved}"
            )
    for parameter in refs_in(rule["Properties"]):
        if parameter not in template["Parameters"]:
            problems.append(f"{spec.name}: Ref to undeclared parameter {parameter}")

    # remediation
    remediations = _by_rule_name(template, "AWS::Config::RemediationConfiguration", spec.name)
    if spec.remediation is None:
        if remediations:
            problems.append(
                f"{spec.name}: the pack remediates a rule whose parameters.json has no Remediation"
            )
        return problems
    if len(remediations) != 1:
        return [*problems, f"{spec.name}: expected one RemediationConfiguration, found {len(remediations)}"]
    rem_id, remediation = remediations[0]
    spec_rem = spec.remediation
    if remediation.get("DependsOn") not in (rule_id, [rule_id]):
        problems.append(f"{spec.name}: {rem_id} must DependsOn {rule_id} (the rule name is a literal)")
    rprops = defaults.resolve(remediation["Properties"])
    for key, want in (
        ("TargetType", "SSM_DOCUMENT"),
        ("TargetId", spec_rem.target_id),
        ("ResourceType", spec_rem.resource_type),
        ("MaximumAutomaticAttempts", spec_rem.maximum_automatic_attempts),
        ("RetryAttemptSeconds", spec_rem.retry_attempt_seconds),
    ):
        if rprops.get(key) != want:
            problems.append(f"{spec.name}: remediation {key} {rprops.get(key)!r} != {want!r}")
    automatic = str(rprops.get("Automatic")).lower()
    if automatic != str(spec_rem.automatic).lower():
        problems.append(
            f"{spec.name}: remediation Automatic defaults to {automatic}, not {spec_rem.automatic}"
        )
    bindings = dict(rprops.get("Parameters", {}))
    role = bindings.pop("AutomationAssumeRole", None)
    resource = {k for k, v in bindings.items() if v == {"ResourceValue": {"Value": "RESOURCE_ID"}}}
    if resource != {spec_rem.resource_parameter}:
        problems.append(f"{spec.name}: RESOURCE_ID bound to {resource}, not {spec_rem.resource_parameter}")
    static = {k: v["StaticValue"]["Values"] for k, v in bindings.items() if "StaticValue" in v}
    if static != spec_rem.static_parameters:
        problems.append(f"{spec.name}: default static values {static} != {spec_rem.static_parameters}")
    if set(bindings) != resource | set(static):
        problems.append(f"{spec.name}: remediation bindings other than ResourceValue/StaticValue")
    if role != {
        "StaticValue": {"Values": [f"arn:aws:iam::{PSEUDO['AWS::AccountId']}:role/ml-guardrails-remediation"]}
    }:
        problems.append(f"{spec.name}: AutomationAssumeRole resolves to {role}")
    runbook = yaml.safe_load(spec_rem.runbook_path.read_text(encoding="utf-8"))
    accepted = set(runbook.get("parameters", {}))
    unknown = set(rprops.get("Parameters", {})) - accepted
    if unknown:
        problems.append(f"{spec.name}: {spec_rem.target_id} has no input(s) {sorted(unknown)}")
    return problems


# ---------------------------------------------------------------------------------------------- tests
def test_cfn_lint_is_clean() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(PACK)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_within_the_conformance_pack_limits(pack: dict[str, Any]) -> None:
    assert len(PACK.read_bytes()) <= MAX_TEMPLATE_BYTES  # also fits TemplateBody, not only TemplateS3Uri
    assert len(pack["Parameters"]) <= MAX_PARAMETERS
    assert set(pack) <= TOP_LEVEL, f"only {TOP_LEVEL} (no Transform, Outputs, Mappings, ...)"
    assert {r["Type"] for r in pack["Resources"].values()} <= RESOURCE_TYPES
    rules = [r for r in pack["Resources"].values() if r["Type"] == "AWS::Config::ConfigRule"]
    assert len(rules) <= 130
    assert intrinsics_in(pack["Resources"]) | intrinsics_in(pack["Conditions"]) <= INTRINSICS
    # Conformance pack parameters are plain values; AWS's packs declare them as String.
    assert {p["Type"] for p in pack["Parameters"].values()} == {"String"}
    assert all(not r.get("Condition") for r in pack["Resources"].values()), "no conditional resources"


def test_every_parameter_and_condition_is_used(pack: dict[str, Any]) -> None:
    used = refs_in(pack["Resources"]) | refs_in(pack["Conditions"])
    assert set(pack["Parameters"]) == used
    conditions: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, arg in node.items():
                if key == "Fn::If":
                    conditions.add(arg[0])
                walk(arg)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(pack["Resources"])
    assert conditions == set(pack["Conditions"])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_pack_agrees_with_parameters_json(pack: dict[str, Any], spec: RuleSpec) -> None:
    assert drift(pack, spec) == []


def test_every_rule_of_the_catalog_and_nothing_else(pack: dict[str, Any]) -> None:
    names = {
        r["Properties"]["ConfigRuleName"]
        for r in pack["Resources"].values()
        if r["Type"] == "AWS::Config::ConfigRule"
    }
    assert names == {s.name for s in SPECS}


def _tampered(pack: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(pack)
    node = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copied


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["Parameters", "VpcFlowLogsEnabledParamTrafficType", "Default"],
            "REJECT",
            "default input parameters",
        ),
        (
            ["Resources", "KmsCmkRotationEnabled", "Properties", "Scope", "ComplianceResourceTypes"],
            [],
            "Scope",
        ),
        (
            ["Parameters", "KmsCmkRotationEnabledMaximumExecutionFrequency", "Default"],
            "One_Hour",
            "frequency",
        ),
        (
            ["Resources", "S3BucketSseKmsEnforcedRemediation", "Properties", "TargetId"],
            "Other-Doc",
            "TargetId",
        ),
        (["Parameters", "S3BucketSseKmsEnforcedRemediationKmsKeyId", "Default"], "alias/x", "static values"),
        (["Parameters", "VpcFlowLogsEnabledRemediationAutomatic", "Default"], "true", "Automatic"),
        (
            [
                "Resources",
                "SagemakerNotebookNoDirectInternet",
                "Properties",
                "InputParameters",
                "AllowedSubnetIds",
            ],
            {"Ref": "SagemakerNotebookNoDirectInternetParamAllowedEgressTargets"},
            "setting",
        ),
        (
            ["Resources", "VpcFlowLogsEnabled", "Properties", "Source", "SourceDetails"],
            [{"EventSource": "aws.config", "MessageType": "ConfigurationItemChangeNotification"}],
            "triggers",
        ),
    ],
    ids=["default", "types", "frequency", "target", "static", "automatic", "wiring", "triggers"],
)
def test_drift_is_noticed(pack: dict[str, Any], path: list[Any], value: Any, message: str) -> None:
    tampered = _tampered(pack, path, value)
    found = [p for spec in SPECS for p in drift(tampered, spec)]
    assert any(message in p for p in found), found


def test_single_account_settings_drop_the_role_parameters(pack: dict[str, Any]) -> None:
    values = {"ExecutionRoleName": "", "AssumeRoleMode": "false", "AutomationAssumeRoleName": ""}
    resolved = Resolver(pack, values).resolve(pack["Resources"])
    for resource in resolved.values():
        props = resource["Properties"]
        if resource["Type"] == "AWS::Config::ConfigRule":
            assert "ExecutionRoleName" not in props["InputParameters"]
            assert props["InputParameters"]["AssumeRoleMode"] == "false"
        else:
            assert "AutomationAssumeRole" not in props["Parameters"]


def test_remediation_role_arn_matches_every_runbook_pattern(pack: dict[str, Any]) -> None:
    resolved = Resolver(pack).resolve(pack["Resources"])
    for spec in SPECS:
        assert spec.remediation is not None
        runbook = yaml.safe_load(spec.remediation.runbook_path.read_text(encoding="utf-8"))
        pattern = runbook["parameters"]["AutomationAssumeRole"]["allowedPattern"]
        (remediation,) = (
            r["Properties"]
            for r in resolved.values()
            if r["Type"] == "AWS::Config::RemediationConfiguration"
            and r["Properties"]["ConfigRuleName"] == spec.name
        )
        (arn,) = remediation["Parameters"]["AutomationAssumeRole"]["StaticValue"]["Values"]
        assert re.search(pattern, arn), (spec.name, arn, pattern)
