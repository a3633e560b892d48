"""Unit tests of KMS_CMK_ROTATION_ENABLED, following the scenarios of the rule's docstring.

Runs under pytest and ``rdk test-local`` (cwd rules/, only this folder on sys.path).

Where the shapes come from:
* ``kms_aws_managed_key.json``: rdk 1.0.0's ``rdk sample-ci AWS::KMS::Key`` (an AWS-managed Lambda key,
  GetResourceConfigHistory-shaped in rdk) re-keyed to the change-notification shape.
* ``kms_customer_key.json`` / ``kms_multi_region_replica_key.json``: derived from it; the fields follow the
  Config resource schema of AWS::KMS::Key (https://github.com/awslabs/aws-config-resource-schema,
  config/properties/resource-types/AWS::KMS::Key.properties.json: ``supplementaryConfiguration.
  KeyRotationStatus`` boolean, ``configuration.multiRegionConfiguration.{multiRegionKeyType,primaryKey.arn}``)
  and the key id / ARN examples of the KMS API reference.
* GetKeyRotationStatus responses: the example of the API reference
  (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyRotationStatus.html: KeyId,
  KeyRotationEnabled, NextRotationDate, RotationPeriodInDays 365) and botocore 1.44.8's output shape.
* Applicability: https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html and the
  GetKeyRotationStatus reference ("Automatic key rotation is supported only on symmetric encryption KMS
  keys ... not ... asymmetric, HMAC, imported key material, custom key store"; "set the property on the
  primary key" for multi-Region keys; AWS-managed keys rotate every year, not configurable; "Disabled: the
  key rotation status does not change"), https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html
  (PendingImport only for imported material; Creating/Updating/PendingReplicaDeletion only multi-Region).
"""

from __future__ import annotations

import copy
import json
import unittest
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rdklib import ComplianceType, InvalidParametersError

import KMS_CMK_ROTATION_ENABLED as rule
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.resources.kms_key import IncompleteRotationStatus, KmsKey, RotationStatus

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/ci"
C, NC, NA = ComplianceType.COMPLIANT, ComplianceType.NON_COMPLIANT, ComplianceType.NOT_APPLICABLE
PRIMARY_ARN = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
# API reference example response (NextRotationDate as boto3 parses it is a datetime; a string is fine here).
AWS_DOC_ROTATION = {
    "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
    "KeyRotationEnabled": True,
    "NextRotationDate": "2024-03-06T15:00:00Z",
    "RotationPeriodInDays": 365,
}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def customer_ci(**config: Any) -> dict[str, Any]:
    """The customer-key fixture with configuration fields overridden (None removes a field)."""
    ci = load("kms_customer_key.json")
    for key, value in config.items():
        if value is None:
            ci["configuration"].pop(key, None)
        else:
            ci["configuration"][key] = value
    return ci


def key(**overrides: Any) -> KmsKey:
    base: dict[str, Any] = {
        "key_id": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn": None,
        "key_manager": "CUSTOMER",
        "key_state": "Enabled",
        "origin": "AWS_KMS",
        "key_spec": "SYMMETRIC_DEFAULT",
        "multi_region": False,
    }
    base.update(overrides)
    return KmsKey(**base)


class FakeKms:
    """GetKeyRotationStatus answering ``response`` (or failing with ``error``); records every call."""

    def __init__(self, response: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.response = response if response is not None else dict(AWS_DOC_ROTATION)
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_key_rotation_status(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("GetKeyRotationStatus", kwargs))
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "fake"}}, "GetKeyRotationStatus")
        return copy.deepcopy(self.response)


class FakeClients:
    def __init__(self, kms: FakeKms | None = None) -> None:
        self.kms = kms or FakeKms()
        self.built: list[str] = []

    def build_client(self, service: str, region: str | None = None, assume_role_mode: bool = True) -> Any:
        self.built.append(service)
        if service != "kms":
            raise AssertionError(f"unexpected client {service}")
        return self.kms


