"""The fault matrix: every API call every rule makes, failed every way AWS can fail it.

For each rule of the catalog and each trigger (a change event whose item needs API reads, and a periodic
sweep of a small moto landscape with several resources), the test first runs the rule fault-free and
records every call (service, operation, parameters, the resource being evaluated when it was made, its
response), then re-runs it once per (recorded call, fault) with that one call failing:

* AccessDenied (the service's own code), throttling and 5xx (InternalError / ServiceUnavailable) on every
  attempt -- so they outlive botocore's retries -- and connect/read timeouts and endpoint connection
  errors raised from ``before-send``, through botocore's standard retry handler (backoff patched to 0);
* a response lacking a field the code reads (every field the fault-free run read, found by wrapping the
  responses in read-tracking dicts);
* the resource deleted between listing and reading it (the service's own not-found answer; an emptied
  result for filtered EC2 describes).

and asserts the fail-closed contract: the affected resource is never COMPLIANT; every other resource is
still posted with its fault-free verdict; the invocation ends in ``EvaluationIncomplete`` whose failures
name the resource, the operation and the cause; a fault on a call made before any resource was decided
(listing) posts nothing; a deleted resource is skipped or NOT_APPLICABLE with no failure; a retried
fault takes exactly the configured number of attempts, a non-retryable one exactly one.

The matrix is generated from the recorded calls, so a new call in a rule is covered without editing this
file; a new rule needs a :data:`SCENARIOS` entry (a meta-test says so). Figures are printed (``-s``).
Known engine defects are listed in :data:`KNOWN_DEFECTS`: their violations are reported, not failed,
and each must still reproduce (remove the entry once fixed).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml_guardrails.aws import CLIENT_CONFIG
from ml_guardrails.catalog import discover
from ml_guardrails.engine import EvaluationIncomplete, GuardrailRule, handle
from ml_guardrails.testing import REGION, change_event, scheduled_event
from tests.faults import (
    Call,
    Fault,
    FaultInjector,
    emptied,
    error_faults,
    leaf_reads,
    no_backoff,
    not_found_fault,
    track_reads,
    without,
)

COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE = "COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE"
# Failure codes that say nothing about the cause: a bare Python error from indexing a response.
GENERIC_ERRORS = frozenset({"KeyError", "TypeError", "AttributeError", "IndexError", "ValueError"})
LOCAL = {"AssumeRoleMode": "false"}  # the function's own role: every call is the rule's own
FULL = os.environ.get("ML_GUARDRAILS_FAULT_MATRIX") == "full"
MIN_MATRIX = {"change": 6, "periodic": 25}  # per rule: the matrix must not silently shrink


def total_attempts() -> int:
    """What CLIENT_CONFIG gives per call. botocore: ``total_max_attempts`` counts every attempt,
    ``max_attempts`` counts *retries* (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/
    retries.html), so ``max_attempts: 5`` means 6 attempts."""
    retries = CLIENT_CONFIG.retries or {}
    if "total_max_attempts" in retries:
        return int(retries["total_max_attempts"])
    return int(retries.get("max_attempts", 2)) + 1


# ------------------------------------------------------------------------------------------ scenarios
@dataclass
class Scenario:
    """How to exercise one rule: a landscape (>= 2 resources), parameters that make it read as much as it
    can, and configuration items whose evaluation needs API calls (built against the landscape)."""

    seed: Callable[[boto3.Session], Any]
    params: dict[str, Any]
    # None: the rule has no change path that calls AWS (periodic only, or it judges the item alone).
    change_items: Callable[[boto3.Session], list[dict[str, Any]]] | None
    change_params: dict[str, Any] = field(default_factory=dict)
    min_resources: int = 2  # resources the periodic landscape must post
    minimums: dict[str, int] = field(default_factory=lambda: dict(MIN_MATRIX))
    # Why the scenario departs from the defaults (no change items, fewer resources, lower minimums):
    # required whenever it does (test_departures_from_the_defaults_are_justified).
    justification: str = ""

    @property
    def departs(self) -> bool:
        lowered = any(self.minimums.get(k, 0) < v for k, v in MIN_MATRIX.items())
        return self.change_items is None or self.min_resources < 2 or lowered


def _kms_seed(session: boto3.Session) -> None:
    from tests.test_kms_rotation import seed_kms

    seed_kms(session)
    kms = session.client("kms")
    kms.enable_key_rotation(KeyId=_kms_alias(session, "feature-store"), RotationPeriodInDays=180)
    kms.tag_resource(
        KeyId=_kms_alias(session, "legacy-training-data"),
        Tags=[{"TagKey": "ml-guardrails:exemption", "TagValue": "decommissioned, RISK-77"}],
    )


def _kms_alias(session: boto3.Session, alias: str) -> str:
    from tests.test_kms_rotation import aliases

    return aliases(session)[alias]


def _kms_items(session: boto3.Session) -> list[dict[str, Any]]:
    from tests.test_kms_rotation import fixture

    ci = fixture("kms_customer_key.json")
    key = session.client("kms").describe_key(KeyId=_kms_alias(session, "ml-artifacts"))["KeyMetadata"]
    ci["resourceId"] = ci["configuration"]["keyId"] = key["KeyId"]
    ci["ARN"] = ci["configuration"]["arn"] = key["Arn"]
    del ci["supplementaryConfiguration"]["KeyRotationStatus"]  # the rule must read it
    return [ci]


UPLOAD_DENY = "MlGuardrailsDenyNonKmsUploads"


def _s3_seed(session: boto3.Session) -> None:
    from tests.test_s3_sse_kms import seed_s3_sse_kms

    seed_s3_sse_kms(session)
    s3 = session.client("s3")
    for bucket in ("ml-training-data", "ml-model-artifacts"):  # the compliant ones keep their verdict
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": UPLOAD_DENY,
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                    "Condition": {
                        "StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]}
                    },
                }
            ],
        }
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _s3_items(session: boto3.Session) -> list[dict[str, Any]]:
    from tests.test_s3_sse_kms import load_ci, with_key

    key_arn = session.client("kms").describe_key(KeyId="alias/ml-data")["KeyMetadata"]["Arn"]
    by_arn = with_key(load_ci("s3_sse_kms_cmk.json"), key_arn)
    by_alias = with_key(load_ci("s3_sse_kms_cmk.json"), "alias/ml-data")
    by_alias["resourceId"] = by_alias["resourceName"] = "ml-alias-bucket-123456789012"
    return [by_arn, by_alias]


def _sagemaker_seed(session: boto3.Session) -> None:
    from tests.test_sagemaker_notebook import seed_sagemaker_notebooks

    seed_sagemaker_notebooks(session)


def _sagemaker_items(session: boto3.Session) -> list[dict[str, Any]]:
    from tests.test_sagemaker_notebook import ci_for

    return [ci_for(session, "nb-nat-egress"), ci_for(session, "nb-isolated")]


def _vpc_seed(session: boto3.Session) -> None:
    from tests.test_vpc_flow_logs import seed_vpc_flow_logs

    seed_vpc_flow_logs(session)


def _vpc_items(session: boto3.Session) -> list[dict[str, Any]]:
    from tests.test_vpc_flow_logs import ci_for

    return [ci_for(session, "ml-training"), ci_for(session, "ml-feature-store")]


def _guardduty_seed(session: boto3.Session) -> None:
    from tests.test_guardduty import seed_guardduty

    seed_guardduty(session)


def _rds_seed(session: boto3.Session) -> None:
    from tests.test_rds_cmk import seed_rds_cmk

    seed_rds_cmk(session)  # installs the AWS-shaped RDS/KMS answers on the session the injector wraps


def _rds_items(session: boto3.Session) -> list[dict[str, Any]]:
    from tests.test_rds_cmk import ci_for

    # Customer managed keys: the rule must ask KMS (DescribeKey) whose key it is.
    return [ci_for(session, "ml-feature-store"), ci_for(session, "ml-experiments")]


def _sagemaker_hardened_seed(session: boto3.Session) -> None:
    from tests.test_sagemaker_hardened import seed_sagemaker_hardened

    seed_sagemaker_hardened(session)


def _sagemaker_hardened_items(session: boto3.Session) -> list[dict[str, Any]]:
    from tests.test_sagemaker_hardened import change_items

    return change_items(session)


def _s3_policy_seed(session: boto3.Session) -> None:
    from tests.test_s3_bucket_policy import seed_s3_bucket_policy

    seed_s3_bucket_policy(session)


def _vpce_seed(session: boto3.Session) -> None:
    from tests.test_vpc_endpoint_policy import seed_vpc_endpoint_policy

    seed_vpc_endpoint_policy(session)


def _vpce_items(session: boto3.Session) -> list[dict[str, Any]]:
    from tests.test_vpc_endpoint_policy import vpce_items

    ids = {
        tag["Value"]: endpoint["VpcEndpointId"]
        for endpoint in session.client("ec2").describe_vpc_endpoints()["VpcEndpoints"]
        for tag in endpoint.get("Tags") or []
        if tag["Key"] == "Name"
    }
    return vpce_items(session, ids)


def _parameters(module: str) -> dict[str, Any]:
    import importlib

    return dict(importlib.import_module(module).PARAMETERS)


def _sagemaker_hardened_parameters() -> dict[str, Any]:
    from tests.test_sagemaker_hardened import DEMO_PARAMETERS

    return dict(DEMO_PARAMETERS)


EXEMPTION = {"ExemptionTagKey": "ml-guardrails:exemption"}
SCENARIOS: dict[str, Scenario] = {
    "GUARDDUTY_ENABLED": Scenario(
        _guardduty_seed,
        {**EXEMPTION, "RequiredFeatures": "S3_DATA_EVENTS"},
        None,
        min_resources=1,
        minimums={"change": 0, "periodic": 12},
        justification=(
            "Periodic only: AWS::::Account has no configuration items, so Config sends no change event "
            "(template: no Scope, ScheduledNotification only). One resource per account and Region: the "
            "account (AWS allows one detector per Region), so the sweep posts one evaluation and the "
            "matrix is ListDetectors, GetDetector and PutEvaluations with their faults (15 runs)."
        ),
    ),
    "KMS_CMK_ROTATION_ENABLED": Scenario(_kms_seed, EXEMPTION, _kms_items),
    "S3_BUCKET_SSE_KMS_ENFORCED": Scenario(
        _s3_seed,
        {"ExemptionTagKey": "ml-guardrails:exempt", "RequireUploadPolicy": "true"},
        _s3_items,
        {"RequireUploadPolicy": "true"},
    ),
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": Scenario(_sagemaker_seed, EXEMPTION, _sagemaker_items),
    "VPC_FLOW_LOGS_ENABLED": Scenario(_vpc_seed, EXEMPTION, _vpc_items),
    "RDS_STORAGE_ENCRYPTED_WITH_CMK": Scenario(_rds_seed, EXEMPTION, _rds_items),
    "SAGEMAKER_NOTEBOOK_HARDENED": Scenario(
        _sagemaker_hardened_seed, _sagemaker_hardened_parameters(), _sagemaker_hardened_items
    ),
    "S3_BUCKET_POLICY_ORG_ONLY": Scenario(
        _s3_policy_seed,
        _parameters("tests.test_s3_bucket_policy"),
        None,
        justification=(
            "The change path judges the bucket policy and tags the configuration item carries "
            "(supplementaryConfiguration.BucketPolicy) and makes no API call: nothing to fault there "
            "(test_s3_bucket_policy.test_e2e_change_trigger_no_api_calls). The sweep is faulted in full."
        ),
    ),
    "VPC_ENDPOINT_POLICY_ORG_ONLY": Scenario(
        _vpce_seed,
        _parameters("tests.test_vpc_endpoint_policy"),
        _vpce_items,
        change_params={"OrganizationId": _parameters("tests.test_vpc_endpoint_policy")["OrganizationId"]},
        minimums={"change": MIN_MATRIX["change"], "periodic": 12},
        justification=(
            "The sweep is a single DescribeVpcEndpoints call (each endpoint's PolicyDocument and tags come "
            "in the listing; moto ignores MaxResults, so it is one page) plus PutEvaluations: 13 runs, "
            "every field the rule reads removed once. Paging is covered by test_sweep_follows_pages."
        ),
    ),
}


# Fields whose absence a rule deliberately reads as the favourable default (documented in the rule), so a
# resource may turn COMPLIANT without them. Each is a fail-open decision a reviewer signed off.
MAY_BECOME_COMPLIANT: dict[tuple[str, tuple[str, ...]], str] = {
    ("DescribeFlowLogs", ("FlowLogs", "*", "DeliverLogsStatus")): (
        "VPC_FLOW_LOGS_ENABLED docstring: botocore marks DeliverLogsStatus optional and FAILED is the only "
        "failure signal, so an absent status counts as not failed"
    ),
}

# Engine defects this matrix found, not fixed yet (files this test's owner may not edit). A violation
# whose text contains the marker is reported as known instead of failing; each must still reproduce.
KNOWN_DEFECTS: dict[str, str] = {}  # D1-D6 were found by this matrix and fixed; see test_fixed_defect_*


# ------------------------------------------------------------------------------------------- the runs
@dataclass
class Run:
    calls: list[Call]
    posted: dict[str, str]
    order: list[str]
    error: BaseException | None

    @property
    def failures(self) -> list[dict[str, str]]:
        if isinstance(self.error, EvaluationIncomplete):
            return [f.as_dict() for f in self.error.failures]
        return []

    @property
    def failed_ids(self) -> set[str]:
        return {f["resourceId"] for f in self.failures}

    def call(self, key: tuple[str, str, str, int]) -> Call | None:
        return next((c for c in self.calls if c.key == key), None)


def _run(injector: FaultInjector, module: ModuleType, rule: GuardrailRule[Any], event: dict[str, Any]) -> Run:
    injector.calls, injector.injected = [], Counter()
    injector.current_resource, injector.outcomes = None, 0
    injector._occurrences = Counter()
    error: BaseException | None = None
    with injector.attribute(module):
        try:
            handle(rule, event, session=injector.session)
        except Exception as exc:
            error = exc
    posted: dict[str, str] = {}
    order: list[str] = []
    for call in injector.calls:
        if call.name == "config.PutEvaluations" and call.response is not None:
            for evaluation in call.params["Evaluations"]:
                posted[evaluation["ComplianceResourceId"]] = evaluation["ComplianceType"]
                order.append(evaluation["ComplianceResourceId"])
    return Run(list(injector.calls), posted, order, error)


@dataclass
class Case:
    call: Call
    fault: Fault
    role: str  # "error", "gone-own", "gone-related", "missing"
    target: str | None = None  # gone: the resource the not-found answer is about

    @property
    def label(self) -> str:
        return f"{self.call.name}#{self.call.key[3]}[{self.call.resource or '-'}] {self.fault.name}"


def _resource_matches(value: str, resource_id: str | None) -> bool:
    if not resource_id:
        return False
    a, b = value.lower(), resource_id.lower()
    return a == b or b.endswith("/" + a) or a.endswith("/" + b)


def representative_calls(baseline: Run, own: str | None) -> list[Call]:
    """The calls the default run faults: the first of each (service, operation, fault-free verdict of the
    resource it was made for, list-or-resource) class. The full run (ML_GUARDRAILS_FAULT_MATRIX=full)
    faults every recorded call."""
    if FULL:
        return list(baseline.calls)
    seen: set[tuple[str, str, bool]] = set()
    chosen = []
    for call in baseline.calls:
        subject = call.resource or own
        klass = (call.name, baseline.posted.get(subject or "", "-"), call.resource is None)
        if klass not in seen:
            seen.add(klass)
            chosen.append(call)
    return chosen


def faults_for(call: Call, position: int) -> list[Fault]:
    """AccessDenied, throttling, 5xx and connection faults for ``call``. The default run takes AccessDenied
    and one of the six retried faults (throttling, 500, 503, connect/read timeout, no connection) per
    call, rotating over the calls, so every kind is exercised; the full run takes all seven per call."""
    faults = error_faults(call.service)
    if FULL:
        return faults
    rotating = [f for f in faults if f.name != "access-denied"]
    return [faults[0], rotating[position % len(rotating)]]


def generate(
    baseline: Run, reads: dict[tuple[str, str, str, int], set[tuple[str, ...]]], own: str | None
) -> list[Case]:
    """The (call, fault) cases for the recorded calls of ``baseline``. ``own``: the change path's resource."""
    cases: list[Case] = []
    for position, call in enumerate(representative_calls(baseline, own)):
        for fault in faults_for(call, position):
            cases.append(Case(call, fault, "error"))
        if call.service == "config":
            continue  # PutEvaluations: only errors apply
        subject = call.resource or own
        gone = not_found_fault(call.service, call.params)
        if gone is not None:
            fault, value = gone
            role = "gone-own" if _resource_matches(value, subject) else "gone-related"
            cases.append(Case(call, fault, role, value))
        elif call.response is not None and call.params.get("Filters"):
            cases.append(
                Case(call, Fault("gone-emptied", "response", response=emptied(call.response)), "gone-related")
            )
        if call.response is not None and (FULL or baseline.posted.get(subject or "") != NOT_APPLICABLE):
            for path in leaf_reads(reads.get(call.key, set())):
                fault = Fault("missing:" + ".".join(path), "response", response=without(call.response, path))
                cases.append(Case(call, fault, "missing", ".".join(path)))
    return cases


