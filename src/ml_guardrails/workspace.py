"""Launch the Service Catalog product ``service-catalog/secure-ml-workspace.yaml`` into an account with boto3.

This is a small, strict stand-in for CloudFormation, used where CloudFormation is not available (the
embedded moto account of ``ml-guardrails demo`` and the proof in ``tests/test_service_catalog.py``). Every
value comes from the template itself: its parameters (defaults, ``AllowedPattern``/``AllowedValues``/
``MinValue``/``MaxValue`` checked as CloudFormation checks them), its resources in dependency order and
their properties with ``Ref``/``Fn::GetAtt``/``Fn::Sub``/``Fn::Select``/``Fn::GetAZs``/``Fn::Join``
resolved. A resource type or intrinsic it does not know is an error, never skipped: a product change
that this launcher cannot reproduce fails loudly instead of launching something else.

Why not moto's CloudFormation: moto 5 parses these types but drops the properties our rules judge. Its
``AWS::SageMaker::NotebookInstance`` keeps only ``InstanceType`` and ``RoleArn`` (no ``SubnetId``,
``DirectInternetAccess``, ``RootAccess``, ``KmsKeyId``), so the notebook would launch with direct internet
access, and its ``AWS::KMS::Key`` ignores ``RotationPeriodInDays``. Calling the APIs with the template's
own properties is the faithful path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from ml_guardrails import catalog

if TYPE_CHECKING:
    import boto3

TEMPLATE_NAME = "secure-ml-workspace.yaml"
_NO_VALUE = object()


class WorkspaceTemplateError(ValueError):
    """The template uses something this launcher cannot reproduce, or a parameter is invalid."""


def template_path() -> Path:
    """The product template: ``service-catalog/`` beside ``rules/`` (checkout or packaged data)."""
    return catalog.data_dir("rules").parent / "service-catalog" / TEMPLATE_NAME


# ---- the template, read with CloudFormation's short-form tags ----


# A SafeLoader of our own (adding constructors to SafeLoader itself would change every caller's YAML):
# ``!Ref x`` becomes ``{"Ref": x}`` and ``!Fn x`` becomes ``{"Fn::Fn": x}``.
_CfnLoader: Any = type("_CfnLoader", (yaml.SafeLoader,), {})


def _construct(tag: str) -> Callable[[Any, Any], Any]:
    def build(loader: Any, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {"Ref": value} if tag == "Ref" else {f"Fn::{tag}": value}

    return build


for _tag in ("Ref", "GetAtt", "Sub", "Select", "GetAZs", "Join", "If", "Equals", "Not", "And", "Or", "Split"):
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The template as plain data, intrinsic functions in their long form."""
    with open(path or template_path(), encoding="utf-8") as handle:
        # _CfnLoader is a SafeLoader subclass that adds only the CloudFormation tags: no object construction.
        doc = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506  # nosec B506
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise WorkspaceTemplateError(f"{path or template_path()}: not a CloudFormation template")
    return doc


