"""The fuzz harnesses' shared vocabulary and the harnesses of the rules added after the first four.

``tests/test_fuzz_rules.py`` runs every harness through the same properties (its module docstring says
which). This module holds what a harness is made of -- the tolerant readers the oracles use, API answers,
needed fields, baselines -- and the harnesses of SAGEMAKER_NOTEBOOK_HARDENED, S3_BUCKET_POLICY_ORG_ONLY,
VPC_ENDPOINT_POLICY_ORG_ONLY and RDS_STORAGE_ENCRYPTED_WITH_CMK. Each oracle is written from the rule's
docstring and the README's section on it ("Rules and parameters"), not from the rule's code: it states
what must hold for COMPLIANT to be possible. The two policy rules also get *policy edits*: the policy
document is parsed and rewritten the way people get it wrong (principals, operators, condition keys and
values, effects, actions, resources, statements added or dropped) before the generic mutations, which
only see the policy as an opaque string.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from hypothesis import strategies as st

from ml_guardrails.catalog import discover
from ml_guardrails.testing import ACCOUNT_ID
from tests.strategies import BOOL_STRINGS, Path, mutated, valid_value

FIXTURES = FsPath(__file__).resolve().parent / "fixtures" / "ci"
SPECS = {spec.name: spec for spec in discover()}


def load_fixture(name: str) -> dict[str, Any]:
    item: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return item


# --------------------------------------------------------------------------------- tolerant readers
# The oracles read items as the README documents AWS delivers them: objects may arrive as JSON strings,
# keys match case-insensitively, booleans may be "true"/"false" strings. BAD marks an unreadable value.
BAD = object()


def o_get(mapping: Any, *names: str) -> Any:
    """The first of ``names`` present (exact, then case-insensitive), else None."""
    if not isinstance(mapping, Mapping):
        return None
    for name in names:
        if name in mapping:
            return mapping[name]
    lowered = {k.lower(): k for k in mapping if isinstance(k, str)}
    for name in names:
        if name.lower() in lowered:
            return mapping[lowered[name.lower()]]
    return None


def o_json(value: Any, opener: str) -> Any:
    if isinstance(value, str) and value.strip()[:1] == opener:
        try:
            return json.loads(value)
        except ValueError:
            return BAD
    return value


def o_obj(value: Any) -> Any:
    value = o_json(value, "{")
    return value if isinstance(value, Mapping) else BAD


def o_list(value: Any) -> Any:
    value = o_json(value, "[")
    if value is None:
        return []
    return value if isinstance(value, list) else BAD


def o_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in BOOL_STRINGS:
        return value.strip().lower() == "true"
    return None


def o_configuration(ci: Mapping[str, Any]) -> Any:
    raw = ci.get("configuration")
    return {} if raw is None else o_obj(raw)


def o_supplementary(ci: Mapping[str, Any], name: str) -> Any:
    raw = ci.get("supplementaryConfiguration")
    supp = o_obj(raw) if raw else {}
    return BAD if supp is BAD else o_get(supp, name)


# -------------------------------------------------------------------------------------- API answers
@dataclass(frozen=True)
class Answer:
    """What one API operation answers in one example: ``kind`` "ok" (``response``, for calls whose
    parameter ``KeyId`` is in ``key_ids`` when given) or an error code."""

    kind: str
    response: Mapping[str, Any] = field(default_factory=dict)
    key_ids: frozenset[str] | None = None

    def ok_for(self, key_id: str | None = None) -> Mapping[str, Any] | None:
        if self.kind != "ok":
            return None
        if self.key_ids is not None and key_id not in self.key_ids:
            return None
        return self.response


Answers = dict[str, Answer]


# ------------------------------------------------------------------------------------------ harness
@dataclass(frozen=True)
class Needed:
    """A field the decision needs. ``target`` "ci" or an API operation; ``paths`` alternatives that are
    deleted together (KeySpec and its legacy name); ``valid`` the values that may still be COMPLIANT
    (None: any value of the right ``kind``); ``delete_breaks`` False when absence has a documented
    meaning that may still be COMPLIANT."""

    name: str
    target: str
    paths: tuple[Path, ...]
    kind: str  # "str", "bool", "int", "object", "list"
    valid: tuple[str, ...] | None = None
    delete_breaks: bool = True
    int_range: tuple[int, int] | None = None
    normalise: Callable[[str], str] = str.strip  # the leniency the reader documents for this field


@dataclass(frozen=True)
class Baseline:
    """A COMPLIANT starting point: a CI fixture (``drop``: paths removed from it, so the rule must read
    them from the API), the rule's parameters and the API's answers."""

    fixture: str
    params: Mapping[str, Any]
    answers: Answers
    drop: tuple[Path, ...] = ()

    def item(self) -> dict[str, Any]:
        item = load_fixture(self.fixture)
        for path in self.drop:
            parent: Any = item
            for step in path[:-1]:
                parent = parent[step]
            del parent[path[-1]]
        return item


@dataclass(frozen=True)
class Harness:
    rule: str
    errors: Mapping[str, tuple[str, ...]]  # API operation -> error codes an example may answer
    fallback: Mapping[str, str]
    answers: Callable[[Mapping[str, Any]], st.SearchStrategy[Answers]]  # from the base item
    params: st.SearchStrategy[dict[str, Any]]
    may_comply: Callable[[Mapping[str, Any], Any, Answers], str | None]  # None, or why COMPLIANT is wrong
    baselines: tuple[Baseline, ...]
    needed: tuple[Needed, ...]
    # Domain-aware edits of a fixture before the generic mutations: (edited item, what was done).
    edit: Callable[[Mapping[str, Any]], st.SearchStrategy[tuple[dict[str, Any], str]]] | None = None
    # Parameters every event carries (a required parameter, e.g. OrganizationId): also in the envelope
    # and out-of-scope tests, which otherwise send the engine's parameters only.
    required: Mapping[str, str] = field(default_factory=dict)

    @property
    def focus(self) -> tuple[Path, ...]:
        envelope: tuple[Path, ...] = (
            ("configuration",),
            ("supplementaryConfiguration",),
            ("resourceId",),
            ("resourceType",),
            ("configurationItemStatus",),
            ("configurationItemCaptureTime",),
            ("tags",),
        )
        return envelope + tuple(p for n in self.needed if n.target == "ci" for p in n.paths)


def generic_params(rule: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid values for a random subset of the rule's own parameters (ExemptionTagKey included)."""
    specs = SPECS[rule].rule_class().parameter_specs()
    return st.fixed_dictionaries({}, optional={s.name: valid_value(s) for s in specs})


