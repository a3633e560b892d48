"""MlGuardrails-EnableKmsKeyRotation (remediation of KMS_CMK_ROTATION_ENABLED), run by the local runner
against moto, with AWS's response shapes injected where moto differs.

moto 5.2.5 differs from AWS here; the tests follow AWS and say so where it matters:
* ``get_key_rotation_status`` returns only ``KeyRotationEnabled``; AWS also returns ``KeyId`` (ARN),
  ``RotationPeriodInDays`` and ``NextRotationDate``, and ``enable_key_rotation`` in moto does not store
  the period. :class:`AwsRotationShape` answers GetKeyRotationStatus as AWS does (and remembers the
  period EnableKeyRotation sets) wherever the period matters.
* ``enable_key_rotation`` succeeds on a Disabled key (AWS: DisabledException), on HMAC and imported keys
  (AWS: UnsupportedOperationException): the runbook's own checks must stop those, and the tests show
  the key left unchanged.
* ``describe_key`` of a key ARN naming another account answers with the local key (AWS: the other
  account's key, or AccessDenied/NotFound): the runbook rejects a foreign ARN before any call.
* ``alias/aws/*`` keys report ``KeyManager: CUSTOMER`` (AWS: ``AWS``): the AWS shape is injected.
* ``Origin=EXTERNAL`` keys are created ``Enabled`` (AWS: ``PendingImport`` until material is imported).
* multi-Region key ids are ``mrk-`` + a UUID (AWS: ``mrk-`` + 32 hex digits); KeyId accepts both.
"""

from __future__ import annotations

import ast
import datetime as dt
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

RULE_NAME = "KMS_CMK_ROTATION_ENABLED"
SPEC = get(RULE_NAME)
RULE_MODULE = SPEC.load_module()
DOCUMENT = "MlGuardrails-EnableKmsKeyRotation"
DOC_PATH = data_dir("remediations") / f"{DOCUMENT}.yaml"
DOC = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
REGION = "us-east-1"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
# The KMS operations a run may make; everything else (EnableKey, CancelKeyDeletion, PutKeyPolicy, ...)
# is never called.
READS = {"DescribeKey", "GetKeyRotationStatus"}
WRITES = {"EnableKeyRotation"}


