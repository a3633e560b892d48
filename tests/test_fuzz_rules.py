"""Property-based fuzzing of every rule's change path through the real handler (``engine.handle``).

Starting from the real configuration items in ``tests/fixtures/ci/``, hypothesis mutates what a Config
event can carry (keys deleted, wrong types, unknown enumeration values, configuration and supplementary
values as JSON strings or garbage, unicode incl. lone surrogates, huge values, deep nesting, statuses,
``eventLeftScope``, raw ``invokingEvent`` variants) and what the AWS APIs answer (through
``ml_guardrails.testing.inject``, inside one moto context per test function). Properties:

1. *Clear outcome*: every example posts exactly one evaluation for the item's resource (COMPLIANT,
   NON_COMPLIANT or NOT_APPLICABLE, annotation at most 256 characters) or raises a clear error:
   ``EvaluationIncomplete`` whose JSON names the resource and an error code that is not a bare Python
   exception (``TypeError``, ``KeyError``... mean an unanticipated input reached a bug), ``ValueError``
   naming the malformed part of the event, or ``InvalidParametersError``. Anything else fails.
2. *Never COMPLIANT without the facts*: each rule has an oracle, written from its docstring and README
   (not from its code), stating what must hold for COMPLIANT to be possible (the fields its decision
   needs, valid, and the API facts). A COMPLIANT the oracle rules out fails. A targeted test breaks one
   needed field of a COMPLIANT baseline at a time (deleted, wrong type, unknown value): never COMPLIANT.
3. *Out of scope*: deleted statuses and ``eventLeftScope`` true give NOT_APPLICABLE.

The harnesses of KMS_CMK_ROTATION_ENABLED, S3_BUCKET_SSE_KMS_ENFORCED, SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
and VPC_FLOW_LOGS_ENABLED are below; the harness vocabulary (readers, answers, needed fields, baselines) and
the harnesses of the later rules (SAGEMAKER_NOTEBOOK_HARDENED, S3_BUCKET_POLICY_ORG_ONLY,
VPC_ENDPOINT_POLICY_ORG_ONLY, RDS_STORAGE_ENCRYPTED_WITH_CMK) are in ``tests/fuzz_harnesses.py``. Only
change-triggered rules have a harness: a periodic-only rule (GUARDDUTY_ENABLED) has no change path. The two
policy rules also run *policy edits* alone (the edited policy mostly still parses, so the oracle decides
often), besides the generic mutations that see a policy as an opaque string.

Defects the fuzzing found in code this file does not own are listed in ``KNOWN_DEFECTS``: the property
tests tolerate (and count, see ``--hypothesis-show-statistics``) outcomes matching them, and one strict
xfail test per defect reproduces its minimal example, so fixing a defect turns its xfail into a failure
that asks for the entry to be removed.

Where moto differs from AWS: the API reads are answered by ``inject`` in AWS's response shapes (moto's
GetKeyRotationStatus omits RotationPeriodInDays, and moto has no way to produce UnsupportedOperation or a
custom route table for an arbitrary subnet id); only PutEvaluations (TestMode) reaches moto.
"""

from __future__ import annotations

import builtins
import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from hypothesis import assume, event, given, note
from hypothesis import strategies as st
from moto import mock_aws
from rdklib import ComplianceType, InvalidParametersError

from ml_guardrails.engine import ANNOTATION_LIMIT, EvaluationIncomplete, GuardrailRule, handle
from ml_guardrails.testing import ACCOUNT_ID, PutEvaluationsRecorder, change_event, inject
from tests.fuzz_harnesses import (
    BAD,
    FIXTURES,
    NEW_EXTRA_NEEDED,
    NEW_HARNESSES,
    SPECS,
    Answer,
    Answers,
    Baseline,
    Harness,
    Needed,
    generic_params,
    load_fixture,
    o_bool,
    o_configuration,
    o_get,
    o_list,
    o_obj,
    o_supplementary,
)
from tests.fuzz_harnesses import (
    KEY_ARN as RDS_KEY_ARN,
)
from tests.strategies import (
    BOOL_STRINGS,
    MISSING,
    Mutation,
    apply,
    bool_normalise,
    describe,
    fuzz_stats,  # noqa: F401 - autouse fixture: example counts per test
    garbage_json_strings,
    get_path,
    huge_values,
    json_values,
    mutated,
    scaled,
    tally,
    unicode_text,
    unknown_string,
)

C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
ENGINE = {"AssumeRoleMode": "false"}  # the function's own role: no STS call per example
DELETED_STATUSES = ("ResourceDeleted", "ResourceDeletedNotRecorded", "ResourceNotRecorded")
LEFT_SCOPE_TRUE = (True, "true", "True")
BUILTIN_EXCEPTIONS = frozenset(
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), BaseException)
)


def fixtures_for(resource_types: tuple[str, ...]) -> list[str]:
    return sorted(
        p.name for p in FIXTURES.glob("*.json") if load_fixture(p.name).get("resourceType") in resource_types
    )


ERROR_STATUS = {"UnauthorizedOperation": 403}


class Api:
    """Answers a rule's API reads per example through ``inject`` (registered once per moto context;
    each example swaps the answers in place)."""

    def __init__(self, session: Any, errors: Mapping[str, tuple[str, ...]], fallback: Mapping[str, str]):
        self.answers: Answers = {}
        self._bodies: dict[str, dict[str, Any]] = {}
        for op, codes in errors.items():
            body: dict[str, Any] = {}
            self._bodies[op] = body
            inject(session, op, response=body, when=partial(self._answers_ok, op))
            for code in codes:
                inject(
                    session,
                    op,
                    error_code=code,
                    status=ERROR_STATUS.get(code, 400),
                    when=partial(self._answers_error, op, code),
                )
            if op in fallback:
                inject(session, op, error_code=fallback[op], status=ERROR_STATUS.get(fallback[op], 400))

    def _answers_ok(self, op: str, params: Any) -> bool:
        answer = self.answers.get(op)
        key_id = params.get("KeyId") if isinstance(params, Mapping) else None
        return answer is not None and answer.ok_for(key_id) is not None

    def _answers_error(self, op: str, code: str, _params: Any) -> bool:
        answer = self.answers.get(op)
        return answer is not None and answer.kind == code

    def set(self, answers: Answers) -> None:
        self.answers = answers
        for op, body in self._bodies.items():
            body.clear()
            answer = answers.get(op)
            if answer is not None and answer.kind == "ok":
                body.update(copy.deepcopy(dict(answer.response)))


# ----------------------------------------------------------------------------------------- outcomes
@dataclass
class Outcome:
    records: list[dict[str, Any]] | None
    posted: list[dict[str, Any]]
    error: BaseException | None

    @property
    def label(self) -> str:
        if self.error is not None:
            return type(self.error).__name__
        return ",".join(r["ComplianceType"] for r in self.records or []) or "nothing"

    @property
    def compliance(self) -> str | None:
        return self.records[0]["ComplianceType"] if self.records and len(self.records) == 1 else None

    def failures(self) -> list[dict[str, Any]]:
        if not isinstance(self.error, EvaluationIncomplete):
            return []
        return list(json.loads(str(self.error)).get("failures") or [])


def track_accepted(rec: PutEvaluationsRecorder) -> None:
    """Mark which recorded PutEvaluations calls AWS (moto) accepted: the recorder sees every attempt,
    including one that fails client-side (ParamValidationError) or with an error response."""
    accepted: list[int] = []
    rec.accepted = accepted  # type: ignore[attr-defined]

    def after_call(http_response: Any, **_: Any) -> None:
        if http_response is not None and getattr(http_response, "status_code", 500) < 300:
            accepted.append(len(rec.calls) - 1)

    rec.session.events.register("after-call.config.PutEvaluations", after_call)


def posted_since(rec: PutEvaluationsRecorder, first_call: int) -> list[dict[str, Any]]:
    accepted = getattr(rec, "accepted", range(len(rec.calls)))
    return [e for i in accepted if i >= first_call for e in rec.calls[i]["Evaluations"]]


def run(rule: GuardrailRule[Any], event_: Any, rec: PutEvaluationsRecorder) -> Outcome:
    first = len(rec.calls)
    try:
        records = handle(rule, event_, session=rec.session)
    except Exception as exc:  # classified by the properties below
        return Outcome(None, posted_since(rec, first), exc)
    return Outcome(records, posted_since(rec, first), None)


