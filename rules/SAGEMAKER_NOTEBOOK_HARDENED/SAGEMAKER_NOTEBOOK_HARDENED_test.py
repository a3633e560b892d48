"""Tests of SAGEMAKER_NOTEBOOK_HARDENED: the pure decision (table-driven, no mocks), key classification,
parameters, and the change path with a fake SageMaker client. They follow the rule's docstring scenarios.

Sources of the shapes and defaults (not invented from the code):
* CI fixtures ``tests/fixtures/ci/sagemaker_notebook_*.json``: the CloudFormation properties of
  AWS::SageMaker::NotebookInstance in PascalCase (see SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET_test),
  including ``RootAccess``, ``KmsKeyId`` and ``InstanceMetadataServiceConfiguration``
  (``MinimumInstanceMetadataServiceVersion``).
* Defaults: botocore sagemaker 2017-07-24 ``CreateNotebookInstanceInput.RootAccess`` ("The default value is
  Enabled") and ``InstanceMetadataServiceConfiguration`` ("if no value is selected, then it defaults to
  IMDSv1"); ``MinimumInstanceMetadataServiceVersion`` pattern ``(1|2)``.
* Key forms: SageMaker's KmsKeyId documentation (key id, key ARN, alias name, alias ARN); KMS: a key of
  another account must be named by its ARN, so a bare key id is in the caller's account and Region.
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import ClientError
from rdklib import ComplianceType, InvalidParametersError

import SAGEMAKER_NOTEBOOK_HARDENED as rule_module
from ml_guardrails.ci import ConfigurationItem, MalformedConfigurationItem
from ml_guardrails.resources.sagemaker_notebook import NotebookInstance

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/ci"
RULE = rule_module.SAGEMAKER_NOTEBOOK_HARDENED
Params = rule_module.Params
decide = rule_module.decide
classify_key = rule_module.classify_key
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE

ACCOUNT, REGION = "123456789012", "us-east-1"
NB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance/risk-model-dev"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
OTHER_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
MRK_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"
FOREIGN_KEY_ARN = f"arn:aws:kms:{REGION}:210987654321:key/{KEY_ID}"


def load_ci(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def notebook(**overrides: Any) -> NotebookInstance:
    """A hardened notebook; ``overrides`` change its fields."""
    fields: dict[str, Any] = {
        "name": "risk-model-dev",
        "arn": NB_ARN,
        "direct_internet_access": "Disabled",
        "subnet_id": "subnet-0a1b2c3d4e5f60718",
        "root_access": "Disabled",
        "kms_key_id": KEY_ARN,
        "minimum_imds_version": "2",
    }
    fields.update(overrides)
    return NotebookInstance(**fields)


ALLOW = Params(kms_key_arns=frozenset({KEY_ARN.lower()}))

# (scenario, notebook, params, expected compliance, fragments the annotation must hold)
CASES: list[tuple[str, NotebookInstance, Any, str, tuple[str, ...]]] = [
    ("1 hardened", notebook(), Params(), C, ("Root access disabled", KEY_ARN)),
    ("1 hardened, key in allowlist", notebook(), ALLOW, C, ("IMDSv2 only",)),
    ("1 bare key id placed in the notebook's account", notebook(kms_key_id=KEY_ID), ALLOW, C, ()),
    (
        "1 key ARN compared ignoring case",
        notebook(kms_key_id=KEY_ARN.replace(KEY_ID, KEY_ID.upper())),
        ALLOW,
        C,
        (),
    ),
    ("1 customer alias without allowlist", notebook(kms_key_id="alias/ml-notebooks"), Params(), C, ()),
    ("1 Stopped and hardened", notebook(status="Stopped"), Params(), C, ()),
    (
        "2 root Enabled",
        notebook(root_access="Enabled"),
        Params(),
        NC,
        ("root access Enabled", "MlGuardrails-HardenSageMakerNotebook"),
    ),
    (
        "2 root absent = Enabled",
        notebook(root_access=None),
        Params(),
        NC,
        ("RootAccess not set (API default: Enabled)",),
    ),
    (
        "2 root unknown value",
        notebook(root_access="Sometimes"),
        Params(),
        NC,
        ("'Sometimes' is not Disabled",),
    ),
    (
        "3 no KmsKeyId",
        notebook(kms_key_id=None),
        Params(),
        NC,
        ("no KmsKeyId", "Recreate it", "cannot be changed"),
    ),
    ("3 AWS managed alias", notebook(kms_key_id="alias/aws/sagemaker"), Params(), NC, ("AWS managed key",)),
    (
        "3 AWS managed alias ARN",
        notebook(kms_key_id=f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/sagemaker"),
        Params(),
        NC,
        ("AWS managed",),
    ),
    (
        "4 key ARN not allowed",
        notebook(kms_key_id=OTHER_KEY_ARN),
        ALLOW,
        NC,
        ("not in KmsKeyArns", "in KmsKeyArns (the volume"),
    ),
    ("4 same key id in another account", notebook(kms_key_id=FOREIGN_KEY_ARN), ALLOW, NC, ("210987654321",)),
    ("4 bare mrk id not allowed", notebook(kms_key_id=MRK_ID), ALLOW, NC, (f"key/{MRK_ID}",)),
    (
        "5 alias with allowlist",
        notebook(kms_key_id="alias/ml-notebooks"),
        ALLOW,
        NC,
        ("alias alias/ml-notebooks", "not provable"),
    ),
    (
        "5 alias ARN with allowlist",
        notebook(kms_key_id=f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ml"),
        ALLOW,
        NC,
        ("not provable",),
    ),
    ("6 IMDSv1", notebook(minimum_imds_version="1"), Params(), NC, ("IMDSv1 allowed", "sets IMDSv2")),
    ("6 IMDS not shown = v1", notebook(minimum_imds_version=None), Params(), NC, ("not shown (default 1",)),
    ("6 IMDS unknown value", notebook(minimum_imds_version="3"), Params(), NC, ("'3' is not 2",)),
    (
        "8 all three",
        notebook(root_access="Enabled", kms_key_id=None, minimum_imds_version="1"),
        Params(),
        NC,
        ("root access Enabled", "no KmsKeyId", "IMDSv1", "Run MlGuardrails", "Recreate"),
    ),
    ("9 Stopped", notebook(root_access="Enabled", status="Stopped"), Params(), NC, ("It is Stopped.",)),
    ("9 Failed", notebook(minimum_imds_version="1", status="Failed"), Params(), NC, ("It is Failed.",)),
    ("10 Deleting", notebook(root_access="Enabled", status="Deleting"), Params(), NA, ("being deleted",)),
]


class DecideTest(unittest.TestCase):
    def test_table(self) -> None:
        for name, nb, params, expected, fragments in CASES:
            with self.subTest(name):
                verdict = decide(nb, params)
                self.assertEqual(verdict.compliance, expected, verdict.annotation)
                self.assertLessEqual(len(verdict.annotation), 256)
                for fragment in fragments:
                    self.assertIn(fragment, verdict.annotation)

    def test_only_failing_subchecks_are_named(self) -> None:
        annotation = decide(notebook(minimum_imds_version="1"), Params()).annotation
        self.assertNotIn("root", annotation.lower().replace("disables root", ""))
        self.assertNotIn("KmsKeyId", annotation)
        kms_only = decide(notebook(kms_key_id=None), Params()).annotation
        self.assertNotIn("MlGuardrails-HardenSageMakerNotebook", kms_only)  # the runbook cannot fix a key

    def test_long_values_keep_the_annotation_within_the_limit(self) -> None:
        long_alias = "alias/" + "a" * 250
        nb = notebook(root_access="X" * 300, kms_key_id=long_alias, minimum_imds_version="9" * 50)
        verdict = decide(nb, ALLOW)
        self.assertEqual(verdict.compliance, NC)
        self.assertLessEqual(len(verdict.annotation), 256)
        self.assertTrue(verdict.annotation.startswith("Notebook: RootAccess"))


class ClassifyKeyTest(unittest.TestCase):
    def test_forms(self) -> None:
        cases = [
            (None, "none", None),
            (KEY_ARN, "key", KEY_ARN),
            (KEY_ID, "key", KEY_ARN),
            (KEY_ID.upper(), "key", KEY_ARN),
            (MRK_ID, "key", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{MRK_ID}"),
            ("alias/ml", "alias", None),
            (f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ml", "alias", None),
            ("alias/aws/sagemaker", "aws-managed", None),
            ("ALIAS/AWS/SAGEMAKER".lower(), "aws-managed", None),
        ]
        for value, kind, arn in cases:
            with self.subTest(value):
                key = classify_key(value, NB_ARN)
                self.assertEqual((key.kind, key.arn), (kind, arn))

    def test_key_id_in_govcloud_takes_the_notebook_partition(self) -> None:
        gov = "arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:notebook-instance/nb"
        self.assertEqual(
            classify_key(KEY_ID, gov).arn, f"arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/{KEY_ID}"
        )

    def test_cannot_tell_fails_closed(self) -> None:
        for value, arn in [
            (KEY_ID, None),  # a key id, but whose account/Region?
            ("not a key", NB_ARN),
            ("arn:aws:s3:::bucket", NB_ARN),
            ("key/" + KEY_ID, NB_ARN),
        ]:
            with self.subTest(value), self.assertRaises(MalformedConfigurationItem):
                classify_key(value, arn)


class ParametersTest(unittest.TestCase):
    def test_valid(self) -> None:
        params = RULE().evaluate_parameters({"KmsKeyArns": f"{KEY_ARN}, {OTHER_KEY_ARN}"})
        self.assertEqual(params.rule.kms_key_arns, frozenset({KEY_ARN, OTHER_KEY_ARN}))
        self.assertIsNone(RULE().evaluate_parameters({}).rule.kms_key_arns)
        self.assertIsNone(RULE().evaluate_parameters({"KmsKeyArns": ""}).rule.kms_key_arns)

    def test_invalid(self) -> None:
        for raw, name in [
            ({"KmsKeyArns": "alias/ml"}, "KmsKeyArns"),
            ({"KmsKeyArns": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ml"}, "KmsKeyArns"),
            ({"KmsKeyArns": KEY_ID}, "KmsKeyArns"),
            ({"KmsKeyArns": f"{KEY_ARN},"}, "KmsKeyArns"),
            ({"KmsKeyArn": KEY_ARN}, "KmsKeyArn"),
            ({"ExemptionTagKey": "aws:reserved"}, "ExemptionTagKey"),
        ]:
            with self.subTest(raw), self.assertRaisesRegex(InvalidParametersError, name):
                RULE().evaluate_parameters(raw)


class FakeSageMaker:
    """DescribeNotebookInstance returning ``response`` (or raising ``error``), recording calls."""

    def __init__(self, response: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.response = response or {}
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_notebook_instance(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_notebook_instance", kwargs))
        if self.error:
            raise ClientError(
                {"Error": {"Code": self.error, "Message": "injected"}}, "DescribeNotebookInstance"
            )
        return copy.deepcopy(self.response)


class FakeClients:
    def __init__(self, sagemaker: FakeSageMaker) -> None:
        self.sagemaker = sagemaker

    def build_client(self, service: str) -> Any:
        if service != "sagemaker":
            raise AssertionError(f"unexpected client {service}")
        return self.sagemaker


def describe(**overrides: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "NotebookInstanceArn": NB_ARN,
        "NotebookInstanceName": "risk-model-dev",
        "NotebookInstanceStatus": "InService",
        "DirectInternetAccess": "Disabled",
        "RootAccess": "Disabled",
        "KmsKeyId": KEY_ARN,
        "InstanceMetadataServiceConfiguration": {"MinimumInstanceMetadataServiceVersion": "2"},
    }
    response.update(overrides)
    return {k: v for k, v in response.items() if v is not None}


class EvaluateChangeTest(unittest.TestCase):
    def evaluate(self, raw: dict[str, Any], sm: FakeSageMaker, **values: Any) -> Any:
        rule = RULE()
        evaluations = rule.evaluate_change(
            {}, cast(Any, FakeClients(sm)), raw, rule.evaluate_parameters(values)
        )
        self.assertEqual(len(evaluations), 1)
        return evaluations[0]

    def test_fixtures_need_no_call(self) -> None:
        for name, expected in [
            ("sagemaker_notebook_isolated.json", C),
            ("sagemaker_notebook_internet.json", NC),
        ]:
            with self.subTest(name):
                sm = FakeSageMaker()
                evaluation = self.evaluate(load_ci(name), sm)
                self.assertEqual(evaluation.complianceType, expected, evaluation.annotation)
                self.assertEqual(sm.calls, [])
        internet = self.evaluate(load_ci("sagemaker_notebook_internet.json"), FakeSageMaker())
        for fragment in ("root access Enabled", "no KmsKeyId", "IMDSv1 allowed"):
            self.assertIn(fragment, internet.annotation)

    def test_item_without_imds_reads_the_api(self) -> None:
        cases = [
            ("API shows v2", describe(), C, None),
            (
                "API shows v1",
                describe(InstanceMetadataServiceConfiguration={"MinimumInstanceMetadataServiceVersion": "1"}),
                NC,
                "IMDSv1",
            ),
            ("API omits it too", describe(InstanceMetadataServiceConfiguration=None), NC, "not shown"),
            ("API says Deleting", describe(NotebookInstanceStatus="Deleting"), NA, "being deleted"),
            (
                "API says Stopped",
                describe(
                    InstanceMetadataServiceConfiguration={"MinimumInstanceMetadataServiceVersion": "1"},
                    NotebookInstanceStatus="Stopped",
                ),
                NC,
                "It is Stopped",
            ),
        ]
        for name, response, expected, fragment in cases:
            with self.subTest(name):
                raw = load_ci("sagemaker_notebook_isolated.json")
                del raw["configuration"]["InstanceMetadataServiceConfiguration"]
                sm = FakeSageMaker(response)
                evaluation = self.evaluate(raw, sm)
                self.assertEqual(evaluation.complianceType, expected, evaluation.annotation)
                self.assertEqual(
                    sm.calls, [("describe_notebook_instance", {"NotebookInstanceName": "risk-model-dev"})]
                )
                if fragment:
                    self.assertIn(fragment, evaluation.annotation)

    def test_item_without_root_access_reads_the_api(self) -> None:
        raw = load_ci("sagemaker_notebook_isolated.json")
        del raw["configuration"]["RootAccess"]
        self.assertEqual(self.evaluate(raw, FakeSageMaker(describe())).complianceType, C)
        self.assertEqual(
            self.evaluate(copy.deepcopy(raw), FakeSageMaker(describe(RootAccess=None))).complianceType, NC
        )

    def test_item_value_wins_over_the_api(self) -> None:
        """The item is the recorded state: the API only fills in what it lacks."""
        raw = load_ci("sagemaker_notebook_isolated.json")
        raw["configuration"]["RootAccess"] = "Enabled"
        del raw["configuration"]["InstanceMetadataServiceConfiguration"]
        evaluation = self.evaluate(raw, FakeSageMaker(describe()))
        self.assertEqual(evaluation.complianceType, NC)
        self.assertIn("root access Enabled", evaluation.annotation)

    def test_read_failures_propagate(self) -> None:
        for code in ("AccessDeniedException", "ThrottlingException", "ValidationException"):
            with self.subTest(code):
                raw = load_ci("sagemaker_notebook_isolated.json")
                del raw["configuration"]["InstanceMetadataServiceConfiguration"]
                with self.assertRaises(ClientError):
                    self.evaluate(raw, FakeSageMaker(error=code))

    def test_malformed_items_fail(self) -> None:
        mutations: list[tuple[str, Any]] = [
            ("RootAccess", 0),
            ("KmsKeyId", "not-a-key"),
            ("KmsKeyId", ["arn"]),
            ("InstanceMetadataServiceConfiguration", "v2"),
            ("InstanceMetadataServiceConfiguration", {"MinimumInstanceMetadataServiceVersion": True}),
        ]
        for field, value in mutations:
            with self.subTest(field=field, value=value):
                raw = load_ci("sagemaker_notebook_isolated.json")
                raw["configuration"][field] = value
                sm = FakeSageMaker(describe())
                with self.assertRaises(MalformedConfigurationItem):
                    self.evaluate(raw, sm)
                self.assertEqual(sm.calls, [])

    def test_imds_as_json_string_and_number(self) -> None:
        for value in (
            '{"MinimumInstanceMetadataServiceVersion": "2"}',
            {"MinimumInstanceMetadataServiceVersion": 2},
        ):
            with self.subTest(value=value):
                raw = load_ci("sagemaker_notebook_isolated.json")
                raw["configuration"]["InstanceMetadataServiceConfiguration"] = value
                self.assertEqual(self.evaluate(raw, FakeSageMaker()).complianceType, C)

    def test_allowlist_on_the_change_path(self) -> None:
        raw = load_ci("sagemaker_notebook_isolated.json")
        self.assertEqual(self.evaluate(raw, FakeSageMaker(), KmsKeyArns=KEY_ARN).complianceType, C)
        evaluation = self.evaluate(copy.deepcopy(raw), FakeSageMaker(), KmsKeyArns=OTHER_KEY_ARN)
        self.assertEqual(evaluation.complianceType, NC)
        self.assertIn("not in KmsKeyArns", evaluation.annotation)

    def test_exemption_and_deletion(self) -> None:
        raw = load_ci("sagemaker_notebook_internet.json")
        raw["tags"] = {"ml-guardrails:exemption": "RA-9"}
        evaluation = self.evaluate(raw, FakeSageMaker(), ExemptionTagKey="ml-guardrails:exemption")
        self.assertEqual(evaluation.complianceType, NA)
        self.assertIn("RA-9", evaluation.annotation)
        deleted = load_ci("sagemaker_notebook_internet.json")
        deleted["configurationItemStatus"] = "ResourceDeleted"
        deleted["configuration"] = None
        sm = FakeSageMaker()
        self.assertEqual(self.evaluate(deleted, sm).complianceType, NA)
        self.assertEqual(sm.calls, [])

    def test_view_parses_the_fixture(self) -> None:
        view = NotebookInstance.from_configuration_item(
            ConfigurationItem.parse(load_ci("sagemaker_notebook_isolated.json"))
        )
        self.assertEqual((view.root_access, view.minimum_imds_version), ("Disabled", "2"))
        self.assertEqual(view.kms_key_id, KEY_ARN)


if __name__ == "__main__":
    unittest.main()