# ----------------------------------------------------------------------------------------------- helpers
class CallLog:
    """Every AWS operation clients of ``session`` make (any service), with its parameters."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        session.events.register("provide-client-params", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == name]

    def names(self) -> set[str]:
        return {op for op, _ in self.calls}

    def clear(self) -> None:
        self.calls.clear()


class AwsRotationShape:
    """GetKeyRotationStatus for one key as AWS answers it: ``KeyId`` (the ARN), ``KeyRotationEnabled`` and,
    while rotation is on, ``RotationPeriodInDays`` and ``NextRotationDate``. A successful EnableKeyRotation
    of the key turns it on with the call's period (365 when omitted), as AWS stores it; moto stores no
    period. ``verify_override`` replaces the answer for calls made after EnableKeyRotation succeeded."""

    def __init__(self, session: boto3.Session, key_arn: str, *, period: int | None = None) -> None:
        self.key_arn = key_arn
        self.key_id = key_arn.rsplit("/", 1)[1]
        self.response: dict[str, Any] = {}
        self.enabled_by_run = False
        self.verify_override: dict[str, Any] | None = None
        self._set(period)
        inject(session, "kms.GetKeyRotationStatus", response=self.response, when=self._mine)
        session.events.register("provide-client-params.kms.EnableKeyRotation", self._capture)
        session.events.register("after-call.kms.EnableKeyRotation", self._after_enable)

    def _set(self, period: int | None) -> None:
        self.response.clear()
        self.response.update({"KeyId": self.key_arn, "KeyRotationEnabled": period is not None})
        if period is not None:
            self.response["RotationPeriodInDays"] = period
            self.response["NextRotationDate"] = dt.datetime(2027, 11, 28, tzinfo=dt.UTC)

    @property
    def period(self) -> int | None:
        return self.response.get("RotationPeriodInDays")

    def _mine(self, params: dict[str, Any]) -> bool:
        if self.verify_override is not None and self.enabled_by_run:
            self._set(None)
            self.response.update(self.verify_override)
        return str(params.get("KeyId", "")).rsplit("/", 1)[-1] == self.key_id

    def _capture(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["rotation_shape_params"] = dict(params)

    def _after_enable(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("rotation_shape_params") or {}
        mine = str(params.get("KeyId", "")).rsplit("/", 1)[-1] == self.key_id
        if mine and getattr(http_response, "status_code", 500) == 200:
            self.enabled_by_run = True
            self._set(int(params.get("RotationPeriodInDays", 365)))


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def create_key(session: boto3.Session, **kwargs: Any) -> dict[str, Any]:
    return dict(session.client("kms").create_key(**kwargs)["KeyMetadata"])


def verdict(session: boto3.Session, key_id: str, **rule_parameters: str) -> tuple[str, str]:
    """The rule's periodic verdict and annotation for ``key_id`` (Config's resourceId)."""
    rule = SPEC.rule_class()()
    clients = ClientFactory(region=session.region_name, assume_role_mode=False, session=session)
    evaluations, failures = rule.run_sweep(clients, rule.evaluate_parameters(rule_parameters))
    assert not failures, failures
    [evaluation] = [e for e in evaluations if e.complianceResourceId == key_id]
    return evaluation.complianceType, evaluation.annotation


def config_parameters(resource_id: str, **overrides: Any) -> dict[str, Any]:
    """The runbook parameters AWS Config passes for ``resource_id`` under parameters.json's binding
    (SSM's shape: every value a list of strings)."""
    assert SPEC.remediation is not None
    values = SPEC.remediation.parameters_for(resource_id)
    values.update(overrides)
    return values


def ssm_typed(values: dict[str, Any]) -> dict[str, Any]:
    """What SSM makes of StartAutomationExecution's ``map<string, list<string>>`` before a run: a
    one-element list for a non-StringList parameter becomes that element. (The local runner does not do
    this conversion yet; reported.)"""
    declared = DOC["parameters"]
    return {
        name: value[0]
        if isinstance(value, list) and len(value) == 1 and declared.get(name, {}).get("type") != "StringList"
        else value
        for name, value in values.items()
    }


def remediate(session: boto3.Session, resource_id: str, **overrides: Any) -> Execution:
    parameters = ssm_typed(config_parameters(resource_id, **overrides))
    return run_runbook(DOC_PATH, parameters, session, clock=FakeClock())


def failure_of(session: boto3.Session, parameters: dict[str, Any]) -> str:
    """The message a run with ``parameters`` fails with (RunbookError before any step, or a Failed run)."""
    try:
        execution = run_runbook(DOC_PATH, ssm_typed(parameters), session, clock=FakeClock())
    except RunbookError as exc:
        return str(exc)
    assert execution.status == "Failed", (execution.status, execution.outputs)
    return execution.failure_message or ""


def snapshot(session: boto3.Session, key_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The key's metadata and rotation status, without per-request metadata."""
    kms = session.client("kms")
    meta = dict(kms.describe_key(KeyId=key_id)["KeyMetadata"])
    rotation = {k: v for k, v in kms.get_key_rotation_status(KeyId=key_id).items() if k != "ResponseMetadata"}
    return meta, rotation


def assert_untouched(log: CallLog) -> None:
    assert log.names() <= READS | {"GetCallerIdentity"}, log.names()


# ------------------------------------------------------------------------------- (1) fixes NON_COMPLIANT
def test_turns_rotation_on_and_the_rule_then_says_compliant(session: boto3.Session) -> None:
    key = create_key(session)
    assert verdict(session, key["KeyId"])[0] == NC
    log = CallLog(session)

    execution = remediate(session, key["KeyId"])

    assert execution.status == "Success", execution.failure_message
    assert execution.step_names == [
        "CheckKey",
        "ChooseAction",
        "EnableKeyRotation",
        "WaitForRotationEnabled",
        "VerifyRotation",
    ]
    assert execution.outputs["CheckKey.Action"] == "EnableRotation"
    assert execution.outputs["CheckKey.KeyArn"] == key["Arn"]
    assert execution.outputs["VerifyRotation.Changed"] is True
    assert execution.outputs["VerifyRotation.Result"].startswith("Changed (EnableRotation)")
    # RotationPeriodInDays reaches the API as an integer (Config passes the string "365")
    assert log.ops("EnableKeyRotation") == [{"KeyId": key["KeyId"], "RotationPeriodInDays": 365}]
    assert log.names() <= READS | WRITES | {"GetCallerIdentity"}
    assert verdict(session, key["KeyId"])[0] == C


def test_key_arn_and_multi_region_primary_are_accepted(session: boto3.Session) -> None:
    plain = create_key(session)
    primary = create_key(session, MultiRegion=True)
    for key, resource in ((plain, plain["Arn"]), (primary, primary["KeyId"])):
        execution = remediate(session, resource)
        assert execution.status == "Success", execution.failure_message
        assert verdict(session, key["KeyId"])[0] == C


@pytest.mark.parametrize("period", [90, 180, 2560])
def test_period_reaches_aws_and_is_verified_in_the_aws_shape(session: boto3.Session, period: int) -> None:
    key = create_key(session)
    shape = AwsRotationShape(session, key["Arn"])
    execution = remediate(session, key["KeyId"], RotationPeriodInDays=[str(period)])
    assert execution.status == "Success", execution.failure_message
    assert shape.period == period
    assert f"every {period} days" in execution.outputs["VerifyRotation.Result"]
    assert verdict(session, key["KeyId"], MaxRotationPeriodInDays=str(period))[0] == C


def test_shortens_a_too_long_period_flagged_by_max_rotation_period(session: boto3.Session) -> None:
    key = create_key(session)
    session.client("kms").enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=730)
    shape = AwsRotationShape(session, key["Arn"], period=730)
    compliance, annotation = verdict(session, key["KeyId"], MaxRotationPeriodInDays="365")
    assert compliance == NC and "730 days" in annotation
    log = CallLog(session)

    execution = remediate(session, key["KeyId"])

    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["CheckKey.Action"] == "ShortenRotationPeriod"
    # AWS: EnableKeyRotation on a key whose rotation is on updates its RotationPeriodInDays
    assert log.ops("EnableKeyRotation") == [{"KeyId": key["KeyId"], "RotationPeriodInDays": 365}]
    assert shape.period == 365
    assert verdict(session, key["KeyId"], MaxRotationPeriodInDays="365")[0] == C


# ------------------------------------------------------------------------------------- (2) idempotent
def test_second_run_changes_nothing_in_the_aws_shape(session: boto3.Session) -> None:
    key = create_key(session)
    AwsRotationShape(session, key["Arn"])
    assert remediate(session, key["KeyId"]).status == "Success"
    before = snapshot(session, key["KeyId"])
    log = CallLog(session)

    again = remediate(session, key["KeyId"])

    assert again.status == "Success", again.failure_message
    assert again.outputs["CheckKey.Action"] == "NoChange"
    assert again.outputs["VerifyRotation.Changed"] is False
    assert again.outputs["VerifyRotation.Result"].startswith("Already compliant, nothing changed")
    assert "EnableKeyRotation" not in again.step_names
    assert_untouched(log)
    assert snapshot(session, key["KeyId"]) == before


def test_never_lengthens_a_shorter_period(session: boto3.Session) -> None:
    key = create_key(session)
    session.client("kms").enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    shape = AwsRotationShape(session, key["Arn"], period=90)
    log = CallLog(session)

    execution = remediate(session, key["KeyId"])  # binding: 365

    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["CheckKey.Action"] == "NoChange"
    assert "every 90 days" in execution.outputs["CheckKey.Message"]
    assert "never lengthens" in execution.outputs["CheckKey.Message"]
    assert_untouched(log)
    assert shape.period == 90


def test_second_run_in_moto_reapplies_the_unreported_period_and_changes_no_state(
    session: boto3.Session,
) -> None:
    # moto: GetKeyRotationStatus omits RotationPeriodInDays, so the runbook cannot tell the period is
    # already right and sets it again (AWS always reports it: see the AWS-shape test above).
    key = create_key(session)
    assert remediate(session, key["KeyId"]).status == "Success"
    before = snapshot(session, key["KeyId"])
    again = remediate(session, key["KeyId"])
    assert again.status == "Success", again.failure_message
    assert again.outputs["CheckKey.Action"] == "SetRotationPeriod"
    assert "did not report its period" in again.outputs["CheckKey.Message"]
    assert snapshot(session, key["KeyId"]) == before
    assert verdict(session, key["KeyId"])[0] == C


# ------------------------------------------------------------------------------------- (3) bad input
def test_missing_key_fails_clearly(session: boto3.Session) -> None:
    log = CallLog(session)
    missing = "0b0b0b0b-1111-2222-3333-444455556666"
    message = failure_of(session, config_parameters(missing))
    assert f"KMS key {missing} does not exist in account {ACCOUNT_ID}, Region {REGION}" in message
    assert_untouched(log)


def test_disabled_key_is_never_enabled(session: boto3.Session) -> None:
    key = create_key(session)
    session.client("kms").disable_key(KeyId=key["KeyId"])
    assert verdict(session, key["KeyId"])[0] == NC
    before = snapshot(session, key["KeyId"])
    log = CallLog(session)

    message = failure_of(session, config_parameters(key["KeyId"]))

    # moto would accept EnableKeyRotation on a disabled key (AWS: DisabledException); the runbook stops first
    assert "key state is Disabled" in message
    assert "never enables keys" in message and "EnableKey" in message
    assert key["Arn"] in message
    assert_untouched(log)
    assert snapshot(session, key["KeyId"]) == before


def test_key_pending_deletion_fails_and_keeps_its_deletion(session: boto3.Session) -> None:
    key = create_key(session)
    session.client("kms").schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    before = snapshot(session, key["KeyId"])
    log = CallLog(session)
    message = failure_of(session, config_parameters(key["KeyId"]))
    assert "PendingDeletion" in message and "never cancels a deletion" in message
    assert_untouched(log)
    assert snapshot(session, key["KeyId"]) == before


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}, "KeySpec is RSA_2048"),
        ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, "KeySpec is ECC_NIST_P256"),
        ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "KeySpec is HMAC_256"),
        ({"Origin": "EXTERNAL"}, "imported key material"),
    ],
    ids=["rsa", "ecc", "hmac", "imported"],
)
def test_keys_without_automatic_rotation_fail_clearly(
    session: boto3.Session, kwargs: dict[str, Any], expected: str
) -> None:
    key = create_key(session, **kwargs)
    before = snapshot(session, key["KeyId"])
    log = CallLog(session)
    message = failure_of(session, config_parameters(key["KeyId"]))
    assert expected in message and "Nothing changed" in message
    assert_untouched(log)
    assert snapshot(session, key["KeyId"]) == before


