"""Tests of SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET: the pure decision, route resolution, CI parsing, parameters
and the change path with a fake EC2 client. They follow the scenarios of the rule's module docstring.

Sources of the shapes used here (not invented from the code):
* CI fixtures ``tests/fixtures/ci/sagemaker_notebook_*.json``: rdk has no sample CI for this type. Config
  records it through the CloudFormation registry, so ``configuration`` holds the CFN properties in PascalCase:
  AWS Config's resource schema lists ``configuration.DirectInternetAccess``, ``.SubnetId``,
  ``.SecurityGroupIds``, ``.Id``, ... (https://github.com/awslabs/aws-config-resource-schema, file
  config/properties/resource-types/AWS::SageMaker::NotebookInstance.properties.json); the current CFN schema
  (cfn-lint 1.58 bundled provider schema ``AWS::SageMaker::NotebookInstance``) names the primary identifier
  ``/properties/NotebookInstanceArn`` (formerly ``Id``, the ``Ref`` value, documented as the ARN
  ``arn:aws:sagemaker:us-west-2:012345678901:notebook-instance/mynotebookinstance`` for a notebook named
  ``MyNotebookInstance``: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sagemaker-notebookinstance.html
  "Return values"). Config uses a registry type's primary identifier as resourceId (rdk's sample CI for the
  registry type AWS::ECR::PublicRepository has resourceId = its primary identifier, RepositoryName), hence
  resourceId = the ARN, name lower-cased in it. The envelope is the notification shape of the Config
  developer guide's example change notification.
* Route tables: the ``aws ec2 describe-route-tables`` example of the AWS CLI reference
  (https://docs.aws.amazon.com/cli/latest/reference/ec2/describe-route-tables.html, also
  aws-cli awscli/examples/ec2/describe-route-tables.rst) and rdk's sample CI AWS_EC2_RouteTable.json
  (camelCase keys); field meanings from botocore's ec2 model (``Route``: State active|blackhole|filtered).
* DirectInternetAccess absent = Enabled: CreateNotebookInstance API reference and SageMaker developer guide
  "Connect a Notebook Instance in a VPC to External Resources"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/appendix-notebook-and-internet-access.html).
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rdklib import ComplianceType, InvalidParametersError

import SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET as rule_module
from ml_guardrails.ci import ConfigurationItem, MalformedConfigurationItem
from ml_guardrails.resources.ec2_routes import (
    InternetPath,
    NetworkView,
    RouteTable,
    RouteTableNotFound,
    Subnet,
    internet_paths,
    route_tables_in_force,
)
from ml_guardrails.resources.sagemaker_notebook import NotebookInstance, notebook_name

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/ci"
RULE = rule_module.SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
Params = rule_module.Params
decide = rule_module.decide
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE

SUBNET = "subnet-0a1b2c3d4e5f60718"
VPC = "vpc-0c0ffee0c0ffee000"
TGW = "tgw-0123456789abcdef0"
CORE_NETWORK = "arn:aws:networkmanager::123456789012:core-network/core-network-0123456789abcdef0"


def load_ci(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def notebook(**changes: Any) -> NotebookInstance:
    base = NotebookInstance(
        name="risk-model-dev",
        arn="arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/risk-model-dev",
        direct_internet_access="Disabled",
        subnet_id=SUBNET,
        security_group_ids=("sg-0f1e2d3c4b5a69788",),
        status="InService",
    )
    return NotebookInstance(**{**base.__dict__, **changes})


def path(target: str, destination: str = "0.0.0.0/0", gateway: bool = True, reason: str = "") -> InternetPath:
    return InternetPath("rtb-0aaaaaaaaaaaaaaa1", destination, target, reason or "internet gateway", gateway)


def params(**values: Any) -> Any:
    return RULE().evaluate_parameters(values)


# ------------------------------------------------------------------------------------- the pure decision
class DecideTest(unittest.TestCase):
    def test_table(self) -> None:
        default = Params()
        cases: list[tuple[str, NotebookInstance, Any, Any, str, tuple[str, ...]]] = [
            # name, notebook, params, paths, expected compliance, words the annotation must contain
            (
                "1 Enabled",
                notebook(direct_internet_access="Enabled"),
                default,
                None,
                NC,
                ("Enabled", "Recreate"),
            ),
            ("2 absent", notebook(direct_internet_access=None), default, None, NC, ("API default: Enabled",)),
            (
                "3 unknown value",
                notebook(direct_internet_access="enabled"),
                default,
                None,
                NC,
                ("not Disabled",),
            ),
            (
                "3 empty-ish value",
                notebook(direct_internet_access="None"),
                default,
                None,
                NC,
                ("not Disabled",),
            ),
            ("4 no subnet", notebook(subnet_id=None), default, None, NC, ("no VPC subnet",)),
            (
                "5 subnet not allowed",
                notebook(),
                Params(allowed_subnet_ids=frozenset({"subnet-0123456789abcdef0"})),
                None,
                NC,
                ("not in AllowedSubnetIds", "Recreate"),
            ),
            (
                "6 console default notebook (Enabled, no subnet)",
                notebook(direct_internet_access="Enabled", subnet_id=None),
                default,
                None,
                NC,
                ("Enabled", "no VPC subnet"),
            ),
            (
                "7 internet gateway",
                notebook(),
                default,
                [path("igw-0123456789abcdef0")],
                NC,
                ("igw-", "endpoints"),
            ),
            (
                "7 NAT gateway",
                notebook(),
                default,
                [path("nat-0123456789abcdef0", reason="NAT gateway")],
                NC,
                (),
            ),
            (
                "7 egress-only (IPv6)",
                notebook(),
                default,
                [path("eigw-0123456789abcdef0", "::/0", reason="egress-only internet gateway")],
                NC,
                ("::/0",),
            ),
            (
                "8 default route to a transit gateway not allowed",
                notebook(),
                default,
                [path(TGW, gateway=False, reason="transit gateway, not in AllowedEgressTargets")],
                NC,
                ("AllowedEgressTargets",),
            ),
            ("9 no internet path", notebook(), default, [], C, ("no internet path", "rtb-")),
            (
                "9 subnet allowed, no path",
                notebook(),
                Params(allowed_subnet_ids=frozenset({SUBNET})),
                [],
                C,
                (SUBNET,),
            ),
            (
                "10 network not checked",
                notebook(),
                Params(check_network_path=False),
                None,
                C,
                ("not checked",),
            ),
            (
                "11 stopped and Enabled",
                notebook(direct_internet_access="Enabled", status="Stopped"),
                default,
                None,
                NC,
                ("Stopped", "when it starts"),
            ),
            (
                "11 stopped, NAT route",
                notebook(status="Stopped"),
                default,
                [path("nat-0123456789abcdef0")],
                NC,
                (),
            ),
            (
                "11 failed notebook",
                notebook(direct_internet_access="Enabled", status="Failed"),
                default,
                None,
                NC,
                (),
            ),
            (
                "12 deleting",
                notebook(direct_internet_access="Enabled", status="Deleting"),
                default,
                None,
                NA,
                (),
            ),
            ("unknown status evaluated", notebook(status="SomethingNew"), default, [], C, ()),
        ]
        for name, nb, prm, paths, expected, words in cases:
            with self.subTest(name):
                verdict = decide(nb, prm, paths, ("rtb-0aaaaaaaaaaaaaaa1",) if paths is not None else ())
                self.assertEqual(verdict.compliance, expected, verdict.annotation)
                self.assertTrue(verdict.annotation)
                self.assertLessEqual(len(verdict.annotation), 256)
                for word in words:
                    self.assertIn(word, verdict.annotation)

    def test_non_compliant_annotations_say_what_to_do(self) -> None:
        for nb, paths in [
            (notebook(direct_internet_access="Enabled"), None),
            (notebook(), [path("igw-0123456789abcdef0")]),
            (notebook(), [path(TGW, gateway=False)]),
        ]:
            with self.subTest(nb=nb, paths=paths):
                text = decide(nb, Params(), paths).annotation
                self.assertRegex(text, r"(Recreate|Remove)")

    def test_longest_annotations_fit(self) -> None:
        long_paths = [
            path(CORE_NETWORK, "::/0", gateway=False, reason="core network, not in AllowedEgressTargets"),
            path("igw-0123456789abcdef0"),
            path("nat-0123456789abcdef0"),
        ]
        cases = [
            (notebook(status="Stopping"), Params(), long_paths),
            (
                notebook(direct_internet_access="x" * 500, subnet_id="subnet-" + "f" * 200, status="Stopped"),
                Params(allowed_subnet_ids=frozenset({SUBNET})),
                None,
            ),
            (notebook(subnet_id="subnet-0123456789abcdef0" * 3), Params(), []),
        ]
        for nb, prm, paths in cases:
            with self.subTest(nb=nb):
                verdict = decide(nb, prm, paths, ("rtb-0123456789abcdef0", "rtb-0fedcba9876543210"))
                self.assertLessEqual(len(verdict.annotation), 256, verdict.annotation)
                self.assertFalse(verdict.annotation.endswith("..."), verdict.annotation)

    def test_network_check_needs_the_paths(self) -> None:
        self.assertTrue(rule_module.needs_network_check(notebook(), Params()))
        with self.assertRaises(ValueError):
            decide(notebook(), Params(), None)

    def test_no_route_read_when_configuration_decides(self) -> None:
        for nb, prm in [
            (notebook(direct_internet_access="Enabled"), Params()),
            (notebook(subnet_id=None), Params()),
            (notebook(), Params(check_network_path=False)),
            (notebook(status="Deleting"), Params()),
            (notebook(), Params(allowed_subnet_ids=frozenset({"subnet-0123456789abcdef0"}))),
        ]:
            with self.subTest(nb=nb, prm=prm):
                self.assertFalse(rule_module.needs_network_check(nb, prm))


# ------------------------------------------------------------------------------------ route resolution
def table(routes: list[dict[str, Any]], **extra: Any) -> RouteTable:
    raw = {
        "RouteTableId": "rtb-0aaaaaaaaaaaaaaa1",
        "VpcId": VPC,
        "Associations": [
            {
                "Main": True,
                "RouteTableAssociationId": "rtbassoc-1",
                "AssociationState": {"State": "associated"},
            }
        ],
        "Routes": [
            {
                "DestinationCidrBlock": "10.0.0.0/16",
                "GatewayId": "local",
                "Origin": "CreateRouteTable",
                "State": "active",
            },
            *routes,
        ],
    }
    raw.update(extra)
    return RouteTable.parse(raw)


class InternetPathsTest(unittest.TestCase):
    def test_table(self) -> None:
        active = {"Origin": "CreateRoute", "State": "active"}
        cases: list[tuple[str, dict[str, Any], tuple[str, ...], bool]] = [
            # name, route, AllowedEgressTargets, is an internet path
            (
                "default to internet gateway",
                {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "specific prefix to internet gateway",
                {"DestinationCidrBlock": "203.0.113.0/24", "GatewayId": "igw-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "NAT gateway (NatGatewayId field)",
                {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "NAT gateway cannot be allowed",
                {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-0123456789abcdef0"},
                ("nat-0123456789abcdef0",),
                True,
            ),
            (
                "egress-only IPv6",
                {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "carrier gateway",
                {"DestinationCidrBlock": "0.0.0.0/0", "CarrierGatewayId": "cagw-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "customer prefix list to internet gateway",
                {"DestinationPrefixListId": "pl-0123456789abcdef0", "GatewayId": "igw-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "default to transit gateway",
                {"DestinationCidrBlock": "0.0.0.0/0", "TransitGatewayId": TGW},
                (),
                True,
            ),
            (
                "default to allowed transit gateway",
                {"DestinationCidrBlock": "0.0.0.0/0", "TransitGatewayId": TGW},
                (TGW,),
                False,
            ),
            (
                "IPv6 default to transit gateway",
                {"DestinationIpv6CidrBlock": "::/0", "TransitGatewayId": TGW},
                (),
                True,
            ),
            (
                "default to virtual private gateway",
                {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "vgw-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "default to GWLB endpoint",
                {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "vpce-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "default to allowed GWLB endpoint",
                {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "vpce-0123456789abcdef0"},
                ("vpce-0123456789abcdef0",),
                False,
            ),
            (
                "default to local gateway (Outposts)",
                {"DestinationCidrBlock": "0.0.0.0/0", "LocalGatewayId": "lgw-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "default to peering",
                {"DestinationCidrBlock": "0.0.0.0/0", "VpcPeeringConnectionId": "pcx-0123456789abcdef0"},
                (),
                True,
            ),
            (
                "default to core network",
                {"DestinationCidrBlock": "0.0.0.0/0", "CoreNetworkArn": CORE_NETWORK},
                (),
                True,
            ),
            (
                "default to core network allowed",
                {"DestinationCidrBlock": "0.0.0.0/0", "CoreNetworkArn": CORE_NETWORK},
                (CORE_NETWORK,),
                False,
            ),
            (
                "NAT instance allowed by its ENI",
                {
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "InstanceId": "i-0123456789abcdef0",
                    "InstanceOwnerId": "123456789012",
                    "NetworkInterfaceId": "eni-0123456789abcdef0",
                },
                ("eni-0123456789abcdef0",),
                False,
            ),
            (
                "NAT instance not allowed",
                {
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "InstanceId": "i-0123456789abcdef0",
                    "NetworkInterfaceId": "eni-0123456789abcdef0",
                },
                (),
                True,
            ),
            ("default route without a known target", {"DestinationCidrBlock": "0.0.0.0/0"}, (), True),
            (
                "S3 gateway endpoint prefix list",
                {"DestinationPrefixListId": "pl-63a5400a", "GatewayId": "vpce-0123456789abcdef0"},
                (),
                False,
            ),
            (
                "peering to a specific CIDR",
                {"DestinationCidrBlock": "10.1.0.0/16", "VpcPeeringConnectionId": "pcx-0123456789abcdef0"},
                (),
                False,
            ),
            (
                "transit gateway to on-premises CIDR",
                {"DestinationCidrBlock": "192.168.0.0/16", "TransitGatewayId": TGW},
                (),
                False,
            ),
            (
                "split default halves to a TGW (documented limitation)",
                {"DestinationCidrBlock": "0.0.0.0/1", "TransitGatewayId": TGW},
                (),
                False,
            ),
        ]
        for name, route, allowed, expected in cases:
            with self.subTest(name):
                paths = internet_paths(table([{**active, **route}]), allowed)
                self.assertEqual(bool(paths), expected, paths)
        with self.subTest("the local route alone"):
            self.assertEqual(internet_paths(table([])), [])

    def test_inactive_routes_do_not_count(self) -> None:
        for state, counts in [
            ("blackhole", False),
            ("filtered", False),
            ("active", True),
            ("Active", True),
            ("new-state", True),
        ]:
            with self.subTest(state):
                route = {
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "NatGatewayId": "nat-0123456789abcdef0",
                    "State": state,
                }
                self.assertEqual(bool(internet_paths(table([route]))), counts)
        with self.subTest("no State at all: fail closed, counted"):
            self.assertTrue(
                internet_paths(
                    table([{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-0123456789abcdef0"}])
                )
            )

    def test_malformed_route(self) -> None:
        with self.assertRaises(MalformedConfigurationItem):
            table([{"GatewayId": "igw-0123456789abcdef0", "State": "active"}])


# AWS CLI reference, `aws ec2 describe-route-tables` example output (copied verbatim, see module docstring).
CLI_DESCRIBE_ROUTE_TABLES = {
    "RouteTables": [
        {
            "Associations": [
                {
                    "Main": True,
                    "RouteTableAssociationId": "rtbassoc-0df3f54e06EXAMPLE",
                    "RouteTableId": "rtb-09ba434c1bEXAMPLE",
                }
            ],
            "PropagatingVgws": [],
            "RouteTableId": "rtb-09ba434c1bEXAMPLE",
            "Routes": [
                {
                    "DestinationCidrBlock": "10.0.0.0/16",
                    "GatewayId": "local",
                    "Origin": "CreateRouteTable",
                    "State": "active",
                },
                {
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "NatGatewayId": "nat-06c018cbd8EXAMPLE",
                    "Origin": "CreateRoute",
                    "State": "blackhole",
                },
            ],
            "Tags": [],
            "VpcId": "vpc-0065acced4EXAMPLE",
            "OwnerId": "111122223333",
        },
        {
            "Associations": [
                {"Main": True, "RouteTableAssociationId": "rtbassoc-9EXAMPLE", "RouteTableId": "rtb-a1eec7de"}
            ],
            "PropagatingVgws": [],
            "RouteTableId": "rtb-a1eec7de",
            "Routes": [
                {
                    "DestinationCidrBlock": "172.31.0.0/16",
                    "GatewayId": "local",
                    "Origin": "CreateRouteTable",
                    "State": "active",
                },
                {
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "GatewayId": "igw-fEXAMPLE",
                    "Origin": "CreateRoute",
                    "State": "active",
                },
            ],
            "Tags": [],
            "VpcId": "vpc-3EXAMPLE",
            "OwnerId": "111122223333",
        },
        {
            "Associations": [
                {
                    "Main": False,
                    "RouteTableAssociationId": "rtbassoc-0b100c28b2EXAMPLE",
                    "RouteTableId": "rtb-07a98f76e5EXAMPLE",
                    "SubnetId": "subnet-0d3d002af8EXAMPLE",
                }
            ],
            "PropagatingVgws": [],
            "RouteTableId": "rtb-07a98f76e5EXAMPLE",
            "Routes": [
                {
                    "DestinationCidrBlock": "10.0.0.0/16",
                    "GatewayId": "local",
                    "Origin": "CreateRouteTable",
                    "State": "active",
                },
                {
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "GatewayId": "igw-06cf664d80EXAMPLE",
                    "Origin": "CreateRoute",
                    "State": "active",
                },
            ],
            "Tags": [],
            "VpcId": "vpc-0065acced4EXAMPLE",
            "OwnerId": "111122223333",
        },
    ]
}


class RouteTableInForceTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tables = [RouteTable.parse(t) for t in CLI_DESCRIBE_ROUTE_TABLES["RouteTables"]]

    def test_aws_cli_example(self) -> None:
        """The documented example decides both ways: the subnet with the explicit igw table is open, every
        other subnet of the VPC uses the main table, whose NAT route is a blackhole."""
        view = NetworkView(
            {
                "subnet-0d3d002af8EXAMPLE": Subnet("subnet-0d3d002af8EXAMPLE", "vpc-0065acced4EXAMPLE"),
                "subnet-0e4f00000aEXAMPLE": Subnet("subnet-0e4f00000aEXAMPLE", "vpc-0065acced4EXAMPLE"),
            },
            self.tables,
        )
        tables, paths = view.paths_for_subnet("subnet-0d3d002af8EXAMPLE")
        self.assertEqual(tables, ("rtb-07a98f76e5EXAMPLE",))
        self.assertEqual(
            [(p.target, p.reason) for p in paths], [("igw-06cf664d80EXAMPLE", "internet gateway")]
        )
        tables, paths = view.paths_for_subnet("subnet-0e4f00000aEXAMPLE")
        self.assertEqual((tables, paths), (("rtb-09ba434c1bEXAMPLE",), []))
        verdict = decide(
            notebook(subnet_id="subnet-0d3d002af8EXAMPLE"),
            Params(),
            *reversed(view.paths_for_subnet("subnet-0d3d002af8EXAMPLE")),
        )
        self.assertEqual(verdict.compliance, NC)
        self.assertIn("rtb-07a98f76e5EXAMPLE", verdict.annotation)

    def test_rdk_sample_route_table_ci(self) -> None:
        """rdk's sample AWS::EC2::RouteTable CI (camelCase keys) parses like the API shape."""
        import rdk

        sample = Path(rdk.__file__).parent / "template/example_ci/AWS_EC2_RouteTable.json"
        ci = json.loads(sample.read_text(encoding="utf-8"))
        parsed = RouteTable.parse(ci["configuration"])
        self.assertTrue(parsed.main)
        self.assertEqual([p.target for p in internet_paths(parsed)], ["igw-a5f227c1"])

    def test_association_states(self) -> None:
        subnet = Subnet(SUBNET, VPC)
        main = table([], RouteTableId="rtb-main")

        def explicit(state: str | None) -> RouteTable:
            association: dict[str, Any] = {"Main": False, "SubnetId": SUBNET}
            if state:
                association["AssociationState"] = {"State": state}
            return table([], RouteTableId="rtb-explicit", Associations=[association])

        cases = [
            (None, ("rtb-explicit",)),
            ("associated", ("rtb-explicit",)),
            ("associating", ("rtb-explicit", "rtb-main")),
            ("disassociating", ("rtb-explicit", "rtb-main")),
            ("disassociated", ("rtb-main",)),
            ("failed", ("rtb-main",)),
        ]
        for state, expected in cases:
            with self.subTest(state):
                chosen = route_tables_in_force(subnet, [explicit(state), main])
                self.assertEqual(tuple(t.route_table_id for t in chosen), expected)

    def test_other_vpcs_tables_are_ignored(self) -> None:
        other = table(
            [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-0123456789abcdef0"}],
            VpcId="vpc-0other0000000000",
        )
        with self.assertRaises(RouteTableNotFound):
            route_tables_in_force(Subnet(SUBNET, VPC), [other])

    def test_shared_subnet_route_tables_not_visible(self) -> None:
        view = NetworkView({SUBNET: Subnet(SUBNET, VPC, owner_id="210987654321")}, [])
        with self.assertRaises(RouteTableNotFound) as caught:
            view.paths_for_subnet(SUBNET)
        self.assertIn("210987654321", str(caught.exception))
        self.assertIn("CheckNetworkPath", str(caught.exception))
        with self.assertRaises(RouteTableNotFound):
            view.paths_for_subnet("subnet-0notvisible000000")


# ------------------------------------------------------------------------------------------- CI parsing
class NotebookViewTest(unittest.TestCase):
    def test_fixture_isolated(self) -> None:
        item = ConfigurationItem.parse(load_ci("sagemaker_notebook_isolated.json"))
        nb = NotebookInstance.from_configuration_item(item)
        self.assertEqual(
            (
                nb.name,
                nb.direct_internet_access,
                nb.subnet_id,
                nb.security_group_ids,
                nb.root_access,
                nb.status,
            ),
            ("risk-model-dev", "Disabled", SUBNET, ("sg-0f1e2d3c4b5a69788",), "Disabled", None),
        )
        self.assertEqual(nb.tags["team"], "credit-risk")
        self.assertEqual(nb.arn, item.resource_id)

    def test_fixture_internet_mixed_case_name(self) -> None:
        """AWS lower-cases the name inside the ARN; the view keeps the real name from the configuration."""
        item = ConfigurationItem.parse(load_ci("sagemaker_notebook_internet.json"))
        nb = NotebookInstance.from_configuration_item(item)
        self.assertEqual(
            (nb.name, nb.direct_internet_access, nb.subnet_id), ("QuantSandbox", "Enabled", None)
        )
        self.assertEqual(notebook_name(item.resource_id), "quantsandbox")

    def test_shapes(self) -> None:
        base = load_ci("sagemaker_notebook_isolated.json")
        as_string = copy.deepcopy(base)
        as_string["configuration"] = json.dumps(base["configuration"])
        legacy = copy.deepcopy(base)  # older Config items: CFN "Id" instead of NotebookInstanceArn, no Tags
        cfg = legacy["configuration"]
        cfg["Id"] = cfg.pop("NotebookInstanceArn")
        cfg.pop("Tags")
        by_name = copy.deepcopy(base)  # a resource id that is the bare name is accepted too
        by_name["resourceId"] = "risk-model-dev"
        by_name["configuration"].pop("NotebookInstanceName")
        by_name.pop("resourceName")
        for name, raw in [
            ("configuration as JSON string", as_string),
            ("legacy Id", legacy),
            ("id = name", by_name),
        ]:
            with self.subTest(name):
                nb = NotebookInstance.from_configuration_item(ConfigurationItem.parse(raw))
                self.assertEqual(
                    (nb.name, nb.direct_internet_access, nb.subnet_id), ("risk-model-dev", "Disabled", SUBNET)
                )
                self.assertEqual(nb.tags["team"], "credit-risk")

    def test_describe_response(self) -> None:
        """DescribeNotebookInstance names the groups SecurityGroups and carries the status."""
        nb = NotebookInstance.from_describe(
            {
                "NotebookInstanceArn": notebook().arn,
                "NotebookInstanceName": "risk-model-dev",
                "NotebookInstanceStatus": "Stopped",
                "SubnetId": SUBNET,
                "SecurityGroups": ["sg-0f1e2d3c4b5a69788"],
                "DirectInternetAccess": "Disabled",
            },
            {"team": "credit-risk"},
        )
        self.assertEqual(
            (nb.status, nb.security_group_ids, nb.tags),
            ("Stopped", ("sg-0f1e2d3c4b5a69788",), {"team": "credit-risk"}),
        )

    def test_malformed(self) -> None:
        base = load_ci("sagemaker_notebook_isolated.json")
        for field, value in [
            ("DirectInternetAccess", False),
            ("SubnetId", ["subnet-1"]),
            ("SecurityGroupIds", "sg-1"),
        ]:
            with self.subTest(field):
                raw = copy.deepcopy(base)
                raw["configuration"][field] = value
                with self.assertRaises(MalformedConfigurationItem):
                    NotebookInstance.from_configuration_item(ConfigurationItem.parse(raw))
        with self.assertRaises(MalformedConfigurationItem):
            NotebookInstance.from_describe({"NotebookInstanceStatus": "InService"})

    def test_name_from_id(self) -> None:
        self.assertEqual(
            notebook_name("arn:aws-us-gov:sagemaker:us-gov-west-1:123456789012:notebook-instance/nb-1"),
            "nb-1",
        )
        self.assertEqual(notebook_name("nb-1"), "nb-1")


# ------------------------------------------------------------------------------------------- parameters
class ParametersTest(unittest.TestCase):
    def test_defaults(self) -> None:
        self.assertEqual(params().rule, Params(True, None, frozenset()))
        self.assertEqual(params(CheckNetworkPath="").rule.check_network_path, True)

    def test_valid(self) -> None:
        parsed = params(
            CheckNetworkPath="TRUE",
            AllowedSubnetIds="subnet-0a1b2c3d4e5f60718, subnet-1a2b3c4d",
            AllowedEgressTargets=f"{TGW},vgw-0123abcd,{CORE_NETWORK}",
            ExemptionTagKey="guardrails:exempt",
        )
        self.assertEqual(parsed.rule.allowed_subnet_ids, {SUBNET, "subnet-1a2b3c4d"})
        self.assertEqual(parsed.rule.allowed_egress_targets, {TGW, "vgw-0123abcd", CORE_NETWORK})
        self.assertEqual(parsed.exemption_tag_key, "guardrails:exempt")
        self.assertFalse(params(CheckNetworkPath="false").rule.check_network_path)

    def test_invalid_parameters_name_the_parameter(self) -> None:
        cases = [
            ({"CheckNetworkPath": "yes"}, "CheckNetworkPath"),
            ({"AllowedSubnetIds": "subnet-xyz"}, "AllowedSubnetIds"),
            ({"AllowedSubnetIds": "subnet-0A1B2C3D"}, "AllowedSubnetIds"),
            ({"AllowedSubnetIds": f"{SUBNET},,"}, "AllowedSubnetIds"),
            ({"AllowedEgressTargets": "igw-0123456789abcdef0"}, "AllowedEgressTargets"),
            ({"AllowedEgressTargets": "nat-0123456789abcdef0"}, "AllowedEgressTargets"),
            ({"AllowedEgressTargets": "eigw-0123456789abcdef0"}, "AllowedEgressTargets"),
            ({"AllowedEgressTargets": "cagw-0123456789abcdef0"}, "AllowedEgressTargets"),
            ({"AllowedEgressTargets": "local"}, "AllowedEgressTargets"),
            ({"AllowedEgressTargets": "tgw-123"}, "AllowedEgressTargets"),
            ({"AllowedEgressTargets": TGW, "CheckNetworkPath": "false"}, "AllowedEgressTargets"),
            ({"ExemptionTagKey": "aws:reserved"}, "ExemptionTagKey"),
            ({"AllowedSubnets": SUBNET}, "AllowedSubnets"),
        ]
        for values, name in cases:
            with self.subTest(values=values):
                with self.assertRaises(InvalidParametersError) as caught:
                    params(**values)
                self.assertIn(name, str(caught.exception))

    def test_parameters_json_agrees(self) -> None:
        doc = json.loads((Path(__file__).parent / "parameters.json").read_text(encoding="utf-8"))[
            "Parameters"
        ]
        inputs, optional = json.loads(doc["InputParameters"]), json.loads(doc["OptionalParameters"])
        specs = {p.name: p for p in RULE.parameter_specs()}
        self.assertEqual(set(inputs) | set(optional), set(specs))
        for name, default in inputs.items():
            self.assertEqual(specs[name].default, default)
        self.assertTrue(all(specs[name].default is None for name in optional))
        self.assertEqual(doc["SourceEvents"], "AWS::SageMaker::NotebookInstance")
        self.assertLessEqual(len(doc["Description"]), 256)


# ------------------------------------------------------------------------------------ the change path
class FakePaginator:
    def __init__(self, client: FakeEc2, operation: str) -> None:
        self.client, self.operation = client, operation

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return [self.client.call(self.operation, kwargs)]


class FakeEc2:
    """DescribeSubnets / DescribeRouteTables over a fixed network, recording every call."""

    def __init__(
        self, subnets: list[dict[str, Any]], route_tables: list[dict[str, Any]], error: str | None = None
    ):
        self.subnets, self.route_tables, self.error = subnets, route_tables, error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_paginator(self, operation: str) -> FakePaginator:
        return FakePaginator(self, operation)

    def call(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, kwargs))
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "denied"}}, operation)
        if operation == "describe_subnets":
            wanted = set(kwargs.get("SubnetIds") or [s["SubnetId"] for s in self.subnets])
            return {"Subnets": [s for s in self.subnets if s["SubnetId"] in wanted]}
        vpcs = {v for f in kwargs.get("Filters", []) if f["Name"] == "vpc-id" for v in f["Values"]}
        return {"RouteTables": [t for t in self.route_tables if not vpcs or t["VpcId"] in vpcs]}


