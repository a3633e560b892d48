"""MlGuardrails-QuarantineSageMakerNotebook (remediation of SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET) run by the
local runner against moto: quarantine (stop + tag) per starting status, idempotence, bad input, faults
after the first mutating step, and the Remediation binding in parameters.json.

Quarantine does not make the rule COMPLIANT, by design: network settings cannot be changed in place and the
rule keeps a Stopped notebook NON_COMPLIANT ("this applies again when it starts", scenario 11). What the
tests prove instead: the notebook is Stopped, tagged with the reason and the first quarantine time, and the
verdict's annotation says it is Stopped.

moto 5.2.5 vs AWS, as met here (the runbook follows AWS):
- moto keeps the name's case in NotebookInstanceArn and its DescribeNotebookInstance is case-sensitive;
  AWS writes the name lower-cased in the ARN (so Config's RESOURCE_ID holds the lower-cased name). The
  runbook falls back to ListNotebookInstances and a case-insensitive name match; tested with a lower-cased
  ARN of a mixed-case moto notebook.
- moto's StopNotebookInstance succeeds on a Stopped notebook; AWS raises ValidationException
  "Status (Stopped) not in ([InService])". The runbook only stops an InService notebook, and the tests
  assert that no StopNotebookInstance call is made otherwise.
- moto stops instantly and never shows Pending, Updating, Stopping, Failed or Deleting: those statuses are
  injected on DescribeNotebookInstance (ml_guardrails.testing.inject).
- moto's ListTags on an unknown ARN crashes with AttributeError; the runbook tags only the ARN
  that DescribeNotebookInstance returned.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.testing import ACCOUNT_ID, REGION, inject

RULE_NAME = "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"
DOCUMENT = "MlGuardrails-QuarantineSageMakerNotebook"
ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "remediations" / f"{DOCUMENT}.yaml"
PARAMETERS_JSON = ROOT / "rules" / RULE_NAME / "parameters.json"
QUARANTINE, SINCE = "ml-guardrails:quarantine", "ml-guardrails:quarantined-at"
DEFAULT_REASON = "NON_COMPLIANT with SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/service-role/AmazonSageMaker-ExecutionRole-ml"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MUTATING = {
    "StopNotebookInstance",
    "StartNotebookInstance",
    "DeleteNotebookInstance",
    "UpdateNotebookInstance",
    "AddTags",
    "DeleteTags",
}

SPEC = get(RULE_NAME)
DOC: dict[str, Any] = yaml.safe_load(RUNBOOK.read_text(encoding="utf-8"))


def runner() -> Any:
    return pytest.importorskip("ml_guardrails.runbooks", reason="the local runbook runner is not there yet")


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


class Calls:
    """Every SageMaker operation the session's clients send (recorded first, so injected faults count)."""

    def __init__(self, session: boto3.Session) -> None:
        self.names: list[str] = []
        session.events.register_first("before-call.sagemaker", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def mutating(self) -> list[str]:
        return [n for n in self.names if n in MUTATING]

    def clear(self) -> None:
        self.names.clear()


def create_notebook(session: boto3.Session, name: str, **extra: Any) -> str:
    """A notebook with the API defaults (direct internet access Enabled, no VPC): NON_COMPLIANT."""
    sm: Any = session.client("sagemaker")
    arn: str = sm.create_notebook_instance(
        NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE, **extra
    )["NotebookInstanceArn"]
    return arn


def create_notebook_behind_igw(session: boto3.Session, name: str) -> str:
    """Direct access Disabled in a VPC subnet whose route table sends 0.0.0.0/0 to an internet gateway:
    NON_COMPLIANT for the route table alone (the runbook quarantines it all the same)."""
    ec2: Any = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"][
        "SubnetId"
    ]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    group = ec2.create_security_group(GroupName=f"{name}-sg", Description=name, VpcId=vpc)["GroupId"]
    return create_notebook(
        session, name, SubnetId=subnet, SecurityGroupIds=[group], DirectInternetAccess="Disabled"
    )


