"""Runbook MlGuardrails-EnforceS3BucketSseKms (remediation of S3_BUCKET_SSE_KMS_ENFORCED), run by the local
runner against moto: NON_COMPLIANT buckets become COMPLIANT, a rerun changes nothing, bad input fails with
the runbook's message and changes nothing, an interrupted run is completed by a rerun, and the Remediation
binding in parameters.json matches the document.

Where moto 5.2.5 and AWS differ, the tests follow AWS and say so:
* A new moto bucket has no default-encryption configuration; AWS has returned SSE-S3 (AES256) since 2023.
  Both are NON_COMPLIANT and both are fixed (tested).
* moto's DescribeKey of the aws/s3 key says KeyManager CUSTOMER (AWS: AWS); the runbook refuses
  alias/aws/* by name, and a key id of an AWS managed key is injected with KeyManager AWS.
* moto's DescribeKey omits KeyUsage for symmetric keys (AWS: ENCRYPT_DECRYPT); the runbook decides on
  KeySpec and only checks KeyUsage when present.
* moto ignores ExpectedBucketOwner (AWS: 403 AccessDenied for a bucket of another account); the 403 is
  injected.
* moto drops BlockedEncryptionTypes from PutBucketEncryption (botocore's model and AWS keep it); its
  preservation is proven on the request the runbook sends, with GetBucketEncryption injected.
* moto accepts any bucket policy text (AWS: MalformedPolicy for invalid JSON, and a 20 KB limit).
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.runbooks import Execution, RunbookError, run_runbook
from ml_guardrails.testing import inject

ROOT = Path(__file__).resolve().parents[1]
RULE_NAME = "S3_BUCKET_SSE_KMS_ENFORCED"
DOCUMENT = "MlGuardrails-EnforceS3BucketSseKms"
RUNBOOK = ROOT / "remediations" / f"{DOCUMENT}.yaml"
PARAMETERS_JSON = ROOT / "rules" / RULE_NAME / "parameters.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "ml-training-data"
SID = "MlGuardrailsDenyNonKmsUploads"
UPLOAD_DENY = {
    "Sid": SID,
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:PutObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/*",
    "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]}},
}
TLS_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
READER = {
    "Sid": "TrainingRoleReads",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ml-training"},
    "Action": ["s3:GetObject", "s3:ListBucket"],
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
}
NO_CONFIG = "ServerSideEncryptionConfigurationNotFoundError"


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def key_arn(session: boto3.Session) -> str:
    kms = session.client("kms")
    key = kms.create_key(Description="ml-data customer managed key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/ml-guardrails-s3", TargetKeyId=key["KeyId"])
    return str(key["Arn"])


def make_bucket(
    session: boto3.Session,
    name: str = BUCKET,
    algorithm: str | None = None,
    key: str | None = None,
    bucket_key: bool | None = None,
    policy: dict[str, Any] | None = None,
) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket=name)
    if algorithm:
        default = {"SSEAlgorithm": algorithm, **({"KMSMasterKeyID": key} if key else {})}
        rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
        if bucket_key is not None:
            rule["BucketKeyEnabled"] = bucket_key
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [rule]})
    if policy is not None:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))


def binding() -> dict[str, Any]:
    return json.loads(PARAMETERS_JSON.read_text(encoding="utf-8"))["Parameters"]["Remediation"]


def config_parameters(resource_id: str, **overrides: str) -> dict[str, Any]:
    """The parameters AWS Config passes: RESOURCE_ID for ResourceValue bindings, StaticValue values as
    strings (one value -> the string), then ``overrides`` as a deployer would set them."""
    params: dict[str, Any] = {}
    for name, value in binding()["Parameters"].items():
        if "ResourceValue" in value:
            params[name] = resource_id
        else:
            values = value["StaticValue"]["Values"]
            params[name] = values[0] if len(values) == 1 else values
    params.update(overrides)
    return params


def run(session: boto3.Session, bucket: str = BUCKET, **overrides: str) -> Execution:
    return run_runbook(RUNBOOK, config_parameters(bucket, **overrides), session)


def verdict(session: boto3.Session, bucket: str = BUCKET, **rule_parameters: str) -> tuple[str, str]:
    rule = get(RULE_NAME).rule_class()()
    clients = ClientFactory(region=REGION, assume_role_mode=False, session=session)
    evaluations, failures = rule.run_sweep(clients, rule.evaluate_parameters(rule_parameters))
    assert not failures, failures
    (evaluation,) = [e for e in evaluations if e.complianceResourceId == bucket]
    return evaluation.complianceType, evaluation.annotation


def state(session: boto3.Session, bucket: str = BUCKET) -> tuple[Any, Any]:
    """The bucket's default-encryption configuration and policy text (None when absent)."""
    s3 = session.client("s3")
    try:
        encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    except s3.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == NO_CONFIG
        encryption = None
    try:
        policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except s3.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchBucketPolicy"
        policy = None
    return encryption, policy


