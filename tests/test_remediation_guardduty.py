"""MlGuardrails-EnableGuardDuty (remediation of GUARDDUTY_ENABLED), run by the local runner against moto.

moto 5.2.5's GuardDuty differs from AWS; ``aws_guardduty`` (tests/test_guardduty.py) patches moto's model
in the tests only, so the runbook meets AWS's semantics:
* CreateDetector enables every optional feature not named except RUNTIME_MONITORING (moto: only those
  given), and a second CreateDetector in a Region is refused (moto: creates another);
* UpdateDetector changes only the features it names (moto: replaces the whole list).
Two detectors in a Region, which AWS never lists, are shown with an injected ListDetectors answer.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from rdklib import ComplianceType

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import data_dir, get
from ml_guardrails.runbooks import Execution, FakeClock, RunbookError, run_runbook
from ml_guardrails.testing import ACCOUNT_ID, inject
from tests.test_guardduty import aws_guardduty, seed_guardduty  # noqa: F401  (fixture)

RULE_NAME = "GUARDDUTY_ENABLED"
SPEC = get(RULE_NAME)
RULE_MODULE = SPEC.load_module()
DOCUMENT = "MlGuardrails-EnableGuardDuty"
DOC_PATH = data_dir("remediations") / f"{DOCUMENT}.yaml"
DOC = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
REGION = "us-east-1"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
READS = {"ListDetectors", "GetDetector", "GetCallerIdentity"}
WRITES = {"CreateDetector", "UpdateDetector"}

pytestmark = pytest.mark.usefixtures("aws_guardduty")


# ----------------------------------------------------------------------------------------------- helpers
class CallLog:
    """Every AWS operation clients of ``session`` make (any service), with its parameters."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        session.events.register("provide-client-params", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, json.loads(json.dumps(params, default=str))))

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == name]

    def names(self) -> set[str]:
        return {op for op, _ in self.calls}

    def assert_never_disables(self) -> None:
        for op, params in self.calls:
            if op in WRITES:
                assert params.get("Enable") is True, (op, params)
                assert all(f.get("Status") == "ENABLED" for f in params.get("Features", [])), (op, params)


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def verdict(session: boto3.Session, **rule_parameters: str) -> tuple[str, str]:
    rule = SPEC.rule_class()()
    clients = ClientFactory(region=session.region_name, assume_role_mode=False, session=session)
    evaluations, failures = rule.run_sweep(clients, rule.evaluate_parameters(rule_parameters))
    assert not failures, failures
    [evaluation] = evaluations
    assert evaluation.complianceResourceId == ACCOUNT_ID
    return evaluation.complianceType, evaluation.annotation


def remediate(session: boto3.Session, required: str | None = None, **overrides: Any) -> Execution:
    """A run with the parameters AWS Config passes under parameters.json's binding (lists, as SSM does)."""
    assert SPEC.remediation is not None
    values: dict[str, Any] = SPEC.remediation.parameters_for(ACCOUNT_ID)
    if required is not None:
        values["RequiredFeatures"] = [required]
    values.update(overrides)
    return run_runbook(DOC_PATH, values, session, clock=FakeClock())


def failure_of(session: boto3.Session, required: str | None = None, **overrides: Any) -> str:
    try:
        execution = remediate(session, required, **overrides)
    except RunbookError as exc:
        return str(exc)
    assert execution.status == "Failed", (execution.status, execution.outputs)
    return execution.failure_message or ""


def snapshot(session: boto3.Session) -> list[dict[str, Any]]:
    gd = session.client("guardduty")
    result = []
    for detector_id in gd.list_detectors()["DetectorIds"]:
        detector = gd.get_detector(DetectorId=detector_id)
        result.append(
            {k: detector.get(k) for k in ("Status", "Features", "Tags", "FindingPublishingFrequency")}
        )
    return result


def features_of(session: boto3.Session) -> dict[str, str]:
    gd = session.client("guardduty")
    [detector_id] = gd.list_detectors()["DetectorIds"]
    return {f["Name"]: f["Status"] for f in gd.get_detector(DetectorId=detector_id)["Features"]}