def test_aws_managed_key_fails_clearly(session: boto3.Session) -> None:
    # moto reports alias/aws/s3's key as CUSTOMER (AWS: AWS): the AWS shape is injected
    kms = session.client("kms")
    meta: dict[str, Any] = dict(kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"])
    meta["KeyManager"] = "AWS"
    inject(session, "kms.DescribeKey", response={"KeyMetadata": meta})
    log = CallLog(session)
    message = failure_of(session, config_parameters(meta["KeyId"]))
    assert "not customer managed (KeyManager AWS)" in message
    assert_untouched(log)


def test_replica_fails_naming_the_primary(session: boto3.Session) -> None:
    primary = create_key(session, MultiRegion=True)
    session.client("kms").replicate_key(KeyId=primary["KeyId"], ReplicaRegion="eu-west-1")
    replica_session = boto3.Session(region_name="eu-west-1")
    assert verdict(replica_session, primary["KeyId"])[0] == NA
    before = snapshot(replica_session, primary["KeyId"])
    log = CallLog(replica_session)

    message = failure_of(replica_session, config_parameters(primary["KeyId"]))

    assert "multi-Region replica" in message
    assert f"rotate on the primary {primary['Arn']}" in message
    assert_untouched(log)
    assert snapshot(replica_session, primary["KeyId"]) == before


@pytest.mark.parametrize(
    ("arn_account", "arn_region", "expected"),
    [("111122223333", REGION, "account 111122223333"), (ACCOUNT_ID, "us-west-2", "Region us-west-2")],
    ids=["other-account", "other-region"],
)
def test_key_arn_of_another_account_or_region_is_refused_before_any_kms_call(
    session: boto3.Session, arn_account: str, arn_region: str, expected: str
) -> None:
    key = create_key(session)
    before = snapshot(session, key["KeyId"])
    log = CallLog(session)
    foreign = f"arn:aws:kms:{arn_region}:{arn_account}:key/{key['KeyId']}"
    message = failure_of(session, config_parameters(foreign))
    assert expected in message and "cannot act across accounts or Regions" in message
    # moto would resolve this ARN to the local key: the refusal comes before DescribeKey
    assert not [op for op in log.names() if op in READS | WRITES]
    assert snapshot(session, key["KeyId"]) == before


def test_unsupported_operation_from_aws_fails_clearly(session: boto3.Session) -> None:
    # moto never raises UnsupportedOperationException on GetKeyRotationStatus; AWS does for keys that
    # cannot rotate
    key = create_key(session)
    inject(session, "kms.GetKeyRotationStatus", error_code="UnsupportedOperationException")
    log = CallLog(session)
    message = failure_of(session, config_parameters(key["KeyId"]))
    assert "does not support automatic rotation" in message and "Nothing changed" in message
    assert_untouched(log)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KeyId", "alias/ml-artifacts"),
        ("KeyId", "arn:aws:kms:us-east-1:123456789012:alias/ml-artifacts"),
        ("KeyId", "1234"),
        ("KeyId", ""),
        ("KeyId", "0B0B0B0B-1111-2222-3333-444455556666"),
        ("RotationPeriodInDays", "30"),
        ("RotationPeriodInDays", "89"),
        ("RotationPeriodInDays", "2561"),
        ("RotationPeriodInDays", "abc"),
        ("RotationPeriodInDays", "365.5"),
        ("AutomationAssumeRole", "not-a-role"),
        ("AutomationAssumeRole", "arn:aws:iam::123:role/x"),
        ("AutomationAssumeRole", "arn:aws:iam::123456789012:user/x"),
    ],
)
def test_bad_parameter_fails_naming_it_without_any_aws_call(
    session: boto3.Session, name: str, value: str
) -> None:
    key = create_key(session)
    log = CallLog(session)
    parameters = {"KeyId": key["KeyId"], name: value}
    with pytest.raises(RunbookError, match=re.escape(repr(name))):
        run_runbook(DOC_PATH, parameters, session, clock=FakeClock())
    assert log.calls == []