# ------------------------------------------------------------------------------------ known defects
@dataclass(frozen=True)
class KnownDefect:
    id: str
    where: str
    summary: str
    matches: Callable[[Outcome], bool]


def _timestamp_param_error(outcome: Outcome) -> bool:
    error = outcome.error
    if isinstance(error, ParamValidationError):
        return "OrderingTimestamp" in str(error)
    # botocore's timestamp parser gives up on some numeric-looking strings ("1e+308") with a RuntimeError
    return type(error) is RuntimeError and "timezone offset" in str(error)


def _capture_time_overflow(outcome: Outcome) -> bool:
    return any(
        f.get("code") in ("OverflowError", "OSError", "ValueError")
        and re.search(r"out of range|too large|year", str(f.get("message")))
        for f in outcome.failures()
    )


def _configuration_item_not_object(outcome: Outcome) -> bool:
    return isinstance(outcome.error, AttributeError) and "has no attribute 'get'" in str(outcome.error)


def _period_outside_api_range(outcome: Outcome) -> bool:
    if outcome.compliance != C:
        return False
    found = re.search(r"every (-?\d+) days", (outcome.records or [{}])[0].get("Annotation", ""))
    return found is not None and not 90 <= int(found.group(1)) <= 2560


# D1-D5 were found by this fuzzing and fixed (capture times validated as ISO-8601 and in range, KMS rotation
# periods outside AWS's 90-2560 rejected, a non-object configurationItem reported as malformed, a DescribeKey
# KeyMetadata that is not an object reported as a malformed response instead of a bare TypeError); their
# minimal examples stay below as regression tests (FIXED_REPRODUCERS). An open defect gets a KnownDefect
# entry here and a strict xfail reproducer in OPEN_REPRODUCERS.
KNOWN_DEFECTS: tuple[KnownDefect, ...] = ()


def count(label: str) -> None:
    """Count an outcome (``tests.strategies.tally``) and report it to hypothesis inside a test."""
    tally(label)
    try:
        event(label)
    except Exception:  # hypothesis refuses events outside a test
        return


def known_defect(outcome: Outcome) -> KnownDefect | None:
    for defect in KNOWN_DEFECTS:
        if defect.matches(outcome):
            count(f"known defect {defect.id}")
            return defect
    return None


# ------------------------------------------------------------------------------------------- checks
def check_clear(outcome: Outcome, ci: Any, context: str) -> None:
    """Property 1 for one change event carrying ``ci`` (an intact envelope)."""
    if known_defect(outcome) is not None:
        return
    rid = ci.get("resourceId", "?") if isinstance(ci, Mapping) else "?"
    rtype = ci.get("resourceType", "?") if isinstance(ci, Mapping) else "?"
    if outcome.error is None:
        records = outcome.records or []
        assert len(records) == 1, f"{context}: expected one evaluation, got {records}"
        assert outcome.posted == records, f"{context}: posted {outcome.posted}, returned {records}"
        record = records[0]
        assert record["ComplianceType"] in (C, NC, NA), context
        assert record["ComplianceResourceId"] == rid, f"{context}: evaluation names {record}"
        assert record["ComplianceResourceType"] == rtype, f"{context}: evaluation names {record}"
        assert len(record.get("Annotation", "")) <= ANNOTATION_LIMIT, f"{context}: annotation too long"
        return
    assert isinstance(outcome.error, EvaluationIncomplete), (
        f"{context}: raised {type(outcome.error).__name__}: {str(outcome.error)[:500]}"
    )
    assert outcome.posted == [], f"{context}: posted {outcome.posted} for a resource that failed"
    summary = json.loads(str(outcome.error))
    assert summary["error"] == "EvaluationIncomplete"
    failures = outcome.failures()
    assert failures, f"{context}: EvaluationIncomplete without failures"
    for failure in failures:
        assert failure["resourceType"] in (str(rtype), "?"), f"{context}: {failure}"
        assert failure["resourceId"] in (str(rid)[:2000], str(rid), "?"), f"{context}: {failure}"
        assert failure["code"] not in BUILTIN_EXCEPTIONS, (
            f"{context}: failure code {failure['code']} is a bare Python exception (a bug reached): {failure}"
        )
        assert failure["message"], f"{context}: {failure}"


# ---- KMS_CMK_ROTATION_ENABLED
KMS_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ROTATABLE_STATES = ("Enabled", "Disabled", "Creating", "Unavailable", "Updating")
ROTATION_OP = "kms.GetKeyRotationStatus"


def kms_may_comply(ci: Mapping[str, Any], params: Any, answers: Answers) -> str | None:
    cfg = o_configuration(ci)
    if cfg is BAD:
        return "configuration is not an object"
    if o_get(cfg, "KeyManager") != "CUSTOMER":
        return f"keyManager {o_get(cfg, 'KeyManager')!r} is not CUSTOMER"
    if o_get(cfg, "KeyState") not in ROTATABLE_STATES:
        return f"keyState {o_get(cfg, 'KeyState')!r} cannot rotate"
    if o_get(cfg, "Origin") != "AWS_KMS":
        return f"origin {o_get(cfg, 'Origin')!r} is not AWS_KMS"
    if o_get(cfg, "KeySpec", "CustomerMasterKeySpec") != "SYMMETRIC_DEFAULT":
        return "keySpec (or customerMasterKeySpec) is not SYMMETRIC_DEFAULT"
    mrc_raw = o_get(cfg, "MultiRegionConfiguration")
    mrc = None if mrc_raw is None else o_obj(mrc_raw)
    if mrc is BAD:
        return "multiRegionConfiguration is not an object"
    multi_raw = o_get(cfg, "MultiRegion")
    multi = mrc is not None if multi_raw is None else o_bool(multi_raw)
    if multi is None:
        return f"multiRegion {multi_raw!r} is not a boolean"
    if multi and o_get(mrc, "MultiRegionKeyType") != "PRIMARY":
        return "a multi-Region key that is not shown to be the primary"
    limit = params.rule.max_rotation_period_days
    status = o_supplementary(ci, "KeyRotationStatus")
    if status is BAD:
        return "supplementaryConfiguration is not an object"
    if limit is None and status is not None:
        return None if o_bool(status) is True else f"KeyRotationStatus {status!r} is not true"
    response = answers[ROTATION_OP].ok_for()
    if response is None:
        return f"GetKeyRotationStatus answered {answers[ROTATION_OP].kind}"
    if o_bool(o_get(response, "KeyRotationEnabled")) is not True:
        return "GetKeyRotationStatus does not say rotation is enabled"
    if limit is not None:
        period = o_get(response, "RotationPeriodInDays")
        if isinstance(period, bool) or not isinstance(period, int | str):
            return f"RotationPeriodInDays {period!r} is no integer"
        try:
            days = int(period)
        except ValueError:
            return f"RotationPeriodInDays {period!r} is no integer"
        # EnableKeyRotation accepts 90-2560 days (botocore kms model); anything else is not AWS's answer.
        if not 90 <= days <= limit:
            return f"RotationPeriodInDays {days} outside 90..{limit}"
    return None


@st.composite
def kms_answers(draw: st.DrawFn, _base: Mapping[str, Any]) -> Answers:
    kind = draw(st.sampled_from(["ok", "ok", "ok", "AccessDeniedException", "UnsupportedOperationException"]))
    if kind != "ok":
        return {ROTATION_OP: Answer(kind)}
    response: dict[str, Any] = {"KeyId": KMS_KEY_ID, "KeyRotationEnabled": draw(st.booleans())}
    if draw(st.booleans()):
        response["RotationPeriodInDays"] = draw(
            st.one_of(st.integers(90, 2560), st.integers(-10, 100_000), st.sampled_from([365, 2561, 89]))
        )
        response["NextRotationDate"] = "2027-03-02T16:20:11.018000+00:00"
    response, _ = draw(mutated(response, (("KeyRotationEnabled",), ("RotationPeriodInDays",)), 2))
    return {ROTATION_OP: Answer("ok", response)}


