"""Unit tests of VPC_FLOW_LOGS_ENABLED: the pure decision (table-driven), parameters, and the change path
on configuration-item fixtures with a small fake EC2 client. Run by pytest and by ``rdk test-local``.

Fixtures (tests/fixtures/ci):
- ``vpc_default_rdk_sample.json``: rdk 1.0.0's ``rdk sample-ci AWS::EC2::VPC`` (a real 2016 default-VPC CI,
  GetResourceConfigHistory-shaped), with its keys renamed to the notification shape a change event carries
  (accountId -> awsAccountId, arn -> ARN, version -> configurationItemVersion).
- ``vpc_ml_training.json``: a non-default VPC CI in notification shape (version 1.3) whose configuration is
  botocore's ``Vpc`` shape camelCased as AWS Config records it (ownerId, cidrBlockAssociationSet,
  tags as [{key, value}]); values invented.

DescribeFlowLogs entries come from AWS documentation and from what moto returns:
- AWS CLI example (https://github.com/aws/aws-cli/blob/develop/awscli/examples/ec2/describe-flow-logs.rst):
  a subnet flow log (ALL, cloud-watch-logs) and a VPC flow log (ACCEPT, s3, DeliverLogsStatus SUCCESS).
  They decide: subnet logs do not cover a VPC; ACCEPT-only fails TrafficType ALL but meets ACCEPT; S3
  flow logs do report DeliverLogsStatus.
- EC2 API reference, FlowLog (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_FlowLog.html):
  deliverLogsStatus SUCCESS|FAILED, "Required: No"; deliverLogsErrorMessage "Access error" / "Rate
  limited" / "Unknown error". They decide: FAILED is NON_COMPLIANT; an absent status is not a failure.
- moto 5.2.5: a cloud-watch-logs flow log to a log group that does not exist is described with
  DeliverLogsStatus FAILED / "Access error" (real AWS creates the group when the delivery role may).
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rdklib import InvalidParametersError

from ml_guardrails.catalog import RuleSpec, load_rule_module
from ml_guardrails.ci import ConfigurationItem, MalformedConfigurationItem
from ml_guardrails.engine import RuleParameters
from ml_guardrails.resources.ec2_vpc import FlowLog, Vpc

RULE_DIR = Path(__file__).resolve().parent
# By path, under its own name: the same module object whether rdk test-local (rule folder appended to
# sys.path), pytest (any import mode) or the catalog imports it.
rule_module = load_rule_module("VPC_FLOW_LOGS_ENABLED", RULE_DIR / "VPC_FLOW_LOGS_ENABLED.py")

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/ci"
RTYPE = "AWS::EC2::VPC"
ACCOUNT = "123456789012"
VPC_ID = "vpc-0a1b2c3d4e5f60718"
Params = rule_module.Params
decide = rule_module.decide


def load_ci(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def flow_log(**overrides: Any) -> dict[str, Any]:
    """A DescribeFlowLogs entry of a working VPC flow log (AWS CLI example shape), with overrides;
    an override of None removes the field."""
    entry: dict[str, Any] = {
        "CreationTime": "2019-07-19T15:22:29.986Z",
        "DeliverLogsStatus": "SUCCESS",
        "FlowLogId": "fl-01234567890123456",
        "FlowLogStatus": "ACTIVE",
        "ResourceId": VPC_ID,
        "TrafficType": "ALL",
        "LogDestinationType": "s3",
        "LogDestination": "arn:aws:s3:::my-flow-log-bucket/custom",
        "MaxAggregationInterval": 600,
    }
    for key, value in overrides.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


# The two entries of the AWS CLI describe-flow-logs example, verbatim apart from LogFormat.
CLI_SUBNET_LOG = {
    "CreationTime": "2018-02-21T13:22:12.644Z",
    "DeliverLogsPermissionArn": "arn:aws:iam::123456789012:role/flow-logs-role",
    "DeliverLogsStatus": "SUCCESS",
    "FlowLogId": "fl-aabbccdd112233445",
    "FlowLogStatus": "ACTIVE",
    "LogGroupName": "FlowLogGroup",
    "ResourceId": "subnet-12345678901234567",
    "TrafficType": "ALL",
    "LogDestinationType": "cloud-watch-logs",
}
CLI_VPC_LOG = {
    "CreationTime": "2019-07-19T15:22:29.986Z",
    "DeliverLogsStatus": "SUCCESS",
    "FlowLogId": "fl-01234567890123456",
    "FlowLogStatus": "ACTIVE",
    "ResourceId": "vpc-00112233445566778",
    "TrafficType": "ACCEPT",
    "LogDestinationType": "s3",
    "LogDestination": "arn:aws:s3:::my-flow-log-bucket/custom",
}

VPC = Vpc(VPC_ID, "available", False, ACCOUNT)
DEFAULT_VPC = Vpc("vpc-0990dc6d", "available", True, None)
CLI_VPC = Vpc("vpc-00112233445566778", "available", False, ACCOUNT)


def logs(*entries: dict[str, Any]) -> list[FlowLog]:
    return [FlowLog.from_api(e) for e in entries]


class TrafficCoverageTest(unittest.TestCase):
    def test_table(self) -> None:
        cases = [
            ("ALL", "ALL", True),
            ("ALL", "ACCEPT", True),
            ("ALL", "REJECT", True),
            ("ACCEPT", "ACCEPT", True),
            ("REJECT", "REJECT", True),
            ("ACCEPT", "ALL", False),
            ("REJECT", "ALL", False),
            ("ACCEPT", "REJECT", False),
            ("REJECT", "ACCEPT", False),
            (None, "ALL", False),
            ("all", "ALL", False),
            ("BOGUS", "REJECT", False),
        ]
        for captured, required, expected in cases:
            with self.subTest(captured=captured, required=required):
                self.assertIs(rule_module.traffic_covers(captured, required), expected)


class DecisionTest(unittest.TestCase):
    """Every DESIGN.md bullet of VPC_FLOW_LOGS_ENABLED, COMPLIANT / NON_COMPLIANT / NOT_APPLICABLE."""

    CASES: tuple[tuple[str, Vpc, list[FlowLog], Any, str | None, str, tuple[str, ...]], ...] = (
        # (name, vpc, flow logs, params, account, expected, annotation must contain)
        (
            "ALL, active, SUCCESS",
            VPC,
            logs(flow_log()),
            Params(),
            ACCOUNT,
            "COMPLIANT",
            ("fl-0123", "ALL", "s3"),
        ),
        (
            "ALL to cloud-watch-logs (group, no LogDestination)",
            VPC,
            logs(
                flow_log(LogDestinationType="cloud-watch-logs", LogDestination=None, LogGroupName="vpc-logs")
            ),
            Params(),
            ACCOUNT,
            "COMPLIANT",
            ("cloud-watch-logs",),
        ),
        (
            "ALL to firehose",
            VPC,
            logs(flow_log(LogDestinationType="kinesis-data-firehose")),
            Params(),
            ACCOUNT,
            "COMPLIANT",
            ("kinesis-data-firehose",),
        ),
        (
            "no flow log at all",
            VPC,
            [],
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            (
                "no VPC-level flow log",
                "subnet/ENI flow logs do not cover it",
                "CreateFlowLogs",
                "TrafficType ALL",
            ),
        ),
        (
            "only a subnet flow log (AWS CLI example)",
            VPC,
            logs(CLI_SUBNET_LOG),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("no VPC-level flow log", "subnet/ENI"),
        ),
        (
            "only an ENI flow log",
            VPC,
            logs(flow_log(ResourceId="eni-0123456789abcdef0")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("subnet/ENI",),
        ),
        (
            "AWS CLI example VPC log: ACCEPT only vs default ALL",
            CLI_VPC,
            logs(CLI_SUBNET_LOG, CLI_VPC_LOG),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("ACCEPT only, ALL required",),
        ),
        (
            "AWS CLI example VPC log: ACCEPT meets TrafficType ACCEPT",
            CLI_VPC,
            logs(CLI_SUBNET_LOG, CLI_VPC_LOG),
            Params(traffic_type="ACCEPT"),
            ACCOUNT,
            "COMPLIANT",
            ("ACCEPT",),
        ),
        (
            "AWS CLI example VPC log: s3 not in LogDestinationTypes cloud-watch-logs",
            CLI_VPC,
            logs(CLI_VPC_LOG),
            Params(traffic_type="ACCEPT", log_destination_types=frozenset({"cloud-watch-logs"})),
            ACCOUNT,
            "NON_COMPLIANT",
            ("destination s3 not allowed", "to cloud-watch-logs)"),
        ),
        (
            "REJECT only vs ALL (exfiltration is accepted traffic)",
            VPC,
            logs(flow_log(TrafficType="REJECT")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("REJECT only, ALL required",),
        ),
        (
            "REJECT meets REJECT",
            VPC,
            logs(flow_log(TrafficType="REJECT")),
            Params("REJECT"),
            ACCOUNT,
            "COMPLIANT",
            (),
        ),
        ("ALL meets REJECT", VPC, logs(flow_log()), Params("REJECT"), ACCOUNT, "COMPLIANT", ()),
        ("ALL meets ACCEPT", VPC, logs(flow_log()), Params("ACCEPT"), ACCOUNT, "COMPLIANT", ()),
        (
            "ACCEPT does not meet REJECT",
            VPC,
            logs(flow_log(TrafficType="ACCEPT")),
            Params("REJECT"),
            ACCOUNT,
            "NON_COMPLIANT",
            ("ACCEPT only, REJECT required", "TrafficType REJECT"),
        ),
        (
            "delivery FAILED, Access error (API reference; moto for a missing log group)",
            VPC,
            logs(flow_log(DeliverLogsStatus="FAILED", DeliverLogsErrorMessage="Access error")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("delivery FAILED: Access error",),
        ),
        (
            "delivery FAILED, Rate limited",
            VPC,
            logs(flow_log(DeliverLogsStatus="FAILED", DeliverLogsErrorMessage="Rate limited")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("Rate limited",),
        ),
        (
            "delivery FAILED without a message",
            VPC,
            logs(flow_log(DeliverLogsStatus="FAILED")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("delivery FAILED: no message",),
        ),
        (
            "no DeliverLogsStatus: optional in the API, not a failure",
            VPC,
            logs(flow_log(DeliverLogsStatus=None)),
            Params(),
            ACCOUNT,
            "COMPLIANT",
            ("delivery not reported",),
        ),
        (
            "undocumented delivery status does not count",
            VPC,
            logs(flow_log(DeliverLogsStatus="PENDING")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("delivery PENDING unknown",),
        ),
        (
            "flow log not ACTIVE",
            VPC,
            logs(flow_log(FlowLogStatus="DELETING")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("not ACTIVE (DELETING)",),
        ),
        (
            "flow log status missing",
            VPC,
            logs(flow_log(FlowLogStatus=None)),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("not ACTIVE (no status)",),
        ),
        (
            "traffic type missing (transit-gateway-like entry)",
            VPC,
            logs(flow_log(TrafficType=None)),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("traffic type missing unknown",),
        ),
        (
            "destination type outside the enum",
            VPC,
            logs(flow_log(LogDestinationType="carrier-pigeon")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("destination carrier-pigeon unknown",),
        ),
        (
            "no destination type and no log group",
            VPC,
            logs(flow_log(LogDestinationType=None, LogDestination=None)),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("destination missing unknown",),
        ),
        (
            "LogDestinationTypes s3 allows an s3 log",
            VPC,
            logs(flow_log()),
            Params(log_destination_types=frozenset({"s3"})),
            ACCOUNT,
            "COMPLIANT",
            (),
        ),
        (
            "LogDestinationTypes s3 rejects firehose",
            VPC,
            logs(flow_log(LogDestinationType="kinesis-data-firehose")),
            Params(log_destination_types=frozenset({"s3"})),
            ACCOUNT,
            "NON_COMPLIANT",
            ("destination kinesis-data-firehose not allowed", "to s3)."),
        ),
        (
            "one failing and one good flow log",
            VPC,
            logs(flow_log(FlowLogId="fl-1", TrafficType="REJECT"), flow_log(FlowLogId="fl-2")),
            Params(),
            ACCOUNT,
            "COMPLIANT",
            ("fl-2",),
        ),
        (
            "two failing flow logs: each reason listed",
            VPC,
            logs(
                flow_log(FlowLogId="fl-1", TrafficType="REJECT"),
                flow_log(
                    FlowLogId="fl-2", DeliverLogsStatus="FAILED", DeliverLogsErrorMessage="Access error"
                ),
            ),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("fl-1 REJECT only", "fl-2 delivery FAILED: Access error"),
        ),
        (
            "several problems on one flow log",
            VPC,
            logs(flow_log(TrafficType="REJECT", DeliverLogsStatus="FAILED", FlowLogStatus="INACTIVE")),
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            ("not ACTIVE (INACTIVE)", "delivery FAILED", "REJECT only"),
        ),
        (
            "default VPC without flow log (rdk sample CI)",
            DEFAULT_VPC,
            [],
            Params(),
            None,
            "NON_COMPLIANT",
            ("Default VPC vpc-0990dc6d", "delete the unused default VPC"),
        ),
        (
            "default VPC with a good flow log",
            DEFAULT_VPC,
            logs(flow_log(ResourceId="vpc-0990dc6d")),
            Params(),
            None,
            "COMPLIANT",
            ("Default VPC",),
        ),
        (
            "pending VPC is evaluated",
            Vpc(VPC_ID, "pending", False, ACCOUNT),
            [],
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            (),
        ),
        (
            "pending VPC with a good log",
            Vpc(VPC_ID, "pending", False, ACCOUNT),
            logs(flow_log()),
            Params(),
            ACCOUNT,
            "COMPLIANT",
            (),
        ),
        (
            "unknown VPC state is evaluated (fail closed)",
            Vpc(VPC_ID, "mystery", False, ACCOUNT),
            [],
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            (),
        ),
        (
            "deleting VPC",
            Vpc(VPC_ID, "deleting", False, ACCOUNT),
            [],
            Params(),
            ACCOUNT,
            "NOT_APPLICABLE",
            ("being deleted",),
        ),
        (
            "VPC shared by another account",
            Vpc(VPC_ID, "available", False, "210987654321"),
            [],
            Params(),
            ACCOUNT,
            "NOT_APPLICABLE",
            ("owned by account 210987654321", "owner account"),
        ),
        (
            "owner unknown: evaluated",
            Vpc(VPC_ID, "available", False, None),
            [],
            Params(),
            ACCOUNT,
            "NON_COMPLIANT",
            (),
        ),
    )

    def test_cases(self) -> None:
        for name, vpc, flow_logs, params, account, expected, fragments in self.CASES:
            with self.subTest(name):
                compliance, annotation = decide(vpc, flow_logs, params, account)
                self.assertEqual(compliance, expected, annotation)
                self.assertLessEqual(len(annotation), 256, annotation)
                self.assertTrue(annotation.strip())
                for fragment in fragments:
                    self.assertIn(fragment, annotation)
                if expected == "NON_COMPLIANT":  # says what to do
                    self.assertTrue("CreateFlowLogs" in annotation, annotation)

    def test_every_verdict_is_covered(self) -> None:
        self.assertEqual({c[5] for c in self.CASES}, {"COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE"})

    def test_many_failing_flow_logs_stay_within_256_characters(self) -> None:
        long_vpc = Vpc("vpc-0123456789abcdef0", "available", True, ACCOUNT)
        entries = [
            flow_log(
                ResourceId=long_vpc.vpc_id,
                FlowLogId=f"fl-0123456789abcde{i:02d}",
                TrafficType="BOGUSTRAFFICTYPEVALUE",
                FlowLogStatus="SOMETHING-NEW-AND-LONG",
                DeliverLogsStatus="FAILED",
                DeliverLogsErrorMessage="x" * 500,
                LogDestinationType="a-very-long-unknown-destination-type",
            )
            for i in range(12)
        ]
        params = Params(traffic_type="ACCEPT", log_destination_types=frozenset({"s3"}))
        compliance, annotation = decide(long_vpc, logs(*entries), params, ACCOUNT)
        self.assertEqual(compliance, "NON_COMPLIANT")
        self.assertLessEqual(len(annotation), 256, annotation)
        self.assertIn("more", annotation)
        self.assertIn("CreateFlowLogs", annotation)

    def test_longest_no_flow_log_annotation_fits_without_truncation(self) -> None:
        vpc = Vpc("vpc-0123456789abcdef0", "available", True, ACCOUNT)
        compliance, annotation = decide(vpc, [], Params("REJECT"), ACCOUNT)
        self.assertEqual(compliance, "NON_COMPLIANT")
        self.assertLessEqual(len(annotation), 256)
        self.assertFalse(annotation.endswith("..."), annotation)

    def test_flow_log_of_another_vpc_never_counts(self) -> None:
        # Defensive: the change path filters on resource-id, but a decision never trusts it blindly.
        compliance, _ = decide(VPC, logs(flow_log(ResourceId="vpc-ffffffffffffffff0")), Params(), ACCOUNT)
        self.assertEqual(compliance, "NON_COMPLIANT")


class ViewTest(unittest.TestCase):
    def test_vpc_from_api_and_from_ci_agree(self) -> None:
        ci = load_ci("vpc_ml_training.json")
        from_ci = Vpc.from_configuration_item(ConfigurationItem.parse(ci))
        api = {
            "OwnerId": ACCOUNT,
            "InstanceTenancy": "default",
            "IsDefault": False,
            "Tags": [{"Key": "Name", "Value": "ml-training"}, {"Key": "cost-center", "Value": "ml-platform"}],
            "VpcId": VPC_ID,
            "State": "available",
            "CidrBlock": "10.20.0.0/16",
        }
        self.assertEqual(from_ci, Vpc.from_api(api))

    def test_configuration_as_json_string(self) -> None:
        ci = load_ci("vpc_default_rdk_sample.json")
        ci["configuration"] = json.dumps(ci["configuration"])
        vpc = Vpc.from_configuration_item(ConfigurationItem.parse(ci))
        self.assertEqual((vpc.vpc_id, vpc.is_default, vpc.state), ("vpc-0990dc6d", True, "available"))

    def test_malformed(self) -> None:
        cases = {
            "vpcId differs from resourceId": {"vpcId": "vpc-other", "state": "available"},
            "isDefault not a boolean": {"vpcId": VPC_ID, "isDefault": "maybe"},
            "state not a string": {"vpcId": VPC_ID, "state": 3},
            "tags not a list/object": {"vpcId": VPC_ID, "tags": 7},
        }
        for name, configuration in cases.items():
            with self.subTest(name):
                ci = load_ci("vpc_ml_training.json")
                ci["configuration"] = configuration
                with self.assertRaises(MalformedConfigurationItem):
                    Vpc.from_configuration_item(ConfigurationItem.parse(ci))
        for name, entry in {
            "no ResourceId": flow_log(ResourceId=None),
            "TrafficType not a string": flow_log(TrafficType=5),
            "not an object": ["fl-1"],
        }.items():
            with self.subTest(name), self.assertRaises(MalformedConfigurationItem):
                FlowLog.from_api(entry)


class ParametersTest(unittest.TestCase):
    def setUp(self) -> None:
        self.rule = rule_module.VPC_FLOW_LOGS_ENABLED()

    def test_defaults_and_valid_values(self) -> None:
        cases = [
            ({}, Params("ALL", None)),
            ({"TrafficType": "ALL"}, Params("ALL", None)),
            ({"TrafficType": "REJECT"}, Params("REJECT", None)),
            ({"TrafficType": " ACCEPT "}, Params("ACCEPT", None)),
            ({"LogDestinationTypes": ""}, Params("ALL", None)),
            ({"LogDestinationTypes": "s3"}, Params("ALL", frozenset({"s3"}))),
            (
                {"LogDestinationTypes": "s3, cloud-watch-logs"},
                Params("ALL", frozenset({"s3", "cloud-watch-logs"})),
            ),
            (
                {"LogDestinationTypes": "kinesis-data-firehose"},
                Params("ALL", frozenset({"kinesis-data-firehose"})),
            ),
        ]
        for raw, expected in cases:
            with self.subTest(raw=raw):
                self.assertEqual(self.rule.evaluate_parameters(raw).rule, expected)

    def test_invalid_values_name_the_parameter(self) -> None:
        cases = [
            ({"TrafficType": "all"}, "TrafficType"),
            ({"TrafficType": "BOTH"}, "TrafficType"),
            ({"TrafficType": True}, "TrafficType"),
            ({"LogDestinationTypes": "s3,splunk"}, "LogDestinationTypes"),
            ({"LogDestinationTypes": "S3"}, "LogDestinationTypes"),
            ({"LogDestinationTypes": "s3,,cloud-watch-logs"}, "LogDestinationTypes"),
            ({"trafficType": "ALL"}, "trafficType"),  # the managed rule's spelling is a different rule's
            ({"ExemptionTagKey": "aws:exempt"}, "ExemptionTagKey"),
        ]
        for raw, name in cases:
            with self.subTest(raw=raw), self.assertRaises(InvalidParametersError) as caught:
                self.rule.evaluate_parameters(raw)
            self.assertIn(name, str(caught.exception))

    def test_parameters_json_matches_the_rule(self) -> None:
        spec = RuleSpec.load(RULE_DIR / "parameters.json")
        self.assertEqual(spec.name, "VPC_FLOW_LOGS_ENABLED")
        self.assertEqual(spec.resource_types, (RTYPE,))
        self.assertEqual(spec.periodic, "TwentyFour_Hours")
        names = {p.name for p in self.rule.parameter_specs()}
        self.assertEqual(spec.parameter_names, names)
        self.assertIn("ExemptionTagKey", spec.optional_parameters)
        for p in self.rule.parameter_specs():
            if p.default is not None:
                self.assertEqual(spec.input_parameters.get(p.name), p.default, p.name)
            else:
                self.assertEqual(spec.optional_parameters.get(p.name), "", p.name)


# ------------------------------------------------------------------------------------- change path
class FakeEc2:
    """DescribeFlowLogs as EC2 answers it: filtered on resource-id, in pages; records every request."""

    def __init__(self, flow_logs: list[dict[str, Any]], page_size: int = 1, error: str | None = None) -> None:
        self.flow_logs = flow_logs
        self.page_size = page_size
        self.error = error
        self.requests: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> FakeEc2:
        assert name == "describe_flow_logs", name
        return self

    def paginate(self, **kwargs: Any) -> Any:
        wanted = None
        for f in kwargs.get("Filters", []):
            if f["Name"] == "resource-id":
                wanted = set(f["Values"])
        matching = [e for e in self.flow_logs if wanted is None or e.get("ResourceId") in wanted]
        for start in range(0, max(len(matching), 1), self.page_size):
            self.requests.append(copy.deepcopy(kwargs))
            if self.error:
                raise ClientError({"Error": {"Code": self.error, "Message": "denied"}}, "DescribeFlowLogs")
            yield {"FlowLogs": matching[start : start + self.page_size]}


class FakeClients:
    def __init__(self, ec2: FakeEc2) -> None:
        self.ec2 = ec2
        self.built: list[str] = []

    def build_client(self, service: str, region: str | None = None, assume_role_mode: bool = True) -> Any:
        self.built.append(service)
        assert service == "ec2", service
        return self.ec2


def change(ci: dict[str, Any], clients: FakeClients, raw_params: dict[str, Any] | None = None) -> Any:
    rule = rule_module.VPC_FLOW_LOGS_ENABLED()
    params: RuleParameters[Any] = rule.evaluate_parameters(raw_params or {})
    evaluations = rule.evaluate_change({}, clients, ci, params)
    assert len(evaluations) == 1
    return evaluations[0]


class ChangePathTest(unittest.TestCase):
    def test_fixture_with_working_flow_log_is_compliant_with_one_filtered_call(self) -> None:
        ec2 = FakeEc2([flow_log(), CLI_SUBNET_LOG, flow_log(ResourceId="vpc-other", FlowLogId="fl-x")])
        evaluation = change(load_ci("vpc_ml_training.json"), FakeClients(ec2))
        self.assertEqual(evaluation.complianceType, "COMPLIANT")
        self.assertEqual(evaluation.complianceResourceId, VPC_ID)
        self.assertEqual(evaluation.complianceResourceType, RTYPE)
        self.assertEqual(ec2.requests, [{"Filters": [{"Name": "resource-id", "Values": [VPC_ID]}]}])

    def test_all_pages_are_read(self) -> None:
        # page 1 holds a REJECT-only log, page 2 the qualifying one: reading one page would be wrong
        entries = [flow_log(FlowLogId="fl-a", TrafficType="REJECT"), flow_log(FlowLogId="fl-b")]
        ec2 = FakeEc2(entries, page_size=1)
        evaluation = change(load_ci("vpc_ml_training.json"), FakeClients(ec2))
        self.assertEqual(evaluation.complianceType, "COMPLIANT")
        self.assertEqual(len(ec2.requests), 2)

    def test_rdk_sample_default_vpc_without_flow_log(self) -> None:
        ec2 = FakeEc2([])
        evaluation = change(load_ci("vpc_default_rdk_sample.json"), FakeClients(ec2))
        self.assertEqual(evaluation.complianceType, "NON_COMPLIANT")
        self.assertIn("Default VPC vpc-0990dc6d", evaluation.annotation)
        self.assertEqual(len(ec2.requests), 1)

    def test_configuration_as_json_string(self) -> None:
        ci = load_ci("vpc_ml_training.json")
        ci["configuration"] = json.dumps(ci["configuration"])
        evaluation = change(ci, FakeClients(FakeEc2([flow_log(TrafficType="REJECT")])))
        self.assertEqual(evaluation.complianceType, "NON_COMPLIANT")
        self.assertIn("REJECT only, ALL required", evaluation.annotation)

    def test_parameters_apply(self) -> None:
        ci = load_ci("vpc_ml_training.json")
        clients = FakeClients(FakeEc2([flow_log(TrafficType="REJECT")]))
        self.assertEqual(change(ci, clients, {"TrafficType": "REJECT"}).complianceType, "COMPLIANT")
        clients = FakeClients(FakeEc2([flow_log()]))
        evaluation = change(ci, clients, {"LogDestinationTypes": "cloud-watch-logs"})
        self.assertEqual(evaluation.complianceType, "NON_COMPLIANT")

    def test_not_applicable_without_any_call(self) -> None:
        cases = {}
        deleted = load_ci("vpc_ml_training.json")
        deleted["configurationItemStatus"] = "ResourceDeleted"
        deleted["configuration"] = None
        cases["deleted"] = (deleted, {}, "")
        deleting = load_ci("vpc_ml_training.json")
        deleting["configuration"]["state"] = "deleting"
        cases["deleting"] = (deleting, {}, "being deleted")
        shared = load_ci("vpc_ml_training.json")
        shared["configuration"]["ownerId"] = "210987654321"
        cases["shared"] = (shared, {}, "owned by account 210987654321")
        exempt = load_ci("vpc_ml_training.json")
        exempt["tags"]["ml-guardrails:exemption"] = "isolated sandbox, no egress"
        cases["exempt"] = (
            exempt,
            {"ExemptionTagKey": "ml-guardrails:exemption"},
            "isolated sandbox, no egress",
        )
        for name, (ci, raw_params, fragment) in cases.items():
            with self.subTest(name):
                clients = FakeClients(FakeEc2([flow_log()]))
                evaluation = change(ci, clients, raw_params)
                self.assertEqual(evaluation.complianceType, "NOT_APPLICABLE")
                self.assertIn(fragment, evaluation.annotation)
                self.assertEqual(clients.ec2.requests, [])

    def test_pending_vpc_is_evaluated(self) -> None:
        ci = load_ci("vpc_ml_training.json")
        ci["configuration"]["state"] = "pending"
        ec2 = FakeEc2([])
        self.assertEqual(change(ci, FakeClients(ec2)).complianceType, "NON_COMPLIANT")
        self.assertEqual(len(ec2.requests), 1)

    def test_failures_propagate_never_compliant(self) -> None:
        rule = rule_module.VPC_FLOW_LOGS_ENABLED()
        params = rule.evaluate_parameters({})
        ci = load_ci("vpc_ml_training.json")
        with self.assertRaises(ClientError):
            rule.evaluate_change(
                {}, FakeClients(FakeEc2([flow_log()], error="UnauthorizedOperation")), ci, params
            )
        with self.assertRaises(MalformedConfigurationItem):
            rule.evaluate_change({}, FakeClients(FakeEc2([flow_log(FlowLogStatus=["ACTIVE"])])), ci, params)
        broken = load_ci("vpc_ml_training.json")
        broken["configuration"]["isDefault"] = "perhaps"
        with self.assertRaises(MalformedConfigurationItem):
            rule.evaluate_change({}, FakeClients(FakeEc2([flow_log()])), broken, params)


if __name__ == "__main__":
    unittest.main()
