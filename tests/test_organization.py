"""The organization rollout: the central-account pattern, proven end to end in moto's multi-account mode.

The rule functions run in the central account (moto's default account 123456789012). AWS Config in a member
account (111111111111) invokes them with an event whose ``executionRoleArn`` is the member's Config role;
the rule parameter ``ExecutionRoleName`` (shipped by the conformance pack) makes the engine assume that role
name *in the member account*. moto ties credentials returned by ``sts:AssumeRole`` to the account of the
assumed role's ARN, so every call made with them acts in that account: the tests check that the rules read
the member's resources (never the central account's) and posted to AWS Config with the member's identity.

moto differences, followed as AWS behaves: moto does not check trust policies or that the role exists when
assuming it (AWS does: the AccessDenied case is injected at the botocore layer), and it accepts
PutEvaluations only with TestMode (the events carry the TESTMODE token).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from moto import mock_aws

from ml_guardrails import catalog
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import PutEvaluationsRecorder, change_event, inject, scheduled_event

ROOT = Path(__file__).resolve().parents[1]
ORG = ROOT / "org"
MEMBER_ROLE_TEMPLATE = ORG / "member-execution-role.yaml"
ROLLOUT_TEMPLATE = ORG / "organization-rollout.yaml"
TEMPLATE = ROOT / "template.yaml"
PACK = ROOT / "conformance-packs" / "secure-ml-environment.yaml"

REGION = "us-east-1"
CENTRAL = "123456789012"  # moto's default account: the credentials of the test session act in it
MEMBER = "111111111111"
EXECUTION_ROLE = "ml-guardrails-execution"
MEMBER_CONFIG_ROLE = (
    f"arn:aws:iam::{MEMBER}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
)


def rule(name: str) -> Any:
    return catalog.get(name, ROOT / "rules").rule_class()()


def member_event(base: dict[str, Any], **params: str) -> dict[str, Any]:
    """``base`` as AWS Config in the member account sends it, with the pack's cross-account parameters."""
    rule_parameters = {"ExecutionRoleName": EXECUTION_ROLE, **params}
    event = dict(base)
    event.update(
        executionRoleArn=MEMBER_CONFIG_ROLE,
        accountId=MEMBER,
        configRuleArn=f"arn:aws:config:{REGION}:{MEMBER}:config-rule/config-rule-member1",
        ruleParameters=json.dumps(rule_parameters),
    )
    return event


# ------------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def central(aws: Any) -> boto3.Session:
    session = boto3.Session(region_name=REGION)
    assert session.client("sts").get_caller_identity()["Account"] == CENTRAL
    return session


@pytest.fixture
def member(central: boto3.Session) -> boto3.Session:
    """An administrator session in the member account (as OrganizationAccountAccessRole would give)."""
    creds = central.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole", RoleSessionName="admin"
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    assert session.client("sts").get_caller_identity()["Account"] == MEMBER
    # The execution role as org/member-execution-role.yaml creates it (moto does not enforce trust).
    template = dict(cfn_yaml.load(str(MEMBER_ROLE_TEMPLATE)))
    trust = template["Resources"]["ExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]
    session.client("iam").create_role(
        RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=json.dumps(resolve_subs(trust))
    )
    return session


def resolve_subs(node: Any) -> Any:
    """The trust policy with its ${...} filled in (for creating the role in moto)."""
    values = {
        "AWS::Partition": "aws",
        "CentralAccountId": CENTRAL,
        "RuleFunctionRoleNamePattern": "ml-guardrails-*FunctionRole-*",
        "OrganizationId": "o-exampleorgid",
        "AWS::AccountId": MEMBER,
    }
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        text = node["Fn::Sub"]
        for key, value in values.items():
            text = text.replace("${" + key + "}", value)
        return text
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return values[node["Ref"]]
    if isinstance(node, dict):
        return {k: resolve_subs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_subs(v) for v in node]
    return node


@pytest.fixture
def landscape(central: boto3.Session, member: boto3.Session) -> dict[str, Any]:
    """Look-alike resources in both accounts: the rules must see only the member's."""
    for session, prefix in ((central, "central"), (member, "member")):
        s3 = session.client("s3")
        s3.create_bucket(Bucket=f"{prefix}-training-data")  # no default encryption (moto: none at all)
        ec2 = session.client("ec2")
        ec2.create_vpc(CidrBlock="10.10.0.0/16")
    # The member's logged VPC: an ACTIVE, ALL-traffic flow log to a bucket of the member account.
    mec2 = member.client("ec2")
    logged = mec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    member.client("s3").create_bucket(Bucket="member-flow-logs")
    mec2.create_flow_logs(
        ResourceIds=[logged],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination="arn:aws:s3:::member-flow-logs",
    )
    return {
        "central_vpcs": {v["VpcId"] for v in central.client("ec2").describe_vpcs()["Vpcs"]},
        "member_vpcs": {v["VpcId"] for v in mec2.describe_vpcs()["Vpcs"]},
        "logged_vpc": logged,
    }


class ConfigIdentity:
    """Which account each PutEvaluations request of ``session``'s clients is signed for: the signer's
    credentials, asked of STS (moto maps assumed-role keys to the role's account, as AWS does)."""

    def __init__(self, session: boto3.Session) -> None:
        self.accounts: list[str] = []
        self._session = session
        session.events.register("before-sign.config.PutEvaluations", self._record)

    def _record(self, request_signer: Any, **_: Any) -> None:
        creds = request_signer._credentials.get_frozen_credentials()
        sts = boto3.Session(
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.token,
            region_name=REGION,
        ).client("sts")
        self.accounts.append(sts.get_caller_identity()["Account"])


# -------------------------------------------------------------------------------------------- tests
def test_periodic_s3_rule_evaluates_the_member_account(
    central: boto3.Session, member: boto3.Session, landscape: dict[str, Any]
) -> None:
    recorder = PutEvaluationsRecorder(session=central)
    identity = ConfigIdentity(central)
    assumed: list[str] = []
    central.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )
    handle(rule("S3_BUCKET_SSE_KMS_ENFORCED"), member_event(scheduled_event()), session=central)
    assert assumed == [f"arn:aws:iam::{MEMBER}:role/{EXECUTION_ROLE}"]  # once per invocation
    verdicts = recorder.verdicts()
    assert verdicts == {"member-training-data": "NON_COMPLIANT", "member-flow-logs": "NON_COMPLIANT"}
    assert identity.accounts == [MEMBER]  # posted to the member's AWS Config, with the member's role


