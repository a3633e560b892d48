"""Least privilege, proven: every IAM policy in template.yaml grants exactly what its code calls.

The ``tests.iam_recorder`` plugin records, per *actor* (a rule's Lambda function or a runbook's
automation role), every AWS API call made while the suite runs the rules and runbooks. This module

1. drives its own representative run on the demo landscape (``ml_guardrails.demo.seed``) so it never
   depends on which other tests ran: every rule's periodic sweep with default and with all-optional-reads
   parameters (exemption tag, upload policy, bucket key, key ARNs, rotation period, network path,
   allowed subnets, traffic and destination types), change events, oversized change events, bad
   parameters (a periodic-only rule gets no change events); every runbook from the scan's findings
   (twice: change, then "nothing changed"), the S3 runbook with the upload policy, the VPC runbook to
   CloudWatch Logs (delivery role), the quarantine and hardening runbooks given a differently-cased ARN,
   the GuardDuty runbook on a suspended detector and on a missing feature; then every sweep once more on
   the remediated account (the detector the runbook created is read only then);
2. takes the union of that run and everything the session recorded before it (the plugin runs this
   module last);
3. maps the calls to IAM actions (``tests/iam_action_map.py``), and asserts for each function and
   automation role of the template that the policy grants every action used and no action unused,
   with resources scoped wherever IAM allows it.

Explicit allowances, each with its reason:

* ``LAMBDA_DESTINATION``: ``sqs:SendMessage`` on the failed-evaluations queue and
  ``kms:GenerateDataKey``/``kms:Decrypt`` on its key are used by the Lambda service for the on-failure
  destination (EventInvokeConfig), not by our code. Lambda: "Your function's execution role needs
  sqs:SendMessage" (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html);
  an SSE-KMS queue's producers need kms:GenerateDataKey and kms:Decrypt
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
* ``sts:AssumeRole``: the engine's cross-account step, made only when ``AssumeRoleMode`` is true. Every
  ConfigRule in template.yaml passes ``AssumeRoleMode: 'false'`` (asserted below), so the single-account
  functions must not hold it. (The organization deployment needs it: see the report of this change.)
* Actions AWS checks without a call of ours (ec2:CreateTags for TagSpecifications, logs:CreateLogDelivery
  and logs:DeleteLogDelivery for S3 flow logs, iam:PassRole for the delivery role) are derived from the
  recorded CreateFlowLogs parameters in ``iam_action_map.implied_actions``, with their citations.
* ``ENCRYPTED_TOPIC_PUBLISH``: a role that publishes to the SSE-KMS FindingsTopic holds
  kms:GenerateDataKey and kms:Decrypt on that topic's key, used by SNS for the publisher; allowed only when
  every topic the role publishes to is SSE-KMS and the grant is exactly their keys.
* iam:CreateServiceLinkedRole (GuardDuty's service-linked role) is implied by CreateDetector, with its
  citation in ``iam_action_map``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from rdklib import InvalidParametersError

from ml_guardrails import catalog, demo
from ml_guardrails import remediate as fix
from ml_guardrails.cli import scan
from ml_guardrails.engine import handle
from ml_guardrails.runbooks import FakeClock, run_runbook
from ml_guardrails.testing import (
    aws_shaped_rds,
    change_event,
    history_item,
    inject,
    oversized_event,
    scheduled_event,
)
from tests import iam_recorder
from tests.iam_action_map import SCOPED, STAR_ONLY
from tests.iam_recorder import Recording

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "ci"
CAPTURED = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)  # of the oversized events' items
SPECS = catalog.discover(ROOT / "rules")
ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"
LAMBDA_DESTINATION = frozenset({"sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"})
# Publishing to an SSE-KMS topic: SNS uses the topic's key for the publisher, who needs
# kms:GenerateDataKey and kms:Decrypt on it (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html,
# "Configuring AWS KMS permissions"): no API call of ours shows them.
ENCRYPTED_TOPIC_PUBLISH = frozenset({"kms:GenerateDataKey", "kms:Decrypt"})
# Parameters without a default: the rule refuses to run without them.
REQUIRED = {
    "S3_BUCKET_POLICY_ORG_ONLY": {"OrganizationId": demo.ORGANIZATION_ID},
    "VPC_ENDPOINT_POLICY_ORG_ONLY": {"OrganizationId": demo.ORGANIZATION_ID},
}
CROSS_ACCOUNT = "sts:AssumeRole"
SINGLE_ACCOUNT = {"AssumeRoleMode": "false"}


# ------------------------------------------------------------------------------------ the template
def _template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def _resolve(template: dict[str, Any], value: Any) -> Any:
    """A policy value with intrinsics resolved for account 123456789012 in us-east-1 (``aws``)."""
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
            pseudo.update({"AWS::StackName": "ml-guardrails"})
            for name, spec in template.get("Parameters", {}).items():
                pseudo[name] = str(spec.get("Default") or f"<{name}>")
            pseudo.update({k: str(_resolve(template, v)) for k, v in extra.items()})
            for name, replacement in pseudo.items():
                text = text.replace("${" + name + "}", replacement)
            assert "${" not in text, f"unresolved Fn::Sub in {arg}"
            return text
        if fn == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            kind = template["Resources"][logical]["Type"]
            assert attribute == "Arn", value
            if kind == "AWS::KMS::Key":
                return f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{logical}"
            if kind == "AWS::SQS::Queue":
                return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{logical}"
            raise AssertionError(f"no ARN shape for {kind} ({logical})")
        if fn == "Ref" and arg == "AWS::NoValue":
            return None
        if fn == "Ref" and template["Resources"].get(arg, {}).get("Type") == "AWS::SNS::Topic":
            return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{arg}"  # Ref of a topic is its ARN
    if isinstance(value, list):
        return [r for r in (_resolve(template, v) for v in value) if r is not None]
    return value


Conditions = dict[str, bool] | None


def _statements(node: Any, conditions: Conditions) -> Iterator[dict[str, Any]]:
    """Policy statements. Fn::If: the branch ``conditions`` selects, or (None) both branches -- a grant
    in either branch counts."""
    if isinstance(node, list):
        for item in node:
            yield from _statements(item, conditions)
    elif isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            branches = (
                [when_true, when_false]
                if conditions is None
                else [when_true if conditions[name] else when_false]
            )
            for branch in branches:
                yield from _statements(branch, conditions)
        elif "Effect" in node:
            yield node


def _policy_statements(resource: dict[str, Any], conditions: Conditions) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in resource["Properties"].get("Policies", []):
        assert isinstance(policy, dict), f"only inline statements are checked, not {policy!r}"
        document = policy.get("PolicyDocument", policy)
        assert set(document) <= {"Statement", "Version"}, f"unexpected policy shape {sorted(document)}"
        found.extend(_statements(document["Statement"], conditions))
    return found


def grants(template: dict[str, Any], logical_id: str, conditions: Conditions = None) -> dict[str, list[str]]:
    """Action -> resources granted to a function's or role's inline policies (Allow only; no Deny)."""
    result: dict[str, list[str]] = {}
    for statement in _policy_statements(template["Resources"][logical_id], conditions):
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = _resolve(template, statement["Resource"])
        resources = resources if isinstance(resources, list) else [resources]
        for action in actions:
            result.setdefault(action, []).extend(resources)
    return result


def principals(template: dict[str, Any]) -> dict[str, str]:
    """Actor (as the recorder names it) -> logical id of the function or automation role."""
    found: dict[str, str] = {}
    resources = template["Resources"]
    rule_ids = {}
    for logical, res in resources.items():
        if res["Type"] == "AWS::Config::ConfigRule":
            props = res["Properties"]
            rule_ids[logical] = props["ConfigRuleName"]
            found[f"rule:{props['ConfigRuleName']}"] = props["Source"]["SourceIdentifier"]["Fn::GetAtt"][0]
    for res in resources.values():
        if res["Type"] == "AWS::Config::RemediationConfiguration":
            props = res["Properties"]
            document = resources[props["TargetId"]["Ref"]]["Properties"]["Name"]
            role = props["Parameters"]["AutomationAssumeRole"]["StaticValue"]["Values"][0]["Fn::GetAtt"][0]
            found[f"runbook:{document}"] = role
    return found


# ------------------------------------------------------------------------------ the representative run
def _ci(name: str, **replace: Any) -> dict[str, Any]:
    ci: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    for key, value in replace.items():
        ci[key] = value
    return ci


def _landscape_cis(session: boto3.Session, key_arn: str) -> dict[str, dict[str, Any]]:
    """One configuration item per rule, from the real-shape fixtures, pointing at demo resources so that
    the rules' reads (subnets, route tables, key rotation, key description, flow logs) really happen."""
    ec2: Any = session.client("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["ml-egress-private-a"]}])[
        "Subnets"
    ][0]
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["ml-isolated"]}])["Vpcs"][0]["VpcId"]
    key_id = key_arn.rsplit("/", 1)[1]

    notebook = _ci("sagemaker_notebook_isolated.json")
    notebook["configuration"] = {**notebook["configuration"], "SubnetId": subnet["SubnetId"]}
    kms = _ci("kms_customer_key.json", resourceId=key_id, ARN=key_arn)
    kms["configuration"] = {**kms["configuration"], "keyId": key_id, "arn": key_arn}
    kms["supplementaryConfiguration"] = {}  # no KeyRotationStatus: the rule asks GetKeyRotationStatus
    bucket = _ci("s3_sse_kms_cmk.json")
    encryption = copy.deepcopy(bucket["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"])
    encryption["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyID"] = key_arn  # a demo key
    bucket["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"] = encryption
    network = _ci("vpc_ml_training.json", resourceId=vpc)
    network["configuration"] = {**network["configuration"], "vpcId": vpc}
    # SAGEMAKER_NOTEBOOK_HARDENED: a demo notebook's item without the IMDS setting (DescribeNotebookInstance).
    hardened = _ci("sagemaker_notebook_isolated.json")
    name = "fraud-detection-private"
    hardened_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance/{name}"
    hardened["configuration"] = {
        k: v for k, v in hardened["configuration"].items() if k != "InstanceMetadataServiceConfiguration"
    }
    hardened["configuration"].update(
        {"NotebookInstanceName": name, "NotebookInstanceArn": hardened_arn, "KmsKeyId": key_arn}
    )
    hardened.update(resourceId=hardened_arn, resourceName=name, ARN=hardened_arn)
    # RDS_STORAGE_ENCRYPTED_WITH_CMK: the demo's CMK instance (DescribeKey on its key).
    rds: Any = session.client("rds")
    (db,) = rds.describe_db_instances(DBInstanceIdentifier="ml-feature-store")["DBInstances"]
    database = _ci("rds_instance_cmk.json", resourceId=db["DbiResourceId"], ARN=db["DBInstanceArn"])
    database["configuration"] = {
        **database["configuration"],
        "dbiResourceId": db["DbiResourceId"],
        "dBInstanceArn": db["DBInstanceArn"],
        "dBInstanceIdentifier": "ml-feature-store",
        "kmsKeyId": key_arn,
    }
    # VPC_ENDPOINT_POLICY_ORG_ONLY: an item without policyDocument for a demo endpoint (DescribeVpcEndpoints).
    endpoint_id = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "tag:Name", "Values": ["ml-isolated-sagemaker-api"]}]
    )["VpcEndpoints"][0]["VpcEndpointId"]
    endpoint = _ci("vpce_interface_sagemaker_api_org.json", resourceId=endpoint_id)
    endpoint["configuration"] = {
        k: v for k, v in endpoint["configuration"].items() if k != "policyDocument"
    } | {"vpcEndpointId": endpoint_id}
    return {
        "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": notebook,
        "KMS_CMK_ROTATION_ENABLED": kms,
        "S3_BUCKET_SSE_KMS_ENFORCED": bucket,
        "VPC_FLOW_LOGS_ENABLED": network,
        "SAGEMAKER_NOTEBOOK_HARDENED": hardened,
        "RDS_STORAGE_ENCRYPTED_WITH_CMK": database,
        # The S3 rule's change path judges the item alone (no call); it is still run.
        "S3_BUCKET_POLICY_ORG_ONLY": _ci("s3_policy_org_only_tls.json"),
        "VPC_ENDPOINT_POLICY_ORG_ONLY": endpoint,
        # GUARDDUTY_ENABLED: periodic only (AWS::::Account has no configuration items).
    }


