"""The local runbook runner, action by action and feature by feature, against moto (no network)."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml_guardrails.runbooks import Execution, FakeClock, RunbookError, load_runbook, run_runbook
from ml_guardrails.runbooks.cli import parse_params, register
from ml_guardrails.runbooks.jsonpath import JsonPathError, compile_path, select
from ml_guardrails.testing import inject

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
ENCRYPT = FIXTURES / "valid_encrypt_bucket.yaml"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def calls(session: boto3.Session) -> list[str]:
    """Every AWS operation the session's clients send, in order."""
    seen: list[str] = []

    def _record(model: Any, **_: Any) -> None:
        seen.append(f"{model.service_model.service_name}.{model.name}")

    session.events.register("before-parameter-build", _record)
    return seen


def doc(steps: list[dict[str, Any]], parameters: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    return {
        "schemaVersion": "0.3",
        "description": "test",
        "parameters": parameters or {},
        "mainSteps": steps,
        **top,
    }


def script(body: str, payload: dict[str, Any] | None = None, **step: Any) -> dict[str, Any]:
    """An aws:executeScript step whose handler is ``body`` (indented under ``def handler``)."""
    source = "def handler(events, context):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return {
        "name": step.pop("name", "Script"),
        "action": "aws:executeScript",
        "inputs": {
            "Runtime": "python3.11",
            "Handler": "handler",
            "InputPayload": payload or {},
            "Script": source,
        },
        **step,
    }


def sleep(name: str, **step: Any) -> dict[str, Any]:
    return {"name": name, "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, **step}


def fail(name: str, message: str = "boom", **step: Any) -> dict[str, Any]:
    return script(f"raise Exception({message!r})", name=name, **step)


# -- the fixture runbook end to end ------------------------------------------------------------------


def test_fixture_runbook_applies_then_skips(session: boto3.Session, calls: list[str]) -> None:
    session.client("s3").create_bucket(Bucket="ml-data")
    params = {"BucketName": "ml-data", "KmsKeyId": "alias/ml"}
    clock = FakeClock()

    first = run_runbook(ENCRYPT, params, session, clock=clock)
    assert first.status == "Success", first.failure_message
    assert first.step_names == [
        "ReadEncryption",
        "Decide",
        "PutEncryption",
        "Settle",
        "WaitForEncryption",
        "Verify",
    ]
    assert first.outputs == {"ReadEncryption.Algorithm": "NONE", "PutEncryption.HttpStatus": 200}
    assert first.document_name == "valid_encrypt_bucket"
    assert clock.sleeps == [5.0]  # aws:sleep PT5S, through the clock; the wait matched at once
    assert "s3.PutBucketEncryption" in calls

    calls.clear()
    second = run_runbook(ENCRYPT, params, session, clock=clock)
    assert second.status == "Success"
    assert second.step_names == ["ReadEncryption", "Decide", "Verify"]  # never-reached steps are absent
    assert second.outputs == {"ReadEncryption.Algorithm": "aws:kms"}  # PutEncryption did not run
    assert "s3.PutBucketEncryption" not in calls


def test_missing_bucket_fails_with_the_aws_error(session: boto3.Session) -> None:
    execution = run_runbook(ENCRYPT, {"BucketName": "nope", "KmsKeyId": "k"}, session, clock=FakeClock())
    assert execution.status == "Failed"
    assert execution.failed_step == "ReadEncryption"
    assert execution.failure_message == (
        "NoSuchBucket: An error occurred (NoSuchBucket) when calling the GetBucketEncryption operation: "
        "The specified bucket does not exist"
    )
    assert execution.step_names == ["ReadEncryption"]
    assert execution.outputs == {}


# -- aws:executeAwsApi -------------------------------------------------------------------------------


def test_execute_aws_api_outputs_and_types(session: boto3.Session) -> None:
    kms = session.client("kms")
    key = kms.create_key(Description="k", Tags=[{"TagKey": "team", "TagValue": "ml"}])["KeyMetadata"]
    steps = [
        {
            "name": "Describe",
            "action": "aws:executeAwsApi",
            "inputs": {"Service": "kms", "Api": "DescribeKey", "KeyId": "{{ KeyId }}"},
            "outputs": [
                {"Name": "State", "Selector": "$.KeyMetadata.KeyState", "Type": "String"},
                {"Name": "Enabled", "Selector": "$.KeyMetadata.Enabled", "Type": "Boolean"},
                {
                    "Name": "Algorithms",
                    "Selector": "$.KeyMetadata.EncryptionAlgorithms",
                    "Type": "StringList",
                },
                {"Name": "Meta", "Selector": "$['KeyMetadata']", "Type": "StringMap"},
                {"Name": "Status", "Selector": "$.ResponseMetadata.HTTPStatusCode", "Type": "Integer"},
                {"Name": "Created", "Selector": "$.KeyMetadata.CreationDate", "Type": "String"},
                {"Name": "Missing", "Selector": "$.KeyMetadata.NoSuchField", "Type": "String"},
            ],
        },
        {
            "name": "Tags",
            "action": "aws:executeAwsApi",
            "inputs": {"Service": "kms", "Api": "ListResourceTags", "KeyId": "{{ Describe.State }}x"},
            "onFailure": "Continue",
        },
        {
            "name": "TagsByKey",
            "action": "aws:executeAwsApi",
            "inputs": {
                "Service": "kms",
                "Api": "list_resource_tags",
                "KeyId": "{{ KeyId }}",
            },  # snake_case ok
            "outputs": [
                {"Name": "Values", "Selector": "$.Tags[*].TagValue", "Type": "StringList"},
                {"Name": "First", "Selector": "$.Tags[0]", "Type": "StringMap"},
                {"Name": "All", "Selector": "$.Tags", "Type": "MapList"},
            ],
        },
    ]
    execution = run_runbook(
        doc(steps, {"KeyId": {"type": "String"}}, outputs=["Describe.State", "Describe.Missing"]),
        {"KeyId": key["KeyId"]},
        session,
    )
    assert execution.status == "Success", execution.failure_message
    describe = execution.step("Describe")
    assert describe.outputs["State"] == "Enabled"
    assert describe.outputs["Enabled"] is True
    assert describe.outputs["Algorithms"] == ["SYMMETRIC_DEFAULT"]
    assert describe.outputs["Meta"]["KeyId"] == key["KeyId"]
    assert describe.outputs["Status"] == 200
    assert describe.outputs["Created"].startswith("20")  # datetimes become ISO-8601 strings
    assert "Missing" not in describe.outputs  # a selector that matches nothing sets no output
    assert execution.outputs == {"Describe.State": "Enabled"}
    assert execution.step("Tags").status == "Failed"  # KeyId "Enabledx" does not exist
    assert "NotFoundException" in (execution.step("Tags").failure_message or "")
    tags = execution.step("TagsByKey").outputs
    assert tags == {
        "Values": ["ml"],
        "First": {"TagKey": "team", "TagValue": "ml"},
        "All": [{"TagKey": "team", "TagValue": "ml"}],
    }


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"Service": "kms", "Api": "DescribeKeys", "KeyId": "x"},
            "Unknown Api 'DescribeKeys' for Service 'kms'",
        ),
        ({"Service": "kmz", "Api": "DescribeKey", "KeyId": "x"}, "Unknown Service 'kmz'"),
        ({"Service": "kms", "Api": "DescribeKey", "KeyID": "x"}, 'Unknown parameter in input: "KeyID"'),
        ({"Service": "kms"}, "Input 'Api' is required"),
    ],
)
def test_execute_aws_api_errors(session: boto3.Session, inputs: dict[str, Any], message: str) -> None:
    execution = run_runbook(
        doc([{"name": "Call", "action": "aws:executeAwsApi", "inputs": inputs}]), {}, session
    )
    assert execution.status == "Failed"
    assert message in (execution.failure_message or ""), execution.failure_message


