"""SAGEMAKER_NOTEBOOK_HARDENED against moto: the sweep, the handler end to end per trigger, fail-closed
paths, invalid parameters, and the seed for the demo and the fault matrix (``seed_sagemaker_hardened``,
``change_items``).

moto 5.2.5 vs AWS, as met here (the code follows AWS; the gaps are patched in this test module only):
- moto ignores ``InstanceMetadataServiceConfiguration`` on CreateNotebookInstance and never returns it from
  DescribeNotebookInstance; AWS returns it (botocore: DescribeNotebookInstanceOutput member; created without
  it, the minimum version defaults to 1). moto does not implement UpdateNotebookInstance at all.
  :func:`patch_moto_sagemaker` fills both gaps in moto's *model* (below botocore, so faults injected at the
  botocore layer -- ``ml_guardrails.testing.inject``, ``tests.faults`` -- still apply): the IMDS setting
  given at creation or by an update is stored and returned; UpdateNotebookInstance applies RootAccess and
  the IMDS configuration, and is refused unless the notebook is Stopped, as AWS refuses it.
- moto omits RootAccess and KmsKeyId when they were not given (AWS: RootAccess defaults to Enabled, which is
  how the rule reads an absent value); moto does not check that a KmsKeyId names an existing key (AWS does),
  so the seed uses fixed key ARNs and makes no KMS call -- nor does the rule.
- moto keeps the name's case in NotebookInstanceArn (AWS lower-cases it): the seed uses lower-case names.
- moto notebooks are InService at once and never pass through Pending/Deleting: Deleting is injected.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from rdklib import InvalidParametersError

from ml_guardrails.catalog import get
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import (
    ACCOUNT_ID,
    IMDS,
    NOTIFICATION_TIME,
    REGION,
    PutEvaluationsRecorder,
    change_event,
    history_item,
    inject,
    oversized_event,
    patch_moto_sagemaker,
    scheduled_event,
)

mod = get("SAGEMAKER_NOTEBOOK_HARDENED").load_module()
RULE = mod.SAGEMAKER_NOTEBOOK_HARDENED
RTYPE = "AWS::SageMaker::NotebookInstance"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"
EXEMPTION_TAG = "ml-guardrails:exemption"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/AmazonSageMaker-ExecutionRole-ml"
NOTEBOOK_KEY_ID = "5e1f0c3a-7b2d-4c8e-9a6f-0d4b3c2a1e9f"
NOTEBOOK_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{NOTEBOOK_KEY_ID}"  # the approved notebook key
TEAM_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"  # not approved
# The demo (and the fault matrix) run the rule with these parameters.
DEMO_PARAMETERS = {"ExemptionTagKey": EXEMPTION_TAG, "KmsKeyArns": NOTEBOOK_KEY_ARN}


def arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/{name}"


# moto's gaps: ml_guardrails.testing.patch_moto_sagemaker (shared with the demo).


# ------------------------------------------------------------------------------------- the seed
# The verdict each seeded notebook gets with DEMO_PARAMETERS (keys: notebook names).
SEED_VERDICTS = {
    "nb-hardened": "COMPLIANT",  # root Disabled, approved key ARN, IMDSv2
    "nb-key-by-id": "COMPLIANT",  # the approved key named by its bare id (same account and Region)
    "nb-root-enabled": "NON_COMPLIANT",  # root access Enabled
    "nb-imdsv1": "NON_COMPLIANT",  # IMDSv1 still allowed
    "nb-team-key": "NON_COMPLIANT",  # a customer key, but not in KmsKeyArns
    "nb-alias-key": "NON_COMPLIANT",  # an alias: which key it named at creation is not provable
    "nb-api-defaults": "NON_COMPLIANT",  # nothing set: root Enabled, no key, IMDSv1 (all three named)
    "nb-stopped-root": "NON_COMPLIANT",  # root Enabled, stopped: applies again on start
    "nb-exempt": "NOT_APPLICABLE",  # API defaults, exempted by tag with a reason
}
# Without KmsKeyArns, any customer key (alias included) passes the key sub-check.
VERDICT_CHANGES_WITHOUT_ALLOWLIST = {"nb-team-key": "COMPLIANT", "nb-alias-key": "COMPLIANT"}


def seed_sagemaker_hardened(session: boto3.Session) -> None:
    """Seed notebooks showing every verdict of SAGEMAKER_NOTEBOOK_HARDENED with DEMO_PARAMETERS (see
    SEED_VERDICTS). Patches moto's SageMaker gaps first (:func:`patch_moto_sagemaker`)."""
    patch_moto_sagemaker()
    sm: Any = session.client("sagemaker")

    def notebook(name: str, **extra: Any) -> None:
        sm.create_notebook_instance(
            NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE, **extra
        )

    hardened: dict[str, Any] = {
        "RootAccess": "Disabled",
        "KmsKeyId": NOTEBOOK_KEY_ARN,
        IMDS: {"MinimumInstanceMetadataServiceVersion": "2"},
    }
    notebook("nb-hardened", **hardened)
    notebook("nb-key-by-id", **{**hardened, "KmsKeyId": NOTEBOOK_KEY_ID})
    notebook("nb-root-enabled", **{**hardened, "RootAccess": "Enabled"})
    notebook("nb-imdsv1", **{**hardened, IMDS: {"MinimumInstanceMetadataServiceVersion": "1"}})
    notebook("nb-team-key", **{**hardened, "KmsKeyId": TEAM_KEY_ARN})
    notebook("nb-alias-key", **{**hardened, "KmsKeyId": "alias/ml-notebooks"})
    notebook("nb-api-defaults")
    notebook("nb-stopped-root", **{**hardened, "RootAccess": "Enabled"})
    sm.stop_notebook_instance(NotebookInstanceName="nb-stopped-root")
    notebook(
        "nb-exempt",
        Tags=[
            {"Key": EXEMPTION_TAG, "Value": "Risk acceptance RA-4410: vendor image needs root, to 2027-03-31"}
        ],
    )


