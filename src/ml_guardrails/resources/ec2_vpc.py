"""Typed views of a VPC and of its flow logs, read from AWS Config items and from EC2 API responses.

One view serves both paths of ``VPC_FLOW_LOGS_ENABLED``: the change path reads a VPC from its configuration
item (camelCase ``configuration``, ``tags`` as an object) and the periodic path from ``DescribeVpcs``
(PascalCase, ``Tags`` as a list). Flow logs only ever come from ``DescribeFlowLogs``.

Value sets are botocore's ec2 service model (2016-11-15): ``VpcState`` pending|available|deleting,
``TrafficType`` ACCEPT|REJECT|ALL, ``LogDestinationType`` cloud-watch-logs|s3|kinesis-data-firehose.
``FlowLogStatus`` (documented value: ACTIVE) and ``DeliverLogsStatus`` (documented values: SUCCESS|FAILED)
are plain strings in the model, with no enum: values outside the documented ones are kept as read, and
the rule treats them as "not proven working".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ml_guardrails.ci import (
    ConfigurationItem,
    MalformedConfigurationItem,
    as_bool,
    as_mapping,
    as_str,
    get_field,
    tags_from,
)

RESOURCE_TYPE = "AWS::EC2::VPC"

VPC_STATES = ("pending", "available", "deleting")
TRAFFIC_TYPES = ("ALL", "ACCEPT", "REJECT")
LOG_DESTINATION_TYPES = ("cloud-watch-logs", "s3", "kinesis-data-firehose")
# CreateFlowLogs: "LogDestinationType ... Default: cloud-watch-logs". Flow logs created before S3 delivery
# existed (2018) may be described without the field; they deliver to CloudWatch Logs (LogGroupName).
DEFAULT_LOG_DESTINATION_TYPE = "cloud-watch-logs"
FLOW_LOG_ACTIVE = "ACTIVE"
DELIVERY_SUCCESS = "SUCCESS"
DELIVERY_FAILED = "FAILED"


def _optional_str(mapping: Mapping[str, Any], name: str, where: str) -> str | None:
    value = get_field(mapping, name)
    if value is None:
        return None
    return as_str(value, f"{where} {name}")


@dataclass(frozen=True)
class Vpc:
    """A VPC: what the flow-log decision needs to know about it."""

    vpc_id: str
    state: str | None = None
    is_default: bool | None = None
    owner_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any], *, resource_id: str | None = None) -> Vpc:
        """A VPC from a CI ``configuration`` (camelCase) or a ``DescribeVpcs`` entry (PascalCase).

        ``resource_id`` (the CI's ``resourceId``) is authoritative when given; the configuration's
        ``vpcId``, when present, must agree with it.
        """
        configuration = as_mapping(configuration, "VPC configuration")
        raw_id = get_field(configuration, "VpcId")
        vpc_id = as_str(raw_id, "VpcId") if raw_id is not None else None
        if resource_id is not None:
            if vpc_id is not None and vpc_id != resource_id:
                raise MalformedConfigurationItem(
                    f"configuration vpcId {vpc_id} differs from resourceId {resource_id}"
                )
            vpc_id = resource_id
        if not vpc_id:
            raise MalformedConfigurationItem("VPC configuration has no VpcId")
        is_default = get_field(configuration, "IsDefault")
        return cls(
            vpc_id=vpc_id,
            state=_optional_str(configuration, "State", f"VPC {vpc_id}"),
            is_default=None if is_default is None else as_bool(is_default, f"VPC {vpc_id} IsDefault"),
            owner_id=_optional_str(configuration, "OwnerId", f"VPC {vpc_id}"),
            tags=tags_from(get_field(configuration, "Tags")),
        )

    @classmethod
    def from_configuration_item(cls, item: ConfigurationItem) -> Vpc:
        """A VPC from its configuration item; the CI's ``tags`` object wins over ``configuration.tags``."""
        vpc = cls.from_configuration(item.configuration, resource_id=item.resource_id)
        tags = dict(vpc.tags)
        tags.update(item.tags)
        return cls(vpc.vpc_id, vpc.state, vpc.is_default, vpc.owner_id, tags)

    @classmethod
    def from_api(cls, raw: Any) -> Vpc:
        """A VPC from one ``DescribeVpcs`` ``Vpcs`` entry."""
        return cls.from_configuration(as_mapping(raw, "DescribeVpcs entry"))


@dataclass(frozen=True)
class FlowLog:
    """One flow log, as ``DescribeFlowLogs`` describes it."""

    resource_id: str
    flow_log_id: str | None = None
    flow_log_status: str | None = None
    deliver_logs_status: str | None = None
    deliver_logs_error: str | None = None
    traffic_type: str | None = None
    destination_type: str | None = None
    destination: str | None = None

    @property
    def label(self) -> str:
        return self.flow_log_id or "flow log (no id)"

    @classmethod
    def from_api(cls, raw: Any) -> FlowLog:
        """A flow log from one ``DescribeFlowLogs`` ``FlowLogs`` entry. Missing optional fields stay None
        (the rule decides what None means); a field of the wrong type is malformed."""
        entry = as_mapping(raw, "DescribeFlowLogs entry")
        resource_id = get_field(entry, "ResourceId")
        if not isinstance(resource_id, str) or not resource_id:
            raise MalformedConfigurationItem("DescribeFlowLogs entry has no ResourceId")
        where = f"flow log of {resource_id}"
        destination_type = _optional_str(entry, "LogDestinationType", where)
        group = _optional_str(entry, "LogGroupName", where)
        if destination_type is None and group:
            destination_type = DEFAULT_LOG_DESTINATION_TYPE
        return cls(
            resource_id=resource_id,
            flow_log_id=_optional_str(entry, "FlowLogId", where),
            flow_log_status=_optional_str(entry, "FlowLogStatus", where),
            deliver_logs_status=_optional_str(entry, "DeliverLogsStatus", where),
            deliver_logs_error=_optional_str(entry, "DeliverLogsErrorMessage", where),
            traffic_type=_optional_str(entry, "TrafficType", where),
            destination_type=destination_type,
            destination=_optional_str(entry, "LogDestination", where) or group,
        )