def strings_of(value: Any) -> list[str] | None:
    """A policy field's values (string or list; JSON booleans and numbers as IAM reads them), else None."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int | float | str):
            out.append(str(item))
        else:
            return None
    return out


def configuration_text(base: Mapping[str, Any], *names: str) -> str | None:
    """A string field of an item's configuration (None when absent or not a string)."""
    cfg = o_configuration(base)
    value = o_get(cfg, *names) if cfg is not BAD else None
    return value if isinstance(value, str) else None


_AWS_ALIAS = re.compile(r"^(?:arn:[^:]+:kms:[^:]*:\d{12}:)?alias/aws/", re.IGNORECASE)
_ANY_ALIAS = re.compile(r"^(?:arn:[^:]+:kms:[^:]*:\d{12}:)?alias/", re.IGNORECASE)
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/\S+$")
_BARE_KEY_ID = re.compile(
    r"^(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.IGNORECASE
)
_NOTEBOOK_ARN = re.compile(r"^arn:(aws[a-z-]*):sagemaker:([a-z0-9-]+):(\d{12}):notebook-instance/")
KMS_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{KMS_KEY_ID}"
OTHER_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/0000abcd-12ab-34cd-56ef-1234567890ab"
DESCRIBE_KEY = "kms.DescribeKey"


def key_metadata(arn: str, manager: str = "CUSTOMER") -> dict[str, Any]:
    return {"KeyMetadata": {"KeyId": arn.rsplit("/", 1)[-1], "Arn": arn, "KeyManager": manager}}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# ---- SAGEMAKER_NOTEBOOK_HARDENED
DESCRIBE_NOTEBOOK = "sagemaker.DescribeNotebookInstance"
NB_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT_ID}:notebook-instance/risk-model-dev"
IMDS = "InstanceMetadataServiceConfiguration"
IMDS_MIN = "MinimumInstanceMetadataServiceVersion"


def _imds_of(fields: Any) -> Any:
    """The IMDS minimum version shown by ``fields`` (None: not shown; BAD: unreadable)."""
    raw = o_get(fields, IMDS)
    if _blank(raw):
        return None
    config = o_obj(raw)
    if config is BAD:
        return BAD
    value = o_get(config, IMDS_MIN)
    return None if _blank(value) else value


def _is_v2(value: Any) -> bool:
    # README: MinimumInstanceMetadataServiceVersion = 2 (the API's string "2"; a number read as its digits)
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and value == 2) or (isinstance(value, str) and value.strip() == "2")


def notebook_may_comply(ci: Mapping[str, Any], params: Any, answers: Answers) -> str | None:
    """README "SAGEMAKER_NOTEBOOK_HARDENED": root access Disabled (absent = Enabled), a KmsKeyId that is
    not alias/aws/* (with KmsKeyArns: one of them; a bare id in the notebook's account and Region; an
    alias fails), IMDS minimum 2 (absent = IMDSv1); a field the item lacks comes from
    DescribeNotebookInstance; Deleting is NOT_APPLICABLE."""
    cfg = o_configuration(ci)
    if cfg is BAD:
        return "configuration is not an object"
    root, imds, key = o_get(cfg, "RootAccess"), _imds_of(cfg), o_get(cfg, "KmsKeyId")
    if imds is BAD:
        return "the IMDS configuration is not an object"
    if _blank(root) or imds is None:
        response = answers[DESCRIBE_NOTEBOOK].ok_for() if DESCRIBE_NOTEBOOK in answers else None
        if response is None:
            return "the item lacks RootAccess or the IMDS version and DescribeNotebookInstance failed"
        status = o_get(response, "NotebookInstanceStatus")
        if isinstance(status, str) and status.strip().lower() == "deleting":
            return "the notebook is being deleted"
        root = o_get(response, "RootAccess") if _blank(root) else root
        imds = _imds_of(response) if imds is None else imds
        key = o_get(response, "KmsKeyId") if _blank(key) else key
    if root != "Disabled":
        return f"RootAccess {root!r} is not Disabled"
    if not _is_v2(imds):
        return f"IMDS minimum version {imds!r} is not 2"
    if not isinstance(key, str) or not key.strip():
        return f"KmsKeyId {key!r} is no key"
    key = key.strip()
    if _AWS_ALIAS.match(key):
        return "KmsKeyId is an AWS managed key"
    if not (_ANY_ALIAS.match(key) or _KEY_ARN.match(key) or _BARE_KEY_ID.match(key)):
        return f"KmsKeyId {key!r} is no KMS key reference"
    allowed = params.rule.kms_key_arns
    if allowed is None:
        return None
    allowed = {a.lower() for a in allowed}
    if _ANY_ALIAS.match(key):
        return "an alias cannot be proven against KmsKeyArns"
    if _KEY_ARN.match(key):
        return None if key.lower() in allowed else "key ARN not in KmsKeyArns"
    places = [o_get(cfg, "NotebookInstanceArn"), o_get(cfg, "Id"), ci.get("ARN"), ci.get("resourceId")]
    for place in places:
        where = _NOTEBOOK_ARN.match(place) if isinstance(place, str) else None
        if where and f"arn:{where[1]}:kms:{where[2]}:{where[3]}:key/{key.lower()}" in allowed:
            return None
    return "bare key id not placed in KmsKeyArns"


def notebook_response(**overrides: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "NotebookInstanceName": "risk-model-dev",
        "NotebookInstanceArn": NB_ARN,
        "NotebookInstanceStatus": "InService",
        "DirectInternetAccess": "Disabled",
        "SubnetId": "subnet-0a1b2c3d4e5f60718",
        "KmsKeyId": KEY_ARN,
        "RootAccess": "Disabled",
        IMDS: {IMDS_MIN: "2"},
    }
    response.update(overrides)
    return {k: v for k, v in response.items() if v is not None}