def ci_for(session: boto3.Session, name: str, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A configuration item for the seeded notebook ``name`` (its settings as moto describes them),
    without the configuration keys in ``drop`` (so the rule must read DescribeNotebookInstance)."""
    ci: dict[str, Any] = json.loads(
        (FIXTURES / "sagemaker_notebook_isolated.json").read_text(encoding="utf-8")
    )
    sm: Any = session.client("sagemaker")
    described: dict[str, Any] = sm.describe_notebook_instance(NotebookInstanceName=name)
    configuration = ci["configuration"]
    for key in ("RootAccess", "KmsKeyId", IMDS):
        configuration.pop(key, None)
        if key in described:
            configuration[key] = described[key]
    for key in drop:
        configuration.pop(key, None)
    configuration["NotebookInstanceName"] = ci["resourceName"] = name
    configuration["NotebookInstanceArn"] = ci["resourceId"] = ci["ARN"] = arn(name)
    configuration["Tags"], ci["tags"] = [], {}
    return ci


def change_items(session: boto3.Session) -> list[dict[str, Any]]:
    """Change-path items whose evaluation needs DescribeNotebookInstance (for the fault matrix)."""
    return [
        ci_for(session, "nb-hardened", drop=(IMDS,)),
        ci_for(session, "nb-imdsv1", drop=(IMDS, "RootAccess")),
    ]


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield PutEvaluationsRecorder()


def count_calls(session: boto3.Session) -> Counter[str]:
    calls: Counter[str] = Counter()

    def _count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}.{model.name}"] += 1

    session.events.register("provide-client-params", _count)
    return calls


def described(session: boto3.Session, name: str, **changes: Any) -> dict[str, Any]:
    sm: Any = session.client("sagemaker")
    response: dict[str, Any] = sm.describe_notebook_instance(NotebookInstanceName=name)
    response.pop("ResponseMetadata", None)
    response.update(changes)
    return response


# ------------------------------------------------------------------------------------ moto patch
def test_moto_patch_stores_imds_and_updates_only_stopped_notebooks(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    sm: Any = aws.session.client("sagemaker")
    assert sm.describe_notebook_instance(NotebookInstanceName="nb-imdsv1")[IMDS] == {
        "MinimumInstanceMetadataServiceVersion": "1"
    }
    assert IMDS not in sm.describe_notebook_instance(NotebookInstanceName="nb-api-defaults")
    with pytest.raises(sm.exceptions.ClientError, match=r"Status \(InService\) not in"):
        sm.update_notebook_instance(NotebookInstanceName="nb-imdsv1", RootAccess="Disabled")
    sm.stop_notebook_instance(NotebookInstanceName="nb-imdsv1")
    sm.update_notebook_instance(
        NotebookInstanceName="nb-imdsv1",
        RootAccess="Enabled",
        **{IMDS: {"MinimumInstanceMetadataServiceVersion": "2"}},
    )
    after = sm.describe_notebook_instance(NotebookInstanceName="nb-imdsv1")
    assert (after["RootAccess"], after[IMDS]["MinimumInstanceMetadataServiceVersion"]) == ("Enabled", "2")


# -------------------------------------------------------------------------------------- the sweep
def test_seed_shows_every_verdict_in_one_sweep(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    calls = count_calls(aws.session)
    result = handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    assert aws.verdicts() == {arn(name): verdict for name, verdict in SEED_VERDICTS.items()}
    assert {e["OrderingTimestamp"] for e in result} == {NOTIFICATION_TIME}
    by_name = {e["ComplianceResourceId"].rsplit("/", 1)[1]: e["Annotation"] for e in result}
    assert all(len(a) <= 256 for a in by_name.values())
    assert "RA-4410" in by_name["nb-exempt"]
    assert "root access Enabled" in by_name["nb-root-enabled"]
    assert "IMDSv1 allowed" in by_name["nb-imdsv1"]
    assert "not in KmsKeyArns" in by_name["nb-team-key"] and TEAM_KEY_ARN in by_name["nb-team-key"]
    assert "not provable" in by_name["nb-alias-key"]
    for fragment in ("RootAccess not set", "no KmsKeyId", "IMDS minimum version not shown", "Recreate"):
        assert fragment in by_name["nb-api-defaults"]
    assert "It is Stopped." in by_name["nb-stopped-root"]
    assert NOTEBOOK_KEY_ID in by_name["nb-key-by-id"]
    # One describe per notebook, tags only because ExemptionTagKey is set; no KMS, no EC2.
    assert calls["sagemaker.DescribeNotebookInstance"] == len(SEED_VERDICTS)
    assert calls["sagemaker.ListTags"] == len(SEED_VERDICTS)
    assert {k.split(".")[0] for k in calls} <= {"sagemaker", "config", "sts"}


def test_sweep_without_parameters_accepts_any_customer_key_and_reads_no_tags(
    aws: PutEvaluationsRecorder,
) -> None:
    seed_sagemaker_hardened(aws.session)
    calls = count_calls(aws.session)
    handle(RULE(), scheduled_event(), session=aws.session)
    expected = {arn(n): v for n, v in SEED_VERDICTS.items()}
    expected.update({arn(n): v for n, v in VERDICT_CHANGES_WITHOUT_ALLOWLIST.items()})
    expected[arn("nb-exempt")] = "NON_COMPLIANT"
    assert aws.verdicts() == expected
    assert calls["sagemaker.ListTags"] == 0


def test_deleting_notebook_is_not_applicable(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    inject(
        aws.session,
        "sagemaker.DescribeNotebookInstance",
        response=described(aws.session, "nb-root-enabled", NotebookInstanceStatus="Deleting"),
        when=lambda p: p.get("NotebookInstanceName") == "nb-root-enabled",
    )
    handle(RULE(), scheduled_event(), session=aws.session)
    assert aws.verdicts()[arn("nb-root-enabled")] == "NOT_APPLICABLE"


def test_failed_notebook_is_evaluated(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    inject(
        aws.session,
        "sagemaker.DescribeNotebookInstance",
        response=described(aws.session, "nb-imdsv1", NotebookInstanceStatus="Failed"),
        when=lambda p: p.get("NotebookInstanceName") == "nb-imdsv1",
    )
    result = handle(RULE(), scheduled_event(), session=aws.session)
    (evaluation,) = [e for e in result if e["ComplianceResourceId"] == arn("nb-imdsv1")]
    assert evaluation["ComplianceType"] == "NON_COMPLIANT"
    assert "It is Failed." in evaluation["Annotation"]


def test_notebook_deleted_between_list_and_describe_is_skipped(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    inject(
        aws.session,
        "sagemaker.DescribeNotebookInstance",
        error_code="ValidationException",
        when=lambda p: p.get("NotebookInstanceName") == "nb-imdsv1",
    )
    # ValidationException alone is not "gone": only RecordNotFound is. Make moto say it for real instead.
    other = boto3.client("sagemaker", region_name=REGION)

    def delete_after_listing(**_: Any) -> None:
        names = {n["NotebookInstanceName"] for n in other.list_notebook_instances()["NotebookInstances"]}
        if "nb-team-key" in names:
            other.stop_notebook_instance(NotebookInstanceName="nb-team-key")
            other.delete_notebook_instance(NotebookInstanceName="nb-team-key")

    aws.session.events.register("after-call.sagemaker.ListNotebookInstances", delete_after_listing)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(), session=aws.session)
    verdicts = aws.verdicts()
    assert arn("nb-team-key") not in verdicts  # gone: skipped, no failure
    assert arn("nb-imdsv1") not in verdicts  # a ValidationException that is not RecordNotFound: a failure
    failures = json.loads(str(info.value))["failures"]
    assert [(f["resourceId"], f["code"]) for f in failures] == [(arn("nb-imdsv1"), "ValidationException")]
    assert len(verdicts) == len(SEED_VERDICTS) - 2


# --------------------------------------------------------------------------- end to end per trigger
def test_change_end_to_end_without_api_reads(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    for name in ("nb-hardened", "nb-team-key", "nb-imdsv1"):
        ci = ci_for(aws.session, name)
        calls = count_calls(aws.session)
        (evaluation,) = handle(RULE(), change_event(ci, DEMO_PARAMETERS), session=aws.session)
        assert evaluation["ComplianceType"] == SEED_VERDICTS[name], evaluation
        assert evaluation["ComplianceResourceId"] == arn(name)
        assert evaluation["OrderingTimestamp"] == ci["configurationItemCaptureTime"]
        assert not any(k.startswith("sagemaker.") for k in calls)


def test_change_item_without_imds_reads_describe(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    cases = {"nb-hardened": "COMPLIANT", "nb-imdsv1": "NON_COMPLIANT", "nb-api-defaults": "NON_COMPLIANT"}
    for name, expected in cases.items():
        ci = ci_for(aws.session, name, drop=(IMDS, "RootAccess"))
        calls = count_calls(aws.session)
        (evaluation,) = handle(RULE(), change_event(ci, DEMO_PARAMETERS), session=aws.session)
        assert evaluation["ComplianceType"] == expected, evaluation
        assert calls["sagemaker.DescribeNotebookInstance"] == 1
    assert [e["ComplianceType"] for e in aws.evaluations] == list(cases.values())


def test_change_items_for_the_fault_matrix_need_the_api(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    for ci in change_items(aws.session):
        calls = count_calls(aws.session)
        handle(RULE(), change_event(ci, DEMO_PARAMETERS), session=aws.session)
        assert calls["sagemaker.DescribeNotebookInstance"] == 1


def test_oversized_end_to_end(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    notification = ci_for(aws.session, "nb-root-enabled")
    history = history_item(notification, dt.datetime(2026, 11, 27, 8, 30, 0, 125000, tzinfo=dt.UTC))
    inject(aws.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    result = handle(RULE(), oversized_event(RTYPE, arn("nb-root-enabled")), session=aws.session)
    (evaluation,) = result
    assert evaluation["ComplianceType"] == "NON_COMPLIANT"
    assert evaluation["ComplianceResourceId"] == arn("nb-root-enabled")
    assert evaluation["OrderingTimestamp"] == "2026-11-27T08:30:00.125Z"
    json.dumps(result)


# ------------------------------------------------------------------------------------- fail closed
def test_access_denied_on_one_notebook_posts_the_others_then_fails(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    inject(
        aws.session,
        "sagemaker.DescribeNotebookInstance",
        error_code="AccessDeniedException",
        when=lambda p: p.get("NotebookInstanceName") == "nb-hardened",
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    assert aws.verdicts() == {arn(n): v for n, v in SEED_VERDICTS.items() if n != "nb-hardened"}
    failures = json.loads(str(info.value))["failures"]
    assert [(f["resourceId"], f["operation"], f["code"]) for f in failures] == [
        (arn("nb-hardened"), "DescribeNotebookInstance", "AccessDeniedException")
    ]


def test_throttled_list_tags_fails_that_notebook_only(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    inject(
        aws.session,
        "sagemaker.ListTags",
        error_code="ThrottlingException",
        when=lambda p: p.get("ResourceArn") == arn("nb-exempt"),
    )
    with pytest.raises(EvaluationIncomplete, match="ThrottlingException"):
        handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    assert arn("nb-exempt") not in aws.verdicts()
    assert len(aws.verdicts()) == len(SEED_VERDICTS) - 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"RootAccess": 1}, "RootAccess must be a string"),
        ({"KmsKeyId": "projects/key"}, "not a KMS key id"),
        ({IMDS: "2"}, "InstanceMetadataServiceConfiguration must be an object"),
        ({"NotebookInstanceName": None}, "no NotebookInstanceName"),
    ],
)
def test_malformed_describe_response_is_a_failure_naming_the_call(
    aws: PutEvaluationsRecorder, changes: dict[str, Any], message: str
) -> None:
    seed_sagemaker_hardened(aws.session)
    broken = {k: v for k, v in described(aws.session, "nb-hardened", **changes).items() if v is not None}
    inject(
        aws.session,
        "sagemaker.DescribeNotebookInstance",
        response=broken,
        when=lambda p: p.get("NotebookInstanceName") == "nb-hardened",
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(DEMO_PARAMETERS), session=aws.session)
    assert arn("nb-hardened") not in aws.verdicts()
    (failure,) = json.loads(str(info.value))["failures"]
    assert (failure["resourceId"], failure["operation"]) == (arn("nb-hardened"), "DescribeNotebookInstance")
    assert message in failure["message"]


def test_a_failure_to_list_fails_the_sweep_and_posts_nothing(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    inject(aws.session, "sagemaker.ListNotebookInstances", error_code="AccessDeniedException")
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(), session=aws.session)
    assert json.loads(str(info.value))["failures"][0]["resourceId"] == "*"
    assert aws.calls == []


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException"])
def test_unreadable_notebook_on_the_change_path_posts_nothing(aws: PutEvaluationsRecorder, code: str) -> None:
    """ValidationException is also what AWS answers for a notebook deleted since the item was recorded:
    the evaluation fails (never guessed); Config's deletion item then makes it NOT_APPLICABLE."""
    seed_sagemaker_hardened(aws.session)
    ci = ci_for(aws.session, "nb-hardened", drop=(IMDS,))
    inject(aws.session, "sagemaker.DescribeNotebookInstance", error_code=code)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), change_event(ci), session=aws.session)
    assert aws.calls == []
    (failure,) = json.loads(str(info.value))["failures"]
    assert (failure["resourceId"], failure["operation"], failure["code"]) == (
        arn("nb-hardened"),
        "DescribeNotebookInstance",
        code,
    )