def test_output_type_mismatch_fails_the_step(session: boto3.Session) -> None:
    step = script(
        "return {'x': 'not a number'}", outputs=[{"Name": "X", "Selector": "$.Payload.x", "Type": "Integer"}]
    )
    execution = run_runbook(doc([step]), {}, session)
    assert execution.status == "Failed"
    assert execution.failure_message == (
        "Output 'X' of step 'Script': selected value 'not a number' (str) cannot be converted to Integer"
    )


# -- aws:executeScript -------------------------------------------------------------------------------


def test_script_boto3_client_uses_the_given_session(session: boto3.Session, calls: list[str]) -> None:
    session.client("s3").create_bucket(Bucket="from-runner")
    before = boto3.DEFAULT_SESSION
    step = script(
        "import boto3\n"
        "s3 = boto3.client('s3')\n"
        "names = [b['Name'] for b in s3.list_buckets()['Buckets']]\n"
        "res = [b.name for b in boto3.resource('s3').buckets.all()]\n"
        "return {'names': names, 'res': res, 'region': s3.meta.region_name}",
        outputs=[{"Name": "Names", "Selector": "$.Payload.names", "Type": "StringList"}],
    )
    execution = run_runbook(doc([step]), {}, session)
    assert execution.status == "Success", execution.failure_message
    assert execution.step("Script").outputs == {"Names": ["from-runner"]}
    assert execution.step("Script").response == {
        "names": ["from-runner"],
        "res": ["from-runner"],
        "region": "us-east-1",
    }
    # The script's calls went through the runner's session (its event hooks saw them) ...
    assert calls.count("s3.ListBuckets") == 2
    # ... and the default session is restored afterwards.
    assert boto3.DEFAULT_SESSION is before


def test_script_hits_injected_faults_of_the_session(session: boto3.Session) -> None:
    inject(session, "s3.ListBuckets", error_code="AccessDenied", status=403)
    step = script("import boto3\nreturn boto3.client('s3').list_buckets()")
    execution = run_runbook(doc([step]), {}, session)
    assert execution.status == "Failed"
    assert execution.failure_message == (
        "AccessDenied: An error occurred (AccessDenied) when calling the ListBuckets operation: "
        "injected AccessDenied on ListBuckets"
    )


@pytest.mark.parametrize(
    ("body", "message", "failure_type"),
    [
        (
            "raise Exception('Bucket b is public: remove the policy, then rerun')",
            "Bucket b is public: remove the policy, then rerun",
            "Exception",
        ),
        (
            "raise ValueError('RotationPeriodInDays 7 is outside 90-2560')",
            "ValueError: RotationPeriodInDays 7 is outside 90-2560",
            "ValueError",
        ),
        ("return {}['missing']", "KeyError: 'missing'", "KeyError"),
    ],
)
def test_script_exception_fails_with_its_message(
    session: boto3.Session, body: str, message: str, failure_type: str
) -> None:
    execution = run_runbook(doc([script(body), sleep("After")]), {}, session)
    assert execution.status == "Failed"
    assert execution.failure_message == message
    step = execution.step("Script")
    assert (step.status, step.failure_message, step.failure_type) == ("Failed", message, failure_type)
    assert step.traceback is not None and "Traceback" in step.traceback
    assert execution.step_names == ["Script"]


