"""MlGuardrails-HardenSageMakerNotebook (remediation of SAGEMAKER_NOTEBOOK_HARDENED) run by the local runner
against moto: harden per starting status (restart only if it was InService), idempotence, the KMS key it
cannot fix, bad input, faults after the first mutating step, and the Remediation binding in parameters.json.

moto 5.2.5 vs AWS, as met here (the runbook follows AWS; the gaps are patched in the tests only):
- moto does not implement UpdateNotebookInstance and neither stores nor returns
  InstanceMetadataServiceConfiguration: ``tests.test_sagemaker_hardened.patch_moto_sagemaker`` adds both to
  moto's model (an update is refused unless the notebook is Stopped, as AWS refuses it).
- moto's transitions are instant (no Pending, Stopping, Updating, Failed): those statuses are injected on
  DescribeNotebookInstance (``ml_guardrails.testing.inject``); moto's StopNotebookInstance succeeds on a
  Stopped notebook (AWS: ValidationException), so the tests assert it is never sent then.
- moto keeps the name's case in the ARN (AWS lower-cases it): handled by the case-insensitive fallback,
  tested with a lower-cased ARN of a mixed-case notebook.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from moto import mock_aws

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.runbooks import runner as rb
from ml_guardrails.testing import ACCOUNT_ID, REGION, inject
from tests.test_remediation_sagemaker import MUTATING, create_notebook, describe_sequence
from tests.test_sagemaker_hardened import IMDS, NOTEBOOK_KEY_ARN, patch_moto_sagemaker

RULE_NAME = "SAGEMAKER_NOTEBOOK_HARDENED"
DOCUMENT = "MlGuardrails-HardenSageMakerNotebook"
ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "remediations" / f"{DOCUMENT}.yaml"
PARAMETERS_JSON = ROOT / "rules" / RULE_NAME / "parameters.json"
SPEC = get(RULE_NAME)
DOC: dict[str, Any] = yaml.safe_load(RUNBOOK.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def session() -> Iterator[boto3.Session]:
    patch_moto_sagemaker()
    with mock_aws():
        yield boto3.Session(region_name=REGION)


class Calls:
    """Every SageMaker operation the session's clients send, with its parameters (recorded first)."""

    def __init__(self, session: boto3.Session) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        session.events.register_first("provide-client-params.sagemaker", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.made.append((model.name, copy.deepcopy(params)))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.made]

    def mutating(self) -> list[str]:
        return [n for n in self.names if n in MUTATING]

    def params_of(self, operation: str) -> list[dict[str, Any]]:
        return [p for n, p in self.made if n == operation]


# create_notebook (shared with the quarantine runbook's tests) keeps the API defaults: root access Enabled,
# IMDSv1, no key -- not hardened unless ``extra`` says otherwise.
HARDENED: dict[str, Any] = {
    "RootAccess": "Disabled",
    "KmsKeyId": NOTEBOOK_KEY_ARN,
    IMDS: {"MinimumInstanceMetadataServiceVersion": "2"},
}


def describe(session: boto3.Session, name: str) -> dict[str, Any]:
    sm: Any = session.client("sagemaker")
    response: dict[str, Any] = sm.describe_notebook_instance(NotebookInstanceName=name)
    response.pop("ResponseMetadata", None)
    return response


def settings(session: boto3.Session, name: str) -> tuple[str, str | None, str | None]:
    """(status, RootAccess, IMDS minimum version) as SageMaker reports them."""
    d = describe(session, name)
    return (
        d["NotebookInstanceStatus"],
        d.get("RootAccess"),
        (d.get(IMDS) or {}).get("MinimumInstanceMetadataServiceVersion"),
    )