KMS = Harness(
    rule="KMS_CMK_ROTATION_ENABLED",
    errors={ROTATION_OP: ("AccessDeniedException", "UnsupportedOperationException")},
    fallback={},
    answers=kms_answers,
    params=st.one_of(
        st.sampled_from([{}, {"MaxRotationPeriodInDays": "365"}, {"MaxRotationPeriodInDays": "2560"}]),
        generic_params("KMS_CMK_ROTATION_ENABLED"),
    ),
    may_comply=kms_may_comply,
    baselines=(
        # Rotation from the item; GetKeyRotationStatus denied, so a missing status cannot be filled in.
        Baseline("kms_customer_key.json", {}, {ROTATION_OP: Answer("AccessDeniedException")}),
        Baseline(
            "kms_customer_key.json",
            {"MaxRotationPeriodInDays": "365"},
            {
                ROTATION_OP: Answer(
                    "ok", {"KeyId": KMS_KEY_ID, "KeyRotationEnabled": True, "RotationPeriodInDays": 365}
                )
            },
        ),
    ),
    needed=(
        Needed("keyManager", "ci", (("configuration", "keyManager"),), "str", ("CUSTOMER",)),
        Needed("keyState", "ci", (("configuration", "keyState"),), "str", ROTATABLE_STATES),
        Needed("origin", "ci", (("configuration", "origin"),), "str", ("AWS_KMS",)),
        Needed(
            "keySpec",
            "ci",
            (("configuration", "keySpec"), ("configuration", "customerMasterKeySpec")),
            "str",
            ("SYMMETRIC_DEFAULT",),
        ),
        Needed("multiRegion", "ci", (("configuration", "multiRegion"),), "bool", delete_breaks=False),
        Needed("configuration", "ci", (("configuration",),), "object"),
        Needed("KeyRotationEnabled", ROTATION_OP, (("KeyRotationEnabled",),), "bool"),
        Needed("RotationPeriodInDays", ROTATION_OP, (("RotationPeriodInDays",),), "int", int_range=(90, 365)),
    ),
)

# ---- S3_BUCKET_SSE_KMS_ENFORCED
S3_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{KMS_KEY_ID}"
S3_MRK_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/mrk-1234abcd12ab34cd56ef1234567890ab"
DESCRIBE_KEY = "kms.DescribeKey"
_KEY_ARN = re.compile(r"^arn:[^:]+:kms:[^:]*:\d{12}:key/.+$")
_AWS_ALIAS = re.compile(r"^(?:arn:[^:]+:kms:[^:]*:\d{12}:)?alias/aws/.+$")
SSE = ("supplementaryConfiguration", "ServerSideEncryptionConfiguration")


def s3_rules(ci: Mapping[str, Any]) -> list[Any] | str:
    """The default-encryption rules as (algorithm, key, bucket key) -- or why they cannot be read."""
    sse = o_supplementary(ci, "ServerSideEncryptionConfiguration")
    if sse is None or sse is BAD:
        return "no readable ServerSideEncryptionConfiguration"
    config = o_obj(sse)
    if config is BAD:
        return "ServerSideEncryptionConfiguration is not an object"
    rules = o_list(o_get(config, "Rules"))
    if rules is BAD:
        return "rules is not a list"
    out = []
    for raw in rules:
        rule = o_obj(raw)
        if rule is BAD:
            return "a rule is not an object"
        default = o_get(rule, "ApplyServerSideEncryptionByDefault")
        if default is None:
            continue
        default = o_obj(default)
        if default is BAD:
            return "applyServerSideEncryptionByDefault is not an object"
        algorithm = o_get(default, "SSEAlgorithm")
        key = o_get(default, "KMSMasterKeyID")
        if key is not None and not isinstance(key, str):
            return "kmsMasterKeyID is not a string"
        bucket_key = o_get(rule, "BucketKeyEnabled")
        out.append(
            (algorithm, (key or "").strip() or None, False if bucket_key is None else o_bool(bucket_key))
        )
    return out or "no default-encryption rule"


def s3_may_comply(ci: Mapping[str, Any], params: Any, answers: Answers) -> str | None:
    p = params.rule
    rules = s3_rules(ci)
    if isinstance(rules, str):
        return rules
    for algorithm, key, bucket_key in rules:
        if not isinstance(algorithm, str) or algorithm.strip() not in ("aws:kms", "aws:kms:dsse"):
            return f"sseAlgorithm {algorithm!r} is not SSE-KMS or DSSE-KMS"
        if bucket_key is None:
            return "bucketKeyEnabled is not a boolean"
        if p.require_bucket_key and algorithm.strip() == "aws:kms" and not bucket_key:
            return "bucket key required and off"
        reference = key or "alias/aws/s3"
        metadata = None
        response = answers[DESCRIBE_KEY].ok_for(reference)
        if response is not None:
            metadata = o_obj(o_get(response, "KeyMetadata"))
        if p.require_customer_managed_key:
            if key is None or _AWS_ALIAS.match(key):
                return "AWS managed key while a customer managed key is required"
            if metadata is None or metadata is BAD or o_get(metadata, "KeyManager") != "CUSTOMER":
                return f"DescribeKey does not show {reference} as a customer managed key"
        if p.kms_key_arns:
            if _KEY_ARN.match(reference):
                if reference not in p.kms_key_arns:
                    return "key ARN not in KmsKeyArns"
            elif metadata is None or metadata is BAD or o_get(metadata, "Arn") not in p.kms_key_arns:
                return "resolved key ARN not in KmsKeyArns"
    if p.require_upload_policy:
        policy = o_supplementary(ci, "BucketPolicy")
        policy = None if policy is None else o_obj(policy)
        text = o_get(policy, "policyText") if isinstance(policy, Mapping) else None
        document = o_obj(text) if isinstance(text, str) else text
        if not isinstance(document, Mapping):
            return "no readable bucket policy"
        statements = o_get(document, "Statement")
        statements = [statements] if isinstance(statements, Mapping) else statements
        if not isinstance(statements, list) or not any(
            isinstance(s, Mapping) and o_get(s, "Effect") == "Deny" for s in statements
        ):
            return "the bucket policy denies nothing"
    return None


def key_metadata(arn: str, manager: str = "CUSTOMER") -> dict[str, Any]:
    return {"KeyMetadata": {"KeyId": arn.rsplit("/", 1)[-1], "Arn": arn, "KeyManager": manager}}


@st.composite
def s3_answers(draw: st.DrawFn, base: Mapping[str, Any]) -> Answers:
    kind = draw(st.sampled_from(["ok", "ok", "ok", "AccessDeniedException"]))
    if kind != "ok":
        return {DESCRIBE_KEY: Answer(kind)}
    arn = draw(st.sampled_from([S3_KEY_ARN, S3_MRK_ARN]))
    manager = draw(st.sampled_from(["CUSTOMER", "CUSTOMER", "AWS", "customer"]))
    response, _ = draw(
        mutated(key_metadata(arn, manager), (("KeyMetadata", "KeyManager"), ("KeyMetadata", "Arn")), 2)
    )
    return {DESCRIBE_KEY: Answer("ok", response, frozenset({arn, "alias/ml-data", KMS_KEY_ID}))}


S3 = Harness(
    rule="S3_BUCKET_SSE_KMS_ENFORCED",
    errors={DESCRIBE_KEY: ("AccessDeniedException",)},
    fallback={DESCRIBE_KEY: "NotFoundException"},
    answers=s3_answers,
    params=st.one_of(
        st.sampled_from(
            [
                {},
                {"RequireCustomerManagedKey": "false"},
                {"RequireUploadPolicy": "true", "RequireBucketKey": "true"},
                {"KmsKeyArns": S3_KEY_ARN},
                {"KmsKeyArns": f"{S3_MRK_ARN},{S3_KEY_ARN}", "RequireCustomerManagedKey": "false"},
            ]
        ),
        generic_params("S3_BUCKET_SSE_KMS_ENFORCED"),
    ),
    may_comply=s3_may_comply,
    baselines=(
        Baseline(
            "s3_sse_kms_cmk.json",
            {"RequireUploadPolicy": "true", "RequireBucketKey": "true"},
            {DESCRIBE_KEY: Answer("ok", key_metadata(S3_KEY_ARN), frozenset({S3_KEY_ARN}))},
        ),
        Baseline(
            "s3_dsse_kms_string_supplementary.json",
            {"KmsKeyArns": S3_MRK_ARN},
            {DESCRIBE_KEY: Answer("ok", key_metadata(S3_MRK_ARN), frozenset({S3_MRK_ARN}))},
        ),
    ),
    needed=(
        Needed("ServerSideEncryptionConfiguration", "ci", (SSE,), "object"),
        Needed("rules", "ci", ((*SSE, "rules"),), "list"),
        Needed(
            "applyServerSideEncryptionByDefault",
            "ci",
            ((*SSE, "rules", 0, "applyServerSideEncryptionByDefault"),),
            "object",
        ),
        Needed(
            "sseAlgorithm",
            "ci",
            ((*SSE, "rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm"),),
            "str",
            ("aws:kms", "aws:kms:dsse"),
        ),
        Needed(
            "kmsMasterKeyID",
            "ci",
            ((*SSE, "rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyID"),),
            "str",
            (S3_KEY_ARN, S3_MRK_ARN),
        ),
        Needed("supplementaryConfiguration", "ci", (("supplementaryConfiguration",),), "object"),
        Needed("KeyManager", DESCRIBE_KEY, (("KeyMetadata", "KeyManager"),), "str", ("CUSTOMER",)),
        Needed("KeyMetadata", DESCRIBE_KEY, (("KeyMetadata",),), "object"),
    ),
)
# Needed only with RequireUploadPolicy / RequireBucketKey (the first baseline sets both).
S3_FIRST_ONLY = (
    Needed("bucketKeyEnabled", "ci", ((*SSE, "rules", 0, "bucketKeyEnabled"),), "bool"),
    Needed("BucketPolicy", "ci", (("supplementaryConfiguration", "BucketPolicy"),), "object"),
    Needed("policyText", "ci", (("supplementaryConfiguration", "BucketPolicy", "policyText"),), "str_json"),
)