@st.composite
def notebook_answers(draw: st.DrawFn, _base: Mapping[str, Any]) -> Answers:
    kind = draw(st.sampled_from(["ok", "ok", "ok", "AccessDeniedException", "ValidationException"]))
    if kind != "ok":
        return {DESCRIBE_NOTEBOOK: Answer(kind)}
    response = notebook_response(
        NotebookInstanceStatus=draw(st.sampled_from(["InService", "Stopped", "Deleting", "Failed", None])),
        RootAccess=draw(st.sampled_from(["Disabled", "Disabled", "Enabled", None])),
        KmsKeyId=draw(st.sampled_from([KEY_ARN, KMS_KEY_ID, "alias/aws/sagemaker", None])),
    )
    response[IMDS] = draw(st.sampled_from([{IMDS_MIN: "2"}, {IMDS_MIN: "2"}, {IMDS_MIN: "1"}, {}]))
    response, _ = draw(mutated(response, (("RootAccess",), (IMDS, IMDS_MIN), ("NotebookInstanceStatus",)), 2))
    return {DESCRIBE_NOTEBOOK: Answer("ok", response)}


NOTEBOOK_HARDENED = Harness(
    rule="SAGEMAKER_NOTEBOOK_HARDENED",
    errors={DESCRIBE_NOTEBOOK: ("AccessDeniedException", "ValidationException")},
    fallback={},
    answers=notebook_answers,
    params=st.one_of(
        st.sampled_from(
            [
                {},
                {"KmsKeyArns": KEY_ARN},
                {"KmsKeyArns": f"{OTHER_KEY_ARN},{KEY_ARN}"},
                {"KmsKeyArns": OTHER_KEY_ARN},
            ]
        ),
        generic_params("SAGEMAKER_NOTEBOOK_HARDENED"),
    ),
    may_comply=notebook_may_comply,
    baselines=(
        # Every setting in the item; DescribeNotebookInstance denied, so nothing the item lacks is filled in.
        Baseline(
            "sagemaker_notebook_isolated.json", {}, {DESCRIBE_NOTEBOOK: Answer("AccessDeniedException")}
        ),
        Baseline(
            "sagemaker_notebook_isolated.json",
            {"KmsKeyArns": KEY_ARN},
            {DESCRIBE_NOTEBOOK: Answer("AccessDeniedException")},
        ),
        # An item without RootAccess and the IMDS configuration: DescribeNotebookInstance fills them in.
        Baseline(
            "sagemaker_notebook_isolated.json",
            {},
            {DESCRIBE_NOTEBOOK: Answer("ok", notebook_response())},
            drop=(("configuration", "RootAccess"), ("configuration", IMDS)),
        ),
    ),
    needed=(
        Needed("configuration", "ci", (("configuration",),), "object"),
        Needed("RootAccess", "ci", (("configuration", "RootAccess"),), "str", ("Disabled",)),
        Needed(IMDS, "ci", (("configuration", IMDS),), "object"),
        Needed(IMDS_MIN, "ci", (("configuration", IMDS, IMDS_MIN),), "str", ("2",)),
        Needed("KmsKeyId", "ci", (("configuration", "KmsKeyId"),), "str"),
    ),
)
NOTEBOOK_LISTED_KEY = (  # baseline 1 sets KmsKeyArns: any other reference fails
    Needed("KmsKeyId", "ci", (("configuration", "KmsKeyId"),), "str", (KEY_ARN,), normalise=str.lower),
)
NOTEBOOK_DESCRIBED = (  # baseline 2: what the item lacks comes from DescribeNotebookInstance
    Needed("RootAccess (API)", DESCRIBE_NOTEBOOK, (("RootAccess",),), "str", ("Disabled",)),
    Needed(f"{IMDS} (API)", DESCRIBE_NOTEBOOK, ((IMDS,),), "object"),
    Needed(f"{IMDS_MIN} (API)", DESCRIBE_NOTEBOOK, ((IMDS, IMDS_MIN),), "str", ("2",)),
    Needed("NotebookInstanceName (API)", DESCRIBE_NOTEBOOK, (("NotebookInstanceName",),), "str"),
)


# ---- policies (S3_BUCKET_POLICY_ORG_ONLY, VPC_ENDPOINT_POLICY_ORG_ONLY)
ORG = "o-a1b2c3d4e5"  # the organization of the fixtures' policies
OTHER_ORG = "o-zz9y8x7w6v"
OTHER_ACCOUNT = "111122223333"
BUCKET = "ml-feature-store-123456789012"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
S3_POLICY_PATH: Path = ("supplementaryConfiguration", "BucketPolicy", "policyText")
VPCE_POLICY_PATH: Path = ("configuration", "policyDocument")
_PLAIN_STRING_OPERATORS = ("stringequals", "stringlike", "stringequalsignorecase")


def policy_statements(text: Any) -> list[Mapping[str, Any]] | str:
    """The statements of a policy document (JSON text or object), or why it is not a policy."""
    document = o_obj(text) if isinstance(text, str | Mapping) else BAD
    if document is BAD:
        return "the policy is not a JSON object"
    statements = o_get(document, "Statement")
    statements = [statements] if isinstance(statements, Mapping) else statements
    if not isinstance(statements, list) or not statements:
        return "the policy has no Statement list"
    if not all(isinstance(s, Mapping) for s in statements):
        return "a statement is not an object"
    for statement in statements:
        effect = o_get(statement, "Effect")
        if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
            return f"Effect {effect!r} is neither Allow nor Deny"
    return list(statements)


def effect_is(statement: Mapping[str, Any], effect: str) -> bool:
    value = o_get(statement, "Effect")
    return isinstance(value, str) and value.lower() == effect


def conditions(statement: Mapping[str, Any]) -> list[tuple[str, str, list[str]]] | None:
    """(operator, key, values) per condition, lower-cased operator and key; None when unreadable."""
    block = o_get(statement, "Condition")
    if block is None:
        return []
    if not isinstance(block, Mapping):
        return None
    out = []
    for operator, keys in block.items():
        if not isinstance(keys, Mapping):
            return None
        for key, value in keys.items():
            values = strings_of(value)
            if values is None:
                return None
            out.append((str(operator).lower(), str(key).lower(), values))
    return out