def verdicts(session: boto3.Session, **parameters: str) -> dict[str, tuple[str, str]]:
    """resource id -> (compliance, annotation) from the rule's periodic sweep."""
    rule = SPEC.rule_class()()
    clients = ClientFactory(region=REGION, assume_role_mode=False, session=session)
    evaluations, failures = rule.run_sweep(clients, rule.evaluate_parameters(parameters))
    assert failures == []
    return {e.complianceResourceId: (e.complianceType, e.annotation) for e in evaluations}


def config_parameters(resource_id: str) -> dict[str, Any]:
    """The runbook parameters AWS Config passes for ``resource_id`` with this rule's binding."""
    assert SPEC.remediation is not None
    return SPEC.remediation.parameters_for(resource_id)


def run(session: boto3.Session, parameters: dict[str, Any], clock: Any = None) -> rb.Execution:
    return rb.run_runbook(
        DOC, parameters, session, clock=clock or rb.FakeClock(), account_id=ACCOUNT_ID, region=REGION
    )


def failed_message(execution: rb.Execution) -> str:
    assert execution.status == "Failed", (execution.status, execution.failure_message)
    return str(execution.failure_message)


def output(execution: rb.Execution, ref: str) -> Any:
    """A step's output (``Step.Name``), whether or not the document lists it among its outputs."""
    step_name, name = ref.split(".", 1)
    (step,) = [s for s in execution.steps if s.name == step_name]
    return step.outputs[name]


def steps_run(execution: rb.Execution) -> list[str]:
    return [s.name for s in execution.steps if s.status == "Success"]


# ---------------------------------------------------------------------------- the document itself
def test_document_shape_and_validation() -> None:
    from ml_guardrails.runbooks.validate import validate_runbook

    assert validate_runbook(RUNBOOK) == []
    assert DOC["schemaVersion"] == "0.3"
    assert DOC["assumeRole"] == "{{ AutomationAssumeRole }}"
    description = DOC["description"]
    for action in ("DescribeNotebookInstance", "StopNotebookInstance", "UpdateNotebookInstance",
                   "StartNotebookInstance", "ListNotebookInstances"):  # fmt: skip
        assert f"sagemaker:{action}" in description
    assert "cannot add a KMS key" in description
    params = DOC["parameters"]
    assert set(params) == {"NotebookInstanceName", "AutomationAssumeRole"}
    for name, spec in params.items():
        assert spec["type"] == "String" and spec["description"] and spec["allowedPattern"], name
    for step in DOC["mainSteps"]:
        assert step.get("onFailure") == "Abort", step["name"]
        if step["action"].startswith("aws:waitFor"):
            assert 0 < step["timeoutSeconds"] <= 3600, step["name"]