class FakeClients:
    def __init__(self, ec2: FakeEc2) -> None:
        self.ec2 = ec2

    def build_client(self, service: str, *_: Any, **__: Any) -> FakeEc2:
        if service != "ec2":
            raise AssertionError(f"the change path must not call {service}")
        return self.ec2


def network(default_route: dict[str, Any] | None) -> FakeEc2:
    routes = [
        {
            "DestinationCidrBlock": "10.20.0.0/16",
            "GatewayId": "local",
            "Origin": "CreateRouteTable",
            "State": "active",
        },
        {
            "DestinationPrefixListId": "pl-63a5400a",
            "GatewayId": "vpce-0a0b0c0d0e0f01234",
            "Origin": "CreateRoute",
            "State": "active",
        },
    ]
    if default_route:
        routes.append(
            {"DestinationCidrBlock": "0.0.0.0/0", "Origin": "CreateRoute", "State": "active", **default_route}
        )
    return FakeEc2(
        [
            {
                "SubnetId": SUBNET,
                "VpcId": VPC,
                "OwnerId": "123456789012",
                "CidrBlock": "10.20.1.0/24",
                "State": "available",
            }
        ],
        [
            {
                "RouteTableId": "rtb-0main000000000000",
                "VpcId": VPC,
                "Routes": [
                    routes[0],
                    {
                        "DestinationCidrBlock": "0.0.0.0/0",
                        "GatewayId": "igw-0123456789abcdef0",
                        "State": "active",
                    },
                ],
                "Associations": [
                    {
                        "Main": True,
                        "RouteTableAssociationId": "rtbassoc-0m",
                        "AssociationState": {"State": "associated"},
                    }
                ],
            },
            {
                "RouteTableId": "rtb-0private000000000",
                "VpcId": VPC,
                "Routes": routes,
                "Associations": [
                    {
                        "Main": False,
                        "SubnetId": SUBNET,
                        "RouteTableAssociationId": "rtbassoc-0p",
                        "AssociationState": {"State": "associated"},
                    }
                ],
            },
        ],
    )


