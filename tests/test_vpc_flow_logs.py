"""VPC_FLOW_LOGS_ENABLED against moto: the sweep, the handler end to end per trigger, fail-closed paths,
invalid parameters, and the demo seed (``seed_vpc_flow_logs``).

moto 5.2.5 vs AWS, as met here:
- moto describes a cloud-watch-logs flow log whose log group does not exist with DeliverLogsStatus FAILED
  and "Access error"; AWS creates the group when the delivery role may (logs:CreateLogGroup) and reports
  FAILED only when delivery really fails. The seed uses this to show a FAILED delivery.
- moto returns every flow log in one DescribeFlowLogs page (no NextToken); pagination is exercised with a
  fake in the rule's unit tests and with an injected DescribeVpcs page here.
- moto rejects an S3 destination ARN with a prefix (``arn:aws:s3:::bucket/prefix/``); the seed uses
  prefix-less ARNs (AWS accepts both).
- moto pre-creates a default VPC (172.31.0.0/16) in every region, as AWS does in accounts created after
  2013-12-04; it is evaluated like any other VPC.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rdklib import InvalidParametersError

from ml_guardrails.catalog import get
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import (
    ACCOUNT_ID,
    NOTIFICATION_TIME,
    REGION,
    PutEvaluationsRecorder,
    change_event,
    history_item,
    inject,
    oversized_event,
    scheduled_event,
)

mod = get("VPC_FLOW_LOGS_ENABLED").load_module()
RULE = mod.VPC_FLOW_LOGS_ENABLED
RTYPE = "AWS::EC2::VPC"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"
EXEMPTION_TAG = "ml-guardrails:exemption"
# The demo runs the rule with this parameter so the exempted VPC shows NOT_APPLICABLE.
DEMO_PARAMETERS = {"ExemptionTagKey": EXEMPTION_TAG}


# ------------------------------------------------------------------------------------- demo seed
def seed_vpc_flow_logs(session: boto3.Session) -> None:
    """Seed VPCs showing every verdict of VPC_FLOW_LOGS_ENABLED (with ``ExemptionTagKey`` =
    ``ml-guardrails:exemption``). The region's default VPC (no flow log) is NON_COMPLIANT as well."""
    ec2 = session.client("ec2")
    s3 = session.client("s3")
    logs = session.client("logs")
    iam = session.client("iam")
    bucket = f"ml-flow-logs-{ACCOUNT_ID}"
    s3.create_bucket(Bucket=bucket)
    iam.create_role(
        RoleName="ml-flow-logs-delivery",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/ml-flow-logs-delivery"
    logs.create_log_group(logGroupName="/ml/vpc-flow-logs")

    def vpc(name: str, cidr: str, extra_tags: dict[str, str] | None = None) -> str:
        tags = [{"Key": "Name", "Value": name}] + [
            {"Key": k, "Value": v} for k, v in (extra_tags or {}).items()
        ]
        created = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])
        return str(created["Vpc"]["VpcId"])

    # COMPLIANT: ALL traffic to S3.
    ec2.create_flow_logs(
        ResourceIds=[vpc("ml-training", "10.10.0.0/16")],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{bucket}",
    )
    # COMPLIANT: ALL traffic to CloudWatch Logs with a delivery role.
    ec2.create_flow_logs(
        ResourceIds=[vpc("ml-inference", "10.11.0.0/16")],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="/ml/vpc-flow-logs",
        DeliverLogsPermissionArn=role_arn,
    )
    # NON_COMPLIANT: REJECT only -- accepted (exfiltration) traffic is not recorded.
    ec2.create_flow_logs(
        ResourceIds=[vpc("ml-feature-store", "10.12.0.0/16")],
        ResourceType="VPC",
        TrafficType="REJECT",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{bucket}",
    )
    # NON_COMPLIANT: delivery FAILED (moto: the log group does not exist -> "Access error").
    ec2.create_flow_logs(
        ResourceIds=[vpc("ml-notebooks", "10.13.0.0/16")],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="/ml/deleted-log-group",
        DeliverLogsPermissionArn=role_arn,
    )
    # NON_COMPLIANT: only a subnet flow log; the VPC itself has none.
    subnet_only = vpc("ml-batch", "10.14.0.0/16")
    subnet = ec2.create_subnet(VpcId=subnet_only, CidrBlock="10.14.1.0/24")["Subnet"]["SubnetId"]
    ec2.create_flow_logs(
        ResourceIds=[subnet],
        ResourceType="Subnet",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{bucket}",
    )
    # NOT_APPLICABLE: exempted by tag (no flow log).
    vpc("ml-sandbox", "10.15.0.0/16", {EXEMPTION_TAG: "isolated sandbox without egress, RISK-1234"})


