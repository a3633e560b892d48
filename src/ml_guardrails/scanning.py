"""Scale-out of ``ml-guardrails scan``: every (account, region, rule) is one unit of work on a bounded pool.

Where to look is planned first. Accounts: the caller's own (the standard credential chain), the
``--account`` IDs, or every ACTIVE account of the organization (Organizations ListAccounts, paginated);
another account is reached by assuming ``arn:<partition>:iam::<id>:role/<ROLE>`` once per scan (STS
AssumeRole, session name :data:`SESSION_NAME`). Regions: the ``--region`` values, or with ``--all-regions``
the regions the account has enabled, read per account (EC2 DescribeRegions with AllRegions false, which
"describes the Regions that are enabled for your account": botocore's ec2 service model). When
DescribeRegions is denied the account is reported as failed rather than scanned over botocore's static
region list: that list is as old as the installed botocore, so a newer region holding resources would be
dropped without a word; ``--region`` names the regions explicitly instead.

The units then run on a ``ThreadPoolExecutor`` of ``workers`` threads. boto3 sessions are not
thread-safe, so each thread owns one ``boto3.Session`` and, on it, one :class:`ClientFactory` (hence one
client set) per (account, region); no session or client is shared between threads. Each unit gets a
fresh rule instance. ``workers=1`` runs every unit in the calling thread, in order: the sequential
reference.

Rules that require ``OrganizationId`` (the organization-boundary rules) get it from ``--parameters``, else
from ``--organization-id``, else from Organizations DescribeOrganization called once with the caller's
credentials ("You can call this operation from any account in a organization": botocore's organizations
service model), which needs ``organizations:DescribeOrganization``. Whichever is used applies to every
account scanned: the perimeter is the caller's organization. When none yields an id, such a rule is not
swept: each of its units is one ERROR row saying what to pass (:data:`ORGANIZATION_HINT`).

Fail closed: an account whose role cannot be assumed, an account whose regions cannot be listed, a unit
that raises, a sweep that could not list everything and a rule without its OrganizationId all become
ERROR rows naming account, region and rule (exit code 2); nothing is dropped. Rows come back in plan
order (account, region, rule, then the sweep's own order) whatever the number of workers, so a
concurrent scan prints what a sequential one does.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ml_guardrails.aws import CLIENT_CONFIG, ClientFactory, error_code, error_message
from ml_guardrails.ci import MalformedConfigurationItem, response_field
from ml_guardrails.engine import Failure, RuleParameters

if TYPE_CHECKING:
    import boto3

    from ml_guardrails.engine import GuardrailRule

ERROR = "ERROR"
COMPLIANCE_COLUMNS = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE")
SESSION_NAME = "ml-guardrails-scan"  # appears in each member account's CloudTrail
# One hour: the longest a chained role session may last (AWS STS AssumeRole: "role chaining limits your
# session to a maximum of one hour"); a scan of a large organization outlives AssumeRole's 15-minute minimum.
ASSUME_ROLE_SECONDS = 3600
MAX_WORKERS = 16
ACCOUNT_RESOURCE_TYPE = "AWS::::Account"
ANY_REGION = "*"
ROLE_NAME_HELP = "role name, optionally with its IAM path (path/Name)"
ORGANIZATION_PARAMETER = "OrganizationId"
# Organization.Id: "^o-[a-z0-9]{10,32}$" (botocore's organizations service model, shape OrganizationId).
ORGANIZATION_ID_PATTERN = r"o-[a-z0-9]{10,32}"
ORGANIZATION_HINT = "pass --organization-id o-... (or OrganizationId in --parameters)"

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Row:
    """One line of a scan's result. ``compliance`` is COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE or ERROR
    (the resource, or the whole unit when ``resource_id`` is ``*``, could not be evaluated; ``annotation``
    says why). ``account`` is empty when the caller's own account ID could not be read; ``region`` is
    ``*`` when the account's regions were never known."""

    rule: str
    resource_type: str
    resource_id: str
    compliance: str
    annotation: str
    account: str = ""
    region: str = ""


@dataclass
class ScanResult:
    rows: list[Row]
    errors: list[str]

    @property
    def exit_code(self) -> int:
        if self.errors or any(r.compliance == ERROR for r in self.rows):
            return 2
        if any(r.compliance == "NON_COMPLIANT" for r in self.rows):
            return 1
        return 0