def default_of(session: boto3.Session, bucket: str = BUCKET) -> dict[str, Any]:
    encryption, _ = state(session, bucket)
    assert encryption is not None
    (rule,) = encryption["Rules"]
    return {**rule["ApplyServerSideEncryptionByDefault"], "BucketKeyEnabled": rule.get("BucketKeyEnabled")}


def record_calls(session: boto3.Session) -> list[str]:
    """Every API call made through ``session`` ("s3.PutBucketPolicy"), in order. Register before any
    inject(): an injected response stops the event chain."""
    calls: list[str] = []

    def _record(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_name}.{model.name}")

    session.events.register("before-call", _record)
    return calls


def mutations(calls: list[str]) -> list[str]:
    return [c for c in calls if re.match(r"^\w+\.(Put|Create|Delete|Enable|Disable|Schedule)", c)]


def nth_call(n: int) -> Callable[[Any], bool]:
    """A ``when`` for inject(): true for the n-th matching call only (1-based)."""
    seen = [0]

    def _when(_: Any) -> bool:
        seen[0] += 1
        return seen[0] == n

    return _when


# ------------------------------------------------------------------------------ NON_COMPLIANT -> COMPLIANT
@pytest.mark.parametrize(
    ("algorithm", "key", "bucket_key", "annotation"),
    [
        # moto: a new bucket has no configuration; AWS would return AES256 (next case).
        (None, None, None, "No default encryption configuration"),
        ("AES256", None, None, "Default encryption is SSE-S3 (AES256)"),
        ("aws:kms", None, True, "AWS managed key aws/s3"),
        ("aws:kms", "alias/aws/s3", False, "AWS managed key alias/aws/s3"),
    ],
)
def test_fixes_non_kms_and_aws_managed_defaults(
    session: boto3.Session,
    key_arn: str,
    algorithm: str | None,
    key: str | None,
    bucket_key: Any,
    annotation: str,
) -> None:
    make_bucket(session, algorithm=algorithm, key=key, bucket_key=bucket_key)
    compliance, text = verdict(session)
    assert compliance == "NON_COMPLIANT"
    assert annotation in text

    execution = run(session, KmsKeyId=key_arn)

    assert execution.status == "Success", execution.failure_message
    assert default_of(session) == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
        "BucketKeyEnabled": True,
    }
    assert verdict(session, RequireBucketKey="true")[0] == "COMPLIANT"
    assert execution.outputs["SetDefaultEncryption.Changed"] is True
    before = algorithm or "none"
    assert execution.outputs["SetDefaultEncryption.Result"] == (
        f"Default encryption changed from {before} to aws:kms with key {key_arn}, S3 Bucket Key on."
    )
    assert execution.outputs["ResolveInputs.KeyArn"] == key_arn
    assert execution.outputs["MergeUploadPolicy.Result"].startswith("EnforceUploadPolicy is false")
    assert state(session)[1] is None  # no policy was created


@pytest.mark.parametrize("form", ["arn", "id", "alias", "alias_arn"])
def test_every_key_reference_form_sets_the_key_arn(session: boto3.Session, key_arn: str, form: str) -> None:
    key_id = key_arn.rsplit("/", 1)[1]
    reference = {
        "arn": key_arn,
        "id": key_id,
        "alias": "alias/ml-guardrails-s3",
        "alias_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ml-guardrails-s3",
    }[form]
    make_bucket(session, algorithm="AES256")
    execution = run(session, KmsKeyId=reference)
    assert execution.status == "Success", execution.failure_message
    # Always the key ARN (AWS recommends it: an alias resolves in the *requester's* account).
    assert default_of(session)["KMSMasterKeyID"] == key_arn
    assert verdict(session, KmsKeyArns=key_arn)[0] == "COMPLIANT"


