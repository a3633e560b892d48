"""GUARDDUTY_ENABLED against moto: the periodic sweep, end to end through the handler, fail-closed paths.

moto 5.2.5 differs from AWS here; the tests follow AWS and say so where it matters. :func:`aws_guardduty`
patches moto's GuardDuty model *in the tests only* (nothing in the rule or the package depends on it):
* CreateDetector: AWS enables every optional feature not named in the request except RUNTIME_MONITORING
  ("When you specify some of the features, any feature that is not specified in the API call gets enabled
  by default, with an exception to RUNTIME_MONITORING": CreateDetector in botocore's guardduty model) and
  lists the foundational FLOW_LOGS/CLOUD_TRAIL/DNS_LOGS; moto stores only the features given.
* UpdateDetector: AWS changes only the features named (each by Name); moto replaces the whole list.
* A second CreateDetector in a Region: AWS answers BadRequestException ("You can have only one detector
  per account per Region"); moto creates another. The unpatched moto is used to show what the rule does
  when ListDetectors lists two.
* ListDetectors ignores MaxResults/NextToken: pagination is shown with an injected first page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.exceptions import JsonRESTError
from moto.guardduty import models as gd_models
from rdklib import ComplianceType, InvalidParametersError

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.engine import EvaluationIncomplete, Failure, handle
from ml_guardrails.testing import (
    ACCOUNT_ID,
    NOTIFICATION_TIME,
    REGION,
    PutEvaluationsRecorder,
    inject,
    scheduled_event,
)

SPEC = get("GUARDDUTY_ENABLED")
mod = SPEC.load_module()
RULE = mod.GUARDDUTY_ENABLED
ACCOUNT = "AWS::::Account"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
FOUNDATIONAL = ("FLOW_LOGS", "CLOUD_TRAIL", "DNS_LOGS")
# The optional features a new detector lists in AWS (the rule's FEATURES without the newest, which are
# not in every Region: they show the "not listed" path), and the one AWS leaves off by default.
DEFAULT_FEATURES = (
    "S3_DATA_EVENTS",
    "EKS_AUDIT_LOGS",
    "EBS_MALWARE_PROTECTION",
    "RDS_LOGIN_EVENTS",
    "LAMBDA_NETWORK_LOGS",
    "EKS_RUNTIME_MONITORING",
    "RUNTIME_MONITORING",
)
OFF_BY_DEFAULT = ("RUNTIME_MONITORING",)


class _DetectorExists(JsonRESTError):
    code = 400

    def __init__(self) -> None:
        super().__init__(
            "BadRequestException",
            "The request is rejected because a detector already exists for the current account.",
        )

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("X-Amzn-ErrorType", "BadRequestException")]


def _aws_features(given: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    named = {f.get("name"): f.get("status") for f in given or [] if isinstance(f, dict)}
    features = [{"name": n, "status": "ENABLED"} for n in FOUNDATIONAL]
    for name in DEFAULT_FEATURES:
        default = "DISABLED" if name in OFF_BY_DEFAULT else "ENABLED"
        features.append({"name": name, "status": named.get(name) or default})
    return features


@pytest.fixture
def aws_guardduty(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's GuardDuty with AWS's feature defaults, per-feature updates and one detector per Region."""
    original_create = gd_models.GuardDutyBackend.create_detector

    def create_detector(self: Any, enable: bool, freq: str, sources: Any, tags: Any, features: Any) -> str:
        if self.detectors:
            raise _DetectorExists()
        return str(original_create(self, enable, freq, sources, tags, _aws_features(features)))

    original_update = gd_models.Detector.update

    def update(self: Any, enable: Any, freq: Any, sources: Any, features: Any) -> None:
        merged: Any = None
        if features is not None:
            by_name = {f["name"]: dict(f) for f in self.features}
            for feature in features:
                by_name.setdefault(feature["name"], {"name": feature["name"]}).update(feature)
            merged = list(by_name.values())
        original_update(self, enable, freq, sources, merged)

    monkeypatch.setattr(gd_models.GuardDutyBackend, "create_detector", create_detector)
    monkeypatch.setattr(gd_models.Detector, "update", update)


