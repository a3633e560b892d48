"""``scan`` scale-out: account x region x rule units on a thread pool, against a real moto_server.

The landscape: the demo's bank landscape in us-east-1 of the caller's account (123456789012), a smaller
one in eu-west-1 of the same account, and an organization member account with its own keys and bucket in
eu-west-1, reached through an assumed role (moto keeps accounts apart by the assumed credentials).

Scenarios:
- Given two regions, Then ``--workers 1`` and the default pool print the same rows in the same order.
- Given ``--organization`` / ``--account`` with ``--role-name``, Then every ACTIVE account is scanned with
  its own credentials and each row names its account and region.
- Given a role that cannot be assumed, a region whose calls fail, or DescribeRegions denied with
  ``--all-regions``, Then each unit that did not run is an ERROR row, the others are unchanged, exit 2.
- Given ``--all-regions``, Then the regions are those EC2 DescribeRegions (AllRegions false) returns.
- The progress bar is drawn on stderr only when asked or on a terminal; the per-account summary counts
  each account & region's rows.
- Each worker thread has its own boto3 session: no session is used by two threads.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.stub import Stubber

from ml_guardrails import cli, demo, scanning
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.engine import Failure

from .moto_server import moto_server

pytestmark = pytest.mark.server

CALLER = "123456789012"
CORE_RULES = (
    "KMS_CMK_ROTATION_ENABLED",
    "S3_BUCKET_SSE_KMS_ENFORCED",
    "VPC_FLOW_LOGS_ENABLED",
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET",
)
ROLE = "MlGuardrailsScan"
ROW_KEYS = {"rule", "resource_type", "resource_id", "compliance", "annotation", "account", "region"}


def _session(endpoint: str, region: str, credentials: Mapping[str, str] | None = None) -> boto3.Session:
    del endpoint  # boto3 reads AWS_ENDPOINT_URL
    creds = dict(credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    return boto3.Session(
        aws_access_key_id=creds["aws_access_key_id"],
        aws_secret_access_key=creds["aws_secret_access_key"],
        aws_session_token=creds.get("aws_session_token"),
        region_name=region,
    )


def _seed_region(session: boto3.Session, prefix: str) -> None:
    """Keys (one rotating), two buckets (SSE-KMS and SSE-S3) in the session's region; moto adds a
    default VPC without flow logs."""
    keys = demo.seed_keys(session)
    s3: Any = session.client("s3")
    arn = session.client("kms").describe_key(KeyId=keys["data_key"])["KeyMetadata"]["Arn"]
    where = {"LocationConstraint": session.region_name}
    s3.create_bucket(Bucket=f"{prefix}-kms", CreateBucketConfiguration=where)
    s3.put_bucket_encryption(
        Bucket=f"{prefix}-kms",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": arn}}
            ]
        },
    )
    s3.create_bucket(Bucket=f"{prefix}-sse-s3", CreateBucketConfiguration=where)
    s3.put_bucket_encryption(
        Bucket=f"{prefix}-sse-s3",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    session.client("ec2").describe_vpcs()  # moto creates the region's default VPC on first use


@pytest.fixture(scope="module")
def landscape() -> Iterator[dict[str, str]]:
    with moto_server() as endpoint:
        saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")}
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        os.environ.pop("AWS_SESSION_TOKEN", None)
        try:
            demo.seed(_session(endpoint, "us-east-1"))
            _seed_region(_session(endpoint, "eu-west-1"), "caller-eu")
            org: Any = _session(endpoint, "us-east-1").client("organizations")
            org.create_organization(FeatureSet="ALL")
            member = org.create_account(AccountName="ml-member", Email="ml@example.com")
            member_id = member["CreateAccountStatus"]["AccountId"]
            sts: Any = _session(endpoint, "us-east-1").client("sts")
            creds = sts.assume_role(RoleArn=f"arn:aws:iam::{member_id}:role/{ROLE}", RoleSessionName="seed")[
                "Credentials"
            ]
            member_session = _session(
                endpoint,
                "eu-west-1",
                {
                    "aws_access_key_id": creds["AccessKeyId"],
                    "aws_secret_access_key": creds["SecretAccessKey"],
                    "aws_session_token": creds["SessionToken"],
                },
            )
            _seed_region(member_session, "member-eu")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        yield {"endpoint": endpoint, "member": member_id}


@pytest.fixture
def params_file(tmp_path: Path) -> str:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({k: v for k, v in demo.DEMO_PARAMETERS.items() if k in CORE_RULES}))
    return str(path)


@pytest.fixture
def env(landscape: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", landscape["endpoint"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return landscape


def run_scan(
    capsys: pytest.CaptureFixture[str], params: str, *args: str
) -> tuple[int, list[dict[str, str]], str]:
    rule_args = [a for name in CORE_RULES for a in ("--rule", name)]
    code = cli.main(["scan", "--format", "json", "--parameters", params, *rule_args, *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def by_region(rows: list[dict[str, str]]) -> Counter[tuple[str, str]]:
    return Counter((r["account"], r["region"]) for r in rows)


# ------------------------------------------------------------------------------------ same as sequential
def test_concurrent_scan_equals_sequential_over_two_regions(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    regions = ("--region", "us-east-1", "--region", "eu-west-1")
    code_seq, sequential, _ = run_scan(capsys, params_file, *regions, "--workers", "1")
    code_par, concurrent, err = run_scan(capsys, params_file, *regions)
    assert sequential == concurrent  # same rows, same order
    assert code_seq == code_par == cli.EXIT_FINDINGS
    assert all(set(r) == ROW_KEYS for r in concurrent)
    assert "ERROR" not in {r["compliance"] for r in concurrent}
    assert set(by_region(concurrent)) == {(CALLER, "us-east-1"), (CALLER, "eu-west-1")}
    verdicts = {(r["region"], r["rule"], r["resource_id"]): r["compliance"] for r in concurrent}
    assert verdicts[("eu-west-1", "S3_BUCKET_SSE_KMS_ENFORCED", "caller-eu-kms")] == "COMPLIANT"
    assert verdicts[("eu-west-1", "S3_BUCKET_SSE_KMS_ENFORCED", "caller-eu-sse-s3")] == "NON_COMPLIANT"
    assert verdicts[("us-east-1", "S3_BUCKET_SSE_KMS_ENFORCED", "bank-ml-scratch")] == "NON_COMPLIANT"
    # each bucket is evaluated in its own region only
    assert ("us-east-1", "S3_BUCKET_SSE_KMS_ENFORCED", "caller-eu-kms") not in verdicts
    # and the verdicts are those of the library's one-region scan
    single = cli.scan(_session(env["endpoint"], "eu-west-1"), "eu-west-1", CORE_RULES, demo.DEMO_PARAMETERS)
    assert {(r.rule, r.resource_id): r.compliance for r in single.rows} == {
        (rule, rid): c for (region, rule, rid), c in verdicts.items() if region == "eu-west-1"
    }
    # the per-account summary (stderr with JSON) counts each account & region
    for (account, region), count in by_region(concurrent).items():
        line = next(line for line in err.splitlines() if line.startswith(f"{account}  {region}"))
        assert sum(int(n) for n in line.split()[2:]) == count


def test_workers_one_runs_in_the_calling_thread(env: dict[str, str]) -> None:
    threads: set[int] = set()

    def new_session() -> boto3.Session:
        threads.add(threading.get_ident())
        return _session(env["endpoint"], "us-east-1")

    jobs, errors = cli.rule_jobs(CORE_RULES[:2], demo.DEMO_PARAMETERS)
    assert not errors
    plan = scanning.Plan([scanning.AccountAccess(CALLER)], ["us-east-1", "eu-west-1"], "us-east-1", jobs)
    rows = scanning.Scanner(new_session, workers=1).run(plan)
    assert threads == {threading.get_ident()}
    assert {r.region for r in rows} == {"us-east-1", "eu-west-1"}


def test_each_worker_thread_has_its_own_session(env: dict[str, str]) -> None:
    used_by: dict[int, set[int]] = {}
    lock = threading.Lock()

    def new_session() -> boto3.Session:
        session = _session(env["endpoint"], "us-east-1")

        def record(**_: Any) -> None:
            with lock:
                used_by.setdefault(id(session), set()).add(threading.get_ident())

        session.events.register("before-call", record)
        return session

    jobs, _ = cli.rule_jobs(CORE_RULES, demo.DEMO_PARAMETERS)
    plan = scanning.Plan([scanning.AccountAccess(CALLER)], ["us-east-1", "eu-west-1"], "us-east-1", jobs)
    scanning.Scanner(new_session, workers=4).run(plan)
    assert used_by and all(len(threads) == 1 for threads in used_by.values())
    assert len(used_by) <= 4


# ------------------------------------------------------------------------------------ OrganizationId
def test_discovered_organization_id_applies_to_every_account(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No --organization-id: the caller's organization (DescribeOrganization) is every account's."""
    org_id = _session(env["endpoint"], "us-east-1").client("organizations").describe_organization()
    org_id = org_id["Organization"]["Id"]
    args = ["--organization", "--role-name", ROLE, "--region", "eu-west-1", "--region", "us-east-1"]
    code = cli.main(["scan", "--format", "json", "--rule", "S3_BUCKET_POLICY_ORG_ONLY", *args])
    rows = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_FINDINGS
    assert "ERROR" not in {r["compliance"] for r in rows}
    assert {r["account"] for r in rows} == {CALLER, env["member"]}
    # The demo's bucket is limited to the demo bank's organization, not to this (moto's) one.
    shared = next(r for r in rows if r["resource_id"] == "bank-ml-training-data")
    assert shared["compliance"] == "NON_COMPLIANT" and org_id in shared["annotation"], shared