# ---- SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET
NB_SUBNET = "subnet-0a1b2c3d4e5f60718"
NB_VPC = "vpc-0a1b2c3d4e5f60718"
SUBNETS_OP, TABLES_OP = "ec2.DescribeSubnets", "ec2.DescribeRouteTables"
TGW = "tgw-0123456789abcdef0"
ROUTE_TARGETS = (
    ("GatewayId", "local"),
    ("GatewayId", "igw-0123abcd"),
    ("NatGatewayId", "nat-0123456789abcdef0"),
    ("EgressOnlyInternetGatewayId", "eigw-0123abcd"),
    ("CarrierGatewayId", "cagw-0123abcd"),
    ("TransitGatewayId", TGW),
    ("VpcPeeringConnectionId", "pcx-0123abcd"),
    ("GatewayId", "vpce-0123abcd"),
    ("NetworkInterfaceId", "eni-0123abcd"),
)
ROUTE_FIELDS = {name for name, _ in ROUTE_TARGETS} | {
    "LocalGatewayId",
    "CoreNetworkArn",
    "OdbNetworkArn",
    "InstanceId",
}
INTERNET_PREFIXES = ("igw-", "nat-", "eigw-", "cagw-")


def _destination(route: Mapping[str, Any]) -> Any:
    for name in ("DestinationCidrBlock", "DestinationIpv6CidrBlock", "DestinationPrefixListId"):
        value = o_get(route, name)
        if value:
            return value
    return None


def _is_default(destination: Any) -> bool:
    try:
        return isinstance(destination, str) and ipaddress.ip_network(destination, strict=False).prefixlen == 0
    except ValueError:
        return False


def route_is_internet_path(route: Any, allowed: frozenset[str]) -> bool:
    """An active route to an internet/NAT/egress-only/carrier gateway, or an active default route to a
    target not allowed (README: "no active default route to a target outside AllowedEgressTargets")."""
    if not isinstance(route, Mapping):
        return False  # unreadable: the rule must fail on it, which is not COMPLIANT either
    state = o_get(route, "State")
    if isinstance(state, str) and state.lower() in ("blackhole", "filtered"):
        return False
    targets = [v for k, v in route.items() if k in ROUTE_FIELDS and isinstance(v, str) and v]
    if any(t.startswith(INTERNET_PREFIXES) for t in targets):
        return True
    return _is_default(_destination(route)) and not (set(targets) & allowed) and targets != ["local"]


def sagemaker_may_comply(ci: Mapping[str, Any], params: Any, answers: Answers) -> str | None:
    p = params.rule
    cfg = o_configuration(ci)
    if cfg is BAD:
        return "configuration is not an object"
    if o_get(cfg, "DirectInternetAccess") != "Disabled":
        return f"DirectInternetAccess {o_get(cfg, 'DirectInternetAccess')!r} is not Disabled"
    subnet = o_get(cfg, "SubnetId")
    if not isinstance(subnet, str) or not subnet.strip():
        return f"SubnetId {subnet!r} is no subnet"
    if p.allowed_subnet_ids is not None and subnet not in p.allowed_subnet_ids:
        return "subnet not in AllowedSubnetIds"
    if not p.check_network_path:
        return None
    subnets = answers[SUBNETS_OP].ok_for()
    tables = answers[TABLES_OP].ok_for()
    if subnets is None or tables is None:
        return "the network could not be read"
    listed = o_get(subnets, "Subnets")
    if not isinstance(listed, list) or not any(
        isinstance(s, Mapping) and o_get(s, "SubnetId") == subnet for s in listed
    ):
        return "DescribeSubnets does not show the subnet"
    route_tables = o_get(tables, "RouteTables")
    if not isinstance(route_tables, list) or not route_tables:
        return "no route table"
    if len(route_tables) == 1 and isinstance(route_tables[0], Mapping):  # the only candidate is in force
        routes = o_get(route_tables[0], "Routes")
        if isinstance(routes, list) and any(
            route_is_internet_path(r, p.allowed_egress_targets) for r in routes
        ):
            return "the subnet's route table has an internet path"
    return None


@st.composite
def route_table(draw: st.DrawFn) -> dict[str, Any]:
    routes = [{"DestinationCidrBlock": "10.20.0.0/16", "GatewayId": "local", "State": "active"}]
    for _ in range(draw(st.integers(0, 3))):
        name, target = draw(st.sampled_from(ROUTE_TARGETS))
        dest_key, dest = draw(
            st.sampled_from(
                [
                    ("DestinationCidrBlock", "0.0.0.0/0"),
                    ("DestinationIpv6CidrBlock", "::/0"),
                    ("DestinationCidrBlock", "192.168.0.0/16"),
                    ("DestinationPrefixListId", "pl-63a5400a"),
                    ("DestinationCidrBlock", "0.0.0.0/1"),
                ]
            )
        )
        state = draw(st.sampled_from(["active", "active", "blackhole", "filtered", "Blackhole", "unknown"]))
        routes.append({dest_key: dest, name: target, "State": state})
    associations: list[dict[str, Any]] = [{"Main": True, "AssociationState": {"State": "associated"}}]
    if draw(st.booleans()):
        associations.append(
            {"Main": False, "SubnetId": NB_SUBNET, "AssociationState": {"State": "associated"}}
        )
    return {
        "RouteTableId": "rtb-01a2b3c4d5e6f7081",
        "VpcId": NB_VPC,
        "Routes": routes,
        "Associations": associations,
    }


def network_answers(table: Mapping[str, Any]) -> Answers:
    return {
        SUBNETS_OP: Answer(
            "ok", {"Subnets": [{"SubnetId": NB_SUBNET, "VpcId": NB_VPC, "OwnerId": ACCOUNT_ID}]}
        ),
        TABLES_OP: Answer("ok", {"RouteTables": [dict(table)]}),
    }


@st.composite
def sagemaker_answers(draw: st.DrawFn, _base: Mapping[str, Any]) -> Answers:
    answers = network_answers(draw(route_table()))
    if draw(st.integers(0, 9)) == 0:
        answers[draw(st.sampled_from([SUBNETS_OP, TABLES_OP]))] = Answer("UnauthorizedOperation")
    for op in (SUBNETS_OP, TABLES_OP):
        if answers[op].kind == "ok" and draw(st.booleans()):
            response, _ = draw(mutated(answers[op].response, (), 2, min_depth=2))
            answers[op] = Answer("ok", response)
    return answers