def _plain(operator: str) -> str | None:
    """The base operator when it can constrain an Allow: no ...IfExists, no ForAllValues (README)."""
    if operator.endswith("ifexists") or operator.startswith("forallvalues:"):
        return None
    return operator.removeprefix("foranyvalue:")


def pins(condition: tuple[str, str, list[str]], key: str, accept: Callable[[str], bool]) -> bool:
    operator, name, values = condition
    base = _plain(operator)
    return name == key and base in _PLAIN_STRING_OPERATORS and bool(values) and all(map(accept, values))


def org_pin(condition: tuple[str, str, list[str]], key: str, org: str) -> bool:
    # a wildcard that could match another organization does not count; a case variant matches no caller
    return pins(condition, key, lambda v: v.lower() == org)


def _wild(value: str) -> bool:
    return "*" in value or "?" in value


def _principal_values(statement: Mapping[str, Any], name: str) -> Mapping[str, list[str]] | str | None:
    raw = o_get(statement, name)
    if raw is None:
        return None
    if isinstance(raw, str):
        return "*" if raw == "*" else "bad"
    if not isinstance(raw, Mapping):
        return "bad"
    out: dict[str, list[str]] = {}
    for kind, value in raw.items():
        values = strings_of(value)
        if values is None:
            return "bad"
        out[str(kind).lower()] = values
    return out


def everyone(statement: Mapping[str, Any]) -> bool:
    principals = _principal_values(statement, "Principal")
    if o_get(statement, "NotPrincipal") is not None:
        return False
    return principals == "*" or (isinstance(principals, Mapping) and "*" in principals.get("aws", []))


def reaches_outside(statement: Mapping[str, Any], account: str | None) -> bool:
    """README: principal *, {"AWS": "*"}, any NotPrincipal, another account's id or ARN, a canonical user
    or a federated principal not of the bucket's account (service principals are AWS's own)."""
    if o_get(statement, "NotPrincipal") is not None:
        return True
    principals = _principal_values(statement, "Principal")
    if not isinstance(principals, Mapping):
        return True
    own = re.compile(rf"^arn:aws[a-z-]*:(?:iam|sts)::{account}:") if account else None
    for kind, values in principals.items():
        if kind == "service":
            continue
        for value in values:
            if kind == "aws" and account and (value == account or (own and own.match(value))):
                continue
            if kind == "federated" and own and own.match(value):
                continue
            return True
    return False


def _patterns(statement: Mapping[str, Any], name: str) -> list[str] | None:
    value = o_get(statement, name)
    return None if value is None else strings_of(value)


def covers_s3_all(statement: Mapping[str, Any]) -> bool:
    """Action s3:* or * (README), or a NotAction that spares no S3 action."""
    actions = _patterns(statement, "Action")
    if actions is not None:
        return any(a.lower() in ("s3:*", "*") for a in actions)
    spared = _patterns(statement, "NotAction")
    return spared is not None and not any(a.lower() == "*" or a.lower().startswith("s3:") for a in spared)


def covers_bucket(statement: Mapping[str, Any], bucket_arn: str) -> bool:
    targets = (bucket_arn, bucket_arn + "/some/key")
    resources = _patterns(statement, "Resource")
    if resources is not None:
        return all(any(fnmatch.fnmatchcase(t, r) for r in resources) for t in targets)
    spared = _patterns(statement, "NotResource")
    return spared is not None and not any(fnmatch.fnmatchcase(t, r) for t in targets for r in spared)


def tls_deny(statement: Mapping[str, Any], bucket_arn: str) -> bool:
    """A Deny to everyone of s3:* on the bucket and its objects whose only condition is Bool/BoolIfExists
    aws:SecureTransport false (another condition would narrow the Deny)."""
    found = conditions(statement)
    return (
        effect_is(statement, "deny")
        and everyone(statement)
        and covers_s3_all(statement)
        and covers_bucket(statement, bucket_arn)
        and found is not None
        and len(found) == 1
        and found[0][0] in ("bool", "boolifexists")
        and found[0][1] == "aws:securetransport"
        and [v.lower() for v in found[0][2]] == ["false"]
    )


def perimeter_deny(statement: Mapping[str, Any], bucket_arn: str, org: str) -> bool:
    """README: a bucket-wide identity-perimeter Deny on aws:PrincipalOrgID (StringNotEquals[IfExists]),
    optionally excepting AWS service principals only."""
    found = conditions(statement)
    if not (
        effect_is(statement, "deny")
        and everyone(statement)
        and covers_s3_all(statement)
        and covers_bucket(statement, bucket_arn)
        and found
    ):
        return False
    pinned = False
    for operator, key, values in found:
        if key == "aws:principalorgid" and operator in ("stringnotequals", "stringnotequalsifexists"):
            # a value that is no organization's id (a case variant) denies everyone: stricter still
            pinned = pinned or (bool(values) and all(v.lower() == org for v in values))
        elif key != "aws:principalisawsservice":
            return False
    return pinned


def bucket_arns(ci: Mapping[str, Any]) -> list[str]:
    names = [ci.get("resourceName"), ci.get("resourceId")]
    arns = [ci.get("ARN")] + [f"arn:aws:s3:::{n}" for n in names if isinstance(n, str)]
    return [a for a in arns if isinstance(a, str) and a]


