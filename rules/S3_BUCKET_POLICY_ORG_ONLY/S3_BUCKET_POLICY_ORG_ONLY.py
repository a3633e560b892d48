"""S3_BUCKET_POLICY_ORG_ONLY -- a bucket policy grants nothing outside the organization and refuses
plain-HTTP access.

Reports on: AWS::S3::Bucket. Triggers: configuration change (incl. oversized CI) and periodic (24 h).

Parameters:
  OrganizationId (required, ``o-[a-z0-9]{10,32}``; parameters.json ships AWS's placeholder
    ``o-exampleorgid``, which matches no organization: deployments set the real id): the AWS
    Organizations id the data must stay in.
  ExemptionTagKey (optional, every rule): a bucket with this tag is NOT_APPLICABLE.

An Allow statement *reaches outside* when its principal is ``*`` / ``{"AWS": "*"}``, any ``NotPrincipal``
(everyone but the listed), or an AWS principal (account id, ``arn:aws:iam::<id>:root``, role/user ARN)
of another account, a canonical user or a federated principal not of the bucket's account. Such a
statement is *constrained* when one of its conditions pins the caller to the organization or the
network (see ml_guardrails.policy for the exact forms):
  * ``StringEquals`` (or ``StringLike`` without wildcards, or ``StringEqualsIgnoreCase``)
    ``aws:PrincipalOrgID`` whose every value is OrganizationId;
  * ``ForAnyValue:StringEquals``/``ForAnyValue:StringLike`` ``aws:PrincipalOrgPaths`` whose every value
    starts with ``<OrganizationId>/``;
  * ``aws:SourceVpce`` equal to named endpoint ids;
  * ``aws:PrincipalAccount`` equal to the bucket's own account (the grant then stays inside the account).
  ``...IfExists`` operators and ``ForAllValues:`` never constrain an Allow: a request without the key
  passes them (IAM User Guide, reference_policies_elements_condition_operators.html#Conditions_IfExists:
  "If the key is not present, evaluate the condition element as true"). A wildcard that could match
  another organization's id does not constrain.
A bucket-wide identity-perimeter Deny (Principal ``*``, ``s3:*``, bucket and objects,
``StringNotEquals[IfExists] aws:PrincipalOrgID`` = OrganizationId, optionally excepting AWS service
principals only -- aws-samples/data-perimeter-policy-examples) constrains every Allow.

Scenarios:
  Scenario 1: Given OrganizationId missing or not ``o-[a-z0-9]{10,32}`` Then InvalidParametersError
              naming OrganizationId; nothing is evaluated or posted
  Scenario 2: Given the bucket is deleted (or left the rule's scope)    Then NOT_APPLICABLE
  Scenario 3: Given the bucket carries the ExemptionTagKey tag          Then NOT_APPLICABLE (tag value)
  Scenario 4: Given no bucket policy                                    Then NON_COMPLIANT (no TLS Deny)
  Scenario 5: Given an Allow reaching outside, not constrained          Then NON_COMPLIANT, the annotation
              names the statements by Sid (else #index)
  Scenario 6: Given no Deny of aws:SecureTransport false for Principal *, s3:* (or *), covering the
              bucket and its objects                                    Then NON_COMPLIANT
  Scenario 7: Given every outside-reaching Allow constrained (or none) and the TLS Deny
                                                                        Then COMPLIANT
  Scenario 8: Given a policy that is not valid JSON or not valid policy grammar
                                                                        Then a failed evaluation
  Scenario 9: Given GetBucketPolicy/GetBucketTagging/ListBuckets fails (AccessDenied, throttling)
                                                                        Then a failed evaluation

Call budget: change trigger 0 API calls (the CI carries supplementaryConfiguration.BucketPolicy).
Periodic: one sts:GetCallerIdentity (no permission needed; the account tells own principals from
others), ListBuckets (paginated, ``BucketRegion`` = the rule's Region, as S3_BUCKET_SSE_KMS_ENFORCED),
then per bucket GetBucketPolicy (NoSuchBucketPolicy = no policy) and GetBucketTagging only with
ExemptionTagKey (NoSuchTagSet = no tags). NoSuchBucket (deleted since listing) skips the bucket.
Remediation: none automatic (changing who may read data is a human decision); the notification
runbook MlGuardrails-NotifyNonCompliantResource publishes the finding to SNS.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError
from rdklib import ComplianceType, Evaluation

from ml_guardrails.aws import error_code
from ml_guardrails.ci import ConfigurationItem, response_field, tags_from
from ml_guardrails.engine import (
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    lambda_handler_for,
    make_evaluation,
)
from ml_guardrails.policy import (
    PolicyDocument,
    Statement,
    constrained_by,
    denies_insecure_transport,
    identity_perimeter_deny,
    labels,
    organization_id_parameter,
    outside_principals,
    parse_policy,
    pins_principal_account,
    pins_principal_org,
    pins_principal_org_paths,
    pins_source_vpce,
)
from ml_guardrails.resources.s3_bucket import (
    RESOURCE_TYPE,
    bucket_name_and_arn,
    policy_text_from_configuration_item,
)

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory

COMPLIANT = ComplianceType.COMPLIANT
NON_COMPLIANT = ComplianceType.NON_COMPLIANT
TLS_FIX = "a Deny of s3:* on bucket and bucket/* with Bool aws:SecureTransport false"
ANNOTATION_LIMIT = 256


@dataclass(frozen=True)
class Params:
    organization_id: str


class Verdict(NamedTuple):
    compliance: str
    annotation: str


# ------------------------------------------------------------------------------------- pure decisions
def _fit(text: str) -> str:
    return text if len(text) <= ANNOTATION_LIMIT else text[: ANNOTATION_LIMIT - 3] + "..."


def unconstrained_allows(
    policy: PolicyDocument, bucket_arn: str, account_id: str | None, org_id: str
) -> tuple[Statement, ...]:
    """The Allow statements that reach outside ``account_id`` without an organization/network pin."""
    if identity_perimeter_deny(policy, bucket_arn, org_id) is not None:
        return ()
    checks = (
        lambda c: pins_principal_org(c, org_id),
        lambda c: pins_principal_org_paths(c, org_id),
        pins_source_vpce,
        lambda c: pins_principal_account(c, account_id),
    )
    return tuple(
        s for s in policy.allows if outside_principals(s, account_id) and not constrained_by(s, checks)
    )


def decide(bucket_arn: str, policy_text: str | None, account_id: str | None, params: Params) -> Verdict:
    """The verdict for one bucket's policy (pure; raises PolicyError on a malformed document)."""
    org = params.organization_id
    if policy_text is None:
        return Verdict(
            NON_COMPLIANT,
            f"No bucket policy, so nothing denies plain-HTTP access. Add {TLS_FIX} (Principal *).",
        )
    policy = parse_policy(policy_text)
    open_allows = unconstrained_allows(policy, bucket_arn, account_id, org)
    tls = denies_insecure_transport(policy, bucket_arn)
    if open_allows:
        listed = labels(open_allows, 3 if tls else 2, width=24)
        text = f"Allow {listed} not limited to aws:PrincipalOrgID {org} (or OrgPaths/SourceVpce)."
        if tls:
            return Verdict(NON_COMPLIANT, text + " Add that condition to each or remove them.")
        return Verdict(
            NON_COMPLIANT, _fit(f"{text} No Deny of non-TLS access. Add the condition and {TLS_FIX}.")
        )
    if not tls:
        return Verdict(
            NON_COMPLIANT, f"No Deny of non-TLS access in the bucket policy. Add {TLS_FIX} (Principal *)."
        )
    return Verdict(
        COMPLIANT,
        f"Every cross-account Allow is limited to organization {org} and plain-HTTP access is denied.",
    )


