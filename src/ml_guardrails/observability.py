"""Structured logs and EMF metrics through Powertools, created lazily (cold starts pay only when used).

Logs go to stderr: in Lambda both streams reach CloudWatch Logs, and on the CLI stdout stays reserved
for the scan's output (``--format json`` prints nothing else there).
"""

from __future__ import annotations

import logging
import os
import sys
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

NAMESPACE = "MlGuardrails"
SERVICE = "ml-guardrails"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (test capture, CLI redirection)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _: object) -> None:
        pass


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    from aws_lambda_powertools import Logger

    level = os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO"
    return Logger(service=SERVICE, level=level, logger_handler=_StderrHandler())


def emit_metrics(rule_name: str, counts: dict[str, int]) -> None:
    """Publish one EMF document with ``counts`` (metric name -> count) for ``rule_name``.

    Only the Lambda handler calls this: EMF is printed to stdout, where CloudWatch extracts it.
    """
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE), service=SERVICE)
    metrics.add_dimension(name="RuleName", value=rule_name)
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
