"""VPC_FLOW_LOGS_ENABLED: every VPC has a working VPC-level flow log capturing the required traffic.

Flow logs are the network record of an investigation: data leaving an ML environment is *accepted*
traffic, so by default only a flow log capturing ALL traffic counts. AWS's managed rule
``vpc-flow-logs-enabled`` only checks that a flow log exists; this rule also requires it to be ACTIVE, its
delivery not FAILED, and its destination type allowed.

Scenarios (the tests follow this list):

- Given a VPC with a VPC-level flow log that is ACTIVE, delivery SUCCESS, TrafficType ALL
  Then COMPLIANT (for any ``TrafficType`` parameter).
- Given ``TrafficType`` ALL (default) and only ACCEPT or only REJECT flow logs on the VPC
  Then NON_COMPLIANT: REJECT-only logs miss accepted (exfiltration) traffic.
- Given ``TrafficType`` ACCEPT (or REJECT) and a flow log capturing that type or ALL
  Then COMPLIANT; a flow log capturing only the other type does not count.
- Given no flow log whose ResourceId is the VPC (none at all, or only subnet/ENI flow logs)
  Then NON_COMPLIANT, and the annotation says subnet/ENI flow logs do not cover the VPC.
- Given the VPC's only flow log has DeliverLogsStatus FAILED (e.g. "Access error")
  Then NON_COMPLIANT naming the error.
- Given a flow log without DeliverLogsStatus
  Then delivery counts as not failed: AWS documents SUCCESS|FAILED and marks the field optional; FAILED
  is the only failure signal the API gives. An undocumented delivery status does not count.
- Given a flow log whose FlowLogStatus is not ACTIVE, or whose TrafficType / LogDestinationType is missing
  or outside botocore's enum
  Then it does not count (fail closed).
- Given ``LogDestinationTypes`` (e.g. "s3") and only a flow log to another destination type
  Then NON_COMPLIANT; without the parameter any of cloud-watch-logs, s3, kinesis-data-firehose counts.
- Given several VPC-level flow logs
  Then COMPLIANT when any one qualifies; otherwise the annotation lists why each fails.
- Given the default VPC without a qualifying flow log
  Then NON_COMPLIANT like any other VPC, and the annotation says to add one or delete the default VPC.
- Given a VPC in state pending
  Then it is evaluated like an available VPC (flow logs can be created for it; a NOT_APPLICABLE could
  hide it until the next sweep). Given state deleting: NOT_APPLICABLE (Config records the deletion).
- Given a VPC owned by another account (shared with this one through AWS RAM)
  Then NOT_APPLICABLE: only its owner can create its flow logs; it is evaluated in the owner account.
- Given the exemption tag (``ExemptionTagKey``) on the VPC
  Then NOT_APPLICABLE with the tag's value as the reason.
- Given a deleted VPC (configurationItemStatus ResourceDeleted)
  Then NOT_APPLICABLE (engine).
- Given a malformed configuration item or DescribeFlowLogs entry, or AccessDenied on DescribeFlowLogs
  Then no evaluation is posted for that VPC and the invocation fails naming it; never COMPLIANT.

Reads: change path, exactly one paginated DescribeFlowLogs filtered on the VPC id (none for a VPC that is
NOT_APPLICABLE by its state or owner). Periodic path: one paginated DescribeFlowLogs over the whole region,
paginated DescribeVpcs, and one sts:GetCallerIdentity (no IAM permission needed) to tell shared VPCs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from rdklib import ComplianceType

from ml_guardrails.ci import get_field, reading, response_field
from ml_guardrails.engine import GuardrailRule, RuleParameters, guarded, lambda_handler_for, make_evaluation
from ml_guardrails.params import ChoiceParameter, CsvParameter
from ml_guardrails.resources.ec2_vpc import (
    DELIVERY_FAILED,
    DELIVERY_SUCCESS,
    FLOW_LOG_ACTIVE,
    LOG_DESTINATION_TYPES,
    RESOURCE_TYPE,
    TRAFFIC_TYPES,
    FlowLog,
    Vpc,
)

if TYPE_CHECKING:
    from rdklib import Evaluation

    from ml_guardrails.aws import ClientFactory
    from ml_guardrails.ci import ConfigurationItem
    from ml_guardrails.engine import Outcome

ANNOTATION_LIMIT = 256
COMPLIANT = ComplianceType.COMPLIANT
NON_COMPLIANT = ComplianceType.NON_COMPLIANT
NOT_APPLICABLE = ComplianceType.NOT_APPLICABLE


@dataclass(frozen=True)
class Params:
    traffic_type: str = "ALL"
    # None: any destination type of botocore's LogDestinationType enum.
    log_destination_types: frozenset[str] | None = None


# ----------------------------------------------------------------------------------------- pure decision
def traffic_covers(captured: str | None, required: str) -> bool:
    """ALL is satisfied only by ALL; ACCEPT by ACCEPT or ALL; REJECT by REJECT or ALL."""
    if captured not in TRAFFIC_TYPES or required not in TRAFFIC_TYPES:
        return False
    return captured in (required, "ALL")


def flow_log_problems(flow_log: FlowLog, params: Params) -> list[str]:
    """Why ``flow_log`` does not satisfy the rule (empty: it qualifies)."""
    problems: list[str] = []
    if flow_log.flow_log_status != FLOW_LOG_ACTIVE:
        problems.append(f"not ACTIVE ({(flow_log.flow_log_status or 'no status')[:20]})")
    delivery = flow_log.deliver_logs_status
    if delivery == DELIVERY_FAILED:
        reason = (flow_log.deliver_logs_error or "no message")[:30]
        problems.append(f"delivery FAILED: {reason}")
    elif delivery not in (None, DELIVERY_SUCCESS):
        problems.append(f"delivery {delivery[:20]} unknown")
    captured = flow_log.traffic_type
    if captured not in TRAFFIC_TYPES:
        problems.append(f"traffic type {(captured or 'missing')[:20]} unknown")
    elif not traffic_covers(captured, params.traffic_type):
        problems.append(f"{captured} only, {params.traffic_type} required")
    destination = flow_log.destination_type
    if destination not in LOG_DESTINATION_TYPES:
        problems.append(f"destination {(destination or 'missing')[:24]} unknown")
    elif params.log_destination_types is not None and destination not in params.log_destination_types:
        problems.append(f"destination {destination} not allowed")
    return problems


def applicability(vpc: Vpc, account_id: str | None) -> str | None:
    """The NOT_APPLICABLE reason for ``vpc``, or None when the rule applies to it."""
    if vpc.state == "deleting":
        return f"VPC {vpc.vpc_id} is being deleted (state deleting); AWS Config records its deletion."
    if account_id and vpc.owner_id and vpc.owner_id != account_id:
        return (
            f"VPC {vpc.vpc_id} is owned by account {vpc.owner_id} and shared with this account: only the "
            "owner can create its flow logs, so it is evaluated in the owner account."
        )
    return None


def _fix(vpc: Vpc, params: Params, *, repair: bool = False) -> str:
    """What to do: create a VPC-level flow log (the runbook's action), or delete an unused default VPC."""
    chosen = [
        d for d in LOG_DESTINATION_TYPES if params.log_destination_types and d in params.log_destination_types
    ]
    where = f" to {' or '.join(chosen)}" if chosen else ""
    fix = (
        f"{'Fix it or c' if repair else 'C'}reate one (CreateFlowLogs, ResourceType VPC, "
        f"TrafficType {params.traffic_type}{where})"
    )
    if vpc.is_default:
        return fix + ", or delete the unused default VPC."
    return fix + "."


def _fit(head: str, items: Sequence[str], tail: str, limit: int = ANNOTATION_LIMIT) -> str:
    """``head`` + as many ``items`` as fit (then "+N more") + ``tail``, within ``limit`` characters; the
    first item is shortened rather than dropped."""
    for count in range(len(items), 0, -1):
        hidden = len(items) - count
        body = "; ".join(items[:count]) + (f"; +{hidden} more" if hidden else "")
        text = f"{head}{body}. {tail}"
        if len(text) <= limit:
            return text
    more = f"; +{len(items) - 1} more" if len(items) > 1 else ""
    room = limit - len(head) - len(more) - len(tail) - 2
    first = items[0] if len(items[0]) <= room else items[0][: max(room - 3, 0)] + "..."
    text = f"{head}{first}{more}. {tail}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decide(
    vpc: Vpc, flow_logs: Iterable[FlowLog], params: Params, account_id: str | None = None
) -> tuple[str, str]:
    """The compliance of ``vpc`` given the flow logs read for it, with its annotation."""
    reason = applicability(vpc, account_id)
    if reason is not None:
        return NOT_APPLICABLE, reason
    kind = "Default VPC" if vpc.is_default else "VPC"
    # Only a flow log on the VPC itself covers all of its traffic: subnet and ENI flow logs miss every
    # subnet or interface created later (and DescribeFlowLogs filtered on the VPC id returns only those).
    own = sorted((f for f in flow_logs if f.resource_id == vpc.vpc_id), key=lambda f: f.label)
    if not own:
        return NON_COMPLIANT, (
            f"{kind} {vpc.vpc_id} has no VPC-level flow log (subnet/ENI flow logs do not cover it). "
            + _fix(vpc, params)
        )
    judged = [(f, flow_log_problems(f, params)) for f in own]
    for flow_log, problems in judged:
        if not problems:
            delivery = flow_log.deliver_logs_status or "not reported"
            return COMPLIANT, (
                f"Flow log {flow_log.label} captures {flow_log.traffic_type} traffic of {kind} {vpc.vpc_id} "
                f"to {flow_log.destination_type}; ACTIVE, delivery {delivery}."
            )
    head = f"{kind} {vpc.vpc_id}: no qualifying VPC-level flow log: "
    items = [f"{f.label} " + ", ".join(p) for f, p in judged]
    return NON_COMPLIANT, _fit(head, items, _fix(vpc, params, repair=True))