ISOLATED_TABLE = {
    "RouteTableId": "rtb-01a2b3c4d5e6f7081",
    "VpcId": NB_VPC,
    "Routes": [
        {"DestinationCidrBlock": "10.20.0.0/16", "GatewayId": "local", "State": "active"},
        {"DestinationPrefixListId": "pl-63a5400a", "GatewayId": "vpce-0123abcd", "State": "active"},
        # The internet gateway was detached: a blackhole route carries no traffic (its State is needed).
        {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-0123abcd", "State": "blackhole"},
    ],
    "Associations": [{"Main": True, "AssociationState": {"State": "associated"}}],
}
SAGEMAKER = Harness(
    rule="SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET",
    errors={SUBNETS_OP: ("UnauthorizedOperation",), TABLES_OP: ("UnauthorizedOperation",)},
    fallback={},
    answers=sagemaker_answers,
    params=st.one_of(
        st.sampled_from(
            [
                {},
                {"CheckNetworkPath": "false"},
                {"AllowedEgressTargets": TGW},
                {"AllowedSubnetIds": NB_SUBNET},
                {"AllowedSubnetIds": "subnet-0123abcd"},
            ]
        ),
        generic_params("SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"),
    ),
    may_comply=sagemaker_may_comply,
    baselines=(
        Baseline("sagemaker_notebook_isolated.json", {}, network_answers(ISOLATED_TABLE)),
        Baseline(
            "sagemaker_notebook_isolated.json",
            {"CheckNetworkPath": "false", "AllowedSubnetIds": NB_SUBNET},
            {},
        ),
    ),
    needed=(
        Needed(
            "DirectInternetAccess", "ci", (("configuration", "DirectInternetAccess"),), "str", ("Disabled",)
        ),
        Needed("SubnetId", "ci", (("configuration", "SubnetId"),), "str", (NB_SUBNET,)),
        Needed("configuration", "ci", (("configuration",),), "object"),
    ),
)
SAGEMAKER_NETWORK_ONLY = (
    Needed("Subnets", SUBNETS_OP, (("Subnets",),), "list"),
    Needed("RouteTables", TABLES_OP, (("RouteTables",),), "list"),
    Needed("Routes", TABLES_OP, (("RouteTables", 0, "Routes"),), "list", delete_breaks=False),
    # Route states are matched case-insensitively (documented); an unknown state counts as active.
    Needed(
        "blackhole State",
        TABLES_OP,
        (("RouteTables", 0, "Routes", 2, "State"),),
        "str",
        ("blackhole", "filtered"),
        normalise=str.lower,
    ),
)

# ---- VPC_FLOW_LOGS_ENABLED
VPC_ID = "vpc-0a1b2c3d4e5f60718"
FLOW_LOGS_OP = "ec2.DescribeFlowLogs"
TRAFFIC = ("ALL", "ACCEPT", "REJECT")
DESTINATIONS = ("cloud-watch-logs", "s3", "kinesis-data-firehose")


def vpc_may_comply(ci: Mapping[str, Any], params: Any, answers: Answers) -> str | None:
    p = params.rule
    cfg = o_configuration(ci)
    if cfg is BAD:
        return "configuration is not an object"
    rid = ci.get("resourceId")
    vpc_id = o_get(cfg, "VpcId")
    if vpc_id is not None and vpc_id != rid:
        return f"configuration vpcId {vpc_id!r} is not the resourceId {rid!r}"
    state = o_get(cfg, "State")
    if state is not None and (not isinstance(state, str) or state == "deleting"):
        return f"state {state!r}"
    owner = o_get(cfg, "OwnerId")
    if owner is not None and not isinstance(owner, str):
        return f"ownerId {owner!r} is not a string"
    account = ci.get("awsAccountId")
    if isinstance(owner, str) and owner and isinstance(account, str) and account and owner != account:
        return "the VPC is owned by another account"
    default = o_get(cfg, "IsDefault")
    if default is not None and o_bool(default) is None:
        return f"isDefault {default!r} is not a boolean"
    response = answers[FLOW_LOGS_OP].ok_for()
    if response is None:
        return "DescribeFlowLogs failed"
    flow_logs = o_get(response, "FlowLogs")
    if not isinstance(flow_logs, list):
        return "no flow log list"
    required = p.traffic_type
    allowed = p.log_destination_types or frozenset(DESTINATIONS)
    for log in flow_logs:
        if not isinstance(log, Mapping) or o_get(log, "ResourceId") != rid:
            continue
        destination = o_get(log, "LogDestinationType")
        if destination is None and isinstance(o_get(log, "LogGroupName"), str) and o_get(log, "LogGroupName"):
            destination = "cloud-watch-logs"  # CreateFlowLogs' default, for logs older than the field
        if (
            o_get(log, "FlowLogStatus") == "ACTIVE"
            and o_get(log, "DeliverLogsStatus") in (None, "SUCCESS")
            and o_get(log, "TrafficType") in ((required, "ALL") if required != "ALL" else ("ALL",))
            and destination in allowed
        ):
            return None
    return "no qualifying VPC-level flow log"


def flow_log(resource_id: str = VPC_ID, **overrides: Any) -> dict[str, Any]:
    log: dict[str, Any] = {
        "FlowLogId": "fl-0123456789abcdef0",
        "FlowLogStatus": "ACTIVE",
        "DeliverLogsStatus": "SUCCESS",
        "ResourceId": resource_id,
        "TrafficType": "ALL",
        "LogDestinationType": "s3",
        "LogDestination": "arn:aws:s3:::ml-flow-logs-123456789012",
    }
    log.update(overrides)
    return {k: v for k, v in log.items() if v is not None}


@st.composite
def vpc_answers(draw: st.DrawFn, base: Mapping[str, Any]) -> Answers:
    if draw(st.integers(0, 9)) == 0:
        return {FLOW_LOGS_OP: Answer("UnauthorizedOperation")}
    resource = base.get("resourceId") if isinstance(base.get("resourceId"), str) else VPC_ID
    logs = draw(
        st.lists(
            st.builds(
                flow_log,
                st.sampled_from([resource, resource, "subnet-0aa11bb22cc33dd44"]),
                FlowLogStatus=st.sampled_from(["ACTIVE", "ACTIVE", "INACTIVE", None]),
                DeliverLogsStatus=st.sampled_from(["SUCCESS", "FAILED", None, "SKIPPED"]),
                TrafficType=st.sampled_from([*TRAFFIC, None]),
                LogDestinationType=st.sampled_from([*DESTINATIONS, None]),
                LogGroupName=st.sampled_from([None, "/ml/vpc-flow-logs"]),
            ),
            max_size=3,
        )
    )
    response, _ = draw(mutated({"FlowLogs": logs}, (), 2, min_depth=2))
    return {FLOW_LOGS_OP: Answer("ok", response)}


VPC = Harness(
    rule="VPC_FLOW_LOGS_ENABLED",
    errors={FLOW_LOGS_OP: ("UnauthorizedOperation",)},
    fallback={},
    answers=vpc_answers,
    params=st.one_of(
        st.sampled_from([{}, {"TrafficType": "REJECT"}, {"LogDestinationTypes": "s3"}]),
        generic_params("VPC_FLOW_LOGS_ENABLED"),
    ),
    may_comply=vpc_may_comply,
    baselines=(
        Baseline("vpc_ml_training.json", {}, {FLOW_LOGS_OP: Answer("ok", {"FlowLogs": [flow_log()]})}),
        Baseline(
            "vpc_default_rdk_sample.json",
            {"LogDestinationTypes": "cloud-watch-logs"},
            {
                FLOW_LOGS_OP: Answer(
                    "ok",
                    {"FlowLogs": [flow_log("vpc-0990dc6d", LogDestinationType=None, LogGroupName="/ml/vpc")]},
                )
            },
        ),
    ),
    needed=(
        Needed("resourceId", "ci", (("resourceId",),), "str", (VPC_ID, "vpc-0990dc6d")),
        Needed(
            "vpcId", "ci", (("configuration", "vpcId"),), "str", (VPC_ID, "vpc-0990dc6d"), delete_breaks=False
        ),
        Needed("state", "ci", (("configuration", "state"),), "str", None, delete_breaks=False),
        Needed("isDefault", "ci", (("configuration", "isDefault"),), "bool", delete_breaks=False),
        Needed("FlowLogs", FLOW_LOGS_OP, (("FlowLogs",),), "list"),
        Needed("ResourceId", FLOW_LOGS_OP, (("FlowLogs", 0, "ResourceId"),), "str", (VPC_ID, "vpc-0990dc6d")),
        Needed("FlowLogStatus", FLOW_LOGS_OP, (("FlowLogs", 0, "FlowLogStatus"),), "str", ("ACTIVE",)),
        Needed("TrafficType", FLOW_LOGS_OP, (("FlowLogs", 0, "TrafficType"),), "str", ("ALL",)),
        Needed(
            "DeliverLogsStatus",
            FLOW_LOGS_OP,
            (("FlowLogs", 0, "DeliverLogsStatus"),),
            "str",
            ("SUCCESS",),
            delete_breaks=False,
        ),
    ),
)
VPC_FIRST_ONLY = (
    Needed("ownerId", "ci", (("configuration", "ownerId"),), "str", (ACCOUNT_ID,), delete_breaks=False),
    Needed("LogDestinationType", FLOW_LOGS_OP, (("FlowLogs", 0, "LogDestinationType"),), "str", DESTINATIONS),
)

HARNESSES: dict[str, Harness] = {h.rule: h for h in (KMS, S3, SAGEMAKER, VPC, *NEW_HARNESSES)}
EXTRA_NEEDED: dict[tuple[str, int], tuple[Needed, ...]] = {
    # Only where GetKeyRotationStatus cannot fill it in (baseline 0: AccessDenied, no maximum period).
    ("KMS_CMK_ROTATION_ENABLED", 0): (
        Needed("KeyRotationStatus", "ci", (("supplementaryConfiguration", "KeyRotationStatus"),), "bool"),
    ),
    ("S3_BUCKET_SSE_KMS_ENFORCED", 0): S3_FIRST_ONLY,
    ("SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET", 0): SAGEMAKER_NETWORK_ONLY,
    ("VPC_FLOW_LOGS_ENABLED", 0): VPC_FIRST_ONLY,
    **NEW_EXTRA_NEEDED,
}
RULES = sorted(name for name in SPECS if name in HARNESSES)


@dataclass
class Bench:
    """One moto account per test function: the rule, a PutEvaluations recorder and the API answers."""

    harness: Harness
    rule: GuardrailRule[Any]
    rec: PutEvaluationsRecorder
    api: Api

    def params(self, raw: Mapping[str, Any]) -> Any:
        return self.rule.evaluate_parameters(dict(raw))


@pytest.fixture
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    harness = HARNESSES[request.param]
    with mock_aws():
        rec = PutEvaluationsRecorder()
        track_accepted(rec)
        yield Bench(
            harness,
            SPECS[harness.rule].rule_class()(),
            rec,
            Api(rec.session, harness.errors, harness.fallback),
        )


def rule_param(test: Callable[..., Any]) -> Callable[..., Any]:
    marked: Callable[..., Any] = pytest.mark.parametrize("bench", RULES, indirect=True)(test)
    return marked


# --------------------------------------------------------------------------------------- meta-tests
def test_every_rule_is_fuzzed() -> None:
    """Adding a change-triggered rule (a spec with resource types) means adding its harness here or in
    ``tests/fuzz_harnesses.py`` (fixtures, oracle, needed fields). A periodic-only rule (no resource types,
    it reports on ``AWS::::Account``, e.g. GUARDDUTY_ENABLED) has no change path to fuzz and needs none."""
    missing = sorted(name for name, spec in SPECS.items() if spec.resource_types and name not in HARNESSES)
    assert not missing, f"no fuzz harness for {missing}: add one to tests/test_fuzz_rules.py"
    for name, harness in HARNESSES.items():
        assert fixtures_for(SPECS[name].rule_class().RESOURCE_TYPES), f"{name}: no fixture in {FIXTURES}"
        for baseline in harness.baselines:
            assert baseline.fixture in fixtures_for(SPECS[name].rule_class().RESOURCE_TYPES)


@rule_param
def test_baselines_are_compliant(bench: Bench) -> None:
    """The needed-field test is only meaningful if each unmutated baseline is COMPLIANT (and the oracle
    agrees it may be)."""
    for baseline in bench.harness.baselines:
        ci = baseline.item()
        bench.api.set(baseline.answers)
        params = {**ENGINE, **baseline.params}
        outcome = run(bench.rule, change_event(ci, params), bench.rec)
        assert outcome.compliance == C, (baseline.fixture, outcome.label, outcome.records, outcome.error)
        assert bench.harness.may_comply(ci, bench.params(baseline.params), baseline.answers) is None


# ---------------------------------------------------------------------------- property 1 + 2: random
@st.composite
def fuzz_case(draw: st.DrawFn, harness: Harness) -> tuple[dict[str, Any], dict[str, Any], Answers, str]:
    fixture = draw(st.sampled_from(fixtures_for(SPECS[harness.rule].rule_class().RESOURCE_TYPES)))
    base = load_fixture(fixture)
    edited = ""
    if harness.edit is not None:
        base, edited = draw(harness.edit(base))
    ci, mutations = draw(mutated(base, harness.focus, max_mutations=4))
    # configuration as a JSON string, as AWS Config sometimes sends it
    if draw(st.integers(0, 4)) == 0 and apply(ci, Mutation(("configuration",), "jsonify")):
        mutations = (*mutations, Mutation(("configuration",), "jsonify"))
    params = draw(harness.params)
    answers = draw(harness.answers(base))
    return ci, params, answers, f"{fixture}: {edited + '; ' if edited else ''}{describe(mutations)}"


@rule_param
def test_mutated_items_clear_outcome_never_wrongly_compliant(bench: Bench) -> None:
    harness = bench.harness

    @given(
        case=fuzz_case(harness),
        left_scope=st.sampled_from([False, False, False, None, "false", *LEFT_SCOPE_TRUE]),
    )
    def examples(case: tuple[dict[str, Any], dict[str, Any], Answers, str], left_scope: Any) -> None:
        tally()
        ci, params, answers, context = case
        try:
            parsed = bench.params(params)
        except InvalidParametersError:
            assume(False)  # a valid value per parameter can still fail a cross-check (tested elsewhere)
        note(f"{context} | params {params} | answers {answers} | eventLeftScope {left_scope!r}")
        bench.api.set(answers)
        outcome = run(
            bench.rule, change_event(ci, {**ENGINE, **params}, eventLeftScope=left_scope), bench.rec
        )
        count(f"{harness.rule}: {outcome.label}")
        check_clear(outcome, ci, context)
        if outcome.compliance == C and known_defect(outcome) is None:
            reason = harness.may_comply(ci, parsed, answers)
            assert reason is None, f"COMPLIANT although {reason} ({context})"
            assert left_scope not in LEFT_SCOPE_TRUE, "COMPLIANT for a resource that left the scope"
        if left_scope in LEFT_SCOPE_TRUE and outcome.error is None:
            assert outcome.compliance == NA
        status = ci.get("configurationItemStatus")
        if (
            status in DELETED_STATUSES
            and outcome.error is None
            and ci.get("resourceType") in SPECS[harness.rule].resource_types
        ):
            assert outcome.compliance == NA, f"{status} gave {outcome.label}"

    examples()


# ------------------------------------------------------------------------ property 2: needed fields
def _digits_of(value: Any, valid: tuple[str, ...] | None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and str(value) in (valid or ())


def _breaking_values(needed: Needed, original: Any) -> st.SearchStrategy[tuple[str, Any]]:
    """(kind, value) replacements that make ``needed`` unusable for a COMPLIANT verdict."""
    kinds: list[st.SearchStrategy[tuple[str, Any]]] = []
    others = st.one_of(
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    )
    if needed.kind in ("str", "str_json"):
        # a number whose digits are a valid value reads as that value (e.g. an IMDS version 2)
        kinds.append(
            others.filter(lambda v: not isinstance(v, str) and not _digits_of(v, needed.valid)).map(
                lambda v: ("wrong_type", v)
            )
        )
        if needed.valid is not None:
            kinds.append(unknown_string(needed.valid, needed.normalise).map(lambda v: ("unknown", v)))
        if needed.kind == "str_json":
            kinds.append(garbage_json_strings().map(lambda v: ("garbage_json", v)))
    elif needed.kind == "bool":
        kinds.append(others.filter(lambda v: not isinstance(v, bool)).map(lambda v: ("wrong_type", v)))
        kinds.append(unknown_string(BOOL_STRINGS, bool_normalise).map(lambda v: ("unknown", v)))
    elif needed.kind == "int":
        lo, hi = needed.int_range or (0, 0)
        kinds.append(
            st.one_of(
                st.booleans(),
                st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
                st.lists(st.integers(), max_size=2),
                st.sampled_from(["abc", "365.5", "", "1e3"]),
            ).map(lambda v: ("wrong_type", v))
        )
        kinds.append(
            st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)).map(
                lambda v: ("unknown", v)
            )
        )
    elif needed.kind == "object":
        kinds.append(
            st.one_of(
                st.booleans(),
                st.integers(),
                st.lists(st.integers(), max_size=2),
                garbage_json_strings(),
                st.sampled_from(["abc", "[]", "[1]", "null"]),
            ).map(lambda v: ("wrong_type", v))
        )
    elif needed.kind == "list" and needed.target != "ci" and len(needed.paths[0]) == 1:
        pass  # a paginated result key: botocore's parser always makes it a list; only its absence is real
    elif needed.kind == "list":
        kinds.append(
            st.one_of(
                st.booleans(),
                st.integers(),
                st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
                garbage_json_strings(),
                st.sampled_from(["abc", "{}"]),
            ).map(lambda v: ("wrong_type", v))
        )
    if needed.delete_breaks:
        kinds.append(st.sampled_from([("delete", None), ("null", None)]))
    return st.one_of(kinds)