def test_default_binding_value_is_the_alias(session: boto3.Session, key_arn: str) -> None:
    """With the parameters.json binding as shipped (KmsKeyId alias/ml-guardrails-s3) the run succeeds
    once that alias exists."""
    make_bucket(session, algorithm="AES256")
    execution = run_runbook(RUNBOOK, config_parameters(BUCKET), session)
    assert execution.status == "Success", execution.failure_message
    assert default_of(session)["KMSMasterKeyID"] == key_arn


def test_turns_on_bucket_key_and_replaces_an_alias_by_the_arn(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="aws:kms", key="alias/ml-guardrails-s3", bucket_key=False)
    assert verdict(session, RequireBucketKey="true")[0] == "NON_COMPLIANT"
    execution = run(session, KmsKeyId="alias/ml-guardrails-s3")
    assert execution.status == "Success", execution.failure_message
    assert default_of(session) == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
        "BucketKeyEnabled": True,
    }
    assert verdict(session, RequireBucketKey="true")[0] == "COMPLIANT"


def test_replaces_a_key_outside_kms_key_arns(session: boto3.Session, key_arn: str) -> None:
    other = session.client("kms").create_key(Description="legacy key")["KeyMetadata"]["Arn"]
    make_bucket(session, algorithm="aws:kms", key=other, bucket_key=True)
    assert verdict(session, KmsKeyArns=key_arn)[0] == "NON_COMPLIANT"
    assert run(session, KmsKeyId=key_arn).status == "Success"
    assert verdict(session, KmsKeyArns=key_arn)[0] == "COMPLIANT"


def test_dsse_is_never_downgraded(session: boto3.Session, key_arn: str) -> None:
    """A DSSE-KMS bucket on the AWS managed key keeps DSSE-KMS (two layers) and only gets the key; no
    bucket key is requested (S3 Bucket Keys do not apply to DSSE-KMS)."""
    make_bucket(session, algorithm="aws:kms:dsse")
    compliance, text = verdict(session)
    assert compliance == "NON_COMPLIANT"
    assert "aws/s3" in text
    execution = run(session, KmsKeyId=key_arn)
    assert execution.status == "Success", execution.failure_message
    default = default_of(session)
    assert default["SSEAlgorithm"] == "aws:kms:dsse"
    assert default["KMSMasterKeyID"] == key_arn
    assert not default["BucketKeyEnabled"]
    assert execution.outputs["SetDefaultEncryption.Result"] == (
        f"Default encryption changed from aws:kms:dsse to aws:kms:dsse with key {key_arn}."
    )
    assert verdict(session, RequireBucketKey="true")[0] == "COMPLIANT"
    second = run(session, KmsKeyId=key_arn)
    assert second.status == "Success"
    assert second.outputs["SetDefaultEncryption.Changed"] is False


def test_keeps_blocked_encryption_types(session: boto3.Session, key_arn: str) -> None:
    """PutBucketEncryption replaces the whole configuration: the runbook keeps the rule's other settings
    (here BlockedEncryptionTypes SSE-C). moto drops that field, so the current configuration is injected
    and the request is checked."""
    make_bucket(session, algorithm="AES256")
    sent: list[dict[str, Any]] = []
    session.events.register(
        "provide-client-params.s3.PutBucketEncryption", lambda params, **_: sent.append(copy.deepcopy(params))
    )
    current = {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                "BucketKeyEnabled": False,
                "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
            }
        ]
    }
    inject(
        session,
        "s3.GetBucketEncryption",
        response={"ServerSideEncryptionConfiguration": current},
        when=nth_call(1),
    )
    execution = run(session, KmsKeyId=key_arn)
    assert execution.status == "Success", execution.failure_message
    (request,) = sent
    assert request["ServerSideEncryptionConfiguration"] == {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                "BucketKeyEnabled": True,
                "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
            }
        ]
    }


