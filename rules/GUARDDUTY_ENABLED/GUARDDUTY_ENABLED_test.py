"""Unit tests of GUARDDUTY_ENABLED, following the scenarios of the rule's docstring (pure: no AWS, no mocks).

Runs under pytest and ``rdk test-local`` (cwd rules/, only this folder on sys.path).

Where the shapes come from: GetDetector's response as botocore 1.44.8's guardduty model declares it
(``Status`` and ``ServiceRole`` required; ``Features`` a list of ``{Name, Status, UpdatedAt,
AdditionalConfiguration}``, names from ``DetectorFeatureResult`` including the foundational
FLOW_LOGS/CLOUD_TRAIL/DNS_LOGS) and the API reference
(https://docs.aws.amazon.com/guardduty/latest/APIReference/API_GetDetector.html).
"""

from __future__ import annotations

import unittest
from typing import Any

from rdklib import ComplianceType, InvalidParametersError

import GUARDDUTY_ENABLED as rule
from ml_guardrails.ci import MalformedConfigurationItem

C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
DETECTOR_ID = "12abc34d567e8fa901bc2d34e56789f0"  # the API reference's example id


def get_detector_response(status: str = "ENABLED", **features: str) -> dict[str, Any]:
    """A GetDetector response in AWS's shape; ``features`` name -> status (all others left out)."""
    return {
        "CreatedAt": "2026-01-05T10:12:00.000Z",
        "FindingPublishingFrequency": "SIX_HOURS",
        "ServiceRole": "arn:aws:iam::123456789012:role/aws-service-role/guardduty.amazonaws.com/"
        "AWSServiceRoleForAmazonGuardDuty",
        "Status": status,
        "UpdatedAt": "2026-01-05T10:12:00.000Z",
        "Tags": {"owner": "security"},
        "Features": [
            {"Name": name, "Status": value, "UpdatedAt": "2026-01-05T10:12:00Z"}
            for name, value in features.items()
        ],
    }


FOUNDATIONAL = {"FLOW_LOGS": "ENABLED", "CLOUD_TRAIL": "ENABLED", "DNS_LOGS": "ENABLED"}


def detector(status: str = "ENABLED", **features: str) -> rule.Detector:
    return rule.Detector.from_response(DETECTOR_ID, get_detector_response(status, **FOUNDATIONAL, **features))


def params(required: str = "") -> rule.Params:
    return rule.GUARDDUTY_ENABLED().evaluate_parameters({"RequiredFeatures": required}).rule


class DecideTest(unittest.TestCase):
    """Scenarios 1-7, table-driven."""

    CASES: tuple[tuple[str, rule.Detector | None, str, str, str], ...] = (
        # (name, detector, RequiredFeatures, expected compliance, text the annotation must contain)
        ("no detector", None, "", NC, "no detector exists"),
        ("no detector, features asked", None, "S3_DATA_EVENTS", NC, "CreateDetector with Enable true"),
        ("suspended", detector("DISABLED"), "", NC, "suspended (Status DISABLED)"),
        (
            "suspended, features on",
            detector("DISABLED", S3_DATA_EVENTS="ENABLED"),
            "S3_DATA_EVENTS",
            NC,
            "Enable true",
        ),
        ("unknown status", detector("PAUSED"), "", NC, "Status 'PAUSED', unknown"),
        ("enabled", detector(), "", C, f"{DETECTOR_ID} is enabled."),
        ("enabled, empty features", rule.Detector(DETECTOR_ID, "ENABLED", {}, {}), "", C, "is enabled"),
        (
            "features on",
            detector(S3_DATA_EVENTS="ENABLED", RUNTIME_MONITORING="ENABLED"),
            "S3_DATA_EVENTS,RUNTIME_MONITORING",
            C,
            "with RUNTIME_MONITORING, S3_DATA_EVENTS",
        ),
        (
            "feature disabled",
            detector(S3_DATA_EVENTS="DISABLED"),
            "S3_DATA_EVENTS",
            NC,
            "S3_DATA_EVENTS (DISABLED)",
        ),
        ("feature not listed", detector(), "RDS_LOGIN_EVENTS", NC, "RDS_LOGIN_EVENTS (not listed"),
        (
            "feature unknown status",
            detector(EBS_MALWARE_PROTECTION="PENDING"),
            "EBS_MALWARE_PROTECTION",
            NC,
            "'PENDING'",
        ),
        (
            "eks runtime via runtime monitoring",
            detector(EKS_RUNTIME_MONITORING="DISABLED", RUNTIME_MONITORING="ENABLED"),
            "EKS_RUNTIME_MONITORING",
            C,
            "with EKS_RUNTIME_MONITORING",
        ),
        (
            "eks runtime itself",
            detector(EKS_RUNTIME_MONITORING="ENABLED"),
            "EKS_RUNTIME_MONITORING",
            C,
            "enabled",
        ),
        (
            "runtime monitoring not implied by eks runtime",
            detector(EKS_RUNTIME_MONITORING="ENABLED", RUNTIME_MONITORING="DISABLED"),
            "RUNTIME_MONITORING",
            NC,
            "RUNTIME_MONITORING (DISABLED)",
        ),
        (
            "feature names are exact",
            detector(s3_data_events="ENABLED"),
            "S3_DATA_EVENTS",
            NC,
            "S3_DATA_EVENTS (not",
        ),
    )

    def test_cases(self) -> None:
        for name, det, required, compliance, text in self.CASES:
            with self.subTest(name):
                verdict = rule.decide(det, params(required))
                self.assertEqual(verdict.compliance, compliance)
                self.assertIn(text, verdict.annotation)
                self.assertLessEqual(len(verdict.annotation), 256)

    def test_every_missing_feature_is_named(self) -> None:
        det = detector(S3_DATA_EVENTS="DISABLED", EKS_AUDIT_LOGS="ENABLED")
        verdict = rule.decide(det, params("S3_DATA_EVENTS,EKS_AUDIT_LOGS,LAMBDA_NETWORK_LOGS"))
        self.assertEqual(verdict.compliance, NC)
        self.assertIn("LAMBDA_NETWORK_LOGS (not listed", verdict.annotation)
        self.assertIn("S3_DATA_EVENTS (DISABLED)", verdict.annotation)
        self.assertNotIn("EKS_AUDIT_LOGS", verdict.annotation)

    def test_no_features_in_the_response_fails_closed_only_when_features_are_required(self) -> None:
        response = get_detector_response()
        del response["Features"]
        det = rule.Detector.from_response(DETECTOR_ID, response)
        self.assertEqual(rule.decide(det, params()).compliance, C)
        with self.assertRaises(MalformedConfigurationItem) as caught:
            rule.decide(det, params("S3_DATA_EVENTS"))
        self.assertEqual(caught.exception.operation, "GetDetector")


