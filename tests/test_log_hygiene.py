"""Logs never carry credentials or whole policy documents, and a duplicate event posts the same thing twice.

Every rule runs its change, oversized and periodic paths (and a failing path) on the demo landscape with
temporary credentials from an assumed role; everything the handler writes to stdout/stderr (Powertools
logs and EMF) is then scanned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml_guardrails import catalog
from ml_guardrails.catalog import RuleSpec
from ml_guardrails.demo import DEMO_PARAMETERS, REGION, seed
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import PutEvaluationsRecorder, change_event, inject, scheduled_event

ROOT = Path(__file__).resolve().parent
SPECS = catalog.discover(ROOT.parent / "rules")
CI = {
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": "sagemaker_notebook_internet",
    "KMS_CMK_ROTATION_ENABLED": "kms_customer_key",
    "S3_BUCKET_SSE_KMS_ENFORCED": "s3_sse_kms_cmk",
    "VPC_FLOW_LOGS_ENABLED": "vpc_ml_training",
    "RDS_STORAGE_ENCRYPTED_WITH_CMK": "rds_instance_unencrypted",
    "SAGEMAKER_NOTEBOOK_HARDENED": "sagemaker_notebook_internet",
    "S3_BUCKET_POLICY_ORG_ONLY": "s3_policy_cross_account_no_tls",
    "VPC_ENDPOINT_POLICY_ORG_ONLY": "vpce_gateway_s3_default_policy",
    # GUARDDUTY_ENABLED: periodic only (AWS::::Account has no configuration items, so no change path).
}
# The first read of every rule, denied (error codes as each service spells them).
DENIED = {
    "kms.DescribeKey": "AccessDenied",
    "s3.GetBucketEncryption": "AccessDenied",
    "s3.GetBucketPolicy": "AccessDenied",
    "sagemaker.DescribeNotebookInstance": "AccessDenied",
    "ec2.DescribeFlowLogs": "UnauthorizedOperation",
    "ec2.DescribeVpcEndpoints": "UnauthorizedOperation",
    "rds.DescribeDBInstances": "AccessDenied",
    "guardduty.ListDetectors": "AccessDeniedException",
}


def test_every_change_triggered_rule_has_a_configuration_item() -> None:
    assert {s.name for s in SPECS if s.resource_types} <= set(CI)


# Access key ids (long-term AKIA, temporary ASIA), secrets/tokens by name, and policy documents.
FORBIDDEN = [
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?i)secret_?access_?key"),
    re.compile(r"(?i)session_?token"),
    re.compile(r'"Statement"\s*:'),
    re.compile(r'\\"Statement\\"\s*:'),
]


@pytest.fixture
def recorder() -> Iterator[PutEvaluationsRecorder]:
    with mock_aws():
        rec = PutEvaluationsRecorder()
        seed(rec.session)
        yield rec


def run_all_paths(spec: RuleSpec, rec: PutEvaluationsRecorder) -> list[list[dict[str, Any]]]:
    rule = spec.rule_class()
    params = DEMO_PARAMETERS[spec.name]
    results = [handle(rule(), scheduled_event(params), session=rec.session)]
    if spec.name in CI:
        ci = json.loads((ROOT / "fixtures" / "ci" / f"{CI[spec.name]}.json").read_text())
        results.append(handle(rule(), change_event(ci, params), session=rec.session))
    # A failing path: the first read of every kind is denied.
    failing = boto3.Session(region_name=REGION)
    for operation, code in DENIED.items():
        inject(failing, operation, error_code=code, status=403)
    with pytest.raises(EvaluationIncomplete):
        handle(rule(), scheduled_event(params), session=failing)
    return results


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_logs_hold_no_credentials_or_policy_documents(
    spec: RuleSpec, recorder: PutEvaluationsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    run_all_paths(spec, recorder)
    out, err = capsys.readouterr()
    logged = out + err
    assert '"message":"evaluation"' in logged, "the scan saw no logs at all"
    for pattern in FORBIDDEN:
        assert not pattern.search(logged), f"{spec.name} logged something matching {pattern.pattern}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_same_event_twice_posts_identical_evaluations(
    spec: RuleSpec, recorder: PutEvaluationsRecorder
) -> None:
    rule = spec.rule_class()
    event = scheduled_event(DEMO_PARAMETERS[spec.name])
    first = handle(rule(), event, session=recorder.session)
    calls = len(recorder.calls)
    second = handle(rule(), event, session=recorder.session)
    assert first == second
    assert recorder.calls[:calls] == recorder.calls[calls:]
