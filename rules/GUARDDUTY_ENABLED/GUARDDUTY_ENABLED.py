"""GUARDDUTY_ENABLED: Amazon GuardDuty watches the account in this Region.

Resource type: ``AWS::::Account`` (resource id: the account id). Trigger: periodic only (24 h): the
absence of a detector produces no configuration item, so no change trigger could see it.
Parameters: ``RequiredFeatures`` (optional CSV of botocore's GuardDuty ``DetectorFeature`` names, e.g.
``S3_DATA_EVENTS,RUNTIME_MONITORING``), ``ExemptionTagKey`` (engine; matched against the detector's
tags, since an account in a Region has no tags of its own).

Scenarios (the tests follow this list):

1. Given no detector in the Region (ListDetectors returns none)
   Then NON_COMPLIANT: enable GuardDuty (CreateDetector with Enable true).
2. Given one detector whose Status is DISABLED (suspended)
   Then NON_COMPLIANT: re-enable it (UpdateDetector with Enable true).
3. Given one detector whose Status is ENABLED and no RequiredFeatures
   Then COMPLIANT.
4. Given RequiredFeatures and a detector whose Features list each of them with Status ENABLED
   Then COMPLIANT.
5. Given RequiredFeatures of which a feature is DISABLED, or not listed at all (features differ by
   Region), in GetDetector's Features
   Then NON_COMPLIANT, the annotation names each missing feature and how it is missing.
6. Given RequiredFeatures with EKS_RUNTIME_MONITORING and a detector with RUNTIME_MONITORING ENABLED
   Then EKS_RUNTIME_MONITORING counts as enabled: Runtime Monitoring includes EKS threat detection, and
   GuardDuty rejects both in one request (botocore guardduty model, DetectorFeatureConfiguration). Naming
   both is therefore satisfied by RUNTIME_MONITORING alone (the runbook enables only it).
7. Given a detector Status or feature Status this rule does not know
   Then NON_COMPLIANT naming the value (never COMPLIANT).
8. Given a detector carrying the ExemptionTagKey tag
   Then NOT_APPLICABLE with the tag's value as the reason. A Region without a detector cannot be
   exempted by tag (there is nothing to tag): do not deploy the rule there.
9. Given ListDetectors returning more than one detector (AWS allows one per account and Region:
   CreateDetector's documentation), or a GetDetector response without Status, or without Features
   while RequiredFeatures is set
   Then the evaluation fails (MalformedConfigurationItem naming the call): never COMPLIANT.
10. Given AccessDenied, throttling or any other error on STS GetCallerIdentity, ListDetectors or
    GetDetector
    Then the evaluation fails naming the call.
11. Given a scheduled event for account A while the function's identity is in account B
    (AssumeRoleMode off in an organization deployment)
    Then the evaluation fails: B's GuardDuty must never be reported as A's.
12. Calls: GetCallerIdentity (no permission needed), ListDetectors (paginated), GetDetector once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from rdklib import ComplianceType, Evaluation

from ml_guardrails.ci import MalformedConfigurationItem, as_list, as_str, reading, response_field, tags_from
from ml_guardrails.engine import (
    ACCOUNT_RESOURCE_TYPE,
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    lambda_handler_for,
    make_evaluation,
)
from ml_guardrails.params import CsvParameter

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory
    from ml_guardrails.ci import ConfigurationItem

RESOURCE_TYPE = ACCOUNT_RESOURCE_TYPE
# botocore 1.44.8 guardduty model, shape DetectorFeature (the names CreateDetector/UpdateDetector accept);
# a test keeps this list equal to the installed model's enum.
FEATURES = (
    "S3_DATA_EVENTS",
    "EKS_AUDIT_LOGS",
    "EBS_MALWARE_PROTECTION",
    "RDS_LOGIN_EVENTS",
    "LAMBDA_NETWORK_LOGS",
    "EKS_RUNTIME_MONITORING",
    "RUNTIME_MONITORING",
    "AI_PROTECTION",
    "AI_ANALYST",
)
EKS_RUNTIME, RUNTIME = "EKS_RUNTIME_MONITORING", "RUNTIME_MONITORING"
ENABLED, DISABLED = "ENABLED", "DISABLED"  # DetectorStatus and FeatureStatus enums
RUNBOOK = "MlGuardrails-EnableGuardDuty"


class Verdict(NamedTuple):
    compliance: str
    annotation: str


@dataclass(frozen=True)
class Params:
    required_features: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Detector:
    """What GetDetector says about the Region's detector."""

    detector_id: str
    status: str
    features: Mapping[str, str] | None  # feature name -> status; None: the response had no Features
    tags: Mapping[str, str]

    @classmethod
    def from_response(cls, detector_id: str, response: Mapping[str, Any]) -> Detector:
        status = as_str(response_field(response, "Status", "GetDetector"), "GetDetector Status")
        raw_features = response.get("Features")
        features: dict[str, str] | None = None
        if raw_features is not None:
            features = {}
            for entry in as_list(raw_features, "GetDetector Features"):
                if not isinstance(entry, Mapping):
                    raise MalformedConfigurationItem(
                        f"GetDetector Features entry is not an object: {entry!r}"
                    )
                name = as_str(entry.get("Name"), "GetDetector Features Name")
                features[name] = as_str(entry.get("Status"), f"GetDetector feature {name} Status")
        return cls(detector_id, status, features, tags_from(response.get("Tags")))