def test_out_of_range_period_is_rejected_by_the_script_too(session: boto3.Session) -> None:
    # Defence in depth: a document edited to drop allowedPattern still never calls EnableKeyRotation
    # with a period AWS would reject.
    doc = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    del doc["parameters"]["RotationPeriodInDays"]["allowedPattern"]
    key = create_key(session)
    log = CallLog(session)
    parameters = {"KeyId": key["KeyId"], "RotationPeriodInDays": 30}
    execution = run_runbook(doc, parameters, session, clock=FakeClock())
    assert execution.status == "Failed"
    assert "RotationPeriodInDays 30 is outside 90-2560" in (execution.failure_message or "")
    assert log.names() <= {"GetCallerIdentity"}  # global:ACCOUNT_ID only; no KMS call


# ------------------------------------------------------------------------- (4) faults after the write
def test_fault_on_verification_after_the_write_leaves_a_state_a_rerun_completes(
    session: boto3.Session,
) -> None:
    key = create_key(session)
    faulty = {"armed": True, "on": False}

    def arm(http_response: Any, **_: Any) -> None:
        faulty["on"] = faulty["on"] or getattr(http_response, "status_code", 500) == 200

    session.events.register("after-call.kms.EnableKeyRotation", arm)
    inject(
        session,
        "kms.GetKeyRotationStatus",
        error_code="AccessDeniedException",
        when=lambda _params: faulty["armed"] and faulty["on"],
    )

    first = remediate(session, key["KeyId"])

    assert first.status == "Failed"
    assert first.failed_step == "WaitForRotationEnabled"
    assert "AccessDeniedException" in (first.failure_message or "")
    faulty["armed"] = False  # the operator fixes the permission
    assert session.client("kms").get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True

    rerun = remediate(session, key["KeyId"])

    assert rerun.status == "Success", rerun.failure_message
    assert verdict(session, key["KeyId"])[0] == C


