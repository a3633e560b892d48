"""Typed view of a VPC endpoint, read from a configuration item or from ``DescribeVpcEndpoints`` -- one
shape for both.

Where AWS puts the facts: AWS Config records ``AWS::EC2::VPCEndpoint`` with ``configuration`` following
the EC2 API's ``VpcEndpoint`` in camelCase (awslabs/aws-config-resource-schema,
``AWS::EC2::VPCEndpoint.properties.json``: ``configuration.vpcEndpointId``, ``vpcEndpointType``,
``serviceName``, ``vpcId``, ``state.value``, ``routeTableIds``, ``subnetIds``); ``policyDocument`` is the
endpoint policy as a JSON string (botocore ec2 model: ``VpcEndpoint.PolicyDocument`` String, "The policy
document associated with the endpoint, if applicable"). ``state`` is a string in the API and may be
``{"value": "available"}`` in a CI. ``DescribeVpcEndpoints`` returns the same fields in PascalCase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml_guardrails.ci import ConfigurationItem, MalformedConfigurationItem, as_str, get_field, tags_from

RESOURCE_TYPE = "AWS::EC2::VPCEndpoint"
# VpcEndpointType (botocore ec2 2016-11-15): Interface, Gateway, GatewayLoadBalancer, Resource,
# ServiceNetwork, Tunnel. Only Interface and Gateway endpoints take an endpoint policy
# (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html).
POLICY_TYPES = frozenset({"Interface", "Gateway"})
# States in which no traffic flows through the endpoint (State enum, compared case-insensitively: the
# API answers lower case, e.g. "available", although botocore's enum is capitalised).
INACTIVE_STATES = frozenset({"deleting", "deleted", "rejected", "failed", "expired"})


@dataclass(frozen=True)
class VpcEndpoint:
    endpoint_id: str
    endpoint_type: str
    service_name: str | None
    state: str | None  # lower-cased
    # None: the resource carries no policy document (no policy, or the CI did not record it).
    policy_document: str | None
    tags: Mapping[str, str]

    @property
    def supports_policy(self) -> bool:
        return self.endpoint_type in POLICY_TYPES

    @property
    def inactive(self) -> bool:
        return self.state in INACTIVE_STATES

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], fallback_id: str | None, where: str) -> VpcEndpoint:
        """From a CI ``configuration`` (camelCase) or a ``DescribeVpcEndpoints`` item (PascalCase)."""
        endpoint_id = get_field(data, "VpcEndpointId") or fallback_id
        if not endpoint_id:
            raise MalformedConfigurationItem(f"{where} has no VpcEndpointId")
        endpoint_type = get_field(data, "VpcEndpointType")
        if not isinstance(endpoint_type, str) or not endpoint_type:
            raise MalformedConfigurationItem(f"{where} has no VpcEndpointType")
        state = get_field(data, "State")
        if isinstance(state, Mapping):
            state = get_field(state, "Value")
        policy = get_field(data, "PolicyDocument")
        if policy is not None and not isinstance(policy, str):
            raise MalformedConfigurationItem(f"{where}.PolicyDocument must be a JSON string")
        service = get_field(data, "ServiceName")
        return cls(
            endpoint_id=as_str(endpoint_id, f"{where}.VpcEndpointId"),
            endpoint_type=endpoint_type,
            service_name=service if isinstance(service, str) else None,
            state=state.lower() if isinstance(state, str) else None,
            policy_document=policy if policy and policy.strip() else None,
            tags=tags_from(get_field(data, "Tags")),
        )

    @classmethod
    def from_configuration_item(cls, item: ConfigurationItem) -> VpcEndpoint:
        endpoint = cls.from_mapping(item.configuration, item.resource_id, "configuration")
        if item.tags and not endpoint.tags:
            return cls(
                endpoint.endpoint_id,
                endpoint.endpoint_type,
                endpoint.service_name,
                endpoint.state,
                endpoint.policy_document,
                dict(item.tags),
            )
        return endpoint

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> VpcEndpoint:
        return cls.from_mapping(item, None, "DescribeVpcEndpoints VpcEndpoint")
