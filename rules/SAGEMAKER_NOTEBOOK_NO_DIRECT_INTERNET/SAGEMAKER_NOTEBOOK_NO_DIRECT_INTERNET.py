"""SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET: SageMaker notebook instances reach nothing but their isolated VPC.

A notebook instance with direct internet access gets a network interface in a SageMaker-managed VPC that
reaches the internet, outside every control of yours. With it disabled, the notebook's traffic leaves only
through its subnet -- which is isolated only if that subnet's route table has no way out either.

Scenarios (Given / Then):
  1. Given DirectInternetAccess Enabled -- Then NON_COMPLIANT (recreate with Disabled; it cannot be changed).
  2. Given no DirectInternetAccess -- Then NON_COMPLIANT (the API default, Enabled, applies).
  3. Given DirectInternetAccess with any other value -- Then NON_COMPLIANT (unknown is never compliant).
  4. Given no SubnetId -- Then NON_COMPLIANT (a notebook outside your VPC is not isolated).
  5. Given AllowedSubnetIds and a subnet not in it -- Then NON_COMPLIANT.
  6. Given several of 1-5 at once -- Then one NON_COMPLIANT naming each, and no route is read.
  7. Given Disabled, a subnet, CheckNetworkPath true and the route table in force for the subnet (its explicit
     association, else the VPC's main table) has an active route to an internet, NAT, egress-only or carrier
     gateway -- Then NON_COMPLIANT naming the route.
  8. Given the same with an active default route (0.0.0.0/0 or ::/0) to a target not in AllowedEgressTargets
     (transit gateway, peering, VGW, GWLB endpoint, NAT instance ...) -- Then NON_COMPLIANT.
  9. Given the default route's target in AllowedEgressTargets, or only local / prefix-list / blackhole
     routes -- Then COMPLIANT.
 10. Given CheckNetworkPath false, Disabled and an (allowed) subnet -- Then COMPLIANT, without reading routes.
 11. Given a Stopped notebook that fails 1-8 -- Then NON_COMPLIANT all the same (it applies again on start).
 12. Given a notebook being deleted (status Deleting, periodic sweep) -- Then NOT_APPLICABLE.
 13. Given the exemption tag (ExemptionTagKey) -- Then NOT_APPLICABLE with the tag's value as the reason.
 14. Given a deleted notebook (configurationItemStatus ResourceDeleted) -- Then NOT_APPLICABLE (engine).
 15. Given the route tables cannot be read or seen (AccessDenied, a subnet shared from another account) --
     Then no evaluation: the invocation fails naming the notebook (never COMPLIANT).
 16. Given a malformed item (DirectInternetAccess or SubnetId not a string) -- Then the invocation fails.

Triggers: configuration change (and oversized) of ``AWS::SageMaker::NotebookInstance``: at most two EC2 reads
(DescribeSubnets for the subnet, DescribeRouteTables for its VPC), none when CheckNetworkPath is false or the
configuration alone is NON_COMPLIANT. Periodic: ListNotebookInstances, DescribeNotebookInstance per notebook
(ListTags only with ExemptionTagKey), and one Region-wide DescribeSubnets and DescribeRouteTables sweep shared
by every notebook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from rdklib import ComplianceType, Evaluation, InvalidParametersError

from ml_guardrails.ci import reading, response_field
from ml_guardrails.engine import (
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    lambda_handler_for,
    make_evaluation,
)
from ml_guardrails.params import BoolParameter, CsvParameter
from ml_guardrails.resources.ec2_routes import InternetPath, NetworkView, load_for_subnet, load_region
from ml_guardrails.resources.sagemaker_notebook import (
    RESOURCE_TYPE,
    NotebookInstance,
    config_resource_id,
    describe_for_sweep,
    is_gone,
)

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory
    from ml_guardrails.ci import ConfigurationItem

ANNOTATION_LIMIT = 256
SUBNET_ID_PATTERN = r"subnet-[0-9a-f]{8}(?:[0-9a-f]{9})?"
# Targets a default route may be allowed to use. Internet, NAT, egress-only and carrier gateways are not
# among them: a route to one of those always reaches the internet.
EGRESS_TARGET_PATTERN = (
    r"(?:tgw|pcx|vgw|vpce|eni|i|lgw)-[0-9a-f]{8}(?:[0-9a-f]{9})?"
    r"|arn:aws[a-z-]*:networkmanager::\d{12}:core-network/core-network-[0-9a-f]{17}"
)
DELETING = "Deleting"
LIST_PAGE = 100
STOPPED_STATUSES = frozenset({"Stopped", "Stopping"})

PARAMETERS = (
    BoolParameter(
        "CheckNetworkPath",
        "Also require the subnet's route table in force to have no internet path.",
        default="true",
    ),
    CsvParameter(
        "AllowedSubnetIds",
        "Comma-separated subnet ids notebooks may use; any subnet when not set.",
        pattern=SUBNET_ID_PATTERN,
        what="a comma-separated list of subnet ids (subnet-0123abcd or subnet-0123456789abcdef0)",
    ),
    CsvParameter(
        "AllowedEgressTargets",
        "Comma-separated route targets a default route may use (e.g. a transit gateway to inspection).",
        pattern=EGRESS_TARGET_PATTERN,
        what="a comma-separated list of route target ids (tgw-, vgw-, pcx-, vpce-, eni-, i-, lgw- or a core "
        "network ARN); internet, NAT, egress-only and carrier gateways can never be allowed",
    ),
)


@dataclass(frozen=True)
class Params:
    check_network_path: bool = True
    allowed_subnet_ids: frozenset[str] | None = None  # None: any subnet
    allowed_egress_targets: frozenset[str] = frozenset()


class Verdict(NamedTuple):
    compliance: str
    annotation: str


# ------------------------------------------------------------------------------------------ pure decisions
def configuration_problems(notebook: NotebookInstance, params: Params) -> list[str]:
    """What is wrong with the notebook's own settings (scenarios 1-5); empty when nothing is."""
    problems: list[str] = []
    access = notebook.direct_internet_access
    if access is None:
        problems.append("DirectInternetAccess not set (API default: Enabled)")
    elif access == "Enabled":
        problems.append("direct internet access Enabled")
    elif access != "Disabled":
        problems.append(f"DirectInternetAccess {access[:20]!r} is not Disabled")
    if notebook.subnet_id is None:
        problems.append("no VPC subnet (SubnetId)")
    elif params.allowed_subnet_ids is not None and notebook.subnet_id not in params.allowed_subnet_ids:
        problems.append(f"subnet {notebook.subnet_id[:32]} not in AllowedSubnetIds")
    return problems