def test_fault_on_the_write_leaves_the_key_unchanged_and_a_rerun_completes(session: boto3.Session) -> None:
    key = create_key(session)
    fault = {"on": True}
    # e.g. the key was disabled between CheckKey and the write (AWS: DisabledException)
    inject(session, "kms.EnableKeyRotation", error_code="DisabledException", when=lambda _p: fault["on"])
    before = snapshot(session, key["KeyId"])

    first = remediate(session, key["KeyId"])

    assert first.status == "Failed"
    assert first.failed_step == "EnableKeyRotation"
    assert "DisabledException" in (first.failure_message or "")
    assert snapshot(session, key["KeyId"]) == before
    fault["on"] = False
    assert remediate(session, key["KeyId"]).status == "Success"
    assert verdict(session, key["KeyId"])[0] == C


def test_verification_checks_the_period_aws_reports(session: boto3.Session) -> None:
    key = create_key(session)
    shape = AwsRotationShape(session, key["Arn"])
    # AWS answers with another period after the write (e.g. a concurrent EnableKeyRotation)
    shape.verify_override = {"KeyRotationEnabled": True, "RotationPeriodInDays": 730}
    execution = remediate(session, key["KeyId"])
    assert execution.status == "Failed"
    assert execution.failed_step == "VerifyRotation"
    assert execution.step("VerifyRotation").attempts == 3  # eventual consistency: re-read before failing
    assert "rotates every 730 days after this run, not the requested 365" in (execution.failure_message or "")


