"""Test support shipped with the package (as rdklib ships ``rdklibtest``): Config events in the shapes AWS
sends them, and a recorder of the PutEvaluations calls a handler makes.

Event shapes follow the AWS Config developer guide ("Example events for AWS Config rules") and the
SAM CLI's ``sam local generate-event config`` templates: ``invokingEvent`` and ``ruleParameters`` are
JSON *strings*; the oversized notification carries only ``configurationItemSummary`` (SAM's template
has neither ``notificationCreationTime`` nor ``recordVersion``).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import re
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


def history_item(ci: Mapping[str, Any], captured: dt.datetime, **fields: Any) -> dict[str, Any]:
    """Configuration item ``ci`` (change-notification shape) as GetResourceConfigHistory returns it -- what
    the handler reads after an :func:`oversized_event`: ``arn``/``accountId`` keys, ``configuration`` and
    every ``supplementaryConfiguration`` value JSON strings (the API's map<string,string>), the capture
    time the datetime ``captured``. The inverse of :func:`ml_guardrails.ci.history_item_to_notification`;
    ``fields`` replace or add top-level keys."""
    supplementary = ci.get("supplementaryConfiguration") or {}
    item: dict[str, Any] = {
        "version": "1.3",
        "accountId": ci.get("awsAccountId", ACCOUNT_ID),
        "configurationItemCaptureTime": captured,
        "configurationItemStatus": "OK",
        "configurationStateId": str(ci.get("configurationStateId", "")),
        "arn": ci.get("ARN"),
        "resourceType": ci["resourceType"],
        "resourceId": ci["resourceId"],
        "awsRegion": ci.get("awsRegion", REGION),
        "tags": dict(ci.get("tags") or {}),
        "relatedEvents": [],
        "relationships": [],
        "configuration": json.dumps(ci["configuration"]),
        "supplementaryConfiguration": {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in supplementary.items()
        },
    }
    item.update({k: ci[k] for k in ("resourceName", "availabilityZone") if ci.get(k) is not None})
    item.update(fields)
    return item


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


# ------------------------------------------------------------------------ moto made AWS-shaped
# moto 5.2.5 differs from AWS in ways the rules must not depend on. These helpers make moto answer as AWS
# does; the demo and the tests share them (tests/test_rds_cmk.py, tests/test_sagemaker_hardened.py).
MOTO_DBI_RESOURCE_ID = "db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U"
MOTO_DEFAULT_KEY = "default_kms_key_id"
_KEY_ID = re.compile(
    r"^(?:mrk-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|^mrk-[0-9a-f]{32}$"
)


def dbi_resource_id(identifier: str) -> str:
    """A DbiResourceId in AWS's shape (``db-`` + 26 upper-case base32 characters), unique per identifier."""
    digest = base64.b32encode(hashlib.sha256(identifier.encode()).digest()).decode()
    return "db-" + digest[:26]


def aws_shaped_rds(session: boto3.Session) -> None:
    """Make moto's RDS and KMS answers on clients of ``session`` look like AWS's:

    * every moto DB instance has the same ``DbiResourceId`` (AWS: unique per instance, and AWS Config's
      resource ID): a unique one is derived from the identifier;
    * ``KmsKeyId`` is echoed as given (AWS: the key ARN, whatever form CreateDBInstance got) and is the
      string ``default_kms_key_id`` when none was given (AWS: the ARN of the ``aws/rds`` key when
      encrypted, absent when not): rewritten to the ARN / the aws/rds key's ARN / removed;
    * ``alias/aws/*`` keys report ``KeyManager: CUSTOMER`` (AWS: ``AWS``): the aws/rds key answers AWS.

    Fields a fault removed stay removed: the hooks only rewrite moto's own placeholder values."""
    region = session.region_name
    kms: Any = session.client("kms")
    account = session.client("sts").get_caller_identity()["Account"]
    aws_rds_key = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]

    def key_arn(value: str) -> str:
        return f"arn:aws:kms:{region}:{account}:key/{value}" if _KEY_ID.match(value) else value

    def fix_key(db: dict[str, Any]) -> None:
        value = db.get("KmsKeyId")
        if not isinstance(value, str):
            return
        if value == MOTO_DEFAULT_KEY:
            if db.get("StorageEncrypted") is True:
                db["KmsKeyId"] = aws_rds_key["Arn"]
            else:
                del db["KmsKeyId"]
        elif value == "alias/aws/rds":
            db["KmsKeyId"] = aws_rds_key["Arn"]
        elif value.startswith("alias/"):
            db["KmsKeyId"] = kms.describe_key(KeyId=value)["KeyMetadata"]["Arn"]
        else:
            db["KmsKeyId"] = key_arn(value)

    def instances(parsed: dict[str, Any], **_: Any) -> None:
        for db in parsed.get("DBInstances") or []:
            if db.get("DbiResourceId") == MOTO_DBI_RESOURCE_ID and db.get("DBInstanceIdentifier"):
                db["DbiResourceId"] = dbi_resource_id(db["DBInstanceIdentifier"])
            fix_key(db)

    def clusters(parsed: dict[str, Any], **_: Any) -> None:
        for db in parsed.get("DBClusters") or []:
            fix_key(db)

    def describe_key(parsed: dict[str, Any], **_: Any) -> None:
        metadata = parsed.get("KeyMetadata")
        if (
            isinstance(metadata, dict)
            and metadata.get("KeyId") == aws_rds_key["KeyId"]
            and "KeyManager" in metadata
        ):
            metadata["KeyManager"] = "AWS"

    session.events.register("after-call.rds.DescribeDBInstances", instances)
    session.events.register("after-call.rds.DescribeDBClusters", clusters)
    session.events.register("after-call.kms.DescribeKey", describe_key)