def test_script_context_and_globals(session: boto3.Session) -> None:
    step = script(
        "return {'events': events, 'ctx': {k: context[k] for k in ("
        "'automation:EXECUTION_ID', 'global:ACCOUNT_ID', 'global:REGION', 'global:AWS_PARTITION')}}",
        payload={
            "Account": "{{ global:ACCOUNT_ID }}",
            "Region": "{{global:REGION}}",
            "Partition": "{{ global:AWS_PARTITION }}",
            "Execution": "{{ automation:EXECUTION_ID }}",
        },
    )
    execution = run_runbook(doc([step]), {}, session, execution_id="exec-1")
    payload = execution.step("Script").response
    assert payload["events"] == {
        "Account": ACCOUNT,
        "Region": "us-east-1",
        "Partition": "aws",
        "Execution": "exec-1",
    }
    assert payload["ctx"] == {
        "automation:EXECUTION_ID": "exec-1",
        "global:ACCOUNT_ID": ACCOUNT,
        "global:REGION": "us-east-1",
        "global:AWS_PARTITION": "aws",
    }
    overridden = run_runbook(doc([step]), {}, session, account_id="210987654321", region="eu-west-1")
    assert overridden.step("Script").response["events"]["Account"] == "210987654321"
    assert overridden.step("Script").response["events"]["Region"] == "eu-west-1"


def test_script_runtime_and_handler_errors(session: boto3.Session) -> None:
    step = script("return 1")
    step["inputs"]["Runtime"] = "PowerShell 7.4"
    assert "Runtime 'PowerShell 7.4' is not supported" in (
        run_runbook(doc([step]), {}, session).failure_message or ""
    )
    step = script("return 1")
    step["inputs"]["Handler"] = "main"
    assert run_runbook(doc([step]), {}, session).failure_message == (
        "Handler 'main' is not a function defined by the script of step 'Script'"
    )


def test_script_timeout_is_checked_after_it_returns(session: boto3.Session) -> None:
    class SlowClock(FakeClock):
        def monotonic(self) -> float:  # every reading is 100 s later: the script "takes" 100 s
            self.time += 100
            return self.time

    execution = run_runbook(doc([script("return 1", timeoutSeconds=50)]), {}, session, clock=SlowClock())
    assert execution.status == "TimedOut"
    assert execution.step("Script").status == "TimedOut"
    assert "timeoutSeconds=50" in (execution.failure_message or "")


# -- references --------------------------------------------------------------------------------------

PARAMS = {
    "Name": {"type": "String", "default": "ml"},
    "Count": {"type": "Integer", "default": 5},
    "Enabled": {"type": "Boolean", "default": True},
    "Ids": {"type": "StringList", "default": ["a", "b"]},
    "Tags": {"type": "StringMap", "default": {"k": "v"}},
    "Rules": {"type": "MapList", "default": [{"k": "v"}]},
}


def test_whole_references_keep_their_type_and_embedded_ones_are_strings(session: boto3.Session) -> None:
    payload = {
        "name": "{{ Name }}",
        "count": "{{Count}}",
        "enabled": "{{ Enabled }}",
        "ids": "{{ Ids }}",
        "tags": "{{ Tags }}",
        "rules": "{{ Rules }}",
        "text": "{{ Name }}-{{ Count }}-{{ Enabled }}-{{ Ids }}",
        "nested": {"list": ["{{ Count }}", "x{{ Name }}"], "deep": [{"v": "{{ Ids }}"}]},
        "first": "{{ First.Out }}",
    }
    first = script(
        "return {'n': 3}",
        name="First",
        outputs=[{"Name": "Out", "Selector": "$.Payload.n", "Type": "Integer"}],
    )
    execution = run_runbook(doc([first, script("return events", payload=payload)], PARAMS), {}, session)
    assert execution.status == "Success", execution.failure_message
    assert execution.step("Script").response == {
        "name": "ml",
        "count": 5,
        "enabled": True,
        "ids": ["a", "b"],
        "tags": {"k": "v"},
        "rules": [{"k": "v"}],
        "text": 'ml-5-true-["a", "b"]',
        "nested": {"list": [5, "xml"], "deep": [{"v": ["a", "b"]}]},
        "first": 3,
    }
    assert execution.step("Script").inputs["InputPayload"]["count"] == 5  # resolved inputs are recorded


def test_unresolved_reference_fails_the_step(session: boto3.Session) -> None:
    execution = run_runbook(doc([script("return events", payload={"x": "{{ Nope }}"})]), {}, session)
    assert execution.status == "Failed"
    assert execution.failure_message == (
        "Unresolved reference {{ Nope }}: not a parameter, a step output or a global/automation variable"
    )