def check(case: Case, base: Run, run: Run, own: str | None) -> list[str]:
    """The violations of the fail-closed contract in ``run`` (``base`` is the fault-free run)."""
    call, fault = case.call, case.fault
    problems: list[str] = []
    subject = call.resource or own
    failures = run.failures
    failed = run.failed_ids
    if run.error is not None and not isinstance(run.error, EvaluationIncomplete):
        problems.append(
            f"invocation raised {type(run.error).__name__}, not EvaluationIncomplete: {run.error}"
        )
    allowed = (
        case.role == "missing"
        and (call.operation, tuple(str(case.target).split("."))) in MAY_BECOME_COMPLIANT
    )
    for rid, verdict in run.posted.items():
        if allowed:
            break
        if verdict == COMPLIANT and base.posted.get(rid) != COMPLIANT:
            problems.append(f"{rid} became COMPLIANT (fault-free: {base.posted.get(rid)})")
        if rid in failed and call.name != "config.PutEvaluations":
            problems.append(f"{rid} both posted and reported unevaluated")
    if subject and run.posted.get(subject) == COMPLIANT and case.role in ("gone-related",):
        problems.append(f"{subject} COMPLIANT although {case.target} is gone")
    known = set(base.posted)
    sweep_level = call.resource is None and own is None

    def others_intact(exclude: set[str]) -> None:
        if allowed:
            return
        for rid in known - exclude - failed:
            if run.posted.get(rid) != base.posted[rid]:
                problems.append(f"{rid} not posted as {base.posted[rid]} (got {run.posted.get(rid)})")

    if case.role == "error":
        code = fault.code
        if not isinstance(run.error, EvaluationIncomplete):
            if run.error is None:
                problems.append("no EvaluationIncomplete")
            return problems
        detail = json.loads(str(run.error))
        for f in failures:
            if f["code"] != code:
                problems.append(f"failure of {f['resourceId']} has code {f['code']}, not {code}")
            if f["operation"] != call.operation:
                problems.append(
                    f"failure of {f['resourceId']} names operation {f['operation']}, not {call.operation}"
                )
        shown = {f["resourceId"] for f in detail["failures"]}
        if call.name == "config.PutEvaluations":
            batch = {e["ComplianceResourceId"] for e in call.params["Evaluations"]}
            if not batch <= failed:
                problems.append(
                    f"resources of the failed PutEvaluations batch not reported: {sorted(batch - failed)}"
                )
        elif subject is not None and subject not in failed:
            problems.append(f"{subject} not named in the failures {sorted(failed)}")
        if failed and not shown:
            problems.append("the EvaluationIncomplete JSON names no resource")
        if own is not None:
            if run.posted and call.name != "config.PutEvaluations":
                problems.append(f"change path posted {run.posted}")
        elif sweep_level and "*" in failed:
            decided_before = set(base.order[: call.outcomes_before])
            for rid in run.posted:
                if rid not in decided_before:
                    problems.append(f"{rid} posted although the sweep failed before deciding it")
        elif call.name != "config.PutEvaluations":
            others_intact({subject} if subject else set())
        faulted = run.call(call.key)
        expected = total_attempts() if fault.retryable else 1
        if faulted is None:
            problems.append("the faulted call was not made again")
        elif faulted.attempts != expected:
            problems.append(f"{faulted.attempts} attempts, expected {expected}")
    elif case.role == "gone-own":
        if own is None:
            if subject in failed:
                problems.append(f"{subject} deleted after listing was reported as a failure")
            if run.posted.get(subject or "") not in (None, NOT_APPLICABLE):
                problems.append(f"{subject} deleted after listing posted {run.posted.get(subject or '')}")
            if run.error is not None:
                problems.append(f"deleted resource failed the invocation: {run.error}")
            others_intact({subject} if subject else set())
        elif run.posted.get(own) == COMPLIANT:
            problems.append(f"{own} COMPLIANT although it is gone")
    else:  # gone-related, missing
        for f in failures:
            if f["resourceId"] not in known | {"*", "?"} and f["resourceId"] != own:
                problems.append(f"failure names unknown resource {f['resourceId']}")
            if case.role != "missing":
                continue
            if f["operation"] == "ReadConfigurationItem":
                problems.append(
                    f"failure of {f['resourceId']} blames the configuration item for a {call.operation} "
                    f"response: ReadConfigurationItem {f['code']} {f['message'][:80]}"
                )
            elif f["code"] in GENERIC_ERRORS and call.operation not in f["operation"] + f["message"]:
                problems.append(
                    f"failure of {f['resourceId']} names neither {call.operation} nor the field: "
                    f"{f['operation']} {f['code']} {f['message'][:80]}"
                )
        if not sweep_level:
            others_intact({subject} if subject else set())
        if case.role == "missing" and subject and run.posted.get(subject) == COMPLIANT:
            # Not a violation by itself (many fields are optional: absent means the API default), but
            # counted and printed so a reviewer sees which absences leave a resource COMPLIANT.
            TOLERATED.append(f"{call.operation} {case.target}")
    return problems


