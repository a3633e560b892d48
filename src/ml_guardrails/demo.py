"""``ml-guardrails demo``: an embedded moto account seeded with a bank's ML landscape, then scanned.

The landscape is partly insecure on purpose -- the drift a platform team meets in a real account:

* networking: an isolated ML VPC (private subnets, only an S3 gateway endpoint, flow logs ALL), an
  "egress" VPC whose private subnet routes to a NAT gateway (flow logs REJECT only), the region's default
  VPC (internet gateway, no flow logs) and a sandbox VPC exempted by tag;
* SageMaker notebooks: one private in the isolated subnet, one with direct internet access, one that
  disables direct access but sits in the NAT-routed subnet;
* KMS keys: rotating and non-rotating customer keys, plus keys where rotation does not apply
  (asymmetric signing, HMAC, pending deletion);
* S3 buckets: SSE-KMS with a customer key and bucket key, DSSE-KMS, SSE-S3, and SSE-KMS with the
  AWS-managed ``aws/s3`` key; one bucket policy limited to the organization and TLS, the others without
  one, and a public sample bucket exempted by tag;
* VPC endpoints: the S3 gateway endpoint with the data-perimeter policy, a SageMaker API endpoint with the
  default full-access policy, an STS endpoint exempted by tag;
* RDS: a feature store on a customer key, a label store on the AWS-managed ``aws/rds`` key, an exempted
  sandbox without encryption;
* GuardDuty: never turned on in the Region;
* an SNS topic for the findings no runbook may fix on its own (access policies, database encryption).

Nothing here reaches AWS: moto intercepts every call in-process, and fake credentials are set for the
duration of the demo.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any

from ml_guardrails.testing import aws_shaped_rds, patch_moto_sagemaker
from ml_guardrails.workspace import launch_workspace

if TYPE_CHECKING:
    import boto3

REGION = "us-east-1"
EXEMPTION_TAG = "ml-guardrails:exemption"
ORGANIZATION_ID = "o-a1b2c3d4e5"  # the demo bank's (fictional) AWS Organizations id
EXEMPT = {"ExemptionTagKey": EXEMPTION_TAG}
# The parameters the demo scans with: the exemption tag is set so that the sandbox VPC shows as exempt.
DEMO_PARAMETERS: dict[str, dict[str, Any]] = {
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": {"ExemptionTagKey": EXEMPTION_TAG},
    "KMS_CMK_ROTATION_ENABLED": {"ExemptionTagKey": EXEMPTION_TAG},
    "S3_BUCKET_SSE_KMS_ENFORCED": {"ExemptionTagKey": EXEMPTION_TAG},
    "VPC_FLOW_LOGS_ENABLED": {"ExemptionTagKey": EXEMPTION_TAG},
    "GUARDDUTY_ENABLED": dict(EXEMPT),
    "RDS_STORAGE_ENCRYPTED_WITH_CMK": dict(EXEMPT),
    "SAGEMAKER_NOTEBOOK_HARDENED": dict(EXEMPT),
    "S3_BUCKET_POLICY_ORG_ONLY": {"OrganizationId": ORGANIZATION_ID, **EXEMPT},
    "VPC_ENDPOINT_POLICY_ORG_ONLY": {"OrganizationId": ORGANIZATION_ID, **EXEMPT},
}
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    # moto's documented fake credentials, never real ones.
    "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105
    "AWS_SESSION_TOKEN": "testing",  # nosec B105
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_CLEARED_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@contextmanager
def embedded_account() -> Iterator[boto3.Session]:
    """A moto account in-process, with fake credentials; the environment is restored afterwards."""
    saved = {k: os.environ.get(k) for k in (*_FAKE_ENV, *_CLEARED_ENV)}
    for key in _CLEARED_ENV:
        os.environ.pop(key, None)
    os.environ.update(_FAKE_ENV)
    try:
        import boto3
        from moto import mock_aws

        with mock_aws():
            yield boto3.Session(region_name=REGION)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _tags(name: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}, *({"Key": k, "Value": v} for k, v in extra.items())]


def _org_only_statement(sid: str, actions: list[str], resources: list[str], **extra: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": actions,
        "Resource": resources,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID, **extra}},
    }


# aws-samples/data-perimeter-policy-examples, vpc_endpoint_policies/default_endpoint_policy.json (the first
# two statements): the organization's identities to its resources, and AWS services acting for it.
PERIMETER_ENDPOINT_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        _org_only_statement(
            "AllowRequestsByOrgsIdentitiesToOrgsResources",
            ["*"],
            ["*"],
            **{"aws:ResourceOrgID": ORGANIZATION_ID},
        ),
        {
            "Sid": "AllowRequestsByAWSServicePrincipals",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}},
        },
    ],
}


def _tls_only(bucket: str) -> dict[str, Any]:
    """The S3 User Guide's RestrictToTLSRequestsOnly statement (example-bucket-policies.html)."""
    return {
        "Sid": "RestrictToTLSRequestsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def seed_network(session: boto3.Session) -> dict[str, str]:
    """VPCs, subnets, routes and flow logs. Returns the ids the other seeders need."""
    ec2: Any = session.client("ec2")
    iam: Any = session.client("iam")
    logs: Any = session.client("logs")
    role_arn = iam.create_role(
        RoleName="vpc-flow-logs-delivery",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"Service":"vpc-flow-logs.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
    )["Role"]["Arn"]
    logs.create_log_group(logGroupName="/ml-platform/vpc-flow-logs")

    def vpc(cidr: str, name: str, **tags: str) -> str:
        vpc_id: str = ec2.create_vpc(
            CidrBlock=cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(name, **tags)}]
        )["Vpc"]["VpcId"]
        return vpc_id

    def subnet(vpc_id: str, cidr: str, name: str) -> str:
        subnet_id: str = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=cidr,
            AvailabilityZone=f"{REGION}a",
            TagSpecifications=[{"ResourceType": "subnet", "Tags": _tags(name)}],
        )["Subnet"]["SubnetId"]
        return subnet_id

    def route_table(vpc_id: str, subnet_id: str) -> str:
        rtb: str = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet_id)
        return rtb

    def flow_log(vpc_id: str, traffic: str) -> None:
        ec2.create_flow_logs(
            ResourceIds=[vpc_id],
            ResourceType="VPC",
            TrafficType=traffic,
            LogDestinationType="cloud-watch-logs",
            LogGroupName="/ml-platform/vpc-flow-logs",
            DeliverLogsPermissionArn=role_arn,
        )

    # 1. The isolated ML VPC: private subnet, only local routes plus the S3 gateway endpoint; flow logs ALL.
    isolated = vpc("10.10.0.0/16", "ml-isolated")
    isolated_subnet = subnet(isolated, "10.10.1.0/24", "ml-isolated-private-a")
    isolated_rtb = route_table(isolated, isolated_subnet)
    ec2.create_vpc_endpoint(
        VpcId=isolated,
        ServiceName=f"com.amazonaws.{REGION}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[isolated_rtb],
        PolicyDocument=json.dumps(PERIMETER_ENDPOINT_POLICY),
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": _tags("ml-isolated-s3")}],
    )
    # Interface endpoints: SageMaker API left with the default full-access policy; STS exempted by tag.
    for name, service, tags in (
        ("ml-isolated-sagemaker-api", "sagemaker.api", {}),
        (
            "ml-isolated-sts",
            "sts",
            {EXEMPTION_TAG: "Network team's STS endpoint, policy under review RA-3107"},
        ),
    ):
        ec2.create_vpc_endpoint(
            VpcId=isolated,
            ServiceName=f"com.amazonaws.{REGION}.{service}",
            VpcEndpointType="Interface",
            SubnetIds=[isolated_subnet],
            TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": _tags(name, **tags)}],
        )
    flow_log(isolated, "ALL")

    # 2. A VPC whose "private" subnet egresses through a NAT gateway; flow logs capture only REJECTs.
    egress = vpc("10.20.0.0/16", "ml-egress")
    public_subnet = subnet(egress, "10.20.0.0/24", "ml-egress-public-a")
    nat_subnet = subnet(egress, "10.20.1.0/24", "ml-egress-private-a")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=egress)
    public_rtb = route_table(egress, public_subnet)
    ec2.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public_subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    nat_rtb = route_table(egress, nat_subnet)
    ec2.create_route(RouteTableId=nat_rtb, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    flow_log(egress, "REJECT")

    # 3. A sandbox VPC without flow logs, exempted by the risk team (tag value = the reason).
    vpc("10.30.0.0/16", "ml-sandbox", **{EXEMPTION_TAG: "Risk acceptance RA-2291 until 2027-03-31"})

    # 4. Every region has a default VPC, and nobody turned on its flow logs. (In AWS its main route table
    #    also routes to an internet gateway; moto's default VPC has only the local route.)
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    default_subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["Subnets"][0]
    return {
        "isolated_subnet": isolated_subnet,
        "nat_subnet": nat_subnet,
        "default_subnet": default_subnet["SubnetId"],
    }


def seed_notebooks(session: boto3.Session, net: dict[str, str], kms_key_id: str) -> None:
    sm: Any = session.client("sagemaker")
    ec2: Any = session.client("ec2")
    role = "arn:aws:iam::123456789012:role/ml-notebook-execution"

    def sg(subnet_id: str, name: str) -> str:
        vpc_id = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["VpcId"]
        group: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]
        return group

    patch_moto_sagemaker()  # moto drops the IMDS setting and lacks UpdateNotebookInstance (the runbook's)
    imds_v2 = {"MinimumInstanceMetadataServiceVersion": "2"}
    private_sg = sg(net["isolated_subnet"], "nb-private")
    sm.create_notebook_instance(
        NotebookInstanceName="fraud-detection-private",
        InstanceType="ml.t3.medium",
        RoleArn=role,
        SubnetId=net["isolated_subnet"],
        SecurityGroupIds=[private_sg],
        DirectInternetAccess="Disabled",
        RootAccess="Disabled",
        KmsKeyId=kms_key_id,
        InstanceMetadataServiceConfiguration=imds_v2,
    )
    # Private, but its vendor image needs root: exempted from hardening by the risk team.
    sm.create_notebook_instance(
        NotebookInstanceName="ml-vendor-image",
        InstanceType="ml.t3.medium",
        RoleArn=role,
        SubnetId=net["isolated_subnet"],
        SecurityGroupIds=[private_sg],
        DirectInternetAccess="Disabled",
        KmsKeyId=kms_key_id,
        Tags=[
            {"Key": EXEMPTION_TAG, "Value": "Risk acceptance RA-4410: vendor image needs root, to 2027-03-31"}
        ],
    )
    sm.create_notebook_instance(
        NotebookInstanceName="churn-model-sandbox",
        InstanceType="ml.t3.medium",
        RoleArn=role,
        DirectInternetAccess="Enabled",
    )
    sm.create_notebook_instance(
        NotebookInstanceName="credit-risk-nat",
        InstanceType="ml.t3.medium",
        RoleArn=role,
        SubnetId=net["nat_subnet"],
        SecurityGroupIds=[sg(net["nat_subnet"], "nb-nat")],
        DirectInternetAccess="Disabled",
        KmsKeyId=kms_key_id,  # encrypted, but root access and IMDSv1 left at the API defaults
    )