# ---------------------------------------------------------------------------------------- upload policy
def test_merges_upload_deny_into_existing_policy(session: boto3.Session, key_arn: str) -> None:
    original = {"Version": "2012-10-17", "Id": "ml-data", "Statement": [TLS_DENY, READER]}
    make_bucket(session, algorithm="aws:kms", key=key_arn, bucket_key=True, policy=original)
    compliance, text = verdict(session, RequireUploadPolicy="true")
    assert compliance == "NON_COMPLIANT"
    assert text.startswith("Bucket policy does not deny uploads")

    execution = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")

    assert execution.status == "Success", execution.failure_message
    policy = json.loads(state(session)[1])
    # Nothing else changed: same Version, Id and statements, in order; ours appended.
    assert policy == {**original, "Statement": [TLS_DENY, READER, UPLOAD_DENY]}
    assert verdict(session, RequireUploadPolicy="true")[0] == "COMPLIANT"
    assert execution.outputs["MergeUploadPolicy.Result"] == (
        f"Added statement {SID} to the bucket policy (2 existing statements kept)."
    )
    assert execution.outputs["SetDefaultEncryption.Changed"] is False


def test_creates_policy_with_only_the_statement(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="AES256")
    compliance, _ = verdict(session, RequireUploadPolicy="true")
    assert compliance == "NON_COMPLIANT"
    execution = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")
    assert execution.status == "Success", execution.failure_message
    assert json.loads(state(session)[1]) == {"Version": "2012-10-17", "Statement": [UPLOAD_DENY]}
    assert execution.outputs["MergeUploadPolicy.Result"] == (
        f"Created a bucket policy with only statement {SID} (the bucket had no policy)."
    )
    assert verdict(session, RequireUploadPolicy="true", RequireBucketKey="true")[0] == "COMPLIANT"


def test_single_statement_object_policy_is_kept(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="AES256", policy={"Version": "2012-10-17", "Statement": TLS_DENY})
    assert run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true").status == "Success"
    assert json.loads(state(session)[1])["Statement"] == [TLS_DENY, UPLOAD_DENY]
    assert verdict(session, RequireUploadPolicy="true")[0] == "COMPLIANT"


def test_equivalent_statement_with_our_sid_is_accepted(session: boto3.Session, key_arn: str) -> None:
    """Same statement, written differently (Principal {"AWS": "*"}, one-item lists, other value order):
    identical for IAM, so nothing is written."""
    ours = {
        **UPLOAD_DENY,
        "Principal": {"AWS": "*"},
        "Action": ["s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{BUCKET}/*"],
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms:dsse", "aws:kms"]}},
    }
    make_bucket(session, algorithm="aws:kms", key=key_arn, bucket_key=True, policy={"Statement": [ours]})
    before = state(session)
    calls = record_calls(session)
    execution = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")
    assert execution.status == "Success", execution.failure_message
    assert (
        execution.outputs["MergeUploadPolicy.Result"]
        == f"Bucket policy already has statement {SID}: nothing changed."
    )
    assert mutations(calls) == []
    assert state(session) == before


# ------------------------------------------------------------------------------------------- idempotent
def test_second_run_changes_nothing(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="AES256", policy={"Version": "2012-10-17", "Statement": [READER]})
    first = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")
    assert first.status == "Success", first.failure_message
    before = state(session)
    calls = record_calls(session)

    second = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")

    assert second.status == "Success", second.failure_message
    assert state(session) == before
    assert mutations(calls) == []
    assert second.outputs["SetDefaultEncryption.Result"] == (
        f"Default encryption is already aws:kms with key {key_arn}, S3 Bucket Key on: nothing changed."
    )
    assert second.outputs["SetDefaultEncryption.Changed"] is False
    assert (
        second.outputs["MergeUploadPolicy.Result"]
        == f"Bucket policy already has statement {SID}: nothing changed."
    )
    assert [s.status for s in second.steps] == ["Success"] * 4
    assert verdict(session, RequireUploadPolicy="true", RequireBucketKey="true")[0] == "COMPLIANT"


# ------------------------------------------------------------------------------------------- bad input
def assert_refused(session: boto3.Session, execution: Execution, before: Any, *messages: str) -> None:
    assert execution.status == "Failed"
    assert execution.failed_step == "ResolveInputs"
    for message in messages:
        assert message in (execution.failure_message or ""), execution.failure_message
    assert state(session) == before


def test_missing_bucket(session: boto3.Session, key_arn: str) -> None:
    execution = run(session, bucket="ml-no-such-bucket", KmsKeyId=key_arn)
    assert execution.status == "Failed"
    assert (
        execution.failure_message
        == "Bucket ml-no-such-bucket does not exist (NoSuchBucket): nothing to remediate."
    )