def _present(baseline: Baseline, needed: Needed) -> bool:
    """The baseline has the field (a field dropped from the item, or an API not called, has nothing to
    break)."""
    if needed.target == "ci":
        return get_path(baseline.item(), needed.paths[0]) is not MISSING
    answer = baseline.answers.get(needed.target)
    return answer is not None and get_path(dict(answer.response), needed.paths[0]) is not MISSING


@rule_param
def test_broken_needed_field_is_never_compliant(bench: Bench) -> None:
    harness = bench.harness
    cases = [
        (index, baseline, needed)
        for index, baseline in enumerate(harness.baselines)
        for needed in (*harness.needed, *EXTRA_NEEDED.get((harness.rule, index), ()))
        if _present(baseline, needed)
    ]

    @scaled(0.25)
    @given(data=st.data(), case=st.sampled_from(cases))
    def examples(data: st.DataObject, case: tuple[int, Baseline, Needed]) -> None:
        tally()
        index, baseline, needed = case
        ci = baseline.item()
        answers = copy.deepcopy(baseline.answers)
        tree: Any = ci if needed.target == "ci" else dict(answers[needed.target].response)
        original = get_path(tree, needed.paths[0])
        assume(original is not MISSING)
        kind, value = data.draw(_breaking_values(needed, original), label=f"break {needed.name}")
        for path in needed.paths:
            apply(tree, Mutation(path, "delete" if kind == "delete" else kind, value))
        if needed.target != "ci":
            old = answers[needed.target]
            answers[needed.target] = Answer("ok", tree, old.key_ids)
        bench.api.set(answers)
        context = f"baseline {index} {baseline.fixture}: {kind} {needed.target}:{needed.name} = {value!r}"[
            :400
        ]
        outcome = run(bench.rule, change_event(ci, {**ENGINE, **baseline.params}), bench.rec)
        count(f"{needed.name} {kind} -> {outcome.label}")
        check_clear(outcome, ci, context)
        if known_defect(outcome) is None:
            assert outcome.compliance != C, f"COMPLIANT with {context}: {outcome.records}"

    examples()


