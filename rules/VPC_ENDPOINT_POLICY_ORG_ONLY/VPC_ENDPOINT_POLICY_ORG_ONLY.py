"""VPC_ENDPOINT_POLICY_ORG_ONLY -- gateway and interface VPC endpoints (S3, SageMaker API/runtime, ...)
let only the organization's identities reach the organization's resources.

Reports on: AWS::EC2::VPCEndpoint. Triggers: configuration change (incl. oversized CI) and periodic (24 h).

Parameters:
  OrganizationId (required, ``o-[a-z0-9]{10,32}``; parameters.json ships AWS's placeholder
    ``o-exampleorgid``, which matches no organization: deployments set the real id): the AWS Organizations id.
  ExemptionTagKey (optional, every rule): an endpoint with this tag is NOT_APPLICABLE.

Every Allow statement of the endpoint policy must be *constrained* by one of its conditions:
  * ``StringEquals`` (or ``StringLike`` without wildcards, or ``StringEqualsIgnoreCase``)
    ``aws:PrincipalOrgID`` and/or ``aws:ResourceOrgID`` whose every value is OrganizationId;
  * ``Bool aws:PrincipalIsAWSService true`` (AWS services calling with their service principal: the
    statement AWS's data-perimeter endpoint policies carry, aws-samples/data-perimeter-policy-examples
    vpc_endpoint_policies).
  ``...IfExists`` operators and ``ForAllValues:`` never constrain an Allow: a request without the key
  passes them (IAM User Guide, reference_policies_elements_condition_operators.html#Conditions_IfExists).

Scenarios:
  Scenario 1: Given OrganizationId missing or invalid  Then InvalidParametersError naming OrganizationId
  Scenario 2: Given the endpoint is deleted (or left the rule's scope)       Then NOT_APPLICABLE
  Scenario 3: Given the ExemptionTagKey tag                                  Then NOT_APPLICABLE (tag value)
  Scenario 4: Given VpcEndpointType GatewayLoadBalancer, Resource, ServiceNetwork or any type other than
              Gateway/Interface (no endpoint policy exists for them)        Then NOT_APPLICABLE
  Scenario 5: Given state deleting/deleted/rejected/failed/expired          Then NOT_APPLICABLE
  Scenario 6: Given the default full-access policy (Allow * * *), or no policy document at all (AWS
              then allows full access)                                      Then NON_COMPLIANT
  Scenario 7: Given an Allow statement not constrained as above             Then NON_COMPLIANT, naming it
              by Sid (else #index)
  Scenario 8: Given every Allow constrained (Deny statements are free)     Then COMPLIANT
  Scenario 9: Given a policy document that is not valid JSON/grammar, or a CI without VpcEndpointType
                                                                            Then a failed evaluation

Call budget: change trigger 0 API calls when the CI carries ``policyDocument``; otherwise one
DescribeVpcEndpoints for this endpoint (a CI may omit the field). Periodic: DescribeVpcEndpoints,
paginated, one sweep for the Region (tags come with it). Remediation: the notification runbook
MlGuardrails-NotifyNonCompliantResource (changing an endpoint policy can cut off workloads: a human
decides).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from rdklib import ComplianceType, Evaluation

from ml_guardrails.ci import ConfigurationItem, MalformedConfigurationItem, reading, response_field
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
    is_default_full_access,
    labels,
    organization_id_parameter,
    parse_policy,
    pins_principal_org,
    pins_resource_org,
    requires_aws_service,
)
from ml_guardrails.resources.vpc_endpoint import RESOURCE_TYPE, VpcEndpoint

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory

COMPLIANT = ComplianceType.COMPLIANT
NON_COMPLIANT = ComplianceType.NON_COMPLIANT
NOT_APPLICABLE = ComplianceType.NOT_APPLICABLE


@dataclass(frozen=True)
class Params:
    organization_id: str


class Verdict(NamedTuple):
    compliance: str
    annotation: str


def _fix(org: str) -> str:
    return f"Set a policy whose Allows require aws:PrincipalOrgID and/or aws:ResourceOrgID = {org}."


# ------------------------------------------------------------------------------------- pure decisions
def unconstrained_allows(policy: PolicyDocument, org_id: str) -> tuple[Statement, ...]:
    checks = (
        lambda c: pins_principal_org(c, org_id),
        lambda c: pins_resource_org(c, org_id),
        requires_aws_service,
    )
    return tuple(s for s in policy.allows if not constrained_by(s, checks))


def screen(endpoint: VpcEndpoint) -> Verdict | None:
    """NOT_APPLICABLE for endpoints without a policy to check; None when the policy decides."""
    if not endpoint.supports_policy:
        return Verdict(
            NOT_APPLICABLE,
            f"{endpoint.endpoint_type[:40]} endpoints take no endpoint policy; only Gateway and Interface "
            "endpoints are checked.",
        )
    if endpoint.inactive:
        return Verdict(NOT_APPLICABLE, f"Endpoint state {endpoint.state}: no traffic flows through it.")
    return None


def decide(endpoint: VpcEndpoint, params: Params) -> Verdict:
    """The verdict for one endpoint (pure; raises PolicyError on a malformed policy document)."""
    screened = screen(endpoint)
    if screened is not None:
        return screened
    org = params.organization_id
    if endpoint.policy_document is None:
        return Verdict(
            NON_COMPLIANT,
            "No endpoint policy: the endpoint allows full access to the service. " + _fix(org),
        )
    policy = parse_policy(endpoint.policy_document)
    if is_default_full_access(policy):
        return Verdict(NON_COMPLIANT, "The default full-access endpoint policy (Allow * on *). " + _fix(org))
    open_allows = unconstrained_allows(policy, org)
    if open_allows:
        return Verdict(
            NON_COMPLIANT,
            f"Allow statements {labels(open_allows, 3)} are not limited to organization {org}. "
            "Add StringEquals aws:PrincipalOrgID and/or aws:ResourceOrgID to each.",
        )
    return Verdict(
        COMPLIANT,
        f"Every Allow of the endpoint policy is limited to organization {org} (identities or resources).",
    )


# ------------------------------------------------------------------------------------------------- rule
class VPC_ENDPOINT_POLICY_ORG_ONLY(GuardrailRule[Params]):
    """Gateway and interface VPC endpoint policies are limited to the organization."""

    RULE_NAME = "VPC_ENDPOINT_POLICY_ORG_ONLY"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = (
        organization_id_parameter(
            "The AWS Organizations id (o-...) every Allow of an endpoint policy must be limited to."
        ),
    )

    def make_params(self, values: Mapping[str, Any]) -> Params:
        return Params(organization_id=str(values["OrganizationId"]))

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        endpoint = VpcEndpoint.from_configuration_item(item)
        carries_policy = any(k.lower() == "policydocument" for k in item.configuration)
        if screen(endpoint) is None and not carries_policy:
            endpoint = self._describe_one(clients.build_client("ec2"), endpoint.endpoint_id)
        verdict = decide(endpoint, params.rule)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, item.resource_id, verdict.annotation)

    @staticmethod
    def _describe_one(ec2: Any, endpoint_id: str) -> VpcEndpoint:
        response = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])
        with reading("DescribeVpcEndpoints"):
            found = response_field(response, "VpcEndpoints", "DescribeVpcEndpoints")
            if not isinstance(found, list) or len(found) != 1:
                raise MalformedConfigurationItem(
                    f"DescribeVpcEndpoints returned {len(found) if isinstance(found, list) else 'no'} "
                    f"endpoints for {endpoint_id}, expected 1"
                )
            return VpcEndpoint.from_api(found[0])

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        ec2 = clients.build_client("ec2")
        for page in ec2.get_paginator("describe_vpc_endpoints").paginate():
            for raw in page.get("VpcEndpoints") or []:
                endpoint_id = str(response_field(raw, "VpcEndpointId", "DescribeVpcEndpoints"))

                def decide_one(raw: Mapping[str, Any] = raw, endpoint_id: str = endpoint_id) -> Evaluation:
                    with reading("DescribeVpcEndpoints"):
                        endpoint = VpcEndpoint.from_api(raw)
                    exempt = params.exemption(RESOURCE_TYPE, endpoint_id, endpoint.tags)
                    if exempt is not None:
                        return exempt
                    with reading("DescribeVpcEndpoints"):
                        verdict = decide(endpoint, params.rule)
                    return make_evaluation(verdict.compliance, RESOURCE_TYPE, endpoint_id, verdict.annotation)

                outcome = guarded(RESOURCE_TYPE, endpoint_id, decide_one)
                if outcome is not None:
                    yield outcome


lambda_handler = lambda_handler_for(VPC_ENDPOINT_POLICY_ORG_ONLY)