def needs_network_check(notebook: NotebookInstance, params: Params) -> bool:
    """True when the route tables decide the verdict (the configuration alone does not)."""
    return (
        params.check_network_path
        and notebook.status != DELETING
        and notebook.subnet_id is not None
        and not configuration_problems(notebook, params)
    )


def _fit(*candidates: str) -> str:
    """The first candidate within Config's annotation limit (candidates go from fullest to shortest)."""
    for text in candidates:
        if len(text) <= ANNOTATION_LIMIT:
            return text
    return candidates[-1][: ANNOTATION_LIMIT - 3] + "..."


def decide(
    notebook: NotebookInstance,
    params: Params,
    paths: Sequence[InternetPath] | None = None,
    route_tables: Sequence[str] = (),
) -> Verdict:
    """The verdict for ``notebook``. ``paths``/``route_tables``: the internet paths found in the route
    table(s) in force for its subnet, required when :func:`needs_network_check` says so."""
    if notebook.status == DELETING:
        return Verdict(
            ComplianceType.NOT_APPLICABLE, "The notebook instance is being deleted (status Deleting)."
        )
    stopped = (
        f" It is {notebook.status}: this applies again when it starts."
        if notebook.status in STOPPED_STATUSES
        else ""
    )
    problems = configuration_problems(notebook, params)
    if problems:
        what = "Notebook: " + "; ".join(problems) + "."
        action = (
            " Recreate it (network settings cannot be changed) with DirectInternetAccess Disabled in an "
            "approved isolated subnet."
        )
        return Verdict(ComplianceType.NON_COMPLIANT, _fit(what + action + stopped, what + action))
    subnet = notebook.subnet_id
    if not params.check_network_path:
        return Verdict(
            ComplianceType.COMPLIANT,
            f"Direct internet access disabled; notebook in subnet {subnet} (route tables not checked).",
        )
    if paths is None:
        raise ValueError("the network path check needs the subnet's internet paths")
    tables = ", ".join(route_tables) or "unknown"
    if not paths:
        return Verdict(
            ComplianceType.COMPLIANT,
            _fit(
                f"Direct internet access disabled; subnet {subnet} (route table {tables}) has no internet "
                "path.",
                f"Direct internet access disabled; subnet {subnet} has no internet path.",
            ),
        )
    first = paths[0]
    more = f" (+{len(paths) - 1} more)" if len(paths) > 1 else ""
    action = (
        " Remove it and reach AWS through VPC endpoints."
        if first.internet_gateway
        else " Remove it, or list the target in AllowedEgressTargets if it inspects egress."
    )
    head = f"Subnet {subnet} has an internet path in {first.route_table_id}: {first.describe()}{more}."
    short = f"Subnet {subnet} has an internet path: {first.describe()}{more}."
    return Verdict(
        ComplianceType.NON_COMPLIANT,
        _fit(head + action + stopped, head + action, short + action, short),
    )


