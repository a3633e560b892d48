"""A SageMaker notebook instance, from its AWS Config configuration item or from DescribeNotebookInstance.

AWS Config records ``AWS::SageMaker::NotebookInstance`` through the CloudFormation registry schema, so the
CI's ``configuration`` carries the CloudFormation property names in PascalCase (``DirectInternetAccess``,
``SubnetId``, ``SecurityGroupIds``, ``NotebookInstanceName``, ``Tags`` as ``[{Key, Value}]``; older items
``Id``, newer ``NotebookInstanceArn``); DescribeNotebookInstance uses the API names (``SecurityGroups``
instead of ``SecurityGroupIds``) and adds ``NotebookInstanceStatus``. Both parse into one view.

Resource ids: Config's ``resourceId`` for registry-recorded types is the schema's primary identifier, which
for this type is the notebook's ARN (``NotebookInstanceArn``; the legacy ``Id`` held the ``Ref`` value,
documented as the ARN). Callers may also hold a bare name; :func:`notebook_name` accepts both. SageMaker
writes the name lower-cased in ARNs (``notebook-instance/mynotebookinstance`` for ``MyNotebookInstance``),
so a name taken from an ARN is used for display, never to compare case-sensitively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ml_guardrails.aws import error_code, error_message
from ml_guardrails.ci import (
    ConfigurationItem,
    MalformedConfigurationItem,
    as_list,
    as_mapping,
    get_field,
    tags_from,
)

RESOURCE_TYPE = "AWS::SageMaker::NotebookInstance"
# The API default when DirectInternetAccess is not given (CreateNotebookInstance documentation).
API_DEFAULT_DIRECT_INTERNET_ACCESS = "Enabled"
# botocore sagemaker 2017-07-24 CreateNotebookInstanceInput.RootAccess: "The default value is Enabled."
API_DEFAULT_ROOT_ACCESS = "Enabled"
# botocore InstanceMetadataServiceConfiguration.MinimumInstanceMetadataServiceVersion: "When passed as part
# of CreateNotebookInstance, if no value is selected, then it defaults to IMDSv1" (IMDSv1 and v2 allowed).
API_DEFAULT_MINIMUM_IMDS_VERSION = "1"
_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:notebook-instance/(?P<name>[^/]+)$")


def config_resource_id(arn: str, name: str) -> str:
    """AWS Config's ``resourceId`` for a notebook instance: its ARN, the CloudFormation registry schema's
    primary identifier (``/properties/NotebookInstanceArn``; formerly ``Id``, the documented ``Ref`` value,
    also the ARN). The one place to change should AWS Config ever key this type by ``name`` instead."""
    return arn


def notebook_name(resource_id: str) -> str:
    """The notebook name from a Config resource id: the ARN's last segment, or the id itself."""
    match = _ARN.match(resource_id)
    return match.group("name") if match else resource_id


def is_gone(exc: Exception) -> bool:
    """SageMaker reports a missing notebook as ValidationException "RecordNotFound" (not a NotFound code)."""
    code = error_code(exc)
    if code == "ResourceNotFound":
        return True
    return code == "ValidationException" and "recordnotfound" in error_message(exc).replace(" ", "").lower()


def describe_for_sweep(
    sagemaker: Any, name: str, arn: str, exemption_tag_key: str | None
) -> tuple[Mapping[str, Any], dict[str, str]] | None:
    """DescribeNotebookInstance of a listed notebook, and its tags only when an exemption tag is configured;
    None when it was deleted between listing and reading (Config records the deletion itself)."""
    from botocore.exceptions import ClientError

    try:
        response: Mapping[str, Any] = sagemaker.describe_notebook_instance(NotebookInstanceName=name)
        tags: dict[str, str] = {}
        if exemption_tag_key:
            for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
                tags.update({t["Key"]: t.get("Value", "") for t in page.get("Tags") or []})
    except ClientError as exc:
        if is_gone(exc):
            return None
        raise
    return response, tags


def _optional_str(mapping: Mapping[str, Any], *names: str, where: str) -> str | None:
    value = get_field(mapping, *names)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise MalformedConfigurationItem(f"{where} {names[0]} must be a string, got {type(value).__name__}")
    return value


_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


def _subnet_id(mapping: Mapping[str, Any], where: str) -> str | None:
    """The notebook's subnet; a value that is not a subnet id cannot be placed (fail closed)."""
    value = _optional_str(mapping, "SubnetId", where=where)
    if value is not None and not _SUBNET_ID.fullmatch(value):
        raise MalformedConfigurationItem(f"{where} SubnetId is not a subnet id: {value[:60]!r}")
    return value


