"""API-call counts, taken from botocore's event system on the clients the rules build.

A ``before-call`` handler registered on the session sees every API call of every client the session
builds (the engine's :class:`~ml_guardrails.aws.ClientFactory` builds its clients from the session), once
per call: botocore's retries happen below it, so a retried call still counts once.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from benchmarks import landscape
from ml_guardrails.catalog import get
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import change_event, scheduled_event

PUT_EVALUATIONS = "config.PutEvaluations"
# The engine's own parameters for a benchmark run: the function's own role (no sts:AssumeRole call).
LOCAL = {"AssumeRoleMode": "false"}
# Per-resource reads a periodic sweep cannot avoid: AWS has no batch form of these APIs.
UNBATCHABLE: dict[str, frozenset[str]] = {
    "KMS_CMK_ROTATION_ENABLED": frozenset({"kms.DescribeKey", "kms.GetKeyRotationStatus"}),
    "S3_BUCKET_SSE_KMS_ENFORCED": frozenset({"s3.GetBucketEncryption"}),
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": frozenset({"sagemaker.DescribeNotebookInstance"}),
    "VPC_FLOW_LOGS_ENABLED": frozenset(),
}


class CallCounter:
    """Counts API calls by ``service.Operation`` on every client of ``session``."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: Counter[str] = Counter()
        session.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def reads(self) -> Counter[str]:
        """Every call but PutEvaluations (the reads the evaluation needed)."""
        return Counter({k: v for k, v in self.calls.items() if k != PUT_EVALUATIONS})


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The handler's logs (stderr) and EMF metrics (stdout) are not the benchmark's output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _counted_session(region: str) -> tuple[boto3.Session, CallCounter]:
    session = boto3.Session(region_name=region)
    return session, CallCounter(session)


# ------------------------------------------------------------------------------ change trigger
@dataclass(frozen=True)
class ChangeCase:
    rule: str
    case: str
    params: dict[str, Any]
    item: Callable[[boto3.Session], dict[str, Any]]
    target: int  # at most this many reads
    exact: bool = True  # the facts need exactly ``target`` reads


def change_cases() -> list[ChangeCase]:
    kms, s3 = "KMS_CMK_ROTATION_ENABLED", "S3_BUCKET_SSE_KMS_ENFORCED"
    vpc, sm = "VPC_FLOW_LOGS_ENABLED", "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"
    return [
        ChangeCase(kms, "KeyRotationStatus in the CI", {}, landscape.kms_item, 0),
        ChangeCase(
            kms,
            "KeyRotationStatus in the CI, MaxRotationPeriodInDays set",
            {"MaxRotationPeriodInDays": "365"},
            landscape.kms_item,
            1,
        ),
        ChangeCase(kms, "no KeyRotationStatus in the CI", {}, lambda s: landscape.kms_item(s, False), 1),
        ChangeCase(s3, "SSE-S3 (decided by the CI)", {}, lambda s: landscape.s3_item(None, "AES256"), 0),
        ChangeCase(
            s3,
            "SSE-KMS key ARN, RequireCustomerManagedKey false",
            {"RequireCustomerManagedKey": "false"},
            lambda s: landscape.s3_item(landscape.first_key_arn(s)),
            0,
        ),
        ChangeCase(
            s3,
            "SSE-KMS key ARN, customer key required (KeyManager)",
            {},
            lambda s: landscape.s3_item(landscape.first_key_arn(s)),
            1,
        ),
        ChangeCase(vpc, "any VPC", {}, landscape.vpc_item, 1),
        ChangeCase(
            sm,
            "direct internet access (decided by the CI)",
            {},
            lambda s: landscape.notebook_item(s, False),
            0,
        ),
        ChangeCase(sm, "in a subnet, network-path check", {}, landscape.notebook_item, 2, exact=False),
    ]


@dataclass
class ChangeResult:
    rule: str
    case: str
    calls: dict[str, int]
    target: int
    exact: bool
    compliance: str

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def met(self) -> bool:
        return self.total == self.target if self.exact else self.total <= self.target


