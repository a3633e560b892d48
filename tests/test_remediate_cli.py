"""``ml-guardrails remediate`` and the demo's second act, against an in-process moto account."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ml_guardrails import cli, demo, remediate
from ml_guardrails.demo import DEMO_PARAMETERS, REGION, seed

NOTEBOOK_RULE = "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"


@pytest.fixture
def landscape() -> Iterator[tuple[boto3.Session, dict[str, dict[str, str]]]]:
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        yield session, seed(session)


def verdicts(session: boto3.Session) -> dict[tuple[str, str], str]:
    return {
        (r.rule, r.resource_id): r.compliance for r in cli.scan(session, REGION, (), DEMO_PARAMETERS).rows
    }


def set_args(overrides: dict[str, dict[str, str]]) -> list[str]:
    return [
        arg
        for rule, values in overrides.items()
        for k, v in values.items()
        for arg in ("--set", f"{rule}.{k}={v}")
    ]


def test_plan_binds_each_finding_as_aws_config_would(landscape: tuple[boto3.Session, dict]) -> None:
    session, overrides = landscape
    before = cli.scan(session, REGION, (), DEMO_PARAMETERS)
    plan = remediate.make_plan(before, (), overrides)
    findings = {(r.rule, r.resource_id) for r in before.rows if r.compliance == "NON_COMPLIANT"}
    assert {(run.row.rule, run.row.resource_id) for run in plan.runs} == findings
    assert plan.unremediable == []
    for run in plan.runs:
        resource_input = {
            "MlGuardrails-EnableKmsKeyRotation": "KeyId",
            "MlGuardrails-EnforceS3BucketSseKms": "BucketName",
            "MlGuardrails-QuarantineSageMakerNotebook": "NotebookInstanceName",
            "MlGuardrails-EnableVpcFlowLogs": "VpcId",
        }[run.runbook]
        assert run.parameters[resource_input] == run.row.resource_id


def test_dry_run_changes_nothing(
    landscape: tuple[boto3.Session, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    session, overrides = landscape
    before = verdicts(session)
    assert cli.main(["remediate", "--dry-run", "--region", REGION, *set_args(overrides)]) == cli.EXIT_OK
    assert "MlGuardrails-EnableKmsKeyRotation" in capsys.readouterr().out
    assert verdicts(session) == before


def test_without_yes_and_without_a_terminal_nothing_runs(
    landscape: tuple[boto3.Session, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, overrides = landscape
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal: no silent consent
    before = verdicts(session)
    assert cli.main(["remediate", "--region", REGION, *set_args(overrides)]) == cli.EXIT_ERROR
    assert verdicts(session) == before


def test_remediate_yes_fixes_every_remediable_finding(
    landscape: tuple[boto3.Session, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    session, overrides = landscape
    before = verdicts(session)
    code = cli.main(["remediate", "--yes", "--region", REGION, "--format", "json", *set_args(overrides)])
    out = capsys.readouterr().out
    after = verdicts(session)
    fixed = {k for k, v in before.items() if v == "NON_COMPLIANT" and after.get(k) == "COMPLIANT"}
    still = {k for k, v in after.items() if v == "NON_COMPLIANT"}
    assert {rule for rule, _ in fixed} == {
        "KMS_CMK_ROTATION_ENABLED",
        "S3_BUCKET_SSE_KMS_ENFORCED",
        "VPC_FLOW_LOGS_ENABLED",
    }
    # Quarantine stops and tags the notebooks; they stay NON_COMPLIANT until recreated.
    assert {rule for rule, _ in still} == {NOTEBOOK_RULE}
    sm = session.client("sagemaker")
    for _, arn in still:
        notebook = sm.describe_notebook_instance(NotebookInstanceName=arn.rsplit("/", 1)[-1])
        assert notebook["NotebookInstanceStatus"] == "Stopped"
        tags = {t["Key"] for t in sm.list_tags(ResourceArn=notebook["NotebookInstanceArn"])["Tags"]}
        assert "ml-guardrails:quarantine" in tags
    assert code == cli.EXIT_FINDINGS
    assert "Success" in out


def test_a_second_remediation_run_changes_nothing(landscape: tuple[boto3.Session, dict]) -> None:
    session, overrides = landscape
    args = ["remediate", "--yes", "--region", REGION, *set_args(overrides)]
    cli.main(args)
    first = verdicts(session)
    flow_logs = session.client("ec2").describe_flow_logs()["FlowLogs"]
    cli.main(args)
    assert verdicts(session) == first
    assert session.client("ec2").describe_flow_logs()["FlowLogs"] == flow_logs


def test_demo_second_act() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = demo.run("json", out, err)
    doc = json.loads(out.getvalue())
    assert {r["AutomationExecutionStatus"] for r in doc["runbooks"]} == {"Success"}
    before = {r["rule"] for r in doc["before"] if r["compliance"] == "NON_COMPLIANT"}
    after = {r["rule"] for r in doc["after"] if r["compliance"] == "NON_COMPLIANT"}
    assert before == {
        NOTEBOOK_RULE,
        "KMS_CMK_ROTATION_ENABLED",
        "S3_BUCKET_SSE_KMS_ENFORCED",
        "VPC_FLOW_LOGS_ENABLED",
    }
    assert after == {NOTEBOOK_RULE}
    assert code == cli.EXIT_FINDINGS