def _imds_version(mapping: Mapping[str, Any], where: str) -> str | None:
    """``InstanceMetadataServiceConfiguration.MinimumInstanceMetadataServiceVersion`` ("1" or "2"), None
    when not shown. A number is read as its digits; any other shape is malformed (never guessed)."""
    raw = get_field(mapping, "InstanceMetadataServiceConfiguration")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    config = as_mapping(raw, f"{where} InstanceMetadataServiceConfiguration")
    value = get_field(config, "MinimumInstanceMetadataServiceVersion")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise MalformedConfigurationItem(
            f"{where} MinimumInstanceMetadataServiceVersion must be a string, got {type(value).__name__}"
        )
    return value.strip()


@dataclass(frozen=True)
class NotebookInstance:
    """What the network-isolation decision needs about a notebook instance."""

    name: str
    arn: str | None
    direct_internet_access: str | None  # None: not set, so the API default (Enabled) applies
    subnet_id: str | None
    security_group_ids: tuple[str, ...] = ()
    status: str | None = None  # only known from the API; configuration items do not carry it
    root_access: str | None = None
    kms_key_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # InstanceMetadataServiceConfiguration.MinimumInstanceMetadataServiceVersion; None: not shown
    minimum_imds_version: str | None = None

    @property
    def effective_direct_internet_access(self) -> str:
        return self.direct_internet_access or API_DEFAULT_DIRECT_INTERNET_ACCESS

    @classmethod
    def from_fields(
        cls, fields: Mapping[str, Any], *, fallback_name: str, status: str | None = None, where: str
    ) -> NotebookInstance:
        name = _optional_str(fields, "NotebookInstanceName", where=where) or fallback_name
        arn = _optional_str(fields, "NotebookInstanceArn", where=where)
        legacy_id = _optional_str(fields, "Id", where=where)
        if arn is None and legacy_id and legacy_id.startswith("arn:"):
            arn = legacy_id
        groups = as_list(get_field(fields, "SecurityGroupIds", "SecurityGroups"), f"{where} SecurityGroupIds")
        if not all(isinstance(g, str) for g in groups):
            raise MalformedConfigurationItem(f"{where} SecurityGroupIds must be strings")
        return cls(
            name=name,
            arn=arn,
            direct_internet_access=_optional_str(fields, "DirectInternetAccess", where=where),
            subnet_id=_subnet_id(fields, where),
            security_group_ids=tuple(groups),
            status=status,
            root_access=_optional_str(fields, "RootAccess", where=where),
            kms_key_id=_optional_str(fields, "KmsKeyId", where=where),
            tags=tags_from(get_field(fields, "Tags")),
            minimum_imds_version=_imds_version(fields, where),
        )

    @classmethod
    def from_configuration_item(cls, item: ConfigurationItem) -> NotebookInstance:
        """The view of a CI (notification or history shape, configuration as object or JSON string)."""
        if item.resource_type != RESOURCE_TYPE:
            raise MalformedConfigurationItem(f"expected {RESOURCE_TYPE}, got {item.resource_type}")
        fallback = item.resource_name or notebook_name(item.resource_id)
        where = f"configuration of {item.resource_id}"
        view = cls.from_fields(item.configuration, fallback_name=fallback, where=where)
        tags = dict(view.tags)
        tags.update(item.tags)
        arn = view.arn or item.arn or (item.resource_id if item.resource_id.startswith("arn:") else None)
        return cls(
            name=view.name,
            arn=arn,
            direct_internet_access=view.direct_internet_access,
            subnet_id=view.subnet_id,
            security_group_ids=view.security_group_ids,
            status=None,
            root_access=view.root_access,
            kms_key_id=view.kms_key_id,
            tags=tags,
            minimum_imds_version=view.minimum_imds_version,
        )

    @classmethod
    def from_describe(
        cls, response: Mapping[str, Any], tags: Mapping[str, str] | None = None
    ) -> NotebookInstance:
        """The view of a DescribeNotebookInstance response (plus ListTags, when read)."""
        name = get_field(response, "NotebookInstanceName")
        if not isinstance(name, str) or not name:
            raise MalformedConfigurationItem("DescribeNotebookInstance response has no NotebookInstanceName")
        status = _optional_str(response, "NotebookInstanceStatus", where="DescribeNotebookInstance")
        view = cls.from_fields(response, fallback_name=name, status=status, where="DescribeNotebookInstance")
        if tags:
            view = replace(view, tags=dict(tags))
        return view