def test_bucket_of_another_account(session: boto3.Session, key_arn: str) -> None:
    # moto ignores ExpectedBucketOwner; AWS answers 403 AccessDenied for a bucket another account owns.
    make_bucket(session, algorithm="AES256")
    before = state(session)
    inject(session, "s3.GetBucketLocation", error_code="AccessDenied", status=403)
    execution = run(session, KmsKeyId=key_arn)
    assert_refused(
        session, execution, before, f"Bucket {BUCKET} is not readable as a bucket of account {ACCOUNT}"
    )


def test_bucket_in_another_region(session: boto3.Session, key_arn: str) -> None:
    session.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="ml-eu-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    before = state(session, "ml-eu-data")
    execution = run(session, bucket="ml-eu-data", KmsKeyId=key_arn)
    assert execution.status == "Failed"
    assert execution.failure_message.startswith(
        "Bucket ml-eu-data is in eu-west-1, but this automation runs in us-east-1: run it in eu-west-1"
    )
    assert state(session, "ml-eu-data") == before


@pytest.mark.parametrize("key", ["alias/aws/s3", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/s3"])
def test_aws_managed_alias_refused(session: boto3.Session, key: str) -> None:
    make_bucket(session, algorithm="AES256")
    before = state(session)
    execution = run(session, KmsKeyId=key)
    assert_refused(session, execution, before, f"KmsKeyId {key} is an AWS managed key")


def test_aws_managed_key_by_id_refused(session: boto3.Session, key_arn: str) -> None:
    # moto says KeyManager CUSTOMER even for aws/s3; AWS says AWS. Inject AWS's answer.
    make_bucket(session, algorithm="AES256")
    before = state(session)
    metadata = session.client("kms").describe_key(KeyId=key_arn)["KeyMetadata"]
    inject(
        session,
        "kms.DescribeKey",
        response={"KeyMetadata": {**metadata, "KeyManager": "AWS", "CreationDate": "2020-01-01T00:00:00Z"}},
    )
    execution = run(session, KmsKeyId=metadata["KeyId"])
    assert_refused(session, execution, before, "is an AWS managed key (KeyManager AWS)")


def test_missing_key(session: boto3.Session) -> None:
    make_bucket(session, algorithm="AES256")
    before = state(session)
    execution = run(session, KmsKeyId="alias/ml-no-such-key")
    assert_refused(
        session, execution, before, "KMS key alias/ml-no-such-key not found in us-east-1 (NotFoundException)"
    )


def test_disabled_key(session: boto3.Session, key_arn: str) -> None:
    # moto 5.2.5 raises KeyError for DisableKey/ScheduleKeyDeletion by ARN (AWS accepts ARNs): use the id.
    session.client("kms").disable_key(KeyId=key_arn.rsplit("/", 1)[1])
    make_bucket(session, algorithm="AES256")
    before = state(session)
    execution = run(session, KmsKeyId=key_arn)
    assert_refused(
        session, execution, before, f"KMS key {key_arn} is Disabled: this runbook never enables keys"
    )


def test_key_pending_deletion(session: boto3.Session, key_arn: str) -> None:
    session.client("kms").schedule_key_deletion(KeyId=key_arn.rsplit("/", 1)[1], PendingWindowInDays=7)
    make_bucket(session, algorithm="AES256")
    before = state(session)
    execution = run(session, KmsKeyId=key_arn)
    assert_refused(session, execution, before, f"KMS key {key_arn} is PendingDeletion", "CancelKeyDeletion")


@pytest.mark.parametrize(
    ("spec", "usage"), [("RSA_2048", "ENCRYPT_DECRYPT"), ("HMAC_256", "GENERATE_VERIFY_MAC")]
)
def test_non_symmetric_key(session: boto3.Session, spec: str, usage: str) -> None:
    arn = session.client("kms").create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["Arn"]
    make_bucket(session, algorithm="AES256")
    before = state(session)
    execution = run(session, KmsKeyId=arn)
    assert_refused(
        session, execution, before, f"is {spec}/{usage}: S3 supports only symmetric encryption keys"
    )


@pytest.mark.parametrize(
    ("key", "account", "region"),
    [
        (
            "arn:aws:kms:us-east-1:444455556666:key/11112222-3333-4444-5555-666677778888",
            "444455556666",
            REGION,
        ),
        (f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/11112222-3333-4444-5555-666677778888", ACCOUNT, "eu-west-1"),
    ],
)
def test_foreign_key_refused_without_describing_it(
    session: boto3.Session, key: str, account: str, region: str
) -> None:
    make_bucket(session, algorithm="AES256")
    before = state(session)
    calls = record_calls(session)
    execution = run(session, KmsKeyId=key)
    assert_refused(session, execution, before, f"is in account {account} / Region {region}")
    assert "kms.DescribeKey" not in calls


def test_key_not_describable(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="AES256")
    before = state(session)
    inject(session, "kms.DescribeKey", error_code="AccessDeniedException")
    execution = run(session, KmsKeyId=key_arn)
    assert_refused(
        session, execution, before, "(AccessDeniedException): grant the automation role kms:DescribeKey"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BucketName", "ML_Training_Data"),  # uppercase/underscore: not a valid bucket name
        ("BucketName", "ab"),
        ("KmsKeyId", "my key"),
        ("KmsKeyId", "arn:aws:kms:us-east-1:123456789012:grant/abc"),
        ("EnforceUploadPolicy", "yes"),
        ("AutomationAssumeRole", "arn:aws:iam::123456789012:user/admin"),
    ],
)
def test_bad_parameter_fails_before_any_call(
    session: boto3.Session, key_arn: str, name: str, value: str
) -> None:
    make_bucket(session, algorithm="AES256")
    before = state(session)
    calls = record_calls(session)
    params = {"BucketName": BUCKET, "KmsKeyId": key_arn, name: value}
    with pytest.raises(RunbookError, match=f"Parameter '{name}'"):
        run_runbook(RUNBOOK, params, session)
    assert calls == []
    assert state(session) == before


def test_kms_key_id_is_required(session: boto3.Session) -> None:
    with pytest.raises(RunbookError, match="Missing required parameter 'KmsKeyId'"):
        run_runbook(RUNBOOK, {"BucketName": BUCKET}, session)


def test_conflicting_statement_with_our_sid_is_never_overwritten(
    session: boto3.Session, key_arn: str
) -> None:
    theirs = {**UPLOAD_DENY, "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}}
    make_bucket(session, algorithm="AES256", policy={"Version": "2012-10-17", "Statement": [READER, theirs]})
    before = state(session)
    calls = record_calls(session)
    execution = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")
    assert execution.status == "Failed"
    assert execution.failed_step == "MergeUploadPolicy"
    assert execution.failure_message.startswith(
        f"The bucket policy of {BUCKET} has a statement {SID} that differs from the one this runbook adds"
    )
    assert "it is never overwritten" in execution.failure_message
    # The policy step runs before the encryption step, so nothing at all changed.
    assert mutations(calls) == []
    assert state(session) == before


def test_policy_over_20_kb_is_not_written(session: boto3.Session, key_arn: str) -> None:
    # AWS rejects bucket policies over 20 KB; moto does not, so the runbook checks before writing.
    def compact(statements: list[Any]) -> int:
        return len(json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":")))

    filler = [READER]
    while compact([*filler, UPLOAD_DENY]) <= 20_480:
        filler.append({**READER, "Sid": f"Reader{len(filler):03d}"})
    assert compact(filler) < 20_480  # a policy AWS accepts, with no room for one more statement
    make_bucket(session, algorithm="AES256", policy={"Version": "2012-10-17", "Statement": filler})
    before = state(session)
    execution = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")
    assert execution.status == "Failed"
    assert "over S3's 20 KB limit" in execution.failure_message
    assert state(session) == before


def test_unreadable_policy_is_not_touched(session: boto3.Session, key_arn: str) -> None:
    # AWS never stores invalid JSON (MalformedPolicy); a corrupt answer is injected to prove the guard.
    make_bucket(session, algorithm="AES256", policy={"Version": "2012-10-17", "Statement": [READER]})
    before = state(session)
    inject(session, "s3.GetBucketPolicy", response={"Policy": "{not json"}, when=nth_call(1))
    execution = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")
    assert execution.status == "Failed"
    assert execution.failure_message.startswith(f"The bucket policy of {BUCKET} is not valid JSON")
    assert state(session) == before


# -------------------------------------------------------------------------------- faults, then a rerun
def test_encryption_fault_after_policy_merge_is_completed_by_rerun(
    session: boto3.Session, key_arn: str
) -> None:
    make_bucket(session, algorithm="AES256", policy={"Version": "2012-10-17", "Statement": [READER]})
    inject(session, "s3.PutBucketEncryption", error_code="ServiceUnavailable", status=503, when=nth_call(1))
    first = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")
    assert first.status == "Failed"
    assert first.failed_step == "SetDefaultEncryption"
    assert "ServiceUnavailable" in first.failure_message
    assert json.loads(state(session)[1])["Statement"] == [READER, UPLOAD_DENY]  # half done
    assert verdict(session, RequireUploadPolicy="true")[0] == "NON_COMPLIANT"

    second = run(session, KmsKeyId=key_arn, EnforceUploadPolicy="true")

    assert second.status == "Success", second.failure_message
    assert (
        second.outputs["MergeUploadPolicy.Result"]
        == f"Bucket policy already has statement {SID}: nothing changed."
    )
    assert second.outputs["SetDefaultEncryption.Changed"] is True
    assert json.loads(state(session)[1])["Statement"] == [READER, UPLOAD_DENY]
    assert verdict(session, RequireUploadPolicy="true", RequireBucketKey="true")[0] == "COMPLIANT"


def test_failed_verification_read_is_completed_by_rerun(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="AES256")
    # Calls to GetBucketEncryption: 1 = read, 2 = re-read after the write (fails), ...
    inject(session, "s3.GetBucketEncryption", error_code="SlowDown", status=503, when=nth_call(2))
    first = run(session, KmsKeyId=key_arn)
    assert first.status == "Failed"
    assert first.failed_step == "SetDefaultEncryption"
    second = run(session, KmsKeyId=key_arn)
    assert second.status == "Success", second.failure_message
    assert second.outputs["SetDefaultEncryption.Changed"] is False
    assert verdict(session)[0] == "COMPLIANT"


def test_write_that_did_not_take_fails_the_run(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="AES256")
    stale = {"ServerSideEncryptionConfiguration": {"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}
    ]}}  # fmt: skip
    inject(session, "s3.GetBucketEncryption", response=stale)
    execution = run(session, KmsKeyId=key_arn)
    assert execution.status == "Failed"
    assert execution.failure_message == (
        f"PutBucketEncryption on {BUCKET} did not take: default encryption is not aws:kms with key "
        f"{key_arn}, S3 Bucket Key on."
    )