# ------------------------------------------------------------------------------------------- the test
def _rules() -> list[Any]:
    return list(discover())


def test_every_rule_has_a_scenario() -> None:
    names = {spec.name for spec in _rules()}
    assert names <= set(SCENARIOS), f"add a fault-matrix Scenario for {sorted(names - set(SCENARIOS))}"


@pytest.mark.parametrize("rule_name", sorted(SCENARIOS))
def test_departures_from_the_defaults_are_justified(rule_name: str) -> None:
    """A scenario with no change items, fewer than two resources or lower minimums says why; a
    periodic-only rule is the only one allowed a single resource and no change trigger."""
    scenario = SCENARIOS[rule_name]
    spec = next(s for s in _rules() if s.name == rule_name)
    if scenario.departs:
        assert len(scenario.justification) > 80, f"{rule_name}: justify the departure from the defaults"
    else:
        assert not scenario.justification, f"{rule_name}: a justification for no departure"
    if scenario.min_resources < 2 or (
        scenario.change_items is None and "no API call" not in scenario.justification
    ):
        assert spec.resource_types == () and spec.periodic, f"{rule_name} is not periodic-only"
    if scenario.change_items is None and spec.resource_types:
        # A change-triggered rule without change items must make no call on the change path (its own
        # end-to-end test, named in the justification, proves it).
        assert "no API call" in scenario.justification and "test_" in scenario.justification


