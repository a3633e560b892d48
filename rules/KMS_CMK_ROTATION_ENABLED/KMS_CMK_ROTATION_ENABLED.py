"""KMS_CMK_ROTATION_ENABLED: customer-managed KMS keys rotate their key material automatically.

Resource type: ``AWS::KMS::Key``. Triggers: configuration change and periodic (24 h).
Parameters: ``MaxRotationPeriodInDays`` (optional, 90-2560: the range of EnableKeyRotation's
``RotationPeriodInDays`` in botocore's KMS model), ``ExemptionTagKey`` (engine).

Scenarios (the tests follow this list):

1. Given an AWS-managed key (KeyManager AWS)
   Then NOT_APPLICABLE: AWS rotates it every year and rotation is not configurable.
2. Given a key in KeyState PendingDeletion, PendingReplicaDeletion or PendingImport
   Then NOT_APPLICABLE, the annotation names the state.
3. Given Origin EXTERNAL (imported material), AWS_CLOUDHSM or EXTERNAL_KEY_STORE (custom key stores)
   Then NOT_APPLICABLE: AWS KMS does not rotate such keys automatically.
4. Given a KeySpec other than SYMMETRIC_DEFAULT (RSA, ECC, HMAC, SM2, ML-DSA, ML-KEM)
   Then NOT_APPLICABLE: automatic rotation is only for symmetric encryption keys.
5. Given a multi-Region replica key
   Then NOT_APPLICABLE: rotation is set on the primary key, named by its ARN when known.
6. Given a KeyManager, KeyState, Origin, KeySpec or MultiRegionKeyType value this rule does not know
   Then NON_COMPLIANT (never COMPLIANT): the annotation names the value; a new value could mean
   rotation applies.
7. Given a customer-managed symmetric AWS_KMS key, Enabled or Disabled, whose automatic rotation is off
   Then NON_COMPLIANT (a Disabled key keeps its rotation status; the annotation says to re-enable it
   first, since EnableKeyRotation fails on a disabled key).
8. Given such a key whose rotation is on, and no MaxRotationPeriodInDays
   Then COMPLIANT.
9. Given MaxRotationPeriodInDays, and GetKeyRotationStatus's RotationPeriodInDays at most that
   Then COMPLIANT; longer Then NON_COMPLIANT.
10. Given MaxRotationPeriodInDays, rotation on and no RotationPeriodInDays in the response
    Then the evaluation fails (IncompleteRotationStatus): the period is unknown, never COMPLIANT.
11. Given GetKeyRotationStatus answers UnsupportedOperationException for a key scenarios 1-5 keep in scope
    Then NON_COMPLIANT: AWS says this key cannot rotate although its metadata says it should.
12. Given a configuration item or API response lacking a field the decision needs, or with the wrong type
    Then the evaluation fails (MalformedConfigurationItem), never COMPLIANT.
13. Given the ExemptionTagKey tag on the key
    Then NOT_APPLICABLE with the tag's value as the reason.
14. Change path: no API call when the item has supplementaryConfiguration.KeyRotationStatus and no
    MaxRotationPeriodInDays is set; otherwise exactly one GetKeyRotationStatus (none for keys 1-6).
15. Periodic path: ListKeys (paginated), DescribeKey per key, ListResourceTags only for customer-managed
    keys and only with ExemptionTagKey set, GetKeyRotationStatus only for keys in scope. A key deleted
    between ListKeys and DescribeKey (NotFoundException) is skipped; any other error on one key fails that
    key only, and the sweep reports it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from rdklib import ComplianceType, Evaluation

from ml_guardrails.aws import is_error
from ml_guardrails.ci import reading, response_field, tags_from
from ml_guardrails.engine import (
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    lambda_handler_for,
    make_evaluation,
)
from ml_guardrails.params import IntParameter
from ml_guardrails.resources.kms_key import (
    KEY_SPECS,
    RESOURCE_TYPE,
    IncompleteRotationStatus,
    KmsKey,
    RotationStatus,
)

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory
    from ml_guardrails.ci import ConfigurationItem

# EnableKeyRotation RotationPeriodInDays: min 90, max 2560 (botocore 1.44.8 kms model; AWS default 365).
MIN_PERIOD, MAX_PERIOD = 90, 2560
NOT_APPLICABLE_STATES = {
    "PendingDeletion": "a key pending deletion is never rotated; cancelling the deletion brings it back",
    "PendingReplicaDeletion": "a replica key pending deletion is never rotated",
    "PendingImport": "a key awaiting imported key material cannot rotate automatically",
}
NOT_APPLICABLE_ORIGINS = {
    "EXTERNAL": "AWS KMS does not rotate keys with imported key material automatically",
    "AWS_CLOUDHSM": "AWS KMS does not rotate keys in a CloudHSM custom key store automatically",
    "EXTERNAL_KEY_STORE": "AWS KMS does not rotate keys in an external key store automatically",
}
GONE = ("NotFoundException",)
LIST_KEYS_PAGE = 1000


class Verdict(NamedTuple):
    compliance: str
    annotation: str


@dataclass(frozen=True)
class Params:
    max_rotation_period_days: int | None = None


# ------------------------------------------------------------------------------------------ decisions
def screen(key: KmsKey) -> Verdict | None:
    """The verdict for keys automatic rotation does not apply to (or that the rule cannot classify);
    None when the key is in scope and its rotation status decides."""
    na = ComplianceType.NOT_APPLICABLE
    if key.key_manager == "AWS":
        return Verdict(na, "AWS-managed key: AWS rotates it every year; its rotation is not configurable.")
    if key.key_state in NOT_APPLICABLE_STATES:
        return Verdict(na, f"Key state {key.key_state}: {NOT_APPLICABLE_STATES[key.key_state]}.")
    if key.origin in NOT_APPLICABLE_ORIGINS:
        return Verdict(na, f"Origin {key.origin}: {NOT_APPLICABLE_ORIGINS[key.origin]}.")
    if key.key_spec in KEY_SPECS and key.key_spec != "SYMMETRIC_DEFAULT":
        return Verdict(
            na, f"KeySpec {key.key_spec}: automatic rotation exists only for symmetric encryption keys."
        )
    if key.is_replica:
        primary = key.primary_key_arn or "(not named in the key's metadata)"
        return Verdict(
            na,
            f"Multi-Region replica key: rotation is set on its primary key {primary} and evaluated there.",
        )
    unknown = key.unknown_value()
    if unknown is not None:
        name, value = unknown
        return Verdict(
            ComplianceType.NON_COMPLIANT,
            f"{name} {value!r} is unknown to this rule, so it cannot tell whether automatic rotation "
            "applies. Check the key by hand, then update ml-guardrails or exempt the key with the exemption "
            "tag.",
        )
    return None


def decide(key: KmsKey, rotation: RotationStatus, params: Params) -> Verdict:
    """The verdict for ``key`` given its rotation status (pure; no I/O).

    Raises IncompleteRotationStatus when MaxRotationPeriodInDays is set, rotation is on and the
    period is unknown.
    """
    screened = screen(key)
    if screened is not None:
        return screened
    nc = ComplianceType.NON_COMPLIANT
    limit = params.max_rotation_period_days
    if not rotation.supported:
        return Verdict(
            nc,
            "AWS KMS answers UnsupportedOperationException for rotation of this key although its metadata "
            "shows a customer-managed symmetric AWS_KMS key. Investigate; exempt it with the exemption tag "
            "if intended.",
        )
    if not rotation.enabled:
        period = f"RotationPeriodInDays {limit} or less" if limit else "RotationPeriodInDays 90-2560"
        if key.key_state == "Disabled":
            return Verdict(
                nc,
                "Automatic key rotation is off on this disabled key (EnableKeyRotation fails while it is "
                f"disabled). Re-enable the key and call EnableKeyRotation ({period}), or schedule its "
                "deletion.",
            )
        return Verdict(nc, f"Automatic key rotation is off. Turn it on: EnableKeyRotation with {period}.")
    if limit is None:
        every = f" (every {rotation.period_days} days)" if rotation.period_days else ""
        return Verdict(ComplianceType.COMPLIANT, f"Automatic key rotation is on{every}.")
    if rotation.period_days is None:
        raise IncompleteRotationStatus(
            f"GetKeyRotationStatus for KMS key {key.key_id} says rotation is on but returns no "
            f"RotationPeriodInDays, so MaxRotationPeriodInDays={limit} cannot be checked; the key is not "
            "marked COMPLIANT. Check the response (an emulator may omit the field) and re-run."
        )
    if rotation.period_days > limit:
        return Verdict(
            nc,
            f"Key material rotates every {rotation.period_days} days, longer than MaxRotationPeriodInDays "
            f"{limit}. Shorten it: EnableKeyRotation with RotationPeriodInDays {limit} or less.",
        )
    return Verdict(
        ComplianceType.COMPLIANT,
        f"Automatic key rotation is on, every {rotation.period_days} days (at most {limit}).",
    )


# ------------------------------------------------------------------------------------------ AWS reads
def read_rotation(kms: Any, key_id: str) -> RotationStatus:
    """GetKeyRotationStatus; AWS's UnsupportedOperationException becomes an unsupported status (moto
    never raises it: it answers KeyRotationEnabled false for asymmetric keys)."""
    try:
        response = kms.get_key_rotation_status(KeyId=key_id)
    except Exception as exc:
        if is_error(exc, ("UnsupportedOperationException",)):
            return RotationStatus.unsupported()
        raise
    with reading("GetKeyRotationStatus"):
        return RotationStatus.from_response(response)


def read_tags(kms: Any, key_id: str) -> dict[str, str]:
    """ListResourceTags (paginated); KMS tags are TagKey/TagValue pairs."""
    tags: dict[str, str] = {}
    for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key_id):
        with reading("ListResourceTags"):
            tags.update(tags_from(page.get("Tags") or []))
    return tags


# ----------------------------------------------------------------------------------------------- rule
class KMS_CMK_ROTATION_ENABLED(GuardrailRule[Params]):
    """Customer-managed symmetric KMS keys have automatic key rotation on (within a maximum period)."""

    RULE_NAME = "KMS_CMK_ROTATION_ENABLED"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = (
        IntParameter(
            "MaxRotationPeriodInDays",
            "Longest allowed automatic rotation period in days (90-2560). Unset: any period passes.",
            minimum=MIN_PERIOD,
            maximum=MAX_PERIOD,
        ),
    )

    def make_params(self, values: Mapping[str, Any]) -> Params:
        return Params(max_rotation_period_days=values.get("MaxRotationPeriodInDays"))

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        key = KmsKey.from_configuration_item(item)
        verdict = screen(key)
        if verdict is None:
            if key.rotation_enabled is not None and params.rule.max_rotation_period_days is None:
                rotation = RotationStatus(enabled=key.rotation_enabled)
            else:
                rotation = read_rotation(clients.build_client("kms"), item.resource_id)
            verdict = decide(key, rotation, params.rule)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, item.resource_id, verdict.annotation)

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        kms = clients.build_client("kms")
        # ListKeys returns 100 keys a page unless Limit says otherwise; 1000 is the maximum (KMS API
        # reference, ListKeys "Limit"; botocore kms model LimitType 1-1000): 10x fewer list calls.
        pages = kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": LIST_KEYS_PAGE})
        for page in pages:
            for entry in page.get("Keys") or []:
                key_id = str(response_field(entry, "KeyId", "ListKeys"))
                decide_key = functools.partial(self._evaluate_key, kms, key_id, params)
                outcome = guarded(RESOURCE_TYPE, key_id, decide_key, gone=GONE)
                if outcome is not None:
                    yield outcome

    def _evaluate_key(self, kms: Any, key_id: str, params: RuleParameters[Params]) -> Evaluation:
        with reading("DescribeKey"):
            key = KmsKey.from_key_metadata(
                response_field(kms.describe_key(KeyId=key_id), "KeyMetadata", "DescribeKey")
            )
        # AWS-managed keys cannot be tagged, so their tags are never read.
        if params.exemption_tag_key and key.key_manager != "AWS":
            exempt = params.exemption(RESOURCE_TYPE, key_id, read_tags(kms, key_id))
            if exempt is not None:
                return exempt
        verdict = screen(key)
        if verdict is None:
            verdict = decide(key, read_rotation(kms, key_id), params.rule)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, key_id, verdict.annotation)


lambda_handler = lambda_handler_for(KMS_CMK_ROTATION_ENABLED)