def test_reference_to_an_output_that_was_not_produced(session: boto3.Session) -> None:
    first = script(
        "return {}", name="First", outputs=[{"Name": "Id", "Selector": "$.Payload.id", "Type": "String"}]
    )
    execution = run_runbook(
        doc([first, script("return events", payload={"x": "{{ First.Id }}"})]), {}, session
    )
    assert execution.status == "Failed"
    assert execution.failed_step == "Script"
    assert "step 'First' has no output 'Id'" in (execution.failure_message or "")


def test_script_text_is_not_templated(session: boto3.Session) -> None:
    step = script("return f'{{{{ Name }}}}'")  # the f-string braces survive: Script is code
    assert run_runbook(doc([step], PARAMS), {}, session).step("Script").response == "{{ Name }}"


# -- parameters --------------------------------------------------------------------------------------


def test_parameter_coercion(session: boto3.Session) -> None:
    execution = run_runbook(
        doc([sleep("S")], PARAMS),
        {"Count": "7", "Enabled": "false", "Ids": "x, y", "Tags": '{"a": "b"}', "Rules": '[{"a": 1}]'},
        session,
        clock=FakeClock(),
    )
    assert execution.parameters == {
        "Name": "ml",
        "Count": 7,
        "Enabled": False,
        "Ids": ["x", "y"],
        "Tags": {"a": "b"},
        "Rules": [{"a": 1}],
    }
    assert run_runbook(
        doc([sleep("S")], PARAMS), {"Ids": '["p", "q"]'}, session, clock=FakeClock()
    ).parameters["Ids"] == ["p", "q"]


def test_parameters_in_the_start_automation_execution_shape(session: boto3.Session) -> None:
    """StartAutomationExecution takes map<string, list<string>>: one-element lists are scalars."""
    given = {
        "Name": ["x"],
        "Count": ["7"],
        "Enabled": ["true"],
        "Ids": ["only"],
        "Tags": ['{"a": "b"}'],
        "Rules": ['[{"a": 1}]'],
    }
    execution = run_runbook(doc([sleep("S")], PARAMS), given, session, clock=FakeClock())
    assert execution.parameters == {
        "Name": "x",
        "Count": 7,
        "Enabled": True,
        "Ids": ["only"],
        "Tags": {"a": "b"},
        "Rules": [{"a": 1}],
    }
    with pytest.raises(RunbookError, match="Parameter 'Name' \\(String\\): expected a string, got list"):
        run_runbook(doc([sleep("S")], PARAMS), {"Name": ["x", "y"]}, session)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"Bucket": "x"}, "Unknown parameter(s) Bucket"),
        ({}, "Missing required parameter 'BucketName' (String)"),
        ({"BucketName": 5}, "Parameter 'BucketName' (String): expected a string, got int 5"),
        (
            {"BucketName": "Bad_Name"},
            "Parameter 'BucketName': value 'Bad_Name' does not match allowedPattern",
        ),
        (
            {"BucketName": "ok", "Mode": "Maybe"},
            "Parameter 'Mode': value 'Maybe' is not one of allowedValues",
        ),
        ({"BucketName": "ok", "Days": "ten"}, "Parameter 'Days' (Integer): expected an integer"),
        ({"BucketName": "ok", "Days": True}, "Parameter 'Days' (Integer): expected an integer"),
        ({"BucketName": "ok", "DryRun": "yes"}, "Parameter 'DryRun' (Boolean): expected true or false"),
        ({"BucketName": "ok", "Ids": ["i-1", "bad"]}, "Parameter 'Ids': value 'bad' does not match"),
        ({"BucketName": "ok", "Ids": []}, "Parameter 'Ids': 0 items, minItems is 1"),
        ({"BucketName": "ok", "Tags": "not json"}, "Parameter 'Tags' (StringMap): not valid JSON"),
        ({"BucketName": "ok", "Tags": ["a", "b"]}, "Parameter 'Tags' (StringMap): expected a map"),
    ],
)
def test_bad_parameters_raise_before_any_aws_call(
    session: boto3.Session, calls: list[str], given: dict[str, Any], message: str
) -> None:
    parameters = {
        "BucketName": {"type": "String", "allowedPattern": "^[a-z0-9.-]{2,63}$"},
        "Mode": {"type": "String", "default": "Apply", "allowedValues": ["Apply", "DryRun"]},
        "Days": {"type": "Integer", "default": 90},
        "DryRun": {"type": "Boolean", "default": False},
        "Ids": {"type": "StringList", "default": ["i-0"], "allowedPattern": "^i-[0-9a-f]+$", "minItems": 1},
        "Tags": {"type": "StringMap", "default": {}},
    }
    api = {"name": "Call", "action": "aws:executeAwsApi", "inputs": {"Service": "s3", "Api": "ListBuckets"}}
    with pytest.raises(RunbookError) as raised:
        run_runbook(doc([api], parameters, assumeRole="{{ global:ACCOUNT_ID }}"), given, session)
    assert message in str(raised.value)
    assert calls == []


# -- assert / waitFor / sleep ------------------------------------------------------------------------


def _key_state_step(action: str, desired: list[Any], **step: Any) -> dict[str, Any]:
    return {
        "name": "Check",
        "action": action,
        "inputs": {
            "Service": "kms",
            "Api": "DescribeKey",
            "KeyId": "{{ KeyId }}",
            "PropertySelector": "$.KeyMetadata.KeyState",
            "DesiredValues": desired,
        },
        **step,
    }