def seed_keys(session: boto3.Session) -> dict[str, str]:
    kms: Any = session.client("kms")

    def key(description: str, **kwargs: Any) -> str:
        key_id: str = kms.create_key(Description=description, **kwargs)["KeyMetadata"]["KeyId"]
        return key_id

    data_key = key("ml-training-data: rotating customer key")
    kms.enable_key_rotation(KeyId=data_key, RotationPeriodInDays=365)
    kms.create_alias(AliasName="alias/ml-training-data", TargetKeyId=data_key)
    key("legacy-feature-store: rotation never enabled")
    key("model-signing: asymmetric", KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")
    key("api-request-hmac", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    retired = key("retired-experiment-key")
    kms.schedule_key_deletion(KeyId=retired, PendingWindowInDays=7)
    return {"data_key": data_key}


def seed_buckets(session: boto3.Session, keys: dict[str, str]) -> None:
    s3: Any = session.client("s3")
    key_arn = session.client("kms").describe_key(KeyId=keys["data_key"])["KeyMetadata"]["Arn"]

    def bucket(name: str, rule: dict[str, Any] | None) -> None:
        s3.create_bucket(Bucket=name)
        if rule is not None:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [rule]})

    bucket(
        "bank-ml-training-data",
        {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True,
        },
    )
    bucket(
        "bank-ml-features-dsse",
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse", "KMSMasterKeyID": key_arn}},
    )
    # Shared with the organization only, over TLS only.
    s3.put_bucket_policy(
        Bucket="bank-ml-training-data",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    _org_only_statement(
                        "AllowOrganizationRead",
                        ["s3:GetObject", "s3:ListBucket"],
                        ["arn:aws:s3:::bank-ml-training-data", "arn:aws:s3:::bank-ml-training-data/*"],
                    ),
                    _tls_only("bank-ml-training-data"),
                ],
            }
        ),
    )
    # What AWS applies to every new bucket since January 2023 (moto leaves new buckets unencrypted).
    bucket("bank-ml-scratch", {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}})
    bucket("bank-ml-model-artifacts", {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}})
    # Public sample data, readable by anyone: the risk team accepted it for this bucket only.
    bucket(
        "bank-ml-public-samples",
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}},
    )
    s3.put_bucket_policy(
        Bucket="bank-ml-public-samples",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "PublicRead",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::bank-ml-public-samples/*",
                    }
                ],
            }
        ),
    )
    s3.put_bucket_tagging(
        Bucket="bank-ml-public-samples",
        Tagging={"TagSet": [{"Key": EXEMPTION_TAG, "Value": "Public sample data, risk acceptance RA-1202"}]},
    )


FLOW_LOG_BUCKET = "bank-ml-vpc-flow-logs"


def seed_flow_log_bucket(session: boto3.Session, keys: dict[str, str]) -> str:
    """The central flow-log bucket the remediation delivers to: SSE-KMS with the platform key, and the
    bucket policy AWS documents for log delivery (the runbook never writes bucket policies itself)."""
    s3: Any = session.client("s3")
    key_arn = session.client("kms").describe_key(KeyId=keys["data_key"])["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=FLOW_LOG_BUCKET)
    s3.put_bucket_encryption(
        Bucket=FLOW_LOG_BUCKET,
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
    account = session.client("sts").get_caller_identity()["Account"]
    s3.put_bucket_policy(
        Bucket=FLOW_LOG_BUCKET,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AWSLogDeliveryWrite",
                        "Effect": "Allow",
                        "Principal": {"Service": "delivery.logs.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{FLOW_LOG_BUCKET}/AWSLogs/{account}/*",
                        "Condition": {
                            "StringEquals": {
                                "aws:SourceAccount": account,
                                "s3:x-amz-acl": "bucket-owner-full-control",
                            }
                        },
                    },
                    {
                        "Sid": "AWSLogDeliveryAclCheck",
                        "Effect": "Allow",
                        "Principal": {"Service": "delivery.logs.amazonaws.com"},
                        "Action": "s3:GetBucketAcl",
                        "Resource": f"arn:aws:s3:::{FLOW_LOG_BUCKET}",
                        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                    },
                    _tls_only(FLOW_LOG_BUCKET),
                ],
            }
        ),
    )
    return f"arn:aws:s3:::{FLOW_LOG_BUCKET}"


def seed_databases(session: boto3.Session, keys: dict[str, str]) -> None:
    """RDS instances (AWS-shaped answers installed on ``session``: see ``testing.aws_shaped_rds``)."""
    aws_shaped_rds(session)
    rds: Any = session.client("rds")

    def instance(name: str, tags: dict[str, str] | None = None, **encryption: Any) -> None:
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.r6g.large",
            Engine="postgres",
            MasterUsername="mladmin",
            MasterUserPassword="moto-only-not-a-credential",  # moto only, never a real database
            AllocatedStorage=100,
            Tags=_tags(name, **(tags or {})),
            **encryption,
        )

    instance("ml-feature-store", StorageEncrypted=True, KmsKeyId=keys["data_key"])
    instance("ml-label-store", StorageEncrypted=True)  # the AWS managed aws/rds key
    instance("ml-sandbox-db", {EXEMPTION_TAG: "Synthetic data only, risk acceptance RA-3350"})


FINDINGS_TOPIC = "ml-guardrails-findings"


def seed_findings_topic(session: boto3.Session) -> str:
    """The SNS topic the notification runbook publishes to (the stack's FindingsTopic)."""
    topic: str = session.client("sns").create_topic(Name=FINDINGS_TOPIC)["TopicArn"]
    return topic


def seed(session: boto3.Session) -> dict[str, dict[str, Any]]:
    """The whole landscape. Returns the runbook inputs a platform team would set for this account (the
    deployment-specific values of each rule's Remediation binding)."""
    net = seed_network(session)
    keys = seed_keys(session)
    seed_notebooks(session, net, keys["data_key"])
    seed_buckets(session, keys)
    flow_log_bucket = seed_flow_log_bucket(session, keys)
    seed_databases(session, keys)
    topic = {"TopicArn": seed_findings_topic(session)}
    key_arn = session.client("kms").describe_key(KeyId=keys["data_key"])["KeyMetadata"]["Arn"]
    return {
        "S3_BUCKET_SSE_KMS_ENFORCED": {"KmsKeyId": key_arn},
        "VPC_FLOW_LOGS_ENABLED": {"LogDestinationType": "s3", "LogDestination": flow_log_bucket},
        "RDS_STORAGE_ENCRYPTED_WITH_CMK": dict(topic),
        "S3_BUCKET_POLICY_ORG_ONLY": dict(topic),
        "VPC_ENDPOINT_POLICY_ORG_ONLY": dict(topic),
    }


WORKSPACE_NAME = "quant-research-lab"


def run(fmt: str, out: IO[str], err: IO[str], remediate: bool = True) -> int:
    """Act 1: scan the landscape. Act 2: run the runbook of every finding, then scan again. Act 3: a data
    scientist launches the self-service workspace (the Service Catalog product); scan everything again
    and show the workspace green beside what drifted."""
    from ml_guardrails import remediate as fix
    from ml_guardrails.cli import emit, render_table, scan, summary_line

    started = time.perf_counter()
    with embedded_account() as session:
        err.write(f"Seeding an embedded moto account ({REGION}) with a bank's ML landscape...\n")
        overrides = seed(session)
        err.write("Act 1: scanning it with every ml-guardrails rule...\n")
        before = scan(session, REGION, (), DEMO_PARAMETERS)
        if not remediate:
            code = emit(before, fmt, out, err)
            out.flush()
            return code
        plan = fix.make_plan(before, (), overrides)
        err.write(f"Act 2: running {len(plan.runs)} remediation runbooks locally, then scanning again...\n")
        results = fix.execute(plan, session, REGION)
        after = scan(session, REGION, (), DEMO_PARAMETERS)
        err.write("Act 3: a data scientist launches the Secure ML workspace product, then a last scan...\n")
        launched = launch_workspace(session, WorkspaceName=WORKSPACE_NAME, OrganizationId=ORGANIZATION_ID)
        final = scan(session, REGION, (), DEMO_PARAMETERS)
    seen = {(r.rule, r.resource_type, r.resource_id) for r in after.rows}
    workspace = [r for r in final.rows if (r.rule, r.resource_type, r.resource_id) not in seen]
    drifted = [r for r in final.rows if r.compliance == "NON_COMPLIANT"]
    if fmt == "json":
        json.dump(
            {
                "before": [asdict(r) for r in before.rows],
                "runbooks": [
                    {"runbook": run.runbook, "resource_id": run.row.resource_id, **execution.to_dict()}
                    for run, execution in results
                ],
                "after": [asdict(r) for r in after.rows],
                "workspace": {"outputs": launched["Outputs"], "rows": [asdict(r) for r in workspace]},
                "final": [asdict(r) for r in final.rows],
            },
            out,
            indent=2,
        )
        out.write("\n")
    else:
        out.write("== Act 1: the landscape as found ==\n\n")
        render_table(before.rows, out)
        out.write("\n" + summary_line(before) + "\n\n")
        out.write("== Act 2: remediation runbooks (run locally against the same account) ==\n\n")
        fix.render_results(results, out)
        out.write("\n== After remediation ==\n\n")
        render_table(after.rows, out)
        out.write("\n" + summary_line(after) + "\n")
        fixed = {(r.rule, r.resource_id) for r in before.rows if r.compliance == "NON_COMPLIANT"} - {
            (r.rule, r.resource_id) for r in after.rows if r.compliance == "NON_COMPLIANT"
        }
        out.write(
            f"Remediation fixed {len(fixed)} findings. Still NON_COMPLIANT, by design: quarantined "
            "notebooks (stopped and tagged) until their owners recreate them without internet access, "
            "notebooks without a KMS key (set only at creation), and findings no runbook may fix on its "
            "own (bucket and endpoint policies, database encryption): those were published to the "
            f"{FINDINGS_TOPIC} topic.\n"
        )
        out.write(
            f"\n== Act 3: the self-service workspace {WORKSPACE_NAME!r} "
            "(service-catalog/secure-ml-workspace.yaml) ==\n\n"
        )
        render_table(workspace, out)
        green = sum(r.compliance == "COMPLIANT" for r in workspace)
        out.write(
            f"\nThe workspace's {len(workspace)} evaluations: {green} COMPLIANT from its first minute; "
            f"the account still has {len(drifted)} NON_COMPLIANT findings elsewhere (above).\n"
        )
    out.flush()
    failed = any(execution.status != "Success" for _, execution in results)
    code = 2 if failed or final.exit_code == 2 else final.exit_code
    err.write(
        f"Done in {time.perf_counter() - started:.1f}s (exit code {code}: 0 compliant, 1 findings, 2 error)\n"
    )
    return code
