"""From a recorded AWS API call to the IAM actions it needs, and how IAM lets each action be scoped.

Sources (the Service Authorization Reference, "SAR", and the API references it links):

* SAR, actions/resources/condition keys per service:
  https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
  (pages used: list_amazons3.html, list_awskeymanagementservice.html, list_amazonec2.html,
  list_amazonsagemaker.html, list_awsconfig.html, list_amazoncloudwatchlogs.html,
  list_awssecuritytokenservice.html, list_awsidentityandaccessmanagementiam.html, list_amazonsqs.html,
  list_amazonguardduty.html, list_amazonrds.html, list_amazonsns.html).
  Where the "Resource types" column of an action is empty, the policy must say ``"Resource": "*"``.

The IAM prefix is the service's *signing name* (botocore ``service_model.signing_name``: ``logs`` for
CloudWatch Logs, ``sagemaker``, ``kms``, ``ec2``, ``config``, ``s3``), and the action is the API operation
name -- except where this module says otherwise. S3 names differ often, so an S3 operation that is not
listed here maps to ``s3:?<Operation>``, which no policy grants: the least-privilege test then fails
and names the operation to look up, instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# ------------------------------------------------------------------------------ operation -> action
# S3 operations whose IAM action was checked in the S3 API reference ("Permissions" section of each page,
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_<Operation>.html) and the SAR S3 page.
S3_ACTIONS: dict[str, str] = {
    # API_ListBuckets: "you must have the s3:ListAllMyBuckets permission".
    "ListBuckets": "s3:ListAllMyBuckets",
    # API_GetBucketEncryption: "The s3:GetEncryptionConfiguration permission is required in a policy".
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    # API_PutBucketEncryption: "The s3:PutEncryptionConfiguration permission is required in a policy".
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    # Same-name actions (API_GetBucketPolicy, API_PutBucketPolicy, API_GetBucketTagging,
    # API_GetBucketLocation: "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:GetBucketTagging",
    # "s3:GetBucketLocation").
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "GetBucketTagging": "s3:GetBucketTagging",
    "GetBucketLocation": "s3:GetBucketLocation",
}

# Operations that need no permission at all. API_GetCallerIdentity: "No permissions are required to
# perform this operation. If an administrator attaches a policy to your identity that explicitly denies
# access to the sts:GetCallerIdentity action, you can still perform this operation."
# https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
NO_PERMISSION: frozenset[tuple[str, str]] = frozenset({("sts", "GetCallerIdentity")})


def primary_action(service: str, operation: str) -> str | None:
    """The IAM action of one API call (``None``: the call needs no permission)."""
    if (service, operation) in NO_PERMISSION:
        return None
    if service == "s3":
        return S3_ACTIONS.get(operation, f"s3:?{operation}")
    return f"{service}:{operation}"


# ---------------------------------------------------------------------- actions a call implies
# Some calls need permissions beyond their own action, decided by their parameters. Rather than allow
# these actions unconditionally, the recorder keeps the parameter facts ("facets") that trigger them, and
# the action is required only when a recorded call had the facet.
def facets(service: str, operation: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The parameter facts of a call that :func:`implied_actions` depends on (kept in the recording)."""
    found: list[str] = []
    if (service, operation) == ("guardduty", "CreateDetector"):
        found.append("CreatesServiceLinkedRole")  # every CreateDetector may be the account's first
    if service == "ec2" and params.get("TagSpecifications"):
        found.append("TagSpecifications")
    if (service, operation) == ("ec2", "CreateFlowLogs"):
        # The API's default destination type is cloud-watch-logs.
        found.append(f"LogDestinationType={params.get('LogDestinationType') or 'cloud-watch-logs'}")
        if params.get("DeliverLogsPermissionArn"):
            found.append("DeliverLogsPermissionArn")
    return tuple(found)


