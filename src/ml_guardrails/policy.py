"""A typed model of IAM resource-policy documents (bucket policies, VPC endpoint policies) and the
questions the data-perimeter rules ask of them. Pure: no I/O.

The grammar is read as IAM reads it (IAM User Guide, "IAM JSON policy element reference",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html):

* ``Statement`` is one object or a list; ``Version`` optional (2008-10-17 or 2012-10-17).
* ``Principal`` is ``"*"`` or an object with ``AWS``, ``Service``, ``Federated``, ``CanonicalUser``, each a
  string or a list; ``NotPrincipal`` has the same shape and means *everyone but* those.
* ``Action``/``NotAction`` and ``Resource``/``NotResource`` are strings or lists; each pair is exclusive.
* ``Condition`` maps operators to ``{key: value | [values]}``. Operators may carry the ``IfExists`` suffix
  and a ``ForAnyValue:``/``ForAllValues:`` qualifier. Condition key *names* are case-insensitive
  (reference_policies_elements_condition.html: "Context key names are not case-sensitive"), so keys are
  kept lower-cased. Values are strings (JSON booleans and numbers become their JSON text).

A document this module cannot read raises :class:`PolicyError`, a :class:`MalformedConfigurationItem`:
the engine reports the resource as not evaluated, never COMPLIANT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.params import StringParameter
from ml_guardrails.wildcards import glob_covers_prefix, glob_match, has_wildcard

VERSIONS = ("2012-10-17", "2008-10-17")
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
STATEMENT_ELEMENTS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
QUALIFIERS = ("forallvalues", "foranyvalue")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
# arn:<partition>:<service>:<region>:<account>:<resource>
_ARN = re.compile(r"^arn:[^:]+:[^:]*:[^:]*:([^:]*):.+$")
_VPCE_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
ORG_ID_PATTERN = r"o-[a-z0-9]{10,32}"


def organization_id_parameter(description: str) -> StringParameter:
    """The required ``OrganizationId`` of the organization-boundary rules. Config must pass the real id: the
    default (AWS's documentation placeholder, as parameters.json ships it) matches no organization, so
    nothing passes by accident."""
    return StringParameter(
        "OrganizationId",
        description,
        default="o-exampleorgid",
        required=True,
        pattern=ORG_ID_PATTERN,
        what="an AWS Organizations id (o- followed by 10-32 lower-case letters or digits)",
    )


class PolicyError(MalformedConfigurationItem):
    """The policy document is not one IAM would accept, or not one this module can read."""


# ----------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ConditionEntry:
    """One ``operator: {key: values}`` pair of a Condition block."""

    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    base: str  # lower-cased, without qualifier and IfExists, e.g. "stringlike"
    qualifier: str | None  # "forallvalues", "foranyvalue" or None
    if_exists: bool
    key: str  # lower-cased
    values: tuple[str, ...]


@dataclass(frozen=True)
class Principals:
    """A ``Principal`` or ``NotPrincipal`` element."""

    everyone: bool = False  # "*" or {"AWS": "*"} (alone or in a list)
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


@dataclass(frozen=True)
class Statement:
    index: int
    sid: str | None
    effect: str  # "Allow" or "Deny"
    principal: Principals | None
    not_principal: Principals | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[ConditionEntry, ...]

    @property
    def label(self) -> str:
        """The Sid, else ``#<index>`` (0-based, in document order)."""
        return self.sid if self.sid else f"#{self.index}"

    @property
    def is_allow(self) -> bool:
        return self.effect == "Allow"

    @property
    def principal_is_everyone(self) -> bool:
        """``Principal`` is ``"*"`` or holds ``{"AWS": "*"}``."""
        return self.principal is not None and self.principal.everyone

    def conditions_on(self, key: str) -> tuple[ConditionEntry, ...]:
        lowered = key.lower()
        return tuple(c for c in self.conditions if c.key == lowered)


@dataclass(frozen=True)
class PolicyDocument:
    version: str | None
    statements: tuple[Statement, ...]

    @property
    def allows(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.is_allow)

    @property
    def denies(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if not s.is_allow)


# --------------------------------------------------------------------------------------------- parsing
def _field(mapping: Mapping[str, Any], name: str) -> Any:
    """Policy element names are matched exactly, as IAM matches them."""
    return mapping.get(name)


def _strings(value: Any, where: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float):
            out.append(json.dumps(item))
        else:
            raise PolicyError(f"{where} must hold strings, got {type(item).__name__}")
    if not out and not allow_empty:
        raise PolicyError(f"{where} is empty")
    return tuple(out)


def _principals(value: Any, where: str) -> Principals:
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, Mapping):
        raise PolicyError(f'{where} must be "*" or an object of principal types, got {value!r:.60}')
    unknown = sorted(str(k) for k in value if k not in PRINCIPAL_TYPES)
    if unknown:
        raise PolicyError(f"{where} has an unknown principal type {unknown[0]!r:.40}")
    if not value:
        raise PolicyError(f"{where} is empty")
    lists = {
        name: _strings(value[name], f"{where}.{name}") if name in value else () for name in PRINCIPAL_TYPES
    }
    return Principals(
        everyone="*" in lists["AWS"],
        aws=tuple(p for p in lists["AWS"] if p != "*"),
        service=lists["Service"],
        federated=lists["Federated"],
        canonical_user=lists["CanonicalUser"],
    )


