"""``ml-guardrails doctor`` against moto, and its pure decisions table-driven.

moto 5.2.5 implements the configuration recorder, its status, delivery channels and DescribeConfigRules
(CUSTOM_LAMBDA rules need an existing function), but not DescribeDeliveryChannelStatus nor
DescribeConfigRuleEvaluationStatus (NotImplementedError). :class:`AwsConfigStatus` answers those two in
AWS's shape (botocore's config model) *in the tests only*; without it the doctor reports ERROR, never OK.
moto reports the recorder's lastStatus as ``PENDING`` (AWS: ``Pending``): the doctor reads it case-blind.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ml_guardrails import catalog, doctor
from ml_guardrails.doctor import ERROR, FAIL, OK, WARN, Check
from ml_guardrails.testing import ACCOUNT_ID, REGION, inject

NAMES = (
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET",
    "KMS_CMK_ROTATION_ENABLED",
    "S3_BUCKET_SSE_KMS_ENFORCED",
    "VPC_FLOW_LOGS_ENABLED",
    "GUARDDUTY_ENABLED",
)
SPECS = tuple(catalog.get(n) for n in NAMES)
NEEDED = ("AWS::EC2::VPC", "AWS::KMS::Key", "AWS::S3::Bucket", "AWS::SageMaker::NotebookInstance")
T0 = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)


class _Http:
    def __init__(self) -> None:
        self.status_code = 200
        self.headers: dict[str, str] = {}
        self.content = b""
        self.raw = None


class AwsConfigStatus:
    """DescribeDeliveryChannelStatus and DescribeConfigRuleEvaluationStatus as AWS answers them."""

    def __init__(self, session: boto3.Session) -> None:
        self.delivery: dict[str, Any] = {
            "name": "default",
            "configHistoryDeliveryInfo": {"lastStatus": "Success", "lastAttemptTime": T0},
            "configSnapshotDeliveryInfo": {"lastStatus": "Success", "lastAttemptTime": T0},
            "configStreamDeliveryInfo": {"lastStatus": "Not_Applicable"},
        }
        self.rules: dict[str, dict[str, Any]] = {}
        self.requested: list[list[str]] = []
        self.off: set[str] = set()  # operations left to other handlers (e.g. an injected fault)
        session.events.register("before-call.config.DescribeDeliveryChannelStatus", self._delivery)
        session.events.register(
            "provide-client-params.config.DescribeConfigRuleEvaluationStatus", self._names
        )
        session.events.register("before-call.config.DescribeConfigRuleEvaluationStatus", self._rules)

    def healthy(self, name: str) -> dict[str, Any]:
        self.rules[name] = {
            "ConfigRuleName": name,
            "ConfigRuleArn": f"arn:aws:config:{REGION}:{ACCOUNT_ID}:config-rule/config-rule-abc",
            "FirstActivatedTime": T0 - dt.timedelta(days=3),
            "FirstEvaluationStarted": True,
            "LastSuccessfulInvocationTime": T0,
            "LastSuccessfulEvaluationTime": T0,
        }
        return self.rules[name]

    def _delivery(self, **_: Any) -> Any:
        if "DescribeDeliveryChannelStatus" in self.off:
            return None
        return _Http(), {"DeliveryChannelsStatus": [copy.deepcopy(self.delivery)]}

    def _names(self, params: dict[str, Any], **_: Any) -> None:
        self.requested.append(list(params.get("ConfigRuleNames") or []))

    def _rules(self, **_: Any) -> Any:
        if "DescribeConfigRuleEvaluationStatus" in self.off:
            return None
        names = self.requested[-1]
        # AWS answers NoSuchConfigRuleException for unknown names; the doctor only asks for deployed ones
        return _Http(), {
            "ConfigRulesEvaluationStatus": [copy.deepcopy(self.rules[n]) for n in names if n in self.rules]
        }


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def function_arn(session: boto3.Session) -> str:
    role = session.client("iam").create_role(RoleName="ml-guardrails-fn", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("rule.py", "def lambda_handler(event, context):\n    return []\n")
    return str(
        session.client("lambda").create_function(
            FunctionName="ml-guardrails-rule",
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="rule.lambda_handler",
            Code={"ZipFile": code.getvalue()},
        )["FunctionArn"]
    )


def deploy_rule(session: boto3.Session, name: str) -> None:
    arn = function_arn(session) if not session.client("lambda").list_functions()["Functions"] else None
    arn = arn or session.client("lambda").list_functions()["Functions"][0]["FunctionArn"]
    session.client("config").put_config_rule(
        ConfigRule={
            "ConfigRuleName": name,
            "Source": {
                "Owner": "CUSTOM_LAMBDA",
                "SourceIdentifier": arn,
                "SourceDetails": [
                    {
                        "EventSource": "aws.config",
                        "MessageType": "ScheduledNotification",
                        "MaximumExecutionFrequency": "TwentyFour_Hours",
                    }
                ],
            },
        }
    )


def recorder(session: boto3.Session, group: Mapping[str, Any] | None = None, **extra: Any) -> None:
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
    config: Any = session.client("config")
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": role,
            "recordingGroup": dict(
                group
                or {"allSupported": True, "recordingStrategy": {"useOnly": "ALL_SUPPORTED_RESOURCE_TYPES"}}
            ),
            **extra,
        }
    )


def ready(session: boto3.Session, names: tuple[str, ...] = NAMES, **recorder_args: Any) -> AwsConfigStatus:
    """A ready account: recorder recording all supported types, a delivery channel, every rule deployed
    and last evaluated without error."""
    recorder(session, **recorder_args)
    config = session.client("config")
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-history"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    status = AwsConfigStatus(session)
    for name in names:
        deploy_rule(session, name)
        status.healthy(name)
    return status


def checks(session: boto3.Session, prefix: str | None = None) -> dict[str, Check]:
    found = doctor.run_checks(session, specs=SPECS, rule_prefix=prefix)
    assert len({c.name for c in found}) == len(found), found
    return {c.name: c for c in found}


def statuses(result: Mapping[str, Check]) -> dict[str, str]:
    return {name: c.status for name, c in result.items()}


# --------------------------------------------------------------------------------------------- healthy
def test_a_ready_account_is_all_ok(session: boto3.Session) -> None:
    ready(session)
    result = checks(session)
    assert set(result) == {"recorder", "recording-group", "delivery-channel", *(f"rule {n}" for n in NAMES)}
    assert set(statuses(result).values()) == {OK}, result
    assert "covering " + ", ".join(NEEDED) in result["recording-group"].message
    assert doctor.exit_code(result.values()) == 0


def test_cli_text_and_json(session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ready(session)
    monkeypatch.setattr(catalog, "discover", lambda rules_dir=None: SPECS)
    parser = argparse.ArgumentParser()
    doctor.register(parser.add_subparsers(dest="command"))
    out, text = io.StringIO(), io.StringIO()
    args = parser.parse_args(["doctor", "--format", "json", "--region", REGION])
    code = args.func(args, out=out, session=session)
    text_args = parser.parse_args(["doctor"])
    assert text_args.func(text_args, out=text, session=session) == 0
    report = json.loads(out.getvalue())
    assert code == report["exit_code"] == 0 and report["region"] == REGION
    assert {c["status"] for c in report["checks"]} == {OK}
    lines = text.getvalue().splitlines()
    assert len(lines) == 3 + len(NAMES) and all(line.startswith("OK ") for line in lines)


def test_no_region_is_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    parser = argparse.ArgumentParser()
    doctor.register(parser.add_subparsers(dest="command"))
    err = io.StringIO()
    args = parser.parse_args(["doctor"])
    assert args.func(args, out=io.StringIO(), err=err) == 2
    assert "no AWS region" in err.getvalue()


# ------------------------------------------------------------------------------------------- recorder
def test_nothing_set_up(session: boto3.Session) -> None:
    AwsConfigStatus(session)
    result = checks(session)
    assert statuses(result) == {
        "recorder": FAIL,
        "recording-group": FAIL,
        "delivery-channel": FAIL,
        **{f"rule {n}": FAIL for n in NAMES},
    }
    assert "PutConfigurationRecorder" in result["recorder"].fix
    assert "Not deployed" in result["rule GUARDDUTY_ENABLED"].message
    assert doctor.exit_code(result.values()) == 1


def test_stopped_recorder(session: boto3.Session) -> None:
    ready(session)
    session.client("config").stop_configuration_recorder(ConfigurationRecorderName="default")
    result = checks(session)["recorder"]
    assert result.status == FAIL and "not recording" in result.message
    assert "start-configuration-recorder --configuration-recorder-name default" in result.fix


def test_failing_recorder(session: boto3.Session) -> None:
    ready(session)
    inject(
        session,
        "config.DescribeConfigurationRecorderStatus",
        response={
            "ConfigurationRecordersStatus": [
                {
                    "name": "default",
                    "recording": True,
                    "lastStatus": "Failure",
                    "lastErrorCode": "AccessDenied",
                }
            ]
        },
    )
    result = checks(session)["recorder"]
    assert result.status == FAIL and "AccessDenied" in result.message


def test_service_linked_recorder_only_is_not_enough() -> None:
    linked = [
        {"name": "AWSConfigurationRecorderForSecurityHub", "servicePrincipal": "securityhub.amazonaws.com"}
    ]
    result = doctor.check_recorder(linked, [])
    assert result.status == FAIL and "securityhub.amazonaws.com" in result.message


# ------------------------------------------------------------------------------------ recording group
@pytest.mark.parametrize(
    ("group", "missing"),
    [
        ({"allSupported": True}, []),
        ({"allSupported": True, "recordingStrategy": {"useOnly": "ALL_SUPPORTED_RESOURCE_TYPES"}}, []),
        ({"allSupported": False, "resourceTypes": list(NEEDED)}, []),
        (
            {"allSupported": False, "resourceTypes": ["AWS::KMS::Key", "AWS::S3::Bucket"]},
            ["AWS::EC2::VPC", "AWS::SageMaker::NotebookInstance"],
        ),
        (
            {
                "allSupported": False,
                "resourceTypes": ["AWS::KMS::Key"],
                "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"},
            },
            ["AWS::EC2::VPC", "AWS::S3::Bucket", "AWS::SageMaker::NotebookInstance"],
        ),
        (
            {
                "allSupported": False,
                "exclusionByResourceTypes": {"resourceTypes": ["AWS::KMS::Key", "AWS::EC2::Instance"]},
                "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
            },
            ["AWS::KMS::Key"],
        ),
        ({"recordingStrategy": {"useOnly": "SOMETHING_NEW"}}, list(NEEDED)),
    ],
    ids=[
        "all",
        "all-strategy",
        "inclusion",
        "inclusion-missing",
        "inclusion-strategy",
        "exclusion",
        "unknown",
    ],
)
def test_recording_group_coverage(group: dict[str, Any], missing: list[str]) -> None:
    needed = doctor.needed_types(SPECS)
    assert sorted(needed) == list(NEEDED)  # GUARDDUTY_ENABLED (AWS::::Account, periodic) needs nothing
    [result] = doctor.check_recording_group({"recordingGroup": group}, needed)
    if missing:
        assert result.status == FAIL and f"not {', '.join(missing)}" in result.message
        if "AWS::KMS::Key" in missing:
            assert "KMS_CMK_ROTATION_ENABLED" in result.message
    else:
        assert result.status == OK


def test_recording_group_in_moto(session: boto3.Session) -> None:
    ready(session, group={"allSupported": False, "resourceTypes": ["AWS::KMS::Key", "AWS::S3::Bucket"]})
    result = checks(session)["recording-group"]
    assert result.status == FAIL and "AWS::EC2::VPC" in result.message and "resourceTypes" in result.fix


def test_daily_recording_is_a_warning() -> None:
    rec = {
        "recordingGroup": {"allSupported": True},
        "recordingMode": {
            "recordingFrequency": "CONTINUOUS",
            "recordingModeOverrides": [{"resourceTypes": ["AWS::EC2::VPC"], "recordingFrequency": "DAILY"}],
        },
    }
    group, mode = doctor.check_recording_group(rec, doctor.needed_types(SPECS))
    assert group.status == OK
    assert mode.status == WARN and mode.message.startswith("AWS::EC2::VPC recorded DAILY")
    assert doctor.exit_code([group, mode]) == 0


# ------------------------------------------------------------------------------------ delivery channel
def test_delivery_failure(session: boto3.Session) -> None:
    status = ready(session)
    status.delivery["configSnapshotDeliveryInfo"] = {"lastStatus": "Failure", "lastErrorCode": "AccessDenied"}
    result = checks(session)["delivery-channel"]
    assert result.status == FAIL and "snapshot (AccessDenied)" in result.message


def test_delivery_status_unavailable_is_an_error_not_ok(session: boto3.Session) -> None:
    # plain moto: DescribeDeliveryChannelStatus is not implemented
    recorder(session)
    session.client("config").put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "b"})
    result = checks(session)["delivery-channel"]
    assert result.status == ERROR and "DescribeDeliveryChannelStatus" in result.message


# ----------------------------------------------------------------------------------------------- rules
def test_rule_names_with_prefixes_and_suffixes(session: boto3.Session) -> None:
    status = ready(session, names=())
    deployed = {
        "KMS_CMK_ROTATION_ENABLED": "KMS_CMK_ROTATION_ENABLED-conformance-pack-2hq5eclc",
        "VPC_FLOW_LOGS_ENABLED": "ml-guardrails-VPC_FLOW_LOGS_ENABLED",
        "GUARDDUTY_ENABLED": "GUARDDUTY_ENABLED_V2",  # another rule: not a match
    }
    for name in deployed.values():
        deploy_rule(session, name)
        status.healthy(name)
    result = checks(session)
    assert result["rule KMS_CMK_ROTATION_ENABLED"].status == OK
    assert "conformance-pack-2hq5eclc" in result["rule KMS_CMK_ROTATION_ENABLED"].message
    assert result["rule VPC_FLOW_LOGS_ENABLED"].status == OK
    assert result["rule GUARDDUTY_ENABLED"].status == FAIL

    prefixed = checks(session, prefix="ml-guardrails-")
    assert prefixed["rule VPC_FLOW_LOGS_ENABLED"].status == OK
    assert prefixed["rule KMS_CMK_ROTATION_ENABLED"].status == FAIL
    assert "named ml-guardrails-KMS_CMK_ROTATION_ENABLED" in prefixed["rule KMS_CMK_ROTATION_ENABLED"].message


def test_rule_evaluation_states(session: boto3.Session) -> None:
    status = ready(session)
    failed = status.rules["KMS_CMK_ROTATION_ENABLED"]
    failed["LastFailedInvocationTime"] = T0 + dt.timedelta(hours=1)
    failed["LastErrorCode"] = "EvaluationIncomplete"
    failed["LastErrorMessage"] = "1 resource could not be evaluated"
    recovered = status.rules["VPC_FLOW_LOGS_ENABLED"]
    recovered["LastFailedInvocationTime"] = T0 - dt.timedelta(hours=1)
    eval_failed = status.rules["S3_BUCKET_SSE_KMS_ENFORCED"]
    eval_failed["LastFailedEvaluationTime"] = T0 + dt.timedelta(minutes=5)
    status.rules["GUARDDUTY_ENABLED"] = {
        "ConfigRuleName": "GUARDDUTY_ENABLED",
        "FirstEvaluationStarted": False,
    }

    result = checks(session)

    kms = result["rule KMS_CMK_ROTATION_ENABLED"]
    assert kms.status == FAIL and "last invocation failed at 2026-11-28T07:00:00+00:00" in kms.message
    assert "EvaluationIncomplete: 1 resource could not be evaluated" in kms.message
    assert result["rule VPC_FLOW_LOGS_ENABLED"].status == OK
    assert "last evaluation failed" in result["rule S3_BUCKET_SSE_KMS_ENFORCED"].message
    guardduty = result["rule GUARDDUTY_ENABLED"]
    assert guardduty.status == WARN and "start-config-rules-evaluation" in guardduty.fix
    assert doctor.exit_code(result.values()) == 1


def test_status_is_asked_in_batches_of_25(session: boto3.Session) -> None:
    status = ready(session, names=())
    names = [f"ml-guardrails-{i:02d}-KMS_CMK_ROTATION_ENABLED" for i in range(30)]
    for name in names:
        deploy_rule(session, name)
        status.healthy(name)
    result = doctor.run_checks(session, specs=SPECS[1:2])
    assert [c.status for c in result if c.name.startswith("rule")] == [OK] * 30
    assert [len(r) for r in status.requested] == [25, 5]


def test_deleting_rule_is_a_failure() -> None:
    rule = {"ConfigRuleName": "KMS_CMK_ROTATION_ENABLED", "ConfigRuleState": "DELETING"}
    assert doctor.check_rule_status("KMS_CMK_ROTATION_ENABLED", rule, None).status == FAIL


# ----------------------------------------------------------------------------------------- fail closed
@pytest.mark.parametrize(
    ("operation", "affected"),
    [
        ("config.DescribeConfigurationRecorders", {"recorder", "recording-group"}),
        ("config.DescribeConfigurationRecorderStatus", {"recorder"}),
        ("config.DescribeDeliveryChannels", {"delivery-channel"}),
        ("config.DescribeDeliveryChannelStatus", {"delivery-channel"}),
        ("config.DescribeConfigRules", {f"rule {n}" for n in NAMES}),
        ("config.DescribeConfigRuleEvaluationStatus", {f"rule {n}" for n in NAMES}),
    ],
)
def test_access_denied_is_never_ok(session: boto3.Session, operation: str, affected: set[str]) -> None:
    ready(session).off.add(operation.split(".")[1])
    inject(session, operation, error_code="AccessDeniedException")
    result = checks(session)
    assert {name for name, c in result.items() if c.status == ERROR} == affected
    api = operation.split(".")[1]
    for name in affected:
        assert f"config:{api}" in result[name].fix
    assert doctor.exit_code(result.values()) == 2


def test_malformed_response_is_an_error(session: boto3.Session) -> None:
    ready(session)
    inject(session, "config.DescribeConfigRules", response={"Rules": []})
    result = checks(session)
    assert result["rule KMS_CMK_ROTATION_ENABLED"].status == ERROR
    assert "no ConfigRules list" in result["rule KMS_CMK_ROTATION_ENABLED"].message


def test_exit_code_precedence() -> None:
    ok, fail, err = Check("a", OK, ""), Check("b", FAIL, ""), Check("c", ERROR, "")
    assert doctor.exit_code([ok]) == 0
    assert doctor.exit_code([ok, fail]) == 1
    assert doctor.exit_code([ok, fail, err]) == 2


def test_text_output_names_the_fix() -> None:
    out = io.StringIO()
    doctor.render_text(
        [Check("recorder", FAIL, "Not recording.", "start it"), Check("x", OK, "fine", "n/a")], out
    )
    assert out.getvalue().splitlines() == [
        "FAIL  recorder  Not recording.",
        "                fix: start it",
        "OK    x         fine",
    ]


# ------------------------------------------------------------------------------ through ml-guardrails
def test_doctor_is_a_command_of_ml_guardrails(capsys: pytest.CaptureFixture[str]) -> None:
    from ml_guardrails import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["doctor", "--help"])
    assert done.value.code == 0
    assert "--rule-prefix" in capsys.readouterr().out


def test_ml_guardrails_doctor_over_moto(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ml-guardrails doctor` end to end: the whole catalog deployed and healthy, then one rule missing."""
    from ml_guardrails import cli

    every = tuple(spec.name for spec in catalog.discover())
    status = ready(session, names=every)
    # The command builds its session from the credential chain: hand it the one AwsConfigStatus answers on.
    monkeypatch.setattr(boto3, "Session", lambda *a, **k: session)
    assert cli.main(["doctor", "--region", REGION, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in report["checks"]} >= {f"rule {n}" for n in every}
    assert {c["status"] for c in report["checks"]} == {OK}

    del status.rules[every[0]]
    session.client("config").delete_config_rule(ConfigRuleName=every[0])
    assert cli.main(["doctor", "--region", REGION]) == 1
    failing = [line for line in capsys.readouterr().out.splitlines() if line.startswith(FAIL)]
    assert len(failing) == 1 and f"rule {every[0]} " in failing[0], failing