def test_assert_property(session: boto3.Session) -> None:
    key = session.client("kms").create_key()["KeyMetadata"]["KeyId"]
    params = {"KeyId": {"type": "String"}}
    ok = run_runbook(
        doc([_key_state_step("aws:assertAwsResourceProperty", ["Enabled"])], params), {"KeyId": key}, session
    )
    assert ok.status == "Success"
    bad = run_runbook(
        doc([_key_state_step("aws:assertAwsResourceProperty", ["Disabled", "PendingDeletion"])], params),
        {"KeyId": key},
        session,
    )
    assert bad.status == "Failed"
    assert bad.failure_message == (
        "Property $.KeyMetadata.KeyState is Enabled, not one of the desired values "
        "['Disabled', 'PendingDeletion'] "
        "(Service kms, Api DescribeKey)"
    )


def test_assert_boolean_and_list_values(session: boto3.Session) -> None:
    kms = session.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key)
    params = {"KeyId": {"type": "String"}}
    rotation = {
        "name": "Rotation",
        "action": "aws:assertAwsResourceProperty",
        "inputs": {
            "Service": "kms",
            "Api": "GetKeyRotationStatus",
            "KeyId": "{{ KeyId }}",
            "PropertySelector": "$.KeyRotationEnabled",
            "DesiredValues": ["True"],  # as AWS's examples write booleans
        },
    }
    algorithms = _key_state_step("aws:assertAwsResourceProperty", ["SYMMETRIC_DEFAULT"], name="Algorithms")
    algorithms["inputs"]["PropertySelector"] = "$.KeyMetadata.EncryptionAlgorithms[*]"
    execution = run_runbook(doc([rotation, algorithms], params), {"KeyId": key}, session)
    assert execution.status == "Success", execution.failure_message


class EnablingClock(FakeClock):
    """A fake clock that enables ``key`` (in moto) after ``after`` sleeps: the resource changes while
    the runner waits, with no real waiting."""

    def __init__(self, session: boto3.Session, key: str, after: int) -> None:
        super().__init__()
        self.kms = session.client("kms")
        self.key = key
        self.after = after

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == self.after:
            self.kms.enable_key(KeyId=self.key)


def test_wait_for_property_succeeds_after_polls(session: boto3.Session, calls: list[str]) -> None:
    kms = session.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    clock = EnablingClock(session, key, after=3)
    calls.clear()
    step = _key_state_step("aws:waitForAwsResourceProperty", ["Enabled"], timeoutSeconds=600)
    execution = run_runbook(doc([step], {"KeyId": {"type": "String"}}), {"KeyId": key}, session, clock=clock)
    assert execution.status == "Success", execution.failure_message
    assert calls.count("kms.DescribeKey") == 4  # 3 misses, then the match
    assert clock.sleeps == [5.0, 5.0, 5.0]


def test_wait_for_property_times_out(session: boto3.Session) -> None:
    kms = session.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    clock = FakeClock()
    step = _key_state_step("aws:waitForAwsResourceProperty", ["Enabled"], timeoutSeconds=60)
    execution = run_runbook(
        doc([step, sleep("After")], {"KeyId": {"type": "String"}}), {"KeyId": key}, session, clock=clock
    )
    assert execution.status == "TimedOut"
    assert execution.step("Check").status == "TimedOut"
    assert execution.failure_message == (
        "Timed out after 60s (13 polls) waiting for $.KeyMetadata.KeyState to be one of ['Enabled']; "
        "last value: Disabled"
    )
    assert sum(clock.sleeps) <= 60
    assert execution.step_names == ["Check"]


def test_wait_default_timeout_is_an_hour(session: boto3.Session) -> None:
    key = session.client("kms").create_key()["KeyMetadata"]["KeyId"]
    clock = FakeClock()
    step = _key_state_step("aws:waitForAwsResourceProperty", ["PendingDeletion"])
    execution = run_runbook(doc([step], {"KeyId": {"type": "String"}}), {"KeyId": key}, session, clock=clock)
    assert execution.status == "TimedOut"
    assert "Timed out after 3600s" in (execution.failure_message or "")


def test_sleep_duration_and_timestamp(session: boto3.Session) -> None:
    clock = FakeClock()  # wall clock starts at 2026-01-01T00:00:00Z
    steps = [
        {"name": "Ten", "action": "aws:sleep", "inputs": {"Duration": "PT10M"}},
        {"name": "Day", "action": "aws:sleep", "inputs": {"Duration": "P1DT1H30S"}},
        {"name": "Until", "action": "aws:sleep", "inputs": {"Timestamp": "2026-01-03T00:00:00Z"}},
        {"name": "Past", "action": "aws:sleep", "inputs": {"Timestamp": "2020-01-01T00:00:00Z"}},
    ]
    execution = run_runbook(doc(steps), {}, session, clock=clock)
    assert execution.status == "Success"
    assert clock.sleeps == [600.0, 90030.0, 86400 * 2 - 600 - 90030, 0.0]
    bad = run_runbook(
        doc([{"name": "S", "action": "aws:sleep", "inputs": {"Duration": "P8D"}}]), {}, session, clock=clock
    )
    assert bad.failure_message == "aws:sleep of 691200s exceeds the 7-day maximum"