def resolve_parameters(template: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, str]:
    """Parameter values as CloudFormation would accept them: defaults filled, constraints checked."""
    declared: dict[str, Any] = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise WorkspaceTemplateError(f"unknown parameter {unknown[0]}; known: {', '.join(sorted(declared))}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in given:
            value = str(given[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise WorkspaceTemplateError(f"parameter {name} is required")
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise WorkspaceTemplateError(f"parameter {name}={value!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise WorkspaceTemplateError(
                f"parameter {name}={value!r}: {spec.get('ConstraintDescription', spec['AllowedPattern'])}"
            )
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise WorkspaceTemplateError(f"parameter {name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise WorkspaceTemplateError(f"parameter {name}={value} is below {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise WorkspaceTemplateError(f"parameter {name}={value} is above {spec['MaxValue']}")
        values[name] = value
    return values


# ---- intrinsic functions ----


def _references(value: Any) -> set[str]:
    """Names a value refers to through Ref, GetAtt or Sub (parameters and pseudo parameters included)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found.add(str(inner))
            elif key == "Fn::GetAtt":
                found.add(str(inner[0]))
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found.update(m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                if not isinstance(inner, str):
                    found.update(_references(inner[1]))
            else:
                found.update(_references(inner))
    elif isinstance(value, list):
        for inner in value:
            found.update(_references(inner))
    return found


class _Stack:
    """The state of one launch: parameters, pseudo parameters, created resources and their attributes."""

    def __init__(self, session: boto3.Session, name: str, parameters: dict[str, str]) -> None:
        self.session = session
        self.name = name
        self.region = session.region_name or "us-east-1"
        self.account = session.client("sts").get_caller_identity()["Account"]
        self.values: dict[str, Any] = {
            **parameters,
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::StackName": name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        self.attributes: dict[str, dict[str, Any]] = {}

    def physical_name(self, logical_id: str, limit: int = 64) -> str:
        """CloudFormation's generated name shape: ``stack-LogicalId-SUFFIX``, cut to ``limit``."""
        return f"{self.name}-{logical_id}"[:limit]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(i) for i in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            key, arg = next(iter(value.items()))
            if key == "Ref":
                if arg not in self.values:
                    raise WorkspaceTemplateError(f"Ref to unknown or not yet created {arg}")
                return self.values[arg]
            if key == "Fn::GetAtt":
                return self._attribute(str(arg[0]), str(arg[1]))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::GetAZs":
                zones = self.session.client("ec2").describe_availability_zones()["AvailabilityZones"]
                return sorted(z["ZoneName"] for z in zones)
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if key.startswith("Fn::") or key == "Condition":
                raise WorkspaceTemplateError(f"intrinsic {key} is not supported by this launcher")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not _NO_VALUE}

    def _attribute(self, logical_id: str, name: str) -> Any:
        try:
            return self.attributes[logical_id][name]
        except KeyError:
            raise WorkspaceTemplateError(f"GetAtt {logical_id}.{name} is not available") from None

    def _sub(self, arg: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in local:
                return str(local[token])
            if "." in token and token.split(".", 1)[0] in self.attributes:
                logical_id, name = token.split(".", 1)
                return str(self._attribute(logical_id, name))
            if token not in self.values:
                raise WorkspaceTemplateError(f"Sub references unknown {token}")
            return str(self.values[token])

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))


def _order(resources: Mapping[str, Any]) -> list[str]:
    """Resources in an order where each comes after everything it refers to or DependsOn."""
    deps: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        refs = _references(resource.get("Properties", {})) | set(
            [depends] if isinstance(depends, str) else depends
        )
        deps[logical_id] = {r for r in refs if r in resources}
    ordered: list[str] = []
    while len(ordered) < len(resources):
        ready = sorted(r for r in resources if r not in ordered and deps[r] <= set(ordered))
        if not ready:
            stuck = sorted(set(resources) - set(ordered))
            raise WorkspaceTemplateError(f"circular dependency among {', '.join(stuck)}")
        ordered.extend(ready)
    return ordered


# ---- one creator per resource type: the template's properties, passed to the API that takes them ----


def _tags(props: Mapping[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: str(t["Key"]), value: str(t["Value"])} for t in props.get("Tags", [])]


def _kms_key(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    kms: Any = stack.session.client("kms")
    meta = kms.create_key(
        Policy=json.dumps(props["KeyPolicy"]),
        Description=props.get("Description", ""),
        KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
        KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
        Tags=_tags(props, "TagKey", "TagValue"),
    )["KeyMetadata"]
    if str(props.get("EnableKeyRotation", False)).lower() == "true":
        rotation: dict[str, Any] = {}
        if "RotationPeriodInDays" in props:
            rotation["RotationPeriodInDays"] = int(props["RotationPeriodInDays"])
        kms.enable_key_rotation(KeyId=meta["KeyId"], **rotation)
    return {"Ref": meta["KeyId"], "Arn": meta["Arn"], "KeyId": meta["KeyId"]}


def _kms_alias(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    stack.session.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return {"Ref": props["AliasName"]}


def _vpc(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    ec2: Any = stack.session.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock=props["CidrBlock"], TagSpecifications=[{"ResourceType": "vpc", "Tags": _tags(props)}]
    )["Vpc"]
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        if attribute in props:
            value = str(props[attribute]).lower() == "true"
            ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], **{attribute: {"Value": value}})
    return {"Ref": vpc["VpcId"], "VpcId": vpc["VpcId"], "CidrBlock": vpc["CidrBlock"]}


def _subnet(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    ec2: Any = stack.session.client("ec2")
    subnet = ec2.create_subnet(
        VpcId=props["VpcId"],
        CidrBlock=props["CidrBlock"],
        AvailabilityZone=props["AvailabilityZone"],
        TagSpecifications=[{"ResourceType": "subnet", "Tags": _tags(props)}],
    )["Subnet"]
    if str(props.get("MapPublicIpOnLaunch", False)).lower() == "true":
        ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    return {"Ref": subnet["SubnetId"], "SubnetId": subnet["SubnetId"]}


def _route_table(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    ec2: Any = stack.session.client("ec2")
    table = ec2.create_route_table(
        VpcId=props["VpcId"], TagSpecifications=[{"ResourceType": "route-table", "Tags": _tags(props)}]
    )["RouteTable"]
    return {"Ref": table["RouteTableId"], "RouteTableId": table["RouteTableId"]}


def _association(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    done = stack.session.client("ec2").associate_route_table(
        RouteTableId=props["RouteTableId"], SubnetId=props["SubnetId"]
    )
    return {"Ref": done["AssociationId"]}


def _internet_gateway(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    ec2: Any = stack.session.client("ec2")
    gateway = ec2.create_internet_gateway(
        TagSpecifications=[{"ResourceType": "internet-gateway", "Tags": _tags(props)}]
    )["InternetGateway"]
    return {"Ref": gateway["InternetGatewayId"], "InternetGatewayId": gateway["InternetGatewayId"]}


def _gateway_attachment(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    if "InternetGatewayId" not in props:
        raise WorkspaceTemplateError(f"{logical_id}: only internet gateway attachments are supported")
    stack.session.client("ec2").attach_internet_gateway(
        InternetGatewayId=props["InternetGatewayId"], VpcId=props["VpcId"]
    )
    return {"Ref": stack.physical_name(logical_id)}


def _route(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    args = {
        k: props[k]
        for k in (
            "RouteTableId",
            "DestinationCidrBlock",
            "DestinationIpv6CidrBlock",
            "GatewayId",
            "NatGatewayId",
            "EgressOnlyInternetGatewayId",
            "TransitGatewayId",
            "VpcEndpointId",
        )
        if k in props
    }
    stack.session.client("ec2").create_route(**args)
    return {"Ref": stack.physical_name(logical_id)}


def _permission(rule: Mapping[str, Any], peer: str) -> dict[str, Any]:
    """One SecurityGroupIngress/Egress entry as an EC2 IpPermission (``peer``: the CIDR property)."""
    permission: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
    if "FromPort" in rule:
        permission["FromPort"] = int(rule["FromPort"])
        permission["ToPort"] = int(rule["ToPort"])
    description = {"Description": rule["Description"]} if "Description" in rule else {}
    if peer in rule:
        permission["IpRanges"] = [{"CidrIp": rule[peer], **description}]
    elif "DestinationPrefixListId" in rule or "SourcePrefixListId" in rule:
        prefix = rule.get("DestinationPrefixListId") or rule["SourcePrefixListId"]
        permission["PrefixListIds"] = [{"PrefixListId": prefix, **description}]
    else:
        raise WorkspaceTemplateError(f"security group rule {dict(rule)} has no peer this launcher supports")
    return permission


def _security_group(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    ec2: Any = stack.session.client("ec2")
    group_id = ec2.create_security_group(
        GroupName=stack.physical_name(logical_id, 255),
        Description=props["GroupDescription"],
        VpcId=props["VpcId"],
        TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(props)}],
    )["GroupId"]
    if props.get("SecurityGroupIngress"):
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[_permission(r, "CidrIp") for r in props["SecurityGroupIngress"]]
        )
    if "SecurityGroupEgress" in props:
        # CloudFormation replaces the default allow-all egress rule when egress rules are declared.
        ec2.revoke_security_group_egress(
            GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
        ec2.authorize_security_group_egress(
            GroupId=group_id, IpPermissions=[_permission(r, "CidrIp") for r in props["SecurityGroupEgress"]]
        )
    return {"Ref": group_id, "GroupId": group_id}


def _vpc_endpoint(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {
        "VpcId": props["VpcId"],
        "ServiceName": props["ServiceName"],
        "VpcEndpointType": props.get("VpcEndpointType", "Gateway"),
    }
    if "PolicyDocument" in props:
        args["PolicyDocument"] = json.dumps(props["PolicyDocument"])
    for key in ("RouteTableIds", "SubnetIds", "SecurityGroupIds"):
        if key in props:
            args[key] = props[key]
    if "PrivateDnsEnabled" in props:
        args["PrivateDnsEnabled"] = str(props["PrivateDnsEnabled"]).lower() == "true"
    endpoint = stack.session.client("ec2").create_vpc_endpoint(**args)["VpcEndpoint"]
    return {"Ref": endpoint["VpcEndpointId"], "Id": endpoint["VpcEndpointId"]}


def _log_group(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    logs: Any = stack.session.client("logs")
    name = props.get("LogGroupName") or stack.physical_name(logical_id, 512)
    args: dict[str, Any] = {"logGroupName": name}
    if "KmsKeyId" in props:
        args["kmsKeyId"] = props["KmsKeyId"]
    logs.create_log_group(**args)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    # CloudFormation's Arn attribute of a log group ends in ":*" (it covers the group's streams).
    return {"Ref": name, "Arn": f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{name}:*"}


def _role(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    iam: Any = stack.session.client("iam")
    name = props.get("RoleName") or stack.physical_name(logical_id)
    args: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
        "Tags": _tags(props),
    }
    if "Description" in props:
        args["Description"] = props["Description"]
    role = iam.create_role(**args)["Role"]
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    return {"Ref": name, "Arn": role["Arn"], "RoleId": role["RoleId"]}


def _policy(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    iam: Any = stack.session.client("iam")
    if props.get("Users") or props.get("Groups"):
        raise WorkspaceTemplateError(f"{logical_id}: only Roles are supported for AWS::IAM::Policy")
    for role in props["Roles"]:
        iam.put_role_policy(
            RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=json.dumps(props["PolicyDocument"])
        )
    return {"Ref": stack.physical_name(logical_id)}


def _flow_log(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {
        "ResourceIds": [props["ResourceId"]],
        "ResourceType": props["ResourceType"],
        "TrafficType": props["TrafficType"],
        "LogDestinationType": props.get("LogDestinationType", "cloud-watch-logs"),
    }
    for key in ("LogGroupName", "LogDestination", "DeliverLogsPermissionArn", "LogFormat"):
        if key in props:
            args[key] = props[key]
    if "MaxAggregationInterval" in props:
        args["MaxAggregationInterval"] = int(props["MaxAggregationInterval"])
    done = stack.session.client("ec2").create_flow_logs(**args)
    if done.get("Unsuccessful") or not done.get("FlowLogIds"):
        raise WorkspaceTemplateError(f"{logical_id}: CreateFlowLogs failed: {done.get('Unsuccessful')}")
    return {"Ref": done["FlowLogIds"][0], "Id": done["FlowLogIds"][0]}


def _bucket(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    s3: Any = stack.session.client("s3")
    name = props.get("BucketName") or stack.physical_name(logical_id, 63).lower()
    create: dict[str, Any] = {"Bucket": name}
    if stack.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": stack.region}
    s3.create_bucket(**create)
    if "BucketEncryption" in props:
        rules = [
            {
                # CloudFormation spells it ServerSideEncryptionByDefault; the S3 API, ApplyServerSide...
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                **(
                    {"BucketKeyEnabled": str(rule["BucketKeyEnabled"]).lower() == "true"}
                    if "BucketKeyEnabled" in rule
                    else {}
                ),
            }
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        block = {k: str(v).lower() == "true" for k, v in props["PublicAccessBlockConfiguration"].items()}
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(props)})
    return {"Ref": name, "Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}


def _bucket_policy(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    stack.session.client("s3").put_bucket_policy(
        Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"])
    )
    return {"Ref": props["Bucket"]}


def _notebook(stack: _Stack, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
    name = props.get("NotebookInstanceName") or stack.physical_name(logical_id, 63)
    args: dict[str, Any] = {"NotebookInstanceName": name, "Tags": _tags(props)}
    for key in (
        "InstanceType",
        "RoleArn",
        "SubnetId",
        "SecurityGroupIds",
        "DirectInternetAccess",
        "RootAccess",
        "KmsKeyId",
        "InstanceMetadataServiceConfiguration",
        "LifecycleConfigName",
        "PlatformIdentifier",
    ):
        if key in props:
            args[key] = props[key]
    if "VolumeSizeInGB" in props:
        args["VolumeSizeInGB"] = int(props["VolumeSizeInGB"])
    arn = stack.session.client("sagemaker").create_notebook_instance(**args)["NotebookInstanceArn"]
    # Ref of AWS::SageMaker::NotebookInstance is its ARN.
    return {"Ref": arn, "NotebookInstanceName": name}


CREATORS: dict[str, Callable[[_Stack, str, dict[str, Any]], dict[str, Any]]] = {
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::EC2::VPC": _vpc,
    "AWS::EC2::Subnet": _subnet,
    "AWS::EC2::RouteTable": _route_table,
    "AWS::EC2::SubnetRouteTableAssociation": _association,
    "AWS::EC2::InternetGateway": _internet_gateway,
    "AWS::EC2::VPCGatewayAttachment": _gateway_attachment,
    "AWS::EC2::Route": _route,
    "AWS::EC2::SecurityGroup": _security_group,
    "AWS::EC2::VPCEndpoint": _vpc_endpoint,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::EC2::FlowLog": _flow_log,
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SageMaker::NotebookInstance": _notebook,
}


def launch_workspace(
    session: boto3.Session,
    *,
    template: Mapping[str, Any] | None = None,
    stack_name: str = "SC-ml-workspace",
    **params: Any,
) -> dict[str, Any]:
    """Create the product's resources in ``session``'s account and region; return what was created.

    ``params`` are the product's parameters (``WorkspaceName`` and ``OrganizationId`` are required);
    ``template`` overrides the product template (the tests launch broken variants of it). Returns
    ``{"StackName", "Parameters", "Resources": {logical id: {"Type", "PhysicalResourceId", attributes}},
    "Outputs": {name: value}}``.
    """
    doc = dict(template) if template is not None else load_template()
    if doc.get("Conditions"):
        raise WorkspaceTemplateError("Conditions are not supported by this launcher")
    resources: dict[str, Any] = doc["Resources"]
    stack = _Stack(session, stack_name, resolve_parameters(doc, params))
    for logical_id in _order(resources):
        resource = resources[logical_id]
        kind = resource.get("Type")
        creator = CREATORS.get(str(kind))
        if creator is None:
            raise WorkspaceTemplateError(
                f"{logical_id}: resource type {kind} is not supported by this launcher"
            )
        props = stack.resolve(resource.get("Properties", {}))
        attributes = creator(stack, logical_id, props)
        stack.attributes[logical_id] = attributes
        stack.values[logical_id] = attributes["Ref"]
    outputs = {name: stack.resolve(out["Value"]) for name, out in doc.get("Outputs", {}).items()}
    return {
        "StackName": stack_name,
        "Parameters": {k: v for k, v in stack.values.items() if k in doc.get("Parameters", {})},
        "Resources": {
            logical_id: {"Type": str(resources[logical_id]["Type"]), "PhysicalResourceId": attrs["Ref"]}
            | attrs
            for logical_id, attrs in stack.attributes.items()
        },
        "Outputs": outputs,
    }


__all__ = [
    "WorkspaceTemplateError",
    "launch_workspace",
    "load_template",
    "resolve_parameters",
    "template_path",
]
