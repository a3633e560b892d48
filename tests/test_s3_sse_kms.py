"""S3_BUCKET_SSE_KMS_ENFORCED against moto: the periodic sweep, the Lambda handler end to end for each
trigger (change, oversized, periodic), failures that must never turn COMPLIANT, and bad parameters.

Where moto 5.2.5 and AWS differ, the tests follow AWS and say so:
* A new moto bucket has no default-encryption configuration (GetBucketEncryption ->
  ServerSideEncryptionConfigurationNotFoundError); real AWS has returned SSE-S3 (AES256) since January
  2023. Both are NON_COMPLIANT; only the annotation differs.
* moto's aws/s3 key (pre-seeded alias/aws/s3) reports KeyManager CUSTOMER; AWS says AWS. A bucket naming
  that key by ARN is therefore injected as KeyManager AWS, as AWS would answer.
* moto's ListBuckets ignores MaxBuckets pagination (no ContinuationToken: only the first page is
  returned) and omits ``BucketRegion`` from entries; the sweep pages with ``PageSize`` 1000 and
  filters with the ``BucketRegion`` request parameter, which moto honours.
* PutEvaluations works only with TestMode (the TESTMODE result token of ml_guardrails.testing events).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rdklib import InvalidParametersError

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import (
    NOTIFICATION_TIME,
    PutEvaluationsRecorder,
    change_event,
    history_item,
    inject,
    oversized_event,
    scheduled_event,
)

RULE_NAME = "S3_BUCKET_SSE_KMS_ENFORCED"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"
REGION = "us-east-1"
EXEMPT_KEY = "ml-guardrails:exempt"
# Single-account deployment: the function's own role (no AssumeRole), so the recorder sees every call.
LOCAL = {"AssumeRoleMode": "false"}
SSE_HEADER = "s3:x-amz-server-side-encryption"
EXEMPT_REASON = "public open-data mirror, approved by CISO (RISK-1234)"
DEMO_PARAMETERS = {"ExemptionTagKey": EXEMPT_KEY}
CROSS_ACCOUNT_KEY = "arn:aws:kms:us-east-1:444455556666:key/11112222-3333-4444-5555-666677778888"


def seed_s3_sse_kms(session: boto3.Session) -> None:
    """Buckets that show every verdict of S3_BUCKET_SSE_KMS_ENFORCED, evaluated with parameters
    ``{"ExemptionTagKey": "ml-guardrails:exempt"}`` (others at their defaults):

    ml-training-data    COMPLIANT      SSE-KMS, customer managed key by ARN, S3 Bucket Key on
    ml-model-artifacts  COMPLIANT      DSSE-KMS, customer managed key by alias
    ml-scratch          NON_COMPLIANT  SSE-S3 (AES256), the AWS default since 2023
    ml-legacy-exports   NON_COMPLIANT  SSE-KMS with the AWS managed key aws/s3 (no KMSMasterKeyID)
    ml-public-datasets  NOT_APPLICABLE SSE-S3, exempted by tag
    """
    s3 = session.client("s3")
    kms = session.client("kms")
    region = s3.meta.region_name
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    key = kms.create_key(Description="ml-data: customer managed key for ML training data")["KeyMetadata"]
    kms.create_alias(AliasName="alias/ml-data", TargetKeyId=key["KeyId"])

    def bucket(name: str, algorithm: str, key_id: str | None = None, bucket_key: bool = False) -> None:
        s3.create_bucket(Bucket=name, **location)
        default: dict[str, str] = {"SSEAlgorithm": algorithm}
        if key_id:
            default["KMSMasterKeyID"] = key_id
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bucket_key}]
            },
        )

    bucket("ml-training-data", "aws:kms", key["Arn"], bucket_key=True)
    bucket("ml-model-artifacts", "aws:kms:dsse", "alias/ml-data")
    bucket("ml-scratch", "AES256")
    bucket("ml-legacy-exports", "aws:kms")
    bucket("ml-public-datasets", "AES256")
    s3.put_bucket_tagging(
        Bucket="ml-public-datasets",
        Tagging={"TagSet": [{"Key": EXEMPT_KEY, "Value": EXEMPT_REASON}]},
    )


DEMO_VERDICTS = {
    "ml-training-data": "COMPLIANT",
    "ml-model-artifacts": "COMPLIANT",
    "ml-scratch": "NON_COMPLIANT",
    "ml-legacy-exports": "NON_COMPLIANT",
    "ml-public-datasets": "NOT_APPLICABLE",
}


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def rec(aws: Any) -> PutEvaluationsRecorder:
    return PutEvaluationsRecorder()


@pytest.fixture
def rule() -> Any:
    module = get(RULE_NAME).load_module()
    return module.S3_BUCKET_SSE_KMS_ENFORCED()


def count_calls(session: boto3.Session) -> Counter[str]:
    """Operation name -> number of API calls made through ``session``'s clients."""
    calls: Counter[str] = Counter()

    def _count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    session.events.register("before-call.*.*", _count)
    return calls


