"""Unit tests of S3_BUCKET_SSE_KMS_ENFORCED, following the scenarios of its module docstring.

Run by pytest and by ``rdk test-local`` (cwd rules/, only this folder on sys.path).

Sources of the shapes and verdicts used here:
* CI property names: awslabs/aws-config-resource-schema, config/properties/resource-types/
  AWS::S3::Bucket.properties.json (supplementaryConfiguration.ServerSideEncryptionConfiguration.rules
  .applyServerSideEncryptionByDefault.{sseAlgorithm,kmsMasterKeyID}, .rules.bucketKeyEnabled).
* The rdk sample CI (rdk/template/example_ci/AWS_S3_Bucket.json) -> tests/fixtures/ci/
  s3_rdk_sample_no_encryption.json verbatim; the other s3_*.json fixtures are that sample with an
  encryption configuration added in the schema's shape (one with supplementary values as JSON strings).
* AWS's own rdklib rule S3_DEFAULT_ENCRYPTION_KMS and its test (Amazon-copyrighted, in the fork
  praghu1/aws-config-rules, python/S3_DEFAULT_ENCRYPTION_KMS/S3_DEFAULT_ENCRYPTION_KMS_test.py): same CI
  shape, AES256 with ``kmsMasterKeyID: None`` is NON_COMPLIANT, a key ARN outside KmsKeyArns is
  NON_COMPLIANT.
* https://docs.aws.amazon.com/AmazonS3/latest/API/API_ServerSideEncryptionByDefault.html -- no
  KMSMasterKeyID means aws/s3; KMSMasterKeyID may be a key id, key ARN or alias; valid algorithms.
* https://docs.aws.amazon.com/systems-manager-automation-runbooks/latest/userguide/automation-aws-enableS3bucketkeys.html
  -- "S3 Bucket Keys aren't supported for DSSE-KMS": RequireBucketKey never fails a DSSE bucket.
* https://docs.aws.amazon.com/sdk-for-go/v1/developer-guide/s3-example-enforce-server-side-encryption.html
  (awsdocs/aws-doc-sdk-examples RequireServerEncryption) -- Deny s3:PutObject on bucket/* with
  StringNotEquals s3:x-amz-server-side-encryption aws:kms enforces KMS uploads.
* https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_examples_s3.html --
  the Null-only Deny ("prevent unencrypted uploads") and StringNotEquals AES256: neither enforces KMS.
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rdklib import ComplianceType, InvalidParametersError

import S3_BUCKET_SSE_KMS_ENFORCED as RULE_MODULE
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.resources.s3_bucket import (
    DefaultEncryptionRule,
    S3Bucket,
    glob_covers_prefix,
    parse_encryption_configuration,
    parse_policy,
)

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ci"
RULE = RULE_MODULE.S3_BUCKET_SSE_KMS_ENFORCED()
Params = RULE_MODULE.Params
NeedKey = RULE_MODULE.NeedKey
ResolvedKey = RULE_MODULE.ResolvedKey
decide = RULE_MODULE.decide

C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0987dcba-09ba-87dc-65fe-0987654321ba"
MRK_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/mrk-1234abcd12ab34cd56ef1234567890ab"
AWS_S3_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/5b3e0e4c-3d6f-4d55-9a1b-0f8c2a7e6d11"
CROSS_ACCOUNT_KEY_ARN = "arn:aws:kms:us-east-1:444455556666:key/11112222-3333-4444-5555-666677778888"
CN_KEY_ARN = f"arn:aws-cn:kms:cn-north-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GOV_KEY_ARN = f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DOC_KEY_ARN = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
AWS_SAMPLE_KEY_ARN = "arn:aws:kms:us-west-2:123456789000:key/a3175963-d26f-4601-80d5-1959c9347f78"
CUSTOMER = ResolvedKey(KEY_ARN, "CUSTOMER")
AWS_MANAGED = ResolvedKey(AWS_S3_KEY_ARN, "AWS")
BUCKET = "ml-training-data-123456789012"
SSE = "s3:x-amz-server-side-encryption"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def enc(algorithm: str, key: str | None = None, bucket_key: bool = False) -> DefaultEncryptionRule:
    return DefaultEncryptionRule(algorithm, key, bucket_key)


def bucket(
    *rules: DefaultEncryptionRule, policy: dict[str, Any] | None = None, none: bool = False
) -> S3Bucket:
    return S3Bucket(
        name=BUCKET,
        arn=f"arn:aws:s3:::{BUCKET}",
        encryption_rules=None if none else tuple(rules),
        policy_text=None if policy is None else json.dumps(policy),
    )


def statement(**overrides: Any) -> dict[str, Any]:
    """The AWS-documented enforcing statement (Go SDK guide), with overrides (None removes a key)."""
    stmt: dict[str, Any] = {
        "Sid": "DenyNonKmsUploads",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
    }
    for key, value in overrides.items():
        if value is None:
            stmt.pop(key, None)
        else:
            stmt[key] = value
    return stmt


def policy(*statements: dict[str, Any], single: bool = False) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements[0] if single else list(statements)}


TLS_ONLY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def client_error(code: str, operation: str = "DescribeKey") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"fake {code}"}}, operation)


class FakeKms:
    """DescribeKey over a dict of reference -> KeyMetadata (or an error code to raise)."""

    def __init__(self, keys: dict[str, Any], calls: list[tuple[str | None, str]], region: str | None) -> None:
        self.keys, self.calls, self.region = keys, calls, region

    def describe_key(self, KeyId: str) -> dict[str, Any]:
        self.calls.append((self.region, KeyId))
        found = self.keys.get(KeyId, "NotFoundException")
        if isinstance(found, str):
            raise client_error(found)
        return {"KeyMetadata": found}


class FakeClients:
    """The ClientFactory surface the rule uses on the change path (build_client('kms', region=...))."""

    def __init__(self, keys: dict[str, Any] | None = None) -> None:
        self.keys = keys or {}
        self.calls: list[tuple[str | None, str]] = []

    def build_client(self, service: str, region: str | None = None, assume_role_mode: bool = True) -> FakeKms:
        if service != "kms":
            raise AssertionError(f"the change path must not call {service}")
        return FakeKms(self.keys, self.calls, region)


def metadata(arn: str, manager: str = "CUSTOMER") -> dict[str, Any]:
    return {"Arn": arn, "KeyId": arn.rsplit("/", 1)[1], "KeyManager": manager, "KeyState": "Enabled"}


# ---------------------------------------------------------------------------------------- Scenario 1
class ParameterTest(unittest.TestCase):
    def test_defaults(self) -> None:
        params = RULE.evaluate_parameters({})
        self.assertEqual(params.rule, Params(True, frozenset(), False, False))
        self.assertIsNone(params.exemption_tag_key)

    def test_valid_values(self) -> None:
        cases = {
            "uuid and mrk, spaces around": (
                {"KmsKeyArns": f" {KEY_ARN} , {MRK_ARN}"},
                Params(kms_key_arns=frozenset({KEY_ARN, MRK_ARN})),
            ),
            # The valid ARN of AWS's own S3_DEFAULT_ENCRYPTION_KMS test.
            "aws sample": (
                {"KmsKeyArns": AWS_SAMPLE_KEY_ARN},
                Params(kms_key_arns=frozenset({AWS_SAMPLE_KEY_ARN})),
            ),
            "other partitions": (
                {"KmsKeyArns": f"{CN_KEY_ARN},{GOV_KEY_ARN}"},
                Params(
                    kms_key_arns=frozenset(
                        {
                            CN_KEY_ARN,
                            GOV_KEY_ARN,
                        }
                    )
                ),
            ),
            "booleans any case, JSON booleans": (
                {
                    "RequireCustomerManagedKey": "FALSE",
                    "RequireBucketKey": True,
                    "RequireUploadPolicy": "True",
                },
                Params(False, frozenset(), True, True),
            ),
            "empty optional": ({"KmsKeyArns": "", "ExemptionTagKey": ""}, Params()),
        }
        for label, (raw, expected) in cases.items():
            with self.subTest(label):
                self.assertEqual(RULE.evaluate_parameters(raw).rule, expected)

    def test_invalid_values_name_the_parameter(self) -> None:
        cases = {
            # AWS's own rule rejected "dummy-arn"; we also reject what it let through (not a key ARN).
            "KmsKeyArns": [
                "dummy-arn",
                f"dummy-arn,{KEY_ARN}",
                "arn:aws:kms:us-west-2:123456789000:key/32131231-53434-5342-80d5-112137654365",
                "1234abcd-12ab-34cd-56ef-1234567890ab",
                f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/ml-data",
                "arn:aws:kms:us-east-1:12345:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                f"{KEY_ARN},,{MRK_ARN}",
                KEY_ARN.upper(),
                "arn:aws:s3:::bucket",
            ],
            "RequireCustomerManagedKey": ["yes", "1"],
            "RequireBucketKey": ["on"],
            "RequireUploadPolicy": ["maybe"],
            "ExemptionTagKey": ["aws:reserved"],
        }
        for name, values in cases.items():
            for value in values:
                with self.subTest(name=name, value=value), self.assertRaises(InvalidParametersError) as ctx:
                    RULE.evaluate_parameters({name: value})
                self.assertIn(name, str(ctx.exception))

    def test_unknown_parameter_is_named(self) -> None:
        with self.assertRaises(InvalidParametersError) as ctx:
            RULE.evaluate_parameters({"KmsKeyArn": KEY_ARN})  # typo: a silently weakened control
        self.assertIn("KmsKeyArn", str(ctx.exception))


# ------------------------------------------------------------------------------------- Scenarios 4-16
class DecisionTableTest(unittest.TestCase):
    """decide() without mocks: (label, bucket, params, known keys, expected verdict or NeedKey)."""

    CASES: tuple[tuple[str, S3Bucket, Any, dict[str, Any], Any], ...] = (
        # Scenario 4/5: no KMS default
        ("no configuration", bucket(none=True), Params(), {}, NC),
        ("configuration without rules", bucket(), Params(), {}, NC),
        ("SSE-S3 (AWS default since 2023)", bucket(enc("AES256")), Params(), {}, NC),
        ("SSE-S3, AWS sample kmsMasterKeyID None", bucket(enc("AES256", None)), Params(False), {}, NC),
        ("aws:fsx (botocore enum, not KMS)", bucket(enc("aws:fsx")), Params(False), {}, NC),
        ("unknown algorithm", bucket(enc("FOO")), Params(False), {}, NC),
        (
            "case matters: AWS:KMS is not a value S3 knows",
            bucket(enc("AWS:KMS", KEY_ARN)),
            Params(False),
            {},
            NC,
        ),
        # Scenario 6: aws/s3 known without a call
        ("aws:kms without key = aws/s3", bucket(enc("aws:kms")), Params(), {}, NC),
        ("dsse without key = aws/s3", bucket(enc("aws:kms:dsse")), Params(), {}, NC),
        ("alias/aws/s3 name", bucket(enc("aws:kms", "alias/aws/s3")), Params(), {}, NC),
        (
            "alias/aws/s3 ARN",
            bucket(enc("aws:kms", f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/s3")),
            Params(),
            {},
            NC,
        ),
        ("aws/s3 allowed when CMK not required", bucket(enc("aws:kms")), Params(False), {}, C),
        (
            "alias/aws/s3 allowed when CMK not required",
            bucket(enc("aws:kms", "alias/aws/s3")),
            Params(False),
            {},
            C,
        ),
        # Scenario 7: the key manager needs DescribeKey
        ("key ARN: needs DescribeKey", bucket(enc("aws:kms", KEY_ARN)), Params(), {}, NeedKey(KEY_ARN)),
        ("key ARN, customer managed", bucket(enc("aws:kms", KEY_ARN)), Params(), {KEY_ARN: CUSTOMER}, C),
        (
            "key ARN of an AWS managed key",
            bucket(enc("aws:kms", AWS_S3_KEY_ARN)),
            Params(),
            {AWS_S3_KEY_ARN: AWS_MANAGED},
            NC,
        ),
        (
            "unknown KeyManager is not CUSTOMER",
            bucket(enc("aws:kms", KEY_ARN)),
            Params(),
            {KEY_ARN: ResolvedKey(KEY_ARN, "PARTNER")},
            NC,
        ),
        # The three KMSMasterKeyID forms of API_ServerSideEncryptionByDefault.
        (
            "doc key id",
            bucket(enc("aws:kms", "1234abcd-12ab-34cd-56ef-1234567890ab")),
            Params(),
            {},
            NeedKey("1234abcd-12ab-34cd-56ef-1234567890ab"),
        ),
        (
            "doc key ARN",
            bucket(enc("aws:kms", DOC_KEY_ARN)),
            Params(),
            {},
            NeedKey(DOC_KEY_ARN),
        ),
        ("doc alias", bucket(enc("aws:kms", "alias/alias-name")), Params(), {}, NeedKey("alias/alias-name")),
        (
            "alias resolving to a customer key",
            bucket(enc("aws:kms", "alias/ml-data")),
            Params(),
            {"alias/ml-data": CUSTOMER},
            C,
        ),
        (
            "any KMS key, nothing required: 0 calls",
            bucket(enc("aws:kms", "alias/ml-data")),
            Params(False),
            {},
            C,
        ),
        # Scenario 8/9: KmsKeyArns
        (
            "key ARN not listed: 0 calls",
            bucket(enc("aws:kms", OTHER_KEY_ARN)),
            Params(kms_key_arns=frozenset({KEY_ARN})),
            {},
            NC,
        ),
        (
            "AWS sample: dummy key ARN not listed",
            bucket(enc("aws:kms", "arn:aws:kms:us-west-2:123456789000:key/dummy-key")),
            Params(
                False,
                frozenset({AWS_SAMPLE_KEY_ARN}),
            ),
            {},
            NC,
        ),
        (
            "key ARN listed, CMK not required: 0 calls",
            bucket(enc("aws:kms", KEY_ARN)),
            Params(False, frozenset({KEY_ARN})),
            {},
            C,
        ),
        (
            "key ARN listed, CMK required: DescribeKey",
            bucket(enc("aws:kms", KEY_ARN)),
            Params(kms_key_arns=frozenset({KEY_ARN})),
            {},
            NeedKey(KEY_ARN),
        ),
        (
            "alias resolving to a listed key",
            bucket(enc("aws:kms", "alias/ml-data")),
            Params(False, frozenset({KEY_ARN})),
            {"alias/ml-data": CUSTOMER},
            C,
        ),
        (
            "alias resolving to an unlisted key",
            bucket(enc("aws:kms", "alias/ml-data")),
            Params(False, frozenset({OTHER_KEY_ARN})),
            {"alias/ml-data": CUSTOMER},
            NC,
        ),
        (
            "aws/s3 with a list, CMK not required: resolve alias/aws/s3",
            bucket(enc("aws:kms")),
            Params(False, frozenset({KEY_ARN})),
            {},
            NeedKey("alias/aws/s3"),
        ),
        (
            "multi-Region key ARN listed",
            bucket(enc("aws:kms", MRK_ARN)),
            Params(kms_key_arns=frozenset({MRK_ARN})),
            {MRK_ARN: ResolvedKey(MRK_ARN, "CUSTOMER")},
            C,
        ),
        (
            "multi-Region replica ARN in another Region is another ARN",
            bucket(enc("aws:kms", MRK_ARN.replace("us-east-1", "eu-west-1"))),
            Params(kms_key_arns=frozenset({MRK_ARN})),
            {},
            NC,
        ),
        (
            "cross-account customer key, described",
            bucket(enc("aws:kms", CROSS_ACCOUNT_KEY_ARN)),
            Params(),
            {CROSS_ACCOUNT_KEY_ARN: ResolvedKey(CROSS_ACCOUNT_KEY_ARN, "CUSTOMER")},
            C,
        ),
        # Scenario 10
        (
            "key does not exist",
            bucket(enc("aws:kms", "alias/deleted")),
            Params(),
            {"alias/deleted": None},
            NC,
        ),
        # Scenarios 12/13: bucket keys
        (
            "bucket key off, required",
            bucket(enc("aws:kms", KEY_ARN, False)),
            Params(require_bucket_key=True),
            {KEY_ARN: CUSTOMER},
            NC,
        ),
        (
            "bucket key off fails before any call",
            bucket(enc("aws:kms", KEY_ARN, False)),
            Params(require_bucket_key=True),
            {},
            NC,
        ),
        (
            "bucket key on, required",
            bucket(enc("aws:kms", KEY_ARN, True)),
            Params(require_bucket_key=True),
            {KEY_ARN: CUSTOMER},
            C,
        ),
        (
            "DSSE: bucket keys unsupported, never required",
            bucket(enc("aws:kms:dsse", KEY_ARN, False)),
            Params(require_bucket_key=True),
            {KEY_ARN: CUSTOMER},
            C,
        ),
        ("bucket key off, not required", bucket(enc("aws:kms", KEY_ARN, False)), Params(False), {}, C),
        # Scenarios 14/15: upload policy
        (
            "no policy",
            bucket(enc("aws:kms", KEY_ARN)),
            Params(require_upload_policy=True),
            {KEY_ARN: CUSTOMER},
            NC,
        ),
        (
            "TLS-only policy (rdk sample's kind)",
            bucket(enc("aws:kms", KEY_ARN), policy=policy(TLS_ONLY)),
            Params(require_upload_policy=True),
            {},
            NC,
        ),
        (
            "enforcing policy",
            bucket(enc("aws:kms", KEY_ARN), policy=policy(TLS_ONLY, statement())),
            Params(require_upload_policy=True),
            {KEY_ARN: CUSTOMER},
            C,
        ),
        (
            "enforcing policy, single Statement object",
            bucket(enc("aws:kms", KEY_ARN), policy=policy(statement(), single=True)),
            Params(False, require_upload_policy=True),
            {},
            C,
        ),
        (
            "policy not required: any policy",
            bucket(enc("aws:kms", KEY_ARN), policy=policy(TLS_ONLY)),
            Params(False),
            {},
            C,
        ),
        # Several rules: every default must hold.
        (
            "two defaults, one SSE-S3",
            bucket(enc("aws:kms", KEY_ARN), enc("AES256")),
            Params(False),
            {},
            NC,
        ),
    )

    def test_table(self) -> None:
        for label, case_bucket, params, keys, expected in self.CASES:
            with self.subTest(label):
                outcome = decide(case_bucket, params, keys)
                if isinstance(expected, NeedKey):
                    self.assertEqual(outcome, expected)
                    continue
                self.assertIsInstance(outcome, RULE_MODULE.Verdict)
                self.assertEqual(outcome.compliance, expected, outcome.annotation)
                self.assertTrue(outcome.annotation)
                self.assertLessEqual(len(outcome.annotation), 256)

    def test_non_compliant_annotations_say_what_to_do(self) -> None:
        for label, case_bucket, params, keys, expected in self.CASES:
            if expected != NC:
                continue
            with self.subTest(label):
                annotation = decide(case_bucket, params, keys).annotation
                self.assertRegex(annotation, r"\b(Set|Enable|Add)\b")

    def test_annotations_fit_with_the_longest_inputs(self) -> None:
        long_alias = "alias/" + "a" * 250
        long_arn = f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:alias/" + "b" * 250
        cases = [
            (bucket(enc("x" * 300)), Params(), {}),
            (bucket(enc("aws:kms", long_alias)), Params(), {long_alias: None}),
            (bucket(enc("aws:kms", long_alias)), Params(), {long_alias: ResolvedKey(long_arn, "AWS")}),
            (bucket(enc("aws:kms", long_alias)), Params(), {long_alias: ResolvedKey(long_arn, "Z" * 300)}),
            (bucket(enc("aws:kms", long_arn)), Params(False, frozenset({KEY_ARN})), {long_arn: CUSTOMER}),
            (bucket(enc("aws:kms", "alias/aws/" + "c" * 250)), Params(), {}),
            (bucket(enc("aws:kms:dsse", long_alias)), Params(False, require_bucket_key=True), {}),
            (
                bucket(enc("aws:kms:dsse", long_alias), policy=policy(statement())),
                Params(False, require_bucket_key=True, require_upload_policy=True),
                {},
            ),
        ]
        for index, (case_bucket, params, keys) in enumerate(cases):
            with self.subTest(index):
                outcome = decide(case_bucket, params, keys)
                self.assertLessEqual(len(outcome.annotation), 256, outcome.annotation)

    def test_compliant_dsse_says_why_the_bucket_key_is_not_required(self) -> None:
        outcome = decide(
            bucket(enc("aws:kms:dsse", KEY_ARN)), Params(require_bucket_key=True), {KEY_ARN: CUSTOMER}
        )
        self.assertEqual(outcome.compliance, C)
        self.assertIn("bucket keys do not apply to DSSE-KMS", outcome.annotation)


class UploadPolicyTest(unittest.TestCase):
    """Which statements make RequireUploadPolicy hold (Scenario 15) and which do not (module docstring)."""

    def test_statements(self) -> None:
        objects = f"arn:aws:s3:::{BUCKET}/*"
        cases: list[tuple[str, dict[str, Any], bool]] = [
            ("AWS SDK guide: StringNotEquals aws:kms", statement(), True),
            (
                "both KMS algorithms",
                statement(
                    Condition={
                        "StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]}
                    }
                ),
                True,
            ),
            (
                "DSSE only",
                statement(Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms:dsse"}}),
                True,
            ),
            (
                "condition key case-insensitive",
                statement(Condition={"StringNotEquals": {"S3:X-Amz-Server-Side-Encryption": "aws:kms"}}),
                True,
            ),
            (
                "key-id key in the same block (still denies every non-KMS upload)",
                statement(
                    Condition={
                        "StringNotEquals": {
                            "s3:x-amz-server-side-encryption": "aws:kms",
                            "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN,
                        }
                    }
                ),
                True,
            ),
            ("Principal AWS *", statement(Principal={"AWS": "*"}), True),
            ("Principal AWS [*]", statement(Principal={"AWS": ["*"]}), True),
            ("Action s3:Put*", statement(Action="s3:Put*"), True),
            ("Action s3:*", statement(Action="s3:*"), True),
            ("Action *", statement(Action="*"), True),
            ("Action list, case-insensitive", statement(Action=["s3:GetObject", "S3:PUTOBJECT"]), True),
            ("NotAction not covering PutObject", statement(Action=None, NotAction=["s3:GetObject"]), True),
            ("Resource arn:aws:s3:::*", statement(Resource="arn:aws:s3:::*"), True),
            ("Resource *", statement(Resource="*"), True),
            ("Resource bucket prefix wildcard", statement(Resource="arn:aws:s3:::ml-training-*"), True),
            ("Resource bucket/?*", statement(Resource=f"arn:aws:s3:::{BUCKET}/?*"), True),
            (
                "Resource list with bucket and objects",
                statement(Resource=[f"arn:aws:s3:::{BUCKET}", objects]),
                True,
            ),
            ("no Condition: every upload denied", statement(Condition=None), True),
            # --- not enough ---
            (
                "AWS SCP example: Null only (AES256 header passes)",
                statement(Condition={"Null": {"s3:x-amz-server-side-encryption": "true"}}),
                False,
            ),
            (
                "AWS SCP example: StringNotEquals AES256",
                statement(Condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}),
                False,
            ),
            (
                "AES256 among the allowed values",
                statement(Condition={"StringNotEquals": {SSE: ["aws:kms", "AES256"]}}),
                False,
            ),
            (
                "IfExists: SSE-C and header-less uploads pass",
                statement(Condition={"StringNotEqualsIfExists": {SSE: "aws:kms"}}),
                False,
            ),
            (
                "ForAnyValue set operator",
                statement(
                    Condition={"ForAnyValue:StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}
                ),
                False,
            ),
            (
                "extra condition narrows the Deny",
                statement(
                    Condition={
                        "StringNotEquals": {
                            "s3:x-amz-server-side-encryption": "aws:kms",
                            "aws:SourceVpce": "vpce-1",
                        }
                    }
                ),
                False,
            ),
            (
                "second operator narrows the Deny",
                statement(
                    Condition={
                        "StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                        "Bool": {"aws:SecureTransport": "true"},
                    }
                ),
                False,
            ),
            ("Effect Allow", statement(Effect="Allow"), False),
            ("one principal only", statement(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/etl"}), False),
            (
                "NotPrincipal",
                statement(Principal=None, NotPrincipal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
                False,
            ),
            ("Action GetObject", statement(Action="s3:GetObject"), False),
            ("NotAction covering PutObject", statement(Action=None, NotAction="s3:Put*"), False),
            ("bucket ARN only", statement(Resource=f"arn:aws:s3:::{BUCKET}"), False),
            ("a prefix only", statement(Resource=f"arn:aws:s3:::{BUCKET}/data/*"), False),
            ("another bucket", statement(Resource="arn:aws:s3:::other-bucket/*"), False),
            ("resource ARN is case-sensitive", statement(Resource=f"arn:aws:s3:::{BUCKET.upper()}/*"), False),
            ("NotResource", statement(Resource=None, NotResource=f"arn:aws:s3:::{BUCKET}/public/*"), False),
        ]
        target = bucket(enc("aws:kms", KEY_ARN))
        for label, stmt, expected in cases:
            with self.subTest(label):
                (parsed,) = parse_policy(json.dumps(policy(stmt)))
                self.assertEqual(RULE_MODULE.denies_non_kms_uploads(parsed, target), expected)

    def test_malformed_policy_is_an_error_not_a_verdict(self) -> None:
        for text in ("{not json", '{"Statement": 3}', "[]", '{"Version": "2012-10-17"}'):
            broken = S3Bucket(BUCKET, f"arn:aws:s3:::{BUCKET}", (enc("aws:kms", KEY_ARN),), text)
            with self.subTest(text), self.assertRaises(MalformedConfigurationItem):
                decide(broken, Params(False, require_upload_policy=True), {})

    def test_glob_covers_prefix(self) -> None:
        prefix = "arn:aws:s3:::b/"
        cases = {
            "arn:aws:s3:::b/*": True,
            "arn:aws:s3:::*": True,
            "*": True,
            "arn:aws:s3:::b*": True,
            "arn:*:s3:::b/*": True,
            "arn:aws:s3:::?/*": True,
            "arn:aws:s3:::b/?*": True,
            "arn:aws:s3:::b/*?": True,
            "arn:aws:s3:::b/?": False,
            "arn:aws:s3:::b/": False,
            "arn:aws:s3:::b": False,
            "arn:aws:s3:::b/x*": False,
            "arn:aws:s3:::c/*": False,
            "arn:aws:s3:::b/*/*": False,
        }
        for pattern, expected in cases.items():
            with self.subTest(pattern):
                self.assertEqual(glob_covers_prefix(pattern, prefix), expected)


class ShapeTest(unittest.TestCase):
    def test_ci_and_api_shapes_give_the_same_rules(self) -> None:
        ci_shape = {
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyID": KEY_ARN,
                    },
                    "bucketKeyEnabled": True,
                }
            ]
        }
        api_shape = {
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": KEY_ARN,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        }
        expected = (enc("aws:kms", KEY_ARN, True),)
        self.assertEqual(parse_encryption_configuration(ci_shape, "ci"), expected)
        self.assertEqual(parse_encryption_configuration(json.dumps(ci_shape), "ci"), expected)
        self.assertEqual(parse_encryption_configuration(api_shape, "api"), expected)

    def test_absent_bucket_key_and_blocked_types_rule(self) -> None:
        shape = {
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}},
                {"BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}},
            ]
        }
        self.assertEqual(parse_encryption_configuration(shape, "api"), (enc("AES256"),))
        self.assertIsNone(parse_encryption_configuration(None, "api"))

    def test_malformed_shapes_raise(self) -> None:
        for shape in (
            {"rules": [{"applyServerSideEncryptionByDefault": {"kmsMasterKeyID": KEY_ARN}}]},
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": 5}}]},
            {"rules": "AES256"},
            {
                "rules": [
                    {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": 3}
                ]
            },
            "[1]",
        ):
            with self.subTest(shape), self.assertRaises(MalformedConfigurationItem):
                parse_encryption_configuration(shape, "ci")


# ---------------------------------------------------------------- change trigger on real CI shapes
class ChangeEvaluationTest(unittest.TestCase):
    def evaluate(self, ci: dict[str, Any], raw_params: dict[str, Any], clients: FakeClients) -> Any:
        (evaluation,) = RULE.evaluate_change({}, clients, ci, raw_params)
        self.assertLessEqual(len(evaluation.annotation), 256)
        return evaluation

    def test_fixtures(self) -> None:
        customer = {KEY_ARN: metadata(KEY_ARN), MRK_ARN: metadata(MRK_ARN)}
        cases = [
            # (fixture, parameters, DescribeKey answers, expected, DescribeKey calls)
            ("s3_rdk_sample_no_encryption.json", {}, {}, NC, 0),
            ("s3_sse_s3_default.json", {}, {}, NC, 0),
            ("s3_sse_s3_default.json", {"RequireCustomerManagedKey": "false"}, {}, NC, 0),
            ("s3_sse_kms_cmk.json", {}, customer, C, 1),
            ("s3_sse_kms_cmk.json", {}, {KEY_ARN: metadata(KEY_ARN, "AWS")}, NC, 1),
            ("s3_sse_kms_cmk.json", {"RequireCustomerManagedKey": "false"}, {}, C, 0),
            ("s3_sse_kms_cmk.json", {"KmsKeyArns": OTHER_KEY_ARN}, {}, NC, 0),
            ("s3_sse_kms_cmk.json", {"KmsKeyArns": f"{OTHER_KEY_ARN},{KEY_ARN}"}, customer, C, 1),
            (
                "s3_sse_kms_cmk.json",
                {"RequireUploadPolicy": "true", "RequireBucketKey": "true"},
                customer,
                C,
                1,
            ),
            ("s3_sse_kms_cmk.json", {}, {}, NC, 1),  # the key is gone: NotFoundException
            ("s3_dsse_kms_string_supplementary.json", {"RequireBucketKey": "true"}, customer, C, 1),
            ("s3_dsse_kms_string_supplementary.json", {"RequireUploadPolicy": "true"}, customer, NC, 0),
        ]
        for fixture, raw_params, keys, expected, calls in cases:
            with self.subTest(fixture=fixture, params=raw_params, keys=sorted(keys)):
                clients = FakeClients(keys)
                evaluation = self.evaluate(load(fixture), raw_params, clients)
                self.assertEqual(evaluation.complianceType, expected, evaluation.annotation)
                self.assertEqual(evaluation.complianceResourceType, "AWS::S3::Bucket")
                self.assertEqual(evaluation.complianceResourceId, load(fixture)["resourceId"])
                self.assertEqual(len(clients.calls), calls)

    def test_key_is_described_in_its_own_region(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        key = KEY_ARN.replace("us-east-1", "eu-west-1")
        ci["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"]["rules"][0][
            "applyServerSideEncryptionByDefault"
        ]["kmsMasterKeyID"] = key
        clients = FakeClients({key: metadata(key)})
        self.assertEqual(self.evaluate(ci, {}, clients).complianceType, C)
        self.assertEqual(clients.calls, [("eu-west-1", key)])

    def test_alias_resolves_in_the_bucket_region(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        ci["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"]["rules"][0][
            "applyServerSideEncryptionByDefault"
        ]["kmsMasterKeyID"] = "alias/ml-data"
        clients = FakeClients({"alias/ml-data": metadata(KEY_ARN)})
        self.assertEqual(self.evaluate(ci, {"KmsKeyArns": KEY_ARN}, clients).complianceType, C)
        self.assertEqual(clients.calls, [("us-east-1", "alias/ml-data")])

    def test_configuration_as_json_string(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        ci["configuration"] = json.dumps(ci["configuration"])
        self.assertEqual(self.evaluate(ci, {}, FakeClients({KEY_ARN: metadata(KEY_ARN)})).complianceType, C)

    def test_supplementary_policy_object_instead_of_string(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        text = ci["supplementaryConfiguration"]["BucketPolicy"]["policyText"]
        ci["supplementaryConfiguration"]["BucketPolicy"]["policyText"] = json.loads(text)
        evaluation = self.evaluate(
            ci, {"RequireUploadPolicy": "true", "RequireCustomerManagedKey": "false"}, FakeClients()
        )
        self.assertEqual(evaluation.complianceType, C)

    def test_missing_bucket_policy_item_is_no_policy(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        del ci["supplementaryConfiguration"]["BucketPolicy"]
        evaluation = self.evaluate(
            ci, {"RequireUploadPolicy": "true", "RequireCustomerManagedKey": "false"}, FakeClients()
        )
        self.assertEqual(evaluation.complianceType, NC)

    # Scenario 2
    def test_deleted_bucket_is_not_applicable(self) -> None:
        ci = load("s3_sse_s3_default.json")
        ci["configurationItemStatus"] = "ResourceDeleted"
        clients = FakeClients()
        self.assertEqual(self.evaluate(ci, {}, clients).complianceType, NA)
        self.assertEqual(clients.calls, [])

    # Scenario 3
    def test_exemption_tag(self) -> None:
        ci = load("s3_sse_s3_default.json")
        ci["tags"] = {"ml-guardrails:exempt": "public dataset mirror, approved by CISO"}
        evaluation = self.evaluate(ci, {"ExemptionTagKey": "ml-guardrails:exempt"}, FakeClients())
        self.assertEqual(evaluation.complianceType, NA)
        self.assertIn("public dataset mirror", evaluation.annotation)

    # Scenario 11
    def test_describe_key_failure_propagates(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        rule = ci["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"]["rules"][0]
        rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyID"] = CROSS_ACCOUNT_KEY_ARN
        for code in ("AccessDeniedException", "ThrottlingException"):
            with self.subTest(code), self.assertRaises(ClientError) as ctx:
                RULE.evaluate_change({}, FakeClients({CROSS_ACCOUNT_KEY_ARN: code}), ci, {})
            self.assertEqual(ctx.exception.response["Error"]["Code"], code)

    def test_describe_key_without_key_manager_is_malformed(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        with self.assertRaises(MalformedConfigurationItem):
            RULE.evaluate_change({}, FakeClients({KEY_ARN: {"Arn": KEY_ARN}}), ci, {})

    # Scenario 17
    def test_malformed_ci_raises(self) -> None:
        ci = load("s3_sse_kms_cmk.json")
        del ci["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"]["rules"][0][
            "applyServerSideEncryptionByDefault"
        ]["sseAlgorithm"]
        with self.assertRaises(MalformedConfigurationItem):
            RULE.evaluate_change({}, FakeClients(), ci, {})
        ci = load("s3_sse_kms_cmk.json")
        ci["supplementaryConfiguration"]["BucketPolicy"]["policyText"] = "{not json"
        with self.assertRaises(MalformedConfigurationItem):
            RULE.evaluate_change({}, FakeClients(), ci, {"RequireUploadPolicy": "true"})


class KeyResolverTest(unittest.TestCase):
    def test_results_and_errors_are_cached_per_invocation(self) -> None:
        clients = FakeClients({KEY_ARN: metadata(KEY_ARN), CROSS_ACCOUNT_KEY_ARN: "AccessDeniedException"})
        resolver = RULE_MODULE.KeyResolver(clients, "us-east-1")  # type: ignore[arg-type]
        self.assertEqual(resolver.resolve(KEY_ARN), CUSTOMER)
        self.assertEqual(resolver.resolve(KEY_ARN), CUSTOMER)
        self.assertIsNone(resolver.resolve("alias/missing"))
        self.assertIsNone(resolver.resolve("alias/missing"))
        for _ in range(2):
            with self.assertRaises(ClientError):
                resolver.resolve(CROSS_ACCOUNT_KEY_ARN)
        self.assertEqual(len(clients.calls), 3)


class FixtureShapeTest(unittest.TestCase):
    def test_fixtures_are_notification_shaped_cis(self) -> None:
        required = {
            "configurationItemCaptureTime",
            "configurationItemStatus",
            "resourceType",
            "resourceId",
            "ARN",
            "awsRegion",
            "awsAccountId",
            "configuration",
            "supplementaryConfiguration",
            "tags",
            "relationships",
        }
        for path in sorted(FIXTURES.glob("s3_*.json")):
            with self.subTest(path.name):
                ci = json.loads(path.read_text(encoding="utf-8"))
                self.assertLessEqual(required, set(ci))
                self.assertEqual(ci["resourceType"], "AWS::S3::Bucket")
                self.assertEqual(ci["resourceId"], ci["configuration"]["name"])
                self.assertNotIn("_source", ci)
                copy.deepcopy(ci)


if __name__ == "__main__":
    unittest.main()
