"""template.yaml agrees with the catalog (one source of truth: parameters.json) and is least privilege."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from ml_guardrails import catalog
from ml_guardrails.catalog import RuleSpec

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
SPECS = catalog.discover(ROOT / "rules")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_is_clean() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_rule_has_its_function_and_config_rule(template: dict[str, Any], spec: RuleSpec) -> None:
    rules = {
        r["Properties"]["ConfigRuleName"]: r
        for r in resources_of(template, "AWS::Config::ConfigRule").values()
    }
    rule = rules[spec.name]["Properties"]
    messages = [d["MessageType"] for d in rule["Source"]["SourceDetails"]]
    if spec.resource_types:
        assert rule["Scope"]["ComplianceResourceTypes"] == list(spec.resource_types)
        assert messages == [
            "ConfigurationItemChangeNotification",
            "OversizedConfigurationItemChangeNotification",
            "ScheduledNotification",
        ]
    else:  # periodic only (AWS::::Account): no configuration items, so no scope and no change trigger
        assert "Scope" not in rule
        assert messages == ["ScheduledNotification"]
    function_id = rule["Source"]["SourceIdentifier"]["Fn::GetAtt"][0]
    function = template["Resources"][function_id]["Properties"]
    assert function["CodeUri"] == f"rules/{spec.name}/"
    assert function["Handler"] == f"{spec.name}.lambda_handler"
    inputs = set(rule.get("InputParameters", {})) - {"AssumeRoleMode", "ExecutionRoleName"}
    assert inputs <= spec.parameter_names, "the template passes a parameter the rule does not declare"


def test_only_aws_config_of_this_account_or_organization_may_invoke(template: dict[str, Any]) -> None:
    """One resource-based policy per rule function (AWS::Lambda::ResourcePolicy; never mixed with
    AWS::Lambda::Permission, which a PutResourcePolicy would overwrite): AWS Config may invoke it, and only
    for a rule of this account, of the listed member accounts, or -- in an organization deployment -- of
    any account of the organization (aws:SourceOrgID). Never unconditioned: that would let any AWS
    account's Config rule run the functions (a confused deputy)."""
    assert not resources_of(template, "AWS::Lambda::Permission")
    functions = set(resources_of(template, "AWS::Serverless::Function"))
    policies = resources_of(template, "AWS::Lambda::ResourcePolicy")
    targets = {p["Properties"]["ResourceArn"]["Fn::GetAtt"][0] for p in policies.values()}
    assert targets == functions and len(policies) == len(functions)
    allowed_conditions = [
        (None, {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}),
        ("IsOrganizationDeployment", {"StringEquals": {"aws:SourceOrgID": {"Ref": "OrganizationId"}}}),
        (
            "HasMemberAccountIds",
            {"StringEquals": {"aws:SourceAccount": {"Fn::Split": [",", {"Ref": "MemberAccountIds"}]}}},
        ),
    ]
    for name, policy in policies.items():
        function = policy["Properties"]["ResourceArn"]["Fn::GetAtt"][0]
        found = []
        for raw in policy["Properties"]["PolicyDocument"]["Statement"]:
            condition_name, entry = None, raw
            if "Fn::If" in raw:
                condition_name, entry, otherwise = raw["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}, name
            assert entry["Effect"] == "Allow", name
            assert entry["Principal"] == {"Service": "config.amazonaws.com"}, name
            assert entry["Action"] == "lambda:InvokeFunction", name
            assert entry["Resource"] == {"Fn::GetAtt": [function, "Arn"]}, name
            found.append((condition_name, entry["Condition"]))
        assert found == allowed_conditions, name
    conditions = template["Conditions"]
    assert conditions["IsOrganizationDeployment"] == {
        "Fn::And": [{"Condition": "HasMemberExecutionRole"}, {"Condition": "HasOrganizationId"}]
    }
    assert template["Parameters"]["MemberAccountIds"]["AllowedPattern"] == r"^$|^\d{12}(,\d{12})*$"


def test_runbook_documents_are_the_files_in_remediations(template: dict[str, Any]) -> None:
    import yaml

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import sync_template
    finally:
        sys.path.pop(0)
    assert sync_template.sync(check=True), "template.yaml is stale: run `make template`"
    documents = {
        d["Properties"]["Name"]: d["Properties"]
        for d in resources_of(template, "AWS::SSM::Document").values()
    }
    files = {p.stem: p for p in (ROOT / "remediations").glob("*.yaml")}
    assert set(documents) == set(files)
    for name, path in files.items():
        assert documents[name]["Content"] == yaml.safe_load(path.read_text()), name
        assert documents[name]["DocumentType"] == "Automation"


def _param_default(template: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template["Parameters"]:
        return str(template["Parameters"][value["Ref"]]["Default"])
    return value


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_remediation_configuration_matches_parameters_json(template: dict[str, Any], spec: RuleSpec) -> None:
    remediation = spec.remediation
    assert remediation is not None
    rules = {
        k: v["Properties"]["ConfigRuleName"]
        for k, v in resources_of(template, "AWS::Config::ConfigRule").items()
    }
    configs = [
        c["Properties"]
        for c in resources_of(template, "AWS::Config::RemediationConfiguration").values()
        if rules[c["Properties"]["ConfigRuleName"]["Ref"]] == spec.name
    ]
    assert len(configs) == 1, f"{spec.name} needs exactly one RemediationConfiguration"
    config = configs[0]
    document = template["Resources"][config["TargetId"]["Ref"]]["Properties"]
    assert document["Name"] == remediation.target_id
    assert config["ResourceType"] == remediation.resource_type
    bindings = config["Parameters"]
    assert bindings[remediation.resource_parameter] == {"ResourceValue": {"Value": "RESOURCE_ID"}}
    for name, values in remediation.static_parameters.items():
        bound = [_param_default(template, v) for v in bindings[name]["StaticValue"]["Values"]]
        if name == "TopicArn":  # parameters.json holds a placeholder; the stack passes its own topic
            assert bound == [{"Ref": "FindingsTopic"}], f"{name}: {bound}"
            continue
        assert bound == values, f"{name}: template default {bound} differs from parameters.json {values}"
    role = bindings["AutomationAssumeRole"]["StaticValue"]["Values"][0]["Fn::GetAtt"][0]
    trust = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "ssm.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def _allow_statements(node: Any) -> list[dict[str, Any]]:
    """Every Allow statement anywhere under ``node`` (both branches of an Fn::If)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("Effect") == "Allow" and "Action" in node:
            found.append(node)
        for value in node.values():
            found.extend(_allow_statements(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_allow_statements(value))
    return found


def test_no_wildcard_actions_anywhere(template: dict[str, Any]) -> None:
    """No Allow grants a wildcard action: function and automation roles, key policy, queue policy."""
    statements = _allow_statements(template["Resources"])
    assert len(statements) > 20
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), f"wildcard action in {actions}"


def test_functions_assume_member_roles_only_in_an_organization_deployment(template: dict[str, Any]) -> None:
    for name, function in resources_of(template, "AWS::Serverless::Function").items():
        statements = function["Properties"]["Policies"][0]["Statement"]
        plain = [s for s in statements if "Fn::If" not in s]
        assert not any("sts:AssumeRole" in str(s.get("Action")) for s in plain), name
        (conditional,) = [s["Fn::If"] for s in statements if "Fn::If" in s]
        condition, grant, otherwise = conditional
        assert condition == "HasMemberExecutionRole"
        assert otherwise == {"Ref": "AWS::NoValue"}
        assert grant["Action"] == "sts:AssumeRole"
        assert grant["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
