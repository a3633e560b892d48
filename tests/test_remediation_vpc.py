"""Runbook MlGuardrails-EnableVpcFlowLogs (remediation of VPC_FLOW_LOGS_ENABLED), run by the local runner
against moto: the rule's NON_COMPLIANT cases become COMPLIANT, reruns change nothing, bad input fails
with the runbook's message and leaves the VPC's flow logs as they were, a fault after CreateFlowLogs
leaves a state a rerun completes, and the Remediation binding in parameters.json fits the runbook.

moto 5.2.5 vs AWS, as met here (the runbook follows AWS):
- moto rejects an S3 destination ARN with a prefix (``arn:aws:s3:::bucket/prefix/`` → Unsuccessful
  "does not exist"); AWS accepts it. Tests use prefix-less bucket ARNs.
- moto ignores CreateFlowLogs' ClientToken (AWS uses it for idempotent retries) and raises
  FlowLogAlreadyExists for any second flow log of the same resource and destination, whatever its
  traffic type; the REJECT-only case therefore keeps its old flow log on another bucket.
- moto marks a cloud-watch-logs flow log FAILED ("Access error") unless a log group of that *name* exists,
  and it looks the group up by LogGroupName only (a LogDestination ARN reads as a missing group). The
  runbook passes the documented LogGroupName for a local log group ARN, which works in both.
- moto reports a missing S3 bucket in ``Unsuccessful``; AWS does the same for a bucket whose policy
  does not let delivery.logs.amazonaws.com write (injected here, moto has no bucket-policy check).
- moto creates every flow log ACTIVE with DeliverLogsStatus SUCCESS at once; AWS may take a moment
  (WaitForFlowLogActive) and reports FAILED delivery only later (the rule's next evaluation sees it).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.runbooks import FakeClock, RunbookError, run_runbook
from ml_guardrails.testing import ACCOUNT_ID, REGION, inject

RULE_NAME = "VPC_FLOW_LOGS_ENABLED"
SPEC = get(RULE_NAME)
ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "remediations" / "MlGuardrails-EnableVpcFlowLogs.yaml"
DOC = yaml.safe_load(RUNBOOK.read_text())
BUCKET = "ml-flow-logs-archive"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
OTHER_BUCKET = "ml-flow-logs-old"
LOG_GROUP = "/ml/vpc-flow-logs"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{LOG_GROUP}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/ml-flow-logs-delivery"
CREATED_BY = "ml-guardrails:created-by"
NOTHING_CHANGED = "already compliant, nothing changed"


# ----------------------------------------------------------------------------------------- helpers
@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        s = boto3.Session(region_name=REGION)
        s3 = s.client("s3")
        for name in (BUCKET, OTHER_BUCKET):
            s3.create_bucket(Bucket=name)
        s.client("logs").create_log_group(logGroupName=LOG_GROUP)
        # No IAM role is created: moto does not check that DeliverLogsPermissionArn exists (AWS checks
        # that the caller may iam:PassRole it), and moto's IAM start-up is slow.
        yield s


def make_vpc(session: boto3.Session, cidr: str = "10.20.0.0/16") -> str:
    return session.client("ec2").create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]


def add_flow_log(session: boto3.Session, resource_id: str, **kwargs: Any) -> str:
    resource_type = "VPC" if resource_id.startswith("vpc-") else "Subnet"
    response = session.client("ec2").create_flow_logs(
        ResourceType=resource_type, ResourceIds=[resource_id], **kwargs
    )
    assert not response["Unsuccessful"], response["Unsuccessful"]
    return response["FlowLogIds"][0]


def flow_logs(session: boto3.Session, vpc_id: str) -> list[dict[str, Any]]:
    """The VPC's own flow logs, as DescribeFlowLogs describes them (stable order)."""
    ec2 = session.client("ec2")
    found = ec2.describe_flow_logs(Filter=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
    return sorted(found, key=lambda f: f["FlowLogId"])


def all_flow_logs(session: boto3.Session) -> list[dict[str, Any]]:
    return sorted(session.client("ec2").describe_flow_logs()["FlowLogs"], key=lambda f: f["FlowLogId"])


def verdict(session: boto3.Session, vpc_id: str, **rule_parameters: str) -> tuple[str, str]:
    """The rule's (compliance, annotation) for ``vpc_id`` from its periodic sweep."""
    rule = SPEC.rule_class()()
    clients = ClientFactory(region=REGION, assume_role_mode=False, session=session)
    evaluations, failures = rule.run_sweep(clients, rule.evaluate_parameters(rule_parameters))
    assert not failures, failures
    found = {e.complianceResourceId: (e.complianceType, e.annotation) for e in evaluations}
    return found[vpc_id]


def config_parameters(vpc_id: str, **overrides: Any) -> dict[str, Any]:
    """The parameters as AWS Config passes them from the binding (every value a list of strings, the
    resource input = the rule's resourceId), with deployment values overridden."""
    assert SPEC.remediation is not None
    values = SPEC.remediation.parameters_for(vpc_id)
    values.update(overrides)
    return values


def as_ssm_types(values: dict[str, Any]) -> dict[str, Any]:
    """What SSM makes of Config's lists: a one-element list for a non-StringList parameter is its value
    (the runner does not do this yet, see test_runner_takes_the_config_lists_as_they_are)."""
    declared = DOC["parameters"]
    return {
        k: v[0] if isinstance(v, list) and len(v) == 1 and declared[k]["type"] != "StringList" else v
        for k, v in values.items()
    }


def run(session: boto3.Session, **parameters: Any) -> Any:
    parameters.setdefault("LogDestination", BUCKET_ARN)
    return run_runbook(RUNBOOK, parameters, session, clock=FakeClock())


def run_s3(session: boto3.Session, vpc_id: str, **extra: Any) -> Any:
    return run(session, VpcId=vpc_id, LogDestinationType="s3", **extra)


def run_cwl(session: boto3.Session, vpc_id: str, **extra: Any) -> Any:
    extra.setdefault("LogDestination", LOG_GROUP_ARN)
    extra.setdefault("DeliverLogsPermissionArn", ROLE_ARN)
    return run(session, VpcId=vpc_id, LogDestinationType="cloud-watch-logs", **extra)


def steps_run(execution: Any) -> list[str]:
    return [s.name for s in execution.steps if s.status not in ("Skipped", "Pending")]


def assert_created(execution: Any, session: boto3.Session, vpc_id: str) -> dict[str, Any]:
    """The run succeeded, created one flow log tagged with its execution, and reports the change."""
    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["VerifyFlowLog.Changed"] is True
    flow_log_id = execution.outputs["VerifyFlowLog.FlowLogId"]
    assert f"Created flow log {flow_log_id}" in execution.outputs["VerifyFlowLog.Message"]
    created = [f for f in flow_logs(session, vpc_id) if f["FlowLogId"] == flow_log_id]
    assert len(created) == 1
    flow_log = created[0]
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["FlowLogStatus"] == "ACTIVE"
    tags = {t["Key"]: t["Value"] for t in flow_log.get("Tags", [])}
    assert tags[CREATED_BY] == execution.execution_id
    assert tags["ml-guardrails:rule"] == RULE_NAME
    return flow_log


def fails_before_any_call(session: boto3.Session, match: str, **parameters: Any) -> None:
    """A parameter SSM itself rejects: StartAutomationExecution fails (RunbookError) or the execution is
    Failed naming the parameter, before any step runs."""
    calls: list[str] = []
    session.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
    try:
        execution = run(session, **parameters)
    except RunbookError as exc:
        assert re.search(match, str(exc)), str(exc)
    else:
        assert execution.status == "Failed"
        assert re.search(match, execution.failure_message or ""), execution.failure_message
        assert not steps_run(execution)
    assert calls == []


# ------------------------------------------------------------------ (1) NON_COMPLIANT → COMPLIANT
def test_vpc_without_flow_log_gets_an_s3_flow_log_with_the_config_binding(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    assert verdict(session, vpc_id)[0] == "NON_COMPLIANT"
    # As AWS Config passes them: the binding's values (lists), the deployer's bucket for LogDestination.
    parameters = as_ssm_types(config_parameters(vpc_id, LogDestination=[BUCKET_ARN]))
    execution = run_runbook(RUNBOOK, parameters, session, clock=FakeClock())
    flow_log = assert_created(execution, session, vpc_id)
    assert flow_log["LogDestinationType"] == "s3"
    assert flow_log["LogDestination"] == BUCKET_ARN
    assert flow_log["MaxAggregationInterval"] == 600
    assert "DeliverLogsPermissionArn" not in flow_log or not flow_log["DeliverLogsPermissionArn"]
    assert steps_run(execution) == [
        "CheckVpcAndFlowLogs",
        "ChooseAction",
        "CreateFlowLog",
        "WaitForFlowLogActive",
        "VerifyFlowLog",
    ]
    compliance, annotation = verdict(session, vpc_id)
    assert compliance == "COMPLIANT", annotation
    assert flow_log["FlowLogId"] in annotation


def test_cloud_watch_logs_destination_with_delivery_role(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    assert verdict(session, vpc_id)[0] == "NON_COMPLIANT"
    # The console/DescribeLogGroups form of the ARN ends in ":*"; the runbook accepts it.
    execution = run_cwl(session, vpc_id, LogDestination=LOG_GROUP_ARN + ":*", MaxAggregationInterval="60")
    flow_log = assert_created(execution, session, vpc_id)
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["LogGroupName"] == LOG_GROUP
    assert flow_log["DeliverLogsPermissionArn"] == ROLE_ARN
    assert flow_log["MaxAggregationInterval"] == 60
    assert verdict(session, vpc_id)[0] == "COMPLIANT"


def test_reject_only_flow_log_is_kept_and_an_all_one_added(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    old = add_flow_log(
        session,
        vpc_id,
        TrafficType="REJECT",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{OTHER_BUCKET}",
    )
    before = flow_logs(session, vpc_id)
    compliance, annotation = verdict(session, vpc_id)
    assert compliance == "NON_COMPLIANT" and "REJECT only" in annotation
    execution = run_s3(session, vpc_id)
    assert_created(execution, session, vpc_id)
    assert old in execution.outputs["CheckVpcAndFlowLogs.Message"]
    after = flow_logs(session, vpc_id)
    assert [f for f in after if f["FlowLogId"] == old] == before  # untouched
    assert len(after) == 2
    assert verdict(session, vpc_id)[0] == "COMPLIANT"


def test_failed_delivery_flow_log_is_kept_and_a_working_one_added(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    # moto: a cloud-watch-logs flow log to a log group that does not exist is FAILED "Access error".
    failed = add_flow_log(
        session, vpc_id, TrafficType="ALL", LogGroupName="/missing/group", DeliverLogsPermissionArn=ROLE_ARN
    )
    before = flow_logs(session, vpc_id)
    assert before[0]["DeliverLogsStatus"] == "FAILED"
    assert "delivery FAILED" in verdict(session, vpc_id)[1]
    execution = run_s3(session, vpc_id)
    assert_created(execution, session, vpc_id)
    assert [f for f in flow_logs(session, vpc_id) if f["FlowLogId"] == failed] == before
    assert verdict(session, vpc_id)[0] == "COMPLIANT"


def test_subnet_flow_log_does_not_count_and_a_vpc_flow_log_is_added(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    subnet_id = session.client("ec2").create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24")["Subnet"][
        "SubnetId"
    ]
    add_flow_log(session, subnet_id, TrafficType="ALL", LogDestinationType="s3", LogDestination=BUCKET_ARN)
    assert "subnet/ENI flow logs do not cover it" in verdict(session, vpc_id)[1]
    execution = run_s3(session, vpc_id)
    flow_log = assert_created(execution, session, vpc_id)
    assert flow_log["ResourceId"] == vpc_id
    assert verdict(session, vpc_id)[0] == "COMPLIANT"


def test_default_vpc_is_remediated_like_any_other(session: boto3.Session) -> None:
    default = session.client("ec2").describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])[
        "Vpcs"
    ]
    vpc_id = default[0]["VpcId"]
    assert verdict(session, vpc_id)[0] == "NON_COMPLIANT"
    assert_created(run_s3(session, vpc_id), session, vpc_id)
    assert verdict(session, vpc_id)[0] == "COMPLIANT"


def test_restricted_destination_types_follow_the_rule_parameter(session: boto3.Session) -> None:
    """With the rule's LogDestinationTypes = s3, a working cloud-watch-logs flow log does not count; the
    runbook bound with AcceptedLogDestinationTypes [s3] adds an s3 one (with the default, it would see
    the cloud-watch-logs one as compliant: the binding must mirror the rule's parameter)."""
    vpc_id = make_vpc(session)
    add_flow_log(
        session, vpc_id, TrafficType="ALL", LogGroupName=LOG_GROUP, DeliverLogsPermissionArn=ROLE_ARN
    )
    assert verdict(session, vpc_id)[0] == "COMPLIANT"
    assert verdict(session, vpc_id, LogDestinationTypes="s3")[0] == "NON_COMPLIANT"

    unbound = run_s3(session, vpc_id)
    assert unbound.status == "Success" and unbound.outputs["VerifyFlowLog.Changed"] is False

    execution = run_s3(session, vpc_id, AcceptedLogDestinationTypes=["s3"])
    assert_created(execution, session, vpc_id)
    assert verdict(session, vpc_id, LogDestinationTypes="s3")[0] == "COMPLIANT"


# ------------------------------------------------------------------------------ (2) idempotent
def test_second_run_changes_nothing(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    assert run_s3(session, vpc_id).status == "Success"
    before = all_flow_logs(session)
    second = run_s3(session, vpc_id)
    assert second.status == "Success", second.failure_message
    assert second.outputs["VerifyFlowLog.Changed"] is False
    assert NOTHING_CHANGED in second.outputs["VerifyFlowLog.Message"]
    assert steps_run(second) == ["CheckVpcAndFlowLogs", "ChooseAction", "VerifyFlowLog"]
    assert all_flow_logs(session) == before
    # A rerun to another destination does not add a second flow log either: one qualifying is enough.
    third = run_cwl(session, vpc_id)
    assert third.status == "Success" and third.outputs["VerifyFlowLog.Changed"] is False
    assert all_flow_logs(session) == before


def test_already_compliant_vpc_is_left_alone(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    existing = add_flow_log(
        session, vpc_id, TrafficType="ALL", LogGroupName=LOG_GROUP, DeliverLogsPermissionArn=ROLE_ARN
    )
    assert verdict(session, vpc_id)[0] == "COMPLIANT"
    before = all_flow_logs(session)
    execution = run_s3(session, vpc_id)
    assert execution.status == "Success"
    assert execution.outputs["VerifyFlowLog.FlowLogId"] == existing
    assert NOTHING_CHANGED in execution.outputs["VerifyFlowLog.Message"]
    assert all_flow_logs(session) == before


# ----------------------------------------------------------------------------- (3) bad input
@pytest.mark.parametrize(
    ("parameters", "match"),
    [
        ({"VpcId": "vpc-XYZ"}, "VpcId"),
        ({"VpcId": "subnet-0123456789abcdef0"}, "VpcId"),
        ({"LogDestinationType": "kinesis-data-firehose"}, "LogDestinationType"),
        ({"LogDestination": "my-bucket"}, "LogDestination"),
        ({"LogDestination": "arn:aws:s3:::Upper_Case"}, "LogDestination"),
        ({"DeliverLogsPermissionArn": "ml-flow-logs-delivery"}, "DeliverLogsPermissionArn"),
        ({"MaxAggregationInterval": "300"}, "MaxAggregationInterval"),
        ({"AcceptedLogDestinationTypes": ["s3", "ftp"]}, "AcceptedLogDestinationTypes"),
        ({"AutomationAssumeRole": "arn:aws:iam::123:role/x"}, "AutomationAssumeRole"),
    ],
)
def test_parameter_outside_its_pattern_fails_before_any_call(
    session: boto3.Session, parameters: dict[str, Any], match: str
) -> None:
    vpc_id = make_vpc(session)
    before = all_flow_logs(session)
    fails_before_any_call(session, match, **{"VpcId": vpc_id, "LogDestinationType": "s3", **parameters})
    assert all_flow_logs(session) == before


def test_patterns_accept_other_partitions() -> None:
    params = DOC["parameters"]
    for name, value in [
        ("AutomationAssumeRole", "arn:aws-us-gov:iam::123456789012:role/ssm/remediation"),
        ("DeliverLogsPermissionArn", "arn:aws-cn:iam::123456789012:role/flow-logs"),
        ("LogDestination", "arn:aws-cn:s3:::bucket.with.dots/vpc/flow-logs/"),
        ("LogDestination", "arn:aws-us-gov:logs:us-gov-west-1:123456789012:log-group:/a/b_c-d.e#f:*"),
        ("VpcId", "vpc-0123456789abcdef0"),
        ("VpcId", "vpc-12345678"),
    ]:
        assert re.search(params[name]["allowedPattern"], value), (name, value)


@pytest.mark.parametrize(
    ("parameters", "match"),
    [
        # s3 delivery is authorised by the bucket policy: a role is a mistake, said so.
        (
            {"LogDestinationType": "s3", "DeliverLogsPermissionArn": ROLE_ARN},
            "must be empty for LogDestinationType s3",
        ),
        (
            {"LogDestinationType": "cloud-watch-logs", "LogDestination": LOG_GROUP_ARN},
            "DeliverLogsPermissionArn is required",
        ),
        (
            {"LogDestinationType": "cloud-watch-logs", "DeliverLogsPermissionArn": ROLE_ARN},
            "is not a CloudWatch Logs log group ARN",
        ),
        ({"LogDestinationType": "s3", "LogDestination": LOG_GROUP_ARN}, "is not an S3 bucket ARN"),
        (
            {
                "LogDestinationType": "cloud-watch-logs",
                "LogDestination": f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:{LOG_GROUP}",
                "DeliverLogsPermissionArn": ROLE_ARN,
            },
            "is not in this account and Region",
        ),
        (
            {
                "LogDestinationType": "cloud-watch-logs",
                "LogDestination": f"arn:aws:logs:{REGION}:210987654321:log-group:{LOG_GROUP}",
                "DeliverLogsPermissionArn": ROLE_ARN,
            },
            "is not in this account and Region",
        ),
        (
            {
                "LogDestinationType": "cloud-watch-logs",
                "LogDestination": LOG_GROUP_ARN,
                "DeliverLogsPermissionArn": "arn:aws:iam::210987654321:role/ml-flow-logs-delivery",
            },
            "is not a role of this account",
        ),
        ({"LogDestinationType": "s3", "LogDestination": f"{BUCKET_ARN}/AWSLogs/"}, "AWSLogs is reserved"),
        (
            {"LogDestinationType": "s3", "AcceptedLogDestinationTypes": ["cloud-watch-logs"]},
            "not in AcceptedLogDestinationTypes",
        ),
        # The binding's shipped example value is refused: logs never go to a bucket nobody chose.
        (
            {"LogDestinationType": "s3", "LogDestination": "arn:aws:s3:::set-your-vpc-flow-log-bucket"},
            "example value",
        ),
    ],
)
def test_inconsistent_inputs_fail_with_a_clear_message_and_change_nothing(
    session: boto3.Session, parameters: dict[str, Any], match: str
) -> None:
    vpc_id = make_vpc(session)
    before = all_flow_logs(session)
    execution = run(session, VpcId=vpc_id, **parameters)
    assert execution.status == "Failed"
    assert re.search(match, execution.failure_message or ""), execution.failure_message
    assert steps_run(execution) == ["CheckVpcAndFlowLogs"]
    assert all_flow_logs(session) == before
    assert verdict(session, vpc_id)[0] == "NON_COMPLIANT"


def test_missing_vpc_fails_clearly(session: boto3.Session) -> None:
    execution = run_s3(session, "vpc-0123456789abcdef0")
    assert execution.status == "Failed"
    assert "VPC vpc-0123456789abcdef0 does not exist" in (execution.failure_message or "")
    assert "Nothing was changed" in (execution.failure_message or "")
    assert all_flow_logs(session) == []


def test_shared_vpc_owned_by_another_account_is_refused(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    # moto cannot share a VPC through RAM; DescribeVpcs answers as for a participant account.
    inject(
        session,
        "ec2.DescribeVpcs",
        response={"Vpcs": [{"VpcId": vpc_id, "OwnerId": "210987654321", "State": "available"}]},
    )
    execution = run_s3(session, vpc_id)
    assert execution.status == "Failed"
    assert "owned by account 210987654321" in (execution.failure_message or "")
    assert all_flow_logs(session) == []


def test_missing_bucket_is_reported_from_unsuccessful(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    execution = run_s3(session, vpc_id, LogDestination="arn:aws:s3:::no-such-flow-log-bucket")
    assert execution.status == "Failed"
    message = execution.failure_message or ""
    assert "was unsuccessful" in message and "no-such-flow-log-bucket" in message
    assert "Nothing was created" in message
    assert flow_logs(session, vpc_id) == []


def test_bucket_policy_without_log_delivery_is_reported(session: boto3.Session) -> None:
    """AWS: without s3:PutBucketPolicy (which this runbook's role must not have: AWS would overwrite the
    bucket policy) and without a delivery statement in the policy, creation fails (Unsuccessful)."""
    vpc_id = make_vpc(session)
    inject(
        session,
        "ec2.CreateFlowLogs",
        response={
            "FlowLogIds": [],
            "Unsuccessful": [
                {
                    "ResourceId": vpc_id,
                    "Error": {"Code": "400", "Message": f"Access Denied for LogDestination: {BUCKET}."},
                }
            ],
        },
    )
    execution = run_s3(session, vpc_id)
    assert execution.status == "Failed"
    message = execution.failure_message or ""
    assert "Access Denied for LogDestination" in message
    assert "delivery.logs.amazonaws.com" in message and "never edits bucket policies" in message
    assert flow_logs(session, vpc_id) == []


def test_access_denied_on_create_is_reported(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    inject(session, "ec2.CreateFlowLogs", error_code="UnauthorizedOperation", status=403)
    execution = run_cwl(session, vpc_id)
    assert execution.status == "Failed"
    message = execution.failure_message or ""
    assert "UnauthorizedOperation" in message and "iam:PassRole" in message
    assert flow_logs(session, vpc_id) == []


def test_existing_failing_flow_log_to_the_same_destination_is_not_duplicated(session: boto3.Session) -> None:
    """AWS refuses a second flow log of the same resource and destination (FlowLogAlreadyExists); the
    runbook says which one is in the way and never modifies or deletes it."""
    vpc_id = make_vpc(session)
    group = "/ml/not-yet-created"  # moto: FAILED "Access error"
    add_flow_log(session, vpc_id, TrafficType="ALL", LogGroupName=group, DeliverLogsPermissionArn=ROLE_ARN)
    before = all_flow_logs(session)
    execution = run_cwl(
        session, vpc_id, LogDestination=f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{group}"
    )
    assert execution.status == "Failed"
    message = execution.failure_message or ""
    assert "already sends ALL traffic" in message and "never modifies or deletes flow logs" in message
    assert all_flow_logs(session) == before


# ------------------------------------------------------------- (4) fault after CreateFlowLogs
def test_fault_while_waiting_leaves_a_state_a_rerun_completes() -> None:
    with mock_aws():
        faulty = boto3.Session(region_name=REGION)
        faulty.client("s3").create_bucket(Bucket=BUCKET)
        vpc_id = make_vpc(faulty)
        # The wait polls DescribeFlowLogs by FlowLogIds: fail it after CreateFlowLogs has succeeded.
        inject(
            faulty,
            "ec2.DescribeFlowLogs",
            error_code="UnauthorizedOperation",
            status=403,
            when=lambda p: "FlowLogIds" in p,
        )
        first = run_s3(faulty, vpc_id)
        assert first.status in ("Failed", "TimedOut")
        assert [s.name for s in first.steps if s.status not in ("Success", "Skipped", "Pending")] == [
            "WaitForFlowLogActive"
        ]
        created = flow_logs(faulty, vpc_id)
        assert len(created) == 1

        clean = boto3.Session(region_name=REGION)
        rerun = run_s3(clean, vpc_id)
        assert rerun.status == "Success", rerun.failure_message
        assert rerun.outputs["VerifyFlowLog.Changed"] is False
        assert rerun.outputs["VerifyFlowLog.FlowLogId"] == created[0]["FlowLogId"]
        assert flow_logs(clean, vpc_id) == created  # no duplicate
        assert verdict(clean, vpc_id)[0] == "COMPLIANT"


def test_fault_in_the_verification_leaves_a_state_a_rerun_completes() -> None:
    with mock_aws():
        faulty = boto3.Session(region_name=REGION)
        faulty.client("s3").create_bucket(Bucket=BUCKET)
        vpc_id = make_vpc(faulty)
        calls = {"n": 0}

        def second_filtered_read(params: dict[str, Any]) -> bool:
            if "Filter" not in params and "Filters" not in params:
                return False
            calls["n"] += 1
            return calls["n"] >= 2  # the first is CheckVpcAndFlowLogs, the second VerifyFlowLog

        inject(
            faulty,
            "ec2.DescribeFlowLogs",
            error_code="UnauthorizedOperation",
            status=403,
            when=second_filtered_read,
        )
        first = run_s3(faulty, vpc_id)
        assert first.status == "Failed"
        assert first.steps[-1].name == "VerifyFlowLog" and first.steps[-1].status == "Failed"
        clean = boto3.Session(region_name=REGION)
        assert len(flow_logs(clean, vpc_id)) == 1

        rerun = run_s3(clean, vpc_id)
        assert rerun.status == "Success" and rerun.outputs["VerifyFlowLog.Changed"] is False
        assert len(flow_logs(clean, vpc_id)) == 1
        assert verdict(clean, vpc_id)[0] == "COMPLIANT"


def test_new_flow_log_whose_delivery_fails_is_reported_and_not_duplicated(session: boto3.Session) -> None:
    """Created, but delivery FAILED (moto: the log group does not exist; AWS: e.g. the delivery role may
    not write): the verification fails naming the error, and a rerun does not add a second flow log."""
    vpc_id = make_vpc(session)
    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/ml/missing"
    first = run_cwl(session, vpc_id, LogDestination=group_arn)
    assert first.status == "Failed"
    assert first.steps[-1].name == "VerifyFlowLog"
    assert "still has no qualifying flow log" in (first.failure_message or "")
    assert "delivery FAILED (Access error)" in (first.failure_message or "")
    created = all_flow_logs(session)
    assert len(created) == 1
    rerun = run_cwl(session, vpc_id, LogDestination=group_arn)
    assert rerun.status == "Failed" and "already sends ALL traffic" in (rerun.failure_message or "")
    assert all_flow_logs(session) == created
    assert verdict(session, vpc_id)[0] == "NON_COMPLIANT"


def test_a_flow_log_that_never_becomes_active_times_out(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    inject(session, "ec2.DescribeFlowLogs", response={"FlowLogs": []}, when=lambda p: "FlowLogIds" in p)
    execution = run_s3(session, vpc_id)
    assert execution.status in ("Failed", "TimedOut")
    assert execution.steps[-1].name == "WaitForFlowLogActive"
    assert len(flow_logs(session, vpc_id)) == 1


# ----------------------------------------------------------------------- (5) binding and YAML
def test_binding_names_this_runbook_and_binds_its_inputs() -> None:
    remediation = SPEC.remediation
    assert remediation is not None
    assert remediation.target_id == RUNBOOK.stem
    assert (
        remediation.runbook_path.resolve() == RUNBOOK.resolve()
        or remediation.runbook_path.read_text() == RUNBOOK.read_text()
    )
    assert remediation.resource_type == "AWS::EC2::VPC"
    assert remediation.resource_parameter == "VpcId"
    assert remediation.automatic is False
    declared = DOC["parameters"]
    bound = {remediation.resource_parameter, *remediation.static_parameters}
    assert bound <= set(declared)
    assert "AutomationAssumeRole" not in bound
    required = {n for n, p in declared.items() if "default" not in p}
    assert required <= bound, required - bound
    assert remediation.static_parameters["LogDestinationType"] == ["s3"]
    raw = json.loads((SPEC.directory / "parameters.json").read_text())["Parameters"]["Remediation"]
    assert raw["TargetType"] == "SSM_DOCUMENT" and raw["ConfigRuleName"] == RULE_NAME


def test_unchanged_binding_fails_closed(session: boto3.Session) -> None:
    """Deployed without setting LogDestination, the runbook refuses the example bucket (which anyone could
    own) rather than deliver the VPC's traffic records there."""
    vpc_id = make_vpc(session)
    execution = run_runbook(RUNBOOK, as_ssm_types(config_parameters(vpc_id)), session, clock=FakeClock())
    assert execution.status == "Failed"
    assert "example value" in (execution.failure_message or "")
    assert all_flow_logs(session) == []


def test_runner_takes_the_config_lists_as_they_are(session: boto3.Session) -> None:
    vpc_id = make_vpc(session)
    parameters = config_parameters(vpc_id, LogDestination=[BUCKET_ARN])
    execution = run_runbook(RUNBOOK, parameters, session, clock=FakeClock())
    assert execution.status == "Success", execution.failure_message
    assert verdict(session, vpc_id)[0] == "COMPLIANT"


def test_runbook_document_shape() -> None:
    assert DOC["schemaVersion"] == "0.3"
    assert DOC["assumeRole"] == "{{ AutomationAssumeRole }}"
    assert not re.match(r"(?i)^(aws|amazon)", RUNBOOK.stem)
    for name, spec in DOC["parameters"].items():
        assert {"type", "description"} <= set(spec), name
        assert "allowedPattern" in spec or "allowedValues" in spec, name
        if "allowedPattern" in spec:
            assert spec["allowedPattern"].startswith("^") and spec["allowedPattern"].endswith("$"), name
    assert DOC["parameters"]["AutomationAssumeRole"]["default"] == ""
    for step in DOC["mainSteps"]:
        assert step.get("onFailure") == "Abort", step["name"]
        if step["action"] == "aws:executeScript":
            inputs = step["inputs"]
            assert inputs["Runtime"] == "python3.11" and inputs["Handler"] == "handler"
            tree = ast.parse(inputs["Script"])
            assert any(isinstance(n, ast.FunctionDef) and n.name == "handler" for n in tree.body)


def test_every_reference_resolves() -> None:
    params = set(DOC["parameters"])
    globals_ = {"global:ACCOUNT_ID", "global:REGION", "automation:EXECUTION_ID"}
    declared_outputs: set[str] = set()
    for step in DOC["mainSteps"]:
        text = json.dumps(step.get("inputs", {}))
        for ref in re.findall(r"\{\{\s*([^}\s]+)\s*\}\}", text):
            assert ref in params or ref in globals_ or ref in declared_outputs, (step["name"], ref)
        declared_outputs |= {f"{step['name']}.{o['Name']}" for o in step.get("outputs", [])}
    assert set(DOC["outputs"]) <= declared_outputs
    names = [s["name"] for s in DOC["mainSteps"]]
    for step in DOC["mainSteps"]:
        if step["action"] == "aws:branch":
            targets = [c["NextStep"] for c in step["inputs"]["Choices"]] + [step["inputs"]["Default"]]
            assert set(targets) <= set(names)


def test_validator_is_clean() -> None:
    try:
        from ml_guardrails.runbooks.validate import validate_runbook
    except ImportError:
        pytest.skip("ml_guardrails.runbooks.validate is not there yet")
    assert validate_runbook(RUNBOOK) == []


def test_description_lists_every_api_the_runbook_calls(session: boto3.Session) -> None:
    """Least privilege, stated exactly: every API the runbook calls appears in its description as an IAM
    action, and none that it must not have."""
    called: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        called.add(f"{model.service_model.signing_name}:{model.name}")

    session.events.register("before-call.*.*", record)
    vpc_id, other_vpc_id = make_vpc(session), make_vpc(session, "10.30.0.0/16")
    called.clear()
    assert run_s3(session, vpc_id).status == "Success"
    assert run_cwl(session, other_vpc_id).status == "Success"
    # The local runner reads {{ global:ACCOUNT_ID }} from STS; SSM supplies it (and the call needs no
    # IAM permission anyway).
    called.discard("sts:GetCallerIdentity")
    description = DOC["description"]
    assert called == {"ec2:DescribeVpcs", "ec2:DescribeFlowLogs", "ec2:CreateFlowLogs"}
    for action in [
        *called,
        "ec2:CreateTags",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "iam:PassRole",
    ]:
        assert f"`{action}`" in description, action
    never = description.split("Not needed and not to be granted:")[1]
    for action in ("s3:PutBucketPolicy", "ec2:DeleteFlowLogs"):
        assert action in never
