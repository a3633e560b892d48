"""Unit tests of S3_BUCKET_POLICY_ORG_ONLY, following the scenarios of the rule's docstring.

Runs under pytest and ``rdk test-local`` (cwd rules/, only this folder on sys.path). No AWS calls: the
change path needs none (the CI carries supplementaryConfiguration.BucketPolicy.policyText).

Fixtures (tests/fixtures/ci/): ``s3_policy_*.json`` are the repository's ``s3_sse_kms_cmk.json`` CI with
their own bucket policy text (the bucket-policy shape of AWS::S3::Bucket CIs: a JSON string, or null for
no policy). The TLS statement is the S3 User Guide's "RestrictToTLSRequestsOnly" example
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html); the organization
statement is the aws:PrincipalOrgID example of the IAM User Guide
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any, cast

from rdklib import ComplianceType, InvalidParametersError

import S3_BUCKET_POLICY_ORG_ONLY as rule
from ml_guardrails.ci import MalformedConfigurationItem

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/ci"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
ORG = "o-a1b2c3d4e5"
OWN = "123456789012"
BUCKET = "ml-feature-store-123456789012"
ARN = f"arn:aws:s3:::{BUCKET}"
PARAMS = rule.Params(organization_id=ORG)
TLS = {
    "Sid": "RestrictToTLSRequestsOnly",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [ARN, f"{ARN}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def allow(sid: str | None = None, **fields: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    statement["Resource"] = f"{ARN}/*"
    if sid:
        statement["Sid"] = sid
    statement.update(fields)
    return statement


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class NoClients:
    """The change path must make no AWS call."""

    def build_client(self, service: str, region: str | None = None, assume_role_mode: bool = True) -> Any:
        raise AssertionError(f"the change path must not call {service}")


# ---------------------------------------------------------------------------------------- Scenario 1
class ParameterTest(unittest.TestCase):
    def test_valid(self) -> None:
        params = rule.S3_BUCKET_POLICY_ORG_ONLY().evaluate_parameters({"OrganizationId": ORG})
        self.assertEqual(params.rule, PARAMS)

    def test_invalid_or_missing_names_the_parameter(self) -> None:
        for raw in (
            {},
            {"OrganizationId": ""},
            {"OrganizationId": "o-short"},
            {"OrganizationId": "O-A1B2C3D4E5"},
            {"OrganizationId": "r-a1b2c3d4e5"},
            {"OrganizationId": ORG + "x" * 30},
        ):
            with self.subTest(raw=raw), self.assertRaises(InvalidParametersError) as caught:
                rule.S3_BUCKET_POLICY_ORG_ONLY().evaluate_parameters(raw)
            self.assertIn("OrganizationId", str(caught.exception))

    def test_unknown_parameter(self) -> None:
        with self.assertRaises(InvalidParametersError):
            rule.S3_BUCKET_POLICY_ORG_ONLY().evaluate_parameters({"OrganizationId": ORG, "OrgId": ORG})


# ------------------------------------------------------------------------------------ Scenarios 4-8
class DecisionTableTest(unittest.TestCase):
    """(policy text, expected compliance, annotation fragments) -- pure, no I/O."""

    CASES: tuple[tuple[str, str | None, str, tuple[str, ...]], ...] = (
        ("no policy", None, NC, ("No bucket policy", "aws:SecureTransport")),
        ("TLS deny only (AWS docs)", policy(TLS), C, ("organization o-a1b2c3d4e5",)),
        (
            "org-pinned Allow (AWS docs) + TLS",
            policy(allow("Org", Condition={"StringEquals": {"aws:PrincipalOrgID": [ORG]}}), TLS),
            C,
            (),
        ),
        (
            "public read + TLS",
            policy(allow("PublicRead"), TLS),
            NC,
            ("PublicRead", "aws:PrincipalOrgID o-a1b2c3d4e5", "Add that condition"),
        ),
        ("AWS:* principal", policy(allow("A", Principal={"AWS": "*"}), TLS), NC, ("A",)),
        (
            "other account root",
            policy(allow("Partner", Principal={"AWS": "arn:aws:iam::111122223333:root"}), TLS),
            NC,
            ("Partner",),
        ),
        ("other account id", policy(allow(None, Principal={"AWS": "111122223333"}), TLS), NC, ("#0",)),
        (
            "own account role",
            policy(allow("Own", Principal={"AWS": f"arn:aws:iam::{OWN}:role/ml"}), TLS),
            C,
            (),
        ),
        ("own account root", policy(allow("Own", Principal={"AWS": f"arn:aws:iam::{OWN}:root"}), TLS), C, ()),
        (
            "service principal",
            policy(allow("Logs", Principal={"Service": "logging.s3.amazonaws.com"}), TLS),
            C,
            (),
        ),
        (
            "NotPrincipal = everyone but",
            policy(allow("NotMe", Principal=None, NotPrincipal={"AWS": f"arn:aws:iam::{OWN}:root"}), TLS),
            NC,
            ("NotMe",),
        ),
        (
            "IfExists does not constrain",
            policy(allow("IfEx", Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}}), TLS),
            NC,
            ("IfEx",),
        ),
        (
            "ForAllValues does not constrain",
            policy(allow("All", Condition={"ForAllValues:StringEquals": {"aws:PrincipalOrgID": ORG}}), TLS),
            NC,
            ("All",),
        ),
        (
            "wildcard org does not constrain",
            policy(allow("Wild", Condition={"StringLike": {"aws:PrincipalOrgID": "o-a1b2*"}}), TLS),
            NC,
            ("Wild",),
        ),
        (
            "another org",
            policy(allow("Other", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-zz9y8x7w6v"}}), TLS),
            NC,
            ("Other",),
        ),
        (
            "case-insensitive key",
            policy(allow("Ci", Condition={"StringEquals": {"AWS:PRINCIPALORGID": ORG}}), TLS),
            C,
            (),
        ),
        (
            "org paths",
            policy(
                allow(
                    "Ou",
                    Condition={
                        "ForAnyValue:StringLike": {
                            "aws:PrincipalOrgPaths": f"{ORG}/r-ab12/ou-ab12-11111111/*"
                        }
                    },
                ),
                TLS,
            ),
            C,
            (),
        ),
        (
            "source vpce",
            policy(allow("Vpce", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}), TLS),
            C,
            (),
        ),
        (
            "missing TLS deny",
            policy(allow("Org", Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}})),
            NC,
            ("No Deny of non-TLS",),
        ),
        ("both problems", policy(allow("PublicRead")), NC, ("PublicRead", "No Deny of non-TLS")),
        (
            "identity perimeter deny constrains all",
            policy(
                allow("Broad"),
                TLS,
                {
                    "Sid": "Perimeter",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [ARN, f"{ARN}/*"],
                    "Condition": {
                        "StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
                        "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                    },
                },
            ),
            C,
            (),
        ),
        (
            "many statements listed briefly",
            policy(*[allow(f"S{i}") for i in range(6)], TLS),
            NC,
            ("S0, S1, S2 +3 more",),
        ),
    )

    def test_cases(self) -> None:
        for name, text, expected, fragments in self.CASES:
            with self.subTest(name):
                verdict = rule.decide(ARN, text, OWN, PARAMS)
                self.assertEqual(verdict.compliance, expected, verdict.annotation)
                for fragment in fragments:
                    self.assertIn(fragment, verdict.annotation)
                self.assertLessEqual(len(verdict.annotation), 256)

    def test_unknown_account_is_never_ours(self) -> None:
        text = policy(allow("Own", Principal={"AWS": f"arn:aws:iam::{OWN}:root"}), TLS)
        self.assertEqual(rule.decide(ARN, text, None, PARAMS).compliance, NC)

    def test_malformed_policy_fails(self) -> None:
        for text in ("{not json", policy(allow(Effect="allow")), json.dumps({"Version": "2012-10-17"})):
            with self.subTest(text=text), self.assertRaises(MalformedConfigurationItem):
                rule.decide(ARN, text, OWN, PARAMS)


# ------------------------------------------------------------------------------------- change path
class ChangeEvaluationTest(unittest.TestCase):
    def evaluate(self, ci: dict[str, Any], raw: dict[str, Any] | None = None) -> Any:
        (evaluation,) = rule.S3_BUCKET_POLICY_ORG_ONLY().evaluate_change(
            {}, cast(Any, NoClients()), ci, raw if raw is not None else {"OrganizationId": ORG}
        )
        return evaluation

    def test_fixtures(self) -> None:
        for name, expected in (
            ("s3_policy_org_only_tls.json", C),
            ("s3_policy_cross_account_no_tls.json", NC),
            ("s3_policy_none.json", NC),
            ("s3_sse_kms_cmk.json", C),  # TLS deny + a Deny on uploads, no Allow
            ("s3_rdk_sample_no_encryption.json", NC),
        ):
            with self.subTest(name):
                ci = load(name)
                evaluation = self.evaluate(ci)
                self.assertEqual(evaluation.complianceType, expected, evaluation.annotation)
                self.assertEqual(evaluation.complianceResourceId, ci["resourceId"])
                self.assertEqual(evaluation.complianceResourceType, "AWS::S3::Bucket")

    def test_cross_account_annotation_names_statement_and_tls(self) -> None:
        evaluation = self.evaluate(load("s3_policy_cross_account_no_tls.json"))
        self.assertIn("PartnerRead", evaluation.annotation)
        self.assertIn("No Deny of non-TLS access", evaluation.annotation)

    def test_deleted_and_exempt(self) -> None:
        ci = load("s3_policy_cross_account_no_tls.json")
        deleted = copy.deepcopy(ci)
        deleted["configurationItemStatus"] = "ResourceDeleted"
        self.assertEqual(self.evaluate(deleted).complianceType, NA)
        exempt = self.evaluate(ci, {"OrganizationId": ORG, "ExemptionTagKey": "team"})
        self.assertEqual(exempt.complianceType, NA)
        self.assertIn("ml-platform", exempt.annotation)

    def test_policy_as_decoded_object_and_malformed_text(self) -> None:
        ci = load("s3_policy_org_only_tls.json")
        decoded = copy.deepcopy(ci)
        decoded["supplementaryConfiguration"]["BucketPolicy"] = json.dumps(
            {"policyText": json.loads(ci["supplementaryConfiguration"]["BucketPolicy"]["policyText"])}
        )
        self.assertEqual(self.evaluate(decoded).complianceType, C)
        broken = copy.deepcopy(ci)
        broken["supplementaryConfiguration"]["BucketPolicy"]["policyText"] = (
            '{"Statement": [{"Effect": "Allow"'
        )
        with self.assertRaises(MalformedConfigurationItem):
            self.evaluate(broken)


if __name__ == "__main__":
    unittest.main()
