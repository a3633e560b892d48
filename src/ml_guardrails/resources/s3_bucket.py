"""Typed view of an S3 bucket's default encryption and bucket policy, read from a configuration item or
from the S3 API -- one shape for both.

Where AWS puts the facts:

* CI: ``supplementaryConfiguration.ServerSideEncryptionConfiguration`` (camelCase:
  ``rules[].applyServerSideEncryptionByDefault.{sseAlgorithm,kmsMasterKeyID}``, ``rules[].bucketKeyEnabled``
  -- the property names AWS Config indexes, awslabs/aws-config-resource-schema
  ``AWS::S3::Bucket.properties.json``); absent when the bucket has no default-encryption configuration.
  ``supplementaryConfiguration.BucketPolicy.policyText`` is the policy as a JSON string, or null. Either
  supplementary value may itself arrive as a JSON string.
* API: ``GetBucketEncryption`` -> ``ServerSideEncryptionConfiguration.Rules[]``, each with
  ``ApplyServerSideEncryptionByDefault.{SSEAlgorithm,KMSMasterKeyID}`` and ``BucketKeyEnabled``
  (PascalCase); ``GetBucketPolicy`` -> ``Policy``.

Bucket policies are read as IAM reads them: ``Statement`` one object or a list; ``Action``/``Resource`` a
string or a list; ``NotPrincipal``/``NotAction``/``NotResource`` kept apart (they invert); condition
operators and keys kept with their values as tuples of strings, keys lower-cased (condition keys are
case-insensitive).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml_guardrails.ci import (
    ConfigurationItem,
    MalformedConfigurationItem,
    as_bool,
    as_list,
    as_mapping,
    as_str,
    decode_json,
    get_field,
)
from ml_guardrails.wildcards import glob_covers_prefix, glob_match

# glob_* live in ml_guardrails.wildcards (shared with the policy grammar); re-exported for existing importers.
__all__ = [
    "AWS_MANAGED_S3_ALIAS",
    "DSSE_KMS",
    "KMS_ALGORITHMS",
    "RESOURCE_TYPE",
    "SSE_KMS",
    "SSE_S3",
    "DefaultEncryptionRule",
    "PolicyStatement",
    "S3Bucket",
    "bucket_name_and_arn",
    "glob_covers_prefix",
    "glob_match",
    "parse_encryption_configuration",
    "parse_policy",
    "policy_text_from_configuration_item",
]

RESOURCE_TYPE = "AWS::S3::Bucket"
SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
DSSE_KMS = "aws:kms:dsse"
KMS_ALGORITHMS = frozenset({SSE_KMS, DSSE_KMS})
# The key S3 uses for SSE-KMS when the default-encryption rule names none (API_ServerSideEncryptionByDefault).
AWS_MANAGED_S3_ALIAS = "alias/aws/s3"


@dataclass(frozen=True)
class DefaultEncryptionRule:
    """One ``ServerSideEncryptionRule`` that carries a default (``ApplyServerSideEncryptionByDefault``)."""

    sse_algorithm: str
    kms_master_key_id: str | None
    bucket_key_enabled: bool


@dataclass(frozen=True)
class S3Bucket:
    """The facts the encryption rule needs about one general purpose bucket."""

    name: str
    arn: str
    # None: the bucket has no default-encryption configuration at all.
    encryption_rules: tuple[DefaultEncryptionRule, ...] | None
    # None: the bucket has no bucket policy.
    policy_text: str | None

    @property
    def objects_arn_prefix(self) -> str:
        """``arn:<partition>:s3:::<bucket>/`` -- every object ARN of the bucket starts with it."""
        return self.arn + "/"

    @classmethod
    def from_configuration_item(cls, item: ConfigurationItem) -> S3Bucket:
        name, arn = bucket_name_and_arn(item)
        encryption = item.supplementary_value("ServerSideEncryptionConfiguration")
        return cls(
            name=name,
            arn=arn,
            encryption_rules=parse_encryption_configuration(encryption, "ServerSideEncryptionConfiguration"),
            policy_text=policy_text_from_configuration_item(item),
        )

    @classmethod
    def from_api(
        cls,
        name: str,
        partition: str,
        encryption: Mapping[str, Any] | None,
        policy_text: str | None,
    ) -> S3Bucket:
        """From ``GetBucketEncryption``'s ``ServerSideEncryptionConfiguration`` (None when S3 answered
        ServerSideEncryptionConfigurationNotFoundError) and ``GetBucketPolicy``'s ``Policy``."""
        return cls(
            name=name,
            arn=f"arn:{partition}:s3:::{name}",
            encryption_rules=parse_encryption_configuration(encryption, "ServerSideEncryptionConfiguration"),
            policy_text=_policy_text(policy_text),
        )


def bucket_name_and_arn(item: ConfigurationItem) -> tuple[str, str]:
    """The bucket's name and ARN from a configuration item (``configuration.name``, else the resource
    name or id; ``ARN``, else built in the aws partition)."""
    name = get_field(item.configuration, "name") or item.resource_name or item.resource_id
    name = as_str(name, "configuration.name")
    return name, item.arn or f"arn:aws:s3:::{name}"


