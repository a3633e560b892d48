"""ml_guardrails.policy: the IAM policy grammar and the perimeter questions, table-driven, no mocks.

Policy documents marked "AWS docs" are the examples of these pages (bucket and organization ids replaced
by the test's own):
* S3 User Guide, Examples of Amazon S3 bucket policies, "Managing access based on HTTP or HTTPS requests"
  (Sid RestrictToTLSRequestsOnly): https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html
* S3 User Guide, Controlling access from VPC endpoints with bucket policies ("Access-to-specific-VPCE-only"):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies-vpc-endpoint.html
* IAM User Guide, AWS global condition context keys, aws:PrincipalOrgID (bucket policy allowing
  s3:PutObject to the organization) and aws:PrincipalOrgPaths (ForAnyValue:StringLike over OU paths):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
* IAM User Guide, Condition operators, ...IfExists ("If the key is not present, evaluate the condition
  element as true"): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
* AWS PrivateLink Guide, Control access to VPC endpoints using endpoint policies, "Default endpoint policy":
  https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html
* VPC User Guide, Gateway endpoints for Amazon S3, "Restrict access to a specific bucket":
  https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html
* aws-samples/data-perimeter-policy-examples, vpc_endpoint_policies/default_endpoint_policy.json.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.policy import (
    ConditionEntry,
    PolicyError,
    account_of,
    constrained_by,
    denies_insecure_transport,
    glob_covers_prefix,
    identity_perimeter_deny,
    is_default_full_access,
    labels,
    outside_principals,
    parse_policy,
    pins_principal_account,
    pins_principal_org,
    pins_principal_org_paths,
    pins_resource_org,
    pins_source_vpce,
    requires_aws_service,
)

ORG = "o-a1b2c3d4e5"
OTHER_ORG = "o-zz9y8x7w6v"
OWN = "123456789012"
OTHER = "111122223333"
BUCKET = "amzn-s3-demo-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"

# AWS docs: S3 example-bucket-policies.html, "Managing access based on HTTP or HTTPS requests".
AWS_DOC_TLS_ONLY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "RestrictToTLSRequestsOnly",
            "Action": "s3:*",
            "Effect": "Deny",
            "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Principal": "*",
        }
    ],
}
# AWS docs: IAM reference_policies_condition-keys.html, aws:PrincipalOrgID (a single statement object).
AWS_DOC_ORG_PUT: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": {
        "Sid": "AllowPutObject",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"{BUCKET_ARN}/*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": [ORG]}},
    },
}
# AWS docs: IAM reference_policies_condition-keys.html, aws:PrincipalOrgPaths.
AWS_DOC_ORG_PATHS: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "OuMembersRead",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
            "Condition": {
                "ForAnyValue:StringLike": {
                    "aws:PrincipalOrgPaths": [f"{ORG}/r-ab12/ou-ab12-11111111/ou-ab12-22222222/"]
                }
            },
        }
    ],
}
# AWS docs: S3 example-bucket-policies-vpc-endpoint.html, "Access-to-specific-VPCE-only" (a Deny).
AWS_DOC_VPCE_DENY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Id": "Policy1415115909152",
    "Statement": [
        {
            "Sid": "Access-to-specific-VPCE-only",
            "Principal": "*",
            "Action": "s3:*",
            "Effect": "Deny",
            "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
        }
    ],
}
# AWS docs: PrivateLink vpc-endpoints-access.html, default endpoint policy (no Version element).
AWS_DOC_DEFAULT_ENDPOINT: dict[str, Any] = {
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]
}
# AWS docs: vpc-endpoints-s3.html, "Restrict access to a specific bucket".
AWS_DOC_GATEWAY_ONE_BUCKET: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Access-to-specific-bucket-only",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Effect": "Allow",
            "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
        }
    ],
}
# aws-samples/data-perimeter-policy-examples vpc_endpoint_policies/default_endpoint_policy.json.
DATA_PERIMETER_ENDPOINT: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "AllowRequestsByOrgsIdentitiesToOrgsResources",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG, "aws:ResourceOrgID": ORG}},
        },
        {
            "Sid": "AllowRequestsByAWSServicePrincipals",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:PrincipalIsAWSService": "true"}},
        },
        {
            "Sid": "AllowRequestsByOrgsIdentitiesToAnyResources",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:PrincipalOrgID": ORG, "aws:PrincipalTag/dp:exclude:resource": "true"}
            },
        },
    ],
}


def statement(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    base["Resource"] = f"{BUCKET_ARN}/*"
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# ------------------------------------------------------------------------------------------ grammar
def test_single_statement_object_and_strings_or_lists() -> None:
    policy = parse_policy(json.dumps(AWS_DOC_ORG_PUT))
    (s,) = policy.statements
    assert s.label == "AllowPutObject" and s.is_allow and s.principal_is_everyone
    assert s.actions == ("s3:PutObject",) and s.resources == (f"{BUCKET_ARN}/*",)
    (entry,) = s.conditions
    assert (entry.base, entry.qualifier, entry.if_exists, entry.key, entry.values) == (
        "stringequals",
        None,
        False,
        "aws:principalorgid",
        (ORG,),
    )


def test_dict_input_no_version_and_labels_by_index() -> None:
    policy = parse_policy(AWS_DOC_DEFAULT_ENDPOINT)
    assert policy.version is None
    assert [s.label for s in policy.statements] == ["#0"]
    assert is_default_full_access(policy)


@pytest.mark.parametrize(
    ("operator", "base", "qualifier", "if_exists"),
    [
        ("StringEquals", "stringequals", None, False),
        ("StringNotEqualsIfExists", "stringnotequals", None, True),
        ("ForAnyValue:StringLike", "stringlike", "foranyvalue", False),
        ("ForAllValues:StringEqualsIfExists", "stringequals", "forallvalues", True),
        ("forallvalues:stringequals", "stringequals", "forallvalues", False),
        ("BoolIfExists", "bool", None, True),
        ("Null", "null", None, False),
    ],
)
def test_condition_operators(operator: str, base: str, qualifier: str | None, if_exists: bool) -> None:
    policy = parse_policy(doc(statement(Condition={operator: {"AWS:PrincipalOrgId": "x"}})))
    (entry,) = policy.statements[0].conditions
    assert (entry.base, entry.qualifier, entry.if_exists) == (base, qualifier, if_exists)
    assert entry.key == "aws:principalorgid"  # condition key names are case-insensitive


def test_values_json_scalars_become_text() -> None:
    policy = parse_policy(doc(statement(Condition={"Bool": {"aws:SecureTransport": False}})))
    assert policy.statements[0].conditions[0].values == ("false",)
    policy = parse_policy(doc(statement(Condition={"NumericLessThan": {"s3:TlsVersion": 1.2}})))
    assert policy.statements[0].conditions[0].values == ("1.2",)


def test_principal_shapes() -> None:
    s = parse_policy(
        doc(
            statement(
                Principal={
                    "AWS": ["arn:aws:iam::111122223333:root", "444455556666"],
                    "Service": "logging.s3.amazonaws.com",
                    "Federated": "cognito-identity.amazonaws.com",
                    "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
                }
            )
        )
    ).statements[0]
    assert s.principal is not None and not s.principal.everyone
    assert s.principal.aws == ("arn:aws:iam::111122223333:root", "444455556666")
    assert s.principal.service == ("logging.s3.amazonaws.com",)
    listed_star = parse_policy(doc(statement(Principal={"AWS": ["*", OWN]}))).statements[0]
    assert listed_star.principal_is_everyone


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ({"Version": "2012-10-17"}, "no Statement"),
        ({"Statement": []}, "non-empty list"),
        ({"Version": "2020-01-01", "Statement": [statement()]}, "Version"),
        (doc(statement(Effect="allow")), "Effect"),
        (doc(statement(Effect=None)), "Effect"),
        (doc(statement(Principal=None)), "neither Principal nor NotPrincipal"),
        (doc(statement(NotPrincipal={"AWS": OWN})), "both Principal and NotPrincipal"),
        (doc(statement(Action=None)), "neither Action nor NotAction"),
        (doc(statement(NotAction="s3:Delete*")), "both Action and NotAction"),
        (doc(statement(NotResource="x")), "both Resource and NotResource"),
        (doc(statement(Principal="arn:aws:iam::111122223333:root")), 'must be "*"'),
        (doc(statement(Principal={"Aws": "*"})), "unknown principal type"),
        (doc(statement(Principal={})), "empty"),
        (doc(statement(Action=[])), "empty"),
        (doc(statement(Action=[{"x": 1}])), "must hold strings"),
        (doc(statement(Condition=["StringEquals"])), "Condition must be an object"),
        (doc(statement(Condition={"StringEquals": "o-x"})), "non-empty object"),
        (doc(statement(Condition={"ForSomeValues:StringEquals": {"k": "v"}})), "set operator"),
        (doc(statement(Condition={"String Equals": {"k": "v"}})), "unreadable condition operator"),
        (doc(statement(Sid=7)), "Sid"),
        (doc(statement(Conditions={"StringEquals": {"aws:PrincipalOrgID": ORG}})), "unknown element"),
        (doc("not a statement"), "must be an object"),  # type: ignore[arg-type]
    ],
)
def test_malformed_documents_fail_closed(document: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        parse_policy(document if isinstance(document, str) else json.dumps(document))
    assert isinstance(caught.value, MalformedConfigurationItem)  # the engine's fail-closed path


# ----------------------------------------------------------------------------------------- principals
@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (OTHER, OTHER),
        (f"arn:aws:iam::{OTHER}:root", OTHER),
        (f"arn:aws:iam::{OTHER}:role/path/data-reader", OTHER),
        (f"arn:aws:sts::{OTHER}:assumed-role/r/session", OTHER),
        (f"arn:aws-us-gov:iam::{OWN}:user/u", OWN),
        ("AROAEXAMPLEID123456", None),
        ("12345", None),
    ],
)
def test_account_of(principal: str, expected: str | None) -> None:
    assert account_of(principal) == expected


@pytest.mark.parametrize(
    ("fields", "account", "outside"),
    [
        ({"Principal": "*"}, OWN, ("*",)),
        ({"Principal": {"AWS": "*"}}, OWN, ("*",)),
        ({"Principal": None, "NotPrincipal": {"AWS": f"arn:aws:iam::{OWN}:root"}}, OWN, ("*",)),
        ({"Principal": {"AWS": f"arn:aws:iam::{OWN}:root"}}, OWN, ()),
        ({"Principal": {"AWS": [OWN, f"arn:aws:iam::{OWN}:role/r"]}}, OWN, ()),
        ({"Principal": {"AWS": [OWN, f"arn:aws:iam::{OTHER}:root"]}}, OWN, (f"arn:aws:iam::{OTHER}:root",)),
        ({"Principal": {"AWS": "AROAEXAMPLEID123456"}}, OWN, ("AROAEXAMPLEID123456",)),
        ({"Principal": {"AWS": OWN}}, None, (OWN,)),  # account unknown: never taken as ours
        ({"Principal": {"Service": "logging.s3.amazonaws.com"}}, OWN, ()),
        (
            {"Principal": {"Federated": "cognito-identity.amazonaws.com"}},
            OWN,
            ("cognito-identity.amazonaws.com",),
        ),
        ({"Principal": {"Federated": f"arn:aws:iam::{OWN}:saml-provider/corp"}}, OWN, ()),
        ({"Principal": {"CanonicalUser": "79a59df9"}}, OWN, ("79a59df9",)),
    ],
)
def test_outside_principals(fields: dict[str, Any], account: str | None, outside: tuple[str, ...]) -> None:
    s = parse_policy(doc(statement(**fields))).statements[0]
    assert outside_principals(s, account) == outside


# --------------------------------------------------------------------------------------- constraints
def entry(operator: str, key: str, *values: str) -> ConditionEntry:
    policy = parse_policy(doc(statement(Condition={operator: {key: list(values)}})))
    return policy.statements[0].conditions[0]


@pytest.mark.parametrize(
    ("operator", "key", "values", "expected"),
    [
        ("StringEquals", "aws:PrincipalOrgID", (ORG,), True),
        ("StringEquals", "AWS:PRINCIPALORGID", (ORG,), True),
        ("StringEqualsIgnoreCase", "aws:PrincipalOrgID", (ORG.upper(),), True),
        ("StringLike", "aws:PrincipalOrgID", (ORG,), True),
        ("ForAnyValue:StringEquals", "aws:PrincipalOrgID", (ORG,), True),
        # a missing key passes IfExists: principals outside any organization get in
        ("StringEqualsIfExists", "aws:PrincipalOrgID", (ORG,), False),
        # ForAllValues over an absent key is true
        ("ForAllValues:StringEquals", "aws:PrincipalOrgID", (ORG,), False),
        ("StringLike", "aws:PrincipalOrgID", ("o-a1b2*",), False),
        ("StringLike", "aws:PrincipalOrgID", ("o-a1b2c3d4e?",), False),
        ("StringEquals", "aws:PrincipalOrgID", (ORG, OTHER_ORG), False),  # every value must be ours
        ("StringEquals", "aws:PrincipalOrgID", (OTHER_ORG,), False),
        ("StringNotEquals", "aws:PrincipalOrgID", (OTHER_ORG,), False),
        ("StringEquals", "aws:PrincipalOrgID", (), False),
        ("StringEquals", "aws:ResourceOrgID", (ORG,), False),
        ("StringEquals", "aws:PrincipalAccount", (OWN,), False),
    ],
)
def test_pins_principal_org(operator: str, key: str, values: tuple[str, ...], expected: bool) -> None:
    assert pins_principal_org(entry(operator, key, *values), ORG) is expected


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("ForAnyValue:StringLike", (f"{ORG}/r-ab12/ou-ab12-11111111/*",), True),
        ("ForAnyValue:StringEquals", (f"{ORG}/r-ab12/ou-ab12-11111111/",), True),
        ("ForAnyValue:StringLike", (f"{ORG}/*",), True),
        ("ForAnyValue:StringLike", ("o-a1b2*/r-ab12/*",), False),
        ("ForAnyValue:StringLike", (f"{ORG}*",), False),  # could be o-a1b2c3d4e5xyz (another org)
        ("ForAnyValue:StringLike", (f"{ORG}/*", f"{OTHER_ORG}/*"), False),
        ("ForAnyValue:StringEquals", (f"{ORG}/*",), False),  # StringEquals: the * is literal, but unclear
        ("ForAnyValue:StringLikeIfExists", (f"{ORG}/*",), False),
        ("ForAllValues:StringLike", (f"{ORG}/*",), False),
        ("StringLike", (f"{ORG}/*",), False),  # plain operator on a multivalued key: not accepted
    ],
)
def test_pins_principal_org_paths(operator: str, values: tuple[str, ...], expected: bool) -> None:
    assert pins_principal_org_paths(entry(operator, "aws:PrincipalOrgPaths", *values), ORG) is expected


@pytest.mark.parametrize(
    ("check", "operator", "key", "values", "expected"),
    [
        (pins_resource_org, "StringEquals", "aws:ResourceOrgID", (ORG,), True),
        (pins_resource_org, "StringEqualsIfExists", "aws:ResourceOrgID", (ORG,), False),
        (pins_resource_org, "StringEquals", "aws:ResourceOrgID", ("${aws:PrincipalOrgID}",), False),
        (pins_source_vpce, "StringEquals", "aws:SourceVpce", ("vpce-1a2b3c4d",), True),
        (
            pins_source_vpce,
            "StringEquals",
            "aws:sourcevpce",
            ("vpce-1a2b3c4d", "vpce-0123456789abcdef0"),
            True,
        ),
        (pins_source_vpce, "StringLike", "aws:SourceVpce", ("vpce-*",), False),
        (pins_source_vpce, "StringNotEquals", "aws:SourceVpce", ("vpce-1a2b3c4d",), False),
        (pins_source_vpce, "StringEqualsIfExists", "aws:SourceVpce", ("vpce-1a2b3c4d",), False),
        (pins_principal_account, "StringEquals", "aws:PrincipalAccount", (OWN,), True),
        (pins_principal_account, "StringEquals", "aws:PrincipalAccount", (OWN, OTHER), False),
        (pins_principal_account, "StringLike", "aws:PrincipalAccount", ("1234*",), False),
        (requires_aws_service, "Bool", "aws:PrincipalIsAWSService", ("true",), True),
        (requires_aws_service, "BoolIfExists", "aws:PrincipalIsAWSService", ("true",), False),
        (requires_aws_service, "Bool", "aws:PrincipalIsAWSService", ("false",), False),
    ],
)
def test_other_constraints(
    check: Any, operator: str, key: str, values: tuple[str, ...], expected: bool
) -> None:
    e = entry(operator, key, *values)
    if check is pins_resource_org:
        assert check(e, ORG) is expected
    elif check is pins_principal_account:
        assert check(e, OWN) is expected and not check(e, None)
    else:
        assert check(e) is expected


def test_one_constraining_entry_constrains_the_statement() -> None:
    """Condition entries are ANDed: one pin is enough, whatever else the block holds."""
    s = parse_policy(AWS_DOC_ORG_PATHS).statements[0]
    assert constrained_by(s, [lambda c: pins_principal_org_paths(c, ORG)])
    mixed = parse_policy(
        doc(
            statement(
                Condition={
                    "StringEquals": {"aws:PrincipalOrgID": ORG},
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                }
            )
        )
    ).statements[0]
    assert constrained_by(mixed, [lambda c: pins_principal_org(c, ORG)])
    assert not constrained_by(parse_policy(AWS_DOC_GATEWAY_ONE_BUCKET).statements[0], [requires_aws_service])


# ----------------------------------------------------------------------------------------------- TLS
def tls_deny(**fields: Any) -> dict[str, Any]:
    base = dict(AWS_DOC_TLS_ONLY["Statement"][0])
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (AWS_DOC_TLS_ONLY, True),
        (doc(tls_deny(Condition={"BoolIfExists": {"aws:SecureTransport": "false"}})), True),
        (doc(tls_deny(Condition={"Bool": {"AWS:SECURETRANSPORT": False}})), True),
        (doc(tls_deny(Action="*")), True),
        (doc(tls_deny(Action=["s3:GetObject", "S3:*"])), True),
        (doc(tls_deny(Principal={"AWS": "*"})), True),
        (doc(tls_deny(Resource=f"{BUCKET_ARN}/*"), tls_deny(Resource=BUCKET_ARN)), True),  # together
        (doc(tls_deny(Resource="*")), True),
        (doc(tls_deny(Resource=f"{BUCKET_ARN}/*")), False),  # CIS's form misses the bucket itself
        (doc(tls_deny(Resource=BUCKET_ARN)), False),
        (doc(tls_deny(Action="s3:GetObject")), False),
        (doc(tls_deny(Principal={"AWS": f"arn:aws:iam::{OTHER}:root"})), False),
        (doc(tls_deny(Effect="Allow")), False),
        (doc(tls_deny(Condition={"Bool": {"aws:SecureTransport": "true"}})), False),
        (doc(tls_deny(Condition=None)), False),  # denies everything, not a TLS rule
        (
            doc(
                tls_deny(
                    Condition={
                        "Bool": {"aws:SecureTransport": "false"},
                        "StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"},
                    }
                )
            ),
            False,  # narrowed: plain HTTP through the endpoint is allowed
        ),
        (AWS_DOC_VPCE_DENY, False),
        (AWS_DOC_ORG_PUT, False),
    ],
)
def test_denies_insecure_transport(document: dict[str, Any], expected: bool) -> None:
    assert denies_insecure_transport(parse_policy(document), BUCKET_ARN) is expected


# ------------------------------------------------------------------------------- identity perimeter
def perimeter(**condition: Any) -> dict[str, Any]:
    return tls_deny(Sid="EnforceIdentityPerimeter", Condition=condition)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (doc(perimeter(StringNotEqualsIfExists={"aws:PrincipalOrgID": ORG})), True),
        (doc(perimeter(StringNotEquals={"aws:PrincipalOrgID": ORG})), True),
        (
            doc(
                perimeter(
                    StringNotEqualsIfExists={"aws:PrincipalOrgID": ORG},
                    BoolIfExists={"aws:PrincipalIsAWSService": "false"},
                )
            ),
            True,
        ),
        (
            doc(
                perimeter(
                    StringNotEqualsIfExists={"aws:PrincipalOrgID": ORG, "aws:PrincipalAccount": [OTHER]},
                )
            ),
            False,  # excepts another account
        ),
        (doc(perimeter(StringNotEquals={"aws:PrincipalOrgID": OTHER_ORG})), False),
        (doc(perimeter(StringNotEquals={"aws:PrincipalOrgID": [ORG, OTHER_ORG]})), False),
    ],
)
def test_identity_perimeter_deny(document: dict[str, Any], expected: bool) -> None:
    assert (identity_perimeter_deny(parse_policy(document), BUCKET_ARN, ORG) is not None) is expected


# ------------------------------------------------------------------------------------------- helpers
def test_default_full_access_only_for_the_default() -> None:
    assert is_default_full_access(parse_policy(AWS_DOC_DEFAULT_ENDPOINT))
    assert not is_default_full_access(parse_policy(DATA_PERIMETER_ENDPOINT))
    assert not is_default_full_access(parse_policy(AWS_DOC_GATEWAY_ONE_BUCKET))


def test_labels_are_bounded() -> None:
    statements = parse_policy(doc(*[statement(Sid=f"S{i}") for i in range(6)] + [statement()])).statements
    assert labels(statements, 3) == "S0, S1, S2 +4 more"
    assert labels(statements[-1:]) == "#6"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (f"{BUCKET_ARN}/*", True),
        ("arn:aws:s3:::*", True),
        ("*", True),
        (f"{BUCKET_ARN}/?*", True),
        (f"{BUCKET_ARN}/data/*", False),
        (BUCKET_ARN, False),
        ("arn:aws:s3:::amzn-s3-demo-bucket-2/*", False),
    ],
)
def test_object_coverage(pattern: str, expected: bool) -> None:
    assert glob_covers_prefix(pattern, BUCKET_ARN + "/") is expected
