"""KMS key references as other resources name them, and ``kms:DescribeKey`` on them.

Buckets (default encryption), databases (storage) and notebooks (volumes) name the key that encrypts them
by ARN, id or alias. Rules that must tell a customer managed key from an AWS managed one ask KMS through
:class:`KeyResolver`, once per reference per invocation; the pure decisions take the answers as
:data:`KnownKeys` and ask for a missing one with :class:`NeedKey`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ml_guardrails.aws import error_code
from ml_guardrails.ci import MalformedConfigurationItem, as_str, reading, require_field, response_field

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

    from ml_guardrails.aws import ClientFactory

# A key id: a UUID, or mrk- and 32 hex digits for a multi-Region key.
KEY_ID = r"(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
# arn:<partition>:kms:<region>:<account>:key/<key id> -- the only form a KmsKeyArns list accepts.
KEY_ARN_PATTERN = r"arn:aws[a-z-]*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key/" + KEY_ID
ANY_KEY_ARN = re.compile(r"^arn:[^:]+:kms:[^:]*:\d{12}:key/.+$")
# A key or alias ARN: group 1 its Region, group 2 its account.
KMS_ARN = re.compile(r"^arn:[^:]+:kms:([^:]*):(\d{12}):(?:key|alias)/.+$")
# The alias/aws/ prefix is reserved for AWS managed keys (KMS CreateAlias: customers cannot use it).
AWS_ALIAS = re.compile(r"^(?:arn:[^:]+:kms:[^:]*:\d{12}:)?alias/aws/.+$")
KEY_NOT_FOUND_CODES = ("NotFoundException",)


def is_key_arn(reference: str) -> bool:
    return ANY_KEY_ARN.match(reference) is not None


def is_aws_managed_alias(reference: str) -> bool:
    return AWS_ALIAS.match(reference) is not None


@dataclass(frozen=True)
class NeedKey:
    """The decision needs ``kms:DescribeKey`` on ``reference`` before it can be made."""

    reference: str


@dataclass(frozen=True)
class ResolvedKey:
    """What ``kms:DescribeKey`` says about a key reference."""

    arn: str
    key_manager: str


# Keys looked up so far: reference -> the key, or None when KMS says it does not exist.
KnownKeys = Mapping[str, ResolvedKey | None]

S = TypeVar("S")
P = TypeVar("P")
V = TypeVar("V")


def decide_resolving(
    decide: Callable[[S, P, KnownKeys], V | NeedKey],
    subject: S,
    params: P,
    resolve: Callable[[str], ResolvedKey | None],
) -> V:
    """Run a pure ``decide`` that may ask for keys, resolving each one it asks for (``resolve`` may raise)."""
    keys: dict[str, ResolvedKey | None] = {}
    while True:
        outcome = decide(subject, params, keys)
        if not isinstance(outcome, NeedKey):
            return outcome
        if outcome.reference in keys:  # pragma: no cover - a decide() bug; never loop
            raise RuntimeError(f"decide asked twice for key {outcome.reference}")
        keys[outcome.reference] = resolve(outcome.reference)


def resolved_key(response: Any) -> ResolvedKey:
    """The :class:`ResolvedKey` of a DescribeKey response; anything malformed names the call."""
    with reading("DescribeKey"):
        metadata = response_field(response, "KeyMetadata", "DescribeKey")
        if not isinstance(metadata, Mapping):
            raise MalformedConfigurationItem(
                f"DescribeKey KeyMetadata must be an object, got {type(metadata).__name__}"
            )
        where = "DescribeKey KeyMetadata"
        return ResolvedKey(
            arn=as_str(require_field(metadata, "Arn", where=where), "KeyMetadata.Arn"),
            key_manager=as_str(require_field(metadata, "KeyManager", where=where), "KeyMetadata.KeyManager"),
        )


class KeyResolver:
    """``kms:DescribeKey`` with a per-invocation cache (results and errors, by Region and reference).

    A key KMS says does not exist resolves to None. ``on_error(exc, reference)`` may rewrite another error
    (e.g. say which key policy must allow the call) before it is cached and raised.
    """

    def __init__(
        self,
        clients: ClientFactory,
        region: str | None,
        on_error: Callable[[ClientError, str], None] | None = None,
    ) -> None:
        self._clients = clients
        self._region = region
        self._on_error = on_error
        self._cache: dict[tuple[str | None, str], ResolvedKey | ClientError | None] = {}
        self.calls = 0

    def resolve(self, reference: str) -> ResolvedKey | None:
        arn = KMS_ARN.match(reference)
        region = arn.group(1) if arn and arn.group(1) else self._region
        cache_key = (region, reference)
        if cache_key not in self._cache:
            self._cache[cache_key] = self._describe(region, reference)
        cached = self._cache[cache_key]
        if isinstance(cached, Exception):
            raise cached
        return cached

    def _describe(self, region: str | None, reference: str) -> ResolvedKey | ClientError | None:
        from botocore.exceptions import ClientError

        self.calls += 1
        kms = self._clients.build_client("kms", region=region)
        try:
            response = kms.describe_key(KeyId=reference)
        except ClientError as exc:
            if error_code(exc) in KEY_NOT_FOUND_CODES:
                return None
            if self._on_error is not None:
                self._on_error(exc, reference)
            return exc
        return resolved_key(response)