def evaluate(ci: dict[str, Any], params: dict[str, Any] | None = None, kms: FakeKms | None = None):
    clients = FakeClients(kms)
    evaluations = rule.KMS_CMK_ROTATION_ENABLED().evaluate_change({}, clients, ci, params or {})
    return evaluations, clients.kms.calls


class ScreenAndDecideTest(unittest.TestCase):
    """The pure decision, table-driven (scenarios 1-11)."""

    def test_table(self) -> None:
        on = RotationStatus(enabled=True, period_days=365)
        off = RotationStatus(enabled=False)
        no_limit, limit_365, limit_180 = rule.Params(), rule.Params(365), rule.Params(180)
        cases: list[tuple[str, KmsKey, RotationStatus, rule.Params, str, str]] = [
            # 1. AWS-managed (rdk sample's Lambda key; AWS says rotation status is always true, yearly)
            ("aws-managed", key(key_manager="AWS"), off, no_limit, NA, "AWS-managed"),
            # 2. states
            ("pending deletion", key(key_state="PendingDeletion"), off, no_limit, NA, "PendingDeletion"),
            (
                "pending replica deletion",
                key(key_state="PendingReplicaDeletion"),
                off,
                no_limit,
                NA,
                "Pending",
            ),
            (
                "pending import",
                key(key_state="PendingImport", origin="EXTERNAL"),
                off,
                no_limit,
                NA,
                "PendingImport",
            ),
            # 3. origins
            ("imported material", key(origin="EXTERNAL"), off, no_limit, NA, "EXTERNAL"),
            ("cloudhsm store", key(origin="AWS_CLOUDHSM"), off, no_limit, NA, "CloudHSM"),
            (
                "external key store",
                key(origin="EXTERNAL_KEY_STORE", key_state="Unavailable"),
                off,
                no_limit,
                NA,
                "external key store",
            ),
            # 4. specs
            ("rsa", key(key_spec="RSA_2048"), off, no_limit, NA, "RSA_2048"),
            ("ecc", key(key_spec="ECC_NIST_P256"), off, no_limit, NA, "ECC_NIST_P256"),
            ("hmac", key(key_spec="HMAC_256"), off, no_limit, NA, "HMAC_256"),
            ("ml-dsa", key(key_spec="ML_DSA_65"), off, no_limit, NA, "ML_DSA_65"),
            # 5. replica, with and without the primary's ARN
            (
                "replica",
                key(multi_region=True, multi_region_key_type="REPLICA", primary_key_arn=PRIMARY_ARN),
                off,
                no_limit,
                NA,
                PRIMARY_ARN,
            ),
            (
                "replica no arn",
                key(multi_region=True, multi_region_key_type="REPLICA"),
                off,
                no_limit,
                NA,
                "primary key",
            ),
            # 6. unknown values: never COMPLIANT, even with rotation on
            ("unknown state", key(key_state="Archived"), on, no_limit, NC, "KeyState 'Archived'"),
            ("unknown spec", key(key_spec="SYMMETRIC_512"), on, no_limit, NC, "KeySpec 'SYMMETRIC_512'"),
            ("unknown origin", key(origin="AWS_QUANTUM"), on, no_limit, NC, "Origin 'AWS_QUANTUM'"),
            ("unknown manager", key(key_manager="PARTNER"), on, no_limit, NC, "KeyManager 'PARTNER'"),
            (
                "unknown mrk type",
                key(multi_region=True, multi_region_key_type="SHADOW"),
                on,
                no_limit,
                NC,
                "MultiRegionKeyType",
            ),
            # known definitive reasons win over another unknown field
            (
                "known NA spec + unknown origin",
                key(key_spec="RSA_4096", origin="AWS_QUANTUM"),
                on,
                no_limit,
                NA,
                "RSA_4096",
            ),
            # 7. rotation off (Enabled and Disabled keys)
            ("rotation off", key(), off, no_limit, NC, "EnableKeyRotation"),
            ("rotation off with limit", key(), off, limit_180, NC, "180 or less"),
            ("disabled key rotation off", key(key_state="Disabled"), off, no_limit, NC, "Re-enable the key"),
            ("disabled key rotation on", key(key_state="Disabled"), on, no_limit, C, "every 365 days"),
            # multi-Region primary keys are evaluated like single-Region keys
            (
                "mrk primary on",
                key(multi_region=True, multi_region_key_type="PRIMARY"),
                on,
                no_limit,
                C,
                "on",
            ),
            (
                "mrk primary off",
                key(multi_region=True, multi_region_key_type="PRIMARY"),
                off,
                no_limit,
                NC,
                "off",
            ),
            # transient multi-Region states keep the key in scope
            ("updating", key(key_state="Updating"), on, no_limit, C, "on"),
            # 8. rotation on, no limit; period unknown (configuration item) is fine without a limit
            ("rotation on", key(), on, no_limit, C, "every 365 days"),
            ("rotation on period unknown", key(), RotationStatus(enabled=True), no_limit, C, "is on."),
            # 9. limits (AWS default 365; 90 and 2560 bounds of RotationPeriodInDays)
            ("period == limit", key(), on, limit_365, C, "at most 365"),
            ("period > limit", key(), on, limit_180, NC, "longer than MaxRotationPeriodInDays 180"),
            ("period 90 < limit", key(), RotationStatus(True, 90), limit_180, C, "every 90 days"),
            ("period 2560 > limit", key(), RotationStatus(True, 2560), rule.Params(2559), NC, "2560 days"),
            # 11. UnsupportedOperationException for an in-scope key
            (
                "unsupported",
                key(),
                RotationStatus.unsupported(),
                no_limit,
                NC,
                "UnsupportedOperationException",
            ),
        ]
        for name, kms_key, rotation, params, expected, fragment in cases:
            with self.subTest(name):
                verdict = rule.decide(kms_key, rotation, params)
                self.assertEqual(verdict.compliance, expected, verdict.annotation)
                self.assertIn(fragment, verdict.annotation)
                self.assertLessEqual(len(verdict.annotation), 256)
                if expected != C:
                    self.assertNotEqual(verdict.annotation, "")

    def test_screen_only_returns_none_for_keys_in_scope(self) -> None:
        self.assertIsNone(rule.screen(key()))
        self.assertIsNone(rule.screen(key(key_state="Disabled")))
        self.assertIsNotNone(rule.screen(key(key_manager="AWS")))

    def test_unknown_period_with_limit_fails_closed(self) -> None:
        # Scenario 10. moto's GetKeyRotationStatus returns only KeyRotationEnabled (AWS also returns
        # RotationPeriodInDays); with a limit set that is an unknown, never COMPLIANT.
        with self.assertRaises(IncompleteRotationStatus) as ctx:
            rule.decide(key(), RotationStatus(enabled=True), rule.Params(365))
        self.assertIn("RotationPeriodInDays", str(ctx.exception))
        # rotation off needs no period: NON_COMPLIANT either way
        self.assertEqual(rule.decide(key(), RotationStatus(False), rule.Params(365)).compliance, NC)

    def test_rotation_status_from_responses(self) -> None:
        status = RotationStatus.from_response(AWS_DOC_ROTATION)
        self.assertEqual((status.enabled, status.period_days), (True, 365))
        # the disabled shape: only KeyId and KeyRotationEnabled
        self.assertEqual(RotationStatus.from_response({"KeyRotationEnabled": False}).enabled, False)
        for bad in (
            {},
            {"KeyRotationEnabled": "maybe"},
            {"KeyRotationEnabled": True, "RotationPeriodInDays": "x"},
            {"KeyRotationEnabled": True, "RotationPeriodInDays": True},
        ):
            with self.subTest(bad=bad), self.assertRaises(MalformedConfigurationItem):
                RotationStatus.from_response(bad)