def test_final_assert_catches_a_changed_key(session: boto3.Session, key_arn: str) -> None:
    """The last step re-reads GetBucketEncryption on its own (aws:assertAwsResourceProperty)."""
    make_bucket(session, algorithm="AES256")
    other = {"ServerSideEncryptionConfiguration": {"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/other"}
    }]}}  # fmt: skip
    inject(session, "s3.GetBucketEncryption", response=other, when=nth_call(3))
    execution = run(session, KmsKeyId=key_arn)
    assert execution.status == "Failed"
    assert execution.failed_step == "VerifyDefaultEncryptionKey"
    assert "alias/other" in execution.failure_message


# --------------------------------------------------------------------------------- document and binding
def runbook_doc() -> dict[str, Any]:
    return yaml.safe_load(RUNBOOK.read_text(encoding="utf-8"))


def test_binding_names_this_document_and_binds_its_inputs() -> None:
    doc = runbook_doc()
    remediation = binding()
    spec = get(RULE_NAME)
    assert spec.remediation is not None
    assert spec.remediation.target_id == DOCUMENT
    assert spec.remediation.runbook_path.name == RUNBOOK.name
    assert set(spec.remediation.parameters_for(BUCKET)) == set(config_parameters(BUCKET))
    assert remediation["TargetId"] == DOCUMENT == RUNBOOK.stem
    assert remediation["TargetType"] == "SSM_DOCUMENT"
    assert remediation["ConfigRuleName"] == RULE_NAME
    assert remediation["ResourceType"] == "AWS::S3::Bucket" == spec.resource_types[0]
    assert remediation["Automatic"] is False
    assert remediation["MaximumAutomaticAttempts"] == 3
    assert remediation["RetryAttemptSeconds"] == 60
    bound = remediation["Parameters"]
    declared = doc["parameters"]
    assert set(bound) <= set(declared)
    assert "AutomationAssumeRole" not in bound  # the deployment binds the role it creates
    required = {name for name, p in declared.items() if "default" not in p}
    assert required == {"BucketName", "KmsKeyId"}
    assert required <= set(bound)
    assert bound["BucketName"] == {"ResourceValue": {"Value": "RESOURCE_ID"}}
    assert bound["EnforceUploadPolicy"] == {"StaticValue": {"Values": ["false"]}}  # safe default