@dataclass
class Report:
    rule: str
    trigger: str
    calls: int = 0
    cases: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


REPORTS: list[Report] = []
TOLERATED: list[str] = []


def _matrix(
    injector: FaultInjector,
    module: ModuleType,
    rule_cls: type[GuardrailRule[Any]],
    events: list[tuple[dict[str, Any], str | None]],
    report: Report,
) -> list[str]:
    violations: list[str] = []
    for event, own in events:
        base = _run(injector, module, rule_cls(), event)
        assert base.error is None, f"the fault-free run failed: {base.error}"
        assert base.posted, "the fault-free run posted nothing"
        rule_calls = [c for c in base.calls if c.service != "config"]
        assert rule_calls, "the scenario makes no API call: nothing to fault"
        if own is None:
            wanted = SCENARIOS[report.rule].min_resources
            assert len(base.posted) >= wanted, f"the landscape needs at least {wanted} resources"
        # A second fault-free run with read-tracking responses: which fields does the rule read?
        reads: dict[tuple[str, str, str, int], set[tuple[str, ...]]] = {}
        for call in base.calls:
            if call.response is not None and call.service != "config":
                found = reads.setdefault(call.key, set())
                injector.faults[call.key] = Fault(
                    "track", "response", make=lambda r=call.response, s=found: track_reads(r, s)
                )
        tracked = _run(injector, module, rule_cls(), event)
        injector.faults = {}
        assert tracked.posted == base.posted, "read tracking changed the verdicts"
        cases = generate(base, reads, own)
        report.calls += len(base.calls)
        report.cases += len(cases)
        for case in cases:
            injector.faults = {case.call.key: case.fault}
            run = _run(injector, module, rule_cls(), event)
            injector.faults = {}
            report.faults[case.fault.name.split(":")[0]] += 1
            for problem in check(case, base, run, own):
                text = f"{report.rule} {report.trigger} {case.label}: {problem}"
                marker = next((m for m in KNOWN_DEFECTS if m in text), None)
                if marker is not None:
                    report.known[marker] += 1
                else:
                    violations.append(text)
    return violations