def failure_row(rule: str, failure: Failure, account: str = "", region: str = "") -> Row:
    return Row(
        rule,
        failure.resource_type,
        failure.resource_id,
        ERROR,
        f"Could not evaluate: {failure.operation} failed with {failure.code}: {failure.message}"[:256],
        account,
        region,
    )


@dataclass(frozen=True)
class RuleJob:
    """A rule ready to sweep: its class (instantiated per unit: rules may keep per-sweep state) and its
    validated parameters. A job with ``blocked`` set (and no parameters) is not swept: each of its units
    is one ERROR row annotated with ``blocked`` (e.g. a required OrganizationId nobody supplied)."""

    name: str
    rule_class: type[GuardrailRule[Any]]
    params: RuleParameters[Any] | None
    blocked: str = ""

    def blocked_row(self, account: str = "", region: str = "") -> Row:
        types = ", ".join(self.rule_class.RESOURCE_TYPES)
        return Row(self.name, types, "*", ERROR, self.blocked, account, region)


class OrganizationSource:
    """The OrganizationId for rules that require one and were given none in ``--parameters``: ``given``
    (``--organization-id``), else ``discover()`` -- called at most once, and only when a selected rule
    needs it. :meth:`resolve` never raises: a failed discovery is the reason the id is unknown."""

    def __init__(self, given: str | None = None, discover: Callable[[], str] | None = None) -> None:
        self._given, self._discover = given, discover
        self._resolved: tuple[str | None, str] | None = None
        self._lock = threading.Lock()

    def resolve(self) -> tuple[str | None, str]:
        """``(organization id, "")``, or ``(None, why it is unknown)``."""
        with self._lock:
            if self._resolved is None:
                self._resolved = self._lookup()
            return self._resolved

    def _lookup(self) -> tuple[str | None, str]:
        if self._given:
            return self._given, ""
        if self._discover is None:
            return None, "OrganizationId is required"
        try:
            return self._discover(), ""
        except Exception as exc:
            return None, (
                f"OrganizationId unknown: organizations:DescribeOrganization failed with "
                f"{error_code(exc)}: {error_message(exc)}"
            )


def organization_annotation(problem: str) -> str:
    """The annotation of a rule left without OrganizationId: why, then :data:`ORGANIZATION_HINT`
    (kept whole within the 256 characters)."""
    room = 256 - len("; ") - len(ORGANIZATION_HINT)
    reason = problem if len(problem) <= room else problem[: room - 3] + "..."
    return f"{reason}; {ORGANIZATION_HINT}"


def describe_organization_id(session: boto3.Session, region: str) -> str:
    """The id of the organization the caller's account belongs to (Organizations DescribeOrganization).
    Raises on any failure (AWSOrganizationsNotInUseException: the account is in no organization); an
    id not shaped like one is a malformed response, not an id."""
    client = session.client("organizations", region_name=region, config=CLIENT_CONFIG)
    organization = response_field(client.describe_organization(), "Organization", "DescribeOrganization")
    found = str(response_field(organization, "Id", "DescribeOrganization"))
    if not re.fullmatch(ORGANIZATION_ID_PATTERN, found):
        raise MalformedConfigurationItem(
            f"Organization.Id {found[:40]!r} is not an organization id", operation="DescribeOrganization"
        )
    return found


@dataclass(frozen=True)
class AccountAccess:
    """How to reach one account: ``role_arn`` None means the caller's own credentials."""

    account_id: str
    role_arn: str | None = None


@dataclass(frozen=True)
class ReadyAccount:
    account_id: str
    credentials: Mapping[str, str] | None
    regions: tuple[str, ...]


@dataclass(frozen=True)
class AccountFailure:
    account_id: str
    regions: tuple[str, ...]
    failure: Failure
    advice: str


@dataclass(frozen=True)
class Unit:
    account: ReadyAccount
    region: str
    job: RuleJob


def role_arn(partition: str, account_id: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name.strip('/')}"


def default_workers(units: int) -> int:
    return max(1, min(MAX_WORKERS, units))


