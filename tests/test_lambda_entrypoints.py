"""Each rule's real ``lambda_handler`` (the function SAM deploys), driven by AWS's own example events.

Events: the AWS Config developer guide's change and periodic examples and the SAM CLI's oversized
template (``tests/events/``); configuration items from ``tests/fixtures/ci/``. AWS is moto, in-process;
PutEvaluations is recorded through the boto3 session the handler builds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from ml_guardrails import catalog
from ml_guardrails.catalog import RuleSpec
from ml_guardrails.cli import scan
from ml_guardrails.demo import DEMO_PARAMETERS, ORGANIZATION_ID, REGION, seed
from ml_guardrails.testing import PutEvaluationsRecorder, change_event, inject

ROOT = Path(__file__).resolve().parent
SPECS = catalog.discover(ROOT.parent / "rules")
# Rules evaluated on configuration changes (a periodic-only rule such as GUARDDUTY_ENABLED, which
# evaluates AWS::::Account, has no change trigger: Config never sends it a change event).
CHANGE_SPECS = [s for s in SPECS if s.resource_types]
# Required parameters (no default in a deployment): the rule refuses to run without them.
REQUIRED = {
    "S3_BUCKET_POLICY_ORG_ONLY": {"OrganizationId": ORGANIZATION_ID},
    "VPC_ENDPOINT_POLICY_ORG_ONLY": {"OrganizationId": ORGANIZATION_ID},
}
# One real-shaped configuration item per rule and the verdict AWS would get (no AWS resources exist).
CHANGE_CASES = {
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": ("sagemaker_notebook_internet", "NON_COMPLIANT"),
    "KMS_CMK_ROTATION_ENABLED": ("kms_customer_key", "COMPLIANT"),
    "S3_BUCKET_SSE_KMS_ENFORCED": ("s3_sse_s3_default", "NON_COMPLIANT"),
    "VPC_FLOW_LOGS_ENABLED": ("vpc_ml_training", "NON_COMPLIANT"),
    "RDS_STORAGE_ENCRYPTED_WITH_CMK": ("rds_instance_unencrypted", "NON_COMPLIANT"),
    "SAGEMAKER_NOTEBOOK_HARDENED": ("sagemaker_notebook_internet", "NON_COMPLIANT"),
    "S3_BUCKET_POLICY_ORG_ONLY": ("s3_policy_cross_account_no_tls", "NON_COMPLIANT"),
    "VPC_ENDPOINT_POLICY_ORG_ONLY": ("vpce_gateway_s3_default_policy", "NON_COMPLIANT"),
}


def test_every_change_triggered_rule_has_a_case() -> None:
    assert {s.name for s in CHANGE_SPECS} <= set(CHANGE_CASES)


def load_event(name: str, **rule_parameters: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    event["ruleParameters"] = json.dumps(rule_parameters)
    return event


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[PutEvaluationsRecorder]:
    with mock_aws():
        rec = PutEvaluationsRecorder()
        # The handler builds its own boto3.Session(); hand it the recording one.
        monkeypatch.setattr("ml_guardrails.aws.boto3.Session", lambda *a, **k: rec.session)
        yield rec


def handler(spec: RuleSpec) -> Any:
    return spec.load_module().lambda_handler


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_change_event_for_a_type_out_of_scope_is_not_applicable(
    spec: RuleSpec, recorder: PutEvaluationsRecorder
) -> None:
    result = handler(spec)(
        load_event("aws_docs_change_ec2_instance.json", **REQUIRED.get(spec.name, {})), None
    )
    assert [(e["ComplianceResourceId"], e["ComplianceType"]) for e in recorder.evaluations] == [
        ("i-00000000", "NOT_APPLICABLE")
    ]
    assert "does not evaluate AWS::EC2::Instance" in result[0]["Annotation"]
    json.dumps(result)


# Change-triggered rules only: Config sends a periodic-only rule no change notification, so its function
# never fetches a configuration item (and is granted no config:GetResourceConfigHistory: least privilege).
@pytest.mark.parametrize("spec", CHANGE_SPECS, ids=lambda s: s.name)
def test_sam_oversized_event_is_inflated_then_judged(
    spec: RuleSpec, recorder: PutEvaluationsRecorder
) -> None:
    history_item = {
        "version": "1.3",
        "accountId": "123456789012",
        "configurationItemCaptureTime": "2016-10-06T16:46:16.261Z",
        "configurationItemStatus": "OK",
        "resourceType": "AWS::EC2::Instance",
        "resourceId": "i-00000000",
        "awsRegion": "us-east-1",
        "configuration": json.dumps({"instanceId": "i-00000000"}),
        "supplementaryConfiguration": {},
    }
    inject(
        recorder.session, "config.GetResourceConfigHistory", response={"configurationItems": [history_item]}
    )
    handler(spec)(load_event("sam_oversized_ec2_instance.json", **REQUIRED.get(spec.name, {})), None)
    assert recorder.verdicts() == {"i-00000000": "NOT_APPLICABLE"}


@pytest.mark.parametrize("spec", CHANGE_SPECS, ids=lambda s: s.name)
def test_change_event_with_a_real_configuration_item(
    spec: RuleSpec, recorder: PutEvaluationsRecorder
) -> None:
    fixture, expected = CHANGE_CASES[spec.name]
    ci = json.loads((ROOT / "fixtures" / "ci" / f"{fixture}.json").read_text())
    result = handler(spec)(change_event(ci, REQUIRED.get(spec.name)), None)
    assert recorder.verdicts() == {ci["resourceId"]: expected}
    assert result[0]["OrderingTimestamp"] == ci["configurationItemCaptureTime"]
    assert 0 < len(result[0].get("Annotation", "x")) <= 256


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_periodic_event_posts_what_the_cli_scan_sees(
    spec: RuleSpec, recorder: PutEvaluationsRecorder
) -> None:
    session = recorder.session  # the demo installs AWS-shaped moto answers on the session it seeds
    seed(session)
    expected = {
        row.resource_id: row.compliance for row in scan(session, REGION, [spec.name], DEMO_PARAMETERS).rows
    }
    assert expected, "the demo landscape has resources for every rule"
    result = handler(spec)(load_event("aws_docs_periodic.json", **DEMO_PARAMETERS[spec.name]), None)
    assert recorder.verdicts() == expected
    assert {e["OrderingTimestamp"] for e in result} == {"2016-07-13T21:50:00.373Z"}
