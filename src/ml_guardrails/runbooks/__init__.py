"""SSM Automation runbooks, locally: a runner (moto or a real account through any boto3 Session) and a
validator for ``remediations/*.yaml``.

    from ml_guardrails.runbooks import run_runbook, load_runbook, Execution, StepExecution, RunbookError
"""

from __future__ import annotations

from ml_guardrails.runbooks.runner import (
    Clock,
    Execution,
    FakeClock,
    RunbookError,
    StepExecution,
    SystemClock,
    load_runbook,
    resolve_parameters,
    run_runbook,
)
from ml_guardrails.runbooks.validate import validate_runbook

__all__ = [
    "Clock",
    "Execution",
    "FakeClock",
    "RunbookError",
    "StepExecution",
    "SystemClock",
    "load_runbook",
    "resolve_parameters",
    "run_runbook",
    "validate_runbook",
]