@pytest.mark.parametrize("trigger", ["change", "periodic"])
@pytest.mark.parametrize("rule_name", sorted(SCENARIOS))
def test_fault_matrix(rule_name: str, trigger: str, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.perf_counter()
    tolerated_before = len(TOLERATED)
    no_backoff(monkeypatch)
    spec = next(s for s in _rules() if s.name == rule_name)
    module = spec.load_module()
    rule_cls = spec.rule_class()
    scenario = SCENARIOS[rule_name]
    if trigger == "change" and scenario.change_items is None:
        pytest.skip(f"{rule_name}: {scenario.justification}")
    report = Report(rule_name, trigger)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        scenario.seed(session)
        injector = FaultInjector(session)
        if trigger == "periodic":
            events = [(scheduled_event({**LOCAL, **scenario.params}), None)]
        else:
            params = {**LOCAL, **scenario.change_params}
            assert scenario.change_items is not None
            items = scenario.change_items(session)
            events = [
                (change_event(ci, params), str(ci["resourceId"])) for ci in items[: None if FULL else 1]
            ]
        violations = _matrix(injector, module, rule_cls, events, report)
    report.seconds = time.perf_counter() - started
    REPORTS.append(report)
    print(
        f"\nfault matrix {rule_name} {trigger}: {report.calls} recorded calls, {report.cases} (call, fault) "
        f"runs in {report.seconds:.1f}s; by fault: {dict(sorted(report.faults.items()))}; "
        f"responses lacking a read field that left the resource COMPLIANT (optional fields): "
        f"{len(TOLERATED) - tolerated_before}; known defects: {dict(report.known)}"
    )
    assert report.cases >= scenario.minimums[trigger]
    assert not violations, f"{len(violations)} violations:\n" + "\n".join(violations[:60])


# ------------------------------------------------------------------- known defects: minimal repros
# Each asserts the right behaviour and is expected to fail until the defect is fixed (strict: a fix
# makes it pass, which fails the run -- then remove the xfail and the KNOWN_DEFECTS entry).
def _kms_sweep_with(fault: Fault, operation: str, monkeypatch: pytest.MonkeyPatch) -> EvaluationIncomplete:
    no_backoff(monkeypatch)
    spec = next(s for s in _rules() if s.name == "KMS_CMK_ROTATION_ENABLED")
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.client("kms").create_key(Description="one key")
        injector = FaultInjector(session)
        base = _run(injector, spec.load_module(), spec.rule_class()(), scheduled_event(LOCAL))
        call = next(c for c in base.calls if c.operation == operation)
        injector.faults = {call.key: fault}
        run = _run(injector, spec.load_module(), spec.rule_class()(), scheduled_event(LOCAL))
    assert isinstance(run.error, EvaluationIncomplete)
    return run.error


def test_fixed_defect_connection_error_names_no_operation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix: register an ``after-call-error`` handler on every client ClientFactory builds that records
    the operation on the exception (``exc.kwargs["operation_name"]``), which error_operation reads."""
    fault = next(f for f in error_faults("kms") if f.name == "ReadTimeoutError")
    error = _kms_sweep_with(fault, "DescribeKey", monkeypatch)
    assert [f.operation for f in error.failures] == ["DescribeKey"]


def test_fixed_defect_malformed_response_named_as_configuration_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix: the resource views raise MalformedConfigurationItem(..., operation="DescribeKey") when they
    parse an API response (KmsKey.from_key_metadata, S3Bucket.from_api, FlowLog.from_api, ...)."""
    metadata = {"KeyId": "k", "KeyManager": "CUSTOMER", "Origin": "AWS_KMS", "KeySpec": "SYMMETRIC_DEFAULT"}
    fault = Fault("missing:KeyMetadata.KeyState", "response", make=lambda: {"KeyMetadata": metadata})
    error = _kms_sweep_with(fault, "DescribeKey", monkeypatch)
    assert [f.operation for f in error.failures] == ["DescribeKey"]


def test_fixed_defect_missing_top_level_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix: read response members with ci.require_field (a MalformedConfigurationItem naming the field and
    the operation), not ``response["KeyMetadata"]``; or map KeyError in guarded() to the last operation."""
    error = _kms_sweep_with(Fault("missing:KeyMetadata", "response", response={}), "DescribeKey", monkeypatch)
    (failure,) = error.failures
    assert failure.operation == "DescribeKey" and failure.code != "KeyError"


def test_fixed_defect_put_evaluations_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fix: in handle(), catch an exception from post_evaluations and turn it into Failures (one per
    evaluation not accepted, operation PutEvaluations) so the EvaluationIncomplete, its log line and the
    EvaluationErrors metric still happen."""
    fault = next(f for f in error_faults("config") if f.name == "access-denied")
    error = _kms_sweep_with(fault, "PutEvaluations", monkeypatch)
    assert {f.operation for f in error.failures} == {"PutEvaluations"}


def _route_table(routes: Any = None, subnet: str | None = "subnet-0a") -> dict[str, Any]:
    association: dict[str, Any] = {"Main": False, "AssociationState": {"State": "associated"}}
    if subnet:
        association["SubnetId"] = subnet
    table: dict[str, Any] = {"RouteTableId": "rtb-0a", "VpcId": "vpc-0a", "Associations": [association]}
    if routes is not None:
        table["Routes"] = routes
    return table


MAIN_TABLE = {
    "RouteTableId": "rtb-main",
    "VpcId": "vpc-0a",
    "Associations": [{"Main": True, "AssociationState": {"State": "associated"}}],
    "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"}],
}
NAT_ROUTE = {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-0a", "State": "active"}


def _paths(tables: list[dict[str, Any]]) -> list[Any]:
    from ml_guardrails.resources.ec2_routes import NetworkView, RouteTable, Subnet

    view = NetworkView({"subnet-0a": Subnet("subnet-0a", "vpc-0a")}, [RouteTable.parse(t) for t in tables])
    return view.paths_for_subnet("subnet-0a")[1]


def test_route_table_repro_baseline() -> None:
    """The repros below differ from this only by the missing field: here the NAT route is found."""
    assert len(_paths([_route_table([NAT_ROUTE]), MAIN_TABLE])) == 1


def test_fixed_defect_route_table_without_routes_is_compliant() -> None:
    """Fix (ec2_routes.RouteTable.parse): every route table has at least its local route, so a missing
    Routes member is malformed: require_field(raw, "Routes") instead of as_list(get_field(...))."""
    from ml_guardrails.ci import MalformedConfigurationItem

    with pytest.raises(MalformedConfigurationItem):
        _paths([_route_table(routes=None), MAIN_TABLE])


def test_fixed_defect_association_without_subnet() -> None:
    """Fix (ec2_routes.RouteTable.parse): a non-main association names a SubnetId or a GatewayId (edge
    association); one with neither is malformed, not "no association"."""
    from ml_guardrails.ci import MalformedConfigurationItem

    with pytest.raises(MalformedConfigurationItem):
        _paths([_route_table([NAT_ROUTE], subnet=None), MAIN_TABLE])
