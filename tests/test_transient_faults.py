"""Transient faults are survived: sweeps of hundreds of resources where 30% of HTTP attempts are throttled.

Throttles are injected at ``before-send`` as the protocol's real error answer (S3 REST-XML ``SlowDown``
503, EC2 query ``RequestLimitExceeded`` 503, JSON ``ThrottlingException`` 400 for KMS, SageMaker and
Config, STS query ``Throttling``), chosen at random per attempt with a fixed seed, so botocore's standard
retry handler parses and retries them exactly as it would AWS's. The backoff is patched to 0 (its
computed delays are summed and printed: the time a real sweep would have slept).

Asserted: every sweep completes with the verdicts of the fault-free run; no call takes more attempts than
CLIENT_CONFIG allows; the attempt count the injector saw matches botocore's own
``ResponseMetadata.RetryAttempts``. A call that exhausts its attempts is not survivable: the resource it
was made for must then fail closed (named in EvaluationIncomplete, never posted), every other resource
keeping its verdict -- :func:`test_throttling_beyond_the_retry_budget_fails_closed` forces that case.

Figures (``-s``): resources, calls, HTTP attempts, injected throttles, max attempts per call, the backoff
not slept, wall time.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml_guardrails.aws import CLIENT_CONFIG, MAX_ATTEMPTS
from ml_guardrails.catalog import get
from ml_guardrails.demo import ORGANIZATION_ID
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import REGION, aws_shaped_rds, scheduled_event
from tests.faults import THROTTLED, Backoff, Call, Fault, FaultInjector, no_backoff

LOCAL = {"AssumeRoleMode": "false"}
THROTTLE_RATE = 0.3
SEED = 20261128


def total_attempts() -> int:
    """Attempts per call under CLIENT_CONFIG (botocore: ``max_attempts`` counts retries, not attempts)."""
    retries = CLIENT_CONFIG.retries or {}
    if "total_max_attempts" in retries:
        return int(retries["total_max_attempts"])
    return int(retries.get("max_attempts", 2)) + 1


def throttle(service: str) -> Fault:
    code, status = THROTTLED.get(service, ("ThrottlingException", 400))
    return Fault("throttled", "error", code, status, f"Rate exceeded (injected {code})", retryable=True)


# --------------------------------------------------------------------------------------------- landscapes
def seed_buckets(session: boto3.Session, count: int) -> None:
    """``count`` buckets: a third SSE-KMS with a customer key (COMPLIANT), a third SSE-S3, a third with
    the AWS managed key (both NON_COMPLIANT)."""
    s3, kms = session.client("s3"), session.client("kms")
    key_arn = kms.create_key(Description="ml-data")["KeyMetadata"]["Arn"]
    defaults = (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        {"SSEAlgorithm": "AES256"},
        {"SSEAlgorithm": "aws:kms"},
    )
    for i in range(count):
        name = f"ml-transient-{i:04d}"
        s3.create_bucket(Bucket=name)
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": defaults[i % 3]}]
            },
        )


@pytest.fixture
def cheap_key_material(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto generates fresh key material for every CreateKey (~0.17 s each); the rule never uses it, so
    the first one per key spec is reused."""
    from moto.kms import models

    made: dict[str, Any] = {}
    original = models.generate_private_key

    def generate_private_key(key_spec: str) -> Any:
        if key_spec not in made:
            made[key_spec] = original(key_spec)
        return made[key_spec]

    monkeypatch.setattr(models, "generate_private_key", generate_private_key)


def expected_bucket_verdicts(count: int) -> dict[str, str]:
    """The verdicts :func:`seed_buckets` builds (default parameters: a customer managed key required)."""
    return {f"ml-transient-{i:04d}": "COMPLIANT" if i % 3 == 0 else "NON_COMPLIANT" for i in range(count)}


def seed_keys(session: boto3.Session, count: int) -> None:
    """``count`` customer keys, every other one rotating."""
    kms = session.client("kms")
    for i in range(count):
        key_id = kms.create_key(Description=f"ml-key-{i}")["KeyMetadata"]["KeyId"]
        if i % 2 == 0:
            kms.enable_key_rotation(KeyId=key_id)


