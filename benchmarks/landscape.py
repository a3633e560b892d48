"""Benchmark landscapes: N resources per rule in one region, seeded through boto3.

The same functions seed the benchmark's ``moto_server`` (inside the server process, under ``mock_aws``,
so seeding costs no HTTP round trips) and the tiny in-process landscapes of ``tests/test_benchmarks.py``.
Every landscape mixes verdicts (about half compliant) so the rules take their full decision paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

ACCOUNT_ID = "123456789012"
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ci"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/AmazonSageMaker-ExecutionRole-bench"


def _bucket_kwargs(name: str, region: str) -> dict[str, Any]:
    if region == "us-east-1":
        return {"Bucket": name}
    return {"Bucket": name, "CreateBucketConfiguration": {"LocationConstraint": region}}


def seed_kms(session: boto3.Session, n: int) -> None:
    """``n`` customer-managed symmetric keys; every second one rotates."""
    kms: Any = session.client("kms")
    for i in range(n):
        key_id = kms.create_key(Description=f"bench key {i}")["KeyMetadata"]["KeyId"]
        if i % 2 == 0:
            kms.enable_key_rotation(KeyId=key_id)


def seed_s3(session: boto3.Session, n: int, prefix: str = "bench") -> None:
    """``n`` buckets: every second one SSE-KMS with a customer key (one key for all), the others without
    a default-encryption configuration (moto's new buckets, unlike AWS's, have none)."""
    region = str(session.region_name)
    s3: Any = session.client("s3")
    key_arn = session.client("kms").create_key(Description="bench bucket key")["KeyMetadata"]["Arn"]
    for i in range(n):
        name = f"{prefix}-{region}-{i:05d}"
        s3.create_bucket(**_bucket_kwargs(name, region))
        if i % 2 == 0:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )


def seed_s3_bulk(session: boto3.Session, n: int, prefix: str = "bulk") -> None:
    """``n`` empty buckets for the memory sweep. Inside the benchmark's server process the buckets are
    created through moto's S3 backend directly (10,000 CreateBucket requests would dominate the run);
    elsewhere (or if moto's backend API differs) through boto3."""
    region = str(session.region_name)
    names = [f"{prefix}-{region}-{i:05d}" for i in range(n)]
    try:
        from moto.s3.models import s3_backends

        backend = s3_backends[ACCOUNT_ID]["aws"]
        for name in names:
            backend.create_bucket(name, region)
    except Exception:
        s3: Any = session.client("s3")
        for name in names:
            s3.create_bucket(**_bucket_kwargs(name, region))


def seed_vpc(session: boto3.Session, n: int) -> None:
    """``n`` VPCs; every second one has an ACTIVE, ALL-traffic flow log to S3."""
    region = str(session.region_name)
    ec2: Any = session.client("ec2")
    bucket = f"bench-flow-logs-{region}"
    session.client("s3").create_bucket(**_bucket_kwargs(bucket, region))
    with_logs: list[str] = []
    for i in range(n):
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        if i % 2 == 0:
            with_logs.append(vpc_id)
    for start in range(0, len(with_logs), 100):
        ec2.create_flow_logs(
            ResourceIds=with_logs[start : start + 100],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="s3",
            LogDestination=f"arn:aws:s3:::{bucket}",
        )


def seed_sagemaker(session: boto3.Session, n: int) -> dict[str, str]:
    """``n`` notebooks, by thirds: isolated subnet (COMPLIANT), a subnet routing to an internet gateway,
    and direct internet access. Returns the two subnet ids by role ("isolated", "public")."""
    ec2: Any = session.client("ec2")
    sm: Any = session.client("sagemaker")
    region = str(session.region_name)
    vpc_id = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    subnets: dict[str, str] = {}
    for role, cidr in (("isolated", "10.90.1.0/24"), ("public", "10.90.2.0/24")):
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{region}a")["Subnet"][
            "SubnetId"
        ]
        table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
        if role == "public":
            igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
            ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        subnets[role] = subnet_id
    group = ec2.create_security_group(GroupName="bench-notebooks", Description="bench", VpcId=vpc_id)[
        "GroupId"
    ]
    for i in range(n):
        kwargs: dict[str, Any] = {
            "NotebookInstanceName": f"bench-nb-{i:05d}",
            "InstanceType": "ml.t3.medium",
            "RoleArn": ROLE_ARN,
        }
        if i % 3 != 2:
            kwargs.update(
                SubnetId=subnets["isolated" if i % 3 == 0 else "public"],
                SecurityGroupIds=[group],
                DirectInternetAccess="Disabled",
            )
        sm.create_notebook_instance(**kwargs)
    return subnets


