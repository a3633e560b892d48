"""VPC routing, read as the VPC router applies it: which route table is in force for a subnet, and which of
its routes give that subnet a path to the internet.

Shapes: DescribeRouteTables / DescribeSubnets responses (PascalCase) and ``AWS::EC2::RouteTable`` /
``AWS::EC2::Subnet`` configuration items (camelCase) parse alike (keys are matched case-insensitively).
Field meanings follow botocore's ec2 model (``Route``, ``RouteTableAssociation``, ``Subnet`` shapes):

* a route has one target among ``GatewayId`` (``igw-`` internet gateway, ``vgw-`` virtual private gateway,
  ``vpce-`` gateway/Gateway Load Balancer endpoint, or ``local``), ``NatGatewayId``,
  ``EgressOnlyInternetGatewayId``, ``CarrierGatewayId``, ``LocalGatewayId``, ``TransitGatewayId``,
  ``VpcPeeringConnectionId``, ``CoreNetworkArn``, ``OdbNetworkArn``, ``NetworkInterfaceId`` and
  ``InstanceId`` (a NAT instance route carries both of the last two);
* ``State`` is ``active``, ``blackhole`` (target gone) or ``filtered`` (a VPC Route Server route that is not
  installed); only active routes carry traffic. A state we do not know counts as active (fail closed);
* a subnet without an explicit association uses the VPC's main route table ("This command does not return
  the subnet ID for implicit associations" -- DescribeRouteTables documentation).

An *internet path* is an active route to an internet, NAT, egress-only internet or carrier gateway (any
destination: those targets reach the internet whatever prefix is routed to them), or an active default route
(``0.0.0.0/0``, ``::/0``) to any target the caller has not explicitly allowed (for example a transit gateway
that sends egress through an inspection VPC). Routes to ``local``, gateway-endpoint prefix lists
(``pl-`` destinations via ``vpce-``), peering connections and the like with specific destinations are not
internet paths. Limitation (documented, not guessed at): a default route split into more specific halves
(``0.0.0.0/1`` + ``128.0.0.0/1``) to a non-gateway target is not treated as a default route.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ml_guardrails.ci import MalformedConfigurationItem, as_list, get_field, reading

# Route fields that name a target, in the order a target is reported (most specific kind first).
TARGET_FIELDS = (
    "EgressOnlyInternetGatewayId",
    "NatGatewayId",
    "CarrierGatewayId",
    "LocalGatewayId",
    "TransitGatewayId",
    "VpcPeeringConnectionId",
    "CoreNetworkArn",
    "OdbNetworkArn",
    "InstanceId",
    "NetworkInterfaceId",
    "GatewayId",
)
# Target id prefixes that reach the internet whatever the destination.
INTERNET_TARGET_PREFIXES = {
    "igw-": "internet gateway",
    "nat-": "NAT gateway",
    "eigw-": "egress-only internet gateway",
    "cagw-": "carrier gateway",
}
_TARGET_KINDS = {
    **INTERNET_TARGET_PREFIXES,
    "vgw-": "virtual private gateway",
    "vpce-": "VPC endpoint",
    "tgw-": "transit gateway",
    "pcx-": "peering connection",
    "lgw-": "local gateway",
    "eni-": "network interface",
    "i-": "instance",
    "arn:": "core network",
}
INACTIVE_ROUTE_STATES = frozenset({"blackhole", "filtered"})
INACTIVE_ASSOCIATION_STATES = frozenset({"disassociated", "failed"})


class RouteTableNotFound(LookupError):
    """The route table in force for a subnet cannot be determined from what this account can see."""


def target_kind(target: str) -> str:
    """A human name for a route target id (``nat-0abc`` -> ``NAT gateway``)."""
    if target == "local":
        return "the VPC (local)"
    for prefix, kind in _TARGET_KINDS.items():
        if target.startswith(prefix):
            return kind
    return "target"


@dataclass(frozen=True)
class Route:
    destination: str
    targets: tuple[str, ...]
    state: str
    default: bool

    @property
    def target(self) -> str:
        return self.targets[0] if self.targets else "unknown"

    @property
    def active(self) -> bool:
        return self.state not in INACTIVE_ROUTE_STATES

    @property
    def internet_gateway_kind(self) -> str | None:
        """The kind of internet-reaching gateway this route targets, if any."""
        for target in self.targets:
            for prefix, kind in INTERNET_TARGET_PREFIXES.items():
                if target.startswith(prefix):
                    return kind
        return None

    @classmethod
    def parse(cls, raw: Any) -> Route:
        if not isinstance(raw, Mapping):
            raise MalformedConfigurationItem(f"route must be an object, got {type(raw).__name__}")
        destination = (
            get_field(raw, "DestinationCidrBlock")
            or get_field(raw, "DestinationIpv6CidrBlock")
            or get_field(raw, "DestinationPrefixListId")
        )
        if not isinstance(destination, str) or not destination:
            raise MalformedConfigurationItem(f"route without a destination: {dict(raw)!r}")
        values = (get_field(raw, name) for name in TARGET_FIELDS)
        targets = tuple(value for value in values if isinstance(value, str) and value)
        state = get_field(raw, "State")
        # AWS always reports a state; a route without one is treated as active (fail closed).
        return cls(
            destination=destination,
            targets=targets,
            state=state.lower() if isinstance(state, str) else "active",
            default=_is_default(destination),
        )


def _is_default(destination: str) -> bool:
    try:
        return ipaddress.ip_network(destination, strict=False).prefixlen == 0
    except ValueError:
        return False  # a prefix list id (pl-...) is never the default route


@dataclass(frozen=True)
class Association:
    main: bool
    subnet_id: str | None
    state: str | None

    @property
    def in_force(self) -> bool:
        return self.state not in INACTIVE_ASSOCIATION_STATES

    @property
    def transitional(self) -> bool:
        return self.state in ("associating", "disassociating")


@dataclass(frozen=True)
class RouteTable:
    route_table_id: str
    vpc_id: str
    routes: tuple[Route, ...]
    associations: tuple[Association, ...]

    @property
    def main(self) -> bool:
        return any(a.main and a.in_force for a in self.associations)

    def explicit_association(self, subnet_id: str) -> Association | None:
        for association in self.associations:
            if association.subnet_id == subnet_id and association.in_force:
                return association
        return None

    @classmethod
    def parse(cls, raw: Any) -> RouteTable:
        if not isinstance(raw, Mapping):
            raise MalformedConfigurationItem(f"route table must be an object, got {type(raw).__name__}")
        table_id = get_field(raw, "RouteTableId")
        vpc_id = get_field(raw, "VpcId")
        if not isinstance(table_id, str) or not isinstance(vpc_id, str):
            raise MalformedConfigurationItem("route table without RouteTableId or VpcId")
        associations = []
        for item in as_list(get_field(raw, "Associations"), "Associations"):
            if not isinstance(item, Mapping):
                raise MalformedConfigurationItem(f"route table association must be an object: {item!r}")
            state = get_field(get_field(item, "AssociationState") or {}, "State")
            subnet = get_field(item, "SubnetId")
            main = get_field(item, "Main")
            # A non-main association is to a subnet or (edge association) a gateway; one naming neither
            # cannot be placed, and dropping it could let the subnet fall back to the main table.
            if main is not True and not subnet and not get_field(item, "GatewayId"):
                raise MalformedConfigurationItem(
                    f"route table {table_id}: association without Main, SubnetId or GatewayId: {dict(item)!r}"
                )
            associations.append(
                Association(
                    main=main is True,
                    subnet_id=subnet if isinstance(subnet, str) and subnet else None,
                    state=state if isinstance(state, str) else None,
                )
            )
        # Every route table has at least its local route: no Routes means a malformed response, and
        # reading it as "no routes" would hide a NAT or internet gateway route (fail open).
        raw_routes = get_field(raw, "Routes")
        if raw_routes is None:
            raise MalformedConfigurationItem(
                f"route table {table_id} has no Routes", operation="DescribeRouteTables"
            )
        routes = tuple(Route.parse(r) for r in as_list(raw_routes, "Routes"))
        return cls(table_id, vpc_id, routes, tuple(associations))


@dataclass(frozen=True)
class Subnet:
    subnet_id: str
    vpc_id: str
    owner_id: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> Subnet:
        if not isinstance(raw, Mapping):
            raise MalformedConfigurationItem(f"subnet must be an object, got {type(raw).__name__}")
        subnet_id, vpc_id = get_field(raw, "SubnetId"), get_field(raw, "VpcId")
        if not isinstance(subnet_id, str) or not isinstance(vpc_id, str):
            raise MalformedConfigurationItem("subnet without SubnetId or VpcId")
        owner = get_field(raw, "OwnerId")
        return cls(subnet_id, vpc_id, owner if isinstance(owner, str) else None)


@dataclass(frozen=True)
class InternetPath:
    """One route that gives a subnet a way to the internet."""

    route_table_id: str
    destination: str
    target: str
    reason: str
    internet_gateway: bool  # True: the target itself reaches the internet (no allow-list can accept it)

    def describe(self) -> str:
        return f"{self.destination} -> {self.target} ({self.reason})"


def route_tables_in_force(subnet: Subnet, tables: Iterable[RouteTable]) -> tuple[RouteTable, ...]:
    """The route table(s) routing ``subnet``'s traffic: its explicit association, else the VPC's main table.

    While an explicit association is changing (``associating``/``disassociating``) both it and the main
    table are returned: traffic may follow either, so both are checked.
    """
    vpc_tables = [t for t in tables if t.vpc_id == subnet.vpc_id]
    explicit = [t for t in vpc_tables if t.explicit_association(subnet.subnet_id) is not None]
    main = [t for t in vpc_tables if t.main]
    transitional = any(
        association.transitional
        for t in explicit
        if (association := t.explicit_association(subnet.subnet_id)) is not None
    )
    chosen = explicit + main if (not explicit or transitional) else explicit
    if not chosen:
        raise RouteTableNotFound(
            f"no route table visible for subnet {subnet.subnet_id} (VPC {subnet.vpc_id})"
            + (f", owned by account {subnet.owner_id}" if subnet.owner_id else "")
            + ": a subnet shared from another account has its route tables there; evaluate in the owner "
            "account or set CheckNetworkPath to false"
        )
    unique: dict[str, RouteTable] = {t.route_table_id: t for t in chosen}
    return tuple(unique.values())


def internet_paths(table: RouteTable, allowed_targets: Iterable[str] = ()) -> list[InternetPath]:
    """The routes of ``table`` that reach the internet (see the module docstring); blackholes ignored."""
    allowed = set(allowed_targets)
    paths: list[InternetPath] = []
    for route in table.routes:
        if not route.active:
            continue
        gateway = route.internet_gateway_kind
        if gateway is not None:
            paths.append(InternetPath(table.route_table_id, route.destination, route.target, gateway, True))
        elif route.default and not allowed.intersection(route.targets):
            if route.target == "local":
                continue
            paths.append(
                InternetPath(
                    table.route_table_id,
                    route.destination,
                    route.target,
                    f"{target_kind(route.target)}, not in AllowedEgressTargets",
                    False,
                )
            )
    return paths


@dataclass(frozen=True)
class NetworkView:
    """The subnets and route tables an evaluation may need, indexed."""

    subnets: Mapping[str, Subnet]
    route_tables: Sequence[RouteTable]

    def subnet(self, subnet_id: str) -> Subnet:
        found = self.subnets.get(subnet_id)
        if found is None:
            raise RouteTableNotFound(f"subnet {subnet_id} is not visible in this account and Region")
        return found

    def paths_for_subnet(
        self, subnet_id: str, allowed_targets: Iterable[str] = ()
    ) -> tuple[tuple[str, ...], list[InternetPath]]:
        """(ids of the route tables in force, internet paths among their routes) for ``subnet_id``."""
        tables = route_tables_in_force(self.subnet(subnet_id), self.route_tables)
        allowed = tuple(allowed_targets)
        paths = [path for table in tables for path in internet_paths(table, allowed)]
        return tuple(t.route_table_id for t in tables), paths


def _pages(client: Any, operation: str, result_key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(result_key) or [])
    return items


def load_for_subnet(ec2: Any, subnet_id: str) -> NetworkView:
    """The network facts for one subnet: DescribeSubnets for it, then its VPC's route tables (two calls, one
    page each in all but very large VPCs)."""
    with reading("DescribeSubnets"):
        subnets = [Subnet.parse(s) for s in _pages(ec2, "describe_subnets", "Subnets", SubnetIds=[subnet_id])]
    view_subnets = {s.subnet_id: s for s in subnets}
    if subnet_id not in view_subnets:
        raise RouteTableNotFound(f"DescribeSubnets did not return subnet {subnet_id}")
    vpc_id = view_subnets[subnet_id].vpc_id
    tables = _pages(
        ec2, "describe_route_tables", "RouteTables", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]
    )
    with reading("DescribeRouteTables"):
        return NetworkView(view_subnets, tuple(RouteTable.parse(t) for t in tables))


def load_region(ec2: Any) -> NetworkView:
    """Every subnet and route table of the Region: one paginated sweep of each, shared by all evaluations."""
    with reading("DescribeSubnets"):
        subnets = {
            s.subnet_id: s for s in (Subnet.parse(r) for r in _pages(ec2, "describe_subnets", "Subnets"))
        }
    with reading("DescribeRouteTables"):
        tables = tuple(RouteTable.parse(t) for t in _pages(ec2, "describe_route_tables", "RouteTables"))
    return NetworkView(subnets, tables)