def s3_policy_may_comply(ci: Mapping[str, Any], params: Any, _answers: Answers) -> str | None:
    """README "S3_BUCKET_POLICY_ORG_ONLY": a policy (none is NON_COMPLIANT) whose outside-reaching Allows are
    all pinned to the organization (PrincipalOrgID, OrgPaths under it, SourceVpce ids, PrincipalAccount =
    the bucket's account) or covered by an identity-perimeter Deny, and that denies non-TLS access."""
    org = params.rule.organization_id
    bucket = o_supplementary(ci, "BucketPolicy")
    if bucket is None or bucket is BAD:
        return "no readable BucketPolicy"
    bucket = o_obj(bucket)
    if bucket is BAD:
        return "BucketPolicy is not an object"
    statements = policy_statements(o_get(bucket, "policyText"))
    if isinstance(statements, str):
        return statements
    account = ci.get("awsAccountId") if isinstance(ci.get("awsAccountId"), str) else None
    arns = bucket_arns(ci)
    if not any(tls_deny(s, arn) for s in statements for arn in arns):
        return "no Deny of non-TLS access to everyone on the bucket and its objects"
    if any(perimeter_deny(s, arn, org) for s in statements for arn in arns):
        return None
    for index, statement in enumerate(statements):
        if not effect_is(statement, "allow") or not reaches_outside(statement, account):
            continue
        found = conditions(statement)
        if found is None:
            return f"statement {index}: unreadable Condition"
        if not any(
            org_pin(c, "aws:principalorgid", org)
            or pins(c, "aws:principalorgpaths", lambda v: v.lower().startswith(org + "/"))
            or pins(c, "aws:sourcevpce", lambda v: bool(v.strip()) and not _wild(v))
            or pins(c, "aws:principalaccount", lambda v: account is not None and v == account)
            for c in found
        ):
            return f"statement {index}: an Allow reaching outside without an organization condition"
    return None


VPCE_DEAD_STATES = ("deleting", "deleted", "rejected", "failed", "expired")


def _endpoint_may_apply(fields: Any, where: str) -> str | None:
    kind = o_get(fields, "VpcEndpointType")
    if not isinstance(kind, str) or kind.strip().lower() not in ("gateway", "interface"):
        return f"{where} VpcEndpointType {kind!r} is neither Gateway nor Interface"
    state = o_get(fields, "State")
    if isinstance(state, Mapping):  # {"value": "available"}, a shape some items carry
        state = o_get(state, "Value")
    if isinstance(state, str) and state.lower() in VPCE_DEAD_STATES:
        return f"{where} state {state!r}"
    # Any other state (even unreadable) only decides between NOT_APPLICABLE and evaluating the policy:
    # a COMPLIANT policy is compliant whatever the state, so it does not rule COMPLIANT out.
    return None


DESCRIBE_ENDPOINTS = "ec2.DescribeVpcEndpoints"


def vpce_policy_may_comply(ci: Mapping[str, Any], params: Any, answers: Answers) -> str | None:
    """README "VPC_ENDPOINT_POLICY_ORG_ONLY": a Gateway or Interface endpoint, not being deleted/rejected/
    failed/expired, whose policy (from the item, else DescribeVpcEndpoints) is there and has every Allow
    pinned by aws:PrincipalOrgID and/or aws:ResourceOrgID = OrganizationId, or Bool
    aws:PrincipalIsAWSService true."""
    org = params.rule.organization_id
    cfg = o_configuration(ci)
    if cfg is BAD:
        return "configuration is not an object"
    problem = _endpoint_may_apply(cfg, "configuration")
    if problem:
        return problem
    lowered = {k.lower() for k in cfg if isinstance(k, str)}
    if "policydocument" in lowered:
        policy = o_get(cfg, "policyDocument")
    else:
        response = answers[DESCRIBE_ENDPOINTS].ok_for() if DESCRIBE_ENDPOINTS in answers else None
        if response is None:
            return "the item carries no policy and DescribeVpcEndpoints failed"
        found = o_get(response, "VpcEndpoints")
        if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], Mapping):
            return "DescribeVpcEndpoints does not show exactly one endpoint"
        problem = _endpoint_may_apply(found[0], "DescribeVpcEndpoints")
        if problem:
            return problem
        policy = o_get(found[0], "PolicyDocument")
    if _blank(policy):
        return "no policy document (AWS then allows full access)"
    statements = policy_statements(policy)
    if isinstance(statements, str):
        return statements
    for index, statement in enumerate(statements):
        if not effect_is(statement, "allow"):
            continue
        found_conditions = conditions(statement)
        if found_conditions is None:
            return f"statement {index}: unreadable Condition"
        if not any(
            org_pin(c, "aws:principalorgid", org)
            or org_pin(c, "aws:resourceorgid", org)
            or (
                c[0] == "bool"
                and c[1] == "aws:principalisawsservice"
                and [v.lower() for v in c[2]] == ["true"]
            )
            for c in found_conditions
        ):
            return f"statement {index}: an Allow without an organization condition"
    return None