def verdicts(session: boto3.Session) -> dict[str, tuple[str, str]]:
    """resource id -> (compliance, annotation) from the rule's periodic sweep."""
    rule = SPEC.rule_class()()
    clients = ClientFactory(region=REGION, assume_role_mode=False, session=session)
    evaluations, failures = rule.run_sweep(clients, rule.evaluate_parameters({}))
    assert failures == []
    return {e.complianceResourceId: (e.complianceType, e.annotation) for e in evaluations}


def state(session: boto3.Session, name: str) -> dict[str, Any]:
    """What the runbook may change, and what it must not: the describe response and the tags."""
    sm: Any = session.client("sagemaker")
    described = sm.describe_notebook_instance(NotebookInstanceName=name)
    described.pop("ResponseMetadata")
    tags = sm.list_tags(ResourceArn=described["NotebookInstanceArn"])["Tags"]
    return {"describe": described, "tags": {t["Key"]: t["Value"] for t in tags}}


def config_parameters(resource_id: str) -> dict[str, Any]:
    """The runbook parameters AWS Config passes for ``resource_id`` with this rule's binding. SSM's
    StartAutomationExecution takes every value as a list of strings (botocore: map of
    AutomationParameterKey to a list of AutomationParameterValue), so a String parameter arrives as a
    one-element list; the local runner (for now) wants the bare string, so the lists are unwrapped here --
    see test_runner_takes_static_values_as_config_passes_them."""
    assert SPEC.remediation is not None
    values = SPEC.remediation.parameters_for(resource_id)
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in values.items()}


def run(session: boto3.Session, parameters: dict[str, Any], clock: Any = None) -> Any:
    rb = runner()
    return rb.run_runbook(
        DOC, parameters, session, clock=clock or rb.FakeClock(), account_id=ACCOUNT_ID, region=REGION
    )


def failed_message(execution: Any) -> str:
    assert execution.status == "Failed", (execution.status, execution.failure_message)
    return str(execution.failure_message)


def describe_sequence(session: boto3.Session, name: str, statuses: list[str]) -> None:
    """DescribeNotebookInstance reports ``statuses`` for its first calls, then moto's real answer."""
    real: dict[str, Any] = session.client("sagemaker").describe_notebook_instance(NotebookInstanceName=name)
    real.pop("ResponseMetadata")
    seen = {"n": 0}

    def count(**_: Any) -> None:
        seen["n"] += 1

    session.events.register_first("provide-client-params.sagemaker.DescribeNotebookInstance", count)
    for index, status in enumerate(statuses, start=1):
        response = copy.deepcopy(real)
        response["NotebookInstanceStatus"] = status
        inject(
            session,
            "sagemaker.DescribeNotebookInstance",
            response=response,
            when=lambda _, index=index: seen["n"] == index,
        )


