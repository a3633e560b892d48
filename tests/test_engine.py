"""The shared engine's contract, on a small rule defined here (the real rules have their own tests).

The rule checks S3 bucket versioning through moto: it is only a vehicle for the engine's paths --
parameters, exemption, change/oversized/periodic triggers, fail-closed failures, PutEvaluations.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rdklib import ComplianceType, InvalidParametersError

from ml_guardrails.ci import ConfigurationItem, MalformedConfigurationItem, get_field
from ml_guardrails.engine import (
    EvaluationIncomplete,
    GuardrailRule,
    Outcome,
    RuleParameters,
    guarded,
    handle,
    make_evaluation,
)
from ml_guardrails.params import BoolParameter, IntParameter
from ml_guardrails.testing import (
    NOTIFICATION_TIME,
    PutEvaluationsRecorder,
    change_event,
    inject,
    oversized_event,
    scheduled_event,
)

BUCKET = "AWS::S3::Bucket"


@dataclass(frozen=True)
class VParams:
    require_mfa_delete: bool
    limit: int | None


class VERSIONING_RULE(GuardrailRule[VParams]):
    RULE_NAME = "VERSIONING_RULE"
    RESOURCE_TYPES = (BUCKET,)
    PARAMETERS = (
        BoolParameter("RequireMfaDelete", "MFA delete must be on", default="false"),
        IntParameter("Limit", "a number", minimum=1, maximum=10),
    )

    def make_params(self, values: Mapping[str, Any]) -> VParams:
        return VParams(values["RequireMfaDelete"], values["Limit"])

    def evaluate_item(self, item: ConfigurationItem, clients: Any, params: RuleParameters[VParams]) -> Any:
        status = get_field(item.supplementary.get("BucketVersioningConfiguration"), "status")
        if status is None:
            raise MalformedConfigurationItem("no BucketVersioningConfiguration.status")
        return self._decide(item.resource_id, status)

    def _decide(self, bucket: str, status: str | None) -> Any:
        if status == "Enabled":
            return make_evaluation(ComplianceType.COMPLIANT, BUCKET, bucket, "versioning on")
        return make_evaluation(ComplianceType.NON_COMPLIANT, BUCKET, bucket, "Enable versioning.")

    def sweep(self, clients: Any, params: RuleParameters[VParams]) -> Iterator[Outcome]:
        s3 = clients.build_client("s3")
        for bucket in s3.list_buckets()["Buckets"]:
            name = bucket["Name"]

            def decide(name: str = name) -> Any:
                tags = {}
                if params.exemption_tag_key:
                    try:
                        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
                    except Exception:
                        tags = {}
                exempt = params.exemption(BUCKET, name, tags)
                if exempt is not None:
                    return exempt
                return self._decide(name, s3.get_bucket_versioning(Bucket=name).get("Status"))

            outcome = guarded(BUCKET, name, decide, gone=("NoSuchBucket",))
            if outcome is not None:
                yield outcome


def bucket_ci(name: str, status: str | None = "Enabled", **overrides: Any) -> dict[str, Any]:
    ci: dict[str, Any] = {
        "configurationItemCaptureTime": "2026-11-28T10:00:00.000Z",
        "configurationItemStatus": "OK",
        "resourceType": BUCKET,
        "resourceId": name,
        "resourceName": name,
        "ARN": f"arn:aws:s3:::{name}",
        "awsRegion": "us-east-1",
        "awsAccountId": "123456789012",
        "configuration": {"name": name},
        "supplementaryConfiguration": {"BucketVersioningConfiguration": {"status": status}},
        "tags": {},
    }
    ci.update(overrides)
    return ci


@pytest.fixture
def aws() -> Iterator[PutEvaluationsRecorder]:
    with mock_aws():
        yield PutEvaluationsRecorder()


def make_buckets(session: boto3.Session, versioned: list[str], plain: list[str]) -> None:
    s3 = session.client("s3")
    for name in versioned + plain:
        s3.create_bucket(Bucket=name)
    for name in versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


# ------------------------------------------------------------------------------------------ change path
def test_change_posts_one_evaluation_with_the_ci_timestamp(aws: PutEvaluationsRecorder) -> None:
    result = handle(VERSIONING_RULE(), change_event(bucket_ci("data")), session=aws.session)
    assert aws.evaluations == result
    (evaluation,) = result
    assert evaluation["ComplianceType"] == "COMPLIANT"
    assert evaluation["ComplianceResourceId"] == "data"
    assert evaluation["OrderingTimestamp"] == "2026-11-28T10:00:00.000Z"
    assert aws.calls[0]["TestMode"] is True
    json.dumps(result)  # what the Lambda runtime does with the return value


@pytest.mark.parametrize("status", ["ResourceDeleted", "ResourceDeletedNotRecorded", "ResourceNotRecorded"])
def test_deleted_resources_are_not_applicable(aws: PutEvaluationsRecorder, status: str) -> None:
    ci = bucket_ci("gone", configurationItemStatus=status, configuration=None, supplementaryConfiguration={})
    result = handle(VERSIONING_RULE(), change_event(ci), session=aws.session)
    assert [e["ComplianceType"] for e in result] == ["NOT_APPLICABLE"]


def test_event_left_scope_is_not_applicable(aws: PutEvaluationsRecorder) -> None:
    result = handle(VERSIONING_RULE(), change_event(bucket_ci("b"), eventLeftScope=True), session=aws.session)
    assert [e["ComplianceType"] for e in result] == ["NOT_APPLICABLE"]


def test_other_resource_types_are_not_applicable(aws: PutEvaluationsRecorder) -> None:
    ci = bucket_ci("b", resourceType="AWS::EC2::VPC")
    assert (
        handle(VERSIONING_RULE(), change_event(ci), session=aws.session)[0]["ComplianceType"]
        == "NOT_APPLICABLE"
    )


def test_configuration_as_json_string_is_read(aws: PutEvaluationsRecorder) -> None:
    ci = bucket_ci("b", status="Suspended")
    ci["configuration"] = json.dumps(ci["configuration"])
    ci["supplementaryConfiguration"]["BucketVersioningConfiguration"] = json.dumps({"status": "Suspended"})
    assert (
        handle(VERSIONING_RULE(), change_event(ci), session=aws.session)[0]["ComplianceType"]
        == "NON_COMPLIANT"
    )


def test_malformed_ci_fails_the_invocation_and_posts_nothing(aws: PutEvaluationsRecorder) -> None:
    ci = bucket_ci("b")
    ci["supplementaryConfiguration"] = {}
    with pytest.raises(EvaluationIncomplete) as info:
        handle(VERSIONING_RULE(), change_event(ci), session=aws.session)
    assert aws.calls == []
    failure = json.loads(str(info.value))["failures"][0]
    assert failure["resourceId"] == "b"
    assert failure["code"] == "MalformedConfigurationItem"


def test_exemption_tag_makes_a_resource_not_applicable_with_the_reason(aws: PutEvaluationsRecorder) -> None:
    ci = bucket_ci("b", status="Suspended", tags={"exempt": "RA-1 accepted by risk"})
    (evaluation,) = handle(
        VERSIONING_RULE(), change_event(ci, {"ExemptionTagKey": "exempt"}), session=aws.session
    )
    assert evaluation["ComplianceType"] == "NOT_APPLICABLE"
    assert "RA-1 accepted by risk" in evaluation["Annotation"]
    # Without the parameter the tag means nothing.
    (plain,) = handle(VERSIONING_RULE(), change_event(ci), session=aws.session)
    assert plain["ComplianceType"] == "NON_COMPLIANT"


# ---------------------------------------------------------------------------------------------- oversized
def test_oversized_inflates_through_config_history_and_returns_json(aws: PutEvaluationsRecorder) -> None:
    # GetResourceConfigHistory shape: configuration and supplementary values are JSON strings and the
    # capture time is a datetime after parsing -- rdklib would return that datetime (not serialisable).
    item = {
        "version": "1.3",
        "accountId": "123456789012",
        "configurationItemCaptureTime": dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC),
        "configurationItemStatus": "OK",
        "resourceType": BUCKET,
        "resourceId": "big",
        "awsRegion": "us-east-1",
        "configuration": json.dumps({"name": "big"}),
        "supplementaryConfiguration": {"BucketVersioningConfiguration": json.dumps({"status": "Enabled"})},
    }
    inject(aws.session, "config.GetResourceConfigHistory", response={"configurationItems": [item]})
    result = handle(VERSIONING_RULE(), oversized_event(BUCKET, "big"), session=aws.session)
    assert result[0]["ComplianceType"] == "COMPLIANT"
    assert result[0]["OrderingTimestamp"] == "2026-11-28T09:30:00.000Z"
    json.dumps(result)


def test_oversized_history_access_denied_fails_loudly(aws: PutEvaluationsRecorder) -> None:
    inject(aws.session, "config.GetResourceConfigHistory", error_code="AccessDeniedException", status=400)
    with pytest.raises(EvaluationIncomplete, match="AccessDeniedException"):
        handle(VERSIONING_RULE(), oversized_event(BUCKET, "big"), session=aws.session)
    assert aws.calls == []


# ----------------------------------------------------------------------------------------------- periodic
def test_periodic_posts_every_bucket_with_the_notification_time(aws: PutEvaluationsRecorder) -> None:
    make_buckets(aws.session, ["ver-one", "ver-two"], ["plain-one"])
    result = handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    assert aws.verdicts() == {"ver-one": "COMPLIANT", "ver-two": "COMPLIANT", "plain-one": "NON_COMPLIANT"}
    assert {e["OrderingTimestamp"] for e in result} == {NOTIFICATION_TIME}


def test_access_denied_on_one_resource_posts_the_others_then_fails(aws: PutEvaluationsRecorder) -> None:
    make_buckets(aws.session, ["ver-one", "secret"], ["plain-one"])
    inject(
        aws.session,
        "s3.GetBucketVersioning",
        error_code="AccessDenied",
        status=403,
        when=lambda p: p.get("Bucket") == "secret",
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    assert aws.verdicts() == {
        "ver-one": "COMPLIANT",
        "plain-one": "NON_COMPLIANT",
    }  # never a verdict for "secret"
    detail = json.loads(str(info.value))
    assert detail["unevaluated"] == 1
    assert detail["failures"] == [
        {
            "resourceType": BUCKET,
            "resourceId": "secret",
            "operation": "GetBucketVersioning",
            "code": "AccessDenied",
            "message": "injected AccessDenied on GetBucketVersioning",
        }
    ]


def test_throttling_that_outlives_retries_is_a_failure(aws: PutEvaluationsRecorder) -> None:
    make_buckets(aws.session, ["ver-one"], [])
    inject(aws.session, "s3.GetBucketVersioning", error_code="SlowDown", status=503)
    with pytest.raises(EvaluationIncomplete, match="SlowDown"):
        handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    assert aws.calls == []


def test_a_failure_to_list_fails_the_sweep_and_posts_nothing(aws: PutEvaluationsRecorder) -> None:
    inject(aws.session, "s3.ListBuckets", error_code="AccessDenied", status=403)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    assert json.loads(str(info.value))["failures"][0]["resourceId"] == "*"
    assert aws.calls == []


def test_resource_deleted_between_list_and_read_is_skipped(aws: PutEvaluationsRecorder) -> None:
    make_buckets(aws.session, ["ver-one", "doomed"], [])
    inject(
        aws.session,
        "s3.GetBucketVersioning",
        error_code="NoSuchBucket",
        status=404,
        when=lambda p: p.get("Bucket") == "doomed",
    )
    handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    assert aws.verdicts() == {"ver-one": "COMPLIANT"}


def test_evaluations_are_posted_in_batches_of_100(aws: PutEvaluationsRecorder) -> None:
    make_buckets(aws.session, [], [f"bucket-{i:03d}" for i in range(250)])
    handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    assert [len(c["Evaluations"]) for c in aws.calls] == [100, 100, 50]


def test_failed_evaluations_are_retried_once_then_reported(aws: PutEvaluationsRecorder) -> None:
    make_buckets(aws.session, ["ver-one"], [])
    rejected = {
        "ComplianceResourceType": BUCKET,
        "ComplianceResourceId": "ver-one",
        "ComplianceType": "COMPLIANT",
    }
    inject(aws.session, "config.PutEvaluations", response={"FailedEvaluations": [rejected]})
    with pytest.raises(EvaluationIncomplete, match="PutEvaluations"):
        handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    assert len(aws.calls) == 2


def test_empty_sweep_posts_nothing_and_succeeds(aws: PutEvaluationsRecorder) -> None:
    assert handle(VERSIONING_RULE(), scheduled_event(), session=aws.session) == []
    assert aws.calls == []


# --------------------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"RequireMfaDelete": "yes"}, "RequireMfaDelete"),
        ({"Limit": "abc"}, "Limit"),
        ({"Limit": "11"}, "Limit"),
        ({"Limt": "3"}, "Limt"),
        ({"AssumeRoleMode": "maybe"}, "AssumeRoleMode"),
        ({"ExecutionRoleName": "arn:aws:iam::1:role/x"}, "ExecutionRoleName"),
        ({"ExemptionTagKey": "aws:reserved"}, "ExemptionTagKey"),
    ],
)
def test_invalid_parameters_raise_naming_the_parameter_and_post_nothing(
    aws: PutEvaluationsRecorder, params: dict[str, str], named: str
) -> None:
    make_buckets(aws.session, ["ver-one"], [])
    with pytest.raises(InvalidParametersError, match=named):
        handle(VERSIONING_RULE(), scheduled_event(params), session=aws.session)
    assert aws.calls == []


def test_invalid_parameter_message_names_the_allowed_values() -> None:
    with pytest.raises(InvalidParametersError) as info:
        VERSIONING_RULE().evaluate_parameters({"Limit": "abc"})
    assert str(info.value) == 'Limit must be an integer from 1 to 10, got "abc"'


def test_rule_parameters_as_empty_string_mean_defaults(aws: PutEvaluationsRecorder) -> None:
    event = change_event(bucket_ci("b"))
    event["ruleParameters"] = ""  # rdk's own test event template sends this; rdklib crashes on it
    assert handle(VERSIONING_RULE(), event, session=aws.session)[0]["ComplianceType"] == "COMPLIANT"


@pytest.mark.parametrize("mode", [False, "false", "FALSE"])
def test_assume_role_mode_accepts_json_boolean_and_string(aws: PutEvaluationsRecorder, mode: Any) -> None:
    assumed: list[str] = []
    aws.session.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )
    handle(VERSIONING_RULE(), change_event(bucket_ci("b"), {"AssumeRoleMode": mode}), session=aws.session)
    assert assumed == []


def test_assume_role_mode_default_assumes_the_execution_role_name_with_its_path(
    aws: PutEvaluationsRecorder,
) -> None:
    assumed: list[str] = []
    aws.session.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )
    event = change_event(bucket_ci("b"), {"ExecutionRoleName": "audit/ml-guardrails-reader"})
    handle(VERSIONING_RULE(), event, session=aws.session)
    assert assumed == ["arn:aws:iam::123456789012:role/audit/ml-guardrails-reader"]


def test_assume_role_denied_fails_with_the_parameters_that_fix_it(aws: PutEvaluationsRecorder) -> None:
    inject(aws.session, "sts.AssumeRole", error_code="AccessDenied", status=403)
    with pytest.raises(EvaluationIncomplete, match="AssumeRoleMode"):
        handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)


# ----------------------------------------------------------------------------------------------- events
def test_unknown_message_type_is_an_error(aws: PutEvaluationsRecorder) -> None:
    event = scheduled_event()
    event["invokingEvent"] = json.dumps({"messageType": "SomethingElse"})
    with pytest.raises(ValueError, match="SomethingElse"):
        handle(VERSIONING_RULE(), event, session=aws.session)


def test_not_a_config_event_is_an_error() -> None:
    with pytest.raises(ValueError, match="invokingEvent"):
        handle(VERSIONING_RULE(), {"hello": "world"})


def test_annotations_longer_than_256_are_cut_visibly() -> None:
    evaluation = make_evaluation(ComplianceType.NON_COMPLIANT, BUCKET, "b", "x" * 400)
    assert len(evaluation.annotation) == 256
    assert evaluation.annotation.endswith("...")


# ---------------------------------------------------------------------------------------- observability
def test_structured_logs_and_emf_metrics(
    aws: PutEvaluationsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    make_buckets(aws.session, ["ver-one", "secret"], ["plain-one"])
    inject(
        aws.session,
        "s3.GetBucketVersioning",
        error_code="AccessDenied",
        when=lambda p: p["Bucket"] == "secret",
    )
    with pytest.raises(EvaluationIncomplete):
        handle(VERSIONING_RULE(), scheduled_event(), session=aws.session)
    out, err = capsys.readouterr()
    (emf,) = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MlGuardrails"
    assert (emf["RuleName"], emf["Compliant"], emf["NonCompliant"], emf["EvaluationErrors"]) == (
        "VERSIONING_RULE",
        [1.0],
        [1.0],
        [1.0],
    )
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    evaluated = {(r["resource_id"], r["compliance"]) for r in logs if r["message"] == "evaluation"}
    assert evaluated == {("ver-one", "COMPLIANT"), ("plain-one", "NON_COMPLIANT")}
    assert all(r["rule"] == "VERSIONING_RULE" for r in logs)
    (error,) = [r for r in logs if r["level"] == "ERROR"]
    assert error["failures"][0]["resourceId"] == "secret"