class ChangeTriggerTest(unittest.TestCase):
    """evaluate_change on configuration items (scenarios 1-14 through the change path)."""

    def assert_one(self, evaluations: list[Any], compliance: str, resource_id: str) -> Any:
        self.assertEqual(len(evaluations), 1)
        evaluation = evaluations[0]
        self.assertEqual(evaluation.complianceType, compliance, evaluation.annotation)
        self.assertEqual(evaluation.complianceResourceId, resource_id)
        self.assertEqual(evaluation.complianceResourceType, "AWS::KMS::Key")
        self.assertLessEqual(len(evaluation.annotation), 256)
        return evaluation

    def test_rdk_sample_aws_managed_key_is_not_applicable_without_api_calls(self) -> None:
        evaluations, calls = evaluate(load("kms_aws_managed_key.json"), {"MaxRotationPeriodInDays": "180"})
        evaluation = self.assert_one(evaluations, NA, "test")
        self.assertIn("AWS-managed", evaluation.annotation)
        self.assertEqual(calls, [])

    def test_customer_key_rotation_on_from_the_item_needs_no_api_call(self) -> None:
        evaluations, calls = evaluate(load("kms_customer_key.json"))
        self.assert_one(evaluations, C, "1234abcd-12ab-34cd-56ef-1234567890ab")
        self.assertEqual(calls, [])

    def test_key_rotation_status_shapes(self) -> None:
        # JSON boolean (notification), string (GetResourceConfigHistory: supplementary map<string,string>)
        for value, expected in ((True, C), (False, NC), ("true", C), ("false", NC), ("TRUE", C)):
            with self.subTest(value=value):
                ci = load("kms_customer_key.json")
                ci["supplementaryConfiguration"]["KeyRotationStatus"] = value
                evaluations, calls = evaluate(ci)
                self.assert_one(evaluations, expected, ci["resourceId"])
                self.assertEqual(calls, [])

    def test_missing_rotation_status_reads_the_api_once(self) -> None:
        ci = load("kms_customer_key.json")
        del ci["supplementaryConfiguration"]["KeyRotationStatus"]
        for response, expected in (({"KeyRotationEnabled": False, "KeyId": "k"}, NC), (AWS_DOC_ROTATION, C)):
            with self.subTest(response=response):
                evaluations, calls = evaluate(ci, kms=FakeKms(response))
                self.assert_one(evaluations, expected, ci["resourceId"])
                self.assertEqual(calls, [("GetKeyRotationStatus", {"KeyId": ci["resourceId"]})])

    def test_limit_reads_the_period_from_the_api_once(self) -> None:
        ci = load("kms_customer_key.json")  # the item says rotation on, but not how often
        cases = (("365", 365, C), ("180", 365, NC), ("2560", 2560, C), ("90", 91, NC))
        for limit, period, expected in cases:
            with self.subTest(limit=limit, period=period):
                response = dict(AWS_DOC_ROTATION, RotationPeriodInDays=period)
                evaluations, calls = evaluate(ci, {"MaxRotationPeriodInDays": limit}, FakeKms(response))
                self.assert_one(evaluations, expected, ci["resourceId"])
                self.assertEqual(len(calls), 1)

    def test_limit_with_period_missing_from_the_response_raises(self) -> None:
        ci = load("kms_customer_key.json")
        with self.assertRaises(IncompleteRotationStatus):
            evaluate(ci, {"MaxRotationPeriodInDays": "365"}, FakeKms({"KeyRotationEnabled": True}))

    def test_api_errors_propagate(self) -> None:
        ci = load("kms_customer_key.json")
        for code in (
            "AccessDeniedException",
            "ThrottlingException",
            "KMSInternalException",
            "NotFoundException",
        ):
            with self.subTest(code=code), self.assertRaises(ClientError):
                evaluate(ci, {"MaxRotationPeriodInDays": "365"}, FakeKms(error=code))

    def test_unsupported_operation_is_non_compliant(self) -> None:
        ci = load("kms_customer_key.json")
        evaluations, _ = evaluate(
            ci, {"MaxRotationPeriodInDays": "365"}, FakeKms(error="UnsupportedOperationException")
        )
        self.assert_one(evaluations, NC, ci["resourceId"])

    def test_not_applicable_variants_make_no_api_call(self) -> None:
        variants = {
            "pending deletion": customer_ci(
                keyState="PendingDeletion", enabled=False, deletionDate=1796000000000
            ),
            "imported": customer_ci(origin="EXTERNAL", keyState="PendingImport", enabled=False),
            "cloudhsm": customer_ci(origin="AWS_CLOUDHSM", customKeyStoreId="cks-1234567890abcdef0"),
            "asymmetric": customer_ci(
                keySpec="RSA_2048", customerMasterKeySpec="RSA_2048", keyUsage="SIGN_VERIFY"
            ),
            "hmac": customer_ci(
                keySpec="HMAC_256", customerMasterKeySpec="HMAC_256", keyUsage="GENERATE_VERIFY_MAC"
            ),
        }
        for name, ci in variants.items():
            with self.subTest(name):
                evaluations, calls = evaluate(ci, {"MaxRotationPeriodInDays": "365"})
                self.assert_one(evaluations, NA, ci["resourceId"])
                self.assertEqual(calls, [])

    def test_replica_fixture_names_the_primary(self) -> None:
        ci = load("kms_multi_region_replica_key.json")
        evaluations, calls = evaluate(ci, {"MaxRotationPeriodInDays": "365"})
        evaluation = self.assert_one(evaluations, NA, "mrk-1234abcd12ab34cd56ef1234567890ab")
        self.assertIn(PRIMARY_ARN, evaluation.annotation)
        self.assertEqual(calls, [])

    def test_disabled_key_is_evaluated(self) -> None:
        ci = customer_ci(keyState="Disabled", enabled=False)
        ci["supplementaryConfiguration"]["KeyRotationStatus"] = False
        evaluation = self.assert_one(evaluate(ci)[0], NC, ci["resourceId"])
        self.assertIn("disabled", evaluation.annotation)

    def test_unknown_key_state_is_not_compliant(self) -> None:
        ci = customer_ci(keyState="Archived")
        self.assert_one(evaluate(ci)[0], NC, ci["resourceId"])

    def test_real_shape_tolerance(self) -> None:
        # configuration delivered as a JSON string
        ci = load("kms_customer_key.json")
        ci["configuration"] = json.dumps(ci["configuration"])
        self.assert_one(evaluate(ci)[0], C, ci["resourceId"])
        # an item recorded before KeySpec (2022) and MultiRegion (2021) existed
        old = customer_ci(keySpec=None, multiRegion=None)
        self.assert_one(evaluate(old)[0], C, old["resourceId"])
        old_rsa = customer_ci(keySpec=None, multiRegion=None, customerMasterKeySpec="RSA_3072")
        self.assert_one(evaluate(old_rsa)[0], NA, old_rsa["resourceId"])
        # supplementaryConfiguration itself as a JSON string
        sup = load("kms_customer_key.json")
        sup["supplementaryConfiguration"] = json.dumps({"KeyRotationStatus": "false"})
        self.assert_one(evaluate(sup)[0], NC, sup["resourceId"])

    def test_malformed_items_fail_closed(self) -> None:
        multi_without_config = customer_ci(multiRegion=True)
        bad_rotation = load("kms_customer_key.json")
        bad_rotation["supplementaryConfiguration"]["KeyRotationStatus"] = "enabled"
        cases = {
            "no keyState": customer_ci(keyState=None),
            "no keyManager": customer_ci(keyManager=None),
            "no origin": customer_ci(origin=None),
            "no key spec at all": customer_ci(keySpec=None, customerMasterKeySpec=None),
            "keyState not a string": customer_ci(keyState=3),
            "multiRegion without configuration": multi_without_config,
            "multiRegion not a bool": customer_ci(multiRegion="maybe"),
            "KeyRotationStatus not a bool": bad_rotation,
            "configuration not an object": dict(load("kms_customer_key.json"), configuration="[1, 2]"),
        }
        for name, ci in cases.items():
            with self.subTest(name), self.assertRaises(MalformedConfigurationItem):
                evaluate(ci)

    def test_deleted_key_is_not_applicable(self) -> None:
        ci = load("kms_customer_key.json")
        ci.update(
            configurationItemStatus="ResourceDeleted", configuration=None, supplementaryConfiguration={}
        )
        self.assert_one(evaluate(ci)[0], NA, ci["resourceId"])

    def test_exemption_tag(self) -> None:
        ci = load("kms_customer_key.json")
        ci["supplementaryConfiguration"]["KeyRotationStatus"] = False
        ci["tags"]["guardrails-exempt"] = "RISK-1234 vendor key, rotated by hand"
        evaluations, calls = evaluate(ci, {"ExemptionTagKey": "guardrails-exempt"})
        evaluation = self.assert_one(evaluations, NA, ci["resourceId"])
        self.assertIn("RISK-1234", evaluation.annotation)
        self.assertEqual(calls, [])