def policy_text_from_configuration_item(item: ConfigurationItem) -> str | None:
    """``supplementaryConfiguration.BucketPolicy.policyText`` (None: the bucket has no policy)."""
    policy = item.supplementary_value("BucketPolicy")
    if policy is None:
        return None
    return _policy_text(get_field(as_mapping(policy, "BucketPolicy"), "policyText"))


def _policy_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, Mapping):  # already decoded by a caller: keep one representation
        return json.dumps(value)
    return as_str(value, "BucketPolicy.policyText")


def parse_encryption_configuration(value: Any, where: str) -> tuple[DefaultEncryptionRule, ...] | None:
    """The default-encryption rules of a ``ServerSideEncryptionConfiguration`` in either case style.

    None when there is no configuration. Rules without a default (e.g. only ``BlockedEncryptionTypes``)
    are left out; a default without an algorithm is malformed (never guessed).
    """
    value = decode_json(value)
    if value is None:
        return None
    config = as_mapping(value, where)
    rules: list[DefaultEncryptionRule] = []
    for index, raw in enumerate(as_list(get_field(config, "Rules"), f"{where}.rules")):
        rule = as_mapping(raw, f"{where}.rules[{index}]")
        default = get_field(rule, "ApplyServerSideEncryptionByDefault")
        if default is None:
            continue
        default = as_mapping(default, f"{where}.rules[{index}].applyServerSideEncryptionByDefault")
        algorithm = get_field(default, "SSEAlgorithm")
        if not isinstance(algorithm, str) or not algorithm.strip():
            raise MalformedConfigurationItem(f"{where}.rules[{index}] has a default without sseAlgorithm")
        key = get_field(default, "KMSMasterKeyID")
        if key is not None:
            key = as_str(key, f"{where}.rules[{index}].kmsMasterKeyID").strip() or None
        bucket_key = get_field(rule, "BucketKeyEnabled")
        rules.append(
            DefaultEncryptionRule(
                sse_algorithm=algorithm.strip(),
                kms_master_key_id=key,
                bucket_key_enabled=False if bucket_key is None else as_bool(bucket_key, "bucketKeyEnabled"),
            )
        )
    return tuple(rules)


# ------------------------------------------------------------------------------------------ bucket policy
@dataclass(frozen=True)
class PolicyStatement:
    """One statement of a resource policy, normalised the way IAM evaluates it."""

    sid: str | None
    effect: str
    principal: Any
    not_principal: Any
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...]
    not_resources: tuple[str, ...] | None
    # operator (as written) -> condition key (lower-cased) -> values as strings
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]

    @property
    def principal_is_everyone(self) -> bool:
        """``"*"``, ``{"AWS": "*"}`` or an AWS list containing ``"*"`` -- and no NotPrincipal."""
        if self.not_principal is not None:
            return False
        if self.principal == "*":
            return True
        if isinstance(self.principal, Mapping):
            aws = get_field(self.principal, "AWS")
            values = aws if isinstance(aws, list) else [aws]
            return "*" in values
        return False


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise MalformedConfigurationItem(f"{name} must hold strings, got {type(item).__name__}")
    return tuple(out)


def parse_policy(text: str) -> tuple[PolicyStatement, ...]:
    """The statements of a bucket policy document (JSON text). Malformed documents raise
    :class:`MalformedConfigurationItem`: a policy we cannot read is never taken as enforcing anything."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise MalformedConfigurationItem(f"bucket policy is not valid JSON: {exc}") from exc
    document = as_mapping(document, "bucket policy")
    raw_statements = get_field(document, "Statement")
    if raw_statements is None:
        raise MalformedConfigurationItem("bucket policy has no Statement")
    if isinstance(raw_statements, Mapping):
        raw_statements = [raw_statements]
    statements: list[PolicyStatement] = []
    for index, raw in enumerate(as_list(raw_statements, "Statement")):
        where = f"Statement[{index}]"
        stmt = as_mapping(raw, where)
        conditions: dict[str, dict[str, tuple[str, ...]]] = {}
        raw_conditions = get_field(stmt, "Condition")
        if raw_conditions is not None:
            for operator, block in as_mapping(raw_conditions, f"{where}.Condition").items():
                entries = as_mapping(block, f"{where}.Condition.{operator}")
                conditions[str(operator)] = {
                    str(key).lower(): _strings(values, f"{where}.Condition.{operator}.{key}")
                    for key, values in entries.items()
                }
        not_actions = get_field(stmt, "NotAction")
        not_resources = get_field(stmt, "NotResource")
        nr = None if not_resources is None else _strings(not_resources, f"{where}.NotResource")
        effect = get_field(stmt, "Effect")
        statements.append(
            PolicyStatement(
                sid=get_field(stmt, "Sid") if isinstance(get_field(stmt, "Sid"), str) else None,
                effect=as_str(effect, f"{where}.Effect"),
                principal=get_field(stmt, "Principal"),
                not_principal=get_field(stmt, "NotPrincipal"),
                actions=_strings(get_field(stmt, "Action"), f"{where}.Action"),
                not_actions=None if not_actions is None else _strings(not_actions, f"{where}.NotAction"),
                resources=_strings(get_field(stmt, "Resource"), f"{where}.Resource"),
                not_resources=nr,
                conditions=conditions,
            )
        )
    return tuple(statements)
