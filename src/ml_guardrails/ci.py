"""Configuration items as AWS Config delivers them, read tolerantly and strictly at once.

Tolerant of the real shapes: ``configuration`` may be an object or a JSON string; supplementary values
may be JSON strings or objects; key case differs per resource type (SageMaker PascalCase, KMS/S3/EC2
camelCase) and between a CI and the API response for the same resource. Strict where it matters: a
field a decision needs that is missing or of the wrong type raises :class:`MalformedConfigurationItem`,
which the engine turns into a failed evaluation -- never a guess, never COMPLIANT.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

APPLICABLE_STATUSES = frozenset({"OK", "ResourceDiscovered"})


class MalformedConfigurationItem(ValueError):
    """A configuration item (or API response) lacks a field the decision needs, or has the wrong type.

    ``operation`` names the API call whose response was malformed; None means the configuration item.
    """

    def __init__(self, message: str, operation: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation


def decode_json(value: Any) -> Any:
    """``value`` with a JSON-encoded string decoded; anything else unchanged.

    AWS Config delivers some supplementary values (KMS ``Policy``, S3 ``AccessControlList``) and
    sometimes ``configuration`` itself as JSON strings. Plain strings that are not JSON documents stay.
    """
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise MalformedConfigurationItem(f"invalid JSON document: {exc}") from exc
    return value


def get_field(mapping: Mapping[str, Any] | None, *names: str, default: Any = None) -> Any:
    """The value of the first of ``names`` present in ``mapping``, matching keys case-insensitively.

    ``get_field(cfg, "KeyManager")`` reads ``keyManager`` from a CI and ``KeyManager`` from DescribeKey.
    """
    if not mapping:
        return default
    for name in names:
        if name in mapping:
            return mapping[name]
    lowered = {key.lower(): key for key in mapping if isinstance(key, str)}
    for name in names:
        key = lowered.get(name.lower())
        if key is not None:
            return mapping[key]
    return default


def require_field(mapping: Mapping[str, Any] | None, name: str, *aliases: str, where: str = "") -> Any:
    """Like :func:`get_field` but raises :class:`MalformedConfigurationItem` when the field is absent."""
    value = get_field(mapping, name, *aliases)
    if value is None:
        raise MalformedConfigurationItem(f"{where or 'configuration'} has no {name}")
    return value


@contextmanager
def reading(operation: str) -> Iterator[None]:
    """Parse an API response: a malformed one is reported against ``operation``, not the CI."""
    try:
        yield
    except MalformedConfigurationItem as exc:
        if exc.operation is None:
            exc.operation = operation
        raise


def response_field(response: Mapping[str, Any], name: str, operation: str) -> Any:
    """A top-level field of an API response; its absence is a malformed response naming the call."""
    value = response.get(name) if isinstance(response, Mapping) else None
    if value is None:
        raise MalformedConfigurationItem(f"{operation} response has no {name}", operation=operation)
    return value


def as_bool(value: Any, name: str) -> bool:
    """A boolean from a JSON boolean or the strings "true"/"false" (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MalformedConfigurationItem(f"{name} must be a boolean, got {value!r}")


def as_str(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    raise MalformedConfigurationItem(f"{name} must be a string, got {type(value).__name__}")


def as_mapping(value: Any, name: str) -> Mapping[str, Any]:
    value = decode_json(value)
    if isinstance(value, Mapping):
        return value
    raise MalformedConfigurationItem(f"{name} must be an object, got {type(value).__name__}")


def as_list(value: Any, name: str) -> list[Any]:
    value = decode_json(value)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise MalformedConfigurationItem(f"{name} must be a list, got {type(value).__name__}")


def tags_from(value: Any) -> dict[str, str]:
    """Tags from any of AWS's shapes: ``{"k": "v"}``, ``[{"Key": k, "Value": v}]`` or ``[{"key":..}]``."""
    value = decode_json(value)
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        tags: dict[str, str] = {}
        for item in value:
            if not isinstance(item, Mapping):
                raise MalformedConfigurationItem(f"tag entries must be objects, got {item!r}")
            key = get_field(item, "Key", "TagKey")
            if not isinstance(key, str):
                raise MalformedConfigurationItem(f"tag entry without a string Key: {item!r}")
            val = get_field(item, "Value", "TagValue", default="")
            tags[key] = "" if val is None else str(val)
        return tags
    raise MalformedConfigurationItem(f"tags must be an object or a list, got {type(value).__name__}")


def timestamp_str(value: Any) -> str:
    """An ISO-8601 string for a CI capture time (GetResourceConfigHistory returns datetimes)."""
    if isinstance(value, _dt.datetime):
        moment: _dt.datetime = value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
        return moment.astimezone(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, str) and value:
        # Config sends ISO-8601 (2026-11-28T10:00:00.000Z); PutEvaluations must be able to send it back.
        try:
            _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise MalformedConfigurationItem(
                f"configurationItemCaptureTime is not an ISO-8601 time: {value[:60]!r}"
            ) from None
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = _dt.datetime.fromtimestamp(value / 1000 if value > 1e11 else value, _dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise MalformedConfigurationItem(
                f"configurationItemCaptureTime out of range: {value!r}"
            ) from None
        return timestamp_str(moment)
    raise MalformedConfigurationItem(f"configurationItemCaptureTime is missing or invalid: {value!r}")


@dataclass(frozen=True)
class ConfigurationItem:
    """One configuration item, in notification shape (what a change event carries)."""

    resource_type: str
    resource_id: str
    status: str
    capture_time: str
    configuration: Mapping[str, Any]
    supplementary: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    resource_name: str | None = None
    arn: str | None = None
    region: str | None = None
    account_id: str | None = None

    @property
    def applicable_status(self) -> bool:
        return self.status in APPLICABLE_STATUSES

    def supplementary_value(self, name: str) -> Any:
        """A supplementary configuration value (JSON strings were decoded by :meth:`parse`)."""
        return get_field(self.supplementary, name)

    @classmethod
    def parse(cls, raw: Any) -> ConfigurationItem:
        """Parse a CI from a change event (notification shape) or GetResourceConfigHistory shape."""
        if not isinstance(raw, Mapping):
            raise MalformedConfigurationItem(f"configurationItem must be an object, got {type(raw).__name__}")
        resource_type = raw.get("resourceType")
        resource_id = raw.get("resourceId")
        if not isinstance(resource_type, str) or not resource_type:
            raise MalformedConfigurationItem("configurationItem has no resourceType")
        if not isinstance(resource_id, str) or not resource_id:
            raise MalformedConfigurationItem("configurationItem has no resourceId")
        status = raw.get("configurationItemStatus")
        if not isinstance(status, str):
            raise MalformedConfigurationItem("configurationItem has no configurationItemStatus")
        configuration = decode_json(raw.get("configuration"))
        if configuration is None:
            configuration = {}
        if not isinstance(configuration, Mapping):
            raise MalformedConfigurationItem(
                f"configuration of {resource_id} must be an object, got {type(configuration).__name__}"
            )
        supplementary_raw = decode_json(raw.get("supplementaryConfiguration")) or {}
        if not isinstance(supplementary_raw, Mapping):
            raise MalformedConfigurationItem("supplementaryConfiguration must be an object")
        return cls(
            resource_type=resource_type,
            resource_id=resource_id,
            status=status,
            capture_time=timestamp_str(raw.get("configurationItemCaptureTime")),
            configuration=configuration,
            supplementary={str(k): decode_json(v) for k, v in supplementary_raw.items()},
            tags=tags_from(raw.get("tags")),
            resource_name=raw.get("resourceName") if isinstance(raw.get("resourceName"), str) else None,
            arn=_first_str(raw, "ARN", "arn"),
            region=_first_str(raw, "awsRegion"),
            account_id=_first_str(raw, "awsAccountId", "accountId"),
        )


def _first_str(raw: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = raw.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def history_item_to_notification(item: Mapping[str, Any]) -> dict[str, Any]:
    """A GetResourceConfigHistory item in change-notification shape, JSON-serialisable throughout.

    rdklib's equivalent leaves ``configurationItemCaptureTime`` a ``datetime`` (so the handler's return
    value cannot be marshalled by the Lambda runtime) and crashes on a missing ``configuration``.
    """
    supplementary = item.get("supplementaryConfiguration") or {}
    return {
        "configurationItemCaptureTime": timestamp_str(item.get("configurationItemCaptureTime")),
        "configurationStateId": item.get("configurationStateId"),
        "awsAccountId": item.get("accountId"),
        "configurationItemStatus": item.get("configurationItemStatus"),
        "resourceType": item.get("resourceType"),
        "resourceId": item.get("resourceId"),
        "resourceName": item.get("resourceName", item.get("resourceId")),
        "ARN": item.get("arn"),
        "awsRegion": item.get("awsRegion"),
        "configuration": decode_json(item.get("configuration")),
        "supplementaryConfiguration": {k: decode_json(v) for k, v in supplementary.items()},
        "tags": item.get("tags") or {},
    }