# -- aws:branch --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "operator", "operand", "expected"),
    [
        ("windows", "StringEquals", "windows", True),
        ("Windows", "StringEquals", "windows", False),
        ("Windows", "EqualsIgnoreCase", "windows", True),
        ("arn:aws:kms:x", "StartsWith", "arn:aws:kms", True),
        ("arn:aws:kms:x", "StartsWith", "arn:aws:s3", False),
        ("my-bucket-logs", "EndsWith", "-logs", True),
        ("my-bucket-logs", "EndsWith", "-data", False),
        ("my-bucket-logs", "Contains", "bucket", True),
        ("my-bucket-logs", "Contains", "nope", False),
        (["a", "b"], "Contains", "b", True),
        (["a", "b"], "Contains", "c", False),
        (5, "NumericEquals", 5, True),
        ("5", "NumericEquals", 5.0, True),
        (5, "NumericGreater", 4, True),
        (5, "NumericGreater", 5, False),
        (5, "NumericLesser", 6, True),
        (5, "NumericLesser", 5, False),
        (5, "NumericGreaterOrEquals", 5, True),
        (4, "NumericGreaterOrEquals", 5, False),
        (5, "NumericLesserOrEquals", 5, True),
        (6, "NumericLesserOrEquals", 5, False),
        (True, "BooleanEquals", True, True),
        ("false", "BooleanEquals", False, True),
        (True, "BooleanEquals", False, False),
    ],
)
def test_branch_operators(
    session: boto3.Session, variable: Any, operator: str, operand: Any, expected: bool
) -> None:
    branch = {
        "name": "Choose",
        "action": "aws:branch",
        "inputs": {
            "Choices": [{"NextStep": "Yes", "Variable": "{{ First.Value }}", operator: operand}],
            "Default": "No",
        },
    }
    first = script(
        f"return {{'v': {variable!r}}}",
        name="First",
        outputs=[{"Name": "Value", "Selector": "$.Payload.v", "Type": _type_of(variable)}],
    )
    steps = [first, branch, sleep("Yes", isEnd=True), sleep("No")]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    assert execution.status == "Success", execution.failure_message
    assert execution.step_names[-1] == ("Yes" if expected else "No")
    assert execution.step("Choose").next_step == ("Yes" if expected else "No")


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    return "StringList" if isinstance(value, list) else "String"


@pytest.mark.parametrize(
    ("region", "count", "expected"),
    [
        ("us-east-1", 5, "Both"),
        ("us-east-1", 1, "Either"),
        ("eu-west-1", 1, "Neither"),
        ("cn-north-1", 9, "Either"),
    ],
)
def test_branch_and_or_not(session: boto3.Session, region: str, count: int, expected: str) -> None:
    choices = [
        {
            "NextStep": "Both",
            "And": [
                {"Variable": "{{ Region }}", "StringEquals": "us-east-1"},
                {"Not": {"Variable": "{{ Count }}", "NumericLesser": 3}},
            ],
        },
        {
            "NextStep": "Either",
            "Or": [
                {"Variable": "{{ Region }}", "StartsWith": "us-"},
                {"Not": [{"Variable": "{{ Count }}", "NumericLesserOrEquals": 5}]},
            ],
        },
    ]
    params = {"Region": {"type": "String"}, "Count": {"type": "Integer"}}
    steps = [
        {"name": "Choose", "action": "aws:branch", "inputs": {"Choices": choices, "Default": "Neither"}},
        sleep("Both", isEnd=True),
        sleep("Either", isEnd=True),
        sleep("Neither", isEnd=True),
    ]
    execution = run_runbook(
        doc(steps, params), {"Region": region, "Count": count}, session, clock=FakeClock()
    )
    assert execution.step_names == ["Choose", expected]


def test_branch_without_match_or_default_runs_the_next_step(session: boto3.Session) -> None:
    choices = [{"NextStep": "Skipped", "Variable": "a", "StringEquals": "b"}]
    steps = [
        {"name": "Choose", "action": "aws:branch", "inputs": {"Choices": choices}},
        sleep("Next", isEnd=True),
        sleep("Skipped"),
    ]
    assert run_runbook(doc(steps), {}, session, clock=FakeClock()).step_names == ["Choose", "Next"]


def test_branch_on_a_non_number_fails(session: boto3.Session) -> None:
    choices = [{"NextStep": "S", "Variable": "abc", "NumericGreater": 1}]
    steps = [{"name": "Choose", "action": "aws:branch", "inputs": {"Choices": choices}}, sleep("S")]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    assert execution.failure_message == "aws:branch: Variable 'abc' is not a number"


# -- control flow ------------------------------------------------------------------------------------


def test_next_step_and_is_end(session: boto3.Session) -> None:
    steps = [sleep("A", nextStep="C"), sleep("B"), sleep("C", isEnd=True), sleep("D")]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    assert execution.step_names == ["A", "C"]
    assert [s.next_step for s in execution.steps] == ["C", None]


def test_max_attempts_retries_the_step(session: boto3.Session, calls: list[str]) -> None:
    failures = {"left": 2}

    def flaky(_params: Any) -> bool:
        failures["left"] -= 1
        return failures["left"] >= 0

    # AccessDenied is not retried by botocore, so each failure is one runner attempt.
    inject(session, "s3.ListBuckets", error_code="AccessDenied", status=403, when=flaky)
    api = {
        "name": "List",
        "action": "aws:executeAwsApi",
        "maxAttempts": 3,
        "inputs": {"Service": "s3", "Api": "ListBuckets"},
    }
    execution = run_runbook(doc([api]), {}, session)
    step = execution.step("List")
    assert (execution.status, step.status, step.attempts, step.failure_message) == (
        "Success",
        "Success",
        3,
        None,
    )
    assert calls.count("s3.ListBuckets") == 3

    failures["left"] = 5
    execution = run_runbook(doc([api]), {}, session)
    assert (execution.status, execution.step("List").attempts) == ("Failed", 3)
    assert "AccessDenied" in (execution.failure_message or "")