# ---------------------------------------------------------------------------------------------- the rule
class _RegionNetwork:
    """The Region's subnets and route tables, read once per sweep on first need; a failed read is kept
    and re-raised for every notebook that needs it (each then fails by name, the others are posted)."""

    def __init__(self, clients: ClientFactory) -> None:
        self._clients = clients
        self._view: NetworkView | None = None
        self._error: Exception | None = None

    def get(self) -> NetworkView:
        if self._error is not None:
            raise self._error
        if self._view is None:
            try:
                self._view = load_region(self._clients.build_client("ec2"))
            except Exception as exc:
                self._error = exc
                raise
        return self._view


class SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET(GuardrailRule[Params]):
    RULE_NAME = "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = PARAMETERS

    def make_params(self, values: Mapping[str, Any]) -> Params:
        check = bool(values["CheckNetworkPath"])
        targets = values["AllowedEgressTargets"]
        if targets and not check:
            raise InvalidParametersError(
                "AllowedEgressTargets has no effect while CheckNetworkPath is false: remove it or set "
                "CheckNetworkPath to true"
            )
        return Params(
            check_network_path=check,
            allowed_subnet_ids=values["AllowedSubnetIds"],
            allowed_egress_targets=targets or frozenset(),
        )

    def _evaluate(
        self, notebook: NotebookInstance, resource_id: str, params: Params, network: Callable[[], NetworkView]
    ) -> Evaluation:
        paths: list[InternetPath] | None = None
        tables: tuple[str, ...] = ()
        if needs_network_check(notebook, params) and notebook.subnet_id is not None:
            view = network()
            tables, paths = view.paths_for_subnet(notebook.subnet_id, params.allowed_egress_targets)
        verdict = decide(notebook, params, paths, tables)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, resource_id, verdict.annotation)

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        notebook = NotebookInstance.from_configuration_item(item)

        def network() -> NetworkView:
            return load_for_subnet(clients.build_client("ec2"), str(notebook.subnet_id))

        return self._evaluate(notebook, item.resource_id, params.rule, network)

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        sagemaker = clients.build_client("sagemaker")
        region = _RegionNetwork(clients)
        # The largest page ListNotebookInstances allows (botocore sagemaker model: MaxResults 1-100).
        pages = sagemaker.get_paginator("list_notebook_instances").paginate(
            PaginationConfig={"PageSize": LIST_PAGE}
        )
        for page in pages:
            for summary in page.get("NotebookInstances") or []:
                name = str(response_field(summary, "NotebookInstanceName", "ListNotebookInstances"))
                arn = str(response_field(summary, "NotebookInstanceArn", "ListNotebookInstances"))
                resource_id = config_resource_id(arn, name)

                def decide_one(name: str = name, arn: str = arn, rid: str = resource_id) -> Evaluation | None:
                    return self._sweep_one(
                        sagemaker, name, arn, resource_id=rid, params=params, region=region
                    )

                outcome = guarded(RESOURCE_TYPE, resource_id, decide_one, gone=is_gone)
                if outcome is not None:
                    yield outcome

    def _sweep_one(
        self,
        sagemaker: Any,
        name: str,
        arn: str,
        *,
        resource_id: str,
        params: RuleParameters[Params],
        region: _RegionNetwork,
    ) -> Evaluation | None:
        read = describe_for_sweep(sagemaker, name, arn, params.exemption_tag_key)
        if read is None:
            return None  # deleted between listing and reading: Config records the deletion itself
        response, tags = read
        exempt = params.exemption(RESOURCE_TYPE, resource_id, tags)
        if exempt is not None:
            return exempt
        with reading("DescribeNotebookInstance"):
            notebook = NotebookInstance.from_describe(response, tags)
        return self._evaluate(notebook, resource_id, params.rule, region.get)


lambda_handler = lambda_handler_for(SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET)