# ------------------------------------------------------------------------- property 2: policy edits
EDITED = sorted(name for name in RULES if HARNESSES[name].edit is not None)


@pytest.mark.parametrize("bench", EDITED, indirect=True)
def test_policy_edits_never_wrongly_compliant(bench: Bench) -> None:
    """The policy rules' baselines with only policy edits (principals, operators, condition keys and values,
    effects, actions, resources, statements): every verdict is clear and a COMPLIANT is one the oracle
    allows. Without the generic mutations most edited policies still parse, so the oracle is exercised."""
    harness = bench.harness
    edit = harness.edit
    assert edit is not None

    @scaled(0.5)
    @given(data=st.data(), index=st.integers(0, len(harness.baselines) - 1))
    def examples(data: st.DataObject, index: int) -> None:
        tally()
        baseline = harness.baselines[index]
        ci, done = data.draw(edit(baseline.item()), label="policy edits")
        parsed = bench.params(baseline.params)
        bench.api.set(baseline.answers)
        context = f"{baseline.fixture}: {done or 'no edit'}"
        outcome = run(bench.rule, change_event(ci, {**ENGINE, **baseline.params}), bench.rec)
        count(f"{harness.rule}: {outcome.label}")
        check_clear(outcome, ci, context)
        if outcome.compliance == C and known_defect(outcome) is None:
            reason = harness.may_comply(ci, parsed, baseline.answers)
            assert reason is None, f"COMPLIANT although {reason} ({context})"

    examples()


# ---------------------------------------------------------------------------- property 3: out of scope
@rule_param
def test_deleted_or_out_of_scope_is_not_applicable(bench: Bench) -> None:
    harness = bench.harness
    fixtures = fixtures_for(SPECS[harness.rule].rule_class().RESOURCE_TYPES)

    @scaled(0.1)
    @given(
        fixture=st.sampled_from(fixtures),
        status=st.sampled_from([*DELETED_STATUSES, "OK", "ResourceDiscovered"]),
        left_scope=st.sampled_from([False, None, *LEFT_SCOPE_TRUE]),
        configuration=st.sampled_from(["null", "empty", "fixture", "mutated", "string"]),
        data=st.data(),
    )
    def examples(fixture: str, status: str, left_scope: Any, configuration: str, data: st.DataObject) -> None:
        tally()
        out_of_scope = status in DELETED_STATUSES or left_scope in LEFT_SCOPE_TRUE
        assume(out_of_scope)
        ci = load_fixture(fixture)
        ci["configurationItemStatus"] = status
        if configuration == "null":
            ci["configuration"] = None
        elif configuration == "empty":
            ci["configuration"] = {}
        elif configuration == "string":
            ci["configuration"] = json.dumps(ci["configuration"])
        elif configuration == "mutated":
            inner, mutations = data.draw(mutated(ci["configuration"], (), 4))
            ci["configuration"] = inner
            note(describe(mutations))
        bench.api.set({})  # no API answer: an out-of-scope resource needs none
        params = {**ENGINE, **harness.required}
        outcome = run(bench.rule, change_event(ci, params, eventLeftScope=left_scope), bench.rec)
        count(f"{status}/{left_scope!r} -> {outcome.label}")
        assert outcome.error is None, f"{status}, eventLeftScope {left_scope!r}: {outcome.error!r}"
        assert outcome.compliance == NA, outcome.records
        assert outcome.records and outcome.records[0]["ComplianceResourceId"] == ci["resourceId"]

    examples()


# ------------------------------------------------------------------------------ raw event envelopes
@st.composite
def envelope(draw: st.DrawFn, harness: Harness) -> tuple[Any, str]:
    """A change event whose envelope is damaged in one or more ways (the item itself is a fixture)."""
    fixture = draw(st.sampled_from(fixtures_for(SPECS[harness.rule].rule_class().RESOURCE_TYPES)))
    ci = load_fixture(fixture)
    params = {**ENGINE, **harness.required}
    event_: dict[str, Any] = change_event(ci, params)
    invoking = json.loads(event_["invokingEvent"])
    changes: list[str] = []
    if draw(st.booleans()):
        what = draw(
            st.sampled_from(
                [
                    "drop",
                    "garbage",
                    "messageType",
                    "noMessageType",
                    "ciString",
                    "ciList",
                    "ciNull",
                    "summaryOnly",
                ]
            )
        )
        changes.append(what)
        if what == "drop":
            invoking.pop("configurationItem")
        elif what == "garbage":
            invoking["configurationItem"] = draw(json_values())
        elif what == "messageType":
            invoking["messageType"] = draw(st.one_of(unicode_text(30), json_values(3)))
        elif what == "noMessageType":
            invoking.pop("messageType")
        elif what == "ciString":
            invoking["configurationItem"] = json.dumps(ci)
        elif what == "ciList":
            invoking["configurationItem"] = [ci]
        elif what == "ciNull":
            invoking["configurationItem"] = None
        elif what == "summaryOnly":
            invoking["configurationItemSummary"] = {
                "resourceType": ci["resourceType"],
                "resourceId": ci["resourceId"],
            }
            invoking.pop("configurationItem")
    form = draw(
        st.sampled_from(["string", "string", "object", "garbage", "list", "empty", "huge", "missing"])
    )
    changes.append(f"invokingEvent:{form}")
    if form == "string":
        event_["invokingEvent"] = json.dumps(invoking)
    elif form == "object":
        event_["invokingEvent"] = invoking
    elif form == "garbage":
        event_["invokingEvent"] = draw(garbage_json_strings())
    elif form == "list":
        event_["invokingEvent"] = json.dumps([invoking])
    elif form == "empty":
        event_["invokingEvent"] = draw(st.sampled_from(["", " ", "{}", "null", "0"]))
    elif form == "huge":
        event_["invokingEvent"] = draw(huge_values().map(json.dumps))
    else:
        event_.pop("invokingEvent")
    params_form = draw(
        st.sampled_from(["keep", "keep", "missing", "empty", "garbage", "list", "object", "null", "huge"])
    )
    changes.append(f"ruleParameters:{params_form}")
    if params_form == "missing":
        event_.pop("ruleParameters")
    elif params_form == "empty":
        event_["ruleParameters"] = ""
    elif params_form == "garbage":
        event_["ruleParameters"] = draw(garbage_json_strings())
    elif params_form == "list":
        event_["ruleParameters"] = "[]"
    elif params_form == "object":
        event_["ruleParameters"] = dict(params)
    elif params_form == "null":
        event_["ruleParameters"] = None
    elif params_form == "huge":
        event_["ruleParameters"] = draw(huge_values().map(json.dumps))
    if draw(st.integers(0, 5)) == 0:
        event_.pop("resultToken")
        changes.append("no resultToken")
    shape = draw(st.sampled_from(["dict", "dict", "dict", "list", "string", "none"]))
    if shape != "dict":
        changes.append(f"event:{shape}")
    wrapped: Any = {"dict": event_, "list": [event_], "string": json.dumps(event_), "none": None}[shape]
    return wrapped, f"{fixture}: {', '.join(changes)}"