PRINCIPALS: tuple[Any, ...] = (
    "*",
    {"AWS": "*"},
    {"AWS": ["*"]},
    {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
    {"AWS": OTHER_ACCOUNT},
    {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/ml-platform"},
    {"AWS": ACCOUNT_ID},
    {"AWS": [f"arn:aws:iam::{ACCOUNT_ID}:role/ml-platform", f"arn:aws:iam::{OTHER_ACCOUNT}:role/x"]},
    {"Service": "sagemaker.amazonaws.com"},
    {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
    {"Federated": "cognito-identity.amazonaws.com"},
    {"Federated": f"arn:aws:iam::{ACCOUNT_ID}:saml-provider/corp"},
)
OPERATORS = (
    "StringEquals",
    "StringEqualsIfExists",
    "StringLike",
    "StringNotEquals",
    "StringNotEqualsIfExists",
    "StringEqualsIgnoreCase",
    "ForAnyValue:StringEquals",
    "ForAnyValue:StringLike",
    "ForAllValues:StringEquals",
    "Bool",
    "BoolIfExists",
    "Null",
    "ArnLike",
)
CONDITION_KEYS = (
    "aws:PrincipalOrgID",
    "aws:principalorgid",
    "aws:ResourceOrgID",
    "aws:PrincipalOrgPaths",
    "aws:SourceVpce",
    "aws:PrincipalAccount",
    "aws:PrincipalIsAWSService",
    "aws:SecureTransport",
    "aws:SourceIp",
)
CONDITION_VALUES: tuple[Any, ...] = (
    ORG,
    OTHER_ORG,
    "o-*",
    ORG + "*",
    "o-a1b2c3d4e?",
    [ORG, OTHER_ORG],
    [ORG, ORG],
    ORG.upper(),
    "",
    [],
    "true",
    "false",
    ["true", "false"],  # any request matches: constrains nothing
    "TRUE",
    False,
    True,
    ACCOUNT_ID,
    OTHER_ACCOUNT,
    "vpce-0a1b2c3d4e5f60718",
    "vpce-*",
    "*",
    f"{ORG}/r-ab12/*",
    "o-zz9y8x7w6v/r-ab12/*",
    f"{ORG}/*",
)
EXTRA_CONDITIONS: tuple[Mapping[str, Any], ...] = (
    {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
    {"StringEquals": {"aws:SourceVpce": "vpce-0a1b2c3d4e5f60718"}},
    {"Bool": {"aws:PrincipalIsAWSService": "true"}},
    {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}},
    {"StringEquals": {"aws:PrincipalAccount": ACCOUNT_ID}},
    {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": f"{ORG}/*"}},
    {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
    {"StringEquals": {"aws:ResourceOrgID": ORG}},
)
ACTIONS: tuple[Any, ...] = ("s3:GetObject", "*", "s3:*", ["s3:*"], "S3:*", ["s3:GetObject", "s3:PutObject"])
RESOURCES: tuple[Any, ...] = (
    BUCKET_ARN,
    f"{BUCKET_ARN}/*",
    "*",
    [BUCKET_ARN, f"{BUCKET_ARN}/*"],
    f"{BUCKET_ARN}*",
    "arn:aws:s3:::other-bucket/*",
    ["arn:aws:s3:::other-bucket", "arn:aws:s3:::other-bucket/*"],
)


def _statement_pool(org: str) -> tuple[dict[str, Any], ...]:
    both = [BUCKET_ARN, f"{BUCKET_ARN}/*"]
    return (
        {"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": both[1]},
        {"Effect": "Allow", "Principal": {"AWS": OTHER_ACCOUNT}, "Action": "s3:*", "Resource": both},
        {
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": both[1],
        },
        {
            "Sid": "Perimeter",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": both,
            "Condition": {
                "StringNotEqualsIfExists": {"aws:PrincipalOrgID": org},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            },
        },
        {
            "Sid": "Tls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": both,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": org}},
        },
        {"Effect": "Deny", "NotPrincipal": {"AWS": OTHER_ACCOUNT}, "Action": "s3:*", "Resource": both},
    )


@st.composite
def policy_edits(draw: st.DrawFn, document: Any) -> tuple[Any, list[str]]:
    """The policy with 0..3 edits of the kinds people get wrong; returns (document, what was done)."""
    if not isinstance(document, dict) or not isinstance(document.get("Statement"), list):
        return document, []
    doc = copy.deepcopy(document)
    statements: list[Any] = doc["Statement"]
    done: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(
                [
                    "principal",
                    "not_principal",
                    "operator",
                    "condition_key",
                    "condition_value",
                    "drop_condition",
                    "add_condition",
                    "effect",
                    "action",
                    "not_action",
                    "resource",
                    "not_resource",
                    "drop_statement",
                    "add_statement",
                    "single",
                ]
            )
        )
        if not statements and kind != "add_statement":
            continue
        index = draw(st.integers(0, max(len(statements) - 1, 0)))
        stmt = statements[index] if statements else {}
        if not isinstance(stmt, dict):
            continue
        cond = stmt.get("Condition")
        if kind == "principal":
            stmt.pop("NotPrincipal", None)
            stmt["Principal"] = copy.deepcopy(draw(st.sampled_from(PRINCIPALS)))
        elif kind == "not_principal" and "Principal" in stmt:
            stmt["NotPrincipal"] = stmt.pop("Principal")
        elif kind in ("operator", "condition_key", "condition_value") and isinstance(cond, dict) and cond:
            operator = draw(st.sampled_from(sorted(cond)))
            block = cond[operator]
            if kind == "operator":
                cond[draw(st.sampled_from(OPERATORS))] = cond.pop(operator)
            elif isinstance(block, dict) and block:
                key = draw(st.sampled_from(sorted(block)))
                if kind == "condition_key":
                    block[draw(st.sampled_from(CONDITION_KEYS))] = block.pop(key)
                else:
                    block[key] = copy.deepcopy(draw(st.sampled_from(CONDITION_VALUES)))
        elif kind == "drop_condition":
            stmt.pop("Condition", None)
        elif kind == "add_condition":
            extra = draw(st.sampled_from(EXTRA_CONDITIONS))
            stmt["Condition"] = {**(cond if isinstance(cond, dict) else {}), **copy.deepcopy(dict(extra))}
        elif kind == "effect":
            stmt["Effect"] = draw(st.sampled_from(["Allow", "Deny", "allow", "Audit"]))
        elif kind == "action":
            stmt.pop("NotAction", None)
            stmt["Action"] = copy.deepcopy(draw(st.sampled_from(ACTIONS)))
        elif kind == "not_action" and "Action" in stmt:
            stmt.pop("Action")
            stmt["NotAction"] = draw(st.sampled_from(["s3:GetObject", "iam:*", "s3:*"]))
        elif kind == "resource":
            stmt.pop("NotResource", None)
            stmt["Resource"] = copy.deepcopy(draw(st.sampled_from(RESOURCES)))
        elif kind == "not_resource" and "Resource" in stmt:
            stmt.pop("Resource")
            stmt["NotResource"] = draw(st.sampled_from(["arn:aws:s3:::other-bucket/*", f"{BUCKET_ARN}/*"]))
        elif kind == "drop_statement":
            statements.pop(index)
        elif kind == "add_statement":
            statements.append(copy.deepcopy(draw(st.sampled_from(_statement_pool(ORG)))))
        elif kind == "single" and len(statements) == 1:
            doc["Statement"] = statements[0]
            done.append("single statement object")
            break
        else:
            continue
        done.append(f"{kind} #{index}")
    return doc, done


def policy_edit(path: Path) -> Callable[[Mapping[str, Any]], st.SearchStrategy[tuple[dict[str, Any], str]]]:
    """Item edits: the policy document at ``path`` (JSON text) parsed, edited, and written back."""

    @st.composite
    def edit(draw: st.DrawFn, base: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        item = copy.deepcopy(dict(base))
        node: Any = item
        for step in path[:-1]:
            node = node.get(step) if isinstance(node, dict) else None
        text = node.get(path[-1]) if isinstance(node, dict) else None
        if not isinstance(text, str):
            return item, ""
        document, done = draw(policy_edits(json.loads(text)))
        if done:
            node[path[-1]] = json.dumps(document)
        return item, "policy: " + ", ".join(done) if done else ""

    return edit


def org_params(rule: str) -> st.SearchStrategy[dict[str, Any]]:
    """The rule's optional parameters plus OrganizationId: mostly the fixtures' organization."""
    org = st.sampled_from([ORG, ORG, ORG, OTHER_ORG])
    return st.builds(lambda p, o: {**p, "OrganizationId": o}, generic_params(rule), org)


S3_POLICY = Harness(
    rule="S3_BUCKET_POLICY_ORG_ONLY",
    errors={},
    fallback={},
    answers=lambda _base: st.just({}),  # no API call on a change
    params=org_params("S3_BUCKET_POLICY_ORG_ONLY"),
    may_comply=s3_policy_may_comply,
    baselines=(Baseline("s3_policy_org_only_tls.json", {"OrganizationId": ORG}, {}),),
    needed=(
        Needed("supplementaryConfiguration", "ci", (("supplementaryConfiguration",),), "object"),
        Needed("BucketPolicy", "ci", (("supplementaryConfiguration", "BucketPolicy"),), "object"),
        Needed("policyText", "ci", (S3_POLICY_PATH,), "str_json"),
    ),
    edit=policy_edit(S3_POLICY_PATH),
    required={"OrganizationId": ORG},
)


def endpoint_response(
    base: Mapping[str, Any], policy: Any, state: str = "Available", kind: str = "Interface"
) -> dict[str, Any]:
    endpoint = {
        "VpcEndpointId": base.get("resourceId"),
        "VpcEndpointType": kind,
        "VpcId": "vpc-0a1b2c3d4e5f60718",
        "ServiceName": "com.amazonaws.us-east-1.sagemaker.api",
        "State": state,
        "PolicyDocument": policy,
        "Tags": [],
    }
    return {"VpcEndpoints": [{k: v for k, v in endpoint.items() if v is not None}]}


@st.composite
def endpoint_answers(draw: st.DrawFn, base: Mapping[str, Any]) -> Answers:
    if draw(st.integers(0, 5)) == 0:
        return {DESCRIBE_ENDPOINTS: Answer("UnauthorizedOperation")}
    text = configuration_text(base, "policyDocument")
    policy: Any = None
    if text is not None and draw(st.integers(0, 4)) > 0:
        document, _ = draw(policy_edits(json.loads(text)))
        policy = json.dumps(document)
    state = draw(st.sampled_from(["Available", "available", "Deleting", "Rejected", "PendingAcceptance"]))
    kind = draw(st.sampled_from(["Interface", "Gateway", "GatewayLoadBalancer", "Resource"]))
    response, _ = draw(mutated(endpoint_response(base, policy, state, kind), (), 2, min_depth=3))
    if draw(st.integers(0, 9)) == 0:
        response["VpcEndpoints"] = response["VpcEndpoints"] * 2
    return {DESCRIBE_ENDPOINTS: Answer("ok", response)}


def VPCE_TYPE_NORMALISE(text: str) -> str:
    """Endpoint types read case-insensitively: a case variant of a valid type is that type."""
    return text.strip().capitalize() if text.strip().lower() in ("interface", "gateway") else text


VPCE_FIXTURE = load_fixture("vpce_interface_sagemaker_api_org.json")
VPCE_FIXTURE_POLICY = VPCE_FIXTURE["configuration"]["policyDocument"]
VPCE_POLICY = Harness(
    rule="VPC_ENDPOINT_POLICY_ORG_ONLY",
    errors={DESCRIBE_ENDPOINTS: ("UnauthorizedOperation",)},
    fallback={},
    answers=endpoint_answers,
    params=org_params("VPC_ENDPOINT_POLICY_ORG_ONLY"),
    may_comply=vpce_policy_may_comply,
    baselines=(
        # The item carries the policy; DescribeVpcEndpoints denied, so a policy it lacks stays unknown.
        Baseline(
            "vpce_interface_sagemaker_api_org.json",
            {"OrganizationId": ORG},
            {DESCRIBE_ENDPOINTS: Answer("UnauthorizedOperation")},
        ),
        # An item without the policy: DescribeVpcEndpoints shows it.
        Baseline(
            "vpce_interface_sagemaker_api_org.json",
            {"OrganizationId": ORG},
            {DESCRIBE_ENDPOINTS: Answer("ok", endpoint_response(VPCE_FIXTURE, VPCE_FIXTURE_POLICY))},
            drop=(VPCE_POLICY_PATH,),
        ),
    ),
    needed=(
        Needed("configuration", "ci", (("configuration",),), "object"),
        Needed(
            "vpcEndpointType",
            "ci",
            (("configuration", "vpcEndpointType"),),
            "str",
            ("Interface", "Gateway"),
            normalise=VPCE_TYPE_NORMALISE,
        ),
        Needed("policyDocument", "ci", (VPCE_POLICY_PATH,), "str_json"),
    ),
    edit=policy_edit(VPCE_POLICY_PATH),
    required={"OrganizationId": ORG},
)


# ---- RDS_STORAGE_ENCRYPTED_WITH_CMK
RDS_INSTANCE, RDS_CLUSTER = "AWS::RDS::DBInstance", "AWS::RDS::DBCluster"
CLUSTER_KEY_ARN = f"arn:aws:kms:us-east-2:{ACCOUNT_ID}:key/test"  # rds_rdk_sample_cluster.json's key
CLUSTER_ONLY_ENGINES = ("aurora", "neptune", "docdb")


def rds_may_comply(ci: Mapping[str, Any], params: Any, answers: Answers) -> str | None:
    """README "RDS_STORAGE_ENCRYPTED_WITH_CMK": storage encrypted with a customer managed key (DescribeKey's
    KeyManager CUSTOMER; not alias/aws/*), in KmsKeyArns when set (the key ARN RDS reports, or DescribeKey's
    ARN); cluster members (DBClusterIdentifier) are NOT_APPLICABLE, a deleting DB too; an instance without
    Engine, or of a cluster-only engine without DBClusterIdentifier, fails."""
    cfg = o_configuration(ci)
    if cfg is BAD:
        return "configuration is not an object"
    if ci.get("resourceType") == RDS_INSTANCE:
        if not _blank(o_get(cfg, "DBClusterIdentifier")):
            return "a cluster member is NOT_APPLICABLE"
        engine = o_get(cfg, "Engine")
        if not isinstance(engine, str) or not engine.strip():
            return f"Engine {engine!r}"
        if engine.strip().lower().startswith(CLUSTER_ONLY_ENGINES):
            return "a cluster-only engine without DBClusterIdentifier"
        status = o_get(cfg, "DBInstanceStatus")
    else:
        status = o_get(cfg, "Status")
    if isinstance(status, str) and status.strip().lower() == "deleting":
        return "the DB is being deleted"
    if o_bool(o_get(cfg, "StorageEncrypted")) is not True:
        return f"StorageEncrypted {o_get(cfg, 'StorageEncrypted')!r} is not true"
    key = o_get(cfg, "KmsKeyId")
    if not isinstance(key, str) or not key.strip():
        return f"KmsKeyId {key!r}"
    key = key.strip()
    if _AWS_ALIAS.match(key):
        return "the AWS managed aws/rds key"
    response = answers[DESCRIBE_KEY].ok_for(key) if DESCRIBE_KEY in answers else None
    if response is None:
        return f"DescribeKey({key}) did not answer"
    metadata = o_obj(o_get(response, "KeyMetadata"))
    if metadata is BAD or o_get(metadata, "KeyManager") != "CUSTOMER":
        return "DescribeKey does not say CUSTOMER"
    arn = o_get(metadata, "Arn")
    if not isinstance(arn, str) or not arn:
        return "DescribeKey has no key Arn"
    allowed = params.rule.kms_key_arns
    if allowed and key not in allowed and arn not in allowed:
        return "the key is not in KmsKeyArns"
    return None


@st.composite
def rds_answers(draw: st.DrawFn, base: Mapping[str, Any]) -> Answers:
    kind = draw(st.sampled_from(["ok", "ok", "ok", "AccessDeniedException", "NotFoundException"]))
    if kind != "ok":
        return {DESCRIBE_KEY: Answer(kind)}
    reference = configuration_text(base, "KmsKeyId") or KEY_ARN
    arn = draw(st.sampled_from([reference, reference, OTHER_KEY_ARN]))
    manager = draw(st.sampled_from(["CUSTOMER", "CUSTOMER", "AWS", "customer"]))
    response, _ = draw(
        mutated(key_metadata(arn, manager), (("KeyMetadata", "KeyManager"), ("KeyMetadata", "Arn")), 2)
    )
    return {DESCRIBE_KEY: Answer("ok", response, frozenset({reference, arn}))}


RDS = Harness(
    rule="RDS_STORAGE_ENCRYPTED_WITH_CMK",
    errors={DESCRIBE_KEY: ("AccessDeniedException", "NotFoundException")},
    fallback={DESCRIBE_KEY: "NotFoundException"},
    answers=rds_answers,
    params=st.one_of(
        st.sampled_from([{}, {"KmsKeyArns": KEY_ARN}, {"KmsKeyArns": f"{OTHER_KEY_ARN},{KEY_ARN}"}]),
        generic_params("RDS_STORAGE_ENCRYPTED_WITH_CMK"),
    ),
    may_comply=rds_may_comply,
    baselines=(
        Baseline(
            "rds_instance_cmk.json",
            {"KmsKeyArns": KEY_ARN},
            {DESCRIBE_KEY: Answer("ok", key_metadata(KEY_ARN), frozenset({KEY_ARN}))},
        ),
        Baseline(
            "rds_rdk_sample_cluster.json",
            {},
            {DESCRIBE_KEY: Answer("ok", key_metadata(CLUSTER_KEY_ARN), frozenset({CLUSTER_KEY_ARN}))},
        ),
    ),
    needed=(
        Needed("configuration", "ci", (("configuration",),), "object"),
        Needed("storageEncrypted", "ci", (("configuration", "storageEncrypted"),), "bool"),
        Needed("KeyManager", DESCRIBE_KEY, (("KeyMetadata", "KeyManager"),), "str", ("CUSTOMER",)),
        Needed("Arn", DESCRIBE_KEY, (("KeyMetadata", "Arn"),), "str"),
        Needed("KeyMetadata", DESCRIBE_KEY, (("KeyMetadata",),), "object"),
    ),
)
RDS_INSTANCE_ONLY = (  # baseline 0: an instance, with KmsKeyArns
    Needed("engine", "ci", (("configuration", "engine"),), "str"),
    Needed("kmsKeyId", "ci", (("configuration", "kmsKeyId"),), "str", (KEY_ARN,)),
)

VPCE_DESCRIBED = (  # baseline 1: the policy comes from DescribeVpcEndpoints
    Needed("VpcEndpoints", DESCRIBE_ENDPOINTS, (("VpcEndpoints",),), "list"),
    Needed("PolicyDocument (API)", DESCRIBE_ENDPOINTS, (("VpcEndpoints", 0, "PolicyDocument"),), "str_json"),
    Needed(
        "VpcEndpointType (API)",
        DESCRIBE_ENDPOINTS,
        (("VpcEndpoints", 0, "VpcEndpointType"),),
        "str",
        ("Interface", "Gateway"),
        normalise=VPCE_TYPE_NORMALISE,
    ),
)
NEW_HARNESSES: tuple[Harness, ...] = (NOTEBOOK_HARDENED, S3_POLICY, VPCE_POLICY, RDS)
NEW_EXTRA_NEEDED: dict[tuple[str, int], tuple[Needed, ...]] = {
    ("SAGEMAKER_NOTEBOOK_HARDENED", 1): NOTEBOOK_LISTED_KEY,
    ("SAGEMAKER_NOTEBOOK_HARDENED", 2): NOTEBOOK_DESCRIBED,
    ("VPC_ENDPOINT_POLICY_ORG_ONLY", 1): VPCE_DESCRIBED,
    ("RDS_STORAGE_ENCRYPTED_WITH_CMK", 0): RDS_INSTANCE_ONLY,
}