EXPECTED = {
    "ml-training": "COMPLIANT",
    "ml-inference": "COMPLIANT",
    "ml-feature-store": "NON_COMPLIANT",
    "ml-notebooks": "NON_COMPLIANT",
    "ml-batch": "NON_COMPLIANT",
    "ml-sandbox": "NOT_APPLICABLE",
    "(default)": "NON_COMPLIANT",
}


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def rec(aws: Any) -> PutEvaluationsRecorder:
    return PutEvaluationsRecorder()


def names(session: boto3.Session) -> dict[str, str]:
    """VPC id -> Name tag ("(default)" for the default VPC)."""
    result = {}
    for vpc in session.client("ec2").describe_vpcs()["Vpcs"]:
        tags = {t["Key"]: t["Value"] for t in vpc.get("Tags", [])}
        result[vpc["VpcId"]] = "(default)" if vpc["IsDefault"] else tags.get("Name", "?")
    return result


def vpc_id(session: boto3.Session, name: str) -> str:
    return next(k for k, v in names(session).items() if v == name)


def api_calls(session: boto3.Session) -> list[str]:
    """Every EC2/STS operation the session's clients make, in order."""
    calls: list[str] = []

    def _record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    session.events.register("before-parameter-build.ec2", _record)
    session.events.register("before-parameter-build.sts", _record)
    return calls


def ci_for(session: boto3.Session, name: str) -> dict[str, Any]:
    """The ml-training fixture CI re-pointed at the moto VPC called ``name``."""
    ci = json.loads((FIXTURES / "vpc_ml_training.json").read_text(encoding="utf-8"))
    vid = vpc_id(session, name)
    ci["resourceId"] = vid
    ci["ARN"] = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:vpc/{vid}"
    ci["awsAccountId"] = ACCOUNT_ID
    ci["configuration"]["vpcId"] = vid
    ci["configuration"]["ownerId"] = ACCOUNT_ID
    ci["tags"]["Name"] = name
    return ci


def by_name(session: boto3.Session, rec: PutEvaluationsRecorder) -> dict[str, str]:
    labels = names(session)
    return {labels.get(rid, rid): verdict for rid, verdict in rec.verdicts().items()}


# -------------------------------------------------------------------------------------------- sweep
def test_seed_shows_every_verdict_in_the_sweep(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    calls = api_calls(rec.session)
    posted = handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=rec.session)
    made = [c for c in calls if c != "AssumeRole"]  # the engine assumes the execution role first
    # one region-wide flow-log read whatever the number of VPCs, one VPC listing, one caller identity
    assert made == ["DescribeFlowLogs", "DescribeVpcs", "GetCallerIdentity"]
    assert by_name(rec.session, rec) == EXPECTED
    assert len(posted) == len(EXPECTED)
    labels = names(rec.session)
    annotations = {labels[e["ComplianceResourceId"]]: e["Annotation"] for e in rec.evaluations}
    assert "REJECT only, ALL required" in annotations["ml-feature-store"]
    assert "delivery FAILED: Access error" in annotations["ml-notebooks"]
    assert "subnet/ENI flow logs do not cover it" in annotations["ml-batch"]
    assert "delete the unused default VPC" in annotations["(default)"]
    assert "RISK-1234" in annotations["ml-sandbox"]
    assert all(len(a) <= 256 for a in annotations.values())