# -------------------------------------------------------------------------------------------------- rule
class VPC_FLOW_LOGS_ENABLED(GuardrailRule[Params]):
    RULE_NAME = "VPC_FLOW_LOGS_ENABLED"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = (
        ChoiceParameter(
            "TrafficType",
            "Traffic a VPC flow log must capture: ALL (default; only ALL satisfies it), ACCEPT or REJECT "
            "(satisfied by that type or ALL).",
            default="ALL",
            choices=TRAFFIC_TYPES,
        ),
        CsvParameter(
            "LogDestinationTypes",
            "Allowed flow log destination types, comma-separated among cloud-watch-logs, s3, "
            "kinesis-data-firehose. Any of them when not set.",
            choices=LOG_DESTINATION_TYPES,
        ),
    )

    def make_params(self, values: Mapping[str, Any]) -> Params:
        destinations = values.get("LogDestinationTypes")
        return Params(
            traffic_type=str(values["TrafficType"]),
            log_destination_types=frozenset(destinations) if destinations else None,
        )

    # -- change path ---------------------------------------------------------------------------------
    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        vpc = Vpc.from_configuration_item(item)
        reason = applicability(vpc, item.account_id)
        if reason is not None:
            return make_evaluation(NOT_APPLICABLE, RESOURCE_TYPE, vpc.vpc_id, reason)
        flow_logs = list(describe_flow_logs(clients, vpc.vpc_id))
        compliance, annotation = decide(vpc, flow_logs, params.rule, item.account_id)
        return make_evaluation(compliance, RESOURCE_TYPE, vpc.vpc_id, annotation)

    # -- periodic path -------------------------------------------------------------------------------
    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        ec2 = clients.build_client("ec2")
        # Every flow log of the region first: no VPC can be decided before all of them are read, so a
        # failure here fails the sweep (nothing posted) rather than marking VPCs NON_COMPLIANT.
        by_resource: dict[str, list[Any]] = defaultdict(list)
        for page in ec2.get_paginator("describe_flow_logs").paginate():
            for raw in page.get("FlowLogs") or []:
                resource_id = get_field(raw, "ResourceId") if isinstance(raw, Mapping) else None
                # An entry naming no resource cannot cover any VPC; skipping it can only lower compliance.
                if isinstance(resource_id, str):
                    by_resource[resource_id].append(raw)
        account_id: str | None = None
        for page in ec2.get_paginator("describe_vpcs").paginate():
            vpcs = page.get("Vpcs") or []
            if vpcs and account_id is None:
                identity = clients.build_client("sts").get_caller_identity()
                account_id = str(response_field(identity, "Account", "GetCallerIdentity"))
            for raw in vpcs:
                vpc_id = get_field(raw, "VpcId") if isinstance(raw, Mapping) else None
                rid = vpc_id if isinstance(vpc_id, str) and vpc_id else "?"
                decide_one = partial(self._decide_listed, raw, by_resource.get(rid, []), params, account_id)
                # No per-VPC API read happens here (the flow logs were read region-wide), so no "gone"
                # error codes apply; what can fail per VPC is a malformed entry, reported as a Failure.
                outcome = guarded(RESOURCE_TYPE, rid, decide_one)
                if outcome is not None:
                    yield outcome

    @staticmethod
    def _decide_listed(
        raw_vpc: Any, raw_flow_logs: Sequence[Any], params: RuleParameters[Params], account_id: str | None
    ) -> Evaluation:
        with reading("DescribeVpcs"):
            vpc = Vpc.from_api(raw_vpc)
        exempt = params.exemption(RESOURCE_TYPE, vpc.vpc_id, vpc.tags)
        if exempt is not None:
            return exempt
        with reading("DescribeFlowLogs"):
            flow_logs = [FlowLog.from_api(raw) for raw in raw_flow_logs]
        compliance, annotation = decide(vpc, flow_logs, params.rule, account_id)
        return make_evaluation(compliance, RESOURCE_TYPE, vpc.vpc_id, annotation)


def describe_flow_logs(clients: ClientFactory, vpc_id: str) -> Iterator[FlowLog]:
    """The flow logs whose resource is ``vpc_id``: one paginated DescribeFlowLogs (filter resource-id)."""
    ec2 = clients.build_client("ec2")
    pages = ec2.get_paginator("describe_flow_logs").paginate(
        Filters=[{"Name": "resource-id", "Values": [vpc_id]}]
    )
    for page in pages:
        for raw in page.get("FlowLogs") or []:
            with reading("DescribeFlowLogs"):
                yield FlowLog.from_api(raw)


lambda_handler = lambda_handler_for(VPC_FLOW_LOGS_ENABLED)
