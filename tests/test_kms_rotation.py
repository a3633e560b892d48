"""KMS_CMK_ROTATION_ENABLED against moto: the sweep, end-to-end per trigger, fail-closed paths, parameters.

moto 5.2.5 differs from AWS here; the tests follow AWS and say so where it matters:
* ``get_key_rotation_status`` returns only ``KeyRotationEnabled`` (AWS also returns KeyId,
  RotationPeriodInDays, NextRotationDate; botocore's output shape has them) and ``enable_key_rotation``
  does not store RotationPeriodInDays: the real shape is injected where the period matters.
* ``alias/aws/*`` keys report ``KeyManager: CUSTOMER`` (AWS: ``AWS``): the AWS shape is injected.
* ``Origin=EXTERNAL`` keys are created ``Enabled`` (AWS: ``PendingImport`` until material is imported).
* HMAC/EXTERNAL keys accept ``enable_key_rotation`` and asymmetric keys answer ``KeyRotationEnabled:
  false`` (AWS: UnsupportedOperationException for both); the rule never asks about such keys.
* A key pending deletion answers ``KeyRotationEnabled: true`` if rotation was on (AWS: false); the rule
  never asks about such keys either.
* ``list_keys`` ignores ``Limit``: pagination is shown with injected pages.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rdklib import ComplianceType, InvalidParametersError

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.engine import EvaluationIncomplete, RuleParameters, handle
from ml_guardrails.testing import (
    NOTIFICATION_TIME,
    PutEvaluationsRecorder,
    change_event,
    history_item,
    inject,
    oversized_event,
    scheduled_event,
)

mod = get("KMS_CMK_ROTATION_ENABLED").load_module()
RULE = mod.KMS_CMK_ROTATION_ENABLED
KMS_KEY = "AWS::KMS::Key"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
FIXTURES = Path(__file__).resolve().parent / "fixtures/ci"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def seed_kms(session: boto3.Session) -> None:
    """Demo keys for KMS_CMK_ROTATION_ENABLED (all in the session's region):
    COMPLIANT: ``ml-artifacts`` (rotation on, 365 days); NON_COMPLIANT: ``feature-store`` (rotation off)
    and ``legacy-training-data`` (disabled, rotation off); NOT_APPLICABLE: ``model-signing`` (RSA_2048
    signing key) and ``retired-notebooks`` (pending deletion)."""
    kms = session.client("kms")

    def create(alias: str, **kwargs: Any) -> str:
        key_id = str(
            kms.create_key(
                Description=f"ml-guardrails demo: {alias}",
                Tags=[{"TagKey": "project", "TagValue": "ml-platform"}],
                **kwargs,
            )["KeyMetadata"]["KeyId"]
        )
        kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key_id)
        return key_id

    kms.enable_key_rotation(KeyId=create("ml-artifacts"), RotationPeriodInDays=365)
    create("feature-store")
    kms.disable_key(KeyId=create("legacy-training-data"))
    create("model-signing", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    retired = create("retired-notebooks")
    kms.enable_key_rotation(KeyId=retired)
    kms.schedule_key_deletion(KeyId=retired, PendingWindowInDays=7)


def aliases(session: boto3.Session) -> dict[str, str]:
    """Our aliases -> key ids (moto pre-seeds alias/aws/* aliases: left out)."""
    listed = session.client("kms").list_aliases()["Aliases"]
    return {
        a["AliasName"].removeprefix("alias/"): a["TargetKeyId"]
        for a in listed
        if "TargetKeyId" in a and not a["AliasName"].startswith("alias/aws/")
    }


class CallLog:
    """Counts the KMS operations clients of ``session`` make."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        session.events.register("provide-client-params.kms.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == name]


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield


@pytest.fixture
def rec(aws: Any) -> PutEvaluationsRecorder:
    return PutEvaluationsRecorder()


def sweep(session: boto3.Session, raw: dict[str, Any] | None = None) -> list[Any]:
    """The periodic path in the session's region (the factory's region, from AWS_REGION, wins otherwise)."""
    rule = RULE()
    clients = ClientFactory(session=session, region=session.region_name, assume_role_mode=False)
    return list(rule.sweep(clients, rule.evaluate_parameters(raw or {})))


# ------------------------------------------------------------------------------------------------ sweep
def test_seed_and_sweep_show_every_verdict(rec: PutEvaluationsRecorder) -> None:
    seed_kms(rec.session)
    ids = aliases(rec.session)
    log = CallLog(rec.session)
    outcomes = sweep(rec.session)
    verdicts = {o.complianceResourceId: o.complianceType for o in outcomes}
    assert verdicts == {
        ids["ml-artifacts"]: C,
        ids["feature-store"]: NC,
        ids["legacy-training-data"]: NC,
        ids["model-signing"]: NA,
        ids["retired-notebooks"]: NA,
    }
    for outcome in outcomes:
        assert outcome.complianceResourceType == KMS_KEY
        assert 0 < len(outcome.annotation) <= 256
    # one DescribeKey per key, GetKeyRotationStatus only for the three keys in scope, no tag reads
    assert len(log.ops("ListKeys")) == 1
    assert sorted(p["KeyId"] for p in log.ops("DescribeKey")) == sorted(ids.values())
    rotation_reads = {p["KeyId"] for p in log.ops("GetKeyRotationStatus")}
    assert rotation_reads == {ids["ml-artifacts"], ids["feature-store"], ids["legacy-training-data"]}
    assert log.ops("ListResourceTags") == []


def test_sweep_key_types(rec: PutEvaluationsRecorder) -> None:
    kms = rec.session.client("kms")
    made = {
        "hmac": kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
        "ecc": kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"),
        "imported": kms.create_key(Origin="EXTERNAL"),
        "mrk-primary": kms.create_key(MultiRegion=True),
    }
    ids = {name: r["KeyMetadata"]["KeyId"] for name, r in made.items()}
    # moto accepts rotation on HMAC and imported keys (AWS: UnsupportedOperationException): still NA
    kms.enable_key_rotation(KeyId=ids["hmac"])
    kms.enable_key_rotation(KeyId=ids["imported"])
    kms.enable_key_rotation(KeyId=ids["mrk-primary"])
    by_id = {o.complianceResourceId: o for o in sweep(rec.session)}
    assert by_id[ids["hmac"]].complianceType == NA
    assert "HMAC_256" in by_id[ids["hmac"]].annotation
    assert by_id[ids["ecc"]].complianceType == NA
    assert by_id[ids["imported"]].complianceType == NA
    assert "EXTERNAL" in by_id[ids["imported"]].annotation
    assert by_id[ids["mrk-primary"]].complianceType == C


def test_sweep_replica_region_names_the_primary(aws: Any) -> None:
    session = boto3.Session(region_name="us-east-1")
    primary = session.client("kms").create_key(MultiRegion=True)["KeyMetadata"]
    session.client("kms").replicate_key(KeyId=primary["KeyId"], ReplicaRegion="eu-west-1")
    replica_session = boto3.Session(region_name="eu-west-1")
    [outcome] = sweep(replica_session)
    assert outcome.complianceType == NA
    assert outcome.complianceResourceId == primary["KeyId"]  # Config's resourceId: the key id (mrk-...)
    assert primary["Arn"] in outcome.annotation


def test_sweep_aws_managed_key_in_the_aws_shape(rec: PutEvaluationsRecorder) -> None:
    kms = rec.session.client("kms")
    managed = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert managed["KeyManager"] == "CUSTOMER"  # moto; AWS says "AWS" for alias/aws/* keys
    aws_shape = dict(managed, KeyManager="AWS", Description="Default key that protects my S3 objects")
    inject(
        rec.session,
        "kms.DescribeKey",
        response={"KeyMetadata": aws_shape},
        when=lambda p: p.get("KeyId") == managed["KeyId"],
    )
    log = CallLog(rec.session)
    [outcome] = sweep(rec.session, {"ExemptionTagKey": "guardrails-exempt"})
    assert (outcome.complianceResourceId, outcome.complianceType) == (managed["KeyId"], NA)
    assert "AWS-managed" in outcome.annotation
    assert log.ops("GetKeyRotationStatus") == [] and log.ops("ListResourceTags") == []


def test_sweep_exemption_reads_tags_only_when_asked(rec: PutEvaluationsRecorder) -> None:
    kms = rec.session.client("kms")
    exempt = kms.create_key(Tags=[{"TagKey": "guardrails-exempt", "TagValue": "RISK-42 HSM migration"}])
    plain = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "ml"}])
    exempt_id, plain_id = exempt["KeyMetadata"]["KeyId"], plain["KeyMetadata"]["KeyId"]
    log = CallLog(rec.session)
    by_id = {o.complianceResourceId: o for o in sweep(rec.session, {"ExemptionTagKey": "guardrails-exempt"})}
    assert by_id[exempt_id].complianceType == NA
    assert "RISK-42 HSM migration" in by_id[exempt_id].annotation
    assert by_id[plain_id].complianceType == NC
    assert {p["KeyId"] for p in log.ops("ListResourceTags")} == {exempt_id, plain_id}
    assert [p["KeyId"] for p in log.ops("GetKeyRotationStatus")] == [plain_id]
    log.calls.clear()
    sweep(rec.session)
    assert log.ops("ListResourceTags") == []


def test_sweep_follows_list_keys_pages(rec: PutEvaluationsRecorder) -> None:
    kms = rec.session.client("kms")
    first, second = (kms.create_key()["KeyMetadata"] for _ in range(2))
    # moto ignores Limit/Marker; AWS pages with Truncated + NextMarker (botocore's paginator config).
    inject(
        rec.session,
        "kms.ListKeys",
        response={
            "Keys": [{"KeyId": first["KeyId"], "KeyArn": first["Arn"]}],
            "Truncated": True,
            "NextMarker": "m1",
        },
        when=lambda p: "Marker" not in p,
    )
    inject(
        rec.session,
        "kms.ListKeys",
        response={"Keys": [{"KeyId": second["KeyId"], "KeyArn": second["Arn"]}], "Truncated": False},
        when=lambda p: p.get("Marker") == "m1",
    )
    assert [o.complianceResourceId for o in sweep(rec.session)] == [first["KeyId"], second["KeyId"]]


def test_sweep_skips_a_key_deleted_after_listing(rec: PutEvaluationsRecorder) -> None:
    kms = rec.session.client("kms")
    gone, kept = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    inject(
        rec.session, "kms.DescribeKey", error_code="NotFoundException", when=lambda p: p.get("KeyId") == gone
    )
    assert [o.complianceResourceId for o in sweep(rec.session)] == [kept]


def test_sweep_with_limit_uses_the_real_aws_rotation_shape(rec: PutEvaluationsRecorder) -> None:
    kms = rec.session.client("kms")
    short, long_ = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    for key_id, period in ((short, 180), (long_, 730)):
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=period)  # moto does not store it
        inject(
            rec.session,
            "kms.GetKeyRotationStatus",
            response={
                "KeyId": key_id,
                "KeyRotationEnabled": True,
                "RotationPeriodInDays": period,
                "NextRotationDate": 1800000000,
            },
            when=lambda p, key_id=key_id: p.get("KeyId") == key_id,
        )
    by_id = {o.complianceResourceId: o for o in sweep(rec.session, {"MaxRotationPeriodInDays": "365"})}
    assert by_id[short].complianceType == C
    assert by_id[long_].complianceType == NC
    assert "730 days" in by_id[long_].annotation


def test_sweep_with_limit_under_moto_shape_fails_closed(rec: PutEvaluationsRecorder) -> None:
    kms = rec.session.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    [outcome] = sweep(rec.session, {"MaxRotationPeriodInDays": "365"})
    # moto's response has no RotationPeriodInDays: unknown, so a failure, not COMPLIANT
    assert not hasattr(outcome, "complianceType")
    assert outcome.resource_id == key_id
    assert outcome.code == "IncompleteRotationStatus"


def test_sweep_unsupported_operation_is_non_compliant(rec: PutEvaluationsRecorder) -> None:
    key_id = rec.session.client("kms").create_key()["KeyMetadata"]["KeyId"]
    inject(rec.session, "kms.GetKeyRotationStatus", error_code="UnsupportedOperationException")
    [outcome] = sweep(rec.session)
    assert (outcome.complianceResourceId, outcome.complianceType) == (key_id, NC)


# --------------------------------------------------------------------------------------- end to end
def test_e2e_change_trigger_customer_key(rec: PutEvaluationsRecorder) -> None:
    log = CallLog(rec.session)
    ci = fixture("kms_customer_key.json")
    ci["supplementaryConfiguration"]["KeyRotationStatus"] = False
    records = handle(RULE(), change_event(ci), session=rec.session)
    [posted] = rec.evaluations
    assert posted == {
        "ComplianceResourceType": KMS_KEY,
        "ComplianceResourceId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "ComplianceType": NC,
        "Annotation": "Automatic key rotation is off. Turn it on: EnableKeyRotation with "
        "RotationPeriodInDays 90-2560.",
        "OrderingTimestamp": "2026-11-20T09:14:03.512Z",
    }
    assert records == rec.evaluations
    assert rec.calls[0]["TestMode"] is True
    assert log.calls == []  # the item carries the rotation status: no KMS call


def test_e2e_change_trigger_aws_managed_rdk_sample(rec: PutEvaluationsRecorder) -> None:
    handle(RULE(), change_event(fixture("kms_aws_managed_key.json")), session=rec.session)
    [posted] = rec.evaluations
    assert (posted["ComplianceResourceId"], posted["ComplianceType"]) == ("test", NA)
    assert posted["OrderingTimestamp"] == "2021-09-29T23:33:38.881Z"
    assert "AWS-managed" in posted["Annotation"]


def test_e2e_change_trigger_with_limit_reads_the_period(rec: PutEvaluationsRecorder) -> None:
    key = rec.session.client("kms").create_key()["KeyMetadata"]
    ci = fixture("kms_customer_key.json")
    ci.update(resourceId=key["KeyId"], ARN=key["Arn"])
    ci["configuration"].update(keyId=key["KeyId"], arn=key["Arn"])
    inject(
        rec.session,
        "kms.GetKeyRotationStatus",
        response={"KeyId": key["Arn"], "KeyRotationEnabled": True, "RotationPeriodInDays": 365},
    )
    log = CallLog(rec.session)
    handle(RULE(), change_event(ci, {"MaxRotationPeriodInDays": "180"}), session=rec.session)
    [posted] = rec.evaluations
    assert (posted["ComplianceResourceId"], posted["ComplianceType"]) == (key["KeyId"], NC)
    assert "MaxRotationPeriodInDays 180" in posted["Annotation"]
    assert [op for op, _ in log.calls] == ["GetKeyRotationStatus"]


def test_e2e_oversized_trigger(rec: PutEvaluationsRecorder) -> None:
    base = fixture("kms_customer_key.json")
    history = history_item(base, dt.datetime(2026, 11, 27, 8, 30, 5, 250000, tzinfo=dt.UTC))
    inject(rec.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    records = handle(RULE(), oversized_event(KMS_KEY, base["resourceId"]), session=rec.session)
    [posted] = rec.evaluations
    assert posted["ComplianceType"] == C
    assert posted["ComplianceResourceId"] == base["resourceId"]
    assert posted["OrderingTimestamp"] == "2026-11-27T08:30:05.250Z"
    json.dumps(records)  # the Lambda runtime must be able to marshal the return value


def test_e2e_periodic_trigger(rec: PutEvaluationsRecorder) -> None:
    seed_kms(rec.session)
    ids = aliases(rec.session)
    handle(RULE(), scheduled_event(), session=rec.session)
    assert rec.verdicts() == {
        ids["ml-artifacts"]: C,
        ids["feature-store"]: NC,
        ids["legacy-training-data"]: NC,
        ids["model-signing"]: NA,
        ids["retired-notebooks"]: NA,
    }
    for posted in rec.evaluations:
        assert posted["OrderingTimestamp"] == NOTIFICATION_TIME
        assert posted["ComplianceResourceType"] == KMS_KEY
        assert len(posted["Annotation"]) <= 256


# ------------------------------------------------------------------------------------------ fail closed
@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_one_unreadable_key_does_not_stop_the_sweep(rec: PutEvaluationsRecorder, code: str) -> None:
    seed_kms(rec.session)
    ids = aliases(rec.session)
    blocked = ids["feature-store"]
    inject(rec.session, "kms.GetKeyRotationStatus", error_code=code, when=lambda p: p.get("KeyId") == blocked)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(), session=rec.session)
    [failure] = info.value.failures
    assert (failure.resource_id, failure.code, failure.operation) == (blocked, code, "GetKeyRotationStatus")
    assert blocked in str(info.value)
    verdicts = rec.verdicts()
    assert blocked not in verdicts
    assert verdicts[ids["ml-artifacts"]] == C and verdicts[ids["legacy-training-data"]] == NC
    assert len(verdicts) == 4


def test_describe_access_denied_fails_that_key_only(rec: PutEvaluationsRecorder) -> None:
    seed_kms(rec.session)
    blocked = aliases(rec.session)["model-signing"]
    inject(
        rec.session,
        "kms.DescribeKey",
        error_code="AccessDeniedException",
        when=lambda p: p.get("KeyId") == blocked,
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(), session=rec.session)
    assert [f.resource_id for f in info.value.failures] == [blocked]
    assert len(rec.verdicts()) == 4


def test_list_keys_denied_fails_the_sweep_and_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    seed_kms(rec.session)
    inject(rec.session, "kms.ListKeys", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(), session=rec.session)
    assert info.value.failures[0].resource_id == "*"
    assert rec.calls == []


def test_change_path_access_denied_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    ci = fixture("kms_customer_key.json")
    inject(rec.session, "kms.GetKeyRotationStatus", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(ci, {"MaxRotationPeriodInDays": "365"}), session=rec.session)
    assert info.value.failures[0].code == "AccessDeniedException"
    assert info.value.failures[0].resource_id == ci["resourceId"]
    assert rec.calls == []


def test_change_path_unknown_period_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    # moto's GetKeyRotationStatus shape (no RotationPeriodInDays) with a limit: never COMPLIANT
    key = rec.session.client("kms").create_key()["KeyMetadata"]
    rec.session.client("kms").enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=180)
    ci = fixture("kms_customer_key.json")
    ci.update(resourceId=key["KeyId"])
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(ci, {"MaxRotationPeriodInDays": "365"}), session=rec.session)
    assert info.value.failures[0].code == "IncompleteRotationStatus"
    assert rec.calls == []


def test_malformed_item_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    ci = fixture("kms_customer_key.json")
    del ci["configuration"]["keyState"]
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(ci), session=rec.session)
    assert info.value.failures[0].code == "MalformedConfigurationItem"
    assert rec.calls == []


# ------------------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"MaxRotationPeriodInDays": "30"}, "MaxRotationPeriodInDays"),
        ({"MaxRotationPeriodInDays": "3650"}, "MaxRotationPeriodInDays"),
        ({"MaxRotationPeriodInDays": "one year"}, "MaxRotationPeriodInDays"),
        ({"MaxRotationDays": "365"}, "MaxRotationDays"),
    ],
)
@pytest.mark.parametrize("trigger", ["change", "periodic"])
def test_invalid_parameters_post_nothing(
    rec: PutEvaluationsRecorder, raw: dict[str, str], name: str, trigger: str
) -> None:
    seed_kms(rec.session)
    event = (
        change_event(fixture("kms_customer_key.json"), raw) if trigger == "change" else scheduled_event(raw)
    )
    with pytest.raises(InvalidParametersError, match=name):
        handle(RULE(), event, session=rec.session)
    assert rec.calls == []


def test_parameters_reach_the_rule(aws: Any) -> None:
    params = RULE().evaluate_parameters({"MaxRotationPeriodInDays": "400", "ExemptionTagKey": "exempt"})
    assert isinstance(params, RuleParameters)
    assert params.rule.max_rotation_period_days == 400
    assert params.exemption_tag_key == "exempt"
