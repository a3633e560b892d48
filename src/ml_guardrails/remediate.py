"""Remediation from the CLI: the runbook of every NON_COMPLIANT resource of a scan, run locally.

The plan binds each runbook's inputs exactly as AWS Config remediation would (``RESOURCE_ID`` and the
static values of the rule's ``Remediation`` in ``parameters.json``), plus operator overrides for the
values a deployment decides (a KMS key, a log destination). Runbooks run through the local runner
(:mod:`ml_guardrails.runbooks`) against the same session the scan used.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ml_guardrails import catalog
from ml_guardrails.cli import Row, ScanResult, load_parameters

if TYPE_CHECKING:
    import boto3

    from ml_guardrails.runbooks import Execution


@dataclass(frozen=True)
class PlannedRun:
    row: Row
    runbook: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    runs: list[PlannedRun]
    unremediable: list[Row]


def parse_overrides(items: Iterable[str], known_rules: Iterable[str]) -> dict[str, dict[str, str]]:
    """``RULE.Input=value`` strings -> {rule: {input: value}}."""
    known = set(known_rules)
    result: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        rule, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--set {item!r}: expected RULE.Input=value")
        if rule not in known:
            raise ValueError(f"--set {item!r}: unknown rule {rule}")
        result.setdefault(rule, {})[name] = value
    return result


def load_overrides(path: str | None, known_rules: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``--remediation-parameters``: rule name -> runbook inputs, in the same shape as ``--parameters``."""
    return load_parameters(path, known_rules)


def make_plan(
    result: ScanResult,
    resource_ids: Sequence[str] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """A runbook run for every NON_COMPLIANT row (only ``resource_ids`` when given)."""
    runs: list[PlannedRun] = []
    unremediable: list[Row] = []
    for row in result.rows:
        if row.compliance != "NON_COMPLIANT" or (resource_ids and row.resource_id not in resource_ids):
            continue
        remediation = catalog.get(row.rule).remediation
        if remediation is None:
            unremediable.append(row)
            continue
        parameters = remediation.parameters_for(row.resource_id)
        parameters.update((overrides or {}).get(row.rule, {}))
        runs.append(PlannedRun(row, remediation.target_id, parameters))
    return Plan(runs, unremediable)


def execute(plan: Plan, session: boto3.Session, region: str) -> list[tuple[PlannedRun, Execution]]:
    from ml_guardrails.runbooks import run_runbook

    done = []
    for run in plan.runs:
        path = catalog.data_dir("remediations") / f"{run.runbook}.yaml"
        done.append((run, run_runbook(path, run.parameters, session, region=region)))
    return done


def render_plan(plan: Plan, out: IO[str]) -> None:
    if not plan.runs and not plan.unremediable:
        out.write("Nothing to remediate: no NON_COMPLIANT resource.\n")
        return
    for run in plan.runs:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in sorted(run.parameters.items()))
        out.write(f"  {run.row.rule}  {run.row.resource_id}\n    -> {run.runbook}({shown})\n")
    for row in plan.unremediable:
        out.write(f"  {row.rule}  {row.resource_id}\n    -> no runbook: fix by hand ({row.annotation})\n")


def render_results(results: Sequence[tuple[PlannedRun, Execution]], out: IO[str]) -> None:
    for run, execution in results:
        out.write(f"  {execution.status:<8} {run.runbook}  {run.row.resource_id}\n")
        detail = execution.failure_message or outcome_message(execution)
        if detail:
            out.write(textwrap.indent(textwrap.fill(detail, 100), " " * 11) + "\n")


def outcome_message(execution: Execution) -> str | None:
    """The runbook's own account of what it did: its last ``Result``/``Message`` output."""
    messages = [
        str(value)
        for key, value in execution.outputs.items()
        if key.endswith((".Result", ".Message")) and value
    ]
    return messages[-1] if messages else None


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