class ParametersTest(unittest.TestCase):
    def test_valid(self) -> None:
        cases = (
            {},
            {"MaxRotationPeriodInDays": ""},
            {"MaxRotationPeriodInDays": "90"},
            {"MaxRotationPeriodInDays": 2560},
            {"MaxRotationPeriodInDays": " 365 "},
        )
        expected = (None, None, 90, 2560, 365)
        for raw, want in zip(cases, expected, strict=True):
            with self.subTest(raw=raw):
                params = rule.KMS_CMK_ROTATION_ENABLED().evaluate_parameters(raw)
                self.assertEqual(params.rule.max_rotation_period_days, want)

    def test_invalid_names_the_parameter(self) -> None:
        cases = (
            ({"MaxRotationPeriodInDays": "89"}, "MaxRotationPeriodInDays"),
            ({"MaxRotationPeriodInDays": "2561"}, "MaxRotationPeriodInDays"),
            ({"MaxRotationPeriodInDays": "365d"}, "MaxRotationPeriodInDays"),
            ({"MaxRotationPeriodInDays": "1.5"}, "MaxRotationPeriodInDays"),
            ({"MaxRotationPeriodInDays": True}, "MaxRotationPeriodInDays"),
            ({"MaxRotationPeriod": "365"}, "MaxRotationPeriod"),
            ({"ExemptionTagKey": "aws:exempt"}, "ExemptionTagKey"),
        )
        for raw, name in cases:
            with self.subTest(raw=raw), self.assertRaises(InvalidParametersError) as ctx:
                rule.KMS_CMK_ROTATION_ENABLED().evaluate_parameters(raw)
            self.assertIn(name, str(ctx.exception))

    def test_parameters_json_matches_the_rule(self) -> None:
        doc = json.loads((Path(__file__).parent / "parameters.json").read_text(encoding="utf-8"))[
            "Parameters"
        ]
        inputs, optional = json.loads(doc["InputParameters"]), json.loads(doc["OptionalParameters"])
        specs = {p.name: p for p in rule.KMS_CMK_ROTATION_ENABLED.parameter_specs()}
        self.assertEqual(set(inputs) | set(optional), set(specs))
        self.assertIn("ExemptionTagKey", optional)
        for name, default in inputs.items():
            self.assertEqual(specs[name].default, default)
        for name in optional:
            self.assertIsNone(specs[name].default)
        self.assertEqual(doc["RuleName"], rule.KMS_CMK_ROTATION_ENABLED.RULE_NAME)
        self.assertEqual(doc["SourceEvents"], "AWS::KMS::Key")

    def test_range_matches_botocore(self) -> None:
        import botocore.session

        model = botocore.session.get_session().get_service_model("kms")
        member = model.operation_model("EnableKeyRotation").input_shape.members["RotationPeriodInDays"]
        self.assertEqual((member.metadata["min"], member.metadata["max"]), (rule.MIN_PERIOD, rule.MAX_PERIOD))


if __name__ == "__main__":
    unittest.main()
