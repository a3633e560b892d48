"""SAGEMAKER_NOTEBOOK_HARDENED: notebook instances run without root, on a customer KMS key, IMDSv2 only.

A data scientist with root on a notebook instance can change its network, install anything and read the
execution role's credentials from any process; IMDSv1 hands those credentials to any server-side request
forgery; and a volume encrypted without your KMS key cannot be revoked by revoking a key grant.

Sub-checks (the annotation names each one that fails):
  root access   RootAccess must be Disabled. Absent means the API default, Enabled (botocore sagemaker
                CreateNotebookInstanceInput.RootAccess: "The default value is Enabled").
  KMS key       KmsKeyId must be set and not an AWS managed ``alias/aws/*`` key; with KmsKeyArns, the key
                must be one of those key ARNs (see "Comparing keys" below).
  IMDSv2        InstanceMetadataServiceConfiguration.MinimumInstanceMetadataServiceVersion must be "2".

Scenarios (Given / Then):
  1. Given RootAccess Disabled, a customer KmsKeyId (in KmsKeyArns when set) and IMDS minimum "2"
     -- Then COMPLIANT.
  2. Given RootAccess Enabled, absent (API default Enabled) or any other value -- Then NON_COMPLIANT.
  3. Given no KmsKeyId, or an ``alias/aws/*`` key (name or ARN) -- Then NON_COMPLIANT: recreate with a key.
  4. Given KmsKeyArns and a key ARN, or a bare key id (placed in the notebook's account and Region, as
     KMS resolves it), not in the list -- Then NON_COMPLIANT.
  5. Given KmsKeyArns and an alias (name or ARN) as KmsKeyId -- Then NON_COMPLIANT: which key encrypted the
     volume cannot be proven (the alias may point elsewhere now); recreate with a key ARN.
  6. Given IMDS minimum "1" or any value other than "2" -- Then NON_COMPLIANT.
  7. Given a configuration item without RootAccess or InstanceMetadataServiceConfiguration -- Then
     DescribeNotebookInstance fills them in; a field the API omits as well takes its documented default
     (RootAccess Enabled, IMDSv1), so the verdict is NON_COMPLIANT, never a guess of COMPLIANT.
  8. Given several of 2-6 -- Then one NON_COMPLIANT naming each failing sub-check and the fix for each.
  9. Given a Stopped or Failed notebook failing 2-6 -- Then NON_COMPLIANT all the same, noting the status.
 10. Given a notebook being deleted (status Deleting, sweep or API read) -- Then NOT_APPLICABLE.
 11. Given the exemption tag (ExemptionTagKey) -- Then NOT_APPLICABLE with the tag's value as the reason.
 12. Given a deleted notebook (configurationItemStatus ResourceDeleted) -- Then NOT_APPLICABLE (engine).
 13. Given the notebook cannot be read (AccessDenied, throttling, not found on the change path) when its
     item needed the read -- Then no evaluation: the invocation fails naming the notebook.
 14. Given a malformed item (RootAccess not a string, KmsKeyId that is no KMS key reference, an IMDS
     configuration that is not an object) -- Then the invocation fails naming the notebook.

Comparing keys (KmsKeyArns): the notebook's KmsKeyId is what its creator passed (SageMaker echoes it):
a key ARN is compared as is (case-insensitively); a bare key id (``1234abcd-...`` or ``mrk-...``) names a
key in the caller's account and Region (KMS: another account's key needs its ARN), so it becomes
``arn:<partition>:kms:<notebook Region>:<notebook account>:key/<id>``; an alias cannot be compared (it may
have been re-pointed since the volume was created) and fails closed. KmsKeyArns takes key ARNs only: alias
ARNs are refused for the same reason. A multi-Region key must be listed by the ARN in the notebook's
Region. No KMS call is made: which key encrypts the volume is fixed at creation, so its current state
(enabled, rotation) is other rules' business.

Fix: MlGuardrails-HardenSageMakerNotebook stops the notebook (when running), sets RootAccess Disabled and
IMDSv2 with UpdateNotebookInstance, and restarts it only if it was InService. The volume's key cannot be
changed: the annotation tells the owner to recreate the notebook with a KmsKeyId.

Triggers: configuration change (and oversized) of ``AWS::SageMaker::NotebookInstance``: no API call when
the item carries RootAccess and the IMDS configuration, else one DescribeNotebookInstance. Periodic:
ListNotebookInstances, DescribeNotebookInstance per notebook (ListTags only with ExemptionTagKey).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from rdklib import ComplianceType, Evaluation

from ml_guardrails.ci import MalformedConfigurationItem, reading, response_field
from ml_guardrails.engine import (
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    lambda_handler_for,
    make_evaluation,
)
from ml_guardrails.params import CsvParameter
from ml_guardrails.resources.kms_lookup import KEY_ARN_PATTERN, KEY_ID
from ml_guardrails.resources.sagemaker_notebook import (
    API_DEFAULT_MINIMUM_IMDS_VERSION,
    API_DEFAULT_ROOT_ACCESS,
    RESOURCE_TYPE,
    NotebookInstance,
    config_resource_id,
    describe_for_sweep,
    is_gone,
)

if TYPE_CHECKING:
    from ml_guardrails.aws import ClientFactory
    from ml_guardrails.ci import ConfigurationItem

ANNOTATION_LIMIT = 256
RUNBOOK = "MlGuardrails-HardenSageMakerNotebook"
DELETING = "Deleting"
AT_REST = frozenset({"Stopped", "Stopping", "Failed"})

_BARE_KEY_ID = re.compile(rf"^{KEY_ID}$", re.IGNORECASE)
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_ALIAS = re.compile(r"^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?alias/[A-Za-z0-9/_-]+$")
# The alias/aws/ prefix is reserved for AWS managed keys (KMS CreateAlias: customers cannot create it).
_AWS_ALIAS = re.compile(r"^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:)?alias/aws/", re.IGNORECASE)
_NOTEBOOK_ARN = re.compile(r"^arn:(aws[a-z-]*):sagemaker:([a-z0-9-]+):(\d{12}):notebook-instance/")

PARAMETERS = (
    CsvParameter(
        "KmsKeyArns",
        "Comma-separated KMS key ARNs a notebook's volume may be encrypted with; any customer key when not "
        "set. Key ARNs only: an alias can be re-pointed, so it proves nothing.",
        pattern=KEY_ARN_PATTERN,
        what="a comma-separated list of KMS key ARNs (arn:aws:kms:<region>:<account>:key/<key id>); alias "
        "ARNs are not accepted",
    ),
)


@dataclass(frozen=True)
class Params:
    kms_key_arns: frozenset[str] | None = None  # None: any customer key; else lower-cased key ARNs


class Verdict(NamedTuple):
    compliance: str
    annotation: str


# ------------------------------------------------------------------------------------------ pure decisions
@dataclass(frozen=True)
class KeyReference:
    """A notebook's KmsKeyId, classified. ``arn``: the key ARN it names, when that can be known."""

    kind: str  # "none" | "aws-managed" | "key" | "alias"
    text: str = ""
    arn: str | None = None