class ResponseShapeTest(unittest.TestCase):
    """Scenario 9: malformed GetDetector responses are failures, never COMPLIANT."""

    def test_malformed(self) -> None:
        no_status = get_detector_response()
        del no_status["Status"]
        cases: dict[str, dict[str, Any]] = {
            "no Status": no_status,
            "Status not a string": {"Status": True},
            "Features not a list": {"Status": "ENABLED", "Features": {"Name": "S3_DATA_EVENTS"}},
            "feature without Name": {"Status": "ENABLED", "Features": [{"Status": "ENABLED"}]},
            "feature without Status": {"Status": "ENABLED", "Features": [{"Name": "S3_DATA_EVENTS"}]},
            "feature not an object": {"Status": "ENABLED", "Features": ["S3_DATA_EVENTS"]},
            "Tags malformed": {"Status": "ENABLED", "Tags": [1]},
        }
        for name, response in cases.items():
            with self.subTest(name), self.assertRaises(MalformedConfigurationItem):
                rule.Detector.from_response(DETECTOR_ID, response)

    def test_tags_are_read(self) -> None:
        self.assertEqual(detector().tags, {"owner": "security"})


class ExemptionTest(unittest.TestCase):
    """Scenario 8: the exemption tag on the detector makes the account NOT_APPLICABLE."""

    def test_tagged_detector_is_not_applicable(self) -> None:
        spec = rule.GUARDDUTY_ENABLED().evaluate_parameters({"ExemptionTagKey": "guardrails-exempt"})
        evaluation = spec.exemption(
            rule.RESOURCE_TYPE, "123456789012", {"guardrails-exempt": "RISK-9 sandbox"}
        )
        assert evaluation is not None
        self.assertEqual(evaluation.complianceType, NA)
        self.assertIn("RISK-9 sandbox", evaluation.annotation)


class ParametersTest(unittest.TestCase):
    def test_valid(self) -> None:
        self.assertEqual(params(), rule.Params(frozenset()))
        self.assertEqual(
            params(" S3_DATA_EVENTS , RUNTIME_MONITORING "),
            rule.Params(frozenset({"S3_DATA_EVENTS", "RUNTIME_MONITORING"})),
        )

    def test_invalid_names_the_parameter(self) -> None:
        for value in (
            "s3_data_events",
            "FLOW_LOGS",
            "S3_DATA_EVENTS,,EKS_AUDIT_LOGS",
            "MALWARE",
            "RUNTIME_MONITORING,",
        ):
            with self.subTest(value), self.assertRaisesRegex(InvalidParametersError, "RequiredFeatures"):
                params(value)

    def test_runtime_and_eks_runtime_together_need_only_runtime_monitoring(self) -> None:
        both = params("RUNTIME_MONITORING,EKS_RUNTIME_MONITORING")
        on = detector(RUNTIME_MONITORING="ENABLED", EKS_RUNTIME_MONITORING="DISABLED")
        self.assertEqual(rule.decide(on, both).compliance, C)
        off = rule.decide(detector(EKS_RUNTIME_MONITORING="ENABLED", RUNTIME_MONITORING="DISABLED"), both)
        self.assertEqual(off.compliance, NC)
        self.assertIn("RUNTIME_MONITORING (DISABLED)", off.annotation)

    def test_unknown_parameter(self) -> None:
        with self.assertRaisesRegex(InvalidParametersError, "unknown parameter RequiredFeature"):
            rule.GUARDDUTY_ENABLED().evaluate_parameters({"RequiredFeature": "S3_DATA_EVENTS"})


class EventAccountTest(unittest.TestCase):
    def test_account_from_the_event(self) -> None:
        self.assertEqual(rule._event_account({"accountId": "111122223333"}), "111122223333")
        self.assertEqual(
            rule._event_account({"invokingEvent": '{"awsAccountId": "444455556666"}'}), "444455556666"
        )
        self.assertIsNone(rule._event_account({"invokingEvent": "not json"}))
        self.assertIsNone(rule._event_account(None))


if __name__ == "__main__":
    unittest.main()
