"""Typed views of an AWS KMS key: its metadata and its rotation status.

One view serves both sources of the same facts: an ``AWS::KMS::Key`` configuration item (camelCase
``configuration`` = DescribeKey's ``KeyMetadata``; ``supplementaryConfiguration.KeyRotationStatus`` a
JSON boolean in change notifications, the string ``"true"``/``"false"`` in GetResourceConfigHistory,
whose supplementary values are ``map<string,string>``) and the DescribeKey / GetKeyRotationStatus
responses (PascalCase).

Enumerations are the values botocore's KMS service model (1.44.8) lists. A value outside them is kept
as it is and reported as unknown by :func:`KmsKey.unknown_value`: the rule must not guess what a new
key state, spec or origin means for rotation.

Sources: the Config resource schema of ``AWS::KMS::Key`` (github.com/awslabs/aws-config-resource-schema,
``config/properties/resource-types/AWS::KMS::Key.properties.json``) and the KMS API reference
(DescribeKey, GetKeyRotationStatus, "Key states of AWS KMS keys").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ml_guardrails.ci import (
    ConfigurationItem,
    MalformedConfigurationItem,
    as_bool,
    as_mapping,
    as_str,
    get_field,
    require_field,
)

RESOURCE_TYPE = "AWS::KMS::Key"

# botocore 1.44.8, service model kms 2014-11-01: KeyManagerType, KeyState, OriginType, KeySpec,
# MultiRegionKeyType.
KEY_MANAGERS = frozenset({"AWS", "CUSTOMER"})
KEY_STATES = frozenset(
    {
        "Creating",
        "Enabled",
        "Disabled",
        "PendingDeletion",
        "PendingImport",
        "PendingReplicaDeletion",
        "Unavailable",
        "Updating",
    }
)
ORIGINS = frozenset({"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"})
KEY_SPECS = frozenset(
    {
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
        "SYMMETRIC_DEFAULT",
        "HMAC_224",
        "HMAC_256",
        "HMAC_384",
        "HMAC_512",
        "SM2",
        "ML_DSA_44",
        "ML_DSA_65",
        "ML_DSA_87",
        "ECC_NIST_EDWARDS25519",
        "ML_KEM_512",
        "ML_KEM_768",
        "ML_KEM_1024",
    }
)
MULTI_REGION_KEY_TYPES = frozenset({"PRIMARY", "REPLICA"})


class IncompleteRotationStatus(ValueError):
    """GetKeyRotationStatus did not return a fact the decision needs (e.g. the rotation period)."""


@dataclass(frozen=True)
class KmsKey:
    """The facts about a KMS key that decide whether automatic rotation applies to it."""

    key_id: str
    arn: str | None
    key_manager: str
    key_state: str
    origin: str
    key_spec: str
    multi_region: bool
    multi_region_key_type: str | None = None
    primary_key_arn: str | None = None
    # From the configuration item only (None when the item does not carry it, and for API views).
    rotation_enabled: bool | None = None

    @property
    def is_replica(self) -> bool:
        return self.multi_region_key_type == "REPLICA"

    def unknown_value(self) -> tuple[str, str] | None:
        """The first (field name, value) outside botocore's enumerations, if any."""
        checks: tuple[tuple[str, str | None, frozenset[str]], ...] = (
            ("KeyManager", self.key_manager, KEY_MANAGERS),
            ("KeyState", self.key_state, KEY_STATES),
            ("Origin", self.origin, ORIGINS),
            ("KeySpec", self.key_spec, KEY_SPECS),
        )
        for name, value, known in checks:
            if value not in known:
                return name, str(value)
        if (
            self.multi_region_key_type is not None
            and self.multi_region_key_type not in MULTI_REGION_KEY_TYPES
        ):
            return "MultiRegionKeyType", self.multi_region_key_type
        return None

    @classmethod
    def from_configuration_item(cls, item: ConfigurationItem) -> KmsKey:
        """The view of an ``AWS::KMS::Key`` configuration item (notification or history shape)."""
        if item.resource_type != RESOURCE_TYPE:
            raise MalformedConfigurationItem(f"expected a {RESOURCE_TYPE} item, got {item.resource_type}")
        raw_rotation = get_field(item.supplementary, "KeyRotationStatus")
        rotation = (
            None
            if raw_rotation is None
            else as_bool(raw_rotation, "supplementaryConfiguration.KeyRotationStatus")
        )
        return cls._from_metadata(
            item.configuration,
            key_id=item.resource_id,
            where=f"configuration of {item.resource_id}",
            arn=item.arn,
            rotation_enabled=rotation,
        )

    @classmethod
    def from_key_metadata(cls, metadata: Mapping[str, Any]) -> KmsKey:
        """The view of DescribeKey's ``KeyMetadata``."""
        key_id = as_str(
            require_field(metadata, "KeyId", where="DescribeKey KeyMetadata"), "KeyMetadata.KeyId"
        )
        return cls._from_metadata(metadata, key_id=key_id, where=f"DescribeKey KeyMetadata of {key_id}")

    @classmethod
    def _from_metadata(
        cls,
        cfg: Mapping[str, Any],
        *,
        key_id: str,
        where: str,
        arn: str | None = None,
        rotation_enabled: bool | None = None,
    ) -> KmsKey:
        def text(name: str, *aliases: str) -> str:
            return as_str(require_field(cfg, name, *aliases, where=where), f"{where}: {name}")

        # KeySpec replaced CustomerMasterKeySpec (2022); older items carry only the deprecated name.
        key_spec = text("KeySpec", "CustomerMasterKeySpec")
        mrc_raw = get_field(cfg, "MultiRegionConfiguration")
        mrc = None if mrc_raw is None else as_mapping(mrc_raw, f"{where}: MultiRegionConfiguration")
        raw_multi = get_field(cfg, "MultiRegion")
        # Items recorded before multi-Region keys existed (2021) have no MultiRegion field: single-Region.
        multi_region = (mrc is not None) if raw_multi is None else as_bool(raw_multi, f"{where}: MultiRegion")
        key_type: str | None = None
        primary_arn: str | None = None
        if multi_region:
            if mrc is None:
                raise MalformedConfigurationItem(
                    f"{where}: MultiRegion is true but MultiRegionConfiguration is missing, so a replica "
                    "cannot be told from a primary key"
                )
            key_type = as_str(
                require_field(mrc, "MultiRegionKeyType", where=f"{where}: MultiRegionConfiguration"),
                f"{where}: MultiRegionKeyType",
            )
            primary_raw = get_field(mrc, "PrimaryKey")
            if primary_raw is not None:
                primary_arn_raw = get_field(as_mapping(primary_raw, f"{where}: PrimaryKey"), "Arn")
                primary_arn = (
                    primary_arn_raw if isinstance(primary_arn_raw, str) and primary_arn_raw else None
                )
        own_arn = arn or get_field(cfg, "Arn")
        return cls(
            key_id=key_id,
            arn=own_arn if isinstance(own_arn, str) and own_arn else None,
            key_manager=text("KeyManager"),
            key_state=text("KeyState"),
            origin=text("Origin"),
            key_spec=key_spec,
            multi_region=multi_region,
            multi_region_key_type=key_type,
            primary_key_arn=primary_arn,
            rotation_enabled=rotation_enabled,
        )