def classify_key(kms_key_id: str | None, notebook_arn: str | None) -> KeyReference:
    """What ``kms_key_id`` names. Raises MalformedConfigurationItem for a value that is no KMS key
    reference at all, and for a bare key id when the notebook's account and Region are unknown."""
    if kms_key_id is None:
        return KeyReference("none")
    text = kms_key_id.strip()
    if _AWS_ALIAS.match(text):
        return KeyReference("aws-managed", text)
    if _ALIAS.match(text):
        return KeyReference("alias", text)
    if _KEY_ARN.match(text):
        return KeyReference("key", text, text.lower())
    if _BARE_KEY_ID.match(text):
        where = _NOTEBOOK_ARN.match(notebook_arn or "")
        if where is None:
            raise MalformedConfigurationItem(
                f"KmsKeyId {text} is a key id, but the notebook's ARN (its account and Region) is unknown"
            )
        partition, region, account = where.groups()
        return KeyReference("key", text, f"arn:{partition}:kms:{region}:{account}:key/{text.lower()}")
    raise MalformedConfigurationItem(f"KmsKeyId is not a KMS key id, key ARN or alias: {text[:80]!r}")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def root_problem(notebook: NotebookInstance) -> str | None:
    value = notebook.root_access
    if value == "Disabled":
        return None
    if value is None:
        return f"RootAccess not set (API default: {API_DEFAULT_ROOT_ACCESS})"
    if value == "Enabled":
        return "root access Enabled"
    return f"RootAccess {_short(value, 20)!r} is not Disabled"


