"""``ml-guardrails runbook run|validate``: run an SSM Automation runbook locally, or validate runbooks.

``run FILE --param K=V ...`` runs the document against the standard AWS credential chain (or whatever
``AWS_ENDPOINT_URL`` points at, e.g. a moto server) and prints the step-by-step record. Exit codes: 0
the execution succeeded, 1 it failed (or timed out), 2 bad input (unreadable document, unknown or invalid
parameter, unsupported action, no region). ``validate FILE...`` exits 0 when every file is valid, 1 when
any has problems.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from ml_guardrails.runbooks.runner import Execution, RunbookError, run_runbook
from ml_guardrails.runbooks.validate import validate_runbook

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

__all__ = ["parse_params", "register", "render_execution"]


def register(subparsers: Any) -> None:
    """Add the ``runbook`` command (``run``, ``validate``) to an argparse ``add_subparsers()`` object."""
    p_runbook = subparsers.add_parser(
        "runbook", help="run an SSM Automation runbook locally, or validate runbooks"
    )
    sub = p_runbook.add_subparsers(dest="runbook_command", metavar="{run,validate}", required=True)

    p_run = sub.add_parser(
        "run",
        help="run a runbook locally against the current AWS credentials (or AWS_ENDPOINT_URL)",
        description="Run a schemaVersion 0.3 runbook step by step in this process. assumeRole is not "
        "assumed: the current credentials are the identity of every step.",
    )
    p_run.add_argument("file", type=Path, help="the runbook (.yaml)")
    p_run.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="K=V",
        help="a parameter value (repeatable); StringList as a,b,c or a JSON list, maps as JSON",
    )
    p_run.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p_run.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    p_run.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    p_run.set_defaults(func=_cmd_run)

    p_validate = sub.add_parser("validate", help="check runbooks for structural and API problems")
    p_validate.add_argument("files", type=Path, nargs="+", metavar="FILE", help="runbook(s) to check")
    p_validate.set_defaults(func=_cmd_validate)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["K=V", ...]`` as a parameter mapping. A key given twice becomes a list (a StringList)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RunbookError(f"--param {pair!r}: expected KEY=VALUE")
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    return params


def _cmd_run(args: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        params = parse_params(args.param)
        session = boto3.Session(region_name=args.region, profile_name=args.profile)
        execution = run_runbook(args.file, params, session)
    except (RunbookError, BotoCoreError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    if args.format == "json":
        json.dump(execution.to_dict(), out, indent=2)
        out.write("\n")
    else:
        render_execution(execution, out)
    return EXIT_OK if execution.status == "Success" else EXIT_FAILED


def render_execution(execution: Execution, out: IO[str]) -> None:
    """The execution as a human-readable step-by-step record."""
    out.write(f"Execution {execution.execution_id}  {execution.document_name or ''}\n")
    out.write(f"Status: {execution.status}\n")
    if execution.failure_message:
        out.write(f"Failure ({execution.failed_step}): {execution.failure_message}\n")
    out.write("\nSteps:\n")
    width = max((len(s.name) for s in execution.steps), default=4)
    for i, step in enumerate(execution.steps, 1):
        attempts = f" (attempts: {step.attempts})" if step.attempts > 1 else ""
        out.write(f"  {i:>2}. {step.name:<{width}}  {step.status:<9} {step.action}{attempts}\n")
        for key, value in step.outputs.items():
            out.write(f"        {key} = {json.dumps(value, default=str)}\n")
        if step.failure_message:
            out.write(f"        ! {step.failure_message}\n")
    if execution.outputs:
        out.write("\nOutputs:\n")
        for key, value in execution.outputs.items():
            out.write(f"  {key} = {json.dumps(value, default=str)}\n")


def _cmd_validate(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    code = EXIT_OK
    for path in args.files:
        problems = validate_runbook(path)
        if problems:
            code = EXIT_FAILED
            for problem in problems:
                out.write(f"{path}: {problem}\n")
        else:
            out.write(f"{path}: OK\n")
    return code