def test_verification_waits_for_rotation_and_times_out_clearly(session: boto3.Session) -> None:
    key = create_key(session)
    shape = AwsRotationShape(session, key["Arn"])
    shape.verify_override = {"KeyRotationEnabled": False}
    execution = remediate(session, key["KeyId"])
    assert execution.status == "TimedOut"
    assert execution.failed_step == "WaitForRotationEnabled"
    assert "$.KeyRotationEnabled" in (execution.failure_message or "")


def test_verification_in_the_aws_shape_with_the_matching_period_passes(session: boto3.Session) -> None:
    key = create_key(session)
    shape = AwsRotationShape(session, key["Arn"])
    shape.verify_override = {"KeyRotationEnabled": True, "RotationPeriodInDays": 365}
    execution = remediate(session, key["KeyId"])
    assert execution.status == "Success", execution.failure_message
    assert execution.step("VerifyRotation").attempts == 1
    assert "every 365 days" in execution.outputs["VerifyRotation.Result"]


# ---------------------------------------------------------------------------------- (5) the binding
def test_binding_in_parameters_json_names_this_document_and_binds_its_inputs() -> None:
    raw = json.loads((SPEC.directory / "parameters.json").read_text(encoding="utf-8"))
    remediation = raw["Parameters"]["Remediation"]
    assert remediation == {
        "Automatic": False,
        "ConfigRuleName": RULE_NAME,
        "MaximumAutomaticAttempts": 3,
        "RetryAttemptSeconds": 60,
        "ResourceType": "AWS::KMS::Key",
        "TargetId": DOCUMENT,
        "TargetType": "SSM_DOCUMENT",
        "Parameters": {
            "KeyId": {"ResourceValue": {"Value": "RESOURCE_ID"}},
            "RotationPeriodInDays": {"StaticValue": {"Values": ["365"]}},
        },
    }
    assert SPEC.remediation is not None and SPEC.remediation.runbook_path == DOC_PATH
    declared = DOC["parameters"]
    bound = set(remediation["Parameters"])
    assert bound <= set(declared)
    assert "AutomationAssumeRole" not in bound
    assert {n for n, p in declared.items() if "default" not in p} - {"AutomationAssumeRole"} <= bound
    pattern = declared["RotationPeriodInDays"]["allowedPattern"]
    assert re.search(pattern, remediation["Parameters"]["RotationPeriodInDays"]["StaticValue"]["Values"][0])


