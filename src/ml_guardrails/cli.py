"""``ml-guardrails``: run the rules' periodic evaluators from a terminal.

``scan`` evaluates the account of the standard AWS credential chain (``AWS_PROFILE``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` are honoured by boto3 itself), in one or more regions, or
other accounts through a role (:mod:`ml_guardrails.scanning` runs the units concurrently); ``demo`` does
the same against an embedded moto account seeded with a bank's ML landscape; ``remediate`` runs the
runbooks of a scan's findings; ``doctor`` (:mod:`ml_guardrails.doctor`) checks that AWS Config and the
deployed rules are ready. Exit codes: 0 every evaluated resource compliant (or not applicable), 1
findings, 2 error (bad parameters, a resource, region or account that could not be evaluated, no region).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any

from rdklib import InvalidParametersError

from ml_guardrails import __version__, catalog
from ml_guardrails.aws import CLIENT_CONFIG, ClientFactory, error_code, error_message
from ml_guardrails.engine import Outcome
from ml_guardrails.params import StringParameter
from ml_guardrails.scanning import (
    ERROR,
    MAX_WORKERS,
    ORGANIZATION_ID_PATTERN,
    ORGANIZATION_PARAMETER,
    AccountAccess,
    OrganizationSource,
    Plan,
    Row,
    RuleJob,
    Scanner,
    ScanResult,
    SessionMaker,
    UnitProgress,
    describe_organization_id,
    failure_row,
    organization_accounts,
    organization_annotation,
    render_summary,
    role_arn,
)

if TYPE_CHECKING:
    import boto3

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
ORGANIZATION_ID = StringParameter(
    ORGANIZATION_PARAMETER,
    "The AWS Organizations id given to every rule that declares OrganizationId.",
    pattern=ORGANIZATION_ID_PATTERN,
    what="an AWS Organizations id (o- followed by 10-32 lower-case letters or digits)",
)


class Progress:
    """A one-line progress indicator on stderr, shown only on a terminal (or when forced)."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream, self.enabled, self.count = stream, enabled, 0
        self.label = ""

    def start(self, label: str) -> None:
        self.label, self.count = label, 0
        self._draw()

    def tick(self, _: Outcome) -> None:
        self.count += 1
        if self.count % 10 == 0:
            self._draw()

    def done(self) -> None:
        if self.enabled:
            self.stream.write(f"\r  {self.label}: {self.count} resources evaluated\033[K\n")
            self.stream.flush()

    def _draw(self) -> None:
        if self.enabled:
            self.stream.write(f"\r  {self.label}: {self.count} resources ...\033[K")
            self.stream.flush()


