"""S3_BUCKET_SSE_KMS_ENFORCED -- S3 buckets encrypt new objects with SSE-KMS (or DSSE-KMS) under a
customer managed KMS key, and optionally refuse uploads that ask for anything else.

Reports on: AWS::S3::Bucket. Triggers: configuration change (incl. oversized CI) and periodic.

Parameters:
  RequireCustomerManagedKey (default true): the default-encryption key must be customer managed; no
    KMSMasterKeyID means the AWS managed key aws/s3.
  KmsKeyArns (optional CSV of key ARNs, multi-Region ``mrk-`` ids accepted): the key must be one of them.
    ARNs are compared exactly, so list each Region's replica ARN of a multi-Region key.
  RequireBucketKey (default false): SSE-KMS rules must enable the S3 Bucket Key (not applicable to
    DSSE-KMS, which does not support bucket keys).
  RequireUploadPolicy (default false): the bucket policy must deny uploads that request a non-KMS
    algorithm, since a PutObject header (``x-amz-server-side-encryption: AES256``) overrides the default.
  ExemptionTagKey (optional, every rule): a bucket with this tag is NOT_APPLICABLE.

Scenarios:
  Scenario 1: Given KmsKeyArns holds an item that is not a KMS key ARN (or any parameter is invalid)
              Then raise InvalidParametersError naming the parameter; nothing is evaluated or posted
  Scenario 2: Given the bucket is deleted (or left the rule's scope)          Then NOT_APPLICABLE
  Scenario 3: Given the bucket carries the ExemptionTagKey tag                 Then NOT_APPLICABLE (tag value)
  Scenario 4: Given no default-encryption configuration                        Then NON_COMPLIANT
  Scenario 5: Given default encryption SSE-S3 (AES256, the AWS default since 2023) or any algorithm other
              than aws:kms / aws:kms:dsse                                      Then NON_COMPLIANT
  Scenario 6: Given aws:kms without KMSMasterKeyID (aws/s3), or an alias/aws/* alias (name or ARN), and
              RequireCustomerManagedKey                                        Then NON_COMPLIANT, 0 calls
  Scenario 7: Given a key id / alias / key ARN and RequireCustomerManagedKey
              And DescribeKey says KeyManager AWS (or anything but CUSTOMER)   Then NON_COMPLIANT
  Scenario 8: Given KmsKeyArns and a key ARN not in it                         Then NON_COMPLIANT, 0 calls
  Scenario 9: Given KmsKeyArns and a key id or alias resolving (DescribeKey) to an ARN not in it
                                                                               Then NON_COMPLIANT
  Scenario 10: Given the key does not exist (DescribeKey NotFoundException)    Then NON_COMPLIANT
  Scenario 11: Given the key cannot be described (AccessDenied on another account's key, throttling)
               Then a failed evaluation, never COMPLIANT
  Scenario 12: Given RequireBucketKey and an aws:kms rule with BucketKeyEnabled false Then NON_COMPLIANT
  Scenario 13: Given RequireBucketKey and aws:kms:dsse       Then the bucket key is not required
  Scenario 14: Given RequireUploadPolicy and no bucket policy, or no statement that denies non-KMS uploads
                                                                               Then NON_COMPLIANT
  Scenario 15: Given RequireUploadPolicy and a bucket policy statement Effect Deny, Principal "*", an
               Action covering s3:PutObject (s3:PutObject, s3:Put*, s3:*, *; or a NotAction that does not),
               a Resource covering every object (arn:...:bucket/*, arn:...:*, *), and Condition
               StringNotEquals {s3:x-amz-server-side-encryption: only aws:kms and/or aws:kms:dsse} (the
               AWS-documented form; the key-id key may join the same block) or no Condition
               Then the upload requirement holds
  Scenario 16: Given aws:kms or aws:kms:dsse and every requirement above holds Then COMPLIANT
  Scenario 17: Given a malformed CI or policy (missing sseAlgorithm, policy not JSON)
                                                                               Then a failed evaluation

What does *not* satisfy RequireUploadPolicy, and why:
  * ``Null {"s3:x-amz-server-side-encryption": "true"}`` alone denies only uploads *without* the header;
    an explicit ``AES256`` header passes and overrides the KMS default.
  * ``StringNotEqualsIfExists`` lets header-less requests through, including SSE-C uploads (customer
    keys, not KMS), which send no ``x-amz-server-side-encryption`` header.
  * ``ForAnyValue:``/``ForAllValues:`` operators on this single-valued key (AWS advises against them;
    ``ForAnyValue:StringNotEquals`` with two KMS values denies KMS uploads too and proves nothing).
  * Any extra condition key other than the KMS key id (e.g. aws:SourceVpce) narrows the Deny.
  * A Principal other than everyone, NotPrincipal, NotResource: the Deny misses some callers or objects.

Call budget (change trigger): 0 API calls, except one ``kms:DescribeKey`` when the verdict depends on a
fact only KMS knows -- the key manager (RequireCustomerManagedKey and the key is not ``alias/aws/*`` /
absent), or the ARN behind a key id or alias (KmsKeyArns set). Checks that need no call run first, so a
bucket already failing on a free fact costs nothing. Aliases and key ids resolve in the bucket's Region
and account; a key ARN is described in its own Region. A key in another account can be described only if
its key policy allows it: AccessDenied there fails the evaluation (fail closed), it is never COMPLIANT.

Periodic trigger: ListBuckets (paginated, ``BucketRegion`` = the rule's Region, so each Region's rule
evaluates its own buckets, as Config records them), then per bucket GetBucketEncryption
(ServerSideEncryptionConfigurationNotFoundError = no configuration), GetBucketPolicy only with
RequireUploadPolicy (NoSuchBucketPolicy = no policy), GetBucketTagging only with ExemptionTagKey
(NoSuchTagSet = no tags), and DescribeKey at most once per distinct key reference. NoSuchBucket (deleted
since listing) skips the bucket; any other error fails that bucket only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from botocore.exceptions import ClientError
from rdklib import ComplianceType, Evaluation

from ml_guardrails.aws import error_code
from ml_guardrails.ci import ConfigurationItem, reading, response_field, tags_from
from ml_guardrails.engine import (
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    lambda_handler_for,
    make_evaluation,
)
from ml_guardrails.params import BoolParameter, CsvParameter
from ml_guardrails.resources.kms_lookup import (
    KEY_ARN_PATTERN,
    KeyResolver,
    KnownKeys,
    NeedKey,
    ResolvedKey,
    decide_resolving,
    is_aws_managed_alias,
    is_key_arn,
)
from ml_guardrails.resources.s3_bucket import (
    AWS_MANAGED_S3_ALIAS,
    DSSE_KMS,
    KMS_ALGORITHMS,
    RESOURCE_TYPE,
    SSE_KMS,
    SSE_S3,
    DefaultEncryptionRule,
    PolicyStatement,
    S3Bucket,
    glob_covers_prefix,
    glob_match,
    parse_policy,
)

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory

COMPLIANT = ComplianceType.COMPLIANT
NON_COMPLIANT = ComplianceType.NON_COMPLIANT

SSE_HEADER_KEY = "s3:x-amz-server-side-encryption"
SSE_KEY_ID_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"
FIX_KEY = "Set KMSMasterKeyID to a customer managed KMS key ARN (PutBucketEncryption)."
FIX_UPLOADS = (
    "Add a Deny on s3:PutObject for arn:...:bucket/* with StringNotEquals "
    "s3:x-amz-server-side-encryption aws:kms."
)


@dataclass(frozen=True)
class Params:
    require_customer_managed_key: bool = True
    kms_key_arns: frozenset[str] = frozenset()
    require_bucket_key: bool = False
    require_upload_policy: bool = False


class Verdict(NamedTuple):
    compliance: str
    annotation: str


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------- pure decisions
def _static_rule_check(rule: DefaultEncryptionRule, params: Params) -> Verdict | None:
    """What one default-encryption rule proves without any API call (None: nothing wrong yet)."""
    algorithm = rule.sse_algorithm
    if algorithm not in KMS_ALGORITHMS:
        if algorithm == SSE_S3:
            return Verdict(
                NON_COMPLIANT,
                "Default encryption is SSE-S3 (AES256), not SSE-KMS. Set default encryption to aws:kms with "
                "a customer managed KMS key (PutBucketEncryption).",
            )
        return Verdict(
            NON_COMPLIANT,
            f"Default encryption algorithm {_short(algorithm, 40)!r} is not SSE-KMS. Set default encryption "
            "to aws:kms with a customer managed KMS key (PutBucketEncryption).",
        )
    if params.require_bucket_key and algorithm == SSE_KMS and not rule.bucket_key_enabled:
        return Verdict(
            NON_COMPLIANT,
            "SSE-KMS default encryption has the S3 Bucket Key off. Enable BucketKeyEnabled in the default "
            "encryption rule (PutBucketEncryption).",
        )
    reference = rule.kms_master_key_id
    if params.require_customer_managed_key and (reference is None or is_aws_managed_alias(reference)):
        used = "aws/s3 (no KMSMasterKeyID)" if reference is None else _short(reference)
        return Verdict(NON_COMPLIANT, f"Default encryption uses the AWS managed key {used}. {FIX_KEY}")
    if (
        params.kms_key_arns
        and reference is not None
        and is_key_arn(reference)
        and reference not in params.kms_key_arns
    ):
        return Verdict(
            NON_COMPLIANT,
            f"Default encryption key {_short(reference, 100)} is not in KmsKeyArns. Set KMSMasterKeyID "
            "to one of the allowed key ARNs (PutBucketEncryption).",
        )
    return None


def _key_check(rule: DefaultEncryptionRule, params: Params, keys: KnownKeys) -> Verdict | NeedKey | None:
    """The checks that need the key as KMS knows it; NeedKey when it has not been looked up yet."""
    reference = rule.kms_master_key_id or AWS_MANAGED_S3_ALIAS
    need_manager = params.require_customer_managed_key
    need_arn = bool(params.kms_key_arns) and not is_key_arn(reference)
    if not (need_manager or need_arn):
        return None
    if reference not in keys:
        return NeedKey(reference)
    key = keys[reference]
    if key is None:
        return Verdict(
            NON_COMPLIANT,
            f"Default encryption key {_short(reference, 100)} does not exist in KMS. Set KMSMasterKeyID to "
            "an existing customer managed KMS key ARN (PutBucketEncryption).",
        )
    if need_arn and key.arn not in params.kms_key_arns:
        return Verdict(
            NON_COMPLIANT,
            f"Default encryption key {_short(key.arn, 100)} is not in KmsKeyArns. Set KMSMasterKeyID to one "
            "of the allowed key ARNs (PutBucketEncryption).",
        )
    if need_manager and key.key_manager != "CUSTOMER":
        manager = "an AWS managed key"
        if key.key_manager != "AWS":
            manager = f"KeyManager {_short(key.key_manager, 20)!r}, not CUSTOMER"
        return Verdict(NON_COMPLIANT, f"Default encryption key {_short(key.arn, 90)} is {manager}. {FIX_KEY}")
    return None


def _covers_put_object(statement: PolicyStatement) -> bool:
    if statement.not_actions is not None:
        return not any(glob_match(p, "s3:PutObject", ignore_case=True) for p in statement.not_actions)
    return any(glob_match(p, "s3:PutObject", ignore_case=True) for p in statement.actions)


def _condition_denies_non_kms(conditions: Mapping[str, Mapping[str, tuple[str, ...]]]) -> bool:
    if not conditions:
        return True  # an unconditional Deny of every upload leaves no non-KMS upload either
    if len(conditions) != 1:
        return False
    ((operator, entries),) = conditions.items()
    if operator.lower() != "stringnotequals":
        return False
    values = entries.get(SSE_HEADER_KEY)
    if not values or not set(values) <= KMS_ALGORITHMS:
        return False
    # The KMS key-id key may join the block: a non-KMS upload cannot carry it (S3 rejects a key id without
    # a KMS algorithm), so for such uploads it is absent, StringNotEquals is true and the Deny still applies.
    return set(entries) <= {SSE_HEADER_KEY, SSE_KEY_ID_KEY}


def denies_non_kms_uploads(statement: PolicyStatement, bucket: S3Bucket) -> bool:
    """True when ``statement`` alone denies every caller's upload to any object of ``bucket`` whose
    requested server-side encryption is not a KMS algorithm (see the module docstring for the forms)."""
    return (
        statement.effect == "Deny"
        and statement.principal_is_everyone
        and _covers_put_object(statement)
        and statement.not_resources is None
        and any(glob_covers_prefix(r, bucket.objects_arn_prefix) for r in statement.resources)
        and _condition_denies_non_kms(statement.conditions)
    )


def _upload_policy_check(bucket: S3Bucket) -> Verdict | None:
    if bucket.policy_text is None:
        return Verdict(
            NON_COMPLIANT,
            f"No bucket policy, so an upload can request AES256 and bypass the KMS default. {FIX_UPLOADS}",
        )
    if any(denies_non_kms_uploads(s, bucket) for s in parse_policy(bucket.policy_text)):
        return None
    return Verdict(
        NON_COMPLIANT,
        f"Bucket policy does not deny uploads requesting non-KMS encryption (e.g. AES256). {FIX_UPLOADS}",
    )


def decide(bucket: S3Bucket, params: Params, keys: KnownKeys | None = None) -> Verdict | NeedKey:
    """The verdict for ``bucket``, or the key lookup it needs first. Pure: no I/O.

    Every check that needs no API call runs before the first NeedKey, so a bucket failing on a free fact
    never costs a DescribeKey.
    """
    keys = keys or {}
    rules = bucket.encryption_rules
    if not rules:
        return Verdict(
            NON_COMPLIANT,
            "No default encryption configuration. Set default encryption to SSE-KMS (aws:kms) with a "
            "customer managed KMS key (PutBucketEncryption).",
        )
    for rule in rules:
        verdict = _static_rule_check(rule, params)
        if verdict is not None:
            return verdict
    if params.require_upload_policy:
        verdict = _upload_policy_check(bucket)
        if verdict is not None:
            return verdict
    for rule in rules:
        outcome = _key_check(rule, params, keys)
        if outcome is not None:
            return outcome
    first = rules[0]
    key = first.kms_master_key_id or "aws/s3"
    notes = []
    if first.sse_algorithm == DSSE_KMS and params.require_bucket_key:
        notes.append("bucket keys do not apply to DSSE-KMS")
    if params.require_upload_policy:
        notes.append("the bucket policy denies non-KMS uploads")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    return Verdict(
        COMPLIANT, f"Default encryption is {first.sse_algorithm} with key {_short(key, 120)}{suffix}."
    )


def evaluate_bucket(
    bucket: S3Bucket, params: Params, resolve: Callable[[str], ResolvedKey | None]
) -> Verdict:
    """:func:`decide`, resolving each key it asks for through ``resolve`` (which may raise)."""
    return decide_resolving(decide, bucket, params, resolve)


# ------------------------------------------------------------------------------------------------- I/O
class S3_BUCKET_SSE_KMS_ENFORCED(GuardrailRule[Params]):
    RULE_NAME = "S3_BUCKET_SSE_KMS_ENFORCED"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = (
        BoolParameter(
            "RequireCustomerManagedKey",
            "The default-encryption key must be a customer managed KMS key (not aws/s3).",
            default="true",
        ),
        CsvParameter(
            "KmsKeyArns",
            "Comma-separated KMS key ARNs; the bucket's default-encryption key must be one of them.",
            pattern=KEY_ARN_PATTERN,
            what="a comma-separated list of KMS key ARNs (arn:<partition>:kms:<region>:<account>:key/<id>)",
        ),
        BoolParameter(
            "RequireBucketKey",
            "SSE-KMS default encryption must enable the S3 Bucket Key (not applicable to DSSE-KMS).",
            default="false",
        ),
        BoolParameter(
            "RequireUploadPolicy",
            "The bucket policy must deny s3:PutObject requests asking for a non-KMS encryption algorithm.",
            default="false",
        ),
    )

    def make_params(self, values: Mapping[str, Any]) -> Params:
        return Params(
            require_customer_managed_key=bool(values["RequireCustomerManagedKey"]),
            kms_key_arns=frozenset(values["KmsKeyArns"] or ()),
            require_bucket_key=bool(values["RequireBucketKey"]),
            require_upload_policy=bool(values["RequireUploadPolicy"]),
        )

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        bucket = S3Bucket.from_configuration_item(item)
        resolver = KeyResolver(clients, item.region)
        verdict = evaluate_bucket(bucket, params.rule, resolver.resolve)
        return make_evaluation(verdict.compliance, item.resource_type, item.resource_id, verdict.annotation)

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        s3 = clients.build_client("s3")
        region = s3.meta.region_name
        partition = s3.meta.partition
        resolver = KeyResolver(clients, region)
        paginator = s3.get_paginator("list_buckets")
        pages = paginator.paginate(BucketRegion=region, PaginationConfig={"PageSize": 1000})
        for page in pages:  # a failure to list propagates: the sweep fails, nothing is guessed
            for entry in page.get("Buckets") or []:
                name = str(response_field(entry, "Name", "ListBuckets"))
                if entry.get("BucketRegion") not in (None, region):
                    continue

                def decide_one(name: str = name) -> Evaluation | None:
                    return self._evaluate_listed(s3, name, partition, params, resolver)

                outcome = guarded(RESOURCE_TYPE, name, decide_one, gone=("NoSuchBucket",))
                if outcome is not None:
                    yield outcome

    def _evaluate_listed(
        self, s3: Any, name: str, partition: str, params: RuleParameters[Params], resolver: KeyResolver
    ) -> Evaluation:
        if params.exemption_tag_key:
            try:
                tags = tags_from(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
            except ClientError as exc:
                if error_code(exc) != "NoSuchTagSet":
                    raise
                tags = {}
            exempt = params.exemption(RESOURCE_TYPE, name, tags)
            if exempt is not None:
                return exempt
        try:
            encryption = response_field(
                s3.get_bucket_encryption(Bucket=name),
                "ServerSideEncryptionConfiguration",
                "GetBucketEncryption",
            )
        except ClientError as exc:
            if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            encryption = None
        policy_text = None
        if params.rule.require_upload_policy:
            try:
                policy_text = response_field(s3.get_bucket_policy(Bucket=name), "Policy", "GetBucketPolicy")
            except ClientError as exc:
                if error_code(exc) != "NoSuchBucketPolicy":
                    raise
        with reading("GetBucketEncryption"):
            bucket = S3Bucket.from_api(name, partition, encryption, policy_text)
        verdict = evaluate_bucket(bucket, params.rule, resolver.resolve)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, name, verdict.annotation)


lambda_handler = lambda_handler_for(S3_BUCKET_SSE_KMS_ENFORCED)