def change_calls(session: boto3.Session, cases: list[ChangeCase] | None = None) -> list[ChangeResult]:
    """Evaluate each change case through the Lambda handler and count the reads it makes (the
    PutEvaluations that posts the verdict is not a read). ``session`` (its region, its landscape) only
    builds the configuration items; the handler runs on a fresh session with the counter."""
    region = str(session.region_name)
    results: list[ChangeResult] = []
    for case in cases or change_cases():
        rule = get(case.rule).rule_class()()
        item = case.item(session)
        counted, counter = _counted_session(region)
        with quiet():
            records = handle(rule, change_event(item, {**LOCAL, **case.params}), session=counted)
        results.append(
            ChangeResult(
                case.rule,
                case.case,
                dict(counter.reads()),
                case.target,
                case.exact,
                str(records[0]["ComplianceType"]) if records else "",
            )
        )
    return results


# ------------------------------------------------------------------------------- periodic sweep
@dataclass
class SweepResult:
    rule: str
    region: str
    evaluated: int
    calls: dict[str, int]
    failures: int = 0
    per_resource_ops: list[str] = field(default_factory=list)

    @property
    def put_evaluations(self) -> int:
        return self.calls.get(PUT_EVALUATIONS, 0)

    @property
    def reads(self) -> int:
        return sum(v for k, v in self.calls.items() if k != PUT_EVALUATIONS)

    @property
    def reads_per_resource(self) -> float:
        return self.reads / max(self.evaluated, 1)

    @property
    def batched_reads(self) -> int:
        """Reads not made once per resource: list/describe pages and region-wide reads."""
        return self.reads - sum(self.calls.get(op, 0) for op in self.per_resource_ops)

    @property
    def put_evaluations_expected(self) -> int:
        return math.ceil(self.evaluated / 100)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "region": self.region,
            "evaluated": self.evaluated,
            "failures": self.failures,
            "calls": dict(sorted(self.calls.items())),
            "reads_per_resource": round(self.reads_per_resource, 4),
            "per_resource_ops": self.per_resource_ops,
            "batched_reads": self.batched_reads,
            "put_evaluations": self.put_evaluations,
            "put_evaluations_expected": self.put_evaluations_expected,
        }


def sweep_calls(
    rule_name: str, region: str, params: dict[str, Any] | None = None, capture_output: bool = True
) -> SweepResult:
    """Run ``rule_name``'s periodic evaluation through the Lambda handler (list, read, decide, post)
    on a fresh session in ``region`` and count its calls. An operation called once per evaluated
    resource or more is a per-resource read. ``capture_output`` False leaves the handler's logs and
    metrics on the process's own stdout/stderr (a timed child process sends them to /dev/null)."""
    rule = get(rule_name).rule_class()()
    session, counter = _counted_session(region)
    failures = 0
    try:
        with quiet() if capture_output else contextlib.nullcontext():
            records = handle(rule, scheduled_event({**LOCAL, **(params or {})}), session=session)
        evaluated = len(records)
    except EvaluationIncomplete as exc:
        evaluated, failures = len(exc.evaluations), len(exc.failures)
    calls = dict(counter.calls)
    per_resource = sorted(
        op for op, n in calls.items() if op != PUT_EVALUATIONS and evaluated > 1 and n >= evaluated
    )
    return SweepResult(rule_name, region, evaluated, calls, failures, per_resource)


def sweep_met(small: SweepResult, large: SweepResult) -> tuple[bool, str]:
    """The sweep target: per-resource reads only where AWS has no batch API, the batched reads not
    growing per resource, PutEvaluations = ceil(N/100), and no failure."""
    problems: list[str] = []
    allowed = UNBATCHABLE.get(large.rule, frozenset())
    for result in (small, large):
        extra = set(result.per_resource_ops) - allowed
        if extra:
            problems.append(f"per-resource {', '.join(sorted(extra))} at N={result.evaluated}")
        if result.put_evaluations != result.put_evaluations_expected:
            problems.append(f"PutEvaluations {result.put_evaluations} != {result.put_evaluations_expected}")
        if result.failures:
            problems.append(f"{result.failures} failures")
    if large.batched_reads / max(large.evaluated, 1) > small.batched_reads / max(small.evaluated, 1):
        problems.append("batched reads grow per resource")
    return not problems, "; ".join(problems)