@pytest.fixture
def aws(aws_guardduty: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def rec(aws: None) -> PutEvaluationsRecorder:
    return PutEvaluationsRecorder()


def seed_guardduty(session: boto3.Session) -> str:
    """Demo landscape for GUARDDUTY_ENABLED (the session's Region): one enabled detector with S3 Protection
    on and RDS Protection off, tagged. Default parameters: COMPLIANT; RequiredFeatures S3_DATA_EVENTS:
    COMPLIANT; RequiredFeatures RDS_LOGIN_EVENTS or RUNTIME_MONITORING: NON_COMPLIANT. Returns its id."""
    return str(
        session.client("guardduty").create_detector(
            Enable=True,
            FindingPublishingFrequency="FIFTEEN_MINUTES",
            Features=[
                {"Name": "S3_DATA_EVENTS", "Status": "ENABLED"},
                {"Name": "RDS_LOGIN_EVENTS", "Status": "DISABLED"},
            ],
            Tags={"project": "ml-platform"},
        )["DetectorId"]
    )


class CallLog:
    """Every operation clients of ``session`` make, with its parameters."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        session.events.register("provide-client-params", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [op for op, _ in self.calls]


def outcomes(session: boto3.Session, raw: dict[str, Any] | None = None) -> list[Any]:
    """The periodic path (the CLI's way: no event, so no expected account)."""
    rule = RULE()
    clients = ClientFactory(session=session, region=session.region_name, assume_role_mode=False)
    evaluations, failures = rule.run_sweep(clients, rule.evaluate_parameters(raw or {}))
    return [*evaluations, *failures]


def one(session: boto3.Session, raw: dict[str, Any] | None = None) -> Any:
    [outcome] = outcomes(session, raw)
    return outcome


# ------------------------------------------------------------------------------------------- verdicts
def test_features_list_is_botocores(aws: None) -> None:
    model = boto3.Session(region_name=REGION).client("guardduty").meta.service_model
    assert tuple(model.shape_for("DetectorFeature").enum) == mod.FEATURES


def test_seeded_detector_verdicts(rec: PutEvaluationsRecorder) -> None:
    detector_id = seed_guardduty(rec.session)
    log = CallLog(rec.session)
    outcome = one(rec.session)
    assert (outcome.complianceResourceType, outcome.complianceResourceId) == (ACCOUNT, ACCOUNT_ID)
    assert outcome.complianceType == C and detector_id in outcome.annotation
    assert log.names() == ["GetCallerIdentity", "ListDetectors", "GetDetector"]
    assert one(rec.session, {"RequiredFeatures": "S3_DATA_EVENTS,EKS_AUDIT_LOGS"}).complianceType == C
    rds = one(rec.session, {"RequiredFeatures": "S3_DATA_EVENTS,RDS_LOGIN_EVENTS"})
    assert rds.complianceType == NC and "RDS_LOGIN_EVENTS (DISABLED)" in rds.annotation
    runtime = one(rec.session, {"RequiredFeatures": "RUNTIME_MONITORING"})
    assert runtime.complianceType == NC and "RUNTIME_MONITORING (DISABLED)" in runtime.annotation
    ai = one(rec.session, {"RequiredFeatures": "AI_PROTECTION"})
    assert ai.complianceType == NC and "AI_PROTECTION (not listed" in ai.annotation


def test_no_detector_is_non_compliant(rec: PutEvaluationsRecorder) -> None:
    outcome = one(rec.session)
    assert (outcome.complianceResourceId, outcome.complianceType) == (ACCOUNT_ID, NC)
    assert "no detector exists" in outcome.annotation


def test_suspended_detector_is_non_compliant(rec: PutEvaluationsRecorder) -> None:
    detector_id = seed_guardduty(rec.session)
    rec.session.client("guardduty").update_detector(DetectorId=detector_id, Enable=False)
    outcome = one(rec.session)
    assert outcome.complianceType == NC and "suspended (Status DISABLED)" in outcome.annotation


def test_exemption_tag_on_the_detector(rec: PutEvaluationsRecorder) -> None:
    gd = rec.session.client("guardduty")
    detector_id = gd.create_detector(Enable=False, Tags={"guardrails-exempt": "RISK-12 region unused"})
    assert detector_id["DetectorId"]
    outcome = one(rec.session, {"ExemptionTagKey": "guardrails-exempt"})
    assert outcome.complianceType == NA and "RISK-12 region unused" in outcome.annotation
    assert one(rec.session).complianceType == NC  # without the parameter the tag means nothing


def test_regions_are_independent(aws: None) -> None:
    seed_guardduty(boto3.Session(region_name="us-east-1"))
    assert one(boto3.Session(region_name="us-east-1")).complianceType == C
    assert one(boto3.Session(region_name="eu-west-1")).complianceType == NC


# ----------------------------------------------------------------------------------------- fail closed
def _failure(outcome: Any) -> Failure:
    assert isinstance(outcome, Failure), outcome
    return outcome


def test_two_detectors_fail_closed() -> None:
    # unpatched moto creates a second detector (AWS refuses): the rule must not pick one
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        gd = session.client("guardduty")
        gd.create_detector(Enable=True)
        gd.create_detector(Enable=False)
        failure = _failure(one(session))
    assert (failure.resource_type, failure.operation, failure.code) == (
        ACCOUNT,
        "ListDetectors",
        "MalformedConfigurationItem",
    )
    assert "returned 2 detectors" in failure.message


def test_aws_refuses_a_second_detector(rec: PutEvaluationsRecorder) -> None:
    seed_guardduty(rec.session)
    with pytest.raises(rec.session.client("guardduty").exceptions.BadRequestException):
        rec.session.client("guardduty").create_detector(Enable=True)


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("guardduty.ListDetectors", "AccessDeniedException"),
        ("guardduty.GetDetector", "AccessDeniedException"),
        ("guardduty.GetDetector", "InternalServerErrorException"),
        ("sts.GetCallerIdentity", "AccessDenied"),
    ],
)
def test_errors_fail_closed_naming_the_call(rec: PutEvaluationsRecorder, operation: str, code: str) -> None:
    seed_guardduty(rec.session)
    status = 500 if "Internal" in code else 400
    inject(rec.session, operation, error_code=code, status=status)
    failure = _failure(one(rec.session))
    assert (failure.operation, failure.code) == (operation.split(".")[1], code)