@dataclass(frozen=True)
class RotationStatus:
    """Automatic rotation of one key: GetKeyRotationStatus, or the configuration item's status alone.

    ``period_days`` is None when unknown: the configuration item does not record it, and moto (unlike
    AWS) does not return it. ``supported`` is False when AWS answered UnsupportedOperationException.
    """

    enabled: bool
    period_days: int | None = None
    next_rotation: str | None = None
    supported: bool = True

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> RotationStatus:
        """GetKeyRotationStatus's response: KeyRotationEnabled, RotationPeriodInDays, NextRotationDate."""
        where = "GetKeyRotationStatus response"
        enabled = as_bool(require_field(response, "KeyRotationEnabled", where=where), "KeyRotationEnabled")
        period_raw = get_field(response, "RotationPeriodInDays")
        period: int | None = None
        if period_raw is not None:
            if isinstance(period_raw, bool) or not isinstance(period_raw, int | str):
                raise MalformedConfigurationItem(
                    f"RotationPeriodInDays must be an integer, got {period_raw!r}"
                )
            try:
                period = int(period_raw)
            except ValueError as exc:
                raise MalformedConfigurationItem(
                    f"RotationPeriodInDays must be an integer, got {period_raw!r}"
                ) from exc
            # AWS sets periods of 90-2560 days only (EnableKeyRotation); anything else is not an answer
            # to decide on (a 0 would pass any MaxRotationPeriodInDays).
            if not 90 <= period <= 2560:
                raise MalformedConfigurationItem(
                    f"RotationPeriodInDays {period} is outside AWS's 90-2560",
                    operation="GetKeyRotationStatus",
                )
        next_raw = get_field(response, "NextRotationDate")
        next_rotation = None if next_raw is None else str(next_raw)
        return cls(enabled=enabled, period_days=period, next_rotation=next_rotation)

    @classmethod
    def unsupported(cls) -> RotationStatus:
        return cls(enabled=False, supported=False)