def test_update_parameters_match_botocore() -> None:
    """The script's UpdateNotebookInstance arguments are members of botocore's input shape, with values
    its enum / pattern accept."""
    model = boto3.Session(region_name=REGION).client("sagemaker").meta.service_model
    shape: Any = model.operation_model("UpdateNotebookInstance").input_shape
    assert {"RootAccess", IMDS} <= set(shape.members)
    assert "Disabled" in shape.members["RootAccess"].enum
    version = shape.members[IMDS].members["MinimumInstanceMetadataServiceVersion"]
    assert re.fullmatch(version.metadata["pattern"], "2")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("nb-1", True),
        (f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/mynotebook", True),
        ("", False),
        ("nb_1", False),
        ("a" * 64, False),
        (f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance/i-0123", False),
        ("nb;aws sagemaker delete-notebook-instance", False),
    ],
)
def test_name_pattern(value: str, ok: bool) -> None:
    pattern = DOC["parameters"]["NotebookInstanceName"]["allowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


def test_remediation_binding() -> None:
    raw = json.loads(PARAMETERS_JSON.read_text(encoding="utf-8"))["Parameters"]["Remediation"]
    assert raw["TargetId"] == DOCUMENT == RUNBOOK.stem
    assert raw["ConfigRuleName"] == RULE_NAME
    assert raw["Automatic"] is False
    assert raw["Parameters"] == {"NotebookInstanceName": {"ResourceValue": {"Value": "RESOURCE_ID"}}}
    assert SPEC.remediation is not None
    assert SPEC.remediation.runbook_path.resolve() == RUNBOOK.resolve()


# --------------------------------------------------------------------------------------- harden
def test_running_notebook_is_stopped_updated_restarted_and_becomes_compliant(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-open", KmsKeyId=NOTEBOOK_KEY_ARN)
    before = describe(session, "nb-open")
    assert verdicts(session)[arn][0] == "NON_COMPLIANT"
    calls = Calls(session)

    execution = run(session, config_parameters(arn))

    assert execution.status == "Success", execution.failure_message
    assert calls.mutating() == ["StopNotebookInstance", "UpdateNotebookInstance", "StartNotebookInstance"]
    (update,) = calls.params_of("UpdateNotebookInstance")
    assert update == {
        "NotebookInstanceName": "nb-open",
        "RootAccess": "Disabled",
        IMDS: {"MinimumInstanceMetadataServiceVersion": "2"},
    }
    assert settings(session, "nb-open") == ("InService", "Disabled", "2")
    after = describe(session, "nb-open")
    for key in ("DirectInternetAccess", "SubnetId", "RoleArn", "VolumeSizeInGB", "InstanceType", "KmsKeyId",
                "NotebookInstanceArn"):  # fmt: skip
        assert after.get(key) == before.get(key), key
    out = execution.outputs
    assert output(execution, "StopIfRunning.StoppedByUs") is True
    assert output(execution, "UpdateNotebook.Updated") == f"RootAccess,{IMDS}"
    assert out["VerifyHardening.Changed"] is True
    assert (
        "hardened: root access Disabled, IMDSv2 only; now InService (was InService)"
        in out["VerifyHardening.Result"]
    )
    assert verdicts(session)[arn][0] == "COMPLIANT"


def test_stopped_notebook_is_updated_and_not_started(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-stopped", **{**HARDENED, "RootAccess": "Enabled"})
    session.client("sagemaker").stop_notebook_instance(NotebookInstanceName="nb-stopped")
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert calls.mutating() == ["UpdateNotebookInstance"]  # never Stop (AWS refuses it) nor Start
    (update,) = calls.params_of("UpdateNotebookInstance")
    assert update == {"NotebookInstanceName": "nb-stopped", "RootAccess": "Disabled"}  # IMDS was already 2
    assert settings(session, "nb-stopped") == ("Stopped", "Disabled", "2")
    assert "ChooseRestart" in steps_run(execution) and "StartNotebook" not in steps_run(execution)
    assert verdicts(session)[arn][0] == "COMPLIANT"


def test_second_run_changes_nothing(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-twice", KmsKeyId=NOTEBOOK_KEY_ARN)
    first = run(session, config_parameters(arn))
    assert first.status == "Success", first.failure_message
    before = describe(session, "nb-twice")
    calls = Calls(session)
    second = run(session, config_parameters(arn))
    assert second.status == "Success", second.failure_message
    assert calls.mutating() == []
    assert describe(session, "nb-twice") == before
    assert steps_run(second) == ["ResolveNotebook", "ChooseAction", "VerifyHardening"]
    assert second.outputs["VerifyHardening.Changed"] is False
    assert "nothing changed" in second.outputs["VerifyHardening.Result"]


def test_missing_kms_key_is_reported_and_stays_non_compliant(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-nokey")
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert "no KmsKeyId" in execution.outputs["VerifyHardening.Result"]
    assert "recreate the notebook" in execution.outputs["VerifyHardening.Result"]
    compliance, annotation = verdicts(session)[arn]
    assert compliance == "NON_COMPLIANT"
    assert annotation.startswith("Notebook: no KmsKeyId") and "root" not in annotation.split(".")[0]


def test_accepts_a_plain_name_and_an_aws_style_lower_cased_arn(session: boto3.Session) -> None:
    create_notebook(session, "MyNotebook")
    lowered = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/mynotebook"
    execution = run(session, config_parameters(lowered))
    assert execution.status == "Success", execution.failure_message
    assert settings(session, "MyNotebook") == ("InService", "Disabled", "2")
    create_notebook(session, "plain-name")
    assert run(session, {"NotebookInstanceName": "plain-name"}).status == "Success"


# ------------------------------------------------------------------------- transitional statuses
def test_pending_notebook_is_waited_for_then_hardened_and_restarted(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-pending")
    # ResolveNotebook sees Pending, WaitUntilSettled polls Pending twice, then moto's InService.
    describe_sequence(session, "nb-pending", ["Pending", "Pending", "Pending"])
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert output(execution, "ResolveNotebook.Status") == "Pending"
    assert calls.mutating() == ["StopNotebookInstance", "UpdateNotebookInstance", "StartNotebookInstance"]
    assert settings(session, "nb-pending") == ("InService", "Disabled", "2")


def test_stopping_notebook_is_waited_for_and_not_restarted(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-stopping")
    session.client("sagemaker").stop_notebook_instance(NotebookInstanceName="nb-stopping")
    # Resolve, WaitUntilSettled and StopIfRunning see Stopping; WaitUntilStopped polls once more.
    describe_sequence(session, "nb-stopping", ["Stopping"] * 4)
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert output(execution, "StopIfRunning.StoppedByUs") is False
    assert calls.mutating() == ["UpdateNotebookInstance"]
    assert settings(session, "nb-stopping") == ("Stopped", "Disabled", "2")


def test_update_is_waited_for(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-updating")
    calls = Calls(session)
    real = describe(session, "nb-updating")
    updating = {**real, "NotebookInstanceStatus": "Updating"}
    polls = {"n": 0}

    def after_update(_: Any) -> bool:
        if "UpdateNotebookInstance" in calls.names and polls["n"] < 2:
            polls["n"] += 1
            return True
        return False

    inject(session, "sagemaker.DescribeNotebookInstance", response=updating, when=after_update)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert polls["n"] == 2
    waited = next(s for s in execution.steps if s.name == "WaitUntilUpdated")
    assert waited.status == "Success"
    assert settings(session, "nb-updating") == ("InService", "Disabled", "2")


@pytest.mark.parametrize(("status", "message"), [("Failed", "is Failed"), ("Deleting", "being deleted")])
def test_failed_or_deleting_notebook_fails_clearly_and_changes_nothing(
    session: boto3.Session, status: str, message: str
) -> None:
    arn = create_notebook(session, "nb-broken")
    broken = {**describe(session, "nb-broken"), "NotebookInstanceStatus": status}
    inject(session, "sagemaker.DescribeNotebookInstance", response=broken)
    calls = Calls(session)
    text = failed_message(run(session, config_parameters(arn)))
    assert message in text and "Nothing changed" in text
    assert calls.mutating() == []


def test_notebook_stuck_pending_times_out_and_changes_nothing(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-stuck")
    stuck = {**describe(session, "nb-stuck"), "NotebookInstanceStatus": "Pending"}
    inject(session, "sagemaker.DescribeNotebookInstance", response=stuck)
    calls = Calls(session)
    clock = rb.FakeClock()
    execution = run(session, config_parameters(arn), clock=clock)
    assert execution.status == "TimedOut", execution.failure_message
    assert calls.mutating() == []
    assert 1800 - 60 <= clock.time <= 1800


# ------------------------------------------------------------------------------------- bad input
def test_missing_notebook_fails_clearly(session: boto3.Session) -> None:
    calls = Calls(session)
    gone = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/nb-gone"
    message = failed_message(run(session, config_parameters(gone)))
    assert f"Notebook instance nb-gone not found in account {ACCOUNT_ID} Region {REGION}" in message
    assert calls.mutating() == []


@pytest.mark.parametrize(
    "foreign",
    [
        f"arn:aws:sagemaker:{REGION}:210987654321:notebook-instance/nb-foreign",
        f"arn:aws:sagemaker:eu-west-1:{ACCOUNT_ID}:notebook-instance/nb-foreign",
    ],
)
def test_foreign_arn_fails_before_any_call(session: boto3.Session, foreign: str) -> None:
    create_notebook(session, "nb-foreign")
    calls = Calls(session)
    message = failed_message(run(session, config_parameters(foreign)))
    assert "run it there" in message
    assert calls.names == []
    assert settings(session, "nb-foreign") == ("InService", None, None)


@pytest.mark.parametrize(
    "parameters",
    [
        {"NotebookInstanceName": "nb_underscore"},
        {"NotebookInstanceName": "nb-bad", "AutomationAssumeRole": "role/x"},
        {},
    ],
)
def test_bad_parameters_fail_before_any_call(session: boto3.Session, parameters: dict[str, Any]) -> None:
    create_notebook(session, "nb-bad")
    calls = Calls(session)
    with pytest.raises(rb.RunbookError):
        run(session, parameters)
    assert calls.names == []


# ---------------------------------------------------------------------------- faults and reruns
def test_update_denied_leaves_it_stopped_and_says_so_then_a_rerun_completes(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-denied", KmsKeyId=NOTEBOOK_KEY_ARN)
    fault = {"on": True}
    inject(
        session,
        "sagemaker.UpdateNotebookInstance",
        error_code="AccessDeniedException",
        when=lambda _: fault["on"],
    )
    message = failed_message(run(session, config_parameters(arn)))
    assert "AccessDenied" in message and "left Stopped" in message
    assert settings(session, "nb-denied") == ("Stopped", None, None)

    fault["on"] = False
    calls = Calls(session)
    rerun = run(session, config_parameters(arn))
    assert rerun.status == "Success", rerun.failure_message
    assert calls.mutating() == ["UpdateNotebookInstance"]  # it was Stopped this time: not restarted
    assert settings(session, "nb-denied") == ("Stopped", "Disabled", "2")
    assert verdicts(session)[arn][0] == "COMPLIANT"


def test_update_that_does_not_take_is_caught_before_restart(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-ignored")
    calls = Calls(session)
    inject(session, "sagemaker.UpdateNotebookInstance", response={})  # accepted, but nothing changes
    message = failed_message(run(session, config_parameters(arn)))
    assert "RootAccess Enabled" in message and "wanted Stopped, Disabled, 2" in message
    assert "this automation stopped it" in message
    assert "StartNotebookInstance" not in calls.names
    assert settings(session, "nb-ignored") == ("Stopped", None, None)


def test_concurrent_revert_is_caught_by_the_final_check(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-reverted")
    calls = Calls(session)
    reverted = {**describe(session, "nb-reverted"), "RootAccess": "Enabled"}
    inject(
        session,
        "sagemaker.DescribeNotebookInstance",
        response=reverted,
        when=lambda _: "StartNotebookInstance" in calls.names,
    )
    message = failed_message(run(session, config_parameters(arn)))
    assert "is not hardened after this automation" in message and "RootAccess Enabled" in message


def test_restart_that_fails_is_reported(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-nostart")
    calls = Calls(session)
    failed = {
        **describe(session, "nb-nostart"),
        "NotebookInstanceStatus": "Failed",
        "RootAccess": "Disabled",
        IMDS: {"MinimumInstanceMetadataServiceVersion": "2"},
    }
    inject(
        session,
        "sagemaker.DescribeNotebookInstance",
        response=failed,
        when=lambda _: "StartNotebookInstance" in calls.names,
    )
    message = failed_message(run(session, config_parameters(arn)))
    assert "hardened but Failed after restarting" in message