def test_on_failure_continue(session: boto3.Session) -> None:
    steps = [fail("Broken", onFailure="Continue"), sleep("After")]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    # isCritical defaults to false with Continue: the run succeeds and records the failed step.
    assert execution.status == "Success"
    assert execution.step_names == ["Broken", "After"]
    assert execution.step("Broken").status == "Failed"
    assert execution.step("Broken").is_critical is False

    steps = [fail("Broken", onFailure="Continue", isCritical=True), sleep("After")]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    assert execution.status == "Failed"  # critical: the run goes on but is reported Failed
    assert execution.step_names == ["Broken", "After"]
    assert execution.failure_message == "boom"


def test_on_failure_step(session: boto3.Session) -> None:
    steps = [
        fail("Apply", "cannot apply", onFailure="step:Rollback"),
        sleep("Verify", isEnd=True),
        sleep("Rollback"),
    ]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    assert execution.step_names == ["Apply", "Rollback"]
    assert execution.status == "Failed"  # isCritical defaults to true
    assert (execution.failed_step, execution.failure_message) == ("Apply", "cannot apply")

    steps[0]["isCritical"] = False
    assert run_runbook(doc(steps), {}, session, clock=FakeClock()).status == "Success"


def test_is_end_stops_after_a_failed_continue_step(session: boto3.Session) -> None:
    steps = [fail("Broken", onFailure="Continue", isEnd=True), sleep("After")]
    assert run_runbook(doc(steps), {}, session, clock=FakeClock()).step_names == ["Broken"]


def test_cyclic_document_is_stopped(session: boto3.Session) -> None:
    steps = [sleep("A", nextStep="B"), sleep("B", nextStep="A")]
    clock = FakeClock()
    execution = run_runbook(doc(steps), {}, session, clock=clock)
    assert execution.status == "Failed"
    assert execution.failure_message == (
        "Stopped after 1000 step executions: the document loops "
        "(check nextStep / onFailure step: / aws:branch targets)"
    )
    assert len(execution.steps) == 1000


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [{"name": "Run", "action": "aws:runCommand", "inputs": {}}],
            "Step 'Run': aws:runCommand is not supported by the local runner",
        ),
        ([{"name": "X", "action": "aws:executeAwsApiTYPO", "inputs": {}}], "not a known Automation action"),
        ([sleep("A", nextStep="Z")], "Step 'A': nextStep target 'Z' is not a step of this document"),
        ([sleep("A", onFailure="Sometimes")], "onFailure 'Sometimes' is not Abort, Continue or step:<name>"),
        ([sleep("A"), sleep("A")], "Duplicate step name(s): A"),
        ([], "mainSteps must be a non-empty list"),
    ],
)
def test_unusable_documents_raise_before_running(
    session: boto3.Session, calls: list[str], steps: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(RunbookError) as raised:
        run_runbook(doc([sleep("First"), *steps] if steps else []), {}, session, clock=FakeClock())
    assert message in str(raised.value)
    assert calls == []


def test_schema_version_is_checked(session: boto3.Session) -> None:
    with pytest.raises(RunbookError, match=r"schemaVersion must be '0\.3'"):
        run_runbook({**doc([sleep("A")]), "schemaVersion": "2.2"}, {}, session)


# -- the execution record ----------------------------------------------------------------------------


def test_execution_record_shape(session: boto3.Session) -> None:
    first = script(
        "return {'when': events['when'], 'n': 1}",
        name="First",
        payload={"when": "{{ global:DATE }}"},
        outputs=[{"Name": "N", "Selector": "$.Payload.n", "Type": "Integer"}],
    )
    steps = [first, fail("Broken", onFailure="Continue")]
    execution = run_runbook(
        doc(steps, outputs=["First.N"]), {}, session, clock=FakeClock(), execution_id="e-1"
    )
    assert isinstance(execution, Execution)
    record = execution.to_dict()
    assert json.loads(json.dumps(record)) == record  # JSON-serialisable
    assert set(record) == {
        "AutomationExecutionId",
        "DocumentName",
        "AutomationExecutionStatus",
        "Parameters",
        "Outputs",
        "FailureMessage",
        "FailedStep",
        "ExecutionStartTime",
        "ExecutionEndTime",
        "StepExecutions",
    }
    assert record["AutomationExecutionId"] == "e-1"
    assert record["AutomationExecutionStatus"] == "Success"
    assert record["Outputs"] == {"First.N": 1}
    assert record["ExecutionStartTime"] == "2026-01-01T00:00:00+00:00"
    step = record["StepExecutions"][0]
    assert step["StepName"] == "First"
    assert step["Action"] == "aws:executeScript"
    assert step["StepStatus"] == "Success"
    assert step["Inputs"]["InputPayload"] == {"when": "2026-01-01"}
    assert step["Outputs"] == {"N": 1}
    assert step["Attempts"] == 1
    assert step["NextStep"] == "Broken"
    assert step["ExecutionStartTime"] and step["ExecutionEndTime"]
    broken = record["StepExecutions"][1]
    assert (broken["StepStatus"], broken["FailureMessage"], broken["IsCritical"]) == ("Failed", "boom", False)


# -- loading -----------------------------------------------------------------------------------------


def test_load_runbook_from_path_text_and_dict() -> None:
    from_path = load_runbook(ENCRYPT)
    assert from_path == load_runbook(str(ENCRYPT)) == load_runbook(ENCRYPT.read_text())
    copy = load_runbook(from_path)
    assert copy == from_path and copy is not from_path
    with pytest.raises(RunbookError, match="not valid YAML"):
        load_runbook("a: [b\n")
    with pytest.raises(RunbookError, match="must be a YAML mapping"):
        load_runbook("- a\n- b\n")
    with pytest.raises(RunbookError, match="cannot read runbook"):
        load_runbook("missing.yaml")


# -- JSONPath subset ---------------------------------------------------------------------------------

DATA = {"A": {"B": [{"C": 1}, {"C": 2}], "with space": "x", "M": {"k1": "v1", "k2": "v2"}}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", [DATA]),
        ("$.A.B[0].C", [1]),
        ("$.A.B[-1].C", [2]),
        ("$.A.B[*].C", [1, 2]),
        ("$['A']['with space']", ["x"]),
        ('$["A"].B[1]', [{"C": 2}]),
        ("$.A.M.*", ["v1", "v2"]),
        ("$.A.B[5].C", []),
        ("$.Nope", []),
    ],
)
def test_jsonpath_subset(path: str, expected: list[Any]) -> None:
    assert select(DATA, path) == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$..C", "recursive descent"),
        ("$.A.B[?(@.C > 1)]", "unsupported bracket expression"),
        ("$.A.B[0:1]", "unsupported bracket expression"),
        ("$.A.B[0,1]", "unsupported bracket expression"),
        ("A.B", "must start with '$'"),
        ("$.A.", "expected a key name"),
    ],
)
def test_jsonpath_rejects_the_rest(path: str, message: str) -> None:
    with pytest.raises(JsonPathError, match=re.escape(message)):
        compile_path(path)