# ------------------------------------------------------------------------------- (1) fixes NON_COMPLIANT
def test_creates_a_detector_with_the_required_features(session: boto3.Session) -> None:
    required = "RUNTIME_MONITORING,S3_DATA_EVENTS"
    assert verdict(session, RequiredFeatures=required)[0] == NC
    log = CallLog(session)

    execution = remediate(session, required)

    assert execution.status == "Success", execution.failure_message
    assert execution.step_names == ["CheckDetector", "ChooseAction", "CreateDetector", "VerifyDetector"]
    assert execution.outputs["CheckDetector.Action"] == "CreateDetector"
    assert execution.outputs["VerifyDetector.Changed"] is True
    [create] = log.ops("CreateDetector")
    assert create["Enable"] is True
    assert create["Features"] == [
        {"Name": "RUNTIME_MONITORING", "Status": "ENABLED"},
        {"Name": "S3_DATA_EVENTS", "Status": "ENABLED"},
    ]
    assert log.names() <= READS | WRITES
    log.assert_never_disables()
    assert verdict(session, RequiredFeatures=required)[0] == C
    assert (
        execution.outputs["VerifyDetector.DetectorId"]
        == session.client("guardduty").list_detectors()["DetectorIds"][0]
    )


def test_creates_a_plain_detector_without_required_features(session: boto3.Session) -> None:
    execution = remediate(session)
    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["VerifyDetector.Result"].startswith("Changed (CreateDetector)")
    assert verdict(session)[0] == C


def test_re_enables_a_suspended_detector_and_nothing_else(session: boto3.Session) -> None:
    detector_id = seed_guardduty(session)
    session.client("guardduty").update_detector(DetectorId=detector_id, Enable=False)
    before = features_of(session)
    log = CallLog(session)

    execution = remediate(session)

    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["CheckDetector.Action"] == "EnableDetector"
    assert log.ops("UpdateDetector") == [{"DetectorId": detector_id, "Enable": True}]
    assert log.ops("CreateDetector") == []
    assert features_of(session) == before
    assert verdict(session)[0] == C


def test_enables_only_the_missing_features(session: boto3.Session) -> None:
    detector_id = seed_guardduty(session)  # S3 on, RDS off, RUNTIME_MONITORING off by default
    before = features_of(session)
    required = "S3_DATA_EVENTS,RDS_LOGIN_EVENTS,RUNTIME_MONITORING"
    compliance, annotation = verdict(session, RequiredFeatures=required)
    assert compliance == NC and "RDS_LOGIN_EVENTS (DISABLED)" in annotation
    log = CallLog(session)

    execution = remediate(session, required)

    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["CheckDetector.Action"] == "EnableFeatures"
    assert log.ops("UpdateDetector") == [
        {
            "DetectorId": detector_id,
            "Enable": True,
            "Features": [
                {"Name": "RDS_LOGIN_EVENTS", "Status": "ENABLED"},
                {"Name": "RUNTIME_MONITORING", "Status": "ENABLED"},
            ],
        }
    ]
    after = features_of(session)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"RDS_LOGIN_EVENTS", "RUNTIME_MONITORING"}
    assert verdict(session, RequiredFeatures=required)[0] == C


def test_suspended_detector_with_missing_features_is_enabled_in_one_call(session: boto3.Session) -> None:
    detector_id = seed_guardduty(session)
    session.client("guardduty").update_detector(DetectorId=detector_id, Enable=False)
    log = CallLog(session)
    execution = remediate(session, "RDS_LOGIN_EVENTS")
    assert execution.status == "Success", execution.failure_message
    [update] = log.ops("UpdateDetector")
    assert update["Enable"] is True and update["Features"] == [
        {"Name": "RDS_LOGIN_EVENTS", "Status": "ENABLED"}
    ]
    assert verdict(session, RequiredFeatures="RDS_LOGIN_EVENTS")[0] == C


# ------------------------------------------------------------------------------------- (2) idempotent
@pytest.mark.parametrize("required", ["", "S3_DATA_EVENTS,RDS_LOGIN_EVENTS", "EKS_RUNTIME_MONITORING"])
def test_second_run_changes_nothing(session: boto3.Session, required: str) -> None:
    assert remediate(session, required).status == "Success"
    before = snapshot(session)
    log = CallLog(session)

    again = remediate(session, required)

    assert again.status == "Success", again.failure_message
    assert again.outputs["CheckDetector.Action"] == "NoChange"
    assert again.outputs["VerifyDetector.Changed"] is False
    assert again.outputs["VerifyDetector.Result"].startswith("Already compliant, nothing changed")
    assert again.step_names == ["CheckDetector", "ChooseAction", "VerifyDetector"]
    assert log.names() <= READS
    assert snapshot(session) == before


def test_runtime_monitoring_covers_eks_runtime_monitoring(session: boto3.Session) -> None:
    session.client("guardduty").create_detector(
        Enable=True,
        Features=[
            {"Name": "RUNTIME_MONITORING", "Status": "ENABLED"},
            {"Name": "EKS_RUNTIME_MONITORING", "Status": "DISABLED"},
        ],
    )
    assert verdict(session, RequiredFeatures="EKS_RUNTIME_MONITORING")[0] == C
    log = CallLog(session)
    execution = remediate(session, "EKS_RUNTIME_MONITORING")
    assert execution.outputs["CheckDetector.Action"] == "NoChange"
    assert log.names() <= READS