def _operator_parts(operator: str, where: str) -> tuple[str, str | None, bool]:
    qualifier = None
    base = operator
    if ":" in operator:
        prefix, _, base = operator.partition(":")
        qualifier = prefix.lower()
        if qualifier not in QUALIFIERS:
            raise PolicyError(f"{where}: unknown set operator {prefix!r:.40}")
    if_exists = base.lower().endswith("ifexists")
    if if_exists:
        base = base[: -len("IfExists")]
    if not base or not base.isalpha():
        raise PolicyError(f"{where}: unreadable condition operator {operator!r:.60}")
    return base.lower(), qualifier, if_exists


def _conditions(value: Any, where: str) -> tuple[ConditionEntry, ...]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be an object")
    entries: list[ConditionEntry] = []
    for operator, block in value.items():
        base, qualifier, if_exists = _operator_parts(str(operator), where)
        if not isinstance(block, Mapping) or not block:
            raise PolicyError(f"{where}.{operator} must be a non-empty object of condition keys")
        for key, values in block.items():
            entries.append(
                ConditionEntry(
                    operator=str(operator),
                    base=base,
                    qualifier=qualifier,
                    if_exists=if_exists,
                    key=str(key).lower(),
                    values=_strings(values, f"{where}.{operator}.{key}", allow_empty=True),
                )
            )
    return tuple(entries)


def _pair(stmt: Mapping[str, Any], name: str, where: str, *, required: bool) -> tuple[Any, Any]:
    positive, negative = _field(stmt, name), _field(stmt, f"Not{name}")
    if positive is not None and negative is not None:
        raise PolicyError(f"{where} has both {name} and Not{name}")
    if required and positive is None and negative is None:
        raise PolicyError(f"{where} has neither {name} nor Not{name}")
    return positive, negative


