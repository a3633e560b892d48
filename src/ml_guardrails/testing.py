"""Test support shipped with the package (as rdklib ships ``rdklibtest``): Config events in the shapes AWS
sends them, and a recorder of the PutEvaluations calls a handler makes.

Event shapes follow the AWS Config developer guide ("Example events for AWS Config rules") and the
SAM CLI's ``sam local generate-event config`` templates: ``invokingEvent`` and ``ruleParameters`` are
JSON *strings*; the oversized notification carries only ``configurationItemSummary`` (SAM's template
has neither ``notificationCreationTime`` nor ``recordVersion``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
NOTIFICATION_TIME = "2026-11-28T12:00:00.000Z"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"


def _envelope(
    invoking_event: Mapping[str, Any], rule_parameters: Mapping[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "invokingEvent": json.dumps(invoking_event),
        "resultToken": "TESTMODE",
        "eventLeftScope": False,
        "executionRoleArn": ROLE_ARN,
        "configRuleArn": f"arn:aws:config:{REGION}:{ACCOUNT_ID}:config-rule/config-rule-0123456",
        "configRuleName": "ml-guardrails-test-rule",
        "configRuleId": "config-rule-0123456",
        "accountId": ACCOUNT_ID,
        "version": "1.0",
    }
    if rule_parameters is not None:
        event["ruleParameters"] = json.dumps(rule_parameters)
    event.update(extra)
    return event


def change_event(
    configuration_item: Mapping[str, Any],
    rule_parameters: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ConfigurationItemChangeNotification event for ``configuration_item`` (notification shape)."""
    invoking = {
        "configurationItemDiff": None,
        "configurationItem": copy.deepcopy(dict(configuration_item)),
        "notificationCreationTime": NOTIFICATION_TIME,
        "messageType": "ConfigurationItemChangeNotification",
        "recordVersion": "1.3",
    }
    return _envelope(invoking, rule_parameters, **extra)


def oversized_event(
    resource_type: str, resource_id: str, rule_parameters: Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """An OversizedConfigurationItemChangeNotification (the handler must fetch the CI itself)."""
    invoking = {
        "configurationItemSummary": {
            "changeType": "UPDATE",
            "configurationItemVersion": "1.3",
            "configurationItemCaptureTime": NOTIFICATION_TIME,
            "configurationStateId": 0,
            "awsAccountId": ACCOUNT_ID,
            "configurationItemStatus": "OK",
            "resourceType": resource_type,
            "resourceId": resource_id,
            "resourceName": None,
            "awsRegion": REGION,
        },
        "messageType": "OversizedConfigurationItemChangeNotification",
    }
    return _envelope(invoking, rule_parameters, **extra)


def scheduled_event(rule_parameters: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A ScheduledNotification event (periodic trigger)."""
    invoking = {
        "awsAccountId": ACCOUNT_ID,
        "notificationCreationTime": NOTIFICATION_TIME,
        "messageType": "ScheduledNotification",
        "recordVersion": "1.0",
    }
    return _envelope(invoking, rule_parameters, **extra)


@dataclass
class PutEvaluationsRecorder:
    """A boto3 Session whose config clients record every PutEvaluations request before it is sent
    (works with moto, where TestMode=True calls succeed, and with a real endpoint)."""

    session: boto3.Session = field(default_factory=lambda: boto3.Session(region_name=REGION))
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session.events.register("provide-client-params.config.PutEvaluations", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.calls.append(copy.deepcopy(params))

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        return [e for call in self.calls for e in call["Evaluations"]]

    def verdicts(self) -> dict[str, str]:
        """resource id -> compliance type, over every posted evaluation."""
        return {e["ComplianceResourceId"]: e["ComplianceType"] for e in self.evaluations}


class _Response:
    """The minimal HTTP response botocore accepts from a ``before-call`` handler."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""
        self.raw = None


def inject(
    session: boto3.Session,
    operation: str,
    *,
    error_code: str | None = None,
    status: int = 400,
    response: Mapping[str, Any] | None = None,
    when: Any = None,
) -> None:
    """Make ``operation`` ("ec2.DescribeFlowLogs") on clients of ``session`` return ``response`` or fail
    with ``error_code`` (HTTP ``status``), for calls whose parameters satisfy ``when(params)`` (all calls
    if None). Other calls go through (to moto or AWS) unchanged. Faults that moto cannot produce are made
    this way, at the same layer botocore's retries and error parsing run."""
    service, api = operation.split(".", 1)

    def _before_call(params: Mapping[str, Any], model: Any, **_: Any) -> Any:
        body = params.get("body")
        call_params = params.get("_ml_guardrails_params", body)
        if when is not None and not when(call_params):
            return None
        if error_code is not None:
            return _Response(status), {
                "Error": {"Code": error_code, "Message": f"injected {error_code} on {api}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
        return _Response(200), dict(response or {})

    def _capture(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["ml_guardrails_params"] = copy.deepcopy(params)

    def _before_call_with_params(params: dict[str, Any], context: dict[str, Any], **kw: Any) -> Any:
        params = dict(params)
        params["_ml_guardrails_params"] = context.get("ml_guardrails_params", {})
        return _before_call(params, **kw)

    session.events.register(f"provide-client-params.{service}.{api}", _capture)
    session.events.register(f"before-call.{service}.{api}", _before_call_with_params)