def test_static_values_pass_the_parameter_checks(session: boto3.Session) -> None:
    from ml_guardrails.runbooks import resolve_parameters

    values = resolve_parameters(runbook_doc(), config_parameters(BUCKET))
    assert values == {
        "AutomationAssumeRole": "",
        "BucketName": BUCKET,
        "KmsKeyId": "alias/ml-guardrails-s3",
        "EnforceUploadPolicy": False,
    }


def test_document_shape() -> None:
    doc = runbook_doc()
    assert doc["schemaVersion"] == "0.3"
    assert doc["assumeRole"] == "{{ AutomationAssumeRole }}"
    assert not re.match(r"^(AWS|Amazon)", DOCUMENT, re.IGNORECASE)
    for permission in (
        "s3:GetBucketLocation",
        "s3:GetEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "kms:DescribeKey",
    ):
        assert f"`{permission}`" in doc["description"]
    for name, parameter in doc["parameters"].items():
        assert parameter["type"] and parameter["description"], name
        # Boolean parameters are constrained by their type (SSM accepts only true/false for them).
        constrained = "allowedPattern" in parameter or "allowedValues" in parameter
        assert constrained or parameter["type"] == "Boolean", name
    role = doc["parameters"]["AutomationAssumeRole"]
    assert role["default"] == ""
    for good in (
        "",
        "arn:aws:iam::123456789012:role/ml-guardrails-remediation",
        "arn:aws-cn:iam::123456789012:role/x",
    ):
        assert re.search(role["allowedPattern"], good)
    steps = doc["mainSteps"]
    assert [s["name"] for s in steps] == [
        "ResolveInputs",
        "MergeUploadPolicy",
        "SetDefaultEncryption",
        "VerifyDefaultEncryptionKey",
    ]
    for step in steps:
        assert step["onFailure"] == "Abort"
        if step["action"] == "aws:executeScript":
            assert step["inputs"]["Runtime"] == "python3.11"
            assert step["inputs"]["Handler"] == "handler"
            tree = ast.parse(step["inputs"]["Script"])
            assert any(isinstance(n, ast.FunctionDef) and n.name == "handler" for n in tree.body)