def kms_problem(key: KeyReference, params: Params) -> str | None:
    if key.kind == "none":
        return "no KmsKeyId (volume not on your KMS key)"
    if key.kind == "aws-managed":
        return f"KmsKeyId {_short(key.text)} is an AWS managed key"
    if params.kms_key_arns is None:
        return None
    if key.kind == "alias":
        return f"KmsKeyId is alias {_short(key.text)}: not provable against KmsKeyArns"
    if key.arn not in params.kms_key_arns:
        return f"key {_short(key.arn or key.text, 90)} not in KmsKeyArns"
    return None


def imds_problem(notebook: NotebookInstance) -> str | None:
    value = notebook.minimum_imds_version
    if value == "2":
        return None
    if value is None:
        return f"IMDS minimum version not shown (default {API_DEFAULT_MINIMUM_IMDS_VERSION}: IMDSv1 allowed)"
    if value == "1":
        return "IMDSv1 allowed (minimum IMDS version 1)"
    return f"minimum IMDS version {_short(value, 10)!r} is not 2"


def needs_describe(notebook: NotebookInstance) -> bool:
    """True when a configuration item lacks a field only the API can fill in (scenario 7)."""
    return notebook.root_access is None or notebook.minimum_imds_version is None


def fill_from_describe(notebook: NotebookInstance, described: NotebookInstance) -> NotebookInstance:
    """The CI's view with what it lacked taken from DescribeNotebookInstance (and the API's status)."""
    return replace(
        notebook,
        root_access=notebook.root_access or described.root_access,
        minimum_imds_version=notebook.minimum_imds_version or described.minimum_imds_version,
        status=described.status,
    )


def _fit(*candidates: str) -> str:
    """The first candidate within Config's annotation limit (candidates go from fullest to shortest)."""
    for text in candidates:
        if len(text) <= ANNOTATION_LIMIT:
            return text
    return candidates[-1][: ANNOTATION_LIMIT - 3] + "..."


def decide(notebook: NotebookInstance, params: Params) -> Verdict:
    """The verdict for ``notebook`` (every field it needs already read)."""
    if notebook.status == DELETING:
        return Verdict(
            ComplianceType.NOT_APPLICABLE, "The notebook instance is being deleted (status Deleting)."
        )
    key = classify_key(notebook.kms_key_id, notebook.arn)
    root, kms, imds = root_problem(notebook), kms_problem(key, params), imds_problem(notebook)
    problems = [p for p in (root, kms, imds) if p]
    if not problems:
        return Verdict(
            ComplianceType.COMPLIANT,
            _fit(
                f"Root access disabled, IMDSv2 only, volume on KMS key {_short(key.text, 140)}.",
                "Root access disabled, IMDSv2 only, volume on a customer KMS key.",
            ),
        )
    what = "Notebook: " + "; ".join(problems) + "."
    fixes: list[str] = []
    if root or imds:
        fixes.append(f" Run {RUNBOOK} (stops it, disables root, sets IMDSv2).")
    if kms:
        fixes.append(
            " Recreate it with KmsKeyId = a key ARN" + (" in KmsKeyArns" if params.kms_key_arns else "")
        )
        fixes[-1] += " (the volume key cannot be changed)."
    short_fixes: list[str] = []
    if root or imds:
        short_fixes.append(f" Run {RUNBOOK}.")
    if kms:
        short_fixes.append(" Recreate it with a KmsKeyId.")
    status = f" It is {notebook.status}." if notebook.status in AT_REST else ""
    full, short = "".join(fixes), "".join(short_fixes)
    return Verdict(
        ComplianceType.NON_COMPLIANT,
        _fit(what + full + status, what + full, what + short, what),
    )