def load_parameters(path: str | None, known: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The ``--parameters`` file: a JSON object of rule name -> parameters object."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise ValueError(f"{path}: must be a JSON object mapping rule names to parameter objects")
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown rule {unknown[0]}; known: {', '.join(sorted(known))}")
    return doc


def rule_jobs(
    rule_names: Sequence[str] = (),
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    organization: OrganizationSource | None = None,
) -> tuple[list[RuleJob], list[str]]:
    """The selected rules (all by default) with validated parameters, and the errors of those without.

    A rule that declares ``OrganizationId`` and was given none (or a blank one) in ``parameters`` gets
    ``organization``'s. When that is unknown, a rule that requires it becomes a blocked job (ERROR rows
    saying what to pass), never a skipped one; an explicit value in ``parameters`` always wins."""
    specs = catalog.discover()
    if rule_names:
        known = {s.name for s in specs}
        missing = [n for n in rule_names if n not in known]
        if missing:
            return [], [f"unknown rule {missing[0]}; known: {', '.join(sorted(known))}"]
        specs = tuple(s for s in specs if s.name in set(rule_names))
    jobs: list[RuleJob] = []
    errors: list[str] = []
    for spec in specs:
        rule_class = spec.rule_class()
        values = dict((parameters or {}).get(spec.name, {}))
        declared = next((p for p in rule_class.PARAMETERS if p.name == ORGANIZATION_PARAMETER), None)
        given = values.get(ORGANIZATION_PARAMETER)
        if declared is not None and (given is None or (isinstance(given, str) and not given.strip())):
            org_id, problem = (organization or OrganizationSource()).resolve()
            if org_id:
                values[ORGANIZATION_PARAMETER] = org_id
            elif declared.required:
                jobs.append(RuleJob(spec.name, rule_class, None, organization_annotation(problem)))
                continue
        try:
            params = rule_class().evaluate_parameters(values)
        except InvalidParametersError as exc:
            errors.append(f"{spec.name}: invalid parameters: {exc}")
            continue
        jobs.append(RuleJob(spec.name, rule_class, params))
    return jobs, errors


def scan(
    session: boto3.Session,
    region: str,
    rule_names: Sequence[str] = (),
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
    *,
    organization: OrganizationSource | None = None,
) -> ScanResult:
    """Evaluate each selected rule's periodic path against ``session`` in ``region``, one after the other
    (the library entry point of ``demo`` and ``remediate``; ``scan`` on the command line fans out).
    ``organization`` supplies OrganizationId as in :func:`rule_jobs` (default: none, nothing discovered)."""
    jobs, errors = rule_jobs(rule_names, parameters, organization)
    rows: list[Row] = []
    for job in jobs:
        if job.params is None:
            rows.append(job.blocked_row(region=region))
            continue
        clients = ClientFactory(region=region, assume_role_mode=False, session=session)
        tick: Callable[[Outcome], None] | None = None
        if progress is not None:
            progress.start(job.name)
            tick = progress.tick
        evaluations, failures = job.rule_class().run_sweep(clients, job.params, on_outcome=tick)
        if progress is not None:
            progress.done()
        rows.extend(
            Row(
                job.name,
                e.complianceResourceType,
                e.complianceResourceId,
                e.complianceType,
                e.annotation or "",
                region=region,
            )
            for e in evaluations
        )
        rows.extend(failure_row(job.name, f, region=region) for f in failures)
    return ScanResult(rows, errors)


def render_table(rows: Sequence[Row], stream: IO[str]) -> None:
    """The rows as a table; led by an ACCOUNT/REGION column when they come from more than one of those."""
    width = max(100, min(shutil.get_terminal_size((140, 24)).columns, 200))
    multi = len({(r.account, r.region) for r in rows}) > 1
    where_w = max([len("ACCOUNT/REGION"), *(len(_where(r)) for r in rows)]) if multi else 0
    lead = where_w + 2 if multi else 0
    rule_w = max([len("RULE"), *(len(r.rule) for r in rows)])
    res_w = min(max([len("RESOURCE"), *(len(r.resource_id) for r in rows)]), 40)
    comp_w = len("NOT_APPLICABLE")
    note_w = max(30, width - lead - rule_w - res_w - comp_w - 6)
    if multi:
        stream.write(f"{'ACCOUNT/REGION':<{where_w}}  ")
    stream.write(f"{'RULE':<{rule_w}}  {'RESOURCE':<{res_w}}  {'COMPLIANCE':<{comp_w}}  ANNOTATION\n")
    if multi:
        stream.write(f"{'-' * where_w}  ")
    stream.write(f"{'-' * rule_w}  {'-' * res_w}  {'-' * comp_w}  {'-' * min(note_w, 60)}\n")

    def key(r: Row) -> tuple[str, str, str, int, str]:
        return (r.account, r.region, r.rule, _order(r.compliance), r.resource_id)

    for row in sorted(rows, key=key):
        resource = (
            row.resource_id if len(row.resource_id) <= res_w else "..." + row.resource_id[-(res_w - 3) :]
        )
        lines = textwrap.wrap(row.annotation, note_w) or [""]
        if multi:
            stream.write(f"{_where(row):<{where_w}}  ")
        stream.write(f"{row.rule:<{rule_w}}  {resource:<{res_w}}  {row.compliance:<{comp_w}}  {lines[0]}\n")
        indent = " " * (lead + rule_w + res_w + comp_w + 6)
        for line in lines[1:]:
            stream.write(f"{indent}{line}\n")


def _where(row: Row) -> str:
    return f"{row.account or '-'}/{row.region or '-'}"


def _order(compliance: str) -> int:
    return {ERROR: 0, "NON_COMPLIANT": 1, "COMPLIANT": 2, "NOT_APPLICABLE": 3}.get(compliance, 4)


def summary_line(result: ScanResult) -> str:
    counts = Counter(r.compliance for r in result.rows)
    rules = len({r.rule for r in result.rows})
    return (
        f"{len(result.rows)} evaluations by {rules} rules: {counts['COMPLIANT']} compliant, "
        f"{counts['NON_COMPLIANT']} non-compliant, {counts['NOT_APPLICABLE']} not applicable, "
        f"{counts[ERROR] + len(result.errors)} errors"
    )


def emit(result: ScanResult, fmt: str, out: IO[str], err: IO[str], per_account: bool = False) -> int:
    """Print the result; ``per_account`` adds the per account & region summary (after the table, or on
    ``err`` with JSON so that ``out`` holds nothing but the JSON array)."""
    for message in result.errors:
        err.write(f"error: {message}\n")
    if fmt == "json":
        json.dump([asdict(r) for r in result.rows], out, indent=2)
        out.write("\n")
        if per_account:
            render_summary(result.rows, err)
    else:
        render_table(result.rows, out)
        if per_account:
            out.write("\n")
            render_summary(result.rows, out)
        out.write("\n" + summary_line(result) + "\n")
    return result.exit_code


def _session(args: argparse.Namespace) -> tuple[boto3.Session, str] | None:
    """The standard credential chain (or ``--profile``) and the region; None, reported, without a region."""
    import boto3

    session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    region = args.region or session.region_name
    if not region:
        sys.stderr.write("error: no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION\n")
        return None
    return session, region


def _cmd_scan(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError

    problem = _scan_usage_problem(args)
    if problem:
        sys.stderr.write(f"error: {problem}\n")
        return EXIT_ERROR
    try:
        sessions = SessionMaker(args.profile)
    except BotoCoreError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    base = sessions.base
    regions = list(dict.fromkeys(args.region or ()))
    home = base.region_name or (regions[0] if regions else None)
    if not home:
        sys.stderr.write("error: no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION\n")
        return EXIT_ERROR
    if not regions and not args.all_regions:
        regions = [home]
    try:
        parameters = load_parameters(args.parameters, [s.name for s in catalog.discover()])
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"error: --parameters: {exc}\n")
        return EXIT_ERROR
    jobs, errors = rule_jobs(args.rule or (), parameters, _organization(args, base, home))
    if not jobs:
        return emit(ScanResult([], errors), args.format, sys.stdout, sys.stderr)
    accounts = _accounts(args, base, home)
    if accounts is None:
        return EXIT_ERROR
    enabled = args.progress if args.progress is not None else sys.stderr.isatty()
    scanner = Scanner(sessions, args.workers, UnitProgress(sys.stderr, enabled=enabled))
    rows = scanner.run(Plan(accounts, regions, home, jobs))
    return emit(ScanResult(rows, errors), args.format, sys.stdout, sys.stderr, per_account=True)


def _organization(args: argparse.Namespace, session: boto3.Session, region: str) -> OrganizationSource:
    """``--organization-id``, else the caller's organization (DescribeOrganization, asked only when a
    selected rule needs it)."""
    return OrganizationSource(args.organization_id, lambda: describe_organization_id(session, region))


def _scan_usage_problem(args: argparse.Namespace) -> str | None:
    if args.all_regions and args.region:
        return "--all-regions and --region exclude each other"
    if (args.account or args.organization) and not args.role_name:
        return "--account and --organization need --role-name: the role to assume in each account"
    if args.role_name and not (args.account or args.organization):
        return "--role-name needs the accounts to scan: --account ID (repeatable) or --organization"
    if args.workers is not None and args.workers < 1:
        return "--workers must be at least 1"
    return None


def _accounts(args: argparse.Namespace, base: boto3.Session, home: str) -> list[AccountAccess] | None:
    """The accounts to scan; None (reported) when the organization's accounts cannot be listed."""
    if not args.role_name:
        return [AccountAccess(_own_account_id(base, home))]
    if args.organization:
        try:
            ids = organization_accounts(base, home)
        except Exception as exc:
            sys.stderr.write(
                f"error: cannot list the organization's accounts ({error_code(exc)}: {error_message(exc)}); "
                "run from the management account or a delegated administrator with "
                "organizations:ListAccounts, or name the accounts with --account\n"
            )
            return None
    else:
        ids = list(dict.fromkeys(args.account))
    partition = base.get_partition_for_region(home)
    return [AccountAccess(i, role_arn(partition, i, args.role_name)) for i in ids]


def _own_account_id(session: boto3.Session, region: str) -> str:
    """The caller's account ID, only a label on the rows: when STS cannot say, the rows carry "" and
    the scan goes on (its own calls fail, and are reported, if the credentials are the problem)."""
    from botocore.config import Config

    config = CLIENT_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 2}))
    try:
        sts = session.client("sts", region_name=region, config=config)
        return str(sts.get_caller_identity()["Account"])
    except Exception as exc:
        sys.stderr.write(
            f"warning: could not read the account ID ({error_code(exc)}); rows carry an empty account\n"
        )
        return ""