def factory(rec: PutEvaluationsRecorder) -> ClientFactory:
    return ClientFactory(region=REGION, assume_role_mode=False, session=rec.session)


def params_of(rule: Any, raw: dict[str, Any]) -> Any:
    return rule.evaluate_parameters(raw)


def load_ci(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def with_key(ci: dict[str, Any], key: str | None) -> dict[str, Any]:
    default = ci["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"]["rules"][0][
        "applyServerSideEncryptionByDefault"
    ]
    default["kmsMasterKeyID"] = key
    return ci


# ----------------------------------------------------------------------------------------------- sweep
def test_sweep_seeded_buckets(rec: PutEvaluationsRecorder, rule: Any) -> None:
    seed_s3_sse_kms(rec.session)
    outcomes = list(rule.sweep(factory(rec), params_of(rule, DEMO_PARAMETERS)))
    verdicts = {o.complianceResourceId: o.complianceType for o in outcomes}
    assert verdicts == DEMO_VERDICTS
    for outcome in outcomes:
        assert outcome.complianceResourceType == "AWS::S3::Bucket"
        assert outcome.annotation and len(outcome.annotation) <= 256
    by_id = {o.complianceResourceId: o.annotation for o in outcomes}
    assert "SSE-S3 (AES256)" in by_id["ml-scratch"]
    assert "aws/s3" in by_id["ml-legacy-exports"]
    assert EXEMPT_REASON in by_id["ml-public-datasets"]


def test_sweep_only_this_regions_buckets_and_moto_default_encryption(
    rec: PutEvaluationsRecorder, rule: Any
) -> None:
    s3 = rec.session.client("s3")
    s3.create_bucket(Bucket="ml-new-bucket")
    rec.session.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="ml-eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    (outcome,) = rule.sweep(factory(rec), params_of(rule, {}))
    assert outcome.complianceResourceId == "ml-new-bucket"
    # moto: no configuration at all; AWS would return AES256. NON_COMPLIANT either way.
    assert outcome.complianceType == "NON_COMPLIANT"
    assert outcome.annotation.startswith("No default encryption configuration")


def test_sweep_call_budget(rec: PutEvaluationsRecorder, rule: Any) -> None:
    seed_s3_sse_kms(rec.session)
    s3 = rec.session.client("s3")
    key_arn = s3.get_bucket_encryption(Bucket="ml-training-data")["ServerSideEncryptionConfiguration"][
        "Rules"
    ][0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    s3.create_bucket(Bucket="ml-training-data-2")
    s3.put_bucket_encryption(
        Bucket="ml-training-data-2",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}
            ]
        },
    )
    calls = count_calls(rec.session)
    list(rule.sweep(factory(rec), params_of(rule, {})))
    assert calls["ListBuckets"] == 1
    assert calls["GetBucketEncryption"] == 6
    assert calls["GetBucketPolicy"] == 0  # only with RequireUploadPolicy
    assert calls["GetBucketTagging"] == 0  # only with ExemptionTagKey
    # key ARN (shared by two buckets) + alias/ml-data; aws/s3 and SSE-S3 buckets need no call
    assert calls["DescribeKey"] == 2


