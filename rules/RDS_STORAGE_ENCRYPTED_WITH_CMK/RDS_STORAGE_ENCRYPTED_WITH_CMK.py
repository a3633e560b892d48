"""RDS_STORAGE_ENCRYPTED_WITH_CMK -- RDS DB instances and DB clusters encrypt their storage with a customer
managed KMS key (not the AWS managed ``aws/rds`` key, not an AWS owned key), optionally one of an allowlist.

Reports on: AWS::RDS::DBInstance and AWS::RDS::DBCluster. Triggers: configuration change (incl. oversized
CI) and periodic.

Parameters:
  KmsKeyArns (optional CSV of key ARNs, multi-Region ``mrk-`` ids accepted): the storage key must be one of
    them (compared with the key ARN RDS reports, or DescribeKey's ARN when RDS names the key otherwise).
  ExemptionTagKey (optional, every rule): a DB carrying this tag is NOT_APPLICABLE.

Why DescribeKey: RDS reports ``KmsKeyId`` as the ARN of a key *id* (``arn:...:key/<uuid>``), never as the
alias, so ``aws/rds`` cannot be recognised by name; only ``kms:DescribeKey``'s ``KeyManager`` (AWS or
CUSTOMER, botocore's KMS model) tells an AWS managed key from a customer managed one.

Scenarios (the tests follow this list):
  Scenario 1: Given KmsKeyArns holds an item that is not a KMS key ARN (or any parameter is invalid)
              Then raise InvalidParametersError naming the parameter; nothing is evaluated or posted
  Scenario 2: Given the DB is deleted (or left the rule's scope)                Then NOT_APPLICABLE
  Scenario 3: Given the DB carries the ExemptionTagKey tag          Then NOT_APPLICABLE (the tag's value)
  Scenario 4: Given a DB instance with DBClusterIdentifier (a member of an Aurora or Multi-AZ DB cluster;
              Neptune and DocumentDB instances alike)
              Then NOT_APPLICABLE naming the cluster, 0 calls: "This setting doesn't apply to Amazon Aurora DB
              instances. The encryption for DB instances is managed by the DB cluster" (CreateDBInstance
              StorageEncrypted/KmsKeyId, botocore rds model); Multi-AZ DB clusters are created and encrypted
              by CreateDBCluster ("Valid for Cluster Type: Aurora DB clusters and Multi-AZ DB clusters") and
              recorded as AWS::RDS::DBCluster (AWS Config managed rule rds-cluster-multi-az-enabled,
              https://docs.aws.amazon.com/config/latest/developerguide/rds-cluster-multi-az-enabled.html),
              so the cluster carries the verdict
  Scenario 5: Given a DB being deleted (status deleting)                         Then NOT_APPLICABLE
  Scenario 6: Given StorageEncrypted false                                       Then NON_COMPLIANT, 0 calls;
              with StorageEncryptionType sse-rds the annotation says "AWS owned key"; both say how to migrate
  Scenario 7: Given StorageEncrypted true and KmsKeyId an alias/aws/* alias (name or ARN)
              Then NON_COMPLIANT (AWS managed key), 0 calls, with the migration path
  Scenario 8: Given KmsKeyArns and a KmsKeyId key ARN not in it                  Then NON_COMPLIANT, 0 calls
  Scenario 9: Given DescribeKey says KeyManager AWS (aws/rds)                   Then NON_COMPLIANT + migration
  Scenario 10: Given DescribeKey says CUSTOMER, and the key (by ARN) is in KmsKeyArns or no list is set
               Then COMPLIANT
  Scenario 11: Given KmsKeyArns and a key id / alias resolving to an ARN not in it Then NON_COMPLIANT
  Scenario 12: Given DescribeKey NotFoundException (the key is gone)             Then NON_COMPLIANT
  Scenario 13: Given DescribeKey denied (a shared CMK of another account whose key policy does not grant
               this rule's role kms:DescribeKey) or throttled
               Then a failed evaluation naming the key and what to grant, never COMPLIANT
  Scenario 14: Given StorageEncrypted true without KmsKeyId, a missing/ill-typed StorageEncrypted, an
               instance without Engine, or an Aurora/Neptune/DocumentDB instance without DBClusterIdentifier
               Then a failed evaluation (MalformedConfigurationItem), never a guess

Call budget: change trigger -- 0 calls, except one ``kms:DescribeKey`` when only KMS can decide (Scenarios
9-13). Periodic -- DescribeDBInstances and DescribeDBClusters (paginated), then DescribeKey at most once
per distinct key reference per invocation (results and errors cached). Keys are described in their ARN's
Region (else the DB's), by ARN, so a shared key of another account is asked of its owner.

Remediation: none can be automatic (RDS cannot re-encrypt storage in place); the notification runbook
MlGuardrails-NotifyNonCompliantResource tells the owners, and the annotation gives the migration path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError
from rdklib import ComplianceType, Evaluation

from ml_guardrails.aws import ACCESS_DENIED_CODES, error_code, error_message
from ml_guardrails.ci import (
    ConfigurationItem,
    MalformedConfigurationItem,
    reading,
)
from ml_guardrails.engine import (
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    lambda_handler_for,
    make_evaluation,
)
from ml_guardrails.params import CsvParameter
from ml_guardrails.resources.kms_lookup import (
    KEY_ARN_PATTERN,
    KMS_ARN,
    KeyResolver,
    KnownKeys,
    NeedKey,
    ResolvedKey,
    decide_resolving,
    is_aws_managed_alias,
    is_key_arn,
)
from ml_guardrails.resources.rds import AWS_OWNED, DB_CLUSTER, DB_INSTANCE, RESOURCE_TYPES, RdsStorage

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory

COMPLIANT = ComplianceType.COMPLIANT
NON_COMPLIANT = ComplianceType.NON_COMPLIANT
NOT_APPLICABLE = ComplianceType.NOT_APPLICABLE

DELETING = "deleting"

# RDS cannot change a DB's storage key in place. Instances: CopyDBSnapshot with KmsKeyId encrypts the copy
# (also of an unencrypted snapshot); clusters: CopyDBClusterSnapshot with KmsKeyId rejects an unencrypted
# snapshot, RestoreDBClusterFromSnapshot with KmsKeyId takes any (botocore 1.44.8 rds model, both members).
MIGRATE_INSTANCE = (
    "Migrate: snapshot it, copy the snapshot with {key} KmsKeyId, restore a new DB instance from the copy, "
    "switch clients over."
)
MIGRATE_CLUSTER = (
    "Migrate: snapshot it, restore a new cluster from the snapshot with {key} KmsKeyId, switch clients over."
)


@dataclass(frozen=True)
class Params:
    kms_key_arns: frozenset[str] = frozenset()


class Verdict(NamedTuple):
    compliance: str
    annotation: str


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def migration(db: RdsStorage, key: str = "a customer managed") -> str:
    return (MIGRATE_INSTANCE if db.is_instance else MIGRATE_CLUSTER).format(key=key)


# ------------------------------------------------------------------------------------- pure decisions
def screen(db: RdsStorage, params: Params) -> Verdict | None:
    """Every verdict that needs no API call; None when only KMS can decide."""
    if db.is_instance and db.cluster_identifier:
        return Verdict(
            NOT_APPLICABLE,
            f"Member of DB cluster {_short(db.cluster_identifier, 63)}: its storage encryption is set on the "
            "cluster and evaluated there (AWS::RDS::DBCluster).",
        )
    if (db.status or "").lower() == DELETING:
        return Verdict(NOT_APPLICABLE, f"The {db.kind} is being deleted: nothing to evaluate.")
    if not db.storage_encrypted:
        if db.encryption_type == AWS_OWNED:
            return Verdict(
                NON_COMPLIANT,
                "Storage is encrypted with an AWS owned key (sse-rds), not a customer managed one. "
                + migration(db),
            )
        return Verdict(
            NON_COMPLIANT,
            f"Storage is not encrypted, and RDS cannot encrypt it in place. {migration(db)}",
        )
    reference = db.kms_key_id
    if reference is None:
        return None  # decide() reports the malformed item
    if is_aws_managed_alias(reference):
        return Verdict(
            NON_COMPLIANT,
            f"Storage is encrypted with the AWS managed key {_short(reference, 60)}. {migration(db)}",
        )
    if params.kms_key_arns and is_key_arn(reference) and reference not in params.kms_key_arns:
        return Verdict(
            NON_COMPLIANT,
            f"Storage key {_short(reference, 100)} is not in KmsKeyArns. " + migration(db, "an allowed"),
        )
    return None


def decide(db: RdsStorage, params: Params, keys: KnownKeys | None = None) -> Verdict | NeedKey:
    """The verdict for ``db``, or the key lookup it needs first. Pure: no I/O.

    Raises MalformedConfigurationItem when the storage is encrypted but no key is named.
    """
    screened = screen(db, params)
    if screened is not None:
        return screened
    reference = db.kms_key_id
    if reference is None:
        raise MalformedConfigurationItem(
            f"{db.kind} {db.identifier} has StorageEncrypted true but no KmsKeyId: the key cannot be checked"
        )
    keys = keys or {}
    if reference not in keys:
        return NeedKey(reference)
    key = keys[reference]
    if key is None:
        return Verdict(
            NON_COMPLIANT,
            f"Storage key {_short(reference, 100)} does not exist in KMS (the DB cannot read its storage). "
            "Restore it from a snapshot under a customer managed key.",
        )
    if key.key_manager != "CUSTOMER":
        manager = (
            "the AWS managed key aws/rds"
            if key.key_manager == "AWS"
            else (f"a key with KeyManager {_short(key.key_manager, 20)!r}, not CUSTOMER")
        )
        return Verdict(NON_COMPLIANT, f"Storage is encrypted with {manager}. {migration(db)}")
    if params.kms_key_arns and key.arn not in params.kms_key_arns:
        return Verdict(
            NON_COMPLIANT,
            f"Storage key {_short(key.arn, 100)} is not in KmsKeyArns. " + migration(db, "an allowed"),
        )
    allowed = " (in KmsKeyArns)" if params.kms_key_arns else ""
    return Verdict(
        COMPLIANT, f"Storage is encrypted with the customer managed KMS key {_short(key.arn, 120)}{allowed}."
    )


def evaluate_db(db: RdsStorage, params: Params, resolve: Callable[[str], ResolvedKey | None]) -> Verdict:
    """:func:`decide`, resolving the key it asks for through ``resolve`` (which may raise)."""
    return decide_resolving(decide, db, params, resolve)


# ------------------------------------------------------------------------------------------------- I/O
class DeniedKeyExplainer:
    """Rewrites a denied ``kms:DescribeKey`` into what to do: the DB stays unevaluated (fail closed),
    never COMPLIANT. Knows the evaluated account (from a DB's ARN) to name a shared key's owner."""

    def __init__(self, account: str | None = None) -> None:
        self.account = account

    def learn_account(self, account: str | None) -> None:
        if self.account is None:
            self.account = account

    def __call__(self, exc: ClientError, reference: str) -> None:
        if error_code(exc) not in ACCESS_DENIED_CODES:
            return
        arn = KMS_ARN.match(reference)
        owner = arn.group(2) if arn else None
        shared = owner is not None and self.account is not None and owner != self.account
        where = f"the key policy of account {owner}'s shared key" if shared else "the key policy"
        exc.response.setdefault("Error", {})["Message"] = (
            f"kms:DescribeKey on {_short(reference, 120)} was denied, so a customer managed key cannot be "
            "told from an AWS managed one; the DB is not marked COMPLIANT. Allow kms:DescribeKey for this "
            f"rule's role in {where}. AWS said: {error_message(exc)}"
        )


def _account_of(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


class RDS_STORAGE_ENCRYPTED_WITH_CMK(GuardrailRule[Params]):
    """RDS DB instances and clusters encrypt storage with a customer managed KMS key."""

    RULE_NAME = "RDS_STORAGE_ENCRYPTED_WITH_CMK"
    RESOURCE_TYPES = RESOURCE_TYPES
    PARAMETERS = (
        CsvParameter(
            "KmsKeyArns",
            "Comma-separated KMS key ARNs; the DB's storage key must be one of them.",
            pattern=KEY_ARN_PATTERN,
            what="a comma-separated list of KMS key ARNs (arn:<partition>:kms:<region>:<account>:key/<id>)",
        ),
    )

    def make_params(self, values: Mapping[str, Any]) -> Params:
        return Params(kms_key_arns=frozenset(values["KmsKeyArns"] or ()))

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        db = RdsStorage.from_configuration_item(item)
        account = item.account_id or _account_of(item.arn)
        resolver = KeyResolver(clients, item.region, DeniedKeyExplainer(account))
        verdict = evaluate_db(db, params.rule, resolver.resolve)
        return make_evaluation(verdict.compliance, item.resource_type, item.resource_id, verdict.annotation)

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        rds = clients.build_client("rds")
        explainer = DeniedKeyExplainer()
        resolver = KeyResolver(clients, rds.meta.region_name, explainer)
        listings: tuple[tuple[str, str, str, str, Callable[[Mapping[str, Any]], RdsStorage]], ...] = (
            (
                DB_INSTANCE,
                "describe_db_instances",
                "DBInstances",
                "DbiResourceId",
                RdsStorage.from_db_instance,
            ),
            (
                DB_CLUSTER,
                "describe_db_clusters",
                "DBClusters",
                "DbClusterResourceId",
                RdsStorage.from_db_cluster,
            ),
        )
        for resource_type, operation, key, id_field, view in listings:
            # A failure to list propagates: the sweep fails, nothing is guessed.
            for page in rds.get_paginator(operation).paginate():
                for entry in page.get(key) or []:
                    label = _label(entry, id_field)

                    def decide_one(
                        entry: Mapping[str, Any] = entry,
                        view: Callable[[Mapping[str, Any]], RdsStorage] = view,
                        resource_type: str = resource_type,
                    ) -> Evaluation | None:
                        return self._evaluate_listed(
                            entry, view, resource_type, params, resolver, explainer=explainer
                        )

                    outcome = guarded(resource_type, label, decide_one)
                    if outcome is not None:
                        yield outcome

    def _evaluate_listed(
        self,
        entry: Mapping[str, Any],
        view: Callable[[Mapping[str, Any]], RdsStorage],
        resource_type: str,
        params: RuleParameters[Params],
        resolver: KeyResolver,
        *,
        explainer: DeniedKeyExplainer,
    ) -> Evaluation:
        operation = "DescribeDBInstances" if resource_type == DB_INSTANCE else "DescribeDBClusters"
        # Anything missing from the listed entry is reported against the listing call, not a CI.
        with reading(operation):
            db = view(entry)
            explainer.learn_account(_account_of(db.arn))
            exempt = params.exemption(resource_type, db.resource_id, db.tags)
            if exempt is not None:
                return exempt
            verdict = evaluate_db(db, params.rule, resolver.resolve)
        return make_evaluation(verdict.compliance, resource_type, db.resource_id, verdict.annotation)


def _label(entry: Any, id_field: str) -> str:
    """Config's resource id to report a failure against; "?" when the entry lacks it (the failure's message
    then names the DB's identifier)."""
    value = entry.get(id_field) if isinstance(entry, Mapping) else None
    return value if isinstance(value, str) and value else "?"


lambda_handler = lambda_handler_for(RDS_STORAGE_ENCRYPTED_WITH_CMK)