def organization_accounts(session: boto3.Session, region: str) -> list[str]:
    """IDs of the organization's ACTIVE accounts (Organizations ListAccounts, every page), sorted.

    ``State`` is read first: the ``Status`` field "will be retired on September 9, 2026" (botocore's
    organizations service model), so it is only the fallback for responses that still lack ``State``.
    An account with neither is a malformed response, not an account to skip."""
    client = session.client("organizations", region_name=region, config=CLIENT_CONFIG)
    found: set[str] = set()
    for page in client.get_paginator("list_accounts").paginate():
        for entry in response_field(page, "Accounts", "ListAccounts"):
            account_id = str(response_field(entry, "Id", "ListAccounts"))
            state = entry.get("State") or entry.get("Status")
            if not state:
                raise MalformedConfigurationItem(
                    f"account {account_id} has neither State nor Status", operation="ListAccounts"
                )
            if state == "ACTIVE":
                found.add(account_id)
    return sorted(found)


class SessionMaker:
    """Makes the boto3 sessions of a scan: :attr:`base` for the calling thread, and one more per worker
    thread (call the maker). They share two read-only things, so that a pool pays neither of them per
    thread: the credentials, resolved once (a profile's SSO login or role is not redone per thread;
    botocore's refreshable credentials refresh under their own lock), and the botocore data loader that
    caches parsed service models (building an EC2 client on a fresh session parses its model again:
    about half a second of GIL-bound CPU per thread, more than a small scan's own work)."""

    def __init__(self, profile: str | None = None) -> None:
        import botocore.loaders

        self._profile = profile
        self._loader = botocore.loaders.create_loader()
        self._lock = threading.Lock()
        self._credentials: Any = None
        self.base = self()
        self._credentials = self.base.get_credentials()

    def __call__(self) -> boto3.Session:
        import boto3
        import botocore.session

        with self._lock:  # boto3 appends its data path to the (shared) loader's search paths
            core = botocore.session.Session(profile=self._profile)
            core.register_component("data_loader", self._loader)
            if self._credentials is not None:
                core.register_component("credential_provider", _Resolved(self._credentials))
            session = boto3.Session(botocore_session=core)
            paths = self._loader.search_paths
            paths[:] = list(dict.fromkeys(paths))
            return session


