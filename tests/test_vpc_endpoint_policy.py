"""VPC_ENDPOINT_POLICY_ORG_ONLY against moto: the sweep, end-to-end per trigger, fail-closed paths.

moto 5.2.5 differs from AWS here; the tests follow AWS and say so where it matters:
* ``describe_vpc_endpoints`` ignores ``MaxResults`` (never pages): pagination is shown with injected pages.
* A GatewayLoadBalancer endpoint gets the default policy document in moto; AWS has no endpoint policy
  for that type, and the rule never reads one for it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rdklib import ComplianceType

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
from tests.test_policy import ORG
from tests.test_s3_bucket_policy import CallLog

mod = get("VPC_ENDPOINT_POLICY_ORG_ONLY").load_module()
RULE = mod.VPC_ENDPOINT_POLICY_ORG_ONLY
VPCE = "AWS::EC2::VPCEndpoint"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
EXEMPT_KEY = "ml-guardrails:exempt"
PARAMETERS = {"OrganizationId": ORG, "ExemptionTagKey": EXEMPT_KEY}
# aws-samples/data-perimeter-policy-examples, vpc_endpoint_policies/default_endpoint_policy.json (first two).
PERIMETER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": ORG}},
        },
        {
            "Sid": "AllowRequestsByAWSServicePrincipals",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}},
        },
    ],
}


def seed_vpc_endpoint_policy(session: boto3.Session) -> dict[str, str]:
    """Endpoints that show every verdict of VPC_ENDPOINT_POLICY_ORG_ONLY, evaluated with ``PARAMETERS``;
    returns Name tag -> endpoint id:

    ml-s3-gateway        COMPLIANT      S3 gateway endpoint with the data-perimeter policy
    ml-sagemaker-api     NON_COMPLIANT  interface endpoint, default full-access policy
    ml-sagemaker-runtime NON_COMPLIANT  interface endpoint, Allow pinned with StringEqualsIfExists only
    ml-inspection        NOT_APPLICABLE GatewayLoadBalancer endpoint (no endpoint policy)
    ml-sts               NOT_APPLICABLE default policy, exempted by tag
    """
    ec2 = session.client("ec2")
    region = ec2.meta.region_name
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]

    def endpoint(name: str, service: str, kind: str, policy: dict[str, Any] | None, **extra: Any) -> str:
        tags = [{"Key": "Name", "Value": name}]
        if name == "ml-sts":
            tags.append({"Key": EXEMPT_KEY, "Value": "STS endpoint owned by the network team, RISK-31"})
        args: dict[str, Any] = {
            "VpcId": vpc,
            "ServiceName": service,
            "VpcEndpointType": kind,
            "TagSpecifications": [{"ResourceType": "vpc-endpoint", "Tags": tags}],
            **extra,
        }
        if policy is not None:
            args["PolicyDocument"] = json.dumps(policy)
        return str(ec2.create_vpc_endpoint(**args)["VpcEndpoint"]["VpcEndpointId"])

    ids = {
        "ml-s3-gateway": endpoint(
            "ml-s3-gateway", f"com.amazonaws.{region}.s3", "Gateway", PERIMETER_POLICY, RouteTableIds=[table]
        ),
        "ml-sagemaker-api": endpoint(
            "ml-sagemaker-api", f"com.amazonaws.{region}.sagemaker.api", "Interface", None, SubnetIds=[subnet]
        ),
        "ml-sagemaker-runtime": endpoint(
            "ml-sagemaker-runtime",
            f"com.amazonaws.{region}.sagemaker.runtime",
            "Interface",
            {
                "Statement": [
                    {
                        "Sid": "OrgIfPresent",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "sagemaker:InvokeEndpoint",
                        "Resource": "*",
                        "Condition": {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
                    }
                ]
            },
            SubnetIds=[subnet],
        ),
        "ml-inspection": endpoint(
            "ml-inspection",
            f"com.amazonaws.vpce.{region}.vpce-svc-0123456789abcdef0",
            "GatewayLoadBalancer",
            None,
            SubnetIds=[subnet],
        ),
        "ml-sts": endpoint("ml-sts", f"com.amazonaws.{region}.sts", "Interface", None, SubnetIds=[subnet]),
    }
    return ids


SEEDED = {
    "ml-s3-gateway": C,
    "ml-sagemaker-api": NC,
    "ml-sagemaker-runtime": NC,
    "ml-inspection": NA,
    "ml-sts": NA,
}


def vpce_items(session: boto3.Session, ids: dict[str, str]) -> list[dict[str, Any]]:
    """Configuration items without ``policyDocument`` for two seeded endpoints: their evaluation must
    call DescribeVpcEndpoints (for the fault matrix)."""
    items = []
    for name in ("ml-s3-gateway", "ml-sagemaker-api"):
        ci = _fixture("vpce_interface_sagemaker_api_org.json")
        ci["resourceId"] = ci["configuration"]["vpcEndpointId"] = ids[name]
        del ci["configuration"]["policyDocument"]
        items.append(ci)
    return items


def _fixture(name: str) -> dict[str, Any]:
    from tests.test_kms_rotation import fixture

    return fixture(name)


@pytest.fixture
def rec() -> Any:
    with mock_aws():
        yield PutEvaluationsRecorder()


def sweep(session: boto3.Session, raw: dict[str, Any] | None = None) -> list[Any]:
    rule = RULE()
    clients = ClientFactory(session=session, region=session.region_name, assume_role_mode=False)
    return list(rule.sweep(clients, rule.evaluate_parameters(raw or PARAMETERS)))


def named(ids: dict[str, str], verdicts: dict[str, str]) -> dict[str, str]:
    back = {v: k for k, v in ids.items()}
    return {back.get(k, k): v for k, v in verdicts.items()}


# ------------------------------------------------------------------------------------------------ sweep
def test_seed_and_sweep_show_every_verdict(rec: PutEvaluationsRecorder) -> None:
    ids = seed_vpc_endpoint_policy(rec.session)
    log = CallLog(rec.session)
    outcomes = sweep(rec.session)
    assert named(ids, {o.complianceResourceId: o.complianceType for o in outcomes}) == SEEDED
    notes = named(ids, {o.complianceResourceId: o.annotation for o in outcomes})
    assert "default full-access" in notes["ml-sagemaker-api"]
    assert "OrgIfPresent" in notes["ml-sagemaker-runtime"]
    assert "RISK-31" in notes["ml-sts"]
    assert all(0 < len(n) <= 256 for n in notes.values())
    assert log.names() == ["DescribeVpcEndpoints"]  # one sweep for the Region


def test_sweep_follows_pages(rec: PutEvaluationsRecorder) -> None:
    policy = json.dumps(PERIMETER_POLICY)
    pages: list[dict[str, Any]] = [
        {
            "VpcEndpoints": [
                {
                    "VpcEndpointId": "vpce-0aaaaaaaaaaaaaaa1",
                    "VpcEndpointType": "Gateway",
                    "State": "available",
                    "PolicyDocument": policy,
                }
            ],
            "NextToken": "t1",
        },
        {
            "VpcEndpoints": [
                {
                    "VpcEndpointId": "vpce-0aaaaaaaaaaaaaaa2",
                    "VpcEndpointType": "Interface",
                    "State": "available",
                }
            ]
        },
    ]
    inject(
        rec.session, "ec2.DescribeVpcEndpoints", response=pages[0], when=lambda p: "NextToken" not in str(p)
    )
    inject(rec.session, "ec2.DescribeVpcEndpoints", response=pages[1], when=lambda p: "NextToken" in str(p))
    verdicts = {o.complianceResourceId: o.complianceType for o in sweep(rec.session)}
    assert verdicts == {"vpce-0aaaaaaaaaaaaaaa1": C, "vpce-0aaaaaaaaaaaaaaa2": NC}


# ------------------------------------------------------------------------------------------ fail closed
def test_malformed_endpoint_fails_that_endpoint_only(rec: PutEvaluationsRecorder) -> None:
    page = {
        "VpcEndpoints": [
            {"VpcEndpointId": "vpce-0aaaaaaaaaaaaaaa1", "VpcEndpointType": "Gateway", "PolicyDocument": "{"},
            {"VpcEndpointId": "vpce-0aaaaaaaaaaaaaaa2", "PolicyDocument": json.dumps(PERIMETER_POLICY)},
            {
                "VpcEndpointId": "vpce-0aaaaaaaaaaaaaaa3",
                "VpcEndpointType": "Gateway",
                "PolicyDocument": json.dumps(PERIMETER_POLICY),
            },
        ]
    }
    inject(rec.session, "ec2.DescribeVpcEndpoints", response=page)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(PARAMETERS), session=rec.session)
    failed = {(f.resource_id, f.operation, f.code) for f in info.value.failures}
    assert failed == {
        ("vpce-0aaaaaaaaaaaaaaa1", "DescribeVpcEndpoints", "MalformedConfigurationItem"),
        ("vpce-0aaaaaaaaaaaaaaa2", "DescribeVpcEndpoints", "MalformedConfigurationItem"),
    }
    assert rec.verdicts() == {"vpce-0aaaaaaaaaaaaaaa3": C}


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "RequestLimitExceeded"])
def test_describe_denied_fails_the_sweep_and_posts_nothing(rec: PutEvaluationsRecorder, code: str) -> None:
    seed_vpc_endpoint_policy(rec.session)
    inject(
        rec.session, "ec2.DescribeVpcEndpoints", error_code=code, status=403 if code.startswith("U") else 503
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(PARAMETERS), session=rec.session)
    assert info.value.failures[0].resource_id == "*"
    assert rec.calls == []


def test_change_without_policy_reads_the_api_and_fails_closed(rec: PutEvaluationsRecorder) -> None:
    ids = seed_vpc_endpoint_policy(rec.session)
    items = vpce_items(rec.session, ids)
    log = CallLog(rec.session)
    for item in items:
        handle(RULE(), change_event(item, PARAMETERS), session=rec.session)
    assert named(ids, rec.verdicts()) == {"ml-s3-gateway": C, "ml-sagemaker-api": NC}
    assert [p["VpcEndpointIds"] for p in log.ops("DescribeVpcEndpoints")] == [
        [ids["ml-s3-gateway"]],
        [ids["ml-sagemaker-api"]],
    ]
    inject(rec.session, "ec2.DescribeVpcEndpoints", error_code="UnauthorizedOperation", status=403)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(items[0], PARAMETERS), session=rec.session)
    assert info.value.failures[0].operation == "DescribeVpcEndpoints"


# ------------------------------------------------------------------------------------------- end to end
def test_e2e_change_trigger_no_api_calls(rec: PutEvaluationsRecorder) -> None:
    log = CallLog(rec.session)
    records = handle(
        RULE(), change_event(_fixture("vpce_gateway_s3_default_policy.json"), PARAMETERS), session=rec.session
    )
    [posted] = rec.evaluations
    assert posted["ComplianceResourceId"] == "vpce-0a1b2c3d4e5f60718"
    assert posted["ComplianceResourceType"] == VPCE
    assert posted["ComplianceType"] == NC
    assert posted["OrderingTimestamp"] == "2026-11-27T11:20:05.331Z"
    assert "default full-access" in posted["Annotation"]
    assert records == rec.evaluations
    assert log.names() == []


def test_e2e_change_trigger_compliant_and_gwlb(rec: PutEvaluationsRecorder) -> None:
    for name in ("vpce_interface_sagemaker_api_org.json", "vpce_gateway_load_balancer.json"):
        handle(RULE(), change_event(_fixture(name), PARAMETERS), session=rec.session)
    assert rec.verdicts() == {"vpce-0f1e2d3c4b5a69788": C, "vpce-01234567890abcdef": NA}


def test_e2e_oversized_trigger(rec: PutEvaluationsRecorder) -> None:
    base = _fixture("vpce_interface_sagemaker_api_org.json")
    history = history_item(base, dt.datetime(2026, 11, 27, 8, 30, 5, 250000, tzinfo=dt.UTC))
    inject(rec.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    records = handle(RULE(), oversized_event(VPCE, base["resourceId"], PARAMETERS), session=rec.session)
    [posted] = rec.evaluations
    assert (posted["ComplianceResourceId"], posted["ComplianceType"]) == (base["resourceId"], C)
    json.dumps(records)


def test_e2e_periodic_trigger(rec: PutEvaluationsRecorder) -> None:
    ids = seed_vpc_endpoint_policy(rec.session)
    handle(RULE(), scheduled_event(PARAMETERS), session=rec.session)
    assert named(ids, rec.verdicts()) == SEEDED
    for posted in rec.evaluations:
        assert posted["OrderingTimestamp"] == NOTIFICATION_TIME
        assert posted["ComplianceResourceType"] == VPCE


def test_finding_notifies_through_the_bound_runbook(rec: PutEvaluationsRecorder) -> None:
    from tests.test_s3_bucket_policy import notify_finding

    envelope = notify_finding(rec.session, "VPC_ENDPOINT_POLICY_ORG_ONLY", "vpce-0a1b2c3d4e5f60718")
    body = json.loads(envelope["Message"])
    assert (body["rule"], body["resourceType"]) == ("VPC_ENDPOINT_POLICY_ORG_ONLY", VPCE)
    assert "aws:ResourceOrgID" in json.dumps(body)
