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
    assert rule["Scope"]["ComplianceResourceTypes"] == list(spec.resource_types)
    messages = [d["MessageType"] for d in rule["Source"]["SourceDetails"]]
    assert messages == [
        "ConfigurationItemChangeNotification",
        "OversizedConfigurationItemChangeNotification",
        "ScheduledNotification",
    ]
    function_id = rule["Source"]["SourceIdentifier"]["Fn::GetAtt"][0]
    function = template["Resources"][function_id]["Properties"]
    assert function["CodeUri"] == f"rules/{spec.name}/"
    assert function["Handler"] == f"{spec.name}.lambda_handler"
    inputs = set(rule.get("InputParameters", {})) - {"AssumeRoleMode", "ExecutionRoleName"}
    assert inputs <= spec.parameter_names, "the template passes a parameter the rule does not declare"


def test_no_wildcard_actions(template: dict[str, Any]) -> None:
    for name, function in resources_of(template, "AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            for statement in policy["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert all("*" not in a for a in actions), f"{name}: wildcard action in {actions}"


def test_config_may_invoke_only_from_this_account(template: dict[str, Any]) -> None:
    for name, permission in resources_of(template, "AWS::Lambda::Permission").items():
        assert permission["Properties"]["Principal"] == "config.amazonaws.com", name
        assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}, name