# ---------------------------------------------------------------------------------------------- the rule
def _arn_key_set(values: frozenset[str] | None) -> frozenset[str] | None:
    return None if not values else frozenset(v.lower() for v in values)


class SAGEMAKER_NOTEBOOK_HARDENED(GuardrailRule[Params]):
    RULE_NAME = "SAGEMAKER_NOTEBOOK_HARDENED"
    RESOURCE_TYPES = (RESOURCE_TYPE,)
    PARAMETERS = PARAMETERS

    def make_params(self, values: Mapping[str, Any]) -> Params:
        return Params(kms_key_arns=_arn_key_set(values["KmsKeyArns"]))

    def _verdict(self, notebook: NotebookInstance, resource_id: str, params: Params) -> Evaluation:
        verdict = decide(notebook, params)
        return make_evaluation(verdict.compliance, RESOURCE_TYPE, resource_id, verdict.annotation)

    def evaluate_item(
        self, item: ConfigurationItem, clients: ClientFactory, params: RuleParameters[Params]
    ) -> Evaluation:
        notebook = NotebookInstance.from_configuration_item(item)
        classify_key(notebook.kms_key_id, notebook.arn)  # a malformed KmsKeyId fails before any call
        if needs_describe(notebook):
            # The item lacks RootAccess or the IMDS configuration: read what the API shows. A notebook the
            # API cannot find fails the evaluation (never guessed); its deletion item follows.
            response = clients.build_client("sagemaker").describe_notebook_instance(
                NotebookInstanceName=notebook.name
            )
            with reading("DescribeNotebookInstance"):
                described = NotebookInstance.from_describe(response)
            notebook = fill_from_describe(notebook, described)
        return self._verdict(notebook, item.resource_id, params.rule)

    def sweep(self, clients: ClientFactory, params: RuleParameters[Params]) -> Iterator[Outcome]:
        sagemaker = clients.build_client("sagemaker")
        for page in sagemaker.get_paginator("list_notebook_instances").paginate():
            for summary in page.get("NotebookInstances") or []:
                name = str(response_field(summary, "NotebookInstanceName", "ListNotebookInstances"))
                arn = str(response_field(summary, "NotebookInstanceArn", "ListNotebookInstances"))
                resource_id = config_resource_id(arn, name)

                def decide_one(name: str = name, arn: str = arn, rid: str = resource_id) -> Evaluation | None:
                    return self._sweep_one(sagemaker, name, arn, resource_id=rid, params=params)

                outcome = guarded(RESOURCE_TYPE, resource_id, decide_one, gone=is_gone)
                if outcome is not None:
                    yield outcome

    def _sweep_one(
        self, sagemaker: Any, name: str, arn: str, *, resource_id: str, params: RuleParameters[Params]
    ) -> Evaluation | None:
        read = describe_for_sweep(sagemaker, name, arn, params.exemption_tag_key)
        if read is None:
            return None  # deleted between listing and reading: Config records the deletion itself
        response, tags = read
        exempt = params.exemption(RESOURCE_TYPE, resource_id, tags)
        if exempt is not None:
            return exempt
        with reading("DescribeNotebookInstance"):
            notebook = NotebookInstance.from_describe(response, tags)
            if notebook.arn is None:
                notebook = replace(notebook, arn=arn)
            return self._verdict(notebook, resource_id, params.rule)


lambda_handler = lambda_handler_for(SAGEMAKER_NOTEBOOK_HARDENED)
