"""S3_BUCKET_POLICY_ORG_ONLY against moto: the sweep, end-to-end per trigger, fail-closed paths, parameters.

moto 5.2.5 differs from AWS here; the tests follow AWS and say so where it matters:
* ``put_bucket_policy`` accepts any text (AWS answers MalformedPolicy); a stored non-policy must fail the
  bucket's evaluation, never pass.
* ``list_buckets`` leaves out ``BucketRegion``; a response with buckets of other Regions is injected.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rdklib import ComplianceType, InvalidParametersError

from ml_guardrails.aws import ClientFactory
from ml_guardrails.catalog import get
from ml_guardrails.engine import EvaluationIncomplete, handle
from ml_guardrails.testing import (
    NOTIFICATION_TIME,
    PutEvaluationsRecorder,
    change_event,
    history_item,
    inject,
    oversized_event,
    scheduled_event,
)
from tests.test_policy import ORG

mod = get("S3_BUCKET_POLICY_ORG_ONLY").load_module()
RULE = mod.S3_BUCKET_POLICY_ORG_ONLY
S3_BUCKET = "AWS::S3::Bucket"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
EXEMPT_KEY = "ml-guardrails:exempt"
# The parameters the seeded landscape is meant to be evaluated with (fault matrix, demo).
PARAMETERS = {"OrganizationId": ORG, "ExemptionTagKey": EXEMPT_KEY}
PARTNER = "111122223333"


def _arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def _tls(bucket: str) -> dict[str, Any]:
    """The S3 User Guide's RestrictToTLSRequestsOnly statement (example-bucket-policies.html)."""
    return {
        "Sid": "RestrictToTLSRequestsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [_arn(bucket), f"{_arn(bucket)}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def seed_s3_bucket_policy(session: boto3.Session) -> None:
    """Buckets that show every verdict of S3_BUCKET_POLICY_ORG_ONLY, evaluated with ``PARAMETERS``:

    ml-org-features      COMPLIANT      read for aws:PrincipalOrgID = the organization, TLS Deny
    ml-perimeter-raw     COMPLIANT      broad Allow under a bucket-wide identity-perimeter Deny, TLS Deny
    ml-partner-exchange  NON_COMPLIANT  read for account 111122223333 (root), unconstrained, TLS Deny
    ml-open-scratch      NON_COMPLIANT  no bucket policy (nothing denies plain HTTP)
    ml-public-sandbox    NOT_APPLICABLE public read, exempted by tag
    """
    s3 = session.client("s3")
    region = s3.meta.region_name
    location: dict[str, Any] = (
        {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    for name in (
        "ml-org-features",
        "ml-perimeter-raw",
        "ml-partner-exchange",
        "ml-open-scratch",
        "ml-public-sandbox",
    ):
        s3.create_bucket(Bucket=name, **location)
    b = "ml-org-features"
    org_read = {
        "Sid": "AllowOrganizationRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [_arn(b), f"{_arn(b)}/*"],
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
    }
    s3.put_bucket_policy(Bucket=b, Policy=_policy(org_read, _tls(b)))
    b = "ml-perimeter-raw"
    broad = {"Sid": "AllowReaders", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}
    broad["Resource"] = f"{_arn(b)}/*"
    perimeter = {
        "Sid": "EnforceIdentityPerimeter",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [_arn(b), f"{_arn(b)}/*"],
        "Condition": {
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    }
    s3.put_bucket_policy(Bucket=b, Policy=_policy(broad, perimeter, _tls(b)))
    b = "ml-partner-exchange"
    partner = {
        "Sid": "PartnerRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{PARTNER}:root"},
        "Action": "s3:GetObject",
        "Resource": f"{_arn(b)}/*",
    }
    s3.put_bucket_policy(Bucket=b, Policy=_policy(partner, _tls(b)))
    b = "ml-public-sandbox"
    public = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    public["Resource"] = f"{_arn(b)}/*"
    s3.put_bucket_policy(Bucket=b, Policy=_policy(public))
    s3.put_bucket_tagging(
        Bucket=b, Tagging={"TagSet": [{"Key": EXEMPT_KEY, "Value": "public demo data, RISK-12"}]}
    )


SEEDED = {
    "ml-org-features": C,
    "ml-perimeter-raw": C,
    "ml-partner-exchange": NC,
    "ml-open-scratch": NC,
    "ml-public-sandbox": NA,
}


class CallLog:
    """Every operation clients of ``session`` make, as (service, operation, params)."""

    def __init__(self, session: boto3.Session) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        session.events.register("provide-client-params", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, dict(params)))

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [params for _, op, params in self.calls if op == name]

    def names(self) -> list[str]:
        """The rule's own calls (the engine's AssumeRole and PutEvaluations left out)."""
        return [op for _, op, _ in self.calls if op not in ("AssumeRole", "PutEvaluations")]


@pytest.fixture
def rec() -> Any:
    with mock_aws():
        yield PutEvaluationsRecorder()


def sweep(session: boto3.Session, raw: dict[str, Any] | None = None) -> list[Any]:
    rule = RULE()
    clients = ClientFactory(session=session, region=session.region_name, assume_role_mode=False)
    return list(rule.sweep(clients, rule.evaluate_parameters(raw or PARAMETERS)))


# ------------------------------------------------------------------------------------------------ sweep
def test_seed_and_sweep_show_every_verdict(rec: PutEvaluationsRecorder) -> None:
    seed_s3_bucket_policy(rec.session)
    log = CallLog(rec.session)
    outcomes = sweep(rec.session)
    assert {o.complianceResourceId: o.complianceType for o in outcomes} == SEEDED
    by_id = {o.complianceResourceId: o.annotation for o in outcomes}
    assert "PartnerRead" in by_id["ml-partner-exchange"]
    assert "No bucket policy" in by_id["ml-open-scratch"]
    assert "RISK-12" in by_id["ml-public-sandbox"]
    assert all(0 < len(a) <= 256 for a in by_id.values())
    assert len(log.ops("GetCallerIdentity")) == 1
    assert log.ops("ListBuckets") == [{"BucketRegion": "us-east-1", "MaxBuckets": 1000}]
    assert sorted(p["Bucket"] for p in log.ops("GetBucketTagging")) == sorted(SEEDED)
    # the exempt bucket's policy is never read
    assert sorted(p["Bucket"] for p in log.ops("GetBucketPolicy")) == sorted(
        set(SEEDED) - {"ml-public-sandbox"}
    )


def test_without_exemption_key_no_tag_reads(rec: PutEvaluationsRecorder) -> None:
    seed_s3_bucket_policy(rec.session)
    log = CallLog(rec.session)
    verdicts = {o.complianceResourceId: o.complianceType for o in sweep(rec.session, {"OrganizationId": ORG})}
    assert verdicts["ml-public-sandbox"] == NC
    assert log.ops("GetBucketTagging") == []


def test_buckets_of_other_regions_are_left_to_their_region(rec: PutEvaluationsRecorder) -> None:
    seed_s3_bucket_policy(rec.session)
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    inject(
        rec.session,
        "s3.ListBuckets",
        response={
            "Buckets": [
                {"Name": "ml-open-scratch", "CreationDate": created, "BucketRegion": "us-east-1"},
                {"Name": "ml-eu-archive", "CreationDate": created, "BucketRegion": "eu-west-1"},
            ]
        },
    )
    assert [o.complianceResourceId for o in sweep(rec.session)] == ["ml-open-scratch"]


def test_bucket_deleted_mid_sweep_is_skipped(rec: PutEvaluationsRecorder) -> None:
    seed_s3_bucket_policy(rec.session)
    inject(
        rec.session,
        "s3.GetBucketPolicy",
        error_code="NoSuchBucket",
        status=404,
        when=lambda p: "ml-org-features" in str(p),
    )
    ids = {o.complianceResourceId for o in sweep(rec.session)}
    assert ids == set(SEEDED) - {"ml-org-features"}


# ------------------------------------------------------------------------------------------ fail closed
@pytest.mark.parametrize("code", ["AccessDenied", "SlowDown"])
def test_unreadable_policy_fails_that_bucket_only(rec: PutEvaluationsRecorder, code: str) -> None:
    seed_s3_bucket_policy(rec.session)
    inject(
        rec.session,
        "s3.GetBucketPolicy",
        error_code=code,
        status=403 if code == "AccessDenied" else 503,
        when=lambda p: "ml-org-features" in str(p),
    )
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(PARAMETERS), session=rec.session)
    [failure] = info.value.failures
    assert (failure.resource_id, failure.operation) == ("ml-org-features", "GetBucketPolicy")
    verdicts = rec.verdicts()
    assert "ml-org-features" not in verdicts
    assert verdicts == {k: v for k, v in SEEDED.items() if k != "ml-org-features"}


def test_stored_non_policy_fails_closed(rec: PutEvaluationsRecorder) -> None:
    seed_s3_bucket_policy(rec.session)
    rec.session.client("s3").put_bucket_policy(Bucket="ml-org-features", Policy='{"Statement": "all"}')
    outcomes = {getattr(o, "resource_id", None) or o.complianceResourceId: o for o in sweep(rec.session)}
    failure = outcomes["ml-org-features"]
    assert failure.code == "MalformedConfigurationItem"


def test_list_denied_fails_the_sweep_and_posts_nothing(rec: PutEvaluationsRecorder) -> None:
    seed_s3_bucket_policy(rec.session)
    inject(rec.session, "s3.ListBuckets", error_code="AccessDenied", status=403)
    with pytest.raises(EvaluationIncomplete) as info:
        handle(RULE(), scheduled_event(PARAMETERS), session=rec.session)
    assert info.value.failures[0].resource_id == "*"
    assert rec.calls == []


def test_invalid_parameters_post_nothing(rec: PutEvaluationsRecorder) -> None:
    for raw in ({}, {"OrganizationId": "o-123"}):
        with pytest.raises(InvalidParametersError, match="OrganizationId"):
            handle(RULE(), scheduled_event(raw), session=rec.session)
    assert rec.calls == []


# ------------------------------------------------------------------------------------------- end to end
def _fixture(name: str) -> dict[str, Any]:
    from tests.test_kms_rotation import fixture

    return fixture(name)


def test_e2e_change_trigger_no_api_calls(rec: PutEvaluationsRecorder) -> None:
    log = CallLog(rec.session)
    records = handle(
        RULE(), change_event(_fixture("s3_policy_cross_account_no_tls.json"), PARAMETERS), session=rec.session
    )
    [posted] = rec.evaluations
    assert posted["ComplianceResourceId"] == "ml-shared-datasets-123456789012"
    assert posted["ComplianceType"] == NC
    assert posted["OrderingTimestamp"] == "2026-11-27T10:02:31.512Z"
    assert "PartnerRead" in posted["Annotation"] and "non-TLS" in posted["Annotation"]
    assert records == rec.evaluations
    assert log.names() == []


def test_e2e_change_trigger_compliant(rec: PutEvaluationsRecorder) -> None:
    handle(RULE(), change_event(_fixture("s3_policy_org_only_tls.json"), PARAMETERS), session=rec.session)
    assert rec.verdicts() == {"ml-feature-store-123456789012": C}


def test_e2e_oversized_trigger(rec: PutEvaluationsRecorder) -> None:
    base = _fixture("s3_policy_org_only_tls.json")
    history = history_item(base, dt.datetime(2026, 11, 27, 8, 30, 5, 250000, tzinfo=dt.UTC))
    inject(rec.session, "config.GetResourceConfigHistory", response={"configurationItems": [history]})
    records = handle(RULE(), oversized_event(S3_BUCKET, base["resourceId"], PARAMETERS), session=rec.session)
    [posted] = rec.evaluations
    assert (posted["ComplianceResourceId"], posted["ComplianceType"]) == (base["resourceId"], C)
    assert posted["OrderingTimestamp"] == "2026-11-27T08:30:05.250Z"
    json.dumps(records)


def test_e2e_periodic_trigger(rec: PutEvaluationsRecorder) -> None:
    seed_s3_bucket_policy(rec.session)
    handle(RULE(), scheduled_event(PARAMETERS), session=rec.session)
    assert rec.verdicts() == SEEDED
    for posted in rec.evaluations:
        assert posted["OrderingTimestamp"] == NOTIFICATION_TIME
        assert posted["ComplianceResourceType"] == S3_BUCKET


# ------------------------------------------------------------------------------------------ remediation
def notify_finding(session: boto3.Session, rule: str, resource_id: str) -> dict[str, Any]:
    """Run the rule's remediation as AWS Config would bind it (parameters.json), with the placeholder
    topic replaced by a real one; returns the SNS envelope an SQS subscriber received."""
    from ml_guardrails.runbooks import FakeClock, run_runbook

    spec = get(rule).remediation
    assert spec is not None and spec.target_id == "MlGuardrails-NotifyNonCompliantResource"
    assert spec.automatic is False  # changing access is a human decision
    sns, sqs = session.client("sns"), session.client("sqs")
    topic = sns.create_topic(Name="ml-guardrails-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="findings")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    parameters = spec.parameters_for(resource_id)
    parameters["TopicArn"] = [topic]
    execution = run_runbook(spec.runbook_path, parameters, session, clock=FakeClock())
    assert execution.status == "Success", execution.failure_message
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    envelope: dict[str, Any] = json.loads(message["Body"])
    return envelope


def test_finding_notifies_through_the_bound_runbook(rec: PutEvaluationsRecorder) -> None:
    envelope = notify_finding(rec.session, "S3_BUCKET_POLICY_ORG_ONLY", "ml-partner-exchange")
    body = json.loads(envelope["Message"])
    assert (body["rule"], body["resourceType"]) == ("S3_BUCKET_POLICY_ORG_ONLY", S3_BUCKET)
    assert "ml-partner-exchange" in json.dumps(body)
    assert "aws:PrincipalOrgID" in json.dumps(body)