def _statement(raw: Any, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where} must be an object, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in STATEMENT_ELEMENTS)
    if unknown:  # IAM rejects the document (MalformedPolicy); a typo such as "Conditions" must not be ignored
        raise PolicyError(f"{where} has an unknown element {unknown[0]!r:.40}")
    effect = _field(raw, "Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{where}.Effect must be "Allow" or "Deny", got {effect!r:.40}')
    sid = _field(raw, "Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}.Sid must be a string")
    # Resource policies must name who they apply to (S3 and VPC endpoint policies reject a statement
    # without Principal/NotPrincipal).
    principal, not_principal = _pair(raw, "Principal", where, required=True)
    actions, not_actions = _pair(raw, "Action", where, required=True)
    resources, not_resources = _pair(raw, "Resource", where, required=False)
    condition = _field(raw, "Condition")
    return Statement(
        index=index,
        sid=sid or None,
        effect=effect,
        principal=None if principal is None else _principals(principal, f"{where}.Principal"),
        not_principal=None if not_principal is None else _principals(not_principal, f"{where}.NotPrincipal"),
        actions=None if actions is None else _strings(actions, f"{where}.Action"),
        not_actions=None if not_actions is None else _strings(not_actions, f"{where}.NotAction"),
        resources=None if resources is None else _strings(resources, f"{where}.Resource"),
        not_resources=None if not_resources is None else _strings(not_resources, f"{where}.NotResource"),
        conditions=() if condition is None else _conditions(condition, f"{where}.Condition"),
    )


def parse_policy(document: str | Mapping[str, Any]) -> PolicyDocument:
    """The document as a :class:`PolicyDocument`; raises :class:`PolicyError` when it is malformed."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise PolicyError(f"policy is not valid JSON: {exc}") from exc
    if not isinstance(document, Mapping):
        raise PolicyError(f"policy must be a JSON object, got {type(document).__name__}")
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(f"policy Version must be one of {', '.join(VERSIONS)}, got {version!r:.40}")
    raw = document.get("Statement")
    if raw is None:
        raise PolicyError("policy has no Statement")
    raw_list = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(raw_list, list) or not raw_list:
        raise PolicyError("policy Statement must be an object or a non-empty list")
    return PolicyDocument(version, tuple(_statement(s, i) for i, s in enumerate(raw_list)))


def account_of(principal: str) -> str | None:
    """The account an ``AWS`` principal belongs to: a 12-digit id, or the account field of an ARN
    (``arn:aws:iam::123456789012:root``, ``...:role/x``, ``arn:aws:sts::...:assumed-role/...``).
    None when unknown (e.g. an IAM unique id ``AROA...``, which IAM stores when the role was deleted)."""
    if _ACCOUNT_ID.match(principal):
        return principal
    match = _ARN.match(principal)
    if match and _ACCOUNT_ID.match(match.group(1)):
        return match.group(1)
    return None


def outside_principals(statement: Statement, account_id: str | None) -> tuple[str, ...]:
    """Who, outside ``account_id``, the statement applies to (empty: only the account's own principals
    or AWS service principals). ``*`` for everyone and for ``NotPrincipal`` (everyone but the listed).

    Service principals are not accounts and are left out. Federated principals other than a SAML/OIDC
    provider ARN of ``account_id``, canonical user ids (not mappable to an account) and AWS principals
    whose account cannot be read count as outside: unknown is never taken as ours. With ``account_id``
    None every AWS principal counts as outside.
    """
    if statement.not_principal is not None or statement.principal is None:
        return ("*",)
    principal = statement.principal
    if principal.everyone:
        return ("*",)
    outside = [p for p in principal.aws if account_id is None or account_of(p) != account_id]
    outside += [p for p in principal.federated if account_id is None or account_of(p) != account_id]
    outside += list(principal.canonical_user)
    return tuple(outside)


# ---------------------------------------------------------------------------------------- constraints
# An Allow is *constrained* by a condition entry when every request the entry lets through satisfies
# the perimeter. Condition entries of one statement are ANDed (reference_policies_elements_condition.html
# "If you specify multiple condition operators, or multiple keys attached to a single condition operator,
# the conditions are evaluated using a logical AND"), so one constraining entry constrains the statement.
#
# ...IfExists never constrains an Allow: "If the key is not present, evaluate the condition element as
# true" (reference_policies_elements_condition_operators.html#Conditions_IfExists), so a request without
# the key (a principal outside any organization has no aws:PrincipalOrgID) passes.
# ForAllValues: never constrains either: with the key absent (an empty set) it evaluates true
# (reference_policies_condition-single-vs-multi-valued-context-keys.html).
# Multiple values of one key are ORed, so every value must be ours.
_EQUALS = ("stringequals",)
_EQUALS_OR_LIKE = ("stringequals", "stringlike")


def _exact_values(entry: ConditionEntry, operators: Iterable[str]) -> tuple[str, ...] | None:
    """The entry's values when it is a positive string match (no IfExists, no ForAllValues) with no
    wildcard that could widen it; None otherwise. StringEqualsIgnoreCase is folded to lower case."""
    if entry.if_exists or entry.qualifier == "forallvalues" or not entry.values:
        return None
    base = entry.base
    if base == "stringequalsignorecase":
        return tuple(v.lower() for v in entry.values)
    if base not in operators:
        return None
    if base == "stringlike" and any(has_wildcard(v) for v in entry.values):
        return None
    return entry.values


def pins_principal_org(entry: ConditionEntry, org_id: str) -> bool:
    """``StringEquals``/``StringLike`` (no wildcard) ``aws:PrincipalOrgID`` equal to ``org_id`` only."""
    if entry.key != "aws:principalorgid":
        return False
    values = _exact_values(entry, _EQUALS_OR_LIKE)
    return values is not None and all(v == org_id for v in values)


def pins_resource_org(entry: ConditionEntry, org_id: str) -> bool:
    """``aws:ResourceOrgID`` equal to ``org_id`` only (same operators as :func:`pins_principal_org`)."""
    if entry.key != "aws:resourceorgid":
        return False
    values = _exact_values(entry, _EQUALS_OR_LIKE)
    return values is not None and all(v == org_id for v in values)


def pins_principal_org_paths(entry: ConditionEntry, org_id: str) -> bool:
    """``aws:PrincipalOrgPaths`` (multivalued) with ``ForAnyValue:StringEquals``/``StringLike`` and every
    value a path inside ``org_id`` (``o-.../r-.../ou-.../``); wildcards only after ``<org_id>/``.
    The documented form (reference_policies_condition-keys.html#condition-keys-principalorgpaths).
    A plain operator on this multivalued key is not accepted (AWS advises set operators for it)."""
    if entry.key != "aws:principalorgpaths" or entry.qualifier != "foranyvalue" or entry.if_exists:
        return False
    if entry.base not in _EQUALS_OR_LIKE or not entry.values:
        return False
    prefix = org_id + "/"
    for value in entry.values:
        if not value.startswith(prefix):
            return False
        if entry.base == "stringequals" and has_wildcard(value):
            return False
    return True


def pins_principal_account(entry: ConditionEntry, account_id: str | None) -> bool:
    """``aws:PrincipalAccount`` equal to ``account_id`` (the resource's own account) only."""
    if entry.key != "aws:principalaccount" or account_id is None:
        return False
    values = _exact_values(entry, _EQUALS_OR_LIKE)
    return values is not None and all(v == account_id for v in values)


def pins_source_vpce(entry: ConditionEntry) -> bool:
    """``aws:SourceVpce`` equal to named VPC endpoint ids (no wildcards)."""
    if entry.key != "aws:sourcevpce":
        return False
    values = _exact_values(entry, _EQUALS_OR_LIKE)
    return values is not None and all(_VPCE_ID.match(v) for v in values)


def requires_aws_service(entry: ConditionEntry) -> bool:
    """``Bool {"aws:PrincipalIsAWSService": "true"}`` (not IfExists): only AWS service principals
    calling with their service principal match -- AWS's data-perimeter endpoint policies allow these."""
    return (
        entry.key == "aws:principalisawsservice"
        and entry.base == "bool"
        and not entry.if_exists
        and entry.qualifier is None
        and bool(entry.values)
        and all(v.lower() == "true" for v in entry.values)
    )


Check = Callable[[ConditionEntry], bool]


def constrained_by(statement: Statement, checks: Iterable[Check]) -> bool:
    """True when some condition entry of ``statement`` satisfies one of ``checks``."""
    tests = tuple(checks)
    return any(check(entry) for entry in statement.conditions for check in tests)


# ------------------------------------------------------------------------------------------ coverage
def covers_all_s3_actions(statement: Statement) -> bool:
    """``Action`` includes ``s3:*`` or ``*`` (case-insensitive); a NotAction is not accepted."""
    if statement.actions is None:
        return False
    return any(a.lower() in ("*", "s3:*") for a in statement.actions)


def covers_bucket(statement: Statement, bucket_arn: str) -> bool:
    """``Resource`` matches the bucket ARN itself (NotResource is not accepted)."""
    return statement.resources is not None and any(glob_match(r, bucket_arn) for r in statement.resources)


def covers_objects(statement: Statement, bucket_arn: str) -> bool:
    """``Resource`` matches every object ARN of the bucket (``<bucket_arn>/*``, ``arn:aws:s3:::*``, ``*``)."""
    return statement.resources is not None and any(
        glob_covers_prefix(r, bucket_arn + "/") for r in statement.resources
    )


def _is_everyone_deny(statement: Statement) -> bool:
    return (
        not statement.is_allow
        and statement.not_principal is None
        and statement.principal_is_everyone
        and covers_all_s3_actions(statement)
        and statement.not_resources is None
    )


def _denies_plain_http(statement: Statement) -> bool:
    """The only condition is ``Bool``/``BoolIfExists`` ``aws:SecureTransport`` ``false`` (S3 always
    sets the key, so both forms deny plain HTTP; any further condition would narrow the Deny)."""
    if len(statement.conditions) != 1:
        return False
    (entry,) = statement.conditions
    return (
        entry.key == "aws:securetransport"
        and entry.base == "bool"
        and entry.qualifier is None
        and bool(entry.values)
        and all(v.lower() == "false" for v in entry.values)
    )


def denies_insecure_transport(policy: PolicyDocument, bucket_arn: str) -> bool:
    """A Deny with Principal ``*``, action ``s3:*`` or ``*``, ``aws:SecureTransport`` false, covering the
    bucket and all its objects (one statement or several together). The form of the S3 User Guide's
    example-bucket-policies.html "Managing access based on HTTP or HTTPS requests"."""
    tls = [s for s in policy.denies if _is_everyone_deny(s) and _denies_plain_http(s)]
    return any(covers_bucket(s, bucket_arn) for s in tls) and any(covers_objects(s, bucket_arn) for s in tls)


def _perimeter_condition(entry: ConditionEntry, org_id: str) -> bool:
    """``StringNotEquals[IfExists] {"aws:PrincipalOrgID": org_id}``: true for every caller outside the
    organization (IfExists makes callers without the key match too, so it is fine in a Deny)."""
    return (
        entry.key == "aws:principalorgid"
        and entry.base == "stringnotequals"
        and entry.qualifier is None
        and entry.values == (org_id,)
    )


def _service_exception(entry: ConditionEntry) -> bool:
    """``Bool[IfExists] {"aws:PrincipalIsAWSService": "false"}``: exempts only AWS service principals."""
    return (
        entry.key == "aws:principalisawsservice"
        and entry.base == "bool"
        and entry.qualifier is None
        and bool(entry.values)
        and all(v.lower() == "false" for v in entry.values)
    )


def identity_perimeter_deny(policy: PolicyDocument, bucket_arn: str, org_id: str) -> Statement | None:
    """A bucket-wide Deny of every S3 action to callers outside ``org_id`` (the data-perimeter pattern of
    aws-samples/data-perimeter-policy-examples, resource_based_policies/s3_bucket_policy): Principal
    ``*``, ``s3:*``/``*``, bucket and objects, ``StringNotEquals[IfExists] aws:PrincipalOrgID`` = the
    organization, optionally excepting AWS service principals only. With it, no Allow reaches outside."""
    for statement in policy.denies:
        if not (_is_everyone_deny(statement) and covers_bucket(statement, bucket_arn)):
            continue
        if not covers_objects(statement, bucket_arn):
            continue
        perimeter = [c for c in statement.conditions if _perimeter_condition(c, org_id)]
        others = [c for c in statement.conditions if not _perimeter_condition(c, org_id)]
        if perimeter and all(_service_exception(c) for c in others):
            return statement
    return None


# -------------------------------------------------------------------------------------------- helpers
def labels(statements: Iterable[Statement], limit: int = 4, width: int = 40) -> str:
    """``"Sid1, #2, Sid3"`` -- at most ``limit`` labels of at most ``width`` characters, then ``+N more``."""
    names = [s.label if len(s.label) <= width else s.label[: width - 1] + "~" for s in statements]
    shown = ", ".join(names[:limit])
    return shown + (f" +{len(names) - limit} more" if len(names) > limit else "")


def is_default_full_access(policy: PolicyDocument) -> bool:
    """The default endpoint policy: one Allow of ``*`` to ``*`` on ``*`` without conditions
    (https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html#default-endpoint-policy)."""
    if len(policy.statements) != 1:
        return False
    (s,) = policy.statements
    return (
        s.is_allow
        and s.principal_is_everyone
        and s.actions is not None
        and "*" in s.actions
        and s.resources is not None
        and "*" in s.resources
        and not s.conditions
    )
