"""Meta-tests over the catalog: every rule folder agrees with itself and with the engine's contract.

A new rule is a new folder; these tests hold it to the same standard as the others without editing them.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

from ml_guardrails import catalog
from ml_guardrails.catalog import CatalogError, RuleSpec
from ml_guardrails.engine import ACCOUNT_RESOURCE_TYPE, GuardrailRule

ROOT = Path(__file__).resolve().parents[1]
SPECS = catalog.discover(ROOT / "rules")
CORE_RULES = {
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET",
    "KMS_CMK_ROTATION_ENABLED",
    "S3_BUCKET_SSE_KMS_ENFORCED",
    "VPC_FLOW_LOGS_ENABLED",
}


def test_the_core_rules_are_in_the_catalog() -> None:
    assert {s.name for s in SPECS} >= CORE_RULES


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_folder_module_class_and_rule_name_agree(spec: RuleSpec) -> None:
    cls = spec.rule_class()
    assert issubclass(cls, GuardrailRule)
    assert cls.__name__ == cls.RULE_NAME == spec.name == spec.directory.name
    assert callable(getattr(spec.load_module(), "lambda_handler", None))
    assert (spec.directory / f"{spec.name}_test.py").is_file()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_parameters_json_matches_the_rule(spec: RuleSpec) -> None:
    cls = spec.rule_class()
    declared = {p.name: p for p in cls.parameter_specs()}
    assert spec.parameter_names == set(declared), "parameters.json and the rule's PARAMETERS differ"
    for name, default in spec.input_parameters.items():
        assert declared[name].default == default, f"{name}: default differs from parameters.json"
        assert not declared[name].required or default, f"{name}: required parameter without a value"
    for name in spec.optional_parameters:
        assert declared[name].default is None, f"{name} has a default: it belongs in InputParameters"
    assert spec.periodic, "every rule has a periodic trigger as well"
    if spec.resource_types:
        assert set(spec.resource_types) == set(cls.RESOURCE_TYPES)
    else:  # no SourceEvents: a periodic-only rule, which can only evaluate the account
        assert cls.RESOURCE_TYPES == (ACCOUNT_RESOURCE_TYPE,), "only account rules may lack a change trigger"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_defaults_are_valid_parameters(spec: RuleSpec) -> None:
    rule = spec.rule_class()()
    rule.evaluate_parameters(dict(spec.input_parameters))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_rule_tests_cover_every_compliance_type(spec: RuleSpec) -> None:
    text = (spec.directory / f"{spec.name}_test.py").read_text()
    for compliance in ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE"):
        assert compliance in text, f"{spec.name}_test.py has no {compliance} case"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_rule_module_builds_no_client_at_import(spec: RuleSpec) -> None:
    tree = ast.parse(spec.module_path.read_text())
    for node in tree.body:  # module level only
        for call in ast.walk(node):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                break
            if isinstance(call, ast.Attribute) and call.attr in {"client", "resource", "Session"}:
                pytest.fail(f"{spec.name} builds a boto3 {call.attr} at import time (line {call.lineno})")


def test_rule_module_names_are_unique_and_shadow_nothing() -> None:
    # rdk test-local and pytest import rule modules as top-level modules in one sys.modules: two of the same
    # name collide, and one named like an installed package would shadow it. (Modules inside the
    # ml_guardrails package are qualified by it and cannot collide.)
    from importlib.machinery import PathFinder

    names = [p.stem for p in (ROOT / "rules").rglob("*.py")]
    assert len(names) == len(set(names))
    elsewhere = [p for p in sys.path if not Path(p or ".").resolve().is_relative_to(ROOT / "rules")]
    for name in names:
        assert name not in sys.builtin_module_names, name
        assert PathFinder.find_spec(name, elsewhere) is None, f"rule module {name} shadows a module"


def test_a_broken_parameters_json_is_reported_with_its_path(tmp_path: Path) -> None:
    folder = tmp_path / "MY_RULE"
    folder.mkdir()
    (folder / "parameters.json").write_text(json.dumps({"Parameters": {"RuleName": "OTHER"}}))
    with pytest.raises(CatalogError, match="differs from its folder"):
        catalog.discover(tmp_path)
    (folder / "parameters.json").write_text(
        json.dumps({"Parameters": {"RuleName": "MY_RULE", "SourceRuntime": "python3.7", "SourceEvents": "X"}})
    )
    with pytest.raises(CatalogError, match="SourceRuntime"):
        catalog.discover.__wrapped__(tmp_path)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_remediation_binding_matches_its_runbook(spec: RuleSpec) -> None:
    import yaml

    remediation = spec.remediation
    assert remediation is not None, f"{spec.name} has no Remediation in parameters.json"
    assert remediation.runbook_path.is_file(), f"{remediation.target_id}.yaml is not in remediations/"
    declared = yaml.safe_load(remediation.runbook_path.read_text())["parameters"]
    bound = {remediation.resource_parameter, *remediation.static_parameters}
    assert bound <= set(declared), f"binds inputs the runbook does not declare: {bound - set(declared)}"
    assert "AutomationAssumeRole" not in bound, "the deployment binds the role it creates"
    required = {n for n, p in declared.items() if "default" not in p and n != "AutomationAssumeRole"}
    assert required <= bound, f"required runbook inputs left unbound: {required - bound}"
    for name, values in remediation.static_parameters.items():
        pattern = declared[name].get("allowedPattern")
        allowed = declared[name].get("allowedValues")
        for value in values:
            assert pattern is None or re.search(pattern, value), f"{name}={value!r} fails {pattern}"
            assert allowed is None or value in [str(a) for a in allowed], f"{name}={value!r} not in {allowed}"