def test_sweep_upload_policy_and_bucket_key(rec: PutEvaluationsRecorder, rule: Any) -> None:
    seed_s3_sse_kms(rec.session)
    s3 = rec.session.client("s3")
    s3.put_bucket_policy(
        Bucket="ml-training-data",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyNonKmsUploads",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::ml-training-data/*",
                        "Condition": {"StringNotEquals": {SSE_HEADER: ["aws:kms", "aws:kms:dsse"]}},
                    }
                ],
            }
        ),
    )
    raw = {"RequireUploadPolicy": "true", "RequireBucketKey": "true", **DEMO_PARAMETERS}
    verdicts = {o.complianceResourceId: o for o in rule.sweep(factory(rec), params_of(rule, raw))}
    assert verdicts["ml-training-data"].complianceType == "COMPLIANT"
    # DSSE bucket: bucket key not required, but no bucket policy
    assert verdicts["ml-model-artifacts"].complianceType == "NON_COMPLIANT"
    assert verdicts["ml-model-artifacts"].annotation.startswith("No bucket policy")


def test_sweep_aws_managed_key_by_arn(rec: PutEvaluationsRecorder, rule: Any) -> None:
    kms = rec.session.client("kms")
    aws_s3_key = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    # moto reports KeyManager CUSTOMER for its aws/s3 key; AWS reports AWS. Answer as AWS does.
    inject(
        rec.session,
        "kms.DescribeKey",
        response={"KeyMetadata": {**aws_s3_key, "KeyManager": "AWS"}},
        when=lambda params: params.get("KeyId") == aws_s3_key["Arn"],
    )
    s3 = rec.session.client("s3")
    s3.create_bucket(Bucket="ml-aws-key-by-arn")
    s3.put_bucket_encryption(
        Bucket="ml-aws-key-by-arn",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": aws_s3_key["Arn"],
                    }
                }
            ]
        },
    )
    (outcome,) = rule.sweep(factory(rec), params_of(rule, {}))
    assert outcome.complianceType == "NON_COMPLIANT"
    assert "AWS managed key" in outcome.annotation


# --------------------------------------------------------------------------------- end to end: change
def test_change_end_to_end(rec: PutEvaluationsRecorder, rule: Any) -> None:
    key = rec.session.client("kms").create_key()["KeyMetadata"]
    ci = with_key(load_ci("s3_sse_kms_cmk.json"), key["Arn"])
    records = handle(rule, change_event(ci, {**LOCAL, "RequireUploadPolicy": "true"}), session=rec.session)
    (posted,) = rec.evaluations
    assert posted["ComplianceType"] == "COMPLIANT"
    assert posted["ComplianceResourceType"] == "AWS::S3::Bucket"
    assert posted["ComplianceResourceId"] == "ml-training-data-123456789012"
    assert posted["OrderingTimestamp"] == ci["configurationItemCaptureTime"]
    assert "the bucket policy denies non-KMS uploads" in posted["Annotation"]
    assert records == [posted]
    json.dumps(records)  # the Lambda runtime must be able to marshal the result


def test_change_end_to_end_non_compliant_without_api_calls(rec: PutEvaluationsRecorder, rule: Any) -> None:
    ci = load_ci("s3_sse_s3_default.json")
    calls = count_calls(rec.session)
    handle(rule, change_event(ci, LOCAL), session=rec.session)
    (posted,) = rec.evaluations
    assert posted["ComplianceType"] == "NON_COMPLIANT"
    assert posted["Annotation"].startswith("Default encryption is SSE-S3 (AES256)")
    assert posted["OrderingTimestamp"] == "2026-11-27T11:40:02.118Z"
    assert set(calls) == {"PutEvaluations"}