class EvaluateChangeTest(unittest.TestCase):
    def evaluate(self, raw: dict[str, Any], ec2: FakeEc2, **values: Any) -> Any:
        rule = RULE()
        evaluations = rule.evaluate_change({}, FakeClients(ec2), raw, rule.evaluate_parameters(values))
        self.assertEqual(len(evaluations), 1)
        return evaluations[0]

    def test_fixtures(self) -> None:
        isolated, internet = (
            load_ci("sagemaker_notebook_isolated.json"),
            load_ci("sagemaker_notebook_internet.json"),
        )
        cases = [
            ("isolated subnet, endpoints only", isolated, network(None), {}, C, 2),
            (
                "NAT gateway default route",
                isolated,
                network({"NatGatewayId": "nat-0123456789abcdef0"}),
                {},
                NC,
                2,
            ),
            ("transit gateway default route", isolated, network({"TransitGatewayId": TGW}), {}, NC, 2),
            (
                "transit gateway allowed",
                isolated,
                network({"TransitGatewayId": TGW}),
                {"AllowedEgressTargets": TGW},
                C,
                2,
            ),
            (
                "blackhole NAT",
                isolated,
                network({"NatGatewayId": "nat-0123456789abcdef0", "State": "blackhole"}),
                {},
                C,
                2,
            ),
            (
                "network not checked",
                isolated,
                network({"NatGatewayId": "nat-0123456789abcdef0"}),
                {"CheckNetworkPath": "false"},
                C,
                0,
            ),
            (
                "subnet not allowed",
                isolated,
                network(None),
                {"AllowedSubnetIds": "subnet-0123456789abcdef0"},
                NC,
                0,
            ),
            ("direct internet access", internet, network(None), {}, NC, 0),
            ("exempted by tag", isolated, network(None), {"ExemptionTagKey": "data-classification"}, NA, 0),
        ]
        for name, raw, ec2, values, expected, calls in cases:
            with self.subTest(name):
                evaluation = self.evaluate(raw, ec2, **values)
                self.assertEqual(evaluation.complianceType, expected, evaluation.annotation)
                self.assertEqual(evaluation.complianceResourceId, raw["resourceId"])
                self.assertEqual(evaluation.complianceResourceType, "AWS::SageMaker::NotebookInstance")
                self.assertLessEqual(len(evaluation.annotation), 256)
                self.assertEqual(len(ec2.calls), calls, ec2.calls)
                if calls:
                    self.assertEqual(ec2.calls[0], ("describe_subnets", {"SubnetIds": [SUBNET]}))
                    self.assertEqual(
                        ec2.calls[1],
                        ("describe_route_tables", {"Filters": [{"Name": "vpc-id", "Values": [VPC]}]}),
                    )

    def test_explicit_table_wins_over_main(self) -> None:
        """The VPC's main table routes to an internet gateway, but the subnet's explicit table does not."""
        evaluation = self.evaluate(load_ci("sagemaker_notebook_isolated.json"), network(None))
        self.assertEqual(evaluation.complianceType, C)
        self.assertIn("rtb-0private000000000", evaluation.annotation)

    def test_deleted_item_not_applicable(self) -> None:
        raw = load_ci("sagemaker_notebook_internet.json")
        raw["configurationItemStatus"] = "ResourceDeleted"
        raw["configuration"] = None
        ec2 = network(None)
        self.assertEqual(self.evaluate(raw, ec2).complianceType, NA)
        self.assertEqual(ec2.calls, [])

    def test_access_denied_propagates(self) -> None:
        ec2 = FakeEc2([], [], error="UnauthorizedOperation")
        with self.assertRaises(ClientError):
            self.evaluate(load_ci("sagemaker_notebook_isolated.json"), ec2)

    def test_route_tables_not_visible_fails(self) -> None:
        ec2 = network(None)
        ec2.route_tables = []
        with self.assertRaises(RouteTableNotFound):
            self.evaluate(load_ci("sagemaker_notebook_isolated.json"), ec2)

    def test_malformed_item_fails(self) -> None:
        raw = load_ci("sagemaker_notebook_isolated.json")
        raw["configuration"]["DirectInternetAccess"] = 0
        with self.assertRaises(MalformedConfigurationItem):
            self.evaluate(raw, network(None))


if __name__ == "__main__":
    unittest.main()