def _all_reads(key_arn: str, subnet_ids: list[str]) -> dict[str, dict[str, str]]:
    """Per rule, the parameters that switch on every optional read."""
    tag = {"ExemptionTagKey": demo.EXEMPTION_TAG}
    return {
        "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": {
            **tag,
            "CheckNetworkPath": "true",
            "AllowedSubnetIds": ",".join(subnet_ids),
            "AllowedEgressTargets": "tgw-0123456789abcdef0",
        },
        "KMS_CMK_ROTATION_ENABLED": {**tag, "MaxRotationPeriodInDays": "365"},
        "S3_BUCKET_SSE_KMS_ENFORCED": {
            **tag,
            "RequireCustomerManagedKey": "true",
            "RequireBucketKey": "true",
            "RequireUploadPolicy": "true",
            "KmsKeyArns": key_arn,
        },
        "VPC_FLOW_LOGS_ENABLED": {**tag, "TrafficType": "ALL", "LogDestinationTypes": "s3,cloud-watch-logs"},
        "GUARDDUTY_ENABLED": {**tag, "RequiredFeatures": "S3_DATA_EVENTS,RUNTIME_MONITORING"},
        "RDS_STORAGE_ENCRYPTED_WITH_CMK": {**tag, "KmsKeyArns": key_arn},
        "SAGEMAKER_NOTEBOOK_HARDENED": {**tag, "KmsKeyArns": key_arn},
        "S3_BUCKET_POLICY_ORG_ONLY": {**tag, **REQUIRED["S3_BUCKET_POLICY_ORG_ONLY"]},
        "VPC_ENDPOINT_POLICY_ORG_ONLY": {**tag, **REQUIRED["VPC_ENDPOINT_POLICY_ORG_ONLY"]},
    }