@pytest.mark.parametrize(
    ("operation", "response", "expected"),
    [
        ("guardduty.ListDetectors", {}, "ListDetectors response has no DetectorIds"),
        ("guardduty.ListDetectors", {"DetectorIds": "abc"}, "DetectorIds must be a list"),
        ("guardduty.GetDetector", {"ServiceRole": "x"}, "GetDetector response has no Status"),
    ],
)
def test_malformed_responses_fail_closed(
    rec: PutEvaluationsRecorder, operation: str, response: dict[str, Any], expected: str
) -> None:
    seed_guardduty(rec.session)
    inject(rec.session, operation, response=response)
    failure = _failure(one(rec.session))
    assert failure.operation == operation.split(".")[1] and expected in failure.message


def test_get_detector_without_features_fails_only_when_features_are_required(
    rec: PutEvaluationsRecorder,
) -> None:
    seed_guardduty(rec.session)
    inject(rec.session, "guardduty.GetDetector", response={"Status": "ENABLED", "ServiceRole": "x"})
    assert one(rec.session).complianceType == C
    failure = _failure(one(rec.session, {"RequiredFeatures": "S3_DATA_EVENTS"}))
    assert failure.operation == "GetDetector" and "has no Features" in failure.message


def test_list_detectors_is_paginated(rec: PutEvaluationsRecorder) -> None:
    seed_guardduty(rec.session)
    inject(
        rec.session,
        "guardduty.ListDetectors",
        response={"DetectorIds": [], "NextToken": "page-2"},
        when=lambda p: not p.get("NextToken"),
    )
    log = CallLog(rec.session)
    assert one(rec.session).complianceType == C
    assert [p.get("NextToken") for op, p in log.calls if op == "ListDetectors"] == [None, "page-2"]


# ------------------------------------------------------------------------------------------ end to end
def test_e2e_periodic_trigger_posts_the_account(rec: PutEvaluationsRecorder) -> None:
    seed_guardduty(rec.session)
    records = handle(RULE(), scheduled_event({"RequiredFeatures": "RDS_LOGIN_EVENTS"}), session=rec.session)
    [posted] = rec.evaluations
    assert posted["ComplianceResourceType"] == ACCOUNT
    assert posted["ComplianceResourceId"] == ACCOUNT_ID
    assert posted["ComplianceType"] == NC
    assert posted["OrderingTimestamp"] == NOTIFICATION_TIME
    assert "RDS_LOGIN_EVENTS (DISABLED)" in posted["Annotation"]
    assert records == rec.evaluations and rec.calls[0]["TestMode"] is True
    json.dumps(records)


def test_e2e_access_denied_posts_nothing_and_fails_loudly(rec: PutEvaluationsRecorder) -> None:
    seed_guardduty(rec.session)
    inject(rec.session, "guardduty.ListDetectors", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as caught:
        handle(RULE(), scheduled_event(), session=rec.session)
    [failure] = caught.value.failures
    assert (failure.resource_id, failure.operation) == (ACCOUNT_ID, "ListDetectors")
    assert rec.evaluations == []


def test_e2e_event_for_another_account_fails(rec: PutEvaluationsRecorder) -> None:
    seed_guardduty(rec.session)
    event = scheduled_event({"AssumeRoleMode": "false"}, accountId="111122223333")
    with pytest.raises(EvaluationIncomplete) as caught:
        handle(RULE(), event, session=rec.session)
    [failure] = caught.value.failures
    assert failure.resource_id == "111122223333" and failure.operation == "GetCallerIdentity"
    assert "ExecutionRoleName" in failure.message
    assert rec.evaluations == []


def test_e2e_invalid_parameters_post_nothing(rec: PutEvaluationsRecorder) -> None:
    with pytest.raises(InvalidParametersError, match="RequiredFeatures"):
        handle(RULE(), scheduled_event({"RequiredFeatures": "S3_LOGS"}), session=rec.session)
    assert rec.calls == []


def test_catalog_entry() -> None:
    assert SPEC.resource_types == () and SPEC.periodic == "TwentyFour_Hours"
    assert RULE.RESOURCE_TYPES == (ACCOUNT,)
    assert SPEC.remediation is not None and SPEC.remediation.resource_type == ACCOUNT
    assert SPEC.remediation.parameters_for(ACCOUNT_ID) == {"AccountId": ACCOUNT_ID}