# ---------------------------------------------------------------------------- the document itself
def _references(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from (m.strip() for m in re.findall(r"{{(.*?)}}", value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _successors(step: dict[str, Any], following: str | None) -> list[str]:
    if step["action"] == "aws:branch":
        targets = [c["NextStep"] for c in step["inputs"]["Choices"]]
        targets.append(step["inputs"].get("Default") or following)
        return [t for t in targets if t]
    if step.get("isEnd"):
        return []
    target = step.get("nextStep") or following
    return [target] if target else []


def _paths() -> list[list[str]]:
    steps = DOC["mainSteps"]
    order = [s["name"] for s in steps]
    by_name = {s["name"]: s for s in steps}
    paths: list[list[str]] = []

    def walk(name: str, path: list[str]) -> None:
        assert name not in path, f"loop through {name}"
        path = [*path, name]
        index = order.index(name)
        following = order[index + 1] if index + 1 < len(order) else None
        nexts = _successors(by_name[name], following)
        if not nexts:
            paths.append(path)
        for nxt in nexts:
            walk(nxt, path)

    walk(order[0], [])
    return paths


def test_document_shape() -> None:
    assert DOC["schemaVersion"] == "0.3"
    assert DOC["assumeRole"] == "{{ AutomationAssumeRole }}"
    assert not re.match(r"(?i)^(aws|amazon)", DOCUMENT)
    description = DOC["description"]
    for action in ("DescribeNotebookInstance", "StopNotebookInstance", "ListTags", "AddTags",
                   "ListNotebookInstances"):  # fmt: skip
        assert f"sagemaker:{action}" in description
    params = DOC["parameters"]
    assert set(params) == {"NotebookInstanceName", "Reason", "AutomationAssumeRole"}
    for name, spec in params.items():
        assert spec["type"] == "String" and spec["description"], name
        assert spec.get("allowedPattern") or spec.get("allowedValues"), name
        if "default" in spec:
            assert re.fullmatch(spec["allowedPattern"], spec["default"]), name
    assert params["AutomationAssumeRole"]["default"] == ""
    assert "default" not in params["NotebookInstanceName"]
    names = [s["name"] for s in DOC["mainSteps"]]
    assert len(names) == len(set(names))
    for step in DOC["mainSteps"]:
        assert step.get("onFailure") == "Abort", step["name"]
        if step["action"] == "aws:executeScript":
            inputs = step["inputs"]
            assert (inputs["Runtime"], inputs["Handler"]) == ("python3.11", "handler")
            namespace: dict[str, Any] = {}
            exec(compile(inputs["Script"], step["name"], "exec"), namespace)  # defines, runs nothing
            assert callable(namespace["handler"])
            assert "boto3.client(" in inputs["Script"]
        if step["action"].startswith("aws:waitFor"):
            assert 0 < step["timeoutSeconds"] <= 3600, step["name"]


def test_every_reference_resolves_on_every_path() -> None:
    """``{{ Step.Output }}`` must name an output of a step that ran on *every* path to the referencing
    step: SSM leaves outputs of skipped steps unresolved."""
    outputs = {f"{s['name']}.{o['Name']}" for s in DOC["mainSteps"] for o in s.get("outputs", [])}
    globals_ = {"global:ACCOUNT_ID", "global:REGION", "automation:EXECUTION_ID"}
    by_name = {s["name"]: s for s in DOC["mainSteps"]}
    paths = _paths()
    assert len(paths) >= 4  # stop, wait-then-stop, wait-stopped, already stopped
    for path in paths:
        assert path[-1] == "VerifyQuarantine"
        for position, name in enumerate(path):
            for ref in _references(by_name[name]):
                if ref in DOC["parameters"] or ref in globals_:
                    continue
                assert ref in outputs, f"{name}: {{{{ {ref} }}}} resolves to nothing"
                assert ref.split(".")[0] in path[:position], f"{name}: {ref} may not have run on {path}"
    for ref in DOC["outputs"]:
        assert ref in outputs
        assert all(ref.split(".")[0] in path for path in paths), f"output {ref} missing on some path"
    targets = {t for s in DOC["mainSteps"] for t in _successors(s, None)}
    assert targets <= set(by_name)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("nb-1", True),
        ("MyNotebook", True),
        ("a" * 63, True),
        (f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/mynotebook", True),
        (f"arn:aws-us-gov:sagemaker:us-gov-west-1:{ACCOUNT_ID}:notebook-instance/nb", True),
        ("", False),
        ("-nb", False),
        ("nb_1", False),
        ("nb 1", False),
        ("a" * 64, False),
        (f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance/i-0123", False),
        (f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/", False),
        ("nb;aws sagemaker delete-notebook-instance", False),
    ],
)
def test_name_pattern(value: str, ok: bool) -> None:
    pattern = DOC["parameters"]["NotebookInstanceName"]["allowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is ok


def test_reason_pattern_matches_what_sagemaker_tag_values_allow() -> None:
    pattern = DOC["parameters"]["Reason"]["allowedPattern"]
    assert re.fullmatch(pattern, "INC-1234: direct internet access, see ticket") is None  # comma
    assert re.fullmatch(pattern, "INC-1234: direct internet access / see ticket")
    assert re.fullmatch(pattern, "x" * 256) and not re.fullmatch(pattern, "x" * 257)
    assert not re.fullmatch(pattern, "<script>") and not re.fullmatch(pattern, "")


# ------------------------------------------------------------------------------------------ binding
def test_remediation_binding() -> None:
    raw = json.loads(PARAMETERS_JSON.read_text(encoding="utf-8"))["Parameters"]["Remediation"]
    assert raw["TargetId"] == DOCUMENT == RUNBOOK.stem
    assert raw["TargetType"] == "SSM_DOCUMENT"
    assert raw["ConfigRuleName"] == RULE_NAME
    assert raw["ResourceType"] == "AWS::SageMaker::NotebookInstance"
    assert raw["Automatic"] is False
    bound = raw["Parameters"]
    declared = DOC["parameters"]
    assert set(bound) <= set(declared)
    assert "AutomationAssumeRole" not in bound
    required = {name for name, spec in declared.items() if "default" not in spec}
    assert required <= set(bound)
    assert bound["NotebookInstanceName"] == {"ResourceValue": {"Value": "RESOURCE_ID"}}
    for name, binding in bound.items():
        if "StaticValue" in binding:
            (value,) = binding["StaticValue"]["Values"]
            assert re.fullmatch(declared[name]["allowedPattern"], value), name
    assert SPEC.remediation is not None
    assert SPEC.remediation.runbook_path.resolve() == RUNBOOK.resolve()
    assert SPEC.remediation.resource_parameter == "NotebookInstanceName"


def test_runner_takes_static_values_as_config_passes_them(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-lists")
    assert SPEC.remediation is not None
    execution = run(session, SPEC.remediation.parameters_for(arn))
    assert execution.status == "Success", execution.failure_message


def test_runner_validator_finds_no_problem() -> None:
    validate = pytest.importorskip("ml_guardrails.runbooks.validate", reason="validator not there yet")
    assert validate.validate_runbook(RUNBOOK) == []


# --------------------------------------------------------------------------- quarantine end to end
@pytest.mark.parametrize("make", [create_notebook, create_notebook_behind_igw], ids=["direct", "igw-route"])
def test_quarantines_a_non_compliant_in_service_notebook(
    session: boto3.Session, make: Callable[[boto3.Session, str], str]
) -> None:
    arn = make(session, "nb-leaky")
    assert verdicts(session)[arn][0] == "NON_COMPLIANT"
    before = state(session, "nb-leaky")
    calls = Calls(session)

    execution = run(session, config_parameters(arn))

    assert execution.status == "Success", execution.failure_message
    after = state(session, "nb-leaky")
    assert after["describe"]["NotebookInstanceStatus"] == "Stopped"
    assert after["tags"][QUARANTINE] == DEFAULT_REASON
    assert ISO_UTC.match(after["tags"][SINCE])
    assert calls.mutating() == ["StopNotebookInstance", "AddTags"]
    # nothing else changed: network, role, volume, keys
    for key in ("DirectInternetAccess", "SubnetId", "SecurityGroups", "RoleArn", "VolumeSizeInGB",
                "InstanceType", "NotebookInstanceArn"):  # fmt: skip
        assert after["describe"].get(key) == before["describe"].get(key), key
    out = execution.outputs
    assert out["ResolveNotebook.Status"] == "InService"
    assert out["ResolveNotebook.Arn"] == arn
    assert out["VerifyQuarantine.Changed"] is True
    assert out["VerifyQuarantine.Status"] == "Stopped"
    assert out["TagQuarantine.QuarantinedAt"] == after["tags"][SINCE]
    assert "quarantined: now Stopped (was InService)" in out["VerifyQuarantine.Result"]
    # Still NON_COMPLIANT (the setting applies again on start), and the annotation says it is Stopped.
    compliance, annotation = verdicts(session)[arn]
    assert compliance == "NON_COMPLIANT"
    assert annotation.endswith("It is Stopped: this applies again when it starts.")


def test_second_run_changes_nothing(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-twice")
    first = run(session, config_parameters(arn))
    assert first.status == "Success", first.failure_message
    before = state(session, "nb-twice")
    calls = Calls(session)

    second = run(session, config_parameters(arn))

    assert second.status == "Success", second.failure_message
    assert state(session, "nb-twice") == before
    assert calls.mutating() == []
    assert second.outputs["VerifyQuarantine.Changed"] is False
    assert "nothing changed" in second.outputs["VerifyQuarantine.Result"]
    assert second.outputs["TagQuarantine.TagsAdded"] == "none"
    assert second.outputs["TagQuarantine.QuarantinedAt"] == before["tags"][SINCE]


def test_restarted_quarantined_notebook_is_stopped_again_keeping_the_first_reason_and_time(
    session: boto3.Session,
) -> None:
    arn = create_notebook(
        session, "nb-restarted",
        Tags=[{"Key": QUARANTINE, "Value": "INC-1 first"}, {"Key": SINCE, "Value": "2026-01-02T03:04:05Z"}],
    )  # fmt: skip
    calls = Calls(session)
    execution = run(session, {**config_parameters(arn), "Reason": "INC-2 second"})
    assert execution.status == "Success", execution.failure_message
    after = state(session, "nb-restarted")
    assert after["describe"]["NotebookInstanceStatus"] == "Stopped"
    assert after["tags"] == {QUARANTINE: "INC-1 first", SINCE: "2026-01-02T03:04:05Z"}
    assert calls.mutating() == ["StopNotebookInstance"]
    assert execution.outputs["VerifyQuarantine.Changed"] is True
    assert "tags already present" in execution.outputs["VerifyQuarantine.Result"]


def test_already_stopped_notebook_is_only_tagged(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-stopped")
    session.client("sagemaker").stop_notebook_instance(NotebookInstanceName="nb-stopped")
    assert verdicts(session)[arn][0] == "NON_COMPLIANT"
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    # AWS rejects StopNotebookInstance unless InService (moto accepts it): never sent here.
    assert calls.mutating() == ["AddTags"]
    assert "already Stopped" in execution.outputs["VerifyQuarantine.Result"]
    assert state(session, "nb-stopped")["tags"][QUARANTINE] == DEFAULT_REASON


def test_accepts_a_plain_name_and_an_aws_style_lower_cased_arn(session: boto3.Session) -> None:
    create_notebook(session, "MyNotebook")
    create_notebook(session, "plain-name")
    by_name = run(session, {"NotebookInstanceName": "plain-name"})
    assert by_name.status == "Success", by_name.failure_message
    # AWS writes ARNs with the lower-cased name: what Config passes for "MyNotebook".
    lowered = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/mynotebook"
    execution = run(session, config_parameters(lowered))
    assert execution.status == "Success", execution.failure_message
    assert state(session, "MyNotebook")["describe"]["NotebookInstanceStatus"] == "Stopped"
    assert execution.outputs["ResolveNotebook.Arn"].endswith("/MyNotebook")  # moto keeps the case


def test_ambiguous_case_insensitive_name_fails_without_guessing(session: boto3.Session) -> None:
    # Only possible in moto (AWS names are unique ignoring case, as its lower-cased ARNs show).
    create_notebook(session, "DupNb")
    create_notebook(session, "DUPNB")
    calls = Calls(session)
    lowered = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/dupnb"
    message = failed_message(run(session, config_parameters(lowered)))
    assert "matches several notebook instances" in message and "DupNb" in message
    assert calls.mutating() == []


# ------------------------------------------------------------------------- transitional statuses
def test_pending_notebook_is_waited_for_then_stopped(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-pending")
    # ResolveNotebook sees Pending, WaitUntilSettled polls Pending twice, then moto's InService.
    describe_sequence(session, "nb-pending", ["Pending", "Pending", "Pending"])
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["ResolveNotebook.Status"] == "Pending"
    assert [s.name for s in execution.steps if s.status == "Success"][:3] == [
        "ResolveNotebook", "ChooseAction", "WaitUntilSettled"
    ]  # fmt: skip
    assert calls.mutating() == ["StopNotebookInstance", "AddTags"]
    assert state(session, "nb-pending")["describe"]["NotebookInstanceStatus"] == "Stopped"


def test_updating_notebook_that_settles_stopped_is_not_stopped_again(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-updating")
    session.client("sagemaker").stop_notebook_instance(NotebookInstanceName="nb-updating")
    describe_sequence(session, "nb-updating", ["Updating", "Updating"])
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert execution.outputs["ResolveNotebook.Status"] == "Updating"
    assert "now Stopped (was Updating)" in execution.outputs["VerifyQuarantine.Result"]
    assert calls.mutating() == ["AddTags"]


def test_stopping_notebook_is_waited_for(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-stopping")
    session.client("sagemaker").stop_notebook_instance(NotebookInstanceName="nb-stopping")
    describe_sequence(session, "nb-stopping", ["Stopping", "Stopping"])
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert "WaitUntilStopped" in [s.name for s in execution.steps if s.status == "Success"]
    assert calls.mutating() == ["AddTags"]
    assert "now Stopped (was Stopping)" in execution.outputs["VerifyQuarantine.Result"]


def test_failed_notebook_is_tagged_without_a_stop(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-failed")
    failed: dict[str, Any] = session.client("sagemaker").describe_notebook_instance(
        NotebookInstanceName="nb-failed"
    )
    failed["NotebookInstanceStatus"] = "Failed"
    inject(session, "sagemaker.DescribeNotebookInstance", response=failed)
    calls = Calls(session)
    execution = run(session, config_parameters(arn))
    assert execution.status == "Success", execution.failure_message
    assert calls.mutating() == ["AddTags"]
    assert execution.outputs["VerifyQuarantine.Status"] == "Failed"


def test_notebook_stuck_pending_times_out_and_changes_nothing(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-stuck")
    stuck: dict[str, Any] = session.client("sagemaker").describe_notebook_instance(
        NotebookInstanceName="nb-stuck"
    )
    stuck["NotebookInstanceStatus"] = "Pending"
    inject(session, "sagemaker.DescribeNotebookInstance", response=stuck)
    calls = Calls(session)
    clock = runner().FakeClock()
    execution = run(session, config_parameters(arn), clock=clock)
    # SSM: a step that exceeds timeoutSeconds ends TimedOut, and with onFailure Abort so does the execution.
    assert execution.status == "TimedOut", execution.failure_message
    assert "WaitUntilSettled" in [s.name for s in execution.steps if s.status == "TimedOut"]
    assert calls.mutating() == []
    assert 1800 - 60 <= clock.time <= 1800  # its timeout, not forever
    assert state(session, "nb-stuck")["tags"] == {}


def test_deleting_notebook_fails_clearly(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-deleting")
    deleting: dict[str, Any] = session.client("sagemaker").describe_notebook_instance(
        NotebookInstanceName="nb-deleting"
    )
    deleting["NotebookInstanceStatus"] = "Deleting"
    inject(session, "sagemaker.DescribeNotebookInstance", response=deleting)
    calls = Calls(session)
    message = failed_message(run(session, config_parameters(arn)))
    assert "being deleted" in message and "Nothing changed" in message
    assert calls.mutating() == []


# ------------------------------------------------------------------------------------- bad input
def test_missing_notebook_fails_clearly(session: boto3.Session) -> None:
    create_notebook(session, "nb-other")
    before = state(session, "nb-other")
    calls = Calls(session)
    for given in ("nb-gone", f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:notebook-instance/nb-gone"):
        message = failed_message(run(session, config_parameters(given)))
        assert f"Notebook instance nb-gone not found in account {ACCOUNT_ID} Region {REGION}" in message
    assert calls.mutating() == []
    assert state(session, "nb-other") == before


@pytest.mark.parametrize(
    ("arn", "where"),
    [
        (f"arn:aws:sagemaker:{REGION}:210987654321:notebook-instance/nb-foreign", "account 210987654321"),
        (f"arn:aws:sagemaker:eu-west-1:{ACCOUNT_ID}:notebook-instance/nb-foreign", "Region eu-west-1"),
    ],
)
def test_foreign_account_or_region_arn_fails_before_any_call(
    session: boto3.Session, arn: str, where: str
) -> None:
    create_notebook(session, "nb-foreign")  # same name here: must not be touched
    before = state(session, "nb-foreign")
    calls = Calls(session)
    message = failed_message(run(session, config_parameters(arn)))
    assert where in message and "run it there" in message
    assert calls.names == []
    assert state(session, "nb-foreign") == before


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"NotebookInstanceName": "nb_underscore"}, "NotebookInstanceName"),
        (
            {"NotebookInstanceName": f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance/i-0abc"},
            "NotebookInstanceName",
        ),
        ({"NotebookInstanceName": "nb-bad", "Reason": "quarantine; rm -rf"}, "Reason"),
        ({"NotebookInstanceName": "nb-bad", "AutomationAssumeRole": "role/x"}, "AutomationAssumeRole"),
        ({"Reason": "no notebook"}, "NotebookInstanceName"),
    ],
)
def test_bad_parameters_fail_before_any_call(
    session: boto3.Session, parameters: dict[str, Any], named: str
) -> None:
    rb = runner()
    create_notebook(session, "nb-bad")
    before = state(session, "nb-bad")
    calls = Calls(session)
    try:
        execution = run(session, parameters)
    except rb.RunbookError as exc:
        assert named in str(exc)
    else:
        assert named in failed_message(execution)
    assert calls.names == []
    assert state(session, "nb-bad") == before


def test_tag_limit_fails_with_an_actionable_message_after_stopping(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-tags", Tags=[{"Key": f"team:{i}", "Value": "x"} for i in range(49)])
    message = failed_message(run(session, config_parameters(arn)))
    assert "has 49 tags" in message and "remove an unneeded tag and rerun" in message
    after = state(session, "nb-tags")
    assert after["describe"]["NotebookInstanceStatus"] == "Stopped"  # contained all the same
    assert QUARANTINE not in after["tags"]


# ---------------------------------------------------------------------------- faults and reruns
def test_tagging_fault_after_the_stop_is_completed_by_a_rerun(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-fault")
    fault = {"on": True}
    inject(session, "sagemaker.AddTags", error_code="AccessDeniedException", when=lambda _: fault["on"])
    failed = run(session, config_parameters(arn))
    assert "AccessDenied" in failed_message(failed)
    middle = state(session, "nb-fault")
    assert middle["describe"]["NotebookInstanceStatus"] == "Stopped" and middle["tags"] == {}

    fault["on"] = False
    calls = Calls(session)
    rerun = run(session, config_parameters(arn))
    assert rerun.status == "Success", rerun.failure_message
    assert calls.mutating() == ["AddTags"]  # no second stop
    assert "already Stopped" in rerun.outputs["VerifyQuarantine.Result"]
    assert state(session, "nb-fault")["tags"][QUARANTINE] == DEFAULT_REASON


def test_verification_catches_missing_tags_and_a_rerun_completes(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-verify")
    calls = Calls(session)
    fault = {"on": True}
    # Once AddTags has been sent, ListTags (VerifyQuarantine's re-read) sees no tags.
    inject(
        session,
        "sagemaker.ListTags",
        response={"Tags": []},
        when=lambda _: fault["on"] and "AddTags" in calls.names,
    )
    message = failed_message(run(session, config_parameters(arn)))
    assert "lacks tag(s) ml-guardrails:quarantine, ml-guardrails:quarantined-at" in message
    fault["on"] = False
    rerun = run(session, config_parameters(arn))
    assert rerun.status == "Success", rerun.failure_message
    assert "nothing changed" in rerun.outputs["VerifyQuarantine.Result"]


def test_verification_catches_a_restart(session: boto3.Session) -> None:
    arn = create_notebook(session, "nb-raced")
    restarted: dict[str, Any] = session.client("sagemaker").describe_notebook_instance(
        NotebookInstanceName="nb-raced"
    )
    calls = Calls(session)
    # Someone starts the notebook again right after it was tagged: VerifyQuarantine must notice.
    inject(
        session,
        "sagemaker.DescribeNotebookInstance",
        response=restarted,
        when=lambda _: "AddTags" in calls.names,
    )
    message = failed_message(run(session, config_parameters(arn)))
    assert "is InService after quarantine" in message and "rerun" in message