def _rotation_period_as_aws_returns_it(parsed: dict[str, Any], **_: Any) -> None:
    # moto does not store RotationPeriodInDays; AWS returns it whenever rotation is on (the rule fails
    # closed without it when MaxRotationPeriodInDays is set).
    if parsed.get("KeyRotationEnabled") and "RotationPeriodInDays" not in parsed:
        parsed["RotationPeriodInDays"] = 365


def _aws_shaped(session: boto3.Session) -> boto3.Session:
    session.events.register("after-call.kms.GetKeyRotationStatus", _rotation_period_as_aws_returns_it)
    return session


def _invoke(rule: Any, event: dict[str, Any], session: boto3.Session) -> None:
    # Findings are fine; a resource the rule could not read would mean the path was not really taken.
    records = handle(rule, event, session=session)
    assert records, f"{rule.RULE_NAME}: nothing evaluated"


def _run_rules(session: boto3.Session, key_arn: str) -> None:
    ec2: Any = session.client("ec2")
    subnet_ids = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    all_reads = _all_reads(key_arn, subnet_ids)
    cis = _landscape_cis(session, key_arn)
    for spec in SPECS:
        rule = spec.rule_class()()
        for params in (REQUIRED.get(spec.name, {}), all_reads[spec.name]):
            _invoke(rule, scheduled_event({**SINGLE_ACCOUNT, **params}), session)
            if spec.resource_types:  # a periodic-only rule gets no change events
                _invoke(rule, change_event(cis[spec.name], {**SINGLE_ACCOUNT, **params}), session)
        if not spec.resource_types:
            _invalid_parameters_call_nothing(spec, rule, session)
            continue
        # Oversized: the CI comes from GetResourceConfigHistory. moto keeps no history for these types,
        # so the response is injected at botocore's before-call (the call itself is still made/recorded).
        ci = cis[spec.name]
        oversized_session = _aws_shaped(boto3.Session(region_name=REGION))
        aws_shaped_rds(oversized_session)
        inject(
            oversized_session,
            "config.GetResourceConfigHistory",
            response={"configurationItems": [history_item(ci, CAPTURED)]},
        )
        _invoke(
            rule,
            oversized_event(ci["resourceType"], ci["resourceId"], {**SINGLE_ACCOUNT, **all_reads[spec.name]}),
            oversized_session,
        )
        _invalid_parameters_call_nothing(spec, rule, session)