def test_malformed_item_on_the_change_path_makes_no_call(aws: PutEvaluationsRecorder) -> None:
    seed_sagemaker_hardened(aws.session)
    ci = ci_for(aws.session, "nb-hardened", drop=(IMDS,))
    ci["configuration"]["KmsKeyId"] = "my key"
    calls = count_calls(aws.session)
    with pytest.raises(EvaluationIncomplete, match="MalformedConfigurationItem"):
        handle(RULE(), change_event(ci), session=aws.session)
    assert calls["sagemaker.DescribeNotebookInstance"] == 0


# ------------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("parameters", "name"),
    [
        ({"KmsKeyArns": "alias/ml-notebooks"}, "KmsKeyArns"),
        ({"KmsKeyArns": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/ml-notebooks"}, "KmsKeyArns"),
        ({"KmsKeyArns": NOTEBOOK_KEY_ID}, "KmsKeyArns"),
        ({"RootAccess": "Disabled"}, "RootAccess"),
        ({"ExemptionTagKey": "aws:cloudformation:stack-name"}, "ExemptionTagKey"),
    ],
)
@pytest.mark.parametrize("trigger", ["change", "periodic"])
def test_invalid_parameter_raises_and_posts_nothing(
    aws: PutEvaluationsRecorder, parameters: dict[str, str], name: str, trigger: str
) -> None:
    ci = json.loads((FIXTURES / "sagemaker_notebook_internet.json").read_text(encoding="utf-8"))
    event = (
        change_event(copy.deepcopy(ci), parameters) if trigger == "change" else scheduled_event(parameters)
    )
    with pytest.raises(InvalidParametersError, match=name):
        handle(RULE(), event, session=aws.session)
    assert aws.calls == []


# ------------------------------------------------------------------------------- property-based
KEY_FORMS = (
    None,
    NOTEBOOK_KEY_ARN,
    NOTEBOOK_KEY_ID,
    TEAM_KEY_ARN,
    "alias/ml-notebooks",
    f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/ml-notebooks",
    "alias/aws/sagemaker",
    f"arn:aws:kms:{REGION}:210987654321:key/{NOTEBOOK_KEY_ID}",
)
ANY_TEXT = st.text(max_size=300)
# Text that is no KMS key reference: no alias/ or ARN shape (no "/" or ":"), not a key id.
NOT_A_KEY = st.text(max_size=80).filter(
    lambda t: "/" not in t and ":" not in t and not re.fullmatch(r"(?i)\s*(mrk-)?[0-9a-f-]{32,36}\s*", t)
)


def key_acceptable(key: str | None, allowlist: bool) -> bool | None:
    """The oracle for the key sub-check (README semantics); None: the value is no key reference."""
    if key is None or key.startswith(("alias/aws/", f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/aws/")):
        return False
    if key not in KEY_FORMS:
        return None
    if not allowlist:
        return True
    return key in (NOTEBOOK_KEY_ARN, NOTEBOOK_KEY_ID)


@settings(max_examples=300, deadline=None)
@given(
    root=st.one_of(st.sampled_from([None, "Enabled", "Disabled", "disabled"]), ANY_TEXT),
    imds=st.one_of(st.sampled_from([None, "1", "2", " 2", "02"]), ANY_TEXT),
    key=st.one_of(st.sampled_from(KEY_FORMS), NOT_A_KEY),
    status=st.sampled_from([None, "InService", "Stopped", "Failed", "Pending", "Deleting", "Updating"]),
    allowlist=st.booleans(),
    known_arn=st.booleans(),
)
def test_decision_is_compliant_only_when_every_subcheck_passes(
    root: str | None, imds: str | None, key: str | None, status: str | None, allowlist: bool, known_arn: bool
) -> None:
    from ml_guardrails.resources.sagemaker_notebook import NotebookInstance

    notebook = NotebookInstance(
        name="nb",
        arn=arn("nb") if known_arn else None,
        direct_internet_access="Disabled",
        subnet_id=None,
        status=status,
        root_access=root,
        kms_key_id=key,
        minimum_imds_version=imds,
    )
    params = mod.Params(kms_key_arns=frozenset({NOTEBOOK_KEY_ARN}) if allowlist else None)
    try:
        verdict = mod.decide(notebook, params)
    except MalformedConfigurationItem:
        # Only a value that is no key reference, or a bare key id whose account/Region is unknown.
        assert status != "Deleting"
        assert key_acceptable(key, allowlist) is None or (key == NOTEBOOK_KEY_ID and not known_arn)
        return
    assert len(verdict.annotation) <= 256
    if status == "Deleting":
        assert verdict.compliance == "NOT_APPLICABLE"
        return
    key_ok = key_acceptable(key, allowlist)
    expected = root == "Disabled" and imds == "2" and key_ok is True
    assert (verdict.compliance == "COMPLIANT") is expected, (verdict, key_ok)
    assert verdict.compliance in ("COMPLIANT", "NON_COMPLIANT")


def test_lambda_handler_is_exported() -> None:
    assert callable(mod.lambda_handler)
    assert "SAGEMAKER_NOTEBOOK_HARDENED" in (mod.lambda_handler.__doc__ or "")