# ---------------------------------------------------------------------------------- (3) refuses clearly
def test_another_account_is_refused_before_any_guardduty_call(session: boto3.Session) -> None:
    log = CallLog(session)
    message = failure_of(session, AccountId="111122223333")
    assert "not the account this automation runs in" in message and "Nothing changed" in message
    assert log.names() <= {"GetCallerIdentity"}


def test_two_detectors_are_refused(session: boto3.Session) -> None:
    detector_id = seed_guardduty(session)
    inject(session, "guardduty.ListDetectors", response={"DetectorIds": [detector_id, "0" * 32]})
    log = CallLog(session)
    message = failure_of(session, "RDS_LOGIN_EVENTS")
    assert "lists 2 detectors" in message and "Nothing changed" in message
    assert not log.names() & WRITES


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AccountId", "12345678901"),
        ("AccountId", "arn:aws:iam::123456789012:root"),
        ("AccountId", ""),
        ("RequiredFeatures", "s3_data_events"),
        ("RequiredFeatures", "FLOW_LOGS"),
        ("RequiredFeatures", "S3_DATA_EVENTS,"),
        ("RequiredFeatures", "S3_DATA_EVENTS;RDS_LOGIN_EVENTS"),
        ("AutomationAssumeRole", "arn:aws:iam::123:role/x"),
    ],
)
def test_bad_parameter_fails_naming_it_without_any_aws_call(
    session: boto3.Session, name: str, value: str
) -> None:
    log = CallLog(session)
    with pytest.raises(RunbookError, match=re.escape(repr(name))):
        run_runbook(DOC_PATH, {"AccountId": ACCOUNT_ID, name: value}, session, clock=FakeClock())
    assert log.calls == []


@pytest.mark.parametrize("existing", [None, "EKS_RUNTIME_MONITORING"])
def test_runtime_and_eks_runtime_together_enable_only_runtime_monitoring(
    session: boto3.Session, existing: str | None
) -> None:
    # GuardDuty rejects both in one request; RUNTIME_MONITORING covers EKS
    required = "RUNTIME_MONITORING,EKS_RUNTIME_MONITORING"
    if existing:
        session.client("guardduty").create_detector(
            Enable=True, Features=[{"Name": existing, "Status": "ENABLED"}]
        )
    log = CallLog(session)
    execution = remediate(session, required)
    assert execution.status == "Success", execution.failure_message
    [write] = [params for op, params in log.calls if op in WRITES]
    assert write["Features"] == [{"Name": "RUNTIME_MONITORING", "Status": "ENABLED"}]
    assert verdict(session, RequiredFeatures=required)[0] == C


# ------------------------------------------------------------------------- (4) faults around the write
def test_fault_on_the_write_leaves_the_detector_unchanged_and_a_rerun_completes(
    session: boto3.Session,
) -> None:
    detector_id = seed_guardduty(session)
    session.client("guardduty").update_detector(DetectorId=detector_id, Enable=False)
    before = snapshot(session)
    fault = {"on": True}
    inject(session, "guardduty.UpdateDetector", error_code="BadRequestException", when=lambda _p: fault["on"])

    first = remediate(session)

    assert first.status == "Failed" and first.failed_step == "EnableDetector"
    assert "BadRequestException" in (first.failure_message or "")
    assert snapshot(session) == before
    fault["on"] = False
    assert remediate(session).status == "Success"
    assert verdict(session)[0] == C


def test_fault_on_verification_after_the_write_leaves_a_state_a_rerun_completes(
    session: boto3.Session,
) -> None:
    state = {"written": False, "armed": True}

    def written(http_response: Any, **_: Any) -> None:
        state["written"] = state["written"] or getattr(http_response, "status_code", 500) == 200

    session.events.register("after-call.guardduty.CreateDetector", written)
    inject(
        session,
        "guardduty.GetDetector",
        error_code="AccessDeniedException",
        when=lambda _p: state["written"] and state["armed"],
    )

    first = remediate(session, "S3_DATA_EVENTS")

    assert first.status == "Failed" and first.failed_step == "VerifyDetector"
    assert "AccessDeniedException" in (first.failure_message or "")
    state["armed"] = False  # the operator fixes the permission
    rerun = remediate(session, "S3_DATA_EVENTS")
    assert rerun.status == "Success", rerun.failure_message
    assert rerun.outputs["CheckDetector.Action"] == "NoChange"  # the first run's detector is reused
    assert len(session.client("guardduty").list_detectors()["DetectorIds"]) == 1