def _invalid_parameters_call_nothing(spec: catalog.RuleSpec, rule: Any, session: boto3.Session) -> None:
    """Invalid parameters: nothing is evaluated, so nothing may be called."""
    with iam_recorder.capture() as bad, pytest.raises(InvalidParametersError):
        handle(rule, scheduled_event({**SINGLE_ACCOUNT, "NoSuchParameter": "x"}), session=session)
    assert not bad.calls, f"{spec.name} called AWS with invalid parameters: {bad.calls}"


def _run_runbooks(session: boto3.Session, overrides: dict[str, dict[str, Any]]) -> None:
    before = scan(session, REGION, (), demo.DEMO_PARAMETERS)
    plan = fix.make_plan(before, (), overrides)
    assert {run.runbook for run in plan.runs} == {s.remediation.target_id for s in SPECS if s.remediation}
    for attempt in ("change", "nothing changed"):
        for run, execution in fix.execute(plan, session, REGION):
            assert execution.status == "Success", (attempt, run.runbook, execution.failure_message)
    # The S3 runbook's optional upload-policy merge (GetBucketPolicy, PutBucketPolicy).
    s3_run = next(r for r in plan.runs if r.runbook == "MlGuardrails-EnforceS3BucketSseKms")
    path = catalog.data_dir("remediations") / "MlGuardrails-EnforceS3BucketSseKms.yaml"
    execution = run_runbook(
        path, {**s3_run.parameters, "EnforceUploadPolicy": "true"}, session, region=REGION
    )
    assert execution.status == "Success", execution.failure_message
    # The quarantine runbook given an ARN whose name differs in case (SageMaker lower-cases names in ARNs):
    # DescribeNotebookInstance misses, ListNotebookInstances finds it.
    notebook = session.client("sagemaker").describe_notebook_instance(NotebookInstanceName="credit-risk-nat")
    arn = notebook["NotebookInstanceArn"]
    execution = run_runbook(
        catalog.data_dir("remediations") / "MlGuardrails-QuarantineSageMakerNotebook.yaml",
        {"NotebookInstanceName": arn.rsplit("/", 1)[0] + "/" + "Credit-Risk-NAT"},
        session,
        clock=FakeClock(),
        region=REGION,
    )
    assert execution.status == "Success", execution.failure_message
    # The hardening runbook given the same kind of ARN (ListNotebookInstances), on a running notebook.
    execution = run_runbook(
        catalog.data_dir("remediations") / "MlGuardrails-HardenSageMakerNotebook.yaml",
        {"NotebookInstanceName": arn.rsplit("/", 1)[0] + "/" + "Fraud-Detection-Private"},
        session,
        clock=FakeClock(),
        region=REGION,
    )
    assert execution.status == "Success", execution.failure_message
    # The GuardDuty runbook on a suspended detector (EnableDetector: UpdateDetector), then with a
    # required feature off (EnableFeatures: UpdateDetector with Features).
    guardduty: Any = session.client("guardduty")
    (detector,) = guardduty.list_detectors()["DetectorIds"]
    guardduty.update_detector(DetectorId=detector, Enable=False)
    for features in ("", "S3_DATA_EVENTS"):
        if features:
            guardduty.update_detector(
                DetectorId=detector, Features=[{"Name": features, "Status": "DISABLED"}]
            )
        execution = run_runbook(
            catalog.data_dir("remediations") / "MlGuardrails-EnableGuardDuty.yaml",
            {"AccountId": ACCOUNT, "RequiredFeatures": features},
            session,
            clock=FakeClock(),
            region=REGION,
        )
        assert execution.status == "Success", (features, execution.failure_message)
    # The VPC runbook to CloudWatch Logs with a delivery role (iam:PassRole), on a VPC without flow logs.
    ec2: Any = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    role = session.client("iam").get_role(RoleName="vpc-flow-logs-delivery")["Role"]["Arn"]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ml-platform/vpc-flow-logs"
    execution = run_runbook(
        catalog.data_dir("remediations") / "MlGuardrails-EnableVpcFlowLogs.yaml",
        {
            "VpcId": vpc,
            "LogDestinationType": "cloud-watch-logs",
            "LogDestination": group,
            "DeliverLogsPermissionArn": role,
        },
        session,
        clock=FakeClock(),
        region=REGION,
    )
    assert execution.status == "Success", execution.failure_message