IMDS = "InstanceMetadataServiceConfiguration"
_SAGEMAKER_PATCHED = {"done": False}


def patch_moto_sagemaker() -> None:
    """Teach moto 5.2.5's SageMaker *model* what AWS does and moto lacks (idempotent, process-wide; below
    botocore, so faults injected at the botocore layer still apply):

    * moto ignores ``InstanceMetadataServiceConfiguration`` on CreateNotebookInstance and never returns it
      from DescribeNotebookInstance; AWS returns it (botocore: DescribeNotebookInstanceOutput member):
      the setting given at creation or by an update is stored and returned;
    * moto does not implement UpdateNotebookInstance: it applies RootAccess and the IMDS configuration,
      and is refused unless the notebook is Stopped, as AWS refuses it."""
    if _SAGEMAKER_PATCHED["done"]:
        return
    from moto.core.responses import EmptyResult
    from moto.sagemaker import models, responses
    from moto.sagemaker.exceptions import ValidationError

    notebook_cls: Any = models.FakeSagemakerNotebookInstance
    response_cls: Any = responses.SageMakerResponse
    original_to_dict = notebook_cls.to_dict
    original_create = response_cls.create_notebook_instance

    def to_dict(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original_to_dict(self)
        version = getattr(self, "ml_guardrails_imds", None)
        if version is not None:
            result[IMDS] = {"MinimumInstanceMetadataServiceVersion": version}
        return result

    def create_notebook_instance(self: Any) -> Any:
        result = original_create(self)
        config = self._get_param(IMDS)
        if config:
            notebook = self.sagemaker_backend.get_notebook_instance(self._get_param("NotebookInstanceName"))
            notebook.ml_guardrails_imds = config.get("MinimumInstanceMetadataServiceVersion")
        return result

    def update_notebook_instance(self: Any) -> Any:
        notebook = self.sagemaker_backend.get_notebook_instance(self._get_param("NotebookInstanceName"))
        if notebook.status != "Stopped":
            raise ValidationError(
                message=f"Status ({notebook.status}) not in ([Stopped]). Unable to transition to (Updating) "
                f"for Notebook Instance ({notebook.arn})"
            )
        root = self._get_param("RootAccess")
        if root is not None:
            notebook.root_access = root
        config = self._get_param(IMDS)
        if config:
            notebook.ml_guardrails_imds = config.get("MinimumInstanceMetadataServiceVersion")
        return EmptyResult()

    notebook_cls.to_dict = to_dict
    response_cls.create_notebook_instance = create_notebook_instance
    response_cls.update_notebook_instance = update_notebook_instance
    _SAGEMAKER_PATCHED["done"] = True
