"""SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET against moto: the sweep, the handler end to end per trigger,
fail-closed paths, invalid parameters, and the demo seed (``seed_sagemaker_notebooks``).

moto 5.2.5 vs AWS, as met here (the code follows AWS):
- moto keeps the notebook name's case in NotebookInstanceArn (``notebook-instance/MyNotebook``); AWS
  lower-cases it (CloudFormation docs: ``notebook-instance/mynotebookinstance`` for ``MyNotebookInstance``).
  The rule posts the ARN exactly as SageMaker returns it, so both are right; the seed uses lower-case names.
- moto's DescribeNotebookInstance is case-sensitive on the name and omits RootAccess/KmsKeyId/SubnetId when
  they were not given (AWS: RootAccess defaults to Enabled); a missing DirectInternetAccess is echoed as
  Enabled, as in AWS. A missing notebook is ``ValidationException: RecordNotFound``, as in AWS.
- moto notebooks are InService at once and never pass through Pending/Deleting; the Deleting status is
  injected. update_notebook_instance is not implemented (the rule never calls it).
- moto's default VPC has no internet gateway and its main route table only the local route; AWS's default
  VPC has an internet gateway and ``0.0.0.0/0 -> igw-...`` in the main table, so a notebook in a default
  subnet is COMPLIANT under moto but NON_COMPLIANT in AWS. The seed builds its own VPCs.
- moto returns every subnet / route table in one page; paging is the paginator's (botocore) job.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter
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

mod = get("SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET").load_module()
RULE = mod.SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
RTYPE = "AWS::SageMaker::NotebookInstance"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"
EXEMPTION_TAG = "ml-guardrails:exemption"
# The demo runs the rule with this parameter so the exempted notebook shows NOT_APPLICABLE.
DEMO_PARAMETERS = {"ExemptionTagKey": EXEMPTION_TAG}
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/AmazonSageMaker-ExecutionRole-ml"


def arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/{name}"


# ------------------------------------------------------------------------------------- demo seed
# The verdict each seeded notebook gets with DEMO_PARAMETERS (keys: notebook names).
SEED_VERDICTS = {
    "nb-isolated": "COMPLIANT",  # Disabled, private subnet: local + S3 gateway endpoint routes only
    "nb-via-tgw": "NON_COMPLIANT",  # default route to a transit gateway not in AllowedEgressTargets
    "nb-nat-egress": "NON_COMPLIANT",  # Disabled, but the subnet's table sends 0.0.0.0/0 to a NAT gateway
    "nb-main-table-igw": "NON_COMPLIANT",  # no explicit association: the VPC's main table routes to an IGW
    "nb-direct-internet": "NON_COMPLIANT",  # API defaults: direct internet access, no VPC
    "nb-stopped-internet": "NON_COMPLIANT",  # the same, stopped: the setting applies again on start
    "nb-exempt": "NOT_APPLICABLE",  # direct internet access, exempted by tag with a reason
}


def seed_sagemaker_notebooks(session: boto3.Session) -> None:
    """Seed notebooks showing every verdict of SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET (scan with
    ``ExemptionTagKey`` = ``ml-guardrails:exemption``); see SEED_VERDICTS."""
    ec2: Any = session.client("ec2")
    sm: Any = session.client("sagemaker")

    def subnet(vpc_id: str, cidr: str, explicit_table: bool = True) -> tuple[str, str | None]:
        subnet_id: str = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{REGION}a")[
            "Subnet"
        ]["SubnetId"]
        if not explicit_table:
            return subnet_id, None
        rtb: str = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet_id)
        return subnet_id, rtb

    def notebook(name: str, subnet_id: str | None = None, **extra: Any) -> None:
        kwargs: dict[str, Any] = {
            "NotebookInstanceName": name,
            "InstanceType": "ml.t3.medium",
            "RoleArn": ROLE,
        }
        if subnet_id:
            vpc_id = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["VpcId"]
            group = ec2.create_security_group(GroupName=f"{name}-sg", Description=name, VpcId=vpc_id)[
                "GroupId"
            ]
            kwargs.update(SubnetId=subnet_id, SecurityGroupIds=[group], DirectInternetAccess="Disabled")
        sm.create_notebook_instance(**kwargs, **extra)

    # An isolated ML VPC: a private subnet reaching AWS only through the S3 gateway endpoint, and a subnet
    # whose default route goes to a transit gateway (allowed only when listed in AllowedEgressTargets).
    isolated = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    private, private_rtb = subnet(isolated, "10.40.1.0/24")
    ec2.create_vpc_endpoint(
        VpcId=isolated,
        ServiceName=f"com.amazonaws.{REGION}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[private_rtb],
    )
    tgw = ec2.create_transit_gateway(Description="inspection")["TransitGateway"]["TransitGatewayId"]
    via_tgw, tgw_rtb = subnet(isolated, "10.40.2.0/24")
    ec2.create_route(RouteTableId=tgw_rtb, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw)

    # An egress VPC: public subnet with an internet gateway, a NAT-routed subnet, and a subnet left on the
    # main route table, which also routes to the internet gateway.
    egress = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=egress)
    public, public_rtb = subnet(egress, "10.50.0.0/24")
    ec2.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    nat_subnet, nat_rtb = subnet(egress, "10.50.1.0/24")
    ec2.create_route(RouteTableId=nat_rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    main_subnet, _ = subnet(egress, "10.50.2.0/24", explicit_table=False)
    main_rtb = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [egress]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=main_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)

    notebook("nb-isolated", private, RootAccess="Disabled")
    notebook("nb-via-tgw", via_tgw)
    notebook("nb-nat-egress", nat_subnet)
    notebook("nb-main-table-igw", main_subnet)
    notebook("nb-direct-internet")
    notebook("nb-stopped-internet", DirectInternetAccess="Enabled")
    sm.stop_notebook_instance(NotebookInstanceName="nb-stopped-internet")
    notebook(
        "nb-exempt",
        DirectInternetAccess="Enabled",
        Tags=[{"Key": EXEMPTION_TAG, "Value": "Risk acceptance RA-3107: public data only, until 2027-01-31"}],
    )


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield PutEvaluationsRecorder()


def count_calls(session: boto3.Session) -> Counter[str]:
    """Counts every API call made by clients of ``session``, by "service.Operation" (retries excluded;
    counted before any injected response short-cuts the call)."""
    calls: Counter[str] = Counter()

    def _count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}.{model.name}"] += 1

    session.events.register("provide-client-params", _count)
    return calls


def subnet_ids(session: boto3.Session) -> dict[str, str]:
    """notebook name -> subnet id, as seeded."""
    sm = session.client("sagemaker")
    return {
        n["NotebookInstanceName"]: sm.describe_notebook_instance(
            NotebookInstanceName=n["NotebookInstanceName"]
        ).get("SubnetId", "")
        for n in sm.list_notebook_instances()["NotebookInstances"]
    }


def ci_for(session: boto3.Session, name: str) -> dict[str, Any]:
    """The isolated-notebook fixture CI, pointed at the seeded notebook ``name`` and its subnet."""
    ci = json.loads((FIXTURES / "sagemaker_notebook_isolated.json").read_text(encoding="utf-8"))
    ci["configuration"]["SubnetId"] = subnet_ids(session)[name]
    ci["configuration"]["NotebookInstanceName"] = name
    ci["configuration"]["NotebookInstanceArn"] = ci["resourceId"] = ci["ARN"] = arn(name)
    ci["resourceName"] = name
    return ci


# -------------------------------------------------------------------------------------- the sweep
def test_seed_shows_every_verdict_in_one_sweep(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    calls = count_calls(aws.session)
    result = handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    assert aws.verdicts() == {arn(name): verdict for name, verdict in SEED_VERDICTS.items()}
    assert {e["OrderingTimestamp"] for e in result} == {NOTIFICATION_TIME}
    assert {e["ComplianceResourceType"] for e in result} == {RTYPE}
    by_name = {e["ComplianceResourceId"].rsplit("/", 1)[1]: e["Annotation"] for e in result}
    assert "Risk acceptance RA-3107" in by_name["nb-exempt"]
    assert "nat-" in by_name["nb-nat-egress"] and "NAT gateway" in by_name["nb-nat-egress"]
    assert "tgw-" in by_name["nb-via-tgw"] and "AllowedEgressTargets" in by_name["nb-via-tgw"]
    assert "igw-" in by_name["nb-main-table-igw"]
    assert "Stopped" in by_name["nb-stopped-internet"]
    assert "no internet path" in by_name["nb-isolated"]
    assert all(len(a) <= 256 for a in by_name.values())
    # The network is read once for the Region, not per notebook; tags only because ExemptionTagKey is set.
    assert calls["ec2.DescribeSubnets"] == 1
    assert calls["ec2.DescribeRouteTables"] == 1
    assert calls["sagemaker.DescribeNotebookInstance"] == len(SEED_VERDICTS)
    assert calls["sagemaker.ListTags"] == len(SEED_VERDICTS)


def test_sweep_reads_no_tags_without_exemption_key_and_allows_listed_egress(
    aws: PutEvaluationsRecorder,
) -> None:
    seed_sagemaker_notebooks(aws.session)
    tgw = aws.session.client("ec2").describe_transit_gateways()["TransitGateways"][0]["TransitGatewayId"]
    calls = count_calls(aws.session)
    handle(RULE(), scheduled_event({"AllowedEgressTargets": tgw}), session=aws.session)
    verdicts = aws.verdicts()
    assert verdicts[arn("nb-via-tgw")] == "COMPLIANT"
    assert verdicts[arn("nb-exempt")] == "NON_COMPLIANT"  # no ExemptionTagKey: evaluated like the others
    assert calls["sagemaker.ListTags"] == 0


def test_sweep_without_network_check_reads_no_routes(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    calls = count_calls(aws.session)
    handle(RULE(), scheduled_event({"CheckNetworkPath": "false"}), session=aws.session)
    assert aws.verdicts()[arn("nb-nat-egress")] == "COMPLIANT"
    assert calls["ec2.DescribeRouteTables"] == calls["ec2.DescribeSubnets"] == 0


def test_sweep_with_allowed_subnets(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    allowed = subnet_ids(aws.session)["nb-isolated"]
    handle(RULE(), scheduled_event({"AllowedSubnetIds": allowed}), session=aws.session)
    verdicts = aws.verdicts()
    assert verdicts[arn("nb-isolated")] == "COMPLIANT"
    assert verdicts[arn("nb-via-tgw")] == "NON_COMPLIANT"


def test_deleting_notebook_is_not_applicable(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    doomed = aws.session.client("sagemaker").describe_notebook_instance(
        NotebookInstanceName="nb-direct-internet"
    )
    doomed = {k: v for k, v in doomed.items() if k != "ResponseMetadata"}
    doomed["NotebookInstanceStatus"] = "Deleting"  # moto deletes at once; AWS passes through Deleting
    inject(
        aws.session,
        "sagemaker.DescribeNotebookInstance",
        response=doomed,
        when=lambda p: p.get("NotebookInstanceName") == "nb-direct-internet",
    )
    handle(RULE(), scheduled_event(), session=aws.session)
    assert aws.verdicts()[arn("nb-direct-internet")] == "NOT_APPLICABLE"


def test_notebook_deleted_between_list_and_describe_is_skipped(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    other = boto3.client("sagemaker", region_name=REGION)  # not the recorder's session: no hooks

    def delete_after_listing(**_: Any) -> None:
        if "nb-via-tgw" in {
            n["NotebookInstanceName"] for n in other.list_notebook_instances()["NotebookInstances"]
        }:
            other.stop_notebook_instance(NotebookInstanceName="nb-via-tgw")
            other.delete_notebook_instance(NotebookInstanceName="nb-via-tgw")

    aws.session.events.register("after-call.sagemaker.ListNotebookInstances", delete_after_listing)
    handle(RULE(), scheduled_event(), session=aws.session)  # no failure: moto says RecordNotFound, as AWS
    assert arn("nb-via-tgw") not in aws.verdicts()
    assert len(aws.verdicts()) == len(SEED_VERDICTS) - 1


# --------------------------------------------------------------------------- end to end per trigger
def test_change_end_to_end(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    cases = {
        "nb-isolated": "COMPLIANT",
        "nb-nat-egress": "NON_COMPLIANT",
        "nb-main-table-igw": "NON_COMPLIANT",
    }
    for name, expected in cases.items():
        ci = ci_for(aws.session, name)
        calls = count_calls(aws.session)
        (evaluation,) = handle(RULE(), change_event(ci), session=aws.session)
        assert evaluation["ComplianceType"] == expected, evaluation
        assert evaluation["ComplianceResourceId"] == arn(name)
        assert evaluation["ComplianceResourceType"] == RTYPE
        assert evaluation["OrderingTimestamp"] == ci["configurationItemCaptureTime"]
        assert calls["ec2.DescribeSubnets"] + calls["ec2.DescribeRouteTables"] == 2
        assert not any(k.startswith("sagemaker.") for k in calls)
    assert [e["ComplianceType"] for e in aws.evaluations] == list(cases.values())


def test_change_on_direct_internet_fixture_makes_no_api_read(aws: PutEvaluationsRecorder) -> None:
    ci = json.loads((FIXTURES / "sagemaker_notebook_internet.json").read_text(encoding="utf-8"))
    calls = count_calls(aws.session)
    (evaluation,) = handle(RULE(), change_event(ci), session=aws.session)
    assert evaluation["ComplianceType"] == "NON_COMPLIANT"
    assert evaluation["ComplianceResourceId"] == ci["resourceId"]
    assert set(calls) <= {"sts.AssumeRole", "config.PutEvaluations"}


def test_change_exemption_from_ci_tags(aws: PutEvaluationsRecorder) -> None:
    ci = json.loads((FIXTURES / "sagemaker_notebook_internet.json").read_text(encoding="utf-8"))
    ci["tags"] = {EXEMPTION_TAG: "RA-3107"}
    (evaluation,) = handle(RULE(), change_event(ci, DEMO_PARAMETERS), session=aws.session)
    assert evaluation["ComplianceType"] == "NOT_APPLICABLE"
    assert "RA-3107" in evaluation["Annotation"]


def test_oversized_end_to_end(aws: PutEvaluationsRecorder) -> None:
    """The oversized notification carries no CI: the handler reads GetResourceConfigHistory, whose item has
    ``configuration`` as a JSON string, ``arn``/``accountId`` keys and a datetime capture time."""
    seed_sagemaker_notebooks(aws.session)
    notification = ci_for(aws.session, "nb-nat-egress")
    history = history_item(notification, dt.datetime(2026, 11, 27, 8, 30, 0, 125000, tzinfo=dt.UTC))
    inject(aws.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    result = handle(RULE(), oversized_event(RTYPE, arn("nb-nat-egress")), session=aws.session)
    assert aws.evaluations == result
    (evaluation,) = result
    assert evaluation["ComplianceType"] == "NON_COMPLIANT"
    assert evaluation["ComplianceResourceId"] == arn("nb-nat-egress")
    assert evaluation["OrderingTimestamp"] == "2026-11-27T08:30:00.125Z"
    json.dumps(result)


# ------------------------------------------------------------------------------------- fail closed
def test_access_denied_on_one_notebook_posts_the_others_then_fails(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    inject(
        aws.session,
        "sagemaker.DescribeNotebookInstance",
        error_code="AccessDeniedException",
        when=lambda p: p.get("NotebookInstanceName") == "nb-isolated",
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    expected = {arn(n): v for n, v in SEED_VERDICTS.items() if n != "nb-isolated"}
    assert aws.verdicts() == expected
    detail = json.loads(str(info.value))
    assert [(f["resourceId"], f["operation"], f["code"]) for f in detail["failures"]] == [
        (arn("nb-isolated"), "DescribeNotebookInstance", "AccessDeniedException")
    ]


def test_throttling_that_outlives_retries_is_a_failure_for_that_notebook(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    inject(
        aws.session,
        "sagemaker.ListTags",
        error_code="ThrottlingException",
        when=lambda p: p.get("ResourceArn") == arn("nb-exempt"),
    )
    with pytest.raises(EvaluationIncomplete, match="ThrottlingException") as info:
        handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    assert arn("nb-exempt") not in aws.verdicts()
    assert len(aws.verdicts()) == len(SEED_VERDICTS) - 1
    assert json.loads(str(info.value))["failures"][0]["resourceId"] == arn("nb-exempt")


def test_route_tables_unreadable_fail_only_the_notebooks_that_need_them(aws: PutEvaluationsRecorder) -> None:
    """DescribeRouteTables denied: notebooks decided by their settings are still posted; each notebook
    whose verdict needs the routes fails by name (never COMPLIANT); the denied call is made once."""
    seed_sagemaker_notebooks(aws.session)
    calls = count_calls(aws.session)
    inject(aws.session, "ec2.DescribeRouteTables", error_code="UnauthorizedOperation", status=403)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    needs_routes = {"nb-isolated", "nb-via-tgw", "nb-nat-egress", "nb-main-table-igw"}
    assert aws.verdicts() == {arn(n): v for n, v in SEED_VERDICTS.items() if n not in needs_routes}
    failures = json.loads(str(info.value))["failures"]
    assert {f["resourceId"] for f in failures} == {arn(n) for n in needs_routes}
    assert {f["code"] for f in failures} == {"UnauthorizedOperation"}
    assert calls["ec2.DescribeRouteTables"] == 1


def test_a_failure_to_list_fails_the_sweep_and_posts_nothing(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    inject(aws.session, "sagemaker.ListNotebookInstances", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(), session=aws.session)
    assert json.loads(str(info.value))["failures"][0]["resourceId"] == "*"
    assert aws.calls == []


def test_access_denied_on_the_change_path_posts_nothing(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_notebooks(aws.session)
    ci = ci_for(aws.session, "nb-isolated")
    inject(aws.session, "ec2.DescribeRouteTables", error_code="UnauthorizedOperation", status=403)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(ci), session=aws.session)
    assert aws.calls == []
    (failure,) = json.loads(str(info.value))["failures"]
    assert (failure["resourceId"], failure["operation"]) == (arn("nb-isolated"), "DescribeRouteTables")


def test_shared_subnet_without_visible_route_table_fails_on_the_change_path(
    aws: PutEvaluationsRecorder,
) -> None:
    seed_sagemaker_notebooks(aws.session)
    ci = ci_for(aws.session, "nb-isolated")
    inject(aws.session, "ec2.DescribeRouteTables", response={"RouteTables": []})
    with pytest.raises(EvaluationIncomplete, match="CheckNetworkPath"):
        handle(RULE(), change_event(ci), session=aws.session)
    assert aws.calls == []


# ------------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("parameters", "name"),
    [
        ({"CheckNetworkPath": "sometimes"}, "CheckNetworkPath"),
        ({"AllowedSubnetIds": "subnet-12345"}, "AllowedSubnetIds"),
        ({"AllowedEgressTargets": "igw-0123456789abcdef0"}, "AllowedEgressTargets"),
        (
            {"AllowedEgressTargets": "tgw-0123456789abcdef0", "CheckNetworkPath": "false"},
            "AllowedEgressTargets",
        ),
        ({"ExemptionTagKey": "aws:cloudformation:stack-name"}, "ExemptionTagKey"),
    ],
)
@pytest.mark.parametrize("trigger", ["change", "periodic"])
def test_invalid_parameter_raises_and_posts_nothing(
    aws: PutEvaluationsRecorder, parameters: dict[str, str], name: str, trigger: str
) -> None:
    ci = json.loads((FIXTURES / "sagemaker_notebook_internet.json").read_text(encoding="utf-8"))
    event = (
        change_event(copy.deepcopy(ci), parameters) if trigger == "change" else scheduled_event(parameters)
    )
    with pytest.raises(InvalidParametersError, match=name):
        handle(RULE(), event, session=aws.session)
    assert aws.calls == []


def test_lambda_handler_is_exported() -> None:
    assert callable(mod.lambda_handler)
    assert "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET" in (mod.lambda_handler.__doc__ or "")