def test_rule_without_organization_id_is_an_error_row_in_every_unit() -> None:
    def no_session() -> boto3.Session:
        raise AssertionError("a blocked rule makes no AWS call")

    jobs, errors = cli.rule_jobs(["VPC_ENDPOINT_POLICY_ORG_ONLY"])
    assert errors == [] and jobs[0].params is None
    accounts = [scanning.AccountAccess(CALLER), scanning.AccountAccess("111122223333")]
    plan = scanning.Plan(accounts, ["us-east-1", "eu-west-1"], "us-east-1", jobs)
    rows = scanning.Scanner(no_session, workers=3).run(plan)
    assert [(r.account, r.region, r.compliance, r.resource_id) for r in rows] == [
        (account, region, "ERROR", "*")
        for account in (CALLER, "111122223333")
        for region in ("us-east-1", "eu-west-1")
    ]
    assert all(r.annotation.endswith(scanning.ORGANIZATION_HINT) for r in rows)


# ------------------------------------------------------------------------------------------ accounts
def test_organization_scan_assumes_the_role_in_every_active_account(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, err = run_scan(
        capsys, params_file, "--organization", "--role-name", ROLE, "--region", "eu-west-1"
    )
    assert code == cli.EXIT_FINDINGS, err
    assert set(by_region(rows)) == {(CALLER, "eu-west-1"), (env["member"], "eu-west-1")}
    buckets = {(r["account"], r["resource_id"]) for r in rows if r["rule"] == "S3_BUCKET_SSE_KMS_ENFORCED"}
    assert buckets == {
        (CALLER, "caller-eu-kms"),
        (CALLER, "caller-eu-sse-s3"),
        (env["member"], "member-eu-kms"),
        (env["member"], "member-eu-sse-s3"),
    }


def test_account_flag_scans_only_that_account(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, _ = run_scan(
        capsys, params_file, "--account", env["member"], "--role-name", ROLE, "--region", "eu-west-1"
    )
    assert code == cli.EXIT_FINDINGS
    assert set(by_region(rows)) == {(env["member"], "eu-west-1")}


class HookedSession(boto3.Session):
    """A boto3 session whose calls may be answered by ``fail`` with an AWS error instead of moto:
    ``fail(operation, region, request body)`` returns an error code, or None to let the call through."""

    fail: ClassVar[Callable[[str, str, Any], str | None]] = staticmethod(lambda op, region, body: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events.register("before-call", cast("Any", self._answer))

    def _answer(
        self, model: Any, params: Any, context: Any, **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        code = type(self).fail(model.name, context.get("client_region"), params.get("body"))
        if code is None:
            return None
        return AWSResponse("https://example.invalid/", 403, HTTPHeaders(), None), {
            "Error": {"Code": code, "Message": f"{model.name} answered {code} by the test"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }


def _hook(monkeypatch: pytest.MonkeyPatch, fail: Callable[[str, str, Any], str | None]) -> None:
    monkeypatch.setattr(HookedSession, "fail", staticmethod(fail))
    monkeypatch.setattr(boto3, "Session", HookedSession)


def test_role_that_cannot_be_assumed_fails_that_account_only(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    member = env["member"]
    _, healthy, _ = run_scan(
        capsys, params_file, "--organization", "--role-name", ROLE, "--region", "eu-west-1"
    )

    def deny_member(op: str, region: str, body: Any) -> str | None:
        if op == "AssumeRole" and f"::{member}:" in str((body or {}).get("RoleArn", "")):
            return "AccessDenied"
        return None

    _hook(monkeypatch, deny_member)
    code, rows, _ = run_scan(
        capsys, params_file, "--organization", "--role-name", ROLE, "--region", "eu-west-1", "--workers", "3"
    )
    assert code == cli.EXIT_ERROR
    failed = [r for r in rows if r["account"] == member]
    assert sorted(r["rule"] for r in failed) == sorted(CORE_RULES)  # one ERROR per unit that did not run
    assert {(r["compliance"], r["resource_type"], r["resource_id"], r["region"]) for r in failed} == {
        ("ERROR", "AWS::::Account", member, "eu-west-1")
    }
    assert all("AssumeRole failed with AccessDenied" in r["annotation"] for r in failed)
    assert all(f"arn:aws:iam::{member}:role/{ROLE}" in r["annotation"] for r in failed)
    assert all(len(r["annotation"]) <= 256 for r in failed)
    assert [r for r in rows if r["account"] == CALLER] == [r for r in healthy if r["account"] == CALLER]


def test_region_that_errors_is_reported_per_rule(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, healthy, _ = run_scan(capsys, params_file, "--region", "us-east-1")
    # What a region the account has not opted in to answers.
    _hook(
        monkeypatch, lambda op, region, body: "UnrecognizedClientException" if region == "eu-west-1" else None
    )
    code, rows, _ = run_scan(capsys, params_file, "--region", "us-east-1", "--region", "eu-west-1")
    assert code == cli.EXIT_ERROR
    eu = [r for r in rows if r["region"] == "eu-west-1"]
    assert sorted(r["rule"] for r in eu) == sorted(CORE_RULES)
    assert {(r["compliance"], r["resource_id"]) for r in eu} == {("ERROR", "*")}
    assert [r for r in rows if r["region"] == "us-east-1"] == healthy


def test_all_regions_are_the_enabled_regions(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2: Any = _session(env["endpoint"], "us-east-1").client("ec2")
    enabled = {r["RegionName"] for r in ec2.describe_regions(AllRegions=False)["Regions"]}
    code = cli.main(
        [
            "scan",
            "--all-regions",
            "--rule",
            "KMS_CMK_ROTATION_ENABLED",
            "--format",
            "json",
            "--parameters",
            params_file,
        ]
    )
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert code == cli.EXIT_FINDINGS, err
    assert {r["region"] for r in rows} <= enabled
    assert {"us-east-1", "eu-west-1"} <= {r["region"] for r in rows}
    summary_regions = {line.split()[1] for line in err.splitlines() if line.startswith(CALLER)}
    assert summary_regions == {r["region"] for r in rows}


def test_all_regions_denied_fails_the_account(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _hook(monkeypatch, lambda op, region, body: "UnauthorizedOperation" if op == "DescribeRegions" else None)
    code, rows, _ = run_scan(capsys, params_file, "--all-regions")
    assert code == cli.EXIT_ERROR
    assert {(r["compliance"], r["region"], r["account"]) for r in rows} == {("ERROR", "*", CALLER)}
    assert sorted(r["rule"] for r in rows) == sorted(CORE_RULES)
    assert all("--region" in r["annotation"] and "DescribeRegions" in r["annotation"] for r in rows)


def test_organization_that_cannot_be_listed_is_exit_2(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _hook(monkeypatch, lambda op, region, body: "AccessDeniedException" if op == "ListAccounts" else None)
    code = cli.main(["scan", "--organization", "--role-name", ROLE, "--parameters", params_file])
    assert code == cli.EXIT_ERROR
    assert "organizations:ListAccounts" in capsys.readouterr().err


# ----------------------------------------------------------------------------- listing the organization
def _org_client() -> Any:
    return boto3.Session(region_name="us-east-1").client("organizations")


def test_organization_accounts_pages_and_keeps_active_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _org_client()
    stub = Stubber(client)
    stub.add_response(
        "list_accounts",
        {
            "Accounts": [
                {"Id": "111111111111", "State": "ACTIVE", "Status": "ACTIVE"},
                {"Id": "222222222222", "State": "SUSPENDED"},
            ],
            "NextToken": "t",
        },
        {},
    )
    stub.add_response(
        "list_accounts",
        {"Accounts": [{"Id": "333333333333", "Status": "ACTIVE"}, {"Id": "444444444444", "State": "CLOSED"}]},
        {"NextToken": "t"},
    )
    session = boto3.Session(region_name="us-east-1")
    monkeypatch.setattr(session, "client", lambda *a, **k: client)
    with stub:
        assert scanning.organization_accounts(session, "us-east-1") == ["111111111111", "333333333333"]


def test_organization_account_without_state_is_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _org_client()
    stub = Stubber(client)
    stub.add_response("list_accounts", {"Accounts": [{"Id": "111111111111"}]}, {})
    session = boto3.Session(region_name="us-east-1")
    monkeypatch.setattr(session, "client", lambda *a, **k: client)
    with stub, pytest.raises(MalformedConfigurationItem):
        scanning.organization_accounts(session, "us-east-1")


# ------------------------------------------------------------------------------- progress and usage
def test_progress_is_drawn_only_when_asked(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, quiet = run_scan(capsys, params_file)  # stderr is not a terminal here
    assert "[" not in quiet
    _, _, shown = run_scan(capsys, params_file, "--progress")
    assert f"units [{'#' * scanning.UnitProgress.WIDTH}] {len(CORE_RULES)}/{len(CORE_RULES)}" in shown
    _, _, off = run_scan(capsys, params_file, "--no-progress")
    assert "units [" not in off


def test_table_has_account_region_column_and_summary(
    env: dict[str, str], params_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            "scan",
            "--parameters",
            params_file,
            "--rule",
            "KMS_CMK_ROTATION_ENABLED",
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
        ]
    )
    out = capsys.readouterr().out
    assert code == cli.EXIT_FINDINGS
    assert out.startswith("ACCOUNT/REGION")
    assert f"{CALLER}/eu-west-1" in out
    assert "ACCOUNT       REGION     COMPLIANT  NON_COMPLIANT  NOT_APPLICABLE  FAILED" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role-name", ROLE], "--role-name needs"),
        (["--account", "111111111111"], "need --role-name"),
        (["--all-regions", "--region", "us-east-1"], "exclude each other"),
    ],
)
def test_usage_errors_are_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scan", *args]) == cli.EXIT_ERROR
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["--workers", "0"], ["--account", "12345"], ["--account", "111111111111", "--organization"]],
)
def test_bad_flags_are_rejected(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["scan", "--role-name", ROLE, *args])
    assert exc.value.code == 2
    capsys.readouterr()


def test_default_workers_is_bounded() -> None:
    assert scanning.default_workers(0) == 1
    assert scanning.default_workers(3) == 3
    assert scanning.default_workers(500) == scanning.MAX_WORKERS


def test_account_failure_annotation_keeps_the_advice() -> None:
    failure = Failure("AWS::::Account", "111111111111", "AssumeRole", "AccessDenied", "x" * 400)
    failed = scanning.AccountFailure("111111111111", ("*",), failure, "let this principal assume the role.")
    (row,) = scanning._account_failure_rows(failed, [cli.rule_jobs(["KMS_CMK_ROTATION_ENABLED"])[0][0]])
    assert len(row.annotation) <= 256
    assert row.annotation.endswith("let this principal assume the role.")


def test_worker_sessions_share_credentials_and_models_not_sessions() -> None:
    maker = scanning.SessionMaker()
    first, second = maker(), maker()
    assert first is not second and first is not maker.base
    assert first.get_credentials() is second.get_credentials() is maker.base.get_credentials()
    loaders = {id(s._session.get_component("data_loader")) for s in (first, second, maker.base)}
    assert len(loaders) == 1
    paths = first._session.get_component("data_loader").search_paths
    assert len(paths) == len(set(paths))