def test_bound_period_satisfies_the_rules_max_rotation_period_when_set() -> None:
    # A deployment that sets MaxRotationPeriodInDays must bind RotationPeriodInDays at or below it, or
    # the remediated key stays NON_COMPLIANT.
    assert SPEC.remediation is not None
    [bound] = SPEC.remediation.static_parameters["RotationPeriodInDays"]
    limit = (SPEC.input_parameters | SPEC.optional_parameters).get("MaxRotationPeriodInDays") or ""
    assert not limit or int(bound) <= int(limit)


# ------------------------------------------------------------------------------------ the document
def _references(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from re.findall(r"\{\{\s*([\w:.-]+)\s*\}\}", value)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item)


def test_document_shape() -> None:
    assert DOC["schemaVersion"] == "0.3"
    assert DOC["assumeRole"] == "{{ AutomationAssumeRole }}"
    assert not re.match(r"(?i)^(aws|amazon)", DOCUMENT)
    for name, spec in DOC["parameters"].items():
        assert spec["type"] and spec["description"], name
        assert "allowedPattern" in spec or "allowedValues" in spec, name
    for step in DOC["mainSteps"]:
        assert step["onFailure"] == "Abort", step["name"]
        if step["action"] == "aws:executeScript":
            assert (step["inputs"]["Runtime"], step["inputs"]["Handler"]) == ("python3.11", "handler")
            tree = ast.parse(step["inputs"]["Script"])
            assert "handler" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_reference_resolves() -> None:
    known = set(DOC["parameters"]) | {"global:ACCOUNT_ID", "global:REGION"}
    for step in DOC["mainSteps"]:
        for ref in _references({k: v for k, v in step.get("inputs", {}).items() if k != "Script"}):
            assert ref in known, f"{step['name']}: {{{{ {ref} }}}} does not resolve"
        known |= {f"{step['name']}.{o['Name']}" for o in step.get("outputs", [])}
    assert set(DOC["outputs"]) <= known
    assert set(_references(DOC["assumeRole"])) <= known


def test_description_lists_exactly_the_kms_actions_the_runbook_calls() -> None:
    called = {f"kms:{s['inputs']['Api']}" for s in DOC["mainSteps"] if "Api" in s.get("inputs", {})}
    for step in DOC["mainSteps"]:
        for snake in re.findall(r"kms\.(\w+)\(", step.get("inputs", {}).get("Script", "")):
            called.add("kms:" + "".join(part.title() for part in snake.split("_")))
    listed = set(re.findall(r"- `(kms:\w+)`", DOC["description"]))
    assert called == listed == {"kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation"}


def test_parameter_patterns() -> None:
    params = DOC["parameters"]
    role = params["AutomationAssumeRole"]["allowedPattern"]
    for ok in ("", "arn:aws:iam::123456789012:role/remediation", "arn:aws-us-gov:iam::123456789012:role/a/b"):
        assert re.search(role, ok), ok
    key = params["KeyId"]["allowedPattern"]
    for ok in (
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    ):
        assert re.search(key, ok), ok
    period = params["RotationPeriodInDays"]["allowedPattern"]
    accepted = [n for n in range(0, 5000) if re.search(period, str(n))]
    # the rule's MaxRotationPeriodInDays range = botocore's EnableKeyRotation range
    assert (accepted[0], accepted[-1], len(accepted)) == (
        RULE_MODULE.MIN_PERIOD,
        RULE_MODULE.MAX_PERIOD,
        RULE_MODULE.MAX_PERIOD - RULE_MODULE.MIN_PERIOD + 1,
    )
    assert params["RotationPeriodInDays"]["default"] == 365


def test_validator_finds_no_problem() -> None:
    from ml_guardrails.runbooks import validate_runbook

    assert validate_runbook(DOC_PATH) == []