# -- CLI ---------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ml-guardrails")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_parse_params() -> None:
    assert parse_params(["A=1", "B=x=y", "C=a", "C=b"]) == {"A": "1", "B": "x=y", "C": ["a", "b"]}
    with pytest.raises(RunbookError, match="expected KEY=VALUE"):
        parse_params(["nope"])


def test_cli_run_table_and_exit_codes(session: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    session.client("s3").create_bucket(Bucket="ml-data")
    args = _cli(
        [
            "runbook",
            "run",
            str(ENCRYPT),
            "--param",
            "BucketName=ml-data",
            "-p",
            "KmsKeyId=k1",
            "--region",
            "us-east-1",
        ]
    )
    # The CLI builds its own boto3.Session (standard credential chain: here moto's fake credentials).
    code = args.func(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Status: Success" in out
    assert "PutEncryption" in out and "HttpStatus = 200" in out

    args = _cli(
        [
            "runbook",
            "run",
            str(ENCRYPT),
            "-p",
            "BucketName=missing-bucket",
            "-p",
            "KmsKeyId=k1",
            "--format",
            "json",
        ]
    )
    assert args.func(args) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["AutomationExecutionStatus"] == "Failed"
    assert "NoSuchBucket" in record["FailureMessage"]

    args = _cli(["runbook", "run", str(ENCRYPT), "-p", "BucketName=Bad_Name", "-p", "KmsKeyId=k1"])
    assert args.func(args) == 2
    assert "does not match allowedPattern" in capsys.readouterr().err

    args = _cli(["runbook", "run", str(ENCRYPT), "-p", "BucketName"])
    assert args.func(args) == 2


def test_malformed_steps_fail_cleanly(session: boto3.Session) -> None:
    choices = [{"Variable": "a", "StringEquals": "a"}]  # true, but no NextStep
    steps = [{"name": "Choose", "action": "aws:branch", "inputs": {"Choices": choices}}, sleep("S")]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    assert execution.failure_message == "aws:branch: Choices[0] is true but has no NextStep"
    choices = [{"NextStep": "S", "And": ["not a mapping"]}]
    steps = [{"name": "Choose", "action": "aws:branch", "inputs": {"Choices": choices}}, sleep("S")]
    execution = run_runbook(doc(steps), {}, session, clock=FakeClock())
    assert execution.failure_message == "aws:branch: a choice must be a mapping, got 'not a mapping'"
    execution = run_runbook(doc([script("import sys\nsys.exit(3)")]), {}, session)
    assert execution.failure_message == "SystemExit: 3"
    with pytest.raises(RunbookError, match="Step 'A': maxAttempts must be a positive integer, got 'x'"):
        run_runbook(doc([sleep("A", maxAttempts="x")]), {}, session)


def test_timed_out_steps_are_retried_by_max_attempts(session: boto3.Session) -> None:
    key = session.client("kms").create_key()["KeyMetadata"]["KeyId"]
    clock = FakeClock()
    step = _key_state_step("aws:waitForAwsResourceProperty", ["Disabled"], timeoutSeconds=10, maxAttempts=2)
    execution = run_runbook(doc([step], {"KeyId": {"type": "String"}}), {"KeyId": key}, session, clock=clock)
    assert (execution.status, execution.step("Check").attempts) == ("TimedOut", 2)