@pytest.fixture(scope="module")
def own_run() -> Recording:
    with iam_recorder.capture() as recording, demo.embedded_account() as session:
        overrides = demo.seed(_aws_shaped(session))
        key_arn = overrides["S3_BUCKET_SSE_KMS_ENFORCED"]["KmsKeyId"]
        _run_rules(session, key_arn)
        _run_runbooks(session, overrides)
        # Every sweep once more on the remediated account: resources the runbooks created (the GuardDuty
        # detector: GetDetector) are read only now.
        ec2: Any = session.client("ec2")
        all_reads = _all_reads(key_arn, [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]])
        for spec in SPECS:
            _invoke(spec.rule_class()(), scheduled_event({**SINGLE_ACCOUNT, **all_reads[spec.name]}), session)
    return recording


@pytest.fixture(scope="module")
def recorded(own_run: Recording) -> Recording:
    """This module's run plus everything the session recorded (the plugin runs this module last)."""
    union = Recording()
    union.update(iam_recorder.SESSION)  # already holds own_run: capture() adds to every active sink
    return union


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _template()


# ------------------------------------------------------------------------------------------- the tests
def test_the_recorder_is_installed() -> None:
    assert iam_recorder.installed(), "tests.iam_recorder is not active: is it in conftest.pytest_plugins?"