def test_periodic_vpc_rule_evaluates_the_member_account(
    central: boto3.Session, member: boto3.Session, landscape: dict[str, Any]
) -> None:
    recorder = PutEvaluationsRecorder(session=central)
    identity = ConfigIdentity(central)
    handle(rule("VPC_FLOW_LOGS_ENABLED"), member_event(scheduled_event()), session=central)
    verdicts = recorder.verdicts()
    assert set(verdicts) == landscape["member_vpcs"]
    assert not set(verdicts) & landscape["central_vpcs"]
    assert verdicts.pop(landscape["logged_vpc"]) == "COMPLIANT"
    assert set(verdicts.values()) == {"NON_COMPLIANT"}  # the member's default VPC and its unlogged one
    assert identity.accounts == [MEMBER]


def test_change_event_reads_the_member_flow_logs(
    central: boto3.Session, member: boto3.Session, landscape: dict[str, Any]
) -> None:
    # COMPLIANT is only reachable by reading the flow log that exists in the member account alone.
    vpc = landscape["logged_vpc"]
    ci = json.loads((ROOT / "tests" / "fixtures" / "ci" / "vpc_ml_training.json").read_text("utf-8"))
    ci.update(resourceId=vpc, awsAccountId=MEMBER, ARN=f"arn:aws:ec2:{REGION}:{MEMBER}:vpc/{vpc}")
    ci["configuration"].update(vpcId=vpc, ownerId=MEMBER)
    recorder = PutEvaluationsRecorder(session=central)
    identity = ConfigIdentity(central)
    handle(rule("VPC_FLOW_LOGS_ENABLED"), member_event(change_event(ci)), session=central)
    assert recorder.verdicts() == {vpc: "COMPLIANT"}
    assert identity.accounts == [MEMBER]


def test_an_iam_path_in_execution_role_name_is_kept(central: boto3.Session, member: boto3.Session) -> None:
    assumed: list[str] = []
    central.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )
    PutEvaluationsRecorder(session=central)
    event = member_event(scheduled_event(), ExecutionRoleName="audit/ml-guardrails-execution")
    handle(rule("S3_BUCKET_SSE_KMS_ENFORCED"), event, session=central)
    assert assumed == [f"arn:aws:iam::{MEMBER}:role/audit/ml-guardrails-execution"]


def test_access_denied_on_assume_role_fails_loudly_with_the_fix(
    central: boto3.Session, member: boto3.Session, landscape: dict[str, Any]
) -> None:
    # AWS refuses AssumeRole when the member's trust policy does not name the caller; moto never does.
    inject(central, "sts.AssumeRole", error_code="AccessDenied", status=403)
    recorder = PutEvaluationsRecorder(session=central)
    with pytest.raises(EvaluationIncomplete) as raised:
        handle(rule("VPC_FLOW_LOGS_ENABLED"), member_event(scheduled_event()), session=central)
    assert recorder.calls == []  # nothing evaluated, nothing posted, nothing reported COMPLIANT
    (failure,) = raised.value.failures
    assert (failure.operation, failure.code) == ("AssumeRole", "AccessDenied")
    message = str(raised.value)
    for fix in (f"arn:aws:iam::{MEMBER}:role/{EXECUTION_ROLE}", "ExecutionRoleName", "AssumeRoleMode"):
        assert fix in message