def test_change_deleted_bucket_not_applicable(rec: PutEvaluationsRecorder, rule: Any) -> None:
    ci = load_ci("s3_sse_s3_default.json")
    ci["configurationItemStatus"] = "ResourceDeleted"
    handle(rule, change_event(ci, LOCAL), session=rec.session)
    assert rec.verdicts() == {"ml-scratch-123456789012": "NOT_APPLICABLE"}


def test_oversized_end_to_end(rec: PutEvaluationsRecorder, rule: Any) -> None:
    key = rec.session.client("kms").create_key()["KeyMetadata"]
    ci = with_key(load_ci("s3_sse_kms_cmk.json"), key["Arn"])
    captured = dt.datetime(2026, 11, 27, 10, 2, 31, 512000, tzinfo=dt.UTC)
    history = history_item(ci, captured)
    inject(rec.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    event = oversized_event("AWS::S3::Bucket", ci["resourceId"], {**LOCAL, "RequireBucketKey": "true"})
    records = handle(rule, event, session=rec.session)
    (posted,) = rec.evaluations
    assert posted["ComplianceType"] == "COMPLIANT"
    assert posted["ComplianceResourceId"] == ci["resourceId"]
    assert posted["OrderingTimestamp"] == "2026-11-27T10:02:31.512Z"
    assert posted["Annotation"].startswith("Default encryption is aws:kms with key arn:aws:kms:")
    json.dumps(records)


# ------------------------------------------------------------------------------- end to end: periodic
def test_periodic_end_to_end(rec: PutEvaluationsRecorder, rule: Any) -> None:
    seed_s3_sse_kms(rec.session)
    records = handle(rule, scheduled_event({**LOCAL, **DEMO_PARAMETERS}), session=rec.session)
    assert rec.verdicts() == DEMO_VERDICTS
    for posted in rec.evaluations:
        assert posted["ComplianceResourceType"] == "AWS::S3::Bucket"
        assert posted["OrderingTimestamp"] == NOTIFICATION_TIME
        assert 0 < len(posted["Annotation"]) <= 256
    assert len(records) == len(DEMO_VERDICTS)


# ------------------------------------------------------------------------------------------ fail closed
@pytest.mark.parametrize("code", ["AccessDenied", "SlowDown"])
def test_sweep_read_failure_fails_only_that_bucket(rec: PutEvaluationsRecorder, rule: Any, code: str) -> None:
    seed_s3_sse_kms(rec.session)
    inject(
        rec.session,
        "s3.GetBucketEncryption",
        error_code=code,
        status=403 if code == "AccessDenied" else 503,
        when=lambda params: params.get("Bucket") == "ml-training-data",
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(rule, scheduled_event({**LOCAL, **DEMO_PARAMETERS}), session=rec.session)
    (failure,) = info.value.failures
    assert (failure.resource_id, failure.operation, failure.code) == (
        "ml-training-data",
        "GetBucketEncryption",
        code,
    )
    assert "ml-training-data" in str(info.value)
    expected = {k: v for k, v in DEMO_VERDICTS.items() if k != "ml-training-data"}
    assert rec.verdicts() == expected  # the others were posted, the failed one was not


def test_sweep_describe_key_denied_is_a_failure_never_compliant(
    rec: PutEvaluationsRecorder, rule: Any
) -> None:
    seed_s3_sse_kms(rec.session)
    inject(rec.session, "kms.DescribeKey", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as info:
        handle(rule, scheduled_event({**LOCAL, **DEMO_PARAMETERS}), session=rec.session)
    failed = {f.resource_id for f in info.value.failures}
    assert failed == {"ml-training-data", "ml-model-artifacts"}
    assert {f.code for f in info.value.failures} == {"AccessDeniedException"}
    verdicts = rec.verdicts()
    assert not failed & set(verdicts)
    assert "COMPLIANT" not in verdicts.values()


def test_sweep_list_failure_fails_the_sweep(rec: PutEvaluationsRecorder, rule: Any) -> None:
    seed_s3_sse_kms(rec.session)
    inject(rec.session, "s3.ListBuckets", error_code="AccessDenied", status=403)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(rule, scheduled_event(LOCAL), session=rec.session)
    (failure,) = info.value.failures
    assert (failure.resource_id, failure.code) == ("*", "AccessDenied")
    assert rec.calls == []


def test_sweep_bucket_deleted_after_listing_is_skipped(rec: PutEvaluationsRecorder, rule: Any) -> None:
    seed_s3_sse_kms(rec.session)
    inject(
        rec.session,
        "s3.GetBucketEncryption",
        error_code="NoSuchBucket",
        status=404,
        when=lambda params: params.get("Bucket") == "ml-scratch",
    )
    outcomes = list(rule.sweep(factory(rec), params_of(rule, {})))
    assert "ml-scratch" not in {o.complianceResourceId for o in outcomes}
    assert len(outcomes) == 4


def test_change_describe_key_denied_posts_nothing(rec: PutEvaluationsRecorder, rule: Any) -> None:
    # A key in another account whose key policy does not let this account describe it.
    ci = with_key(
        load_ci("s3_sse_kms_cmk.json"),
        CROSS_ACCOUNT_KEY,
    )
    inject(rec.session, "kms.DescribeKey", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as info:
        handle(rule, change_event(ci, LOCAL), session=rec.session)
    (failure,) = info.value.failures
    assert (failure.resource_id, failure.operation, failure.code) == (
        "ml-training-data-123456789012",
        "DescribeKey",
        "AccessDeniedException",
    )
    assert rec.calls == []


def test_change_malformed_ci_posts_nothing(rec: PutEvaluationsRecorder, rule: Any) -> None:
    ci = load_ci("s3_sse_kms_cmk.json")
    del ci["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"]["rules"][0][
        "applyServerSideEncryptionByDefault"
    ]["sseAlgorithm"]
    with pytest.raises(EvaluationIncomplete) as info:
        handle(rule, change_event(ci, LOCAL), session=rec.session)
    assert info.value.failures[0].code == "MalformedConfigurationItem"
    assert rec.calls == []


# ------------------------------------------------------------------------------------ bad parameters
@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ({"KmsKeyArns": "dummy-arn"}, "KmsKeyArns"),
        ({"KmsKeyArns": "arn:aws:kms:us-east-1:123456789012:alias/ml-data"}, "KmsKeyArns"),
        ({"RequireCustomerManagedKey": "yes"}, "RequireCustomerManagedKey"),
        ({"RequireUploadPolicy": "1"}, "RequireUploadPolicy"),
        ({"RequireBucketKeys": "true"}, "RequireBucketKeys"),
    ],
)
@pytest.mark.parametrize("trigger", ["change", "periodic"])
def test_invalid_parameter_posts_nothing(
    rec: PutEvaluationsRecorder, rule: Any, raw: dict[str, str], name: str, trigger: str
) -> None:
    seed_s3_sse_kms(rec.session)
    parameters = {**LOCAL, **raw}
    event = (
        change_event(load_ci("s3_sse_s3_default.json"), parameters)
        if trigger == "change"
        else scheduled_event(parameters)
    )
    with pytest.raises(InvalidParametersError, match=name):
        handle(rule, event, session=rec.session)
    assert rec.calls == []


def test_catalog_metadata_matches_the_rule(rule: Any) -> None:
    spec = get(RULE_NAME)
    assert spec.resource_types == ("AWS::S3::Bucket",)
    assert spec.periodic == "TwentyFour_Hours"
    assert spec.parameter_names == {p.name for p in rule.parameter_specs()}
    defaults = {p.name: p.default for p in rule.parameter_specs() if p.default is not None}
    assert spec.input_parameters == defaults
    assert spec.optional_parameters == {"KmsKeyArns": "", "ExemptionTagKey": ""}