# ------------------------------------------------------------------------------------------ decisions
def feature_gaps(features: Mapping[str, str], required: frozenset[str]) -> list[str]:
    """Each required feature that is not ENABLED, with how it is missing (pure)."""
    gaps: list[str] = []
    for name in sorted(required):
        status = features.get(name)
        if status == ENABLED or (name == EKS_RUNTIME and features.get(RUNTIME) == ENABLED):
            continue
        if status is None:
            gaps.append(f"{name} (not listed: not available in this Region?)")
        elif status == DISABLED:
            gaps.append(f"{name} (DISABLED)")
        else:
            gaps.append(f"{name} (unknown status {status!r})")
    return gaps


def decide(detector: Detector | None, params: Params) -> Verdict:
    """The account's verdict from its Region's detector, None meaning there is none (pure; no I/O).

    Raises MalformedConfigurationItem when RequiredFeatures is set and GetDetector listed no Features.
    """
    nc = ComplianceType.NON_COMPLIANT
    if detector is None:
        return Verdict(
            nc,
            "GuardDuty is not enabled in this Region: no detector exists. Enable it: CreateDetector with "
            f"Enable true and the required features (runbook {RUNBOOK}).",
        )
    did = detector.detector_id
    if detector.status == DISABLED:
        return Verdict(
            nc,
            f"GuardDuty detector {did} is suspended (Status DISABLED): no threat is detected. Re-enable it: "
            f"UpdateDetector with Enable true (runbook {RUNBOOK}).",
        )
    if detector.status != ENABLED:
        return Verdict(
            nc,
            f"GuardDuty detector {did} has Status {detector.status!r}, unknown to this rule, so it cannot "
            "tell whether GuardDuty is on. Check the detector, then update ml-guardrails.",
        )
    required = params.required_features
    if not required:
        return Verdict(ComplianceType.COMPLIANT, f"GuardDuty detector {did} is enabled.")
    if detector.features is None:
        raise MalformedConfigurationItem(
            f"GetDetector response for detector {did} has no Features, so RequiredFeatures cannot be "
            "checked; the account is not marked COMPLIANT.",
            operation="GetDetector",
        )
    gaps = feature_gaps(detector.features, required)
    if gaps:
        return Verdict(
            nc,
            f"GuardDuty detector {did} is enabled but required features are not: {', '.join(gaps)}. "
            f"Enable them: UpdateDetector Features Status ENABLED (runbook {RUNBOOK}).",
        )
    return Verdict(
        ComplianceType.COMPLIANT,
        f"GuardDuty detector {did} is enabled with {', '.join(sorted(required))}.",
    )