def test_sweep_parameters(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    handle(
        RULE(), scheduled_event({"TrafficType": "REJECT", "LogDestinationTypes": "s3"}), session=rec.session
    )
    verdicts = by_name(rec.session, rec)
    assert verdicts["ml-feature-store"] == "COMPLIANT"  # REJECT to s3 meets REJECT
    assert verdicts["ml-training"] == "COMPLIANT"  # ALL covers REJECT
    assert verdicts["ml-inference"] == "NON_COMPLIANT"  # cloud-watch-logs not allowed
    assert verdicts["ml-sandbox"] == "NON_COMPLIANT"  # no exemption key configured


def test_sweep_of_a_shared_vpc_is_not_applicable(rec: PutEvaluationsRecorder) -> None:
    # moto cannot share a VPC through RAM: the DescribeVpcs answer a participant account gets is injected.
    shared = {
        "VpcId": "vpc-0sharedbyneta0001",
        "OwnerId": "210987654321",
        "State": "available",
        "IsDefault": False,
    }
    inject(rec.session, "ec2.DescribeVpcs", response={"Vpcs": [shared]})
    handle(RULE(), scheduled_event(), session=rec.session)
    (evaluation,) = rec.evaluations
    assert evaluation["ComplianceType"] == "NOT_APPLICABLE"
    assert "owned by account 210987654321" in evaluation["Annotation"]


# ---------------------------------------------------------------------------------- end to end: change
def test_change_event_end_to_end_compliant(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    ci = ci_for(rec.session, "ml-training")
    calls = api_calls(rec.session)
    posted = handle(RULE(), change_event(ci), session=rec.session)
    assert [c for c in calls if c != "AssumeRole"] == ["DescribeFlowLogs"]  # exactly one read
    (evaluation,) = rec.evaluations
    assert evaluation["ComplianceType"] == "COMPLIANT"
    assert evaluation["ComplianceResourceId"] == ci["resourceId"]
    assert evaluation["ComplianceResourceType"] == RTYPE
    assert evaluation["OrderingTimestamp"] == ci["configurationItemCaptureTime"]
    assert "captures ALL traffic" in evaluation["Annotation"]
    assert posted == rec.evaluations
    assert rec.calls[0]["TestMode"] is True


def test_change_event_end_to_end_non_compliant(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    ci = ci_for(rec.session, "ml-batch")
    handle(RULE(), change_event(ci), session=rec.session)
    (evaluation,) = rec.evaluations
    assert evaluation["ComplianceType"] == "NON_COMPLIANT"
    assert evaluation["ComplianceResourceId"] == ci["resourceId"]
    assert "no VPC-level flow log" in evaluation["Annotation"]
    assert evaluation["OrderingTimestamp"] == ci["configurationItemCaptureTime"]


def test_change_event_deleted_vpc_is_not_applicable_without_reads(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    ci = ci_for(rec.session, "ml-batch")
    ci["configurationItemStatus"] = "ResourceDeleted"
    ci["configuration"] = None
    calls = api_calls(rec.session)
    handle(RULE(), change_event(ci), session=rec.session)
    assert rec.verdicts() == {ci["resourceId"]: "NOT_APPLICABLE"}
    assert [c for c in calls if c != "AssumeRole"] == []


def test_oversized_event_end_to_end(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    ci = ci_for(rec.session, "ml-feature-store")
    captured = dt.datetime(2026, 11, 27, 8, 30, 5, 123000, tzinfo=dt.UTC)
    history = history_item(ci, captured)
    inject(rec.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    posted = handle(RULE(), oversized_event(RTYPE, ci["resourceId"]), session=rec.session)
    (evaluation,) = rec.evaluations
    assert evaluation["ComplianceType"] == "NON_COMPLIANT"
    assert evaluation["ComplianceResourceId"] == ci["resourceId"]
    assert "REJECT only" in evaluation["Annotation"]
    assert evaluation["OrderingTimestamp"] == "2026-11-27T08:30:05.123Z"
    json.dumps(posted)  # the Lambda runtime must be able to marshal the return value


def test_periodic_end_to_end(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=rec.session)
    assert {e["OrderingTimestamp"] for e in rec.evaluations} == {NOTIFICATION_TIME}
    assert {e["ComplianceResourceType"] for e in rec.evaluations} == {RTYPE}
    assert set(rec.verdicts()) == set(names(rec.session))


# ------------------------------------------------------------------------------------------ fail closed
def test_malformed_flow_log_of_one_vpc_fails_only_that_vpc(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    broken = vpc_id(rec.session, "ml-training")
    real = rec.session.client("ec2").describe_flow_logs()["FlowLogs"]
    for entry in real:
        if entry["ResourceId"] == broken:
            entry["TrafficType"] = {"unexpected": "shape"}
    inject(rec.session, "ec2.DescribeFlowLogs", response={"FlowLogs": real})
    with pytest.raises(EvaluationIncomplete) as caught:
        handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=rec.session)
    assert [f.resource_id for f in caught.value.failures] == [broken]
    assert broken in str(caught.value)
    verdicts = by_name(rec.session, rec)
    assert "ml-training" not in verdicts  # nothing posted for it, certainly not COMPLIANT
    assert verdicts == {k: v for k, v in EXPECTED.items() if k != "ml-training"}


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "RequestLimitExceeded"])
def test_flow_log_read_failure_fails_the_sweep_and_posts_nothing(
    rec: PutEvaluationsRecorder, code: str
) -> None:
    # The sweep reads flow logs region-wide before deciding any VPC (DESIGN: no per-VPC call), so a
    # denied or throttled read leaves every VPC undecided: nothing is posted, the sweep fails naming it.
    # (testing.inject answers at before-call, which skips botocore's retry loop: the throttle is final
    # at once here; in AWS the client's standard-mode retries run first.)
    seed_vpc_flow_logs(rec.session)
    inject(rec.session, "ec2.DescribeFlowLogs", error_code=code)
    with pytest.raises(EvaluationIncomplete) as caught:
        handle(RULE(), scheduled_event(), session=rec.session)
    (failure,) = caught.value.failures
    assert (failure.resource_id, failure.operation, failure.code) == ("*", "DescribeFlowLogs", code)
    assert rec.calls == []


def test_throttled_second_vpc_page_keeps_the_first_page(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    first = next(v for v in rec.session.client("ec2").describe_vpcs()["Vpcs"] if v.get("Tags"))
    inject(
        rec.session,
        "ec2.DescribeVpcs",
        response={"Vpcs": [first], "NextToken": "page-2"},
        when=lambda p: not p.get("NextToken"),
    )
    inject(rec.session, "ec2.DescribeVpcs", error_code="Throttling", when=lambda p: bool(p.get("NextToken")))
    with pytest.raises(EvaluationIncomplete) as caught:
        handle(RULE(), scheduled_event(), session=rec.session)
    assert [(f.resource_id, f.code) for f in caught.value.failures] == [("*", "Throttling")]
    assert list(rec.verdicts()) == [first["VpcId"]]


def test_access_denied_on_the_change_path_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    ci = ci_for(rec.session, "ml-training")
    inject(rec.session, "ec2.DescribeFlowLogs", error_code="UnauthorizedOperation", status=403)
    with pytest.raises(EvaluationIncomplete) as caught:
        handle(RULE(), change_event(ci), session=rec.session)
    (failure,) = caught.value.failures
    assert (failure.resource_id, failure.code) == (ci["resourceId"], "UnauthorizedOperation")
    assert rec.calls == []


def test_malformed_ci_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    seed_vpc_flow_logs(rec.session)
    ci = ci_for(rec.session, "ml-training")
    ci["configuration"]["vpcId"] = "vpc-somethingelse"
    with pytest.raises(EvaluationIncomplete) as caught:
        handle(RULE(), change_event(ci), session=rec.session)
    assert caught.value.failures[0].code == "MalformedConfigurationItem"
    assert rec.calls == []


# ---------------------------------------------------------------------------------- invalid parameters
@pytest.mark.parametrize(
    ("parameters", "name"),
    [
        ({"TrafficType": "EVERYTHING"}, "TrafficType"),
        ({"LogDestinationTypes": "s3,syslog"}, "LogDestinationTypes"),
        ({"trafficType": "ALL"}, "trafficType"),
    ],
)
def test_invalid_parameters_post_nothing(
    rec: PutEvaluationsRecorder, parameters: dict[str, str], name: str
) -> None:
    seed_vpc_flow_logs(rec.session)
    for event in (scheduled_event(parameters), change_event(ci_for(rec.session, "ml-training"), parameters)):
        with pytest.raises(InvalidParametersError, match=name):
            handle(RULE(), event, session=rec.session)
    assert rec.calls == []