# ------------------------------------------------------------------------------------------------- rule
class S3_BUCKET_POLICY_ORG_ONLY(GuardrailRule[Params]):
    """Bucket policies grant only inside the organization and deny plain-HTTP access."""

    RULE_NAME = "S3_BUCKET_POLICY_ORG_ONLY"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = (
        organization_id_parameter(
            "The AWS Organizations id (o-...) every cross-account Allow must be limited to."
        ),
    )

    def make_params(self, values: Mapping[str, Any]) -> Params:
        return Params(organization_id=str(values["OrganizationId"]))

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        _, arn = bucket_name_and_arn(item)
        policy_text = policy_text_from_configuration_item(item)
        verdict = decide(arn, policy_text, item.account_id, params.rule)
        return make_evaluation(verdict.compliance, item.resource_type, item.resource_id, verdict.annotation)

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        identity = clients.build_client("sts").get_caller_identity()
        account_id = str(response_field(identity, "Account", "GetCallerIdentity"))
        s3 = clients.build_client("s3")
        region = s3.meta.region_name
        partition = s3.meta.partition
        pages = s3.get_paginator("list_buckets").paginate(
            BucketRegion=region, PaginationConfig={"PageSize": 1000}
        )
        for page in pages:  # a failure to list propagates: the sweep fails, nothing is guessed
            for entry in page.get("Buckets") or []:
                name = str(response_field(entry, "Name", "ListBuckets"))
                if entry.get("BucketRegion") not in (None, region):
                    continue

                def decide_one(name: str = name) -> Evaluation:
                    return self._evaluate_listed(s3, name, partition, account_id, params)

                outcome = guarded(RESOURCE_TYPE, name, decide_one, gone=("NoSuchBucket",))
                if outcome is not None:
                    yield outcome

    def _evaluate_listed(
        self, s3: Any, name: str, partition: str, account_id: str, params: RuleParameters[Params]
    ) -> Evaluation:
        if params.exemption_tag_key:
            try:
                tags = tags_from(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
            except ClientError as exc:
                if error_code(exc) != "NoSuchTagSet":
                    raise
                tags = {}
            exempt = params.exemption(RESOURCE_TYPE, name, tags)
            if exempt is not None:
                return exempt
        policy_text: str | None = None
        try:
            policy_text = str(response_field(s3.get_bucket_policy(Bucket=name), "Policy", "GetBucketPolicy"))
        except ClientError as exc:
            if error_code(exc) != "NoSuchBucketPolicy":
                raise
        if policy_text is not None and not policy_text.strip():
            policy_text = None
        verdict = decide(f"arn:{partition}:s3:::{name}", policy_text, account_id, params.rule)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, name, verdict.annotation)


lambda_handler = lambda_handler_for(S3_BUCKET_POLICY_ORG_ONLY)