class _Resolved:
    """A credential provider component that hands out credentials already resolved."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def load_credentials(self) -> Any:
        return self._credentials


class _PerThread:
    """One boto3 session per worker thread and, on it, one ClientFactory per (account, region)."""

    def __init__(self, new_session: Callable[[], boto3.Session]) -> None:
        self._new_session = new_session
        self._local = threading.local()

    def session(self) -> boto3.Session:
        session: boto3.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
            self._local.factories = {}
        return session

    def factory(self, account_id: str, credentials: Mapping[str, str] | None, region: str) -> ClientFactory:
        session = self.session()
        factories: dict[tuple[str, str], ClientFactory] = self._local.factories
        key = (account_id, region)
        found = factories.get(key)
        if found is None:
            found = ClientFactory(
                region=region, assume_role_mode=False, session=session, credentials=credentials
            )
            factories[key] = found
        return found


class UnitProgress:
    """A progress bar on stderr (drawn only when enabled): units done of all, resources, failures.
    Thread-safe; redrawn at most ten times a second."""

    WIDTH = 24

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self._lock = threading.Lock()
        self._label, self._total, self._done, self._rows, self._errors = "", 0, 0, 0, 0
        self._drawn = 0.0

    def start(self, label: str, total: int) -> None:
        with self._lock:
            self._label, self._total, self._done, self._rows, self._errors = label, total, 0, 0, 0
            self._draw(force=True)

    def advance(self, rows: Sequence[Row] = ()) -> None:
        with self._lock:
            self._done += 1
            self._rows += len(rows)
            self._errors += sum(1 for r in rows if r.compliance == ERROR)
            self._draw(force=self._done == self._total)

    def finish(self) -> None:
        with self._lock:
            if self.enabled:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        filled = self.WIDTH * self._done // self._total if self._total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\r  {self._label} [{bar}] {self._done}/{self._total}, {self._rows} results, "
            f"{self._errors} failed\033[K"
        )
        self.stream.flush()


def _map(fn: Callable[[T], R], items: Sequence[T], workers: int, progress: UnitProgress | None) -> list[R]:
    """``[fn(i) for i in items]`` in order, on ``workers`` threads (1: in this thread)."""

    def one(item: T) -> R:
        result = fn(item)
        if progress is not None:
            progress.advance(result if isinstance(result, list) else ())
        return result

    if workers <= 1 or len(items) <= 1:
        return [one(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="ml-guardrails-scan")
    try:
        futures = [pool.submit(one, item) for item in items]
        return [future.result() for future in futures]
    finally:
        # Interrupted (Ctrl-C) or done: units not started are cancelled, running ones end on their own.
        pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Plan:
    """What a scan covers: the accounts (each with how to reach it), the explicit regions (empty: every
    enabled region of each account), the region for STS / EC2 DescribeRegions, and the rules."""

    accounts: Sequence[AccountAccess]
    regions: Sequence[str]
    home_region: str
    jobs: Sequence[RuleJob]


class Scanner:
    """Runs a :class:`Plan`: phase 1 readies each account (role, regions), phase 2 sweeps the units.
    ``new_session`` makes one session per worker thread (a :class:`SessionMaker` in the CLI); ``workers``
    None means :func:`default_workers` of each phase's size."""

    def __init__(
        self,
        new_session: Callable[[], boto3.Session],
        workers: int | None = None,
        progress: UnitProgress | None = None,
    ) -> None:
        self._threads = _PerThread(new_session)
        self.workers = workers
        self.progress = progress

    # ---------------------------------------------------------------------------- phase 1: the accounts
    def prepare(self, plan: Plan, access: AccountAccess) -> ReadyAccount | AccountFailure:
        """Assume the account's role (if any) and list its enabled regions (if none were given)."""
        unknown_regions = tuple(plan.regions) or (ANY_REGION,)
        credentials: dict[str, str] | None = None
        if access.role_arn:
            try:
                sts = self._threads.factory("", None, plan.home_region).build_client("sts")
                creds = response_field(
                    sts.assume_role(
                        RoleArn=access.role_arn,
                        RoleSessionName=SESSION_NAME,
                        DurationSeconds=ASSUME_ROLE_SECONDS,
                    ),
                    "Credentials",
                    "AssumeRole",
                )
                credentials = {
                    "aws_access_key_id": str(response_field(creds, "AccessKeyId", "AssumeRole")),
                    "aws_secret_access_key": str(response_field(creds, "SecretAccessKey", "AssumeRole")),
                    "aws_session_token": str(response_field(creds, "SessionToken", "AssumeRole")),
                }
            except Exception as exc:
                return AccountFailure(
                    access.account_id,
                    unknown_regions,
                    Failure.from_exception(ACCOUNT_RESOURCE_TYPE, access.account_id, exc),
                    f"let this principal assume {access.role_arn} (its trust policy and sts:AssumeRole), "
                    "or leave the account out.",
                )
        if plan.regions:
            return ReadyAccount(access.account_id, credentials, tuple(plan.regions))
        try:
            ec2 = self._threads.factory(access.account_id, credentials, plan.home_region).build_client("ec2")
            listed = response_field(ec2.describe_regions(AllRegions=False), "Regions", "DescribeRegions")
            regions = sorted({str(response_field(r, "RegionName", "DescribeRegions")) for r in listed})
            if not regions:
                raise MalformedConfigurationItem("no region is enabled", operation="DescribeRegions")
        except Exception as exc:
            return AccountFailure(
                access.account_id,
                unknown_regions,
                Failure.from_exception(ACCOUNT_RESOURCE_TYPE, access.account_id, exc),
                "allow ec2:DescribeRegions, or name the regions with --region.",
            )
        return ReadyAccount(access.account_id, credentials, tuple(regions))

    # ------------------------------------------------------------------------------- phase 2: the units
    def run_unit(self, unit: Unit) -> list[Row]:
        account, region, job = unit.account, unit.region, unit.job
        if job.params is None:
            return [job.blocked_row(account.account_id, region)]
        try:
            clients = self._threads.factory(account.account_id, account.credentials, region)
            evaluations, failures = job.rule_class().run_sweep(clients, job.params)
        except Exception as exc:  # the sweep's own failures are caught by run_sweep; this is the rest
            evaluations = []
            failures = [Failure.from_exception(", ".join(job.rule_class.RESOURCE_TYPES), "*", exc)]
        rows = [
            Row(
                job.name,
                e.complianceResourceType,
                e.complianceResourceId,
                e.complianceType,
                e.annotation or "",
                account.account_id,
                region,
            )
            for e in evaluations
        ]
        rows.extend(failure_row(job.name, f, account.account_id, region) for f in failures)
        return rows

    def run(self, plan: Plan) -> list[Row]:
        """Every row of the plan, in plan order."""
        progress = self.progress
        needs_phase_one = any(a.role_arn for a in plan.accounts) or not plan.regions
        if needs_phase_one:
            if progress is not None:
                progress.start("accounts", len(plan.accounts))
            prepared = _map(
                lambda a: self.prepare(plan, a),
                list(plan.accounts),
                self.workers or default_workers(len(plan.accounts)),
                progress,
            )
        else:
            prepared = [ReadyAccount(a.account_id, None, tuple(plan.regions)) for a in plan.accounts]
        units: list[Unit] = []
        slots: list[AccountFailure | list[Unit]] = []
        for entry in prepared:
            if isinstance(entry, AccountFailure):
                slots.append(entry)
                continue
            mine = [Unit(entry, region, job) for region in entry.regions for job in plan.jobs]
            units.extend(mine)
            slots.append(mine)
        if progress is not None:
            progress.start("units", len(units))
        done = _map(self.run_unit, units, self.workers or default_workers(len(units)), progress)
        if progress is not None:
            progress.finish()
        by_unit = dict(zip((id(u) for u in units), done, strict=True))
        rows: list[Row] = []
        for slot in slots:
            if isinstance(slot, AccountFailure):
                rows.extend(_account_failure_rows(slot, plan.jobs))
            else:
                for unit in slot:
                    rows.extend(by_unit[id(unit)])
        return rows


