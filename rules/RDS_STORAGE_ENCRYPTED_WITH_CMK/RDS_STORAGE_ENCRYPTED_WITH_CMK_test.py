"""Unit tests of RDS_STORAGE_ENCRYPTED_WITH_CMK, following the scenarios of the rule's docstring.

Runs under pytest and ``rdk test-local`` (cwd rules/, only this folder on sys.path).

Where the shapes come from:
* ``rds_rdk_sample_instance.json`` / ``rds_rdk_sample_cluster.json``: rdk 1.0.0's ``rdk sample-ci`` items
  for AWS::RDS::DBInstance and AWS::RDS::DBCluster (GetResourceConfigHistory-shaped in rdk) re-keyed to
  the change-notification shape; their configuration keys are the ones of the Config resource schema
  (awslabs/aws-config-resource-schema ``AWS::RDS::DBInstance.properties.json``: ``dBInstanceIdentifier``,
  ``dBClusterIdentifier``, ``dbiResourceId``, ``storageEncrypted``, ``kmsKeyId``;
  ``AWS::RDS::DBCluster.properties.json``: ``dbclusterIdentifier``, ``dbClusterResourceId``,
  ``storageEncrypted``, ``kmsKeyId``). The resource ID is the DbiResourceId / DbClusterResourceId.
* ``rds_instance_cmk.json`` / ``rds_instance_unencrypted.json`` / ``rds_aurora_member_instance.json``:
  derived from the instance sample (standalone PostgreSQL instances under a customer managed key and
  unencrypted; an Aurora PostgreSQL cluster member).
* DescribeKey: the KeyMetadata fields of botocore 1.44.8's KMS model (``Arn``, ``KeyManager`` AWS |
  CUSTOMER).
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rdklib import ComplianceType, InvalidParametersError

import RDS_STORAGE_ENCRYPTED_WITH_CMK as rule
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.resources.rds import DB_CLUSTER, DB_INSTANCE, RdsStorage

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/ci"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
CMK = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_CMK = "arn:aws:kms:us-east-1:123456789012:key/0b0b0b0b-1111-2222-3333-444455556666"
AWS_RDS_KEY = "arn:aws:kms:us-east-1:123456789012:key/9f8e7d6c-5b4a-3c2d-1e0f-a1b2c3d4e5f6"
SHARED_CMK = "arn:aws:kms:us-east-1:444455556666:key/5e5e5e5e-1111-2222-3333-444455556666"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def with_config(name: str, **config: Any) -> dict[str, Any]:
    """A fixture with configuration fields overridden (None removes a field)."""
    ci = load(name)
    for field, value in config.items():
        if value is None:
            ci["configuration"].pop(field, None)
        else:
            ci["configuration"][field] = value
    return ci


def db(**overrides: Any) -> RdsStorage:
    base: dict[str, Any] = {
        "resource_type": DB_INSTANCE,
        "resource_id": "db-ABCDEFGHIJKLMNOPQRSTUVWXY2",
        "identifier": "ml-feature-store",
        "storage_encrypted": True,
        "kms_key_id": CMK,
    }
    base.update(overrides)
    return RdsStorage(**base)


class FakeKms:
    """DescribeKey answering from ``keys`` (reference -> KeyMetadata), else ``error``; records calls."""

    def __init__(self, keys: dict[str, dict[str, Any]] | None = None, error: str | None = None) -> None:
        self.keys = keys if keys is not None else {CMK: {"Arn": CMK, "KeyManager": "CUSTOMER"}}
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_key(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeKey", kwargs))
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "fake"}}, "DescribeKey")
        metadata = self.keys.get(kwargs["KeyId"])
        if metadata is None:
            raise ClientError({"Error": {"Code": "NotFoundException", "Message": "no key"}}, "DescribeKey")
        return {"KeyMetadata": copy.deepcopy(metadata)}


class FakeClients:
    def __init__(self, kms: FakeKms | None = None) -> None:
        self.kms = kms or FakeKms()
        self.regions: list[str | None] = []

    def build_client(self, service: str, region: str | None = None, assume_role_mode: bool = True) -> Any:
        if service != "kms":
            raise AssertionError(f"unexpected client {service}")
        self.regions.append(region)
        return self.kms


def evaluate(ci: dict[str, Any], params: dict[str, Any] | None = None, kms: FakeKms | None = None):
    clients = FakeClients(kms)
    evaluations = rule.RDS_STORAGE_ENCRYPTED_WITH_CMK().evaluate_change({}, clients, ci, params or {})
    return evaluations, clients.kms.calls


class DecideTest(unittest.TestCase):
    """The pure decision, table-driven (scenarios 4-12)."""

    def test_table(self) -> None:
        customer = rule.ResolvedKey(CMK, "CUSTOMER")
        none = rule.Params()
        allow = rule.Params(frozenset({CMK}))
        allow_other = rule.Params(frozenset({OTHER_CMK}))
        cases: list[tuple[str, RdsStorage, rule.Params, dict[str, Any], str, str]] = [
            # 4. members of a cluster: the cluster decides, whatever the instance reports
            (
                "aurora member",
                db(cluster_identifier="ml-experiments", storage_encrypted=False, kms_key_id=None),
                none,
                {},
                NA,
                "DB cluster ml-experiments",
            ),
            (
                "multi-az cluster member",
                db(cluster_identifier="maz-1", engine="postgres"),
                none,
                {},
                NA,
                "maz-1",
            ),
            # 5. being deleted
            ("deleting", db(status="deleting", storage_encrypted=False), none, {}, NA, "being deleted"),
            # 6. not encrypted (instance / cluster migration paths), AWS owned key
            (
                "unencrypted instance",
                db(storage_encrypted=False, kms_key_id=None),
                none,
                {},
                NC,
                "copy the snapshot",
            ),
            (
                "unencrypted cluster",
                db(resource_type=DB_CLUSTER, storage_encrypted=False, kms_key_id=None),
                none,
                {},
                NC,
                "restore a new cluster",
            ),
            (
                "aws owned key",
                db(
                    resource_type=DB_CLUSTER,
                    storage_encrypted=False,
                    kms_key_id=None,
                    encryption_type="sse-rds",
                ),
                none,
                {},
                NC,
                "AWS owned key",
            ),
            # 7. alias/aws/rds by name or ARN: no call
            ("alias name", db(kms_key_id="alias/aws/rds"), none, {}, NC, "AWS managed key alias/aws/rds"),
            (
                "alias arn",
                db(kms_key_id="arn:aws:kms:us-east-1:123456789012:alias/aws/rds"),
                none,
                {},
                NC,
                "AWS managed key",
            ),
            # 8. allowlist miss on the ARN itself: no call
            ("not in allowlist", db(), allow_other, {}, NC, "not in KmsKeyArns"),
            # 9. DescribeKey: AWS managed
            (
                "aws/rds",
                db(kms_key_id=AWS_RDS_KEY),
                none,
                {AWS_RDS_KEY: rule.ResolvedKey(AWS_RDS_KEY, "AWS")},
                NC,
                "aws/rds",
            ),
            ("unknown manager", db(), none, {CMK: rule.ResolvedKey(CMK, "PARTNER")}, NC, "'PARTNER'"),
            # 10. customer managed
            ("customer", db(), none, {CMK: customer}, C, "customer managed KMS key " + CMK),
            ("customer allowed", db(), allow, {CMK: customer}, C, "(in KmsKeyArns)"),
            ("customer cluster", db(resource_type=DB_CLUSTER), none, {CMK: customer}, C, CMK),
            (
                "shared key of another account",
                db(kms_key_id=SHARED_CMK),
                none,
                {SHARED_CMK: rule.ResolvedKey(SHARED_CMK, "CUSTOMER")},
                C,
                SHARED_CMK,
            ),
            # 11. a key id / alias resolving outside the allowlist
            (
                "alias resolves elsewhere",
                db(kms_key_id="alias/ml-rds"),
                allow_other,
                {"alias/ml-rds": customer},
                NC,
                "not in KmsKeyArns",
            ),
            (
                "alias resolves inside",
                db(kms_key_id="alias/ml-rds"),
                allow,
                {"alias/ml-rds": customer},
                C,
                CMK,
            ),
            # 12. the key is gone
            ("key gone", db(), none, {CMK: None}, NC, "does not exist"),
        ]
        for name, storage, params, keys, expected, fragment in cases:
            with self.subTest(name):
                verdict = rule.decide(storage, params, keys)
                self.assertIsInstance(verdict, rule.Verdict)
                assert isinstance(verdict, rule.Verdict)
                self.assertEqual(verdict.compliance, expected, verdict.annotation)
                self.assertIn(fragment, verdict.annotation)
                self.assertLessEqual(len(verdict.annotation), 256)

    def test_only_kms_facts_need_a_lookup(self) -> None:
        self.assertEqual(rule.decide(db(), rule.Params()), rule.NeedKey(CMK))
        self.assertEqual(
            rule.decide(db(kms_key_id="alias/ml-rds"), rule.Params()), rule.NeedKey("alias/ml-rds")
        )
        # the allowlist holds the ARN, yet KeyManager still needs DescribeKey: never assume
        self.assertEqual(rule.decide(db(), rule.Params(frozenset({CMK}))), rule.NeedKey(CMK))
        for free in (db(storage_encrypted=False), db(kms_key_id="alias/aws/rds"), db(cluster_identifier="c")):
            with self.subTest(free=free):
                self.assertIsInstance(rule.decide(free, rule.Params()), rule.Verdict)

    def test_encrypted_without_key_is_malformed(self) -> None:
        with self.assertRaises(MalformedConfigurationItem):
            rule.decide(db(kms_key_id=None), rule.Params())

    def test_migration_annotations_say_how(self) -> None:
        for storage in (db(storage_encrypted=False), db(resource_type=DB_CLUSTER, storage_encrypted=False)):
            verdict = rule.decide(storage, rule.Params())
            assert isinstance(verdict, rule.Verdict)
            self.assertIn("snapshot", verdict.annotation)
            self.assertIn("customer managed KmsKeyId", verdict.annotation)
            self.assertIn("switch clients over", verdict.annotation)


class ViewTest(unittest.TestCase):
    """The typed view over both sources (CI camelCase with odd acronyms; API PascalCase)."""

    def test_rdk_samples(self) -> None:
        from ml_guardrails.ci import ConfigurationItem

        instance = RdsStorage.from_configuration_item(
            ConfigurationItem.parse(load("rds_rdk_sample_instance.json"))
        )
        self.assertEqual(
            (
                instance.resource_id,
                instance.identifier,
                instance.storage_encrypted,
                instance.cluster_identifier,
            ),
            ("db-HHTTSRD6HXUIKXPFPI6WFVZ4PA", "myrdstest", True, None),
        )
        self.assertEqual(
            instance.kms_key_id, "arn:aws:kms:us-east-1:264683526309:key/e20f3a10-781f-4582-93d7-6dfe67cac827"
        )
        cluster = RdsStorage.from_configuration_item(
            ConfigurationItem.parse(load("rds_rdk_sample_cluster.json"))
        )
        self.assertEqual(
            (cluster.resource_type, cluster.resource_id, cluster.identifier),
            (DB_CLUSTER, "cluster-test", "test"),
        )
        self.assertEqual(cluster.status, "available")
        member = RdsStorage.from_configuration_item(
            ConfigurationItem.parse(load("rds_aurora_member_instance.json"))
        )
        self.assertEqual(member.cluster_identifier, "ml-experiments")

    def test_api_shapes(self) -> None:
        api_instance = {
            "DBInstanceIdentifier": "ml-feature-store",
            "DbiResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY2",
            "DBInstanceStatus": "available",
            "Engine": "postgres",
            "StorageEncrypted": True,
            "KmsKeyId": CMK,
            "DBInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:ml-feature-store",
            "TagList": [{"Key": "team", "Value": "ml"}],
        }
        view = RdsStorage.from_db_instance(api_instance)
        self.assertEqual(
            (view.resource_id, view.kms_key_id, dict(view.tags)),
            (api_instance["DbiResourceId"], CMK, {"team": "ml"}),
        )
        api_cluster = {
            "DBClusterIdentifier": "ml-experiments",
            "DbClusterResourceId": "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY2",
            "Status": "available",
            "StorageEncrypted": False,
            "StorageEncryptionType": "sse-rds",
            "TagList": [],
        }
        cluster = RdsStorage.from_db_cluster(api_cluster)
        self.assertEqual((cluster.encryption_type, cluster.kms_key_id), ("sse-rds", None))
        for bad in ({**api_instance, "DbiResourceId": None}, {**api_instance, "StorageEncrypted": "yes"}):
            with self.subTest(bad=bad), self.assertRaises(MalformedConfigurationItem):
                RdsStorage.from_db_instance({k: v for k, v in bad.items() if v is not None})
        with self.assertRaises(MalformedConfigurationItem):
            RdsStorage.from_db_cluster({k: v for k, v in api_cluster.items() if k != "StorageEncrypted"})

    def test_membership_facts_must_be_there(self) -> None:
        # Scenario 14: applicability hangs on Engine and, for cluster-only engines, DBClusterIdentifier.
        base = {
            "DBInstanceIdentifier": "ml-experiments-instance-1",
            "DbiResourceId": "db-ZYXWVUTSRQPONMLKJIHGFEDCB3",
            "Engine": "aurora-postgresql",
            "DBClusterIdentifier": "ml-experiments",
            "StorageEncrypted": True,
            "KmsKeyId": CMK,
        }
        self.assertEqual(RdsStorage.from_db_instance(base).cluster_identifier, "ml-experiments")
        for engine in ("aurora-postgresql", "aurora-mysql", "aurora", "neptune", "docdb"):
            orphan = {k: v for k, v in base.items() if k != "DBClusterIdentifier"}
            with self.subTest(engine=engine), self.assertRaises(MalformedConfigurationItem):
                RdsStorage.from_db_instance({**orphan, "Engine": engine})
        with self.assertRaises(MalformedConfigurationItem):
            RdsStorage.from_db_instance({k: v for k, v in base.items() if k != "Engine"})
        # a Multi-AZ DB cluster member runs mysql/postgres: its DBClusterIdentifier alone marks it
        standalone = {**base, "Engine": "postgres"}
        del standalone["DBClusterIdentifier"]
        self.assertIsNone(RdsStorage.from_db_instance(standalone).cluster_identifier)


class ChangeTriggerTest(unittest.TestCase):
    """evaluate_change on configuration items (scenarios 2-14 through the change path)."""

    def assert_one(self, evaluations: list[Any], compliance: str, ci: dict[str, Any]) -> Any:
        self.assertEqual(len(evaluations), 1)
        evaluation = evaluations[0]
        self.assertEqual(evaluation.complianceType, compliance, evaluation.annotation)
        self.assertEqual(evaluation.complianceResourceId, ci["resourceId"])
        self.assertEqual(evaluation.complianceResourceType, ci["resourceType"])
        self.assertLessEqual(len(evaluation.annotation), 256)
        return evaluation

    def test_customer_key_reads_describe_key_once(self) -> None:
        ci = load("rds_instance_cmk.json")
        evaluations, calls = evaluate(ci)
        self.assert_one(evaluations, C, ci)
        self.assertEqual(calls, [("DescribeKey", {"KeyId": CMK})])

    def test_aws_managed_key_by_describe_key(self) -> None:
        ci = with_config("rds_instance_cmk.json", kmsKeyId=AWS_RDS_KEY)
        kms = FakeKms({AWS_RDS_KEY: {"Arn": AWS_RDS_KEY, "KeyManager": "AWS"}})
        evaluation = self.assert_one(evaluate(ci, kms=kms)[0], NC, ci)
        self.assertIn("aws/rds", evaluation.annotation)
        self.assertIn("copy the snapshot", evaluation.annotation)

    def test_rdk_sample_instance_key_in_its_region(self) -> None:
        ci = load("rds_rdk_sample_instance.json")
        key = ci["configuration"]["kmsKeyId"]
        clients = FakeClients(FakeKms({key: {"Arn": key, "KeyManager": "CUSTOMER"}}))
        [evaluation] = rule.RDS_STORAGE_ENCRYPTED_WITH_CMK().evaluate_change({}, clients, ci, {})
        self.assertEqual(
            (evaluation.complianceResourceId, evaluation.complianceType), ("db-HHTTSRD6HXUIKXPFPI6WFVZ4PA", C)
        )
        self.assertEqual(clients.regions, ["us-east-1"])

    def test_rdk_sample_cluster_in_us_east_2(self) -> None:
        ci = load("rds_rdk_sample_cluster.json")
        key = "arn:aws:kms:us-east-2:123456789012:key/test"
        clients = FakeClients(FakeKms({key: {"Arn": key, "KeyManager": "AWS"}}))
        [evaluation] = rule.RDS_STORAGE_ENCRYPTED_WITH_CMK().evaluate_change({}, clients, ci, {})
        self.assertEqual((evaluation.complianceResourceId, evaluation.complianceType), ("cluster-test", NC))
        self.assertEqual(evaluation.complianceResourceType, DB_CLUSTER)
        self.assertIn("restore a new cluster", evaluation.annotation)
        self.assertEqual(clients.regions, ["us-east-2"])  # described in the key ARN's Region

    def test_cluster_member_is_not_applicable_without_calls(self) -> None:
        ci = load("rds_aurora_member_instance.json")
        evaluations, calls = evaluate(ci)
        evaluation = self.assert_one(evaluations, NA, ci)
        self.assertIn("ml-experiments", evaluation.annotation)
        self.assertEqual(calls, [])

    def test_free_verdicts_make_no_call(self) -> None:
        variants = {
            "unencrypted fixture": load("rds_instance_unencrypted.json"),
            "unencrypted": with_config("rds_instance_cmk.json", storageEncrypted=False, kmsKeyId=None),
            "aws owned": with_config(
                "rds_rdk_sample_cluster.json",
                storageEncrypted=False,
                kmsKeyId=None,
                storageEncryptionType="sse-rds",
            ),
            "alias": with_config("rds_instance_cmk.json", kmsKeyId="alias/aws/rds"),
        }
        for name, ci in variants.items():
            with self.subTest(name):
                evaluations, calls = evaluate(ci)
                self.assert_one(evaluations, NC, ci)
                self.assertEqual(calls, [])
        evaluations, calls = evaluate(load("rds_instance_cmk.json"), {"KmsKeyArns": OTHER_CMK})
        self.assert_one(evaluations, NC, load("rds_instance_cmk.json"))
        self.assertEqual(calls, [])

    def test_allowlist(self) -> None:
        ci = load("rds_instance_cmk.json")
        self.assert_one(evaluate(ci, {"KmsKeyArns": f"{OTHER_CMK}, {CMK}"})[0], C, ci)

    def test_key_gone_is_non_compliant(self) -> None:
        ci = load("rds_instance_cmk.json")
        self.assert_one(evaluate(ci, kms=FakeKms({}))[0], NC, ci)

    def test_denied_shared_key_fails_closed_with_what_to_grant(self) -> None:
        ci = with_config("rds_instance_cmk.json", kmsKeyId=SHARED_CMK)
        with self.assertRaises(ClientError) as ctx:
            evaluate(ci, kms=FakeKms(error="AccessDeniedException"))
        message = ctx.exception.response["Error"]["Message"]
        self.assertIn("account 444455556666", message)
        self.assertIn("Allow kms:DescribeKey", message)
        self.assertEqual(ctx.exception.response["Error"]["Code"], "AccessDeniedException")

    def test_other_errors_propagate(self) -> None:
        ci = load("rds_instance_cmk.json")
        for code in ("ThrottlingException", "KMSInternalException"):
            with self.subTest(code=code), self.assertRaises(ClientError):
                evaluate(ci, kms=FakeKms(error=code))

    def test_real_shape_tolerance(self) -> None:
        ci = load("rds_instance_cmk.json")
        ci["configuration"] = json.dumps(ci["configuration"])
        self.assert_one(evaluate(ci)[0], C, load("rds_instance_cmk.json"))
        # a history-shaped boolean as a string
        as_string = with_config("rds_instance_cmk.json", storageEncrypted="false", kmsKeyId=None)
        self.assert_one(evaluate(as_string)[0], NC, as_string)

    def test_malformed_items_fail_closed(self) -> None:
        cases = {
            "no storageEncrypted": with_config("rds_instance_cmk.json", storageEncrypted=None),
            "storageEncrypted not a bool": with_config("rds_instance_cmk.json", storageEncrypted="maybe"),
            "encrypted without key": with_config("rds_instance_cmk.json", kmsKeyId=None),
            "key not a string": with_config("rds_instance_cmk.json", kmsKeyId=42),
            "no engine": with_config("rds_instance_cmk.json", engine=None),
            "aurora without cluster": with_config(
                "rds_aurora_member_instance.json", dBClusterIdentifier=None
            ),
        }
        for name, ci in cases.items():
            with self.subTest(name), self.assertRaises(MalformedConfigurationItem):
                evaluate(ci)

    def test_deleted_db_is_not_applicable(self) -> None:
        ci = load("rds_instance_cmk.json")
        ci.update(
            configurationItemStatus="ResourceDeleted", configuration=None, supplementaryConfiguration={}
        )
        self.assert_one(evaluate(ci)[0], NA, ci)

    def test_exemption_tag(self) -> None:
        ci = with_config("rds_instance_cmk.json", storageEncrypted=False, kmsKeyId=None)
        ci["tags"]["guardrails-exempt"] = "RISK-88 vendor appliance, replaced in Q3"
        evaluations, calls = evaluate(ci, {"ExemptionTagKey": "guardrails-exempt"})
        evaluation = self.assert_one(evaluations, NA, ci)
        self.assertIn("RISK-88", evaluation.annotation)
        self.assertEqual(calls, [])


class ParametersTest(unittest.TestCase):
    def test_valid(self) -> None:
        for raw, want in (
            ({}, frozenset()),
            ({"KmsKeyArns": ""}, frozenset()),
            ({"KmsKeyArns": CMK}, frozenset({CMK})),
        ):
            with self.subTest(raw=raw):
                self.assertEqual(
                    rule.RDS_STORAGE_ENCRYPTED_WITH_CMK().evaluate_parameters(raw).rule.kms_key_arns, want
                )

    def test_invalid_names_the_parameter(self) -> None:
        cases = (
            ({"KmsKeyArns": "alias/ml-rds"}, "KmsKeyArns"),
            ({"KmsKeyArns": "1234abcd-12ab-34cd-56ef-1234567890ab"}, "KmsKeyArns"),
            ({"KmsKeyArns": f"{CMK},"}, "KmsKeyArns"),
            ({"KmsKeyArn": CMK}, "KmsKeyArn"),
            ({"ExemptionTagKey": "aws:exempt"}, "ExemptionTagKey"),
        )
        for raw, name in cases:
            with self.subTest(raw=raw), self.assertRaises(InvalidParametersError) as ctx:
                rule.RDS_STORAGE_ENCRYPTED_WITH_CMK().evaluate_parameters(raw)
            self.assertIn(name, str(ctx.exception))

    def test_parameters_json_matches_the_rule(self) -> None:
        doc = json.loads((Path(__file__).parent / "parameters.json").read_text(encoding="utf-8"))[
            "Parameters"
        ]
        inputs, optional = json.loads(doc["InputParameters"]), json.loads(doc["OptionalParameters"])
        specs = {p.name: p for p in rule.RDS_STORAGE_ENCRYPTED_WITH_CMK.parameter_specs()}
        self.assertEqual(set(inputs) | set(optional), set(specs))
        self.assertEqual(doc["RuleName"], rule.RDS_STORAGE_ENCRYPTED_WITH_CMK.RULE_NAME)
        self.assertEqual(
            doc["SourceEvents"].split(","), list(rule.RDS_STORAGE_ENCRYPTED_WITH_CMK.RESOURCE_TYPES)
        )
        remediation = doc["Remediation"]
        self.assertEqual(remediation["TargetId"], "MlGuardrails-NotifyNonCompliantResource")
        self.assertFalse(remediation["Automatic"])
        self.assertEqual(remediation["Parameters"]["ResourceId"], {"ResourceValue": {"Value": "RESOURCE_ID"}})


if __name__ == "__main__":
    unittest.main()
