"""Typed views of an Amazon RDS DB instance or DB cluster's storage encryption, read from a configuration
item or from the RDS API -- one shape for both.

Where AWS puts the facts:

* CI ``AWS::RDS::DBInstance``: ``configuration`` mirrors DescribeDBInstances' ``DBInstance`` with camelCase
  keys whose acronyms keep odd casings (``dBInstanceIdentifier``, ``dBClusterIdentifier``, ``dbiResourceId``,
  ``storageEncrypted``, ``kmsKeyId``); the resource ID is ``dbiResourceId`` (``db-...``), not the
  identifier. Sources: the Config resource schema (github.com/awslabs/aws-config-resource-schema,
  ``config/properties/resource-types/AWS::RDS::DBInstance.properties.json``) and rdk 1.0.0's sample CI
  (``rdk/template/example_ci/AWS_RDS_DBInstance.json``).
* CI ``AWS::RDS::DBCluster``: ``configuration`` mirrors DescribeDBClusters' ``DBCluster`` with its own
  casings (``dbclusterIdentifier``, ``dbClusterResourceId``, ``dbclusterArn``, ``storageEncrypted``,
  ``kmsKeyId``); the resource ID is ``dbClusterResourceId`` (``cluster-...``). Same two sources
  (``AWS::RDS::DBCluster.properties.json``, ``AWS_RDS_DBCluster.json``).
* API: DescribeDBInstances / DescribeDBClusters (PascalCase: ``DbiResourceId``, ``DbClusterResourceId``,
  ``StorageEncrypted``, ``KmsKeyId``, ``StorageEncryptionType``, ``DBClusterIdentifier``, ``TagList``).

Keys are matched case-insensitively (:func:`ml_guardrails.ci.get_field`), so both spellings read alike.

``StorageEncryptionType`` (botocore 1.44.8 rds model: ``none`` | ``sse-kms`` | ``sse-rds``) is newer than
most recorded items and optional here: ``sse-rds`` means an AWS owned key, reported with
``StorageEncrypted`` false ("If the DB cluster is encrypted with an Amazon Web Services owned key, this
value is false and StorageEncryptionType is sse-rds", DBCluster.StorageEncrypted in the same model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ml_guardrails.ci import (
    ConfigurationItem,
    MalformedConfigurationItem,
    as_bool,
    as_str,
    get_field,
    require_field,
    tags_from,
)

DB_INSTANCE = "AWS::RDS::DBInstance"
DB_CLUSTER = "AWS::RDS::DBCluster"
RESOURCE_TYPES = (DB_INSTANCE, DB_CLUSTER)
# botocore 1.44.8, rds 2014-10-31: DBInstance/DBCluster StorageEncryptionType.
ENCRYPTION_TYPES = frozenset({"none", "sse-kms", "sse-rds"})
AWS_OWNED = "sse-rds"
# Engines whose instances exist only inside a DB cluster (CreateDBInstance: Aurora instances need
# DBClusterIdentifier; Neptune and DocumentDB instances are cluster members too). An instance of such an
# engine without DBClusterIdentifier is a malformed record, never a standalone DB to pass.
CLUSTER_ONLY_ENGINE_PREFIXES = ("aurora", "neptune", "docdb")


@dataclass(frozen=True)
class RdsStorage:
    """The storage-encryption facts of one DB instance or DB cluster."""

    resource_type: str
    # AWS Config's resource ID: DbiResourceId (db-...) or DbClusterResourceId (cluster-...).
    resource_id: str
    identifier: str
    storage_encrypted: bool
    kms_key_id: str | None
    encryption_type: str | None = None
    # Instances only: the DB cluster the instance belongs to (Aurora, Multi-AZ, Neptune, DocumentDB).
    cluster_identifier: str | None = None
    engine: str | None = None
    status: str | None = None
    arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_instance(self) -> bool:
        return self.resource_type == DB_INSTANCE

    @property
    def kind(self) -> str:
        return "DB instance" if self.is_instance else "DB cluster"

    @classmethod
    def from_configuration_item(cls, item: ConfigurationItem) -> RdsStorage:
        """The view of an ``AWS::RDS::DBInstance`` or ``AWS::RDS::DBCluster`` configuration item."""
        if item.resource_type not in RESOURCE_TYPES:
            raise MalformedConfigurationItem(
                f"expected an RDS DB instance or cluster, got {item.resource_type}"
            )
        return cls._from(
            item.resource_type,
            item.configuration,
            where=f"configuration of {item.resource_id}",
            resource_id=item.resource_id,
            name=item.resource_name,
            arn=item.arn,
            tags=item.tags,
        )

    @classmethod
    def from_db_instance(cls, instance: Mapping[str, Any]) -> RdsStorage:
        """The view of one ``DBInstance`` of DescribeDBInstances."""
        where = f"DescribeDBInstances DBInstance {instance.get('DBInstanceIdentifier', '?')}"
        resource_id = as_str(require_field(instance, "DbiResourceId", where=where), f"{where}.DbiResourceId")
        return cls._from(
            DB_INSTANCE,
            instance,
            where=where,
            resource_id=resource_id,
            tags=tags_from(get_field(instance, "TagList")),
        )

    @classmethod
    def from_db_cluster(cls, cluster: Mapping[str, Any]) -> RdsStorage:
        """The view of one ``DBCluster`` of DescribeDBClusters."""
        where = f"DescribeDBClusters DBCluster {cluster.get('DBClusterIdentifier', '?')}"
        resource_id = as_str(
            require_field(cluster, "DbClusterResourceId", where=where), f"{where}.DbClusterResourceId"
        )
        return cls._from(
            DB_CLUSTER,
            cluster,
            where=where,
            resource_id=resource_id,
            tags=tags_from(get_field(cluster, "TagList")),
        )

    @classmethod
    def _from(
        cls,
        resource_type: str,
        cfg: Mapping[str, Any],
        *,
        where: str,
        resource_id: str,
        name: str | None = None,
        arn: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RdsStorage:
        def optional_text(*names: str) -> str | None:
            value = get_field(cfg, *names)
            if value is None or value == "":
                return None
            return as_str(value, f"{where}: {names[0]}")

        instance = resource_type == DB_INSTANCE
        engine = optional_text("Engine")
        if instance:
            identifier = optional_text("DBInstanceIdentifier") or name or resource_id
            cluster = optional_text("DBClusterIdentifier")
            # Membership decides applicability, so what decides membership must be there: the engine, and
            # for cluster-only engines the cluster's identifier.
            if engine is None:
                raise MalformedConfigurationItem(f"{where} has no Engine")
            if cluster is None and engine.lower().startswith(CLUSTER_ONLY_ENGINE_PREFIXES):
                raise MalformedConfigurationItem(
                    f"{where}: a {engine} instance without DBClusterIdentifier (it must belong to a cluster)"
                )
            status = optional_text("DBInstanceStatus")
            own_arn = arn or optional_text("DBInstanceArn")
        else:
            identifier = optional_text("DBClusterIdentifier") or name or resource_id
            cluster = None
            status = optional_text("Status")
            own_arn = arn or optional_text("DBClusterArn")
        encrypted = as_bool(require_field(cfg, "StorageEncrypted", where=where), f"{where}: StorageEncrypted")
        kms_key_id = optional_text("KmsKeyId")
        encryption_type = optional_text("StorageEncryptionType")
        if encryption_type is not None:
            encryption_type = encryption_type.lower()
        return cls(
            resource_type=resource_type,
            resource_id=resource_id,
            identifier=identifier,
            storage_encrypted=encrypted,
            kms_key_id=kms_key_id,
            encryption_type=encryption_type,
            cluster_identifier=cluster,
            engine=engine,
            status=status,
            arn=own_arn,
            tags=dict(tags or {}),
        )