def _organization_id(value: str) -> str:
    try:
        parsed: str = ORGANIZATION_ID.parse(value)
    except InvalidParametersError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return parsed


def _account_id(value: str) -> str:
    if not ACCOUNT_ID.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 12-digit AWS account ID")
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _cmd_demo(args: argparse.Namespace) -> int:
    from ml_guardrails.demo import run as run_demo

    return run_demo(args.format, sys.stdout, sys.stderr, remediate=not args.scan_only)


def _cmd_remediate(args: argparse.Namespace) -> int:
    from ml_guardrails import remediate

    found = _session(args)
    if found is None:
        return EXIT_ERROR
    session, region = found
    names = [s.name for s in catalog.discover()]
    try:
        parameters = load_parameters(args.parameters, names)
        overrides = remediate.load_overrides(args.remediation_parameters, names)
        for rule, values in remediate.parse_overrides(args.set or (), names).items():
            overrides.setdefault(rule, {}).update(values)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    progress = Progress(sys.stderr, enabled=not args.no_progress and sys.stderr.isatty())
    organization = _organization(args, session, region)
    before = scan(session, region, args.rule or (), parameters, progress, organization=organization)
    unevaluated = [r for r in before.rows if r.compliance == ERROR]
    if before.errors or unevaluated:
        emit(before, "table", sys.stderr, sys.stderr)
        sys.stderr.write("error: the scan could not evaluate everything; fix that before remediating\n")
        for row in unevaluated:  # unwrapped, so that each says in one line what to do
            sys.stderr.write(f"  {row.rule} {row.resource_id}: {row.annotation}\n")
        return EXIT_ERROR
    plan = remediate.make_plan(before, args.resource_id or (), overrides)
    sys.stdout.write(f"Remediation plan ({len(plan.runs)} runbook runs):\n")
    remediate.render_plan(plan, sys.stdout)
    if args.dry_run or not plan.runs:
        return EXIT_OK if not plan.unremediable else EXIT_FINDINGS
    if not args.yes:
        if not sys.stdin.isatty():
            sys.stderr.write("error: not a terminal: pass --yes to run the runbooks without confirmation\n")
            return EXIT_ERROR
        answer = input(f"Run {len(plan.runs)} runbooks against {region}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            sys.stderr.write("cancelled: nothing changed\n")
            return EXIT_ERROR
    results = remediate.execute(plan, session, region)
    sys.stdout.write("\nRunbook results:\n")
    remediate.render_results(results, sys.stdout)
    after = scan(session, region, args.rule or (), parameters, organization=organization)
    sys.stdout.write("\nAfter remediation:\n")
    code = emit(after, args.format, sys.stdout, sys.stderr)
    failed = any(execution.status != "Success" for _, execution in results)
    return EXIT_ERROR if failed else code


def _cmd_rules(args: argparse.Namespace) -> int:
    for spec in catalog.discover():
        rule_class = spec.rule_class()
        # The rule's own types: a periodic-only rule has no SourceEvents, and evaluates AWS::::Account.
        scope = ", ".join(rule_class.RESOURCE_TYPES)
        if not spec.resource_types:
            scope += "; periodic only"
        sys.stdout.write(f"{spec.name}  ({scope})\n  {spec.description}\n")
        required = {p.name for p in rule_class.PARAMETERS if p.required}
        for name, default in {**spec.input_parameters, **spec.optional_parameters}.items():
            if name == ORGANIZATION_PARAMETER and name in required:
                shown = " (required: --organization-id, or the caller's organization)"
            elif name in required:
                shown = " (required)"  # parameters.json's value is a placeholder, never used
            else:
                shown = f" = {default}" if default else ""
            sys.stdout.write(f"    {name}{shown}\n")
    return EXIT_OK


def _add_organization_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--organization-id",
        type=_organization_id,
        metavar="o-...",
        help="OrganizationId of every rule that declares it, unless --parameters sets one (default: the "
        "caller's organization, Organizations DescribeOrganization)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-guardrails", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_scan = sub.add_parser(
        "scan", help="evaluate the rules against the account of the AWS credential chain (or many accounts)"
    )
    p_scan.add_argument("--rule", action="append", metavar="NAME", help="only this rule (repeatable)")
    p_scan.add_argument("--parameters", metavar="FILE", help="JSON: rule name -> parameters object")
    _add_organization_id(p_scan)
    p_scan.add_argument("--format", choices=("table", "json"), default="table")
    p_scan.add_argument(
        "--region",
        action="append",
        metavar="REGION",
        help="AWS region (repeatable; default: AWS_REGION / AWS_DEFAULT_REGION / profile)",
    )
    p_scan.add_argument(
        "--all-regions",
        action="store_true",
        help="every region each account has enabled (EC2 DescribeRegions; denied: the account fails)",
    )
    p_scan.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    p_scan.add_argument(
        "--role-name",
        metavar="ROLE",
        help="assume this role in each account (arn:<partition>:iam::<id>:role/ROLE)",
    )
    targets = p_scan.add_mutually_exclusive_group()
    targets.add_argument(
        "--account", action="append", type=_account_id, metavar="ID", help="scan this account (repeatable)"
    )
    targets.add_argument(
        "--organization",
        action="store_true",
        help="scan every ACTIVE account of the organization (Organizations ListAccounts)",
    )
    p_scan.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help=f"concurrent units (account x region x rule); default min({MAX_WORKERS}, units); 1: sequential",
    )
    p_scan.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )
    p_scan.set_defaults(func=_cmd_scan)

    p_demo = sub.add_parser("demo", help="scan an embedded moto account seeded with a bank's ML landscape")
    p_demo.add_argument("--format", choices=("table", "json"), default="table")
    p_demo.add_argument("--scan-only", action="store_true", help="act 1 only: scan, do not remediate")
    p_demo.set_defaults(func=_cmd_demo)

    p_fix = sub.add_parser("remediate", help="run the runbook of every NON_COMPLIANT resource, then rescan")
    p_fix.add_argument("--rule", action="append", metavar="NAME", help="only this rule (repeatable)")
    p_fix.add_argument("--resource-id", action="append", metavar="ID", help="only this resource (repeatable)")
    p_fix.add_argument("--parameters", metavar="FILE", help="rule parameters for the scan, as for scan")
    _add_organization_id(p_fix)
    p_fix.add_argument(
        "--remediation-parameters", metavar="FILE", help="JSON: rule name -> runbook inputs (e.g. a KMS key)"
    )
    p_fix.add_argument(
        "--set", action="append", metavar="RULE.Input=VALUE", help="one runbook input (repeatable)"
    )
    p_fix.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p_fix.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p_fix.add_argument("--format", choices=("table", "json"), default="table", help="format of the rescan")
    p_fix.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    p_fix.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    p_fix.add_argument("--no-progress", action="store_true", help="no progress indicator on stderr")
    p_fix.set_defaults(func=_cmd_remediate)

    from ml_guardrails.runbooks.cli import register as register_runbook_commands

    register_runbook_commands(sub)

    from ml_guardrails.doctor import register as register_doctor

    register_doctor(sub)

    p_rules = sub.add_parser("rules", help="list the rules and their parameters")
    p_rules.set_defaults(func=_cmd_rules)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except catalog.CatalogError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["Row", "ScanResult", "main", "scan"]