SEEDERS: dict[str, Callable[[boto3.Session, int], Any]] = {
    "KMS_CMK_ROTATION_ENABLED": seed_kms,
    "S3_BUCKET_SSE_KMS_ENFORCED": seed_s3,
    "VPC_FLOW_LOGS_ENABLED": seed_vpc,
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": seed_sagemaker,
}


def seed_region(session: boto3.Session, n: int) -> None:
    """Every rule's landscape, ``n`` resources each, in the session's region."""
    for seed in SEEDERS.values():
        seed(session, n)


# ------------------------------------------------------------------------ configuration items
def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def kms_item(session: boto3.Session, with_rotation_status: bool = True) -> dict[str, Any]:
    """The customer-key fixture, pointed at a seeded key whose rotation is off (its verdict needs no
    rotation period, which moto does not return), with the CI's rotation status or none."""
    kms: Any = session.client("kms")
    key_id = next(
        k["KeyId"]
        for k in kms.list_keys()["Keys"]
        if not kms.get_key_rotation_status(KeyId=k["KeyId"])["KeyRotationEnabled"]
    )
    key = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    ci = fixture("kms_customer_key.json")
    ci["resourceId"] = ci["configuration"]["keyId"] = key["KeyId"]
    ci["ARN"] = ci["configuration"]["arn"] = key["Arn"]
    ci["awsRegion"] = session.region_name
    ci["supplementaryConfiguration"]["KeyRotationStatus"] = False
    if not with_rotation_status:
        del ci["supplementaryConfiguration"]["KeyRotationStatus"]
    return ci


def s3_item(key: str | None, algorithm: str = "aws:kms") -> dict[str, Any]:
    """The SSE-KMS fixture with default-encryption ``algorithm`` and ``key`` (None: no key id)."""
    ci = fixture("s3_sse_kms_cmk.json")
    default = ci["supplementaryConfiguration"]["ServerSideEncryptionConfiguration"]["rules"][0][
        "applyServerSideEncryptionByDefault"
    ]
    default["kmsMasterKeyID"] = key
    default["sseAlgorithm"] = algorithm
    return ci


def first_key_arn(session: boto3.Session) -> str:
    kms: Any = session.client("kms")
    key_id = kms.list_keys()["Keys"][0]["KeyId"]
    return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])


def vpc_item(session: boto3.Session) -> dict[str, Any]:
    """The ml-training VPC fixture, pointed at a seeded (non-default) VPC."""
    ec2: Any = session.client("ec2")
    vpc = next(v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault"))
    ci = fixture("vpc_ml_training.json")
    region = session.region_name
    ci["resourceId"] = ci["configuration"]["vpcId"] = vpc["VpcId"]
    ci["ARN"] = f"arn:aws:ec2:{region}:{ACCOUNT_ID}:vpc/{vpc['VpcId']}"
    ci["awsRegion"] = region
    ci["awsAccountId"] = ci["configuration"]["ownerId"] = ACCOUNT_ID
    return ci


def notebook_item(session: boto3.Session, isolated: bool = True) -> dict[str, Any]:
    """A notebook fixture: the isolated one pointed at a seeded subnet, or the direct-internet one."""
    if not isolated:
        return fixture("sagemaker_notebook_internet.json")
    ec2: Any = session.client("ec2")
    subnet = next(s for s in ec2.describe_subnets()["Subnets"] if str(s.get("CidrBlock")) == "10.90.1.0/24")
    ci = fixture("sagemaker_notebook_isolated.json")
    ci["configuration"]["SubnetId"] = subnet["SubnetId"]
    ci["awsRegion"] = session.region_name
    return ci
