"""Unit tests of VPC_ENDPOINT_POLICY_ORG_ONLY, following the scenarios of the rule's docstring.

Runs under pytest and ``rdk test-local`` (cwd rules/, only this folder on sys.path).

Fixtures (tests/fixtures/ci/vpce_*.json) follow the AWS Config resource schema of AWS::EC2::VPCEndpoint
(awslabs/aws-config-resource-schema, AWS::EC2::VPCEndpoint.properties.json: configuration.vpcEndpointId,
vpcEndpointType, serviceName, state.value, routeTableIds, subnetIds, groups, dnsEntries) with
``policyDocument`` the endpoint policy as a JSON string (EC2 VpcEndpoint.PolicyDocument). Policies: the
default endpoint policy of the PrivateLink Guide
(https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html) and the data-perimeter
endpoint policy of aws-samples/data-perimeter-policy-examples (vpc_endpoint_policies/).
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any, cast

from rdklib import ComplianceType, InvalidParametersError

import VPC_ENDPOINT_POLICY_ORG_ONLY as rule
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.resources.vpc_endpoint import VpcEndpoint

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/ci"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
ORG = "o-a1b2c3d4e5"
PARAMS = rule.Params(organization_id=ORG)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def endpoint(policy: Any, endpoint_type: str = "Gateway", state: str | None = "available") -> VpcEndpoint:
    text = policy if policy is None or isinstance(policy, str) else json.dumps(policy)
    return VpcEndpoint("vpce-0a1b2c3d4e5f60718", endpoint_type, "com.amazonaws.us-east-1.s3", state, text, {})


def allow(sid: str | None = None, **fields: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
    if sid:
        statement["Sid"] = sid
    statement.update(fields)
    return statement


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ORG_BOTH = {"StringEquals": {"aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": ORG}}


class Clients:
    """The change path's client surface; records the services asked for."""

    def __init__(self, ec2: Any = None) -> None:
        self.ec2 = ec2
        self.asked: list[str] = []

    def build_client(self, service: str, region: str | None = None, assume_role_mode: bool = True) -> Any:
        self.asked.append(service)
        if service != "ec2" or self.ec2 is None:
            raise AssertionError(f"unexpected client {service}")
        return self.ec2


class FakeEc2:
    def __init__(self, endpoints: list[dict[str, Any]]) -> None:
        self.endpoints = endpoints
        self.calls: list[dict[str, Any]] = []

    def describe_vpc_endpoints(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return {"VpcEndpoints": self.endpoints}


# ---------------------------------------------------------------------------------------- Scenario 1
class ParameterTest(unittest.TestCase):
    def test_required_and_validated(self) -> None:
        self.assertEqual(
            rule.VPC_ENDPOINT_POLICY_ORG_ONLY().evaluate_parameters({"OrganizationId": ORG}).rule, PARAMS
        )
        for raw in (
            {},
            {"OrganizationId": " "},
            {"OrganizationId": "o-abc"},
            {"OrganizationId": "123456789012"},
        ):
            with self.subTest(raw=raw), self.assertRaises(InvalidParametersError) as caught:
                rule.VPC_ENDPOINT_POLICY_ORG_ONLY().evaluate_parameters(raw)
            self.assertIn("OrganizationId", str(caught.exception))


# ------------------------------------------------------------------------------------ Scenarios 4-9
class DecisionTableTest(unittest.TestCase):
    CASES: tuple[tuple[str, VpcEndpoint, str, tuple[str, ...]], ...] = (
        ("GWLB has no policy", endpoint(None, "GatewayLoadBalancer"), NA, ("GatewayLoadBalancer",)),
        ("Resource endpoint", endpoint(None, "Resource"), NA, ()),
        ("ServiceNetwork endpoint", endpoint(None, "ServiceNetwork"), NA, ()),
        ("deleted state", endpoint(doc(allow()), state="deleted"), NA, ("deleted",)),
        ("rejected state", endpoint(doc(allow()), "Interface", state="rejected"), NA, ()),
        ("pending is evaluated", endpoint(doc(allow()), "Interface", state="pendingacceptance"), NC, ()),
        ("no policy", endpoint(None), NC, ("full access",)),
        ("default policy (AWS docs)", endpoint({"Statement": [allow()]}), NC, ("default full-access",)),
        (
            "default policy 2008 version",
            endpoint({"Version": "2008-10-17", "Statement": [allow()]}),
            NC,
            ("default",),
        ),
        ("both orgs", endpoint(doc(allow("Org", Condition=ORG_BOTH))), C, ("o-a1b2c3d4e5",)),
        (
            "principal org only",
            endpoint(doc(allow("P", Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}))),
            C,
            (),
        ),
        (
            "resource org only",
            endpoint(doc(allow("R", Condition={"StringEquals": {"aws:ResourceOrgID": ORG}}))),
            C,
            (),
        ),
        (
            "data perimeter sample",
            endpoint(
                doc(
                    allow(
                        "AllowRequestsByOrgsIdentitiesToOrgsResources",
                        Principal={"AWS": "*"},
                        Condition=ORG_BOTH,
                    ),
                    allow(
                        "AllowRequestsByAWSServicePrincipals",
                        Principal={"AWS": "*"},
                        Condition={"Bool": {"aws:PrincipalIsAWSService": "true"}},
                    ),
                ),
                "Interface",
            ),
            C,
            (),
        ),
        (
            "IfExists",
            endpoint(doc(allow("IfEx", Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}}))),
            NC,
            ("IfEx",),
        ),
        (
            "other org",
            endpoint(doc(allow("X", Condition={"StringEquals": {"aws:ResourceOrgID": "o-zz9y8x7w6v"}}))),
            NC,
            ("X",),
        ),
        (
            "account only",
            endpoint(
                doc(allow("Acct", Condition={"StringEquals": {"aws:PrincipalAccount": "123456789012"}}))
            ),
            NC,
            ("Acct",),
        ),
        (
            "specific bucket, no org (AWS docs)",
            endpoint(
                doc(
                    allow(
                        "Access-to-specific-bucket-only",
                        Action=["s3:GetObject", "s3:PutObject"],
                        Resource=["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"],
                    )
                )
            ),
            NC,
            ("Access-to-specific-bucket-only",),
        ),
        ("one good one bad by index", endpoint(doc(allow("Good", Condition=ORG_BOTH), allow())), NC, ("#1",)),
        (
            "only denies",
            endpoint(doc({"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"})),
            C,
            (),
        ),
        (
            "deny free, allow pinned",
            endpoint(
                doc(
                    allow("Org", Condition=ORG_BOTH),
                    {"Effect": "Deny", "Principal": "*", "NotAction": "s3:Get*", "Resource": "*"},
                )
            ),
            C,
            (),
        ),
        ("single statement object", endpoint({"Statement": allow("Org", Condition=ORG_BOTH)}), C, ()),
    )

    def test_cases(self) -> None:
        for name, ep, expected, fragments in self.CASES:
            with self.subTest(name):
                verdict = rule.decide(ep, PARAMS)
                self.assertEqual(verdict.compliance, expected, verdict.annotation)
                for fragment in fragments:
                    self.assertIn(fragment, verdict.annotation)
                self.assertLessEqual(len(verdict.annotation), 256)

    def test_malformed_policy_fails(self) -> None:
        for text in ("not json", json.dumps(doc(allow(Principal=None)))):
            with self.subTest(text=text), self.assertRaises(MalformedConfigurationItem):
                rule.decide(endpoint(text), PARAMS)