def test_every_reference_resolves() -> None:
    doc = runbook_doc()
    known = set(doc["parameters"]) | {"global:ACCOUNT_ID", "global:REGION", "automation:EXECUTION_ID"}
    for step in doc["mainSteps"]:
        inputs = dict(step["inputs"])
        inputs.pop("Script", None)  # code, not a template
        for reference in re.findall(r"\{\{\s*([\w:.-]+)\s*\}\}", json.dumps(inputs)):
            assert reference in known, f"{step['name']}: {{{{ {reference} }}}}"
        # outputs of this step become known to the following steps only
        known |= {f"{step['name']}.{o['Name']}" for o in step.get("outputs", [])}
    assert set(doc["outputs"]) <= known
    assert re.findall(r"\{\{\s*([\w:.-]+)\s*\}\}", doc["assumeRole"]) == ["AutomationAssumeRole"]


def test_validator_is_clean() -> None:
    from ml_guardrails.runbooks import validate_runbook

    try:
        problems = validate_runbook(RUNBOOK)
    except (ImportError, AttributeError) as exc:  # the validator is being written in parallel
        pytest.skip(f"validator not available yet: {exc}")
    assert problems == []


def test_runs_with_the_catalogs_parameters(session: boto3.Session, key_arn: str) -> None:
    make_bucket(session, algorithm="AES256")
    remediation = get(RULE_NAME).remediation
    assert remediation is not None
    execution = run_runbook(remediation.runbook_path, remediation.parameters_for(BUCKET), session)
    assert execution.status == "Success", execution.failure_message
    assert verdict(session)[0] == "COMPLIANT"