@rule_param
def test_damaged_event_envelopes_fail_clearly(bench: Bench) -> None:
    harness = bench.harness

    @scaled(0.25)
    @given(case=envelope(harness))
    def examples(case: tuple[Any, str]) -> None:
        tally()
        raw_event, context = case
        note(context)
        bench.api.set({})
        outcome = run(bench.rule, raw_event, bench.rec)
        count(f"{harness.rule}: {outcome.label}")
        if known_defect(outcome) is not None:
            return
        error = outcome.error
        if error is None:
            assert len(outcome.records or []) == 1 and outcome.posted == outcome.records, context
            record = (outcome.records or [{}])[0]
            assert len(record.get("Annotation", "")) <= ANNOTATION_LIMIT, context
        elif isinstance(error, EvaluationIncomplete):
            for failure in outcome.failures():
                assert failure["code"] not in BUILTIN_EXCEPTIONS, f"{context}: {failure}"
            assert outcome.posted == [], context
        elif isinstance(error, InvalidParametersError):
            # a damaged invokingEvent/ruleParameters document, a parameter it (mis)names, or a required
            # parameter it lacks (named)
            named = "|".join(["invokingEvent", "ruleParameters", "parameter", *harness.required])
            assert re.search(named, str(error)), f"{context}: {error}"
            assert outcome.posted == [], context
        elif type(error) is ValueError:
            assert re.search(r"invokingEvent|resultToken|messageType", str(error)), f"{context}: {error}"
            assert outcome.posted == [], context
        else:
            raise AssertionError(f"{context}: {type(error).__name__}: {str(error)[:300]}")

    examples()


# -------------------------------------------------------------------- known defects: minimal examples
def _with_capture_time(value: Any) -> Callable[[Bench], Outcome]:
    def reproduce(bench: Bench) -> Outcome:
        ci = load_fixture("kms_customer_key.json")
        ci["configurationItemCaptureTime"] = value
        return run(bench.rule, change_event(ci, ENGINE), bench.rec)

    return reproduce


def _rotation_period_zero(bench: Bench) -> Outcome:
    bench.api.set({ROTATION_OP: Answer("ok", {"KeyRotationEnabled": True, "RotationPeriodInDays": 0})})
    ci = load_fixture("kms_customer_key.json")
    return run(bench.rule, change_event(ci, {**ENGINE, "MaxRotationPeriodInDays": "365"}), bench.rec)


def _configuration_item_true(bench: Bench) -> Outcome:
    event_ = change_event(load_fixture("kms_customer_key.json"), ENGINE)
    invoking = json.loads(event_["invokingEvent"])
    invoking["configurationItem"] = True
    event_["invokingEvent"] = json.dumps(invoking)
    return run(bench.rule, event_, bench.rec)


def _key_metadata_true(fixture: str, key_arn: str) -> Callable[[Bench], Outcome]:
    def reproduce(bench: Bench) -> Outcome:
        bench.api.set({DESCRIBE_KEY: Answer("ok", {"KeyMetadata": True}, frozenset({key_arn}))})
        return run(bench.rule, change_event(load_fixture(fixture), ENGINE), bench.rec)

    return reproduce


# Fixed defects: id -> (rule, fixture, minimal example), each must give a clear outcome.
KMS_FIXTURE = "kms_customer_key.json"
FIXED_REPRODUCERS: dict[str, tuple[str, str, Callable[[Bench], Outcome]]] = {
    "D4-configuration-item-not-object": ("KMS_CMK_ROTATION_ENABLED", KMS_FIXTURE, _configuration_item_true),
    "D3-rotation-period-range": ("KMS_CMK_ROTATION_ENABLED", KMS_FIXTURE, _rotation_period_zero),
    "D1-capture-time-string": ("KMS_CMK_ROTATION_ENABLED", KMS_FIXTURE, _with_capture_time("1e+308")),
    "D2-capture-time-number": ("KMS_CMK_ROTATION_ENABLED", KMS_FIXTURE, _with_capture_time(1e300)),
    # DescribeKey's KeyMetadata as true: was a bare TypeError ("argument of type 'bool' is not iterable")
    "D5-rds-key-metadata-not-object": (
        "RDS_STORAGE_ENCRYPTED_WITH_CMK",
        "rds_instance_cmk.json",
        _key_metadata_true("rds_instance_cmk.json", RDS_KEY_ARN),
    ),
    "D5-s3-sse-key-metadata-not-object": (
        "S3_BUCKET_SSE_KMS_ENFORCED",
        "s3_sse_kms_cmk.json",
        _key_metadata_true("s3_sse_kms_cmk.json", S3_KEY_ARN),
    ),
}

# Open defects (KNOWN_DEFECTS): reproducer id -> (defect id, rule, fixture, minimal example). None open.
OPEN_REPRODUCERS: dict[str, tuple[str, str, str, Callable[[Bench], Outcome]]] = {}


def test_every_known_defect_is_reproduced() -> None:
    assert {entry[0] for entry in OPEN_REPRODUCERS.values()} == {d.id for d in KNOWN_DEFECTS}


@pytest.mark.parametrize(
    ("defect", "bench"),
    [
        pytest.param(
            name,
            OPEN_REPRODUCERS[name][1],
            id=name,
            marks=pytest.mark.xfail(strict=True, reason=f"open defect {name}: see KNOWN_DEFECTS"),
        )
        for name in OPEN_REPRODUCERS
    ],
    indirect=["bench"],
)
def test_known_defect_reproduces(defect: str, bench: Bench) -> None:
    """Each open defect's minimal example (strict xfail): once the rule is fixed this passes, the xfail
    turns into a failure, and the KNOWN_DEFECTS entry (and this reproducer) must be removed."""
    _, _, fixture, reproduce = OPEN_REPRODUCERS[defect]
    outcome = reproduce(bench)
    matched = [d.id for d in KNOWN_DEFECTS if d.matches(outcome)]
    assert not matched, f"{defect} still reproduces: {outcome.label} {outcome.failures()}"
    check_clear(outcome, load_fixture(fixture), defect)


@pytest.mark.parametrize(
    ("defect", "bench"),
    [pytest.param(name, FIXED_REPRODUCERS[name][0], id=name) for name in FIXED_REPRODUCERS],
    indirect=["bench"],
)
def test_fixed_defect_stays_fixed(defect: str, bench: Bench) -> None:
    """The minimal examples of the defects this fuzzing found (and that were fixed) give a clear outcome."""
    _, fixture, reproduce = FIXED_REPRODUCERS[defect]
    check_clear(reproduce(bench), load_fixture(fixture), defect)
