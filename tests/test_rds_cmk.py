"""RDS_STORAGE_ENCRYPTED_WITH_CMK against moto: the sweep, end-to-end per trigger, fail-closed paths.

moto 5.2.5 differs from AWS here; :func:`aws_shaped_rds` makes moto answer as AWS does, and the tests
follow AWS:
* every DB instance gets the same ``DbiResourceId`` (``db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U``; AWS: unique per
  instance, and AWS Config's resource ID): a unique one is derived from the identifier;
* ``KmsKeyId`` is echoed as given (AWS: the key ARN, whatever form CreateDBInstance got) and is the string
  ``default_kms_key_id`` when none was given (AWS: the ARN of the ``aws/rds`` key when encrypted, absent
  when not): rewritten to the ARN / the aws/rds key's ARN / removed;
* ``alias/aws/*`` keys report ``KeyManager: CUSTOMER`` (AWS: ``AWS``): the aws/rds key answers AWS.
Fields a fault removed stay removed: the hooks only rewrite moto's own placeholder values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rdklib import ComplianceType, InvalidParametersError

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import (
    ACCOUNT_ID,
    NOTIFICATION_TIME,
    PutEvaluationsRecorder,
    aws_shaped_rds,
    change_event,
    dbi_resource_id,
    history_item,
    inject,
    oversized_event,
    scheduled_event,
)

SPEC = get("RDS_STORAGE_ENCRYPTED_WITH_CMK")
RULE = SPEC.rule_class()
DB_INSTANCE, DB_CLUSTER = "AWS::RDS::DBInstance", "AWS::RDS::DBCluster"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
FIXTURES = Path(__file__).resolve().parent / "fixtures/ci"
EXEMPT_KEY = "ml-guardrails:exemption"
CMK_ALIAS = "alias/ml-rds"
EXPERIMENTS_ALIAS = "alias/ml-experiments"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


# AWS shapes: ml_guardrails.testing.aws_shaped_rds / dbi_resource_id (shared with the demo).


def seed_rds_cmk(session: boto3.Session) -> None:
    """DBs that show every verdict of RDS_STORAGE_ENCRYPTED_WITH_CMK, in the session's region, with
    :func:`aws_shaped_rds` installed on the session. With ``{"ExemptionTagKey": "ml-guardrails:exemption"}``:

    ml-feature-store            DBInstance  COMPLIANT       PostgreSQL, customer managed key alias/ml-rds
    ml-label-store              DBInstance  NON_COMPLIANT   MySQL, encrypted with the AWS managed aws/rds key
    ml-legacy-reporting         DBInstance  NON_COMPLIANT   PostgreSQL, not encrypted
    ml-sandbox                  DBInstance  NOT_APPLICABLE  not encrypted, exempted (else NON_COMPLIANT)
    ml-experiments              DBCluster   COMPLIANT       Aurora PostgreSQL, customer managed key (ARN)
                                                            alias/ml-experiments
    ml-experiments-instance-1   DBInstance  NOT_APPLICABLE  member of ml-experiments
    ml-model-registry           DBCluster   NON_COMPLIANT   Aurora MySQL, not encrypted

    Each DB the rule must ask KMS about uses its own key (alias/ml-rds, aws/rds, alias/ml-experiments), so
    a fault on one DescribeKey touches one DB; sharing a key is shown by test_one_describe_per_shared_key.
    """
    kms, rds = session.client("kms"), session.client("rds")
    key = kms.create_key(
        Description="ml-rds: customer managed key for ML databases",
        Tags=[{"TagKey": "project", "TagValue": "ml-platform"}],
    )["KeyMetadata"]
    kms.create_alias(AliasName=CMK_ALIAS, TargetKeyId=key["KeyId"])
    experiments_key = kms.create_key(Description="ml-experiments: customer managed key")["KeyMetadata"]
    kms.create_alias(AliasName=EXPERIMENTS_ALIAS, TargetKeyId=experiments_key["KeyId"])
    aws_shaped_rds(session)
    team = [{"Key": "team", "Value": "ml-platform"}]

    def instance(name: str, engine: str, **kwargs: Any) -> None:
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.r6g.large",
            Engine=engine,
            MasterUsername="mladmin",
            MasterUserPassword="not-a-real-password-1",  # moto only; never a real credential
            AllocatedStorage=100,
            Tags=kwargs.pop("Tags", team),
            **kwargs,
        )

    instance("ml-feature-store", "postgres", StorageEncrypted=True, KmsKeyId=key["KeyId"])
    instance("ml-label-store", "mysql", StorageEncrypted=True)
    instance("ml-legacy-reporting", "postgres")
    instance(
        "ml-sandbox", "postgres", Tags=[*team, {"Key": EXEMPT_KEY, "Value": "sandbox data only, RISK-91"}]
    )
    for name, engine, encryption in (
        (
            "ml-experiments",
            "aurora-postgresql",
            {"StorageEncrypted": True, "KmsKeyId": experiments_key["Arn"]},
        ),
        ("ml-model-registry", "aurora-mysql", {}),
    ):
        rds.create_db_cluster(
            DBClusterIdentifier=name,
            Engine=engine,
            MasterUsername="mladmin",
            MasterUserPassword="not-a-real-password-1",  # moto only
            Tags=team,
            **encryption,
        )
    rds.create_db_instance(
        DBInstanceIdentifier="ml-experiments-instance-1",
        DBInstanceClass="db.r6g.large",
        Engine="aurora-postgresql",
        DBClusterIdentifier="ml-experiments",
    )


SEEDED_VERDICTS = {
    "ml-feature-store": C,
    "ml-label-store": NC,
    "ml-legacy-reporting": NC,
    "ml-sandbox": NA,
    "ml-experiments": C,
    "ml-experiments-instance-1": NA,
    "ml-model-registry": NC,
}


def resource_ids(session: boto3.Session) -> dict[str, str]:
    """Identifier -> AWS Config resource ID (DbiResourceId / DbClusterResourceId), AWS-shaped."""
    rds = session.client("rds")
    ids = {d["DBInstanceIdentifier"]: d["DbiResourceId"] for d in rds.describe_db_instances()["DBInstances"]}
    ids.update(
        {c["DBClusterIdentifier"]: c["DbClusterResourceId"] for c in rds.describe_db_clusters()["DBClusters"]}
    )
    return ids


def ci_for(session: boto3.Session, identifier: str) -> dict[str, Any]:
    """A change-notification configuration item for a seeded DB instance or cluster, keyed as AWS Config
    keys it (Config resource schema: dBInstanceIdentifier, dbiResourceId, dbclusterIdentifier, ...)."""
    rds = session.client("rds")
    found = [d for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == identifier]
    if found:
        db = found[0]
        resource_type, resource_id, arn = DB_INSTANCE, db["DbiResourceId"], db["DBInstanceArn"]
        configuration = {
            "dBInstanceIdentifier": identifier,
            "dBInstanceClass": db.get("DBInstanceClass"),
            "engine": db.get("Engine"),
            "dBInstanceStatus": db.get("DBInstanceStatus"),
            "storageEncrypted": db.get("StorageEncrypted"),
            "dbiResourceId": resource_id,
            "dBInstanceArn": arn,
        }
        if db.get("DBClusterIdentifier"):
            configuration["dBClusterIdentifier"] = db["DBClusterIdentifier"]
    else:
        [db] = [c for c in rds.describe_db_clusters()["DBClusters"] if c["DBClusterIdentifier"] == identifier]
        resource_type, resource_id, arn = DB_CLUSTER, db["DbClusterResourceId"], db["DBClusterArn"]
        configuration = {
            "dbclusterIdentifier": identifier,
            "engine": db.get("Engine"),
            "status": db.get("Status"),
            "storageEncrypted": db.get("StorageEncrypted"),
            "dbClusterResourceId": resource_id,
            "dbclusterArn": arn,
        }
    if db.get("KmsKeyId"):
        configuration["kmsKeyId"] = db["KmsKeyId"]
    tags = {t["Key"]: t["Value"] for t in db.get("TagList") or []}
    return {
        "relatedEvents": [],
        "relationships": [],
        "configuration": configuration,
        "supplementaryConfiguration": {"Tags": [{"key": k, "value": v} for k, v in tags.items()]},
        "tags": tags,
        "configurationItemVersion": "1.3",
        "configurationItemCaptureTime": "2026-11-27T10:20:30.400Z",
        "configurationStateId": 1795774830400,
        "awsAccountId": ACCOUNT_ID,
        "configurationItemStatus": "OK",
        "resourceType": resource_type,
        "resourceId": resource_id,
        "resourceName": identifier,
        "ARN": arn,
        "awsRegion": session.region_name,
        "availabilityZone": "Multiple Availability Zones",
        "configurationStateMd5Hash": "",
        "resourceCreationTime": "2026-11-27T10:00:00.000Z",
    }


class CallLog:
    """The RDS and KMS operations clients of ``session`` make."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for service in ("rds", "kms"):
            session.events.register(f"provide-client-params.{service}.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [params for op, params in self.calls if op == name]


@pytest.fixture
def rec() -> Any:
    with mock_aws():
        yield PutEvaluationsRecorder()


def sweep(session: boto3.Session, raw: dict[str, Any] | None = None) -> tuple[list[Any], list[Any]]:
    rule = RULE()
    clients = ClientFactory(session=session, region=session.region_name, assume_role_mode=False)
    return rule.run_sweep(clients, rule.evaluate_parameters(raw or {}))


def by_name(session: boto3.Session, evaluations: list[Any]) -> dict[str, str]:
    names = {v: k for k, v in resource_ids(session).items()}
    return {names[e.complianceResourceId]: e.complianceType for e in evaluations}


# ------------------------------------------------------------------------------------------------ sweep
def test_moto_is_made_aws_shaped(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    rds = rec.session.client("rds")
    instances = {d["DBInstanceIdentifier"]: d for d in rds.describe_db_instances()["DBInstances"]}
    assert len({d["DbiResourceId"] for d in instances.values()}) == len(instances)
    assert all(re.fullmatch(r"db-[A-Z2-7]{26}", d["DbiResourceId"]) for d in instances.values())
    cmk = rec.session.client("kms").describe_key(KeyId=CMK_ALIAS)["KeyMetadata"]["Arn"]
    assert instances["ml-feature-store"]["KmsKeyId"] == cmk
    aws_rds = instances["ml-label-store"]["KmsKeyId"]
    assert rec.session.client("kms").describe_key(KeyId=aws_rds)["KeyMetadata"]["KeyManager"] == "AWS"
    assert "KmsKeyId" not in instances["ml-legacy-reporting"]
    clusters = {c["DBClusterIdentifier"]: c for c in rds.describe_db_clusters()["DBClusters"]}
    experiments = rec.session.client("kms").describe_key(KeyId=EXPERIMENTS_ALIAS)["KeyMetadata"]["Arn"]
    assert clusters["ml-experiments"]["KmsKeyId"] == experiments
    assert "KmsKeyId" not in clusters["ml-model-registry"]


def test_seed_and_sweep_show_every_verdict(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    log = CallLog(rec.session)
    evaluations, failures = sweep(rec.session, {"ExemptionTagKey": EXEMPT_KEY})
    calls = list(log.calls)
    assert failures == []
    assert by_name(rec.session, evaluations) == SEEDED_VERDICTS
    types = {e.complianceResourceId: e.complianceResourceType for e in evaluations}
    ids = resource_ids(rec.session)
    assert types[ids["ml-experiments"]] == types[ids["ml-model-registry"]] == DB_CLUSTER
    assert types[ids["ml-feature-store"]] == DB_INSTANCE
    assert all(0 < len(e.annotation) <= 256 for e in evaluations)
    # one listing each, DescribeKey once per key
    assert [op for op, _ in calls if op.startswith("DescribeDB")] == [
        "DescribeDBInstances",
        "DescribeDBClusters",
    ]
    described = [p["KeyId"] for op, p in calls if op == "DescribeKey"]
    assert len(described) == len(set(described)) == 3


def test_sweep_annotations(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    evaluations, _ = sweep(rec.session)
    ids = {v: k for k, v in resource_ids(rec.session).items()}
    notes = {ids[e.complianceResourceId]: e.annotation for e in evaluations}
    assert "aws/rds" in notes["ml-label-store"] and "copy the snapshot" in notes["ml-label-store"]
    assert "not encrypted" in notes["ml-legacy-reporting"]
    assert "restore a new cluster" in notes["ml-model-registry"]
    assert "DB cluster ml-experiments" in notes["ml-experiments-instance-1"]
    assert notes["ml-sandbox"].startswith("Storage is not encrypted")  # no ExemptionTagKey: evaluated


def test_allowlist_in_the_sweep(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    other = rec.session.client("kms").create_key()["KeyMetadata"]["Arn"]
    evaluations, _ = sweep(rec.session, {"KmsKeyArns": other})
    verdicts = by_name(rec.session, evaluations)
    assert verdicts["ml-feature-store"] == verdicts["ml-experiments"] == NC
    cmk = rec.session.client("kms").describe_key(KeyId=CMK_ALIAS)["KeyMetadata"]["Arn"]
    evaluations, _ = sweep(rec.session, {"KmsKeyArns": cmk})
    assert by_name(rec.session, evaluations)["ml-experiments"] == NC
    evaluations, _ = sweep(rec.session, {"KmsKeyArns": f"{other},{cmk}"})
    assert by_name(rec.session, evaluations)["ml-feature-store"] == C


def test_sweep_follows_pages_of_both_listings(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    rds = rec.session.client("rds")
    all_instances = rds.describe_db_instances()["DBInstances"]
    all_clusters = rds.describe_db_clusters()["DBClusters"]
    names = {v: k for k, v in resource_ids(rec.session).items()}
    # moto does not page; AWS pages with Marker (botocore paginator: input_token Marker, output Marker)
    inject(
        rec.session,
        "rds.DescribeDBInstances",
        response={"DBInstances": all_instances[:2], "Marker": "i1"},
        when=lambda p: "Marker" not in p,
    )
    inject(
        rec.session,
        "rds.DescribeDBInstances",
        response={"DBInstances": all_instances[2:]},
        when=lambda p: p.get("Marker") == "i1",
    )
    inject(
        rec.session,
        "rds.DescribeDBClusters",
        response={"DBClusters": all_clusters[:1], "Marker": "c1"},
        when=lambda p: "Marker" not in p,
    )
    inject(
        rec.session,
        "rds.DescribeDBClusters",
        response={"DBClusters": all_clusters[1:]},
        when=lambda p: p.get("Marker") == "c1",
    )
    log = CallLog(rec.session)
    evaluations, failures = sweep(rec.session, {"ExemptionTagKey": EXEMPT_KEY})
    listed = [op for op, _ in log.calls if op.startswith("DescribeDB")]
    assert failures == []
    assert {names[e.complianceResourceId]: e.complianceType for e in evaluations} == SEEDED_VERDICTS
    assert listed == ["DescribeDBInstances"] * 2 + ["DescribeDBClusters"] * 2


def test_aws_owned_key_cluster_in_the_api_shape(rec: PutEvaluationsRecorder) -> None:
    # Aurora clusters created since 2026 default to an AWS owned key: StorageEncrypted false, sse-rds.
    cluster = {
        "DBClusterIdentifier": "ml-new-default",
        "DbClusterResourceId": "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY2",
        "DBClusterArn": f"arn:aws:rds:us-east-1:{ACCOUNT_ID}:cluster:ml-new-default",
        "Engine": "aurora-postgresql",
        "Status": "available",
        "StorageEncrypted": False,
        "StorageEncryptionType": "sse-rds",
        "TagList": [],
    }
    inject(rec.session, "rds.DescribeDBClusters", response={"DBClusters": [cluster]})
    [evaluation], failures = sweep(rec.session)
    assert failures == []
    assert (evaluation.complianceResourceId, evaluation.complianceType) == (
        cluster["DbClusterResourceId"],
        NC,
    )
    assert "AWS owned key (sse-rds)" in evaluation.annotation


# --------------------------------------------------------------------------------------- end to end
def test_e2e_change_trigger_instance(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    ci = ci_for(rec.session, "ml-label-store")
    log = CallLog(rec.session)
    records = handle(RULE(), change_event(ci), session=rec.session)
    [posted] = rec.evaluations
    assert posted["ComplianceResourceType"] == DB_INSTANCE
    assert posted["ComplianceResourceId"] == ci["resourceId"] == dbi_resource_id("ml-label-store")
    assert posted["ComplianceType"] == NC
    assert posted["Annotation"].startswith("Storage is encrypted with the AWS managed key aws/rds.")
    assert posted["OrderingTimestamp"] == "2026-11-27T10:20:30.400Z"
    assert records == rec.evaluations and rec.calls[0]["TestMode"] is True
    assert [op for op, _ in log.calls] == ["DescribeKey"]


def test_e2e_change_trigger_fixture_cluster_member(rec: PutEvaluationsRecorder) -> None:
    handle(RULE(), change_event(fixture("rds_aurora_member_instance.json")), session=rec.session)
    [posted] = rec.evaluations
    assert (posted["ComplianceResourceId"], posted["ComplianceType"]) == ("db-ZYXWVUTSRQPONMLKJIHGFEDCB3", NA)
    assert "ml-experiments" in posted["Annotation"]


def test_e2e_change_trigger_cluster_cmk(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    ci = ci_for(rec.session, "ml-experiments")
    handle(RULE(), change_event(ci), session=rec.session)
    [posted] = rec.evaluations
    assert (posted["ComplianceResourceType"], posted["ComplianceType"]) == (DB_CLUSTER, C)
    assert posted["ComplianceResourceId"].startswith("cluster-")


def test_e2e_oversized_trigger(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    ci = ci_for(rec.session, "ml-model-registry")
    history = history_item(ci, dt.datetime(2026, 11, 27, 8, 30, 5, 250000, tzinfo=dt.UTC))
    inject(rec.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    records = handle(RULE(), oversized_event(DB_CLUSTER, ci["resourceId"]), session=rec.session)
    [posted] = rec.evaluations
    assert (posted["ComplianceResourceId"], posted["ComplianceType"]) == (ci["resourceId"], NC)
    assert posted["OrderingTimestamp"] == "2026-11-27T08:30:05.250Z"
    json.dumps(records)


def test_e2e_periodic_trigger(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    handle(RULE(), scheduled_event({"ExemptionTagKey": EXEMPT_KEY}), session=rec.session)
    names = {v: k for k, v in resource_ids(rec.session).items()}
    assert {names[k]: v for k, v in rec.verdicts().items()} == SEEDED_VERDICTS
    for posted in rec.evaluations:
        assert posted["OrderingTimestamp"] == NOTIFICATION_TIME
        assert len(posted["Annotation"]) <= 256


# ------------------------------------------------------------------------------------------ fail closed
def add_second_cmk_instance(session: boto3.Session) -> str:
    """Another instance under the seeded CMK alias/ml-rds (the key then serves two DBs); its resource id."""
    session.client("rds").create_db_instance(
        DBInstanceIdentifier="ml-feature-store-2",
        DBInstanceClass="db.r6g.large",
        Engine="postgres",
        MasterUsername="mladmin",
        MasterUserPassword="not-a-real-password-1",  # moto only
        AllocatedStorage=100,
        StorageEncrypted=True,
        KmsKeyId=CMK_ALIAS,
    )
    return dbi_resource_id("ml-feature-store-2")


def test_one_describe_per_shared_key(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    second = add_second_cmk_instance(rec.session)
    cmk = rec.session.client("kms").describe_key(KeyId=CMK_ALIAS)["KeyMetadata"]["Arn"]
    log = CallLog(rec.session)
    evaluations, failures = sweep(rec.session)
    described = [p["KeyId"] for p in log.ops("DescribeKey")]
    assert failures == []
    assert {e.complianceResourceId: e.complianceType for e in evaluations}[second] == C
    assert described.count(cmk) == 1 and len(described) == 3


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_one_unreadable_key_fails_only_the_dbs_using_it(rec: PutEvaluationsRecorder, code: str) -> None:
    seed_rds_cmk(rec.session)
    second = add_second_cmk_instance(rec.session)
    cmk = rec.session.client("kms").describe_key(KeyId=CMK_ALIAS)["KeyMetadata"]["Arn"]
    ids = resource_ids(rec.session)
    inject(rec.session, "kms.DescribeKey", error_code=code, when=lambda p: p.get("KeyId") == cmk)
    log = CallLog(rec.session)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event({"ExemptionTagKey": EXEMPT_KEY}), session=rec.session)
    failed = {f.resource_id for f in info.value.failures}
    assert failed == {ids["ml-feature-store"], second}
    assert {f.operation for f in info.value.failures} == {"DescribeKey"}
    assert {f.code for f in info.value.failures} == {code}
    verdicts = rec.verdicts()
    assert not failed & set(verdicts)
    assert len(verdicts) == len(SEEDED_VERDICTS) - 1  # 7 seeded + 1 added - 2 failed
    # the error is cached: one DescribeKey (with its retries) for the CMK, not one per DB
    assert len([p for p in log.ops("DescribeKey") if p["KeyId"] == cmk]) == 1
    if code == "AccessDeniedException":
        assert all("Allow kms:DescribeKey" in f.message for f in info.value.failures)


def test_shared_cmk_of_another_account_denied_names_the_owner(rec: PutEvaluationsRecorder) -> None:
    shared = "arn:aws:kms:us-east-1:444455556666:key/5e5e5e5e-1111-2222-3333-444455556666"
    ci = fixture("rds_instance_cmk.json")
    ci["configuration"]["kmsKeyId"] = shared
    # AWS answers AccessDenied when the key policy of the owner does not grant this caller DescribeKey
    inject(rec.session, "kms.DescribeKey", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(ci), session=rec.session)
    [failure] = info.value.failures
    assert (failure.resource_id, failure.operation, failure.code) == (
        ci["resourceId"],
        "DescribeKey",
        "AccessDeniedException",
    )
    assert "account 444455556666" in failure.message and "not marked COMPLIANT" in failure.message
    assert rec.calls == []


def test_listing_denied_fails_the_sweep_and_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    inject(rec.session, "rds.DescribeDBClusters", error_code="AccessDenied", status=403)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(), session=rec.session)
    assert [f.resource_id for f in info.value.failures] == ["*"]
    # the instances listed before the failure are posted; the clusters are not guessed
    assert not any(v.startswith("cluster-") for v in rec.verdicts())


def test_malformed_listing_entry_fails_that_db_only(rec: PutEvaluationsRecorder) -> None:
    seed_rds_cmk(rec.session)
    instances = rec.session.client("rds").describe_db_instances()["DBInstances"]
    broken = dict(instances[0])
    del broken["StorageEncrypted"]
    inject(rec.session, "rds.DescribeDBInstances", response={"DBInstances": [broken, *instances[1:]]})
    evaluations, failures = sweep(rec.session, {"ExemptionTagKey": EXEMPT_KEY})
    [failure] = failures
    assert (failure.resource_id, failure.code, failure.operation) == (
        broken["DbiResourceId"],
        "MalformedConfigurationItem",
        "DescribeDBInstances",
    )
    assert len(evaluations) == len(SEEDED_VERDICTS) - 1


def test_malformed_item_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    ci = fixture("rds_instance_cmk.json")
    del ci["configuration"]["kmsKeyId"]
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(ci), session=rec.session)
    assert info.value.failures[0].code == "MalformedConfigurationItem"
    assert rec.calls == []


@pytest.mark.parametrize("trigger", ["change", "periodic"])
def test_invalid_parameters_post_nothing(rec: PutEvaluationsRecorder, trigger: str) -> None:
    raw = {"KmsKeyArns": "alias/ml-rds"}
    event = (
        change_event(fixture("rds_instance_cmk.json"), raw) if trigger == "change" else scheduled_event(raw)
    )
    with pytest.raises(InvalidParametersError, match="KmsKeyArns"):
        handle(RULE(), event, session=rec.session)
    assert rec.calls == []


# --------------------------------------------------------------------------------------- remediation
def test_binding_runs_the_notification_runbook(rec: PutEvaluationsRecorder) -> None:
    """parameters.json's binding, as AWS Config passes it, publishes the finding (moto SNS + SQS)."""
    from ml_guardrails.runbooks import FakeClock, run_runbook

    assert SPEC.remediation is not None
    assert SPEC.remediation.target_id == "MlGuardrails-NotifyNonCompliantResource"
    sns, sqs = rec.session.client("sns"), rec.session.client("sqs")
    topic = sns.create_topic(Name="ml-guardrails-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    parameters = SPEC.remediation.parameters_for(dbi_resource_id("ml-label-store"))
    assert parameters["TopicArn"] == [
        "arn:aws:sns:us-east-1:111122223333:ml-guardrails-findings"
    ]  # placeholder
    parameters["TopicArn"] = [topic]  # the SAM template passes the stack's topic
    execution = run_runbook(SPEC.remediation.runbook_path, parameters, rec.session, clock=FakeClock())
    assert execution.status == "Success", execution.failure_message
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    body = json.loads(json.loads(message["Body"])["Message"])
    assert body["rule"] == "RDS_STORAGE_ENCRYPTED_WITH_CMK"
    assert body["resourceId"] == dbi_resource_id("ml-label-store")
    assert "customer managed KMS key" in body["whatToDo"]