def test_the_own_run_reaches_every_function_and_automation_role(
    own_run: Recording, template: dict[str, Any]
) -> None:
    assert set(principals(template)) <= own_run.actors()
    assert iam_recorder.UNKNOWN_RUNBOOK not in own_run.actors()


def test_single_account_rules_never_assume_a_role(template: dict[str, Any]) -> None:
    """Why sts:AssumeRole is not in the function policies: every rule passes AssumeRoleMode 'false'."""
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Config::ConfigRule":
            params = res["Properties"]["InputParameters"]
            assert params.get("AssumeRoleMode") == "false", res["Properties"]["ConfigRuleName"]
            assert "ExecutionRoleName" not in params


ACTORS = sorted(principals(_template()))


@pytest.mark.parametrize("actor", ACTORS)
def test_policy_grants_exactly_the_actions_used(
    actor: str, recorded: Recording, template: dict[str, Any]
) -> None:
    logical_id = principals(template)[actor]
    granted = set(grants(template, logical_id))
    used = recorded.actions(actor)
    is_function = template["Resources"][logical_id]["Type"] == "AWS::Serverless::Function"
    allowed_unused: set[str] = set(LAMBDA_DESTINATION) if is_function else set()
    if is_function:
        used.discard(CROSS_ACCOUNT)  # see test_single_account_rules_never_assume_a_role
        # Granted only in an organization deployment (HasMemberExecutionRole), for the member roles.
        allowed_unused.add(CROSS_ACCOUNT)
    elif _publishes_to_encrypted_topic(template, logical_id):
        allowed_unused |= ENCRYPTED_TOPIC_PUBLISH
    missing = used - granted
    unused = granted - used - allowed_unused
    assert not missing, (
        f"{logical_id} ({actor}) lacks {sorted(missing)}; calls: {sorted(recorded.operations(actor))}"
    )
    assert not unused, f"{logical_id} ({actor}) grants unused {sorted(unused)}"
    if is_function:
        assert granted >= LAMBDA_DESTINATION, (
            f"{logical_id}: the on-failure destination needs {LAMBDA_DESTINATION}"
        )