IMPLIED_SOURCES = {
    # Tag on create: "To allow users to tag resources on creation, they must have permissions to use the
    # action that creates the resource ... and ec2:CreateTags"; ec2:CreateAction scopes it.
    "ec2:CreateTags": "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html",
    # Publishing flow logs to S3: the principal creating the flow log needs logs:CreateLogDelivery and
    # logs:DeleteLogDelivery (Resource "*"); CreateFlowLogs calls them on the caller's behalf, so no API
    # call of ours shows them. (Also the VPC user guide's S3 page: flow-logs-s3.html#flow-logs-s3-iam.)
    "logs:CreateLogDelivery": "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3.html",
    "logs:DeleteLogDelivery": "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3.html",
    # cloud-watch-logs: "Users must also have permissions to use the iam:PassRole action for the IAM role
    # that's associated with the flow log".
    "iam:PassRole": "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html",
    # Enabling GuardDuty (CreateDetector) creates its service-linked role AWSServiceRoleForAmazonGuardDuty
    # when the account has none; "you must configure permissions to allow an IAM entity ... to create ...
    # a service-linked role" (iam:CreateServiceLinkedRole for guardduty.amazonaws.com, and for
    # malware-protection.guardduty.amazonaws.com when Malware Protection is on). No API call of ours.
    "iam:CreateServiceLinkedRole": "https://docs.aws.amazon.com/guardduty/latest/ug/slr-permissions.html",
}


def implied_actions(service: str, operation: str, call_facets: tuple[str, ...]) -> frozenset[str]:
    """Actions AWS checks besides the call's own, for a call with ``call_facets``."""
    actions: set[str] = set()
    if service == "ec2" and "TagSpecifications" in call_facets:
        actions.add("ec2:CreateTags")
    if (service, operation) == ("guardduty", "CreateDetector") and "CreatesServiceLinkedRole" in call_facets:
        actions.add("iam:CreateServiceLinkedRole")
    if (service, operation) == ("ec2", "CreateFlowLogs"):
        if "LogDestinationType=s3" in call_facets:
            actions |= {"logs:CreateLogDelivery", "logs:DeleteLogDelivery"}
        if "DeliverLogsPermissionArn" in call_facets:
            actions.add("iam:PassRole")
    return frozenset(actions)


def iam_actions(service: str, operation: str, call_facets: tuple[str, ...] = ()) -> frozenset[str]:
    """Every IAM action a call needs (its own, if any, plus the implied ones)."""
    own = primary_action(service, operation)
    return frozenset({own} if own else set()) | implied_actions(service, operation, call_facets)


# --------------------------------------------------------------------------------- resource scoping
# Actions with no resource-level permissions (SAR "Resource types" column empty): "*" is the only valid
# Resource. Each was checked on its service's SAR page. Also the RDS Describe actions: SAR lists db /
# cluster as *optional* resource types and names no ARN for a call without an identifier, which is how
# the sweeps list every database; AWS's own Region-scoped RDS example grants rds:Describe* on "*" beside
# rds:* on the Region's ARNs (IAM User Guide, reference_policies_examples_rds_region.html), as does
# AmazonRDSReadOnlyAccess. A scoped grant could deny every sweep in real AWS; "*" for read-only metadata.
STAR_ONLY: dict[str, str] = {
    "config:PutEvaluations": "list_awsconfig.html",
    "config:GetResourceConfigHistory": "list_awsconfig.html",
    "sagemaker:ListNotebookInstances": "list_amazonsagemaker.html",
    "ec2:DescribeSubnets": "list_amazonec2.html (Describe* actions have no resource types)",
    "ec2:DescribeRouteTables": "list_amazonec2.html",
    "ec2:DescribeVpcs": "list_amazonec2.html",
    "ec2:DescribeFlowLogs": "list_amazonec2.html",
    "kms:ListKeys": "list_awskeymanagementservice.html",
    "s3:ListAllMyBuckets": "list_amazons3.html",
    "logs:CreateLogDelivery": "list_amazoncloudwatchlogs.html; flow-logs-s3.html uses Resource *",
    "logs:DeleteLogDelivery": "list_amazoncloudwatchlogs.html",
    "ec2:DescribeVpcEndpoints": "list_amazonec2.html",
    "guardduty:ListDetectors": "list_amazonguardduty.html",
    "guardduty:CreateDetector": "list_amazonguardduty.html (tag condition keys only, no resource type)",
    "rds:DescribeDBInstances": "list_amazonrds.html (db optional); rds_region example",
    "rds:DescribeDBClusters": "list_amazonrds.html (cluster optional); rds_region example",
}