# ------------------------------------------------------------------------------ the rollout templates
@pytest.mark.parametrize("path", [MEMBER_ROLE_TEMPLATE, ROLLOUT_TEMPLATE], ids=lambda p: p.name)
def test_cfn_lint_is_clean(path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _actions(statements: list[dict[str, Any]], effect: str = "Allow") -> set[str]:
    found: set[str] = set()
    for statement in statements:
        if statement.get("Effect") != effect:
            continue
        action = statement["Action"]
        found |= {action} if isinstance(action, str) else set(action)
    return found


def test_execution_role_has_exactly_the_function_reads() -> None:
    template = dict(cfn_yaml.load(str(TEMPLATE)))
    needed: set[str] = set()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in resource["Properties"].get("Policies", []):
                # The on-failure destination (queue and stack key) is used by the Lambda service in the
                # central account, not by the rules in a member account.
                own = [
                    s
                    for s in policy["Statement"]
                    if not (
                        isinstance(s.get("Resource"), dict)
                        and s["Resource"].get("Fn::GetAtt", [""])[0]
                        in {"FailedEvaluationsQueue", "GuardrailsKey"}
                    )
                ]
                needed |= _actions(own)
    member = dict(cfn_yaml.load(str(MEMBER_ROLE_TEMPLATE)))
    role = member["Resources"]["ExecutionRole"]["Properties"]
    (policy,) = role["Policies"]
    granted = _actions(policy["PolicyDocument"]["Statement"])
    assert granted == needed | {"config:PutEvaluations"}
    assert all("*" not in a for a in granted)
    write = {
        a for a in granted if a.split(":")[1].startswith(("Put", "Create", "Delete", "Update", "Enable"))
    }
    assert write == {"config:PutEvaluations"}  # read-only except posting the results


def test_execution_role_trusts_only_the_central_rule_functions() -> None:
    member = dict(cfn_yaml.load(str(MEMBER_ROLE_TEMPLATE)))
    (statement,) = member["Resources"]["ExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    trust = resolve_subs(statement)
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{CENTRAL}:root"}
    assert trust["Condition"]["ArnLike"]["aws:PrincipalArn"] == (
        f"arn:aws:iam::{CENTRAL}:role/ml-guardrails-*FunctionRole-*"
    )
    assert trust["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == "o-exampleorgid"


def test_role_names_agree_across_templates() -> None:
    pack = dict(cfn_yaml.load(str(PACK)))["Parameters"]
    member = dict(cfn_yaml.load(str(MEMBER_ROLE_TEMPLATE)))["Parameters"]
    rollout = dict(cfn_yaml.load(str(ROLLOUT_TEMPLATE)))
    assert pack["ExecutionRoleName"]["Default"] == member["ExecutionRoleName"]["Default"] == EXECUTION_ROLE
    assert pack["AutomationAssumeRoleName"]["Default"] == member["RemediationRoleName"]["Default"]
    org_pack = next(
        r["Properties"]
        for r in rollout["Resources"].values()
        if r["Type"] == "AWS::Config::OrganizationConformancePack"
    )
    passed = {p["ParameterName"] for p in org_pack["ConformancePackInputParameters"]}
    required = {name for name, spec in pack.items() if "Default" not in spec}
    assert required <= passed <= set(pack)
    stack_set = next(
        r["Properties"] for r in rollout["Resources"].values() if r["Type"] == "AWS::CloudFormation::StackSet"
    )
    assert stack_set["PermissionModel"] == "SERVICE_MANAGED"
    assert stack_set["AutoDeployment"]["Enabled"] is True
    member_params = {p["ParameterKey"] for p in stack_set["Parameters"]}
    required_member = {name for name, spec in member.items() if "Default" not in spec}
    assert required_member <= member_params <= set(member)


def test_the_org_path_offers_only_flow_log_destinations_the_member_role_can_deliver_to() -> None:
    """CloudWatch Logs delivery needs ``iam:PassRole`` on a delivery role (the runbook's
    DeliverLogsPermissionArn); the member remediation role has none, so the pack and the rollout accept S3
    destinations only -- not a setting every remediation would fail on."""
    import re

    member = dict(cfn_yaml.load(str(MEMBER_ROLE_TEMPLATE)))
    remediation = member["Resources"]["RemediationRole"]["Properties"]
    granted = {a for p in remediation["Policies"] for a in _actions(p["PolicyDocument"]["Statement"])}
    assert "ec2:CreateFlowLogs" in granted and "iam:PassRole" not in granted
    pack = dict(cfn_yaml.load(str(PACK)))["Parameters"]
    assert pack["VpcFlowLogsEnabledRemediationLogDestinationType"]["AllowedValues"] == ["s3"]
    rollout = dict(cfn_yaml.load(str(ROLLOUT_TEMPLATE)))["Parameters"]
    pattern = rollout["VpcFlowLogDestination"]["AllowedPattern"]
    assert re.match(pattern, "arn:aws:s3:::log-archive-bucket/vpc")
    assert not re.match(pattern, "arn:aws:logs:eu-west-1:111111111111:log-group:/vpc/flow-logs")