# ------------------------------------------------------------------------------------------ AWS reads
def read_detector(guardduty: Any) -> Detector | None:
    """The Region's detector (ListDetectors, paginated, then GetDetector), None when there is none."""
    ids: list[str] = []
    for page in guardduty.get_paginator("list_detectors").paginate():
        with reading("ListDetectors"):
            for value in as_list(response_field(page, "DetectorIds", "ListDetectors"), "DetectorIds"):
                ids.append(as_str(value, "ListDetectors DetectorIds entry"))
    if not ids:
        return None
    if len(ids) > 1:
        # "You can have only one detector per account per Region" (CreateDetector, botocore guardduty
        # model): two mean the answer cannot be trusted, so neither is taken as the one in force.
        raise MalformedConfigurationItem(
            f"ListDetectors returned {len(ids)} detectors ({', '.join(ids[:3])}); GuardDuty allows one per "
            "account and Region, so the rule cannot tell which is in force. Check the account.",
            operation="ListDetectors",
        )
    with reading("GetDetector"):
        return Detector.from_response(ids[0], guardduty.get_detector(DetectorId=ids[0]))


def caller_account(clients: ClientFactory) -> str:
    """The account whose GuardDuty the clients read (GetCallerIdentity needs no IAM permission)."""
    identity = clients.build_client("sts").get_caller_identity()
    with reading("GetCallerIdentity"):
        return as_str(response_field(identity, "Account", "GetCallerIdentity"), "Account")


def _event_account(event: Any) -> str | None:
    """The account a Config event is about (``accountId``, else the invoking event's awsAccountId)."""
    if not isinstance(event, Mapping):
        return None
    account = event.get("accountId")
    if isinstance(account, str) and account:
        return account
    invoking = event.get("invokingEvent")
    if isinstance(invoking, str):
        try:
            invoking = json.loads(invoking)
        except ValueError:
            return None
    if isinstance(invoking, Mapping) and isinstance(invoking.get("awsAccountId"), str):
        return str(invoking["awsAccountId"])
    return None


# ----------------------------------------------------------------------------------------------- rule
class GUARDDUTY_ENABLED(GuardrailRule[Params]):
    """GuardDuty has an enabled detector in the Region, with the required features."""

    RULE_NAME = "GUARDDUTY_ENABLED"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = (
        CsvParameter(
            "RequiredFeatures",
            "Comma-separated GuardDuty features that must be ENABLED, among " + ", ".join(FEATURES) + ". "
            "Unset: an enabled detector suffices.",
            choices=FEATURES,
        ),
    )
    # The account a scheduled event is about; set per invocation by evaluate_periodic.
    expected_account: str | None = None

    def make_params(self, values: Mapping[str, Any]) -> Params:
        return Params(required_features=values.get("RequiredFeatures") or frozenset())

    def evaluate_periodic(
        self, event: Any, client_factory: ClientFactory, valid_rule_parameters: Any
    ) -> list[Evaluation]:
        self.expected_account = _event_account(event)
        result: list[Evaluation] = super().evaluate_periodic(event, client_factory, valid_rule_parameters)
        return result

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        # Config sends no change notification for AWS::::Account; should one come, read the account.
        self.expected_account = item.resource_id
        return self._evaluate_account(clients, params)

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        outcome = guarded(
            RESOURCE_TYPE, self.expected_account or "*", lambda: self._evaluate_account(clients, params)
        )
        if outcome is not None:
            yield outcome

    def _evaluate_account(self, clients: ClientFactory, params: RuleParameters[Params]) -> Evaluation:
        account = caller_account(clients)
        if self.expected_account and account != self.expected_account:
            raise MalformedConfigurationItem(
                f"The rule's identity is in account {account} but the event is for account "
                f"{self.expected_account}: set ExecutionRoleName (or AssumeRoleMode true) so the rule reads "
                "the evaluated account's GuardDuty.",
                operation="GetCallerIdentity",
            )
        detector = read_detector(clients.build_client("guardduty"))
        if detector is not None:
            exempt = params.exemption(RESOURCE_TYPE, account, detector.tags)
            if exempt is not None:
                return exempt
        verdict = decide(detector, params.rule)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, account, verdict.annotation)


lambda_handler = lambda_handler_for(GUARDDUTY_ENABLED)
