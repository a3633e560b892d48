"""The CLI: ``scan --format json`` against a real moto_server over loopback, exit codes, bad input.

OrganizationId scenarios (the organization-boundary rules require it):
- Given ``--organization-id``, Then every rule declaring OrganizationId gets it, unless ``--parameters``
  sets one (that wins); a malformed id is a usage error naming OrganizationId (exit 2).
- Given neither, Then the caller's organization is read (DescribeOrganization), once, and only when a
  selected rule needs it; when that fails (no organization, AccessDenied, a malformed answer) each such
  rule is one ERROR row per account & region saying what to pass, never a pass nor a silent skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from ml_guardrails import catalog, cli, scanning
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.demo import ORGANIZATION_ID, seed

from .moto_server import moto_server

ORG_RULES = ("S3_BUCKET_POLICY_ORG_ONLY", "VPC_ENDPOINT_POLICY_ORG_ONLY")
HINT = "pass --organization-id o-... (or OrganizationId in --parameters)"
ROW_KEYS = {"rule", "resource_type", "resource_id", "compliance", "annotation", "account", "region"}


@pytest.fixture(scope="module")
def seeded_server() -> Iterator[str]:
    """moto_server seeded with the demo landscape (the same one `ml-guardrails demo` scans)."""
    with moto_server() as endpoint:
        previous = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            seed(
                boto3.Session(
                    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
                )
            )
        finally:
            if previous is None:
                os.environ.pop("AWS_ENDPOINT_URL")
            else:
                os.environ["AWS_ENDPOINT_URL"] = previous
        yield endpoint


def run_cli(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return subprocess.run(
        [sys.executable, "-m", "ml_guardrails.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.server
def test_scan_json_over_moto_server(seeded_server: str, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"VPC_FLOW_LOGS_ENABLED": {"ExemptionTagKey": "ml-guardrails:exemption"}}))
    # Every rule of the catalog; the organization-boundary rules take the demo bank's organization.
    done = run_cli(
        seeded_server,
        "scan",
        "--format",
        "json",
        "--parameters",
        str(params),
        "--organization-id",
        ORGANIZATION_ID,
    )
    assert done.returncode == 1, done.stderr  # the landscape has findings
    rows = json.loads(done.stdout)  # nothing but the JSON array on stdout
    assert rows and all(set(row) == ROW_KEYS for row in rows)
    assert {(r["account"], r["region"]) for r in rows} == {("123456789012", "us-east-1")}
    verdicts = {(r["rule"], r["resource_id"]): r["compliance"] for r in rows}
    assert "ERROR" not in verdicts.values(), done.stdout
    by_rule = {r["rule"] for r in rows}
    assert by_rule == {spec.name for spec in catalog.discover()}
    assert verdicts[("S3_BUCKET_SSE_KMS_ENFORCED", "bank-ml-training-data")] == "COMPLIANT"
    assert verdicts[("S3_BUCKET_SSE_KMS_ENFORCED", "bank-ml-scratch")] == "NON_COMPLIANT"
    notebooks = {
        r["resource_id"].rsplit("/", 1)[-1]: r["compliance"]
        for r in rows
        if r["rule"] == "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"
    }
    assert notebooks == {
        "fraud-detection-private": "COMPLIANT",
        "churn-model-sandbox": "NON_COMPLIANT",
        "credit-risk-nat": "NON_COMPLIANT",
        "ml-vendor-image": "COMPLIANT",  # exempt only under ExemptionTagKey; private and isolated
    }
    exempt = [r for r in rows if r["rule"] == "VPC_FLOW_LOGS_ENABLED" and "RA-2291" in r["annotation"]]
    assert [r["compliance"] for r in exempt] == ["NOT_APPLICABLE"]
    compliant_org = [r for r in rows if r["rule"] in ORG_RULES and r["compliance"] == "COMPLIANT"]
    assert compliant_org and all(ORGANIZATION_ID in r["annotation"] for r in compliant_org)


@pytest.mark.server
def test_scan_single_rule_table(seeded_server: str) -> None:
    done = run_cli(seeded_server, "scan", "--rule", "KMS_CMK_ROTATION_ENABLED", "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "KMS_CMK_ROTATION_ENABLED" in done.stdout
    assert "S3_BUCKET_SSE_KMS_ENFORCED" not in done.stdout
    assert "evaluations by 1 rules" in done.stdout


@pytest.mark.server
def test_scan_bad_parameters_exit_2_and_name_the_parameter(seeded_server: str, tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"KMS_CMK_ROTATION_ENABLED": {"MaxRotationPeriodInDays": "abc"}}))
    done = run_cli(seeded_server, "scan", "--rule", "KMS_CMK_ROTATION_ENABLED", "--parameters", str(params))
    assert done.returncode == 2
    assert "MaxRotationPeriodInDays" in done.stderr


@pytest.mark.server
def test_scan_access_denied_is_an_error_row_and_exit_2(seeded_server: str) -> None:
    # moto_server has no IAM enforcement; a rule whose listing fails is simulated by an unknown endpoint
    # path instead: point the scan at a closed port so every call fails to connect.
    from .moto_server import free_port

    done = run_cli(
        f"http://127.0.0.1:{free_port()}", "scan", "--rule", "VPC_FLOW_LOGS_ENABLED", "--format", "json"
    )
    assert done.returncode == 2
    rows = json.loads(done.stdout)
    assert [r["compliance"] for r in rows] == ["ERROR"]
    assert "EndpointConnectionError" in rows[0]["annotation"]


def test_unknown_rule_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scan", "--rule", "NOPE", "--region", "us-east-1", "--format", "json"]) == 2
    assert "unknown rule NOPE" in capsys.readouterr().err


def test_parameters_file_for_unknown_rule_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"NOT_A_RULE": {}}))
    assert cli.main(["scan", "--parameters", str(params), "--region", "us-east-1"]) == 2
    assert "NOT_A_RULE" in capsys.readouterr().err


def test_no_region_is_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert cli.main(["scan"]) == 2
    assert "region" in capsys.readouterr().err


def test_exit_codes() -> None:
    ok = cli.Row("R", "T", "a", "COMPLIANT", "")
    bad = cli.Row("R", "T", "b", "NON_COMPLIANT", "fix it")
    err = cli.Row("R", "T", "c", "ERROR", "denied")
    assert cli.ScanResult([ok], []).exit_code == 0
    assert cli.ScanResult([ok, bad], []).exit_code == 1
    assert cli.ScanResult([ok, bad, err], []).exit_code == 2
    assert cli.ScanResult([ok], ["bad parameters"]).exit_code == 2


# --------------------------------------------------------------------------------------- OrganizationId
def _org_args(*extra: str) -> list[str]:
    return [
        "scan",
        "--region",
        "us-east-1",
        "--format",
        "json",
        *(a for r in ORG_RULES for a in ("--rule", r)),
        *extra,
    ]


class Discovery:
    """A DescribeOrganization stand-in that counts its calls."""

    def __init__(self, answer: str | Exception) -> None:
        self.answer, self.calls = answer, 0

    def __call__(self) -> str:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _org_of(job: scanning.RuleJob) -> str:
    assert job.params is not None, job.blocked
    return str(job.params.rule.organization_id)


def test_organization_id_option_reaches_every_rule_that_declares_it() -> None:
    discovery = Discovery(AssertionError("not asked: --organization-id was given"))
    jobs, errors = cli.rule_jobs((), {}, scanning.OrganizationSource("o-a1b2c3d4e5", discovery))
    assert errors == []
    assert {j.name: _org_of(j) for j in jobs if j.name in ORG_RULES} == dict.fromkeys(
        ORG_RULES, "o-a1b2c3d4e5"
    )
    assert all(j.params is not None for j in jobs)


def test_organization_id_in_parameters_wins() -> None:
    explicit = {"S3_BUCKET_POLICY_ORG_ONLY": {"OrganizationId": "o-explicit000"}}
    jobs, errors = cli.rule_jobs(ORG_RULES, explicit, scanning.OrganizationSource("o-a1b2c3d4e5"))
    assert errors == []
    assert {j.name: _org_of(j) for j in jobs} == {
        "S3_BUCKET_POLICY_ORG_ONLY": "o-explicit000",
        "VPC_ENDPOINT_POLICY_ORG_ONLY": "o-a1b2c3d4e5",
    }
    # An explicit value is checked by the rule itself, whatever --organization-id says.
    bad = {"VPC_ENDPOINT_POLICY_ORG_ONLY": {"OrganizationId": "org-1"}}
    _, errors = cli.rule_jobs(ORG_RULES, bad, scanning.OrganizationSource("o-a1b2c3d4e5"))
    assert len(errors) == 1 and "OrganizationId" in errors[0] and "VPC_ENDPOINT_POLICY_ORG_ONLY" in errors[0]


@pytest.mark.parametrize("value", ["o-short", "O-A1B2C3D4E5", "a1b2c3d4e5", "o-a1b2c3d4e5 x", "r-a1b2c3d4e5"])
def test_malformed_organization_id_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([*_org_args(), "--organization-id", value])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--organization-id" in err and "OrganizationId must be an AWS Organizations id" in err


def test_discovery_is_asked_once_and_only_when_a_rule_needs_it() -> None:
    discovery = Discovery("o-discovered0")
    jobs, _ = cli.rule_jobs(["KMS_CMK_ROTATION_ENABLED"], {}, scanning.OrganizationSource(None, discovery))
    assert discovery.calls == 0 and len(jobs) == 1
    jobs, _ = cli.rule_jobs(ORG_RULES, {}, scanning.OrganizationSource(None, discovery))
    assert discovery.calls == 1
    assert [_org_of(j) for j in jobs] == ["o-discovered0", "o-discovered0"]


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} message"}}, "DescribeOrganization")


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (None, "OrganizationId is required"),  # no source at all (the library's scan())
        (_client_error("AWSOrganizationsNotInUseException"), "AWSOrganizationsNotInUseException"),
        (_client_error("AccessDeniedException"), "AccessDeniedException"),
        (
            MalformedConfigurationItem("bad id", operation="DescribeOrganization"),
            "MalformedConfigurationItem",
        ),
    ],
)
def test_without_an_organization_id_the_rules_are_error_rows(answer: Exception | None, named: str) -> None:
    source = None if answer is None else scanning.OrganizationSource(None, Discovery(answer))
    jobs, errors = cli.rule_jobs((), {}, source)
    assert errors == []
    blocked = {j.name: j for j in jobs if j.params is None}
    assert set(blocked) == set(ORG_RULES)  # nothing else depends on the organization
    for job in blocked.values():
        row = job.blocked_row("111122223333", "eu-west-1")
        assert (row.compliance, row.resource_id, row.account, row.region) == (
            "ERROR",
            "*",
            "111122223333",
            "eu-west-1",
        )
        assert row.resource_type == ", ".join(job.rule_class.RESOURCE_TYPES)
        assert named in row.annotation and row.annotation.endswith(HINT) and len(row.annotation) <= 256


def test_a_long_discovery_failure_keeps_the_hint_whole() -> None:
    source = scanning.OrganizationSource(None, Discovery(RuntimeError("x" * 400)))
    jobs, _ = cli.rule_jobs(ORG_RULES[:1], {}, source)
    assert jobs[0].blocked.endswith(HINT) and len(jobs[0].blocked) == 256


def test_describe_organization_id_checks_the_answer() -> None:
    session = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    client = session.client("organizations")
    stub = Stubber(client)
    stub.add_response("describe_organization", {"Organization": {"Id": "o-a1b2c3d4e5"}})
    stub.add_response("describe_organization", {"Organization": {"Id": "not-an-org"}})
    stub.add_response("describe_organization", {})
    with stub, pytest.MonkeyPatch.context() as patch:
        patch.setattr(session, "client", lambda *a, **k: client)
        assert scanning.describe_organization_id(session, "us-east-1") == "o-a1b2c3d4e5"
        for _ in range(2):
            with pytest.raises(MalformedConfigurationItem) as bad:
                scanning.describe_organization_id(session, "us-east-1")
            assert bad.value.operation == "DescribeOrganization"


def test_scan_without_an_organization_is_exit_2_with_the_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():  # an account in no organization: DescribeOrganization fails
        assert cli.main(_org_args()) == 2
    rows = json.loads(capsys.readouterr().out)
    assert [(r["rule"], r["compliance"], r["resource_id"]) for r in rows] == [
        (n, "ERROR", "*") for n in ORG_RULES
    ]
    assert all(
        "AWSOrganizationsNotInUseException" in r["annotation"] and r["annotation"].endswith(HINT)
        for r in rows
    )


def test_scan_discovers_the_callers_organization(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        org = boto3.client("organizations", region_name="us-east-1").create_organization(FeatureSet="ALL")
        org_id = org["Organization"]["Id"]
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="shared-with-the-org")
        s3.put_bucket_policy(
            Bucket="shared-with-the-org",
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::shared-with-the-org/*",
                            "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}},
                        },
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                "arn:aws:s3:::shared-with-the-org",
                                "arn:aws:s3:::shared-with-the-org/*",
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                }
            ),
        )
        code = cli.main(_org_args())  # no VPC endpoint: the bucket is the one resource
        rows = json.loads(capsys.readouterr().out)
        assert code == 0, rows
        assert [
            (r["rule"], r["resource_id"], r["compliance"]) for r in rows if r["rule"] == ORG_RULES[0]
        ] == [(ORG_RULES[0], "shared-with-the-org", "COMPLIANT")]
        assert org_id in rows[0]["annotation"]
        # The same bucket under another organization's id is a finding: the option wins over discovery.
        assert cli.main([*_org_args(), "--organization-id", "o-zzzzzzzzzz"]) == 1
        rows = json.loads(capsys.readouterr().out)
        assert {r["compliance"] for r in rows if r["rule"] == ORG_RULES[0]} == {"NON_COMPLIANT"}


def test_rules_lists_each_rules_resource_types(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["rules"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    heads = {
        line.split("  ", 1)[0]: line.split("  ", 1)[1]
        for line in out.splitlines()
        if line and not line.startswith(" ")
    }
    assert set(heads) == {spec.name for spec in catalog.discover()}
    assert heads["GUARDDUTY_ENABLED"] == "(AWS::::Account; periodic only)"
    assert heads["KMS_CMK_ROTATION_ENABLED"] == "(AWS::KMS::Key)"
    assert "()" not in heads.values()
    assert "    OrganizationId (required: --organization-id, or the caller's organization)" in out
    assert "o-exampleorgid" not in out  # parameters.json's placeholder is never used


def test_the_wheel_carries_the_data_the_cli_reads_beside_rules() -> None:
    """catalog.data_dir finds ``_data/rules`` in an installed wheel; workspace.template_path looks for
    ``service-catalog`` beside it: pyproject's force-include must put both there."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    doc = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    included = doc["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    packaged = Path("ml_guardrails") / "_data"
    assert {source: Path(target) for source, target in included.items()} == {
        kind: packaged / kind for kind in ("rules", "remediations", "service-catalog")
    }
    assert all((root / source).is_dir() for source in included)
    # A wheel built from the sdist (pip install of the sdist) needs the same sources in the sdist, or
    # hatchling stops with "Forced include not found".
    assert set(included) <= set(doc["tool"]["hatch"]["build"]["targets"]["sdist"]["include"])