def seed_vpcs(session: boto3.Session, count: int) -> None:
    """``count`` VPCs (plus the default one), every other one with an ALL-traffic flow log to S3."""
    ec2 = session.client("ec2")
    session.client("s3").create_bucket(Bucket="ml-transient-flow-logs")
    for i in range(count):
        vpc_id = ec2.create_vpc(CidrBlock=f"10.{i // 250}.{i % 250}.0/24")["Vpc"]["VpcId"]
        if i % 2 == 0:
            ec2.create_flow_logs(
                ResourceIds=[vpc_id],
                ResourceType="VPC",
                TrafficType="ALL",
                LogDestinationType="s3",
                LogDestination="arn:aws:s3:::ml-transient-flow-logs",
            )


def seed_notebooks(session: boto3.Session, count: int) -> None:
    """``count`` notebooks on the API defaults (direct internet access: NON_COMPLIANT, no EC2 read)."""
    sm = session.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-ml"
    for i in range(count):
        sm.create_notebook_instance(
            NotebookInstanceName=f"nb-{i:03d}", InstanceType="ml.t3.medium", RoleArn=role
        )


def seed_bucket_policies(session: boto3.Session, count: int) -> None:
    """:func:`seed_buckets`, every other bucket with an organization-only, TLS-only policy (COMPLIANT for
    S3_BUCKET_POLICY_ORG_ONLY; the others have none: NON_COMPLIANT)."""
    seed_buckets(session, count)
    s3 = session.client("s3")
    for i in range(0, count, 2):
        arn = f"arn:aws:s3:::ml-transient-{i:04d}"
        statements = [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{arn}/*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID}},
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]
        s3.put_bucket_policy(
            Bucket=f"ml-transient-{i:04d}",
            Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )


def seed_databases(session: boto3.Session, count: int) -> None:
    """``count`` DB instances with AWS-shaped answers (ml_guardrails.testing.aws_shaped_rds): a third on
    one of three customer keys, a third on aws/rds, a third unencrypted."""
    kms, rds = session.client("kms"), session.client("rds")
    keys = [kms.create_key(Description=f"ml-rds-{i}")["KeyMetadata"]["KeyId"] for i in range(3)]
    aws_shaped_rds(session)
    for i in range(count):
        encryption: dict[str, Any] = (
            {"StorageEncrypted": True, "KmsKeyId": keys[i % 9 // 3]},
            {"StorageEncrypted": True},
            {},
        )[i % 3]
        rds.create_db_instance(
            DBInstanceIdentifier=f"ml-db-{i:03d}",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            MasterUsername="mladmin",
            MasterUserPassword="moto-only-not-a-credential",  # moto only, never a real database
            AllocatedStorage=20,
            **encryption,
        )


def seed_endpoints(session: boto3.Session, count: int) -> None:
    """``count`` interface endpoints with the default full-access policy (NON_COMPLIANT)."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24")["Subnet"]["SubnetId"]
    for i in range(count):
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{REGION}.execute-api-{i}",
            VpcEndpointType="Interface",
            SubnetIds=[subnet],
        )


def seed_detector(session: boto3.Session, count: int) -> None:
    """The Region's one GuardDuty detector (AWS::::Account: one resource whatever ``count``)."""
    session.client("guardduty").create_detector(Enable=True)


@dataclass(frozen=True)
class Landscape:
    rule: str
    resources: int
    seed: Callable[[boto3.Session, int], None]
    params: dict[str, str] = field(default_factory=dict)
    # The throttle draw's seed. A sweep of a handful of calls needs one whose first draws throttle (the
    # default's first eight are all above 0.3: such a sweep would see no fault at all).
    rng_seed: int = SEED


# Sizes are what moto makes cheap: S3 and KMS sweeps make calls per resource (300 buckets, 150 keys: two
# calls each); the VPC sweep reads flow logs and VPCs region-wide (a handful of calls whatever the count,
# and moto's CreateVpc costs ~0.1 s); notebooks on the API defaults need one describe each.
LANDSCAPES = (
    Landscape("S3_BUCKET_SSE_KMS_ENFORCED", 300, seed_buckets),
    Landscape("KMS_CMK_ROTATION_ENABLED", 150, seed_keys),
    Landscape("VPC_FLOW_LOGS_ENABLED", 12, seed_vpcs, rng_seed=4),
    Landscape("SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET", 40, seed_notebooks),
    Landscape("SAGEMAKER_NOTEBOOK_HARDENED", 40, seed_notebooks),
    Landscape(
        "S3_BUCKET_POLICY_ORG_ONLY",
        150,
        seed_bucket_policies,
        {"OrganizationId": ORGANIZATION_ID, "ExemptionTagKey": "ml-guardrails:exemption"},
    ),
    # RDS: two listings and one DescribeKey per customer key, whatever the count (moto: ~0.05 s per DB).
    Landscape("RDS_STORAGE_ENCRYPTED_WITH_CMK", 30, seed_databases, rng_seed=4),
    # VPC endpoints and GuardDuty: one listing (plus GetDetector); the figures show the retries.
    Landscape(
        "VPC_ENDPOINT_POLICY_ORG_ONLY", 12, seed_endpoints, {"OrganizationId": ORGANIZATION_ID}, rng_seed=4
    ),
    Landscape("GUARDDUTY_ENABLED", 1, seed_detector, rng_seed=4),
)


# ------------------------------------------------------------------------------------------------ runs
@dataclass
class Sweep:
    calls: list[Call]
    posted: dict[str, str]
    error: BaseException | None
    throttles: int
    seconds: float

    @property
    def attempts(self) -> int:
        return sum(c.attempts for c in self.calls)

    @property
    def max_attempts(self) -> int:
        return max(c.attempts for c in self.calls)

    @property
    def failures(self) -> list[dict[str, str]]:
        if isinstance(self.error, EvaluationIncomplete):
            return [f.as_dict() for f in self.error.failures]
        return []


def sweep(
    injector: FaultInjector, rule_name: str, rate: float, seed: int, params: dict[str, str] | None = None
) -> Sweep:
    spec = get(rule_name)
    module = spec.load_module()
    injector.reset()
    rng = random.Random(seed)
    if rate:
        injector.attempt_fault = lambda call, attempt: throttle(call.service) if rng.random() < rate else None
    started = time.perf_counter()
    error: BaseException | None = None
    with injector.attribute(module):
        try:
            handle(
                spec.rule_class()(), scheduled_event({**LOCAL, **(params or {})}), session=injector.session
            )
        except Exception as exc:
            error = exc
    seconds = time.perf_counter() - started
    posted = {
        e["ComplianceResourceId"]: e["ComplianceType"]
        for c in injector.calls
        if c.name == "config.PutEvaluations" and c.response is not None
        for e in c.params["Evaluations"]
    }
    return Sweep(list(injector.calls), posted, error, injector.injected["throttled"], seconds)


@pytest.fixture
def account(
    monkeypatch: pytest.MonkeyPatch, cheap_key_material: None
) -> Iterator[tuple[FaultInjector, Backoff]]:
    backoff = no_backoff(monkeypatch)
    with mock_aws():
        yield FaultInjector(boto3.Session(region_name=REGION)), backoff


def _figures(name: str, resources: int, run: Sweep, backoff: Backoff) -> str:
    return (
        f"\n{name}: {resources} resources, {len(run.calls)} calls, {run.attempts} HTTP attempts, "
        f"{run.throttles} injected throttles ({run.throttles / max(run.attempts, 1):.0%} of attempts), "
        f"max {run.max_attempts} attempts per call (limit {total_attempts()}), "
        f"backoff not slept {backoff.total:.1f}s, wall {run.seconds:.2f}s"
    )


# ----------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("landscape", LANDSCAPES, ids=lambda landscape: landscape.rule)
def test_sweep_survives_30_percent_throttling(
    account: tuple[FaultInjector, Backoff], landscape: Landscape
) -> None:
    injector, backoff = account
    landscape.seed(injector.session, landscape.resources)
    clean = sweep(injector, landscape.rule, 0.0, SEED, landscape.params)
    assert clean.error is None
    assert len(clean.posted) >= landscape.resources
    backoff.delays.clear()

    run = sweep(injector, landscape.rule, THROTTLE_RATE, landscape.rng_seed, landscape.params)
    print(_figures(landscape.rule, len(clean.posted), run, backoff))

    if run.attempts >= 100:  # enough attempts for the rate to show
        assert 0.2 * run.attempts <= run.throttles <= 0.4 * run.attempts
    assert run.max_attempts <= total_attempts()
    for call in run.calls:  # the injector's count agrees with botocore's own
        if call.response is not None and call.attempts:
            assert call.response["ResponseMetadata"]["RetryAttempts"] == call.attempts - 1, call.name
    # Calls whose last attempt was throttled. A call may also end in the service's own error answer
    # (NoSuchBucketPolicy, NoSuchTagSet: the rule reads those as facts), which is not exhaustion.
    exhausted = [c for c in run.calls if c.response is None and c.error_code == throttle(c.service).code]
    if not exhausted:
        assert run.error is None, run.error
        assert run.posted == clean.posted
    else:  # a call throttled on every attempt: its resource fails closed, the others keep their verdicts
        assert isinstance(run.error, EvaluationIncomplete)
        failed = {f["resourceId"] for f in run.failures}
        assert {c.resource for c in exhausted if c.resource} <= failed
        for rid, verdict in clean.posted.items():
            assert rid in failed or run.posted.get(rid) == verdict, rid


def test_throttling_beyond_the_retry_budget_fails_closed(account: tuple[FaultInjector, Backoff]) -> None:
    """70% of attempts throttled: many calls exhaust their attempts, and botocore's retry quota (500
    tokens per client, 5 per throttled retry, https://docs.aws.amazon.com/sdkref/latest/guide/
    feature-retry-behavior.html) runs dry, after which calls are not retried at all. Whatever fails,
    fails closed: each such bucket is named, never posted; every posted verdict is the fault-free one."""
    injector, backoff = account
    seed_buckets(injector.session, 150)
    clean = expected_bucket_verdicts(150)
    run = sweep(injector, "S3_BUCKET_SSE_KMS_ENFORCED", 0.7, SEED)
    gave_up = [c for c in run.calls if c.response is None]
    not_retried = [c for c in gave_up if c.attempts < total_attempts()]
    print(
        _figures("S3 at 70% throttling", 150, run, backoff)
        + f"; {len(gave_up)} calls failed, {len(not_retried)} of them cut short by the retry quota"
    )
    assert gave_up, "the scenario must exhaust some calls"
    assert run.max_attempts <= total_attempts()
    assert isinstance(run.error, EvaluationIncomplete)
    failed = {f["resourceId"] for f in run.failures}
    assert {f["code"] for f in run.failures} <= {"SlowDown", "ThrottlingException"}
    if "*" in failed:  # the listing itself gave up: nothing may be posted
        assert run.posted == {}
    for rid, verdict in run.posted.items():
        assert verdict == clean[rid], rid
        assert rid not in failed
    for rid in clean:
        assert rid in run.posted or rid in failed or "*" in failed, f"{rid} silently dropped"
    json.loads(str(run.error))  # the structured error stays valid JSON


def test_client_config_makes_max_attempts_in_all(account: tuple[FaultInjector, Backoff]) -> None:
    injector, _ = account
    injector.attempt_fault = lambda call, attempt: throttle(call.service)
    kms = injector.session.client("kms", config=CLIENT_CONFIG)
    with pytest.raises(Exception, match="ThrottlingException"):
        kms.list_keys()
    assert injector.calls[-1].attempts == MAX_ATTEMPTS