def test_verification_fails_when_aws_does_not_enable_the_feature(session: boto3.Session) -> None:
    # e.g. a feature not available in the Region, or managed by a GuardDuty organization policy
    detector_id = seed_guardduty(session)
    stale = session.client("guardduty").get_detector(DetectorId=detector_id)
    stale = {k: v for k, v in stale.items() if k != "ResponseMetadata"}
    state = {"written": False}

    def written(**_: Any) -> None:
        state["written"] = True

    session.events.register("after-call.guardduty.UpdateDetector", written)
    inject(session, "guardduty.GetDetector", response=stale, when=lambda _p: state["written"])

    execution = remediate(session, "RDS_LOGIN_EVENTS")

    assert execution.status == "Failed" and execution.failed_step == "VerifyDetector"
    assert execution.step("VerifyDetector").attempts == 3  # eventual consistency: re-read before failing
    assert "RDS_LOGIN_EVENTS (DISABLED) after this run" in (execution.failure_message or "")


# ---------------------------------------------------------------------------------- (5) the binding
def test_binding_in_parameters_json_names_this_document_and_binds_its_inputs() -> None:
    raw = json.loads((SPEC.directory / "parameters.json").read_text(encoding="utf-8"))
    remediation = raw["Parameters"]["Remediation"]
    assert remediation["TargetId"] == DOCUMENT and remediation["ResourceType"] == "AWS::::Account"
    assert remediation["Parameters"] == {"AccountId": {"ResourceValue": {"Value": "RESOURCE_ID"}}}
    assert SPEC.remediation is not None and SPEC.remediation.runbook_path == DOC_PATH
    declared = DOC["parameters"]
    assert {n for n, p in declared.items() if "default" not in p} == {"AccountId"}


def test_required_features_pattern_accepts_exactly_the_rules_features() -> None:
    pattern = DOC["parameters"]["RequiredFeatures"]["allowedPattern"]
    for feature in RULE_MODULE.FEATURES:
        assert re.search(pattern, feature), feature
    assert re.search(pattern, ",".join(RULE_MODULE.FEATURES))
    assert re.search(pattern, "S3_DATA_EVENTS, RDS_LOGIN_EVENTS")
    for bad in ("FLOW_LOGS", "DNS_LOGS", "S3_DATA_EVENTS,", ",S3_DATA_EVENTS", "S3_DATA_EVENTSX"):
        assert not re.search(pattern, bad), bad
    listed = re.findall(r"\b[A-Z][A-Z0-9_]{3,}\b", DOC["parameters"]["RequiredFeatures"]["description"])
    assert tuple(listed) == RULE_MODULE.FEATURES


# ------------------------------------------------------------------------------------ the document
def test_document_shape() -> None:
    assert DOC["schemaVersion"] == "0.3"
    assert DOC["assumeRole"] == "{{ AutomationAssumeRole }}"
    for name, spec in DOC["parameters"].items():
        assert spec["type"] and spec["description"], name
        assert "allowedPattern" in spec or "allowedValues" in spec, name
    for step in DOC["mainSteps"]:
        assert step["onFailure"] == "Abort", step["name"]
        if step["action"] == "aws:executeScript":
            assert (step["inputs"]["Runtime"], step["inputs"]["Handler"]) == ("python3.11", "handler")
            tree = ast.parse(step["inputs"]["Script"])
            assert "handler" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if step["action"] == "aws:executeAwsApi":
            assert step["inputs"]["Enable"] is True  # never disables


def test_description_lists_exactly_the_guardduty_actions_the_runbook_calls() -> None:
    called = {f"guardduty:{s['inputs']['Api']}" for s in DOC["mainSteps"] if "Api" in s.get("inputs", {})}
    for step in DOC["mainSteps"]:
        for snake in re.findall(r"gd\.(\w+)\(", step.get("inputs", {}).get("Script", "")):
            called.add("guardduty:" + "".join(part.title() for part in snake.split("_")))
    called = {"guardduty:ListDetectors" if c == "guardduty:GetPaginator" else c for c in called}
    listed = set(re.findall(r"- `(guardduty:\w+)`", DOC["description"]))
    assert (
        called
        == listed
        == {
            "guardduty:ListDetectors",
            "guardduty:GetDetector",
            "guardduty:CreateDetector",
            "guardduty:UpdateDetector",
        }
    )


def test_validator_finds_no_problem() -> None:
    from ml_guardrails.runbooks import validate_runbook

    assert validate_runbook(DOC_PATH) == []