# ------------------------------------------------------------------------------------- change path
class ChangeEvaluationTest(unittest.TestCase):
    def evaluate(self, ci: dict[str, Any], clients: Any = None, raw: dict[str, Any] | None = None) -> Any:
        (evaluation,) = rule.VPC_ENDPOINT_POLICY_ORG_ONLY().evaluate_change(
            {}, cast(Any, clients or Clients()), ci, raw or {"OrganizationId": ORG}
        )
        return evaluation

    def test_fixtures_without_calls(self) -> None:
        for name, expected in (
            ("vpce_gateway_s3_default_policy.json", NC),
            ("vpce_interface_sagemaker_api_org.json", C),
            ("vpce_gateway_load_balancer.json", NA),
        ):
            with self.subTest(name):
                clients = Clients()
                ci = load(name)
                evaluation = self.evaluate(ci, clients)
                self.assertEqual(evaluation.complianceType, expected, evaluation.annotation)
                self.assertEqual(evaluation.complianceResourceId, ci["resourceId"])
                self.assertEqual(evaluation.complianceResourceType, "AWS::EC2::VPCEndpoint")
                self.assertEqual(clients.asked, [])

    def test_ci_without_policy_document_reads_the_api(self) -> None:
        ci = load("vpce_interface_sagemaker_api_org.json")
        ci["configuration"].pop("policyDocument")
        policy = json.dumps(doc(allow("Org", Condition=ORG_BOTH)))
        ec2 = FakeEc2(
            [{"VpcEndpointId": ci["resourceId"], "VpcEndpointType": "Interface", "PolicyDocument": policy}]
        )
        evaluation = self.evaluate(ci, Clients(ec2))
        self.assertEqual(evaluation.complianceType, C)
        self.assertEqual(ec2.calls, [{"VpcEndpointIds": [ci["resourceId"]]}])
        ec2.endpoints = []
        with self.assertRaises(MalformedConfigurationItem):
            self.evaluate(ci, Clients(ec2))

    def test_state_shapes_and_string_configuration(self) -> None:
        ci = load("vpce_gateway_s3_default_policy.json")
        ci["configuration"]["state"] = {"value": "deleting"}
        self.assertEqual(self.evaluate(ci).complianceType, NA)
        ci["configuration"]["state"] = "Available"
        ci["configuration"] = json.dumps(ci["configuration"])
        self.assertEqual(self.evaluate(ci).complianceType, NC)

    def test_malformed_items(self) -> None:
        ci = load("vpce_gateway_s3_default_policy.json")
        no_type = copy.deepcopy(ci)
        no_type["configuration"].pop("vpcEndpointType")
        broken = copy.deepcopy(ci)
        broken["configuration"]["policyDocument"] = '{"Statement": ['
        not_text = copy.deepcopy(ci)
        not_text["configuration"]["policyDocument"] = {"Statement": []}
        for item in (no_type, broken, not_text):
            with self.assertRaises(MalformedConfigurationItem):
                self.evaluate(item)

    def test_exempt_by_tag(self) -> None:
        evaluation = self.evaluate(
            load("vpce_gateway_s3_default_policy.json"),
            raw={"OrganizationId": ORG, "ExemptionTagKey": "Name"},
        )
        self.assertEqual(evaluation.complianceType, NA)
        self.assertIn("ml-training-s3", evaluation.annotation)


if __name__ == "__main__":
    unittest.main()
