"""``ml-guardrails``: run the rules' periodic evaluators from a terminal.

``scan`` evaluates the account of the standard AWS credential chain (``AWS_PROFILE``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` are honoured by boto3 itself); ``demo`` does the same
against an embedded moto account seeded with a bank's ML landscape. Exit codes: 0 every evaluated
resource compliant (or not applicable), 1 findings, 2 error (bad parameters, a resource that could not be
evaluated, no region).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any

from rdklib import InvalidParametersError

from ml_guardrails import __version__, catalog
from ml_guardrails.aws import ClientFactory
from ml_guardrails.engine import Failure, Outcome

if TYPE_CHECKING:
    import boto3

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
ERROR = "ERROR"


@dataclass(frozen=True)
class Row:
    """One line of a scan's result. ``compliance`` is COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE or ERROR
    (the resource could not be evaluated; ``annotation`` says why)."""

    rule: str
    resource_type: str
    resource_id: str
    compliance: str
    annotation: str


@dataclass
class ScanResult:
    rows: list[Row]
    errors: list[str]

    @property
    def exit_code(self) -> int:
        if self.errors or any(r.compliance == ERROR for r in self.rows):
            return EXIT_ERROR
        if any(r.compliance == "NON_COMPLIANT" for r in self.rows):
            return EXIT_FINDINGS
        return EXIT_OK


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


def scan(
    session: boto3.Session,
    region: str,
    rule_names: Sequence[str] = (),
    parameters: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> ScanResult:
    """Evaluate each selected rule's periodic path against ``session`` in ``region``."""
    specs = catalog.discover()
    if rule_names:
        known = {s.name for s in specs}
        missing = [n for n in rule_names if n not in known]
        if missing:
            return ScanResult([], [f"unknown rule {missing[0]}; known: {', '.join(sorted(known))}"])
        specs = tuple(s for s in specs if s.name in set(rule_names))
    rows: list[Row] = []
    errors: list[str] = []
    for spec in specs:
        rule = spec.rule_class()()
        try:
            params = rule.evaluate_parameters(dict((parameters or {}).get(spec.name, {})))
        except InvalidParametersError as exc:
            errors.append(f"{spec.name}: invalid parameters: {exc}")
            continue
        clients = ClientFactory(region=region, assume_role_mode=False, session=session)
        tick: Callable[[Outcome], None] | None = None
        if progress is not None:
            progress.start(spec.name)
            tick = progress.tick
        evaluations, failures = rule.run_sweep(clients, params, on_outcome=tick)
        if progress is not None:
            progress.done()
        rows.extend(
            Row(
                spec.name,
                e.complianceResourceType,
                e.complianceResourceId,
                e.complianceType,
                e.annotation or "",
            )
            for e in evaluations
        )
        rows.extend(_failure_row(spec.name, f) for f in failures)
    return ScanResult(rows, errors)


def _failure_row(rule: str, failure: Failure) -> Row:
    return Row(
        rule,
        failure.resource_type,
        failure.resource_id,
        ERROR,
        f"Could not evaluate: {failure.operation} failed with {failure.code}: {failure.message}"[:256],
    )


def render_table(rows: Sequence[Row], stream: IO[str]) -> None:
    width = max(100, min(shutil.get_terminal_size((140, 24)).columns, 200))
    rule_w = max([len("RULE"), *(len(r.rule) for r in rows)])
    res_w = min(max([len("RESOURCE"), *(len(r.resource_id) for r in rows)]), 40)
    comp_w = len("NOT_APPLICABLE")
    note_w = max(30, width - rule_w - res_w - comp_w - 6)
    stream.write(f"{'RULE':<{rule_w}}  {'RESOURCE':<{res_w}}  {'COMPLIANCE':<{comp_w}}  ANNOTATION\n")
    stream.write(f"{'-' * rule_w}  {'-' * res_w}  {'-' * comp_w}  {'-' * min(note_w, 60)}\n")
    for row in sorted(rows, key=lambda r: (r.rule, _order(r.compliance), r.resource_id)):
        resource = (
            row.resource_id if len(row.resource_id) <= res_w else "..." + row.resource_id[-(res_w - 3) :]
        )
        lines = textwrap.wrap(row.annotation, note_w) or [""]
        stream.write(f"{row.rule:<{rule_w}}  {resource:<{res_w}}  {row.compliance:<{comp_w}}  {lines[0]}\n")
        indent = " " * (rule_w + res_w + comp_w + 6)
        for line in lines[1:]:
            stream.write(f"{indent}{line}\n")


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


def emit(result: ScanResult, fmt: str, out: IO[str], err: IO[str]) -> int:
    for message in result.errors:
        err.write(f"error: {message}\n")
    if fmt == "json":
        json.dump([asdict(r) for r in result.rows], out, indent=2)
        out.write("\n")
    else:
        render_table(result.rows, out)
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
    found = _session(args)
    if found is None:
        return EXIT_ERROR
    session, region = found
    specs = catalog.discover()
    try:
        parameters = load_parameters(args.parameters, [s.name for s in specs])
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"error: --parameters: {exc}\n")
        return EXIT_ERROR
    progress = Progress(sys.stderr, enabled=not args.no_progress and sys.stderr.isatty())
    result = scan(session, region, args.rule or (), parameters, progress)
    return emit(result, args.format, sys.stdout, sys.stderr)


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
    before = scan(session, region, args.rule or (), parameters, progress)
    if before.errors or any(r.compliance == ERROR for r in before.rows):
        emit(before, "table", sys.stderr, sys.stderr)
        sys.stderr.write("error: the scan could not evaluate everything; fix that before remediating\n")
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
    after = scan(session, region, args.rule or (), parameters)
    sys.stdout.write("\nAfter remediation:\n")
    code = emit(after, args.format, sys.stdout, sys.stderr)
    failed = any(execution.status != "Success" for _, execution in results)
    return EXIT_ERROR if failed else code


def _cmd_rules(args: argparse.Namespace) -> int:
    for spec in catalog.discover():
        sys.stdout.write(f"{spec.name}  ({', '.join(spec.resource_types)})\n  {spec.description}\n")
        for name, default in {**spec.input_parameters, **spec.optional_parameters}.items():
            sys.stdout.write(f"    {name}" + (f" = {default}" if default else "") + "\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-guardrails", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_scan = sub.add_parser("scan", help="evaluate the rules against the account of the AWS credential chain")
    p_scan.add_argument("--rule", action="append", metavar="NAME", help="only this rule (repeatable)")
    p_scan.add_argument("--parameters", metavar="FILE", help="JSON: rule name -> parameters object")
    p_scan.add_argument("--format", choices=("table", "json"), default="table")
    p_scan.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    p_scan.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    p_scan.add_argument("--no-progress", action="store_true", help="no progress indicator on stderr")
    p_scan.set_defaults(func=_cmd_scan)

    p_demo = sub.add_parser("demo", help="scan an embedded moto account seeded with a bank's ML landscape")
    p_demo.add_argument("--format", choices=("table", "json"), default="table")
    p_demo.add_argument("--scan-only", action="store_true", help="act 1 only: scan, do not remediate")
    p_demo.set_defaults(func=_cmd_demo)

    p_fix = sub.add_parser("remediate", help="run the runbook of every NON_COMPLIANT resource, then rescan")
    p_fix.add_argument("--rule", action="append", metavar="NAME", help="only this rule (repeatable)")
    p_fix.add_argument("--resource-id", action="append", metavar="ID", help="only this resource (repeatable)")
    p_fix.add_argument("--parameters", metavar="FILE", help="rule parameters for the scan, as for scan")
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