_P = r"arn:aws[a-z-]*"  # any partition
_REGION = r"[a-z0-9*-]+"
_ACCOUNT = r"(\d{12}|\*)"
NOTEBOOK = re.compile(rf"^{_P}:sagemaker:{_REGION}:{_ACCOUNT}:notebook-instance/.+$")
KMS_KEY = re.compile(rf"^{_P}:kms:{_REGION}:{_ACCOUNT}:key/.+$")
S3_BUCKET = re.compile(rf"^{_P}:s3:::[^/]+$")
EC2_VPC = re.compile(rf"^{_P}:ec2:{_REGION}:{_ACCOUNT}:vpc/.+$")
EC2_FLOW_LOG = re.compile(rf"^{_P}:ec2:{_REGION}:{_ACCOUNT}:vpc-flow-log/.+$")
IAM_ROLE = re.compile(rf"^{_P}:iam::{_ACCOUNT}:role/.+$")
SQS_QUEUE = re.compile(rf"^{_P}:sqs:{_REGION}:{_ACCOUNT}:[^:/]+$")
SNS_TOPIC = re.compile(rf"^{_P}:sns:{_REGION}:{_ACCOUNT}:[^:/]+$")
GUARDDUTY_DETECTOR = re.compile(rf"^{_P}:guardduty:{_REGION}:{_ACCOUNT}:detector/.+$")
# Service-linked roles live under role/aws-service-role/<service principal>/ (IAM User Guide,
# using-service-linked-roles.html); GuardDuty's are scoped to its principals.
GUARDDUTY_SLR = re.compile(rf"^{_P}:iam::{_ACCOUNT}:role/aws-service-role/[^/]*guardduty\.amazonaws\.com/.+$")

# Actions with resource-level permissions: each resource type the action needs for our calls (every
# pattern must be granted at least once) -- and nothing else may be granted for it. KMS: an alias ARN in
# Resource governs only the alias operations, never access to the key it points to ("When an alias is
# the value of a resource element, the policy applies to the alias resource, not to any KMS key"),
# https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html -- so key/* only.
SCOPED: dict[str, tuple[re.Pattern[str], ...]] = {
    "sagemaker:DescribeNotebookInstance": (NOTEBOOK,),
    "sagemaker:ListTags": (NOTEBOOK,),
    "sagemaker:StopNotebookInstance": (NOTEBOOK,),
    "sagemaker:AddTags": (NOTEBOOK,),
    "sagemaker:StartNotebookInstance": (NOTEBOOK,),
    "sagemaker:UpdateNotebookInstance": (NOTEBOOK,),
    "guardduty:GetDetector": (GUARDDUTY_DETECTOR,),
    "guardduty:UpdateDetector": (GUARDDUTY_DETECTOR,),
    "iam:CreateServiceLinkedRole": (GUARDDUTY_SLR,),
    "sns:Publish": (SNS_TOPIC,),
    "kms:DescribeKey": (KMS_KEY,),
    "kms:GetKeyRotationStatus": (KMS_KEY,),
    "kms:ListResourceTags": (KMS_KEY,),
    "kms:EnableKeyRotation": (KMS_KEY,),
    "kms:GenerateDataKey": (KMS_KEY,),
    "kms:Decrypt": (KMS_KEY,),
    "s3:GetEncryptionConfiguration": (S3_BUCKET,),
    "s3:PutEncryptionConfiguration": (S3_BUCKET,),
    "s3:GetBucketPolicy": (S3_BUCKET,),
    "s3:PutBucketPolicy": (S3_BUCKET,),
    "s3:GetBucketTagging": (S3_BUCKET,),
    "s3:GetBucketLocation": (S3_BUCKET,),
    # SAR: CreateFlowLogs needs vpc-flow-log* and the monitored resource (vpc for our calls).
    "ec2:CreateFlowLogs": (EC2_VPC, EC2_FLOW_LOG),
    "ec2:CreateTags": (EC2_FLOW_LOG,),
    "iam:PassRole": (IAM_ROLE,),
    "sts:AssumeRole": (IAM_ROLE,),
    "sqs:SendMessage": (SQS_QUEUE,),
}
