"""``ml-guardrails remediate`` and the demo's second act, against an in-process moto account."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ml_guardrails import cli, demo, remediate
from ml_guardrails.demo import DEMO_PARAMETERS, REGION, seed

NOTEBOOK_RULE = "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"
Landscape = tuple[boto3.Session, dict[str, dict[str, str]]]  # the seeded session, the runbook inputs
# Rules with a finding the demo's runbooks fix, and rules with a finding that stays (by design).
FIXED_RULES = {
    "KMS_CMK_ROTATION_ENABLED",
    "S3_BUCKET_SSE_KMS_ENFORCED",
    "VPC_FLOW_LOGS_ENABLED",
    "GUARDDUTY_ENABLED",
    "SAGEMAKER_NOTEBOOK_HARDENED",  # credit-risk-nat: root off, IMDSv2
}
STILL_NON_COMPLIANT = {
    NOTEBOOK_RULE,
    "SAGEMAKER_NOTEBOOK_HARDENED",  # churn-model-sandbox: no KMS key (set only at creation)
    "RDS_STORAGE_ENCRYPTED_WITH_CMK",  # notification only
    "S3_BUCKET_POLICY_ORG_ONLY",  # notification only
    "VPC_ENDPOINT_POLICY_ORG_ONLY",  # notification only
}


_PARAMETERS_FILE: dict[str, str] = {}  # the scan's --parameters file (DEMO_PARAMETERS), per test


@pytest.fixture
def landscape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Landscape]:
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        overrides = seed(session)
        # The CLI builds its own session: hand it the seeded one, which carries the demo's AWS-shaped moto
        # answers (ml_guardrails.testing.aws_shaped_rds).
        monkeypatch.setattr(boto3, "Session", lambda *a, **k: session)
        path = tmp_path / "parameters.json"
        path.write_text(json.dumps(DEMO_PARAMETERS))  # OrganizationId is required by two rules
        monkeypatch.setitem(_PARAMETERS_FILE, "path", str(path))
        yield session, overrides


def verdicts(session: boto3.Session) -> dict[tuple[str, str], str]:
    return {
        (r.rule, r.resource_id): r.compliance for r in cli.scan(session, REGION, (), DEMO_PARAMETERS).rows
    }


def set_args(overrides: dict[str, dict[str, str]]) -> list[str]:
    return ["--parameters", _PARAMETERS_FILE["path"]] + [
        arg
        for rule, values in overrides.items()
        for k, v in values.items()
        for arg in ("--set", f"{rule}.{k}={v}")
    ]


def test_plan_binds_each_finding_as_aws_config_would(landscape: Landscape) -> None:
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
            "MlGuardrails-EnableGuardDuty": "AccountId",
            "MlGuardrails-HardenSageMakerNotebook": "NotebookInstanceName",
            "MlGuardrails-NotifyNonCompliantResource": "ResourceId",
        }[run.runbook]
        assert run.parameters[resource_input] == run.row.resource_id


def test_dry_run_changes_nothing(landscape: Landscape, capsys: pytest.CaptureFixture[str]) -> None:
    session, overrides = landscape
    before = verdicts(session)
    assert cli.main(["remediate", "--dry-run", "--region", REGION, *set_args(overrides)]) == cli.EXIT_OK
    assert "MlGuardrails-EnableKmsKeyRotation" in capsys.readouterr().out
    assert verdicts(session) == before


def test_without_yes_and_without_a_terminal_nothing_runs(
    landscape: Landscape, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, overrides = landscape
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal: no silent consent
    before = verdicts(session)
    assert cli.main(["remediate", "--region", REGION, *set_args(overrides)]) == cli.EXIT_ERROR
    assert verdicts(session) == before


def test_remediate_yes_fixes_every_remediable_finding(
    landscape: Landscape, capsys: pytest.CaptureFixture[str]
) -> None:
    session, overrides = landscape
    before = verdicts(session)
    code = cli.main(["remediate", "--yes", "--region", REGION, "--format", "json", *set_args(overrides)])
    out = capsys.readouterr().out
    after = verdicts(session)
    fixed = {k for k, v in before.items() if v == "NON_COMPLIANT" and after.get(k) == "COMPLIANT"}
    still = {k for k, v in after.items() if v == "NON_COMPLIANT"}
    assert {rule for rule, _ in fixed} == FIXED_RULES
    # Quarantine stops and tags the notebooks; they stay NON_COMPLIANT until recreated. Notification
    # runbooks change nothing; a notebook without a KMS key must be recreated.
    assert {rule for rule, _ in still} == STILL_NON_COMPLIANT
    sm = session.client("sagemaker")
    for _, arn in (k for k in still if k[0] == NOTEBOOK_RULE):
        notebook = sm.describe_notebook_instance(NotebookInstanceName=arn.rsplit("/", 1)[-1])
        assert notebook["NotebookInstanceStatus"] == "Stopped"
        tags = {t["Key"] for t in sm.list_tags(ResourceArn=notebook["NotebookInstanceArn"])["Tags"]}
        assert "ml-guardrails:quarantine" in tags
    assert code == cli.EXIT_FINDINGS
    assert "Success" in out


def test_a_second_remediation_run_changes_nothing(landscape: Landscape) -> None:
    session, overrides = landscape
    args = ["remediate", "--yes", "--region", REGION, *set_args(overrides)]
    cli.main(args)
    first = verdicts(session)
    flow_logs = session.client("ec2").describe_flow_logs()["FlowLogs"]
    cli.main(args)
    assert verdicts(session) == first
    assert session.client("ec2").describe_flow_logs()["FlowLogs"] == flow_logs


def test_demo_second_and_third_acts() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = demo.run("json", out, err)
    doc = json.loads(out.getvalue())
    assert {r["AutomationExecutionStatus"] for r in doc["runbooks"]} == {"Success"}
    before = {r["rule"] for r in doc["before"] if r["compliance"] == "NON_COMPLIANT"}
    after = {r["rule"] for r in doc["after"] if r["compliance"] == "NON_COMPLIANT"}
    assert before == FIXED_RULES | STILL_NON_COMPLIANT
    assert after == STILL_NON_COMPLIANT
    # Act 3: the launched workspace adds only COMPLIANT rows, under every rule that covers its resources;
    # the drifted resources keep their findings.
    workspace = doc["workspace"]["rows"]
    assert {r["compliance"] for r in workspace} == {"COMPLIANT"}
    assert {r["rule"] for r in workspace} >= {
        "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET",
        "SAGEMAKER_NOTEBOOK_HARDENED",
        "KMS_CMK_ROTATION_ENABLED",
        "S3_BUCKET_SSE_KMS_ENFORCED",
        "S3_BUCKET_POLICY_ORG_ONLY",
        "VPC_ENDPOINT_POLICY_ORG_ONLY",
        "VPC_FLOW_LOGS_ENABLED",
    }
    assert doc["workspace"]["outputs"]["NotebookName"] == demo.WORKSPACE_NAME
    final = {r["rule"] for r in doc["final"] if r["compliance"] == "NON_COMPLIANT"}
    assert final == STILL_NON_COMPLIANT
    assert code == cli.EXIT_FINDINGS


def test_without_an_organization_id_remediate_refuses(
    landscape: Landscape, capsys: pytest.CaptureFixture[str]
) -> None:
    """The organization-boundary rules cannot be evaluated: the scan is incomplete, nothing runs."""
    session, overrides = landscape
    before = verdicts(session)
    args = set_args(overrides)[2:]  # the runbook inputs, not the --parameters file with OrganizationId
    assert cli.main(["remediate", "--yes", "--region", REGION, *args]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "pass --organization-id o-... (or OrganizationId in --parameters)" in err
    assert "could not evaluate everything" in err
    assert verdicts(session) == before


def test_organization_id_option_plans_the_organization_rules(
    landscape: Landscape, capsys: pytest.CaptureFixture[str]
) -> None:
    _, overrides = landscape
    args = set_args(overrides)[2:]
    code = cli.main(
        ["remediate", "--dry-run", "--region", REGION, "--organization-id", demo.ORGANIZATION_ID, *args]
    )
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    for rule in ("S3_BUCKET_POLICY_ORG_ONLY", "VPC_ENDPOINT_POLICY_ORG_ONLY"):
        assert f"  {rule}  " in out
    assert "MlGuardrails-NotifyNonCompliantResource" in out