@pytest.mark.parametrize("actor", ACTORS)
def test_resources_are_scoped_wherever_iam_allows(actor: str, template: dict[str, Any]) -> None:
    logical_id = principals(template)[actor]
    for action, resources in grants(template, logical_id).items():
        if action in STAR_ONLY:
            assert resources == ["*"], f"{logical_id} {action} supports only '*' ({STAR_ONLY[action]})"
            continue
        assert action in SCOPED, f"{action}: classify it in tests/iam_action_map.py (STAR_ONLY or SCOPED)"
        assert "*" not in resources, f"{logical_id} {action} supports resource-level permissions: scope it"
        patterns = SCOPED[action]
        for resource in resources:
            assert any(p.match(resource) for p in patterns), (
                f"{logical_id} {action}: {resource} is not {patterns}"
            )
        for pattern in patterns:
            assert any(pattern.match(r) for r in resources), (
                f"{logical_id} {action} needs a {pattern.pattern}"
            )


def _publishes_to_encrypted_topic(template: dict[str, Any], logical_id: str) -> bool:
    """The role publishes only to SSE-KMS topics of this template, and holds kms:GenerateDataKey and
    kms:Decrypt on exactly those topics' keys (the ENCRYPTED_TOPIC_PUBLISH allowance)."""
    granted = grants(template, logical_id)
    topics = granted.get("sns:Publish", [])
    if not topics:
        return False
    resources = template["Resources"]
    keys = set()
    for topic in topics:
        logical = topic.rsplit(":", 1)[1]
        properties = resources[logical]["Properties"]
        assert resources[logical]["Type"] == "AWS::SNS::Topic", topic
        assert "KmsMasterKeyId" in properties, f"{logical} is not SSE-KMS: no KMS allowance"
        keys.add(f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{properties['KmsMasterKeyId']['Ref']}")
    for action in ENCRYPTED_TOPIC_PUBLISH:
        assert set(granted.get(action, [])) == keys, f"{logical_id} {action}: {granted.get(action)} != {keys}"
    return True


def test_lambda_destination_allowance_is_only_the_queue_and_its_key(template: dict[str, Any]) -> None:
    queue = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:FailedEvaluationsQueue"
    key = f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/GuardrailsKey"
    for actor in ACTORS:
        logical_id = principals(template)[actor]
        if template["Resources"][logical_id]["Type"] != "AWS::Serverless::Function":
            continue
        granted = grants(template, logical_id)
        assert granted["sqs:SendMessage"] == [queue]
        assert granted["kms:GenerateDataKey"] == [key]
        assert granted["kms:Decrypt"] == [key]


def test_flow_log_delivery_permissions_follow_the_destination_type(
    recorded: Recording, template: dict[str, Any]
) -> None:
    """The VPC automation role holds what CreateFlowLogs implies for the deployed destination type only:
    logs:CreateLogDelivery/DeleteLogDelivery for s3, iam:PassRole (the delivery role) for
    cloud-watch-logs -- each gated by the FlowLogsToCloudWatch condition."""
    actor = "runbook:MlGuardrails-EnableVpcFlowLogs"
    role = principals(template)[actor]
    by_destination: dict[str, set[str]] = {}
    for call in recorded.calls:
        if call.actor == actor and call.operation == "CreateFlowLogs":
            (destination,) = [f.split("=", 1)[1] for f in call.facets if f.startswith("LogDestinationType=")]
            by_destination.setdefault(destination, set()).update(call.actions)
    assert set(by_destination) == {"s3", "cloud-watch-logs"}, "both destinations must have been exercised"
    for destination, needed in by_destination.items():
        others = set().union(*(v for k, v in by_destination.items() if k != destination)) - needed
        granted = set(grants(template, role, {"FlowLogsToCloudWatch": destination == "cloud-watch-logs"}))
        assert needed <= granted, f"{destination}: {role} lacks {sorted(needed - granted)}"
        assert not others & granted, f"{destination}: {role} also grants {sorted(others & granted)}"
