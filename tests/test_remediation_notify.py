"""MlGuardrails-NotifyNonCompliantResource (the notification remediation shared by the rules without a safe
automatic fix), run by the local runner against moto SNS with an SQS queue subscribed to the topic.

moto 5.2.5 differs from AWS here; the tests follow AWS and say so where it matters:
* Publish to a topic ARN of another Region answers from moto's backend of that Region (AWS: the Region's
  endpoint rejects it): the runbook refuses such a topic before any call.
* Publish does not check the topic's KMS key (AWS needs kms:GenerateDataKey/Decrypt for an SSE topic);
  the runbook's description says so, the test cannot show it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from moto import mock_aws

from ml_guardrails.catalog import data_dir
from ml_guardrails.runbooks import FakeClock, RunbookError, run_runbook, validate_runbook
from ml_guardrails.testing import ACCOUNT_ID, inject

DOCUMENT = "MlGuardrails-NotifyNonCompliantResource"
DOC_PATH = data_dir("remediations") / f"{DOCUMENT}.yaml"
DOC = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
REGION = "us-east-1"
TOPIC_NAME = "ml-guardrails-findings"
# The three rules that bind this runbook (issue 7); each passes its own one-line what-to-do.
FINDING = {
    "RuleName": "RDS_STORAGE_ENCRYPTED_WITH_CMK",
    "ResourceType": "AWS::RDS::DBInstance",
    "ResourceId": "db-HHTTSRD6HXUIKXPFPI6WFVZ4PA",
    "Message": "Migrate to a customer managed KMS key: snapshot, copy the snapshot with the key, restore.",
}


class Landscape:
    """A findings topic with an SQS queue subscribed to it (SNS envelope, not raw delivery)."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        sns, sqs = session.client("sns"), session.client("sqs")
        self.topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        self.queue_url = sqs.create_queue(QueueName="ml-guardrails-findings-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def received(self) -> list[dict[str, Any]]:
        """Every SNS envelope delivered to the queue so far (drains it)."""
        sqs = self.session.client("sqs")
        envelopes: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return envelopes
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class CallLog:
    """Every AWS operation clients of ``session`` make (any service)."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        session.events.register("provide-client-params", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, dict(params)))

    def names(self) -> set[str]:
        return {f"{service}:{op}" for service, op, _ in self.calls}


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def landscape(session: boto3.Session) -> Landscape:
    return Landscape(session)


def notify(session: boto3.Session, **parameters: Any) -> Any:
    return run_runbook(DOC_PATH, parameters, session, clock=FakeClock())


def as_config_passes(topic_arn: str, **finding: str) -> dict[str, Any]:
    """The parameters AWS Config passes: static values as one-element lists, RESOURCE_ID as a string."""
    values = dict(FINDING, **finding)
    return {
        "TopicArn": [topic_arn],
        "RuleName": [values["RuleName"]],
        "ResourceType": [values["ResourceType"]],
        "ResourceId": values["ResourceId"],
        "Message": [values["Message"]],
    }


# ------------------------------------------------------------------------------------------ it notifies
def test_the_finding_arrives_on_the_subscribed_queue(session: boto3.Session, landscape: Landscape) -> None:
    log = CallLog(session)
    execution = notify(session, **as_config_passes(landscape.topic_arn))
    assert execution.status == "Success", execution.failure_message
    run_calls = list(log.calls)
    [envelope] = landscape.received()
    assert envelope["TopicArn"] == landscape.topic_arn
    assert (
        envelope["Subject"] == f"ml-guardrails: {FINDING['RuleName']} NON_COMPLIANT {FINDING['ResourceId']}"
    )
    assert envelope["MessageId"] == execution.outputs["VerifyPublished.MessageId"]
    body = json.loads(envelope["Message"])
    assert body == {
        "source": "ml-guardrails",
        "finding": "NON_COMPLIANT",
        "rule": FINDING["RuleName"],
        "resourceType": FINDING["ResourceType"],
        "resourceId": FINDING["ResourceId"],
        "account": ACCOUNT_ID,
        "region": REGION,
        "whatToDo": FINDING["Message"],
        "automationExecutionId": execution.execution_id,
    }
    assert "Notified" in execution.outputs["VerifyPublished.Result"]
    # exactly one publish; nothing else touched (GetCallerIdentity: the local runner's global:ACCOUNT_ID)
    assert [op for _, op, _ in run_calls if op != "GetCallerIdentity"] == ["Publish"]


def test_rerun_notifies_again_and_changes_nothing_else(session: boto3.Session, landscape: Landscape) -> None:
    sns = session.client("sns")
    topic_before = sns.get_topic_attributes(TopicArn=landscape.topic_arn)["Attributes"]
    first = notify(session, **as_config_passes(landscape.topic_arn))
    second = notify(session, **as_config_passes(landscape.topic_arn))
    assert (first.status, second.status) == ("Success", "Success")
    envelopes = landscape.received()
    assert len(envelopes) == 2  # a notification is an event: each run re-notifies, by design
    assert envelopes[0]["MessageId"] != envelopes[1]["MessageId"]
    assert (
        json.loads(envelopes[0]["Message"])["resourceId"] == json.loads(envelopes[1]["Message"])["resourceId"]
    )
    after = sns.get_topic_attributes(TopicArn=landscape.topic_arn)["Attributes"]
    assert {k: v for k, v in after.items() if k != "SubscriptionsConfirmed"} == {
        k: v for k, v in topic_before.items() if k != "SubscriptionsConfirmed"
    }


def test_empty_message_uses_the_generic_what_to_do(session: boto3.Session, landscape: Landscape) -> None:
    parameters = as_config_passes(landscape.topic_arn)
    del parameters["Message"]  # the default, ""
    assert notify(session, **parameters).status == "Success"
    [envelope] = landscape.received()
    assert "exemption tag" in json.loads(envelope["Message"])["whatToDo"]


@pytest.mark.parametrize(
    ("finding", "fragment"),
    [
        (
            {
                "RuleName": "S3_BUCKET_POLICY_ORG_ONLY",
                "ResourceType": "AWS::S3::Bucket",
                "ResourceId": "ml-training-data-123456789012",
            },
            "ml-training-data-123456789012",
        ),
        (
            {
                "RuleName": "VPC_ENDPOINT_POLICY_ORG_ONLY",
                "ResourceType": "AWS::EC2::VPCEndpoint",
                "ResourceId": "vpce-0123456789abcdef0",
            },
            "vpce-0123456789abcdef0",
        ),
        (
            {"RuleName": "RDS_STORAGE_ENCRYPTED_WITH_CMK", "ResourceType": "AWS::RDS::DBCluster"},
            "db-HHTTSRD6HXUIKXPFPI6WFVZ4PA",
        ),
    ],
    ids=["bucket", "vpc-endpoint", "cluster"],
)
def test_each_rule_of_the_contract(
    session: boto3.Session, landscape: Landscape, finding: dict[str, str], fragment: str
) -> None:
    assert notify(session, **as_config_passes(landscape.topic_arn, **finding)).status == "Success"
    [envelope] = landscape.received()
    body = json.loads(envelope["Message"])
    assert (body["rule"], body["resourceType"]) == (finding["RuleName"], finding["ResourceType"])
    assert fragment in envelope["Subject"]


def test_long_and_non_ascii_ids_give_a_valid_subject(session: boto3.Session, landscape: Landscape) -> None:
    long_arn = "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/" + "x" * 300
    for resource_id in (long_arn, "bücket-ünicode"):
        assert (
            notify(session, **as_config_passes(landscape.topic_arn, ResourceId=resource_id)).status
            == "Success"
        )
        [envelope] = landscape.received()
        subject = envelope["Subject"]
        assert len(subject) <= 100 and re.fullmatch(r"[\x20-\x7e]+", subject), subject
        assert json.loads(envelope["Message"])["resourceId"] == resource_id  # the body keeps it whole


# ----------------------------------------------------------------------------------------- it refuses
def test_topic_in_another_region_is_refused_before_any_sns_call(
    session: boto3.Session, landscape: Landscape
) -> None:
    foreign = boto3.Session(region_name="eu-west-1").client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]
    log = CallLog(session)
    execution = notify(session, **as_config_passes(foreign))
    assert execution.status == "Failed"
    assert execution.failed_step == "BuildNotification"
    assert "Region eu-west-1" in (execution.failure_message or "")
    assert "Nothing was published" in (execution.failure_message or "")
    assert not [c for c in log.calls if c[0] == "sns"]
    assert landscape.received() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TopicArn", "ml-guardrails-findings"),
        ("TopicArn", "arn:aws:sns:us-east-1:123456789012:findings.fifo"),
        ("TopicArn", "arn:aws:sqs:us-east-1:123456789012:findings"),
        ("TopicArn", ""),
        ("RuleName", ""),
        ("RuleName", "rule with spaces"),
        ("ResourceType", "RDS::DBInstance"),
        ("ResourceType", "AWS::RDS::DB Instance"),
        ("ResourceId", ""),
        ("ResourceId", " db-ABC"),
        ("ResourceId", "db-ABC\nInjected: header"),
        ("ResourceId", "x" * 769),
        ("Message", "a\x00b"),
        ("Message", "m" * 2049),
        ("AutomationAssumeRole", "arn:aws:iam::123456789012:user/x"),
    ],
)
def test_bad_parameter_fails_naming_it_without_any_aws_call(
    session: boto3.Session, landscape: Landscape, name: str, value: str
) -> None:
    log = CallLog(session)
    parameters = dict(as_config_passes(landscape.topic_arn), **{name: value})
    with pytest.raises(RunbookError, match=re.escape(repr(name))):
        run_runbook(DOC_PATH, parameters, session, clock=FakeClock())
    assert log.calls == []
    assert landscape.received() == []


@pytest.mark.parametrize("code", ["AuthorizationError", "NotFound", "KMSAccessDenied"])
def test_publish_errors_fail_the_run_naming_the_cause(
    session: boto3.Session, landscape: Landscape, code: str
) -> None:
    # AuthorizationError: no sns:Publish; NotFound: the topic was deleted; KMSAccessDenied: an SSE topic
    # whose key the role may not use (kms:GenerateDataKey) -- the error codes of botocore's SNS model.
    inject(session, "sns.Publish", error_code=code, status=403 if code != "NotFound" else 404)
    execution = notify(session, **as_config_passes(landscape.topic_arn))
    assert execution.status == "Failed"
    assert execution.failed_step == "Publish"
    assert code in (execution.failure_message or "")
    assert landscape.received() == []


def test_a_publish_without_message_id_fails_verification(
    session: boto3.Session, landscape: Landscape
) -> None:
    inject(session, "sns.Publish", response={})  # an answer without MessageId: never report success
    execution = notify(session, **as_config_passes(landscape.topic_arn))
    assert execution.status == "Failed"
    assert execution.failed_step in ("Publish", "VerifyPublished")
    assert "MessageId" in (execution.failure_message or "")


# ------------------------------------------------------------------------------------------ the document
def test_document_shape() -> None:
    assert DOC["schemaVersion"] == "0.3"
    assert DOC["assumeRole"] == "{{ AutomationAssumeRole }}"
    assert set(DOC["parameters"]) == {
        "AutomationAssumeRole",
        "TopicArn",
        "RuleName",
        "ResourceType",
        "ResourceId",
        "Message",
    }
    assert DOC["parameters"]["AutomationAssumeRole"]["default"] == ""
    assert DOC["parameters"]["Message"]["default"] == ""
    for name, spec in DOC["parameters"].items():
        assert spec["type"] == "String" and spec["description"], name
        assert spec["allowedPattern"].startswith("^") and spec["allowedPattern"].endswith("$"), name
    for step in DOC["mainSteps"]:
        assert step["onFailure"] == "Abort", step["name"]
        if step["action"] == "aws:executeScript":
            assert (step["inputs"]["Runtime"], step["inputs"]["Handler"]) == ("python3.11", "handler")
            tree = ast.parse(step["inputs"]["Script"])
            assert "handler" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            assert "boto3" not in step["inputs"]["Script"]  # the scripts make no AWS call


def test_description_lists_exactly_the_actions_the_runbook_calls() -> None:
    called = {
        f"{s['inputs']['Service']}:{s['inputs']['Api']}"
        for s in DOC["mainSteps"]
        if "Api" in s.get("inputs", {})
    }
    listed = set(re.findall(r"- `(\w+:\w+)`", DOC["description"]))
    assert called == listed == {"sns:Publish"}
    description = DOC["description"]
    assert "kms:GenerateDataKey" in description and "kms:Decrypt" in description
    assert "re-notifies" in description  # idempotence, said plainly


def test_topic_pattern_accepts_the_placeholder_and_partitions() -> None:
    pattern = DOC["parameters"]["TopicArn"]["allowedPattern"]
    for ok in (
        "arn:aws:sns:us-east-1:111122223333:ml-guardrails-findings",
        "arn:aws-us-gov:sns:us-gov-west-1:111122223333:Findings_1",
        "arn:aws-cn:sns:cn-north-1:111122223333:" + "a" * 256,
    ):
        assert re.search(pattern, ok), ok


def test_validator_finds_no_problem() -> None:
    assert validate_runbook(DOC_PATH) == []