def _account_failure_rows(failed: AccountFailure, jobs: Sequence[RuleJob]) -> list[Row]:
    """One ERROR row per rule and region the account would have been scanned in: each is a unit that
    did not run."""
    f = failed.failure
    head = f"Account not scanned: {f.operation} failed with {f.code}: "
    room = max(0, 256 - len(head) - len("; ") - len(failed.advice))
    note = f"{head}{f.message[:room]}; {failed.advice}"[:256]
    return [
        Row(job.name, ACCOUNT_RESOURCE_TYPE, failed.account_id, ERROR, note, failed.account_id, region)
        for region in failed.regions
        for job in jobs
    ]


# ------------------------------------------------------------------------------------------- the summary
@dataclass(frozen=True)
class SummaryLine:
    account: str
    region: str
    counts: Mapping[str, int]


def summarize(rows: Sequence[Row]) -> list[SummaryLine]:
    """Per account and region: how many rows are COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE, failed."""
    tally: dict[tuple[str, str], Counter[str]] = {}
    for row in rows:
        tally.setdefault((row.account, row.region), Counter())[row.compliance] += 1
    return [SummaryLine(account, region, dict(counts)) for (account, region), counts in sorted(tally.items())]


def render_summary(rows: Sequence[Row], stream: IO[str]) -> None:
    lines = summarize(rows)
    if not lines:
        return
    account_w = max(len("ACCOUNT"), *(len(line.account or "-") for line in lines))
    region_w = max(len("REGION"), *(len(line.region or "-") for line in lines))
    headers = (*COMPLIANCE_COLUMNS, "FAILED")
    stream.write(f"{'ACCOUNT':<{account_w}}  {'REGION':<{region_w}}  " + "  ".join(headers) + "\n")
    for line in lines:
        values = [line.counts.get(c, 0) for c in COMPLIANCE_COLUMNS] + [line.counts.get(ERROR, 0)]
        cells = "  ".join(f"{v:>{len(h)}}" for v, h in zip(values, headers, strict=True))
        stream.write(f"{line.account or '-':<{account_w}}  {line.region or '-':<{region_w}}  {cells}\n")


__all__ = [
    "ERROR",
    "ORGANIZATION_HINT",
    "SESSION_NAME",
    "AccountAccess",
    "OrganizationSource",
    "Plan",
    "Row",
    "RuleJob",
    "ScanResult",
    "Scanner",
    "SessionMaker",
    "UnitProgress",
    "default_workers",
    "describe_organization_id",
    "failure_row",
    "organization_accounts",
    "organization_annotation",
    "render_summary",
    "role_arn",
    "summarize",
]
