"""Minimal examples of defects found by review of the fuzzing results, kept so they stay fixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdklib import InvalidParametersError

from ml_guardrails.catalog import get
from ml_guardrails.ci import MalformedConfigurationItem
from ml_guardrails.params import IntParameter

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ci"


@pytest.mark.parametrize("subnet", ["  ", "not-a-subnet", "subnet-XYZ"])
def test_a_notebook_subnet_that_is_not_a_subnet_id_is_never_compliant(subnet: str) -> None:
    # With CheckNetworkPath false the subnet is not looked up: a blank or bogus SubnetId used to pass as
    # "in a subnet" and the notebook was COMPLIANT.
    rule = get("SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET").rule_class()()
    ci = json.loads((FIXTURES / "sagemaker_notebook_isolated.json").read_text())
    ci["configuration"]["SubnetId"] = subnet
    params = rule.evaluate_parameters({"CheckNetworkPath": "false"})
    try:
        (evaluation,) = rule.evaluate_change({}, None, ci, params)
    except MalformedConfigurationItem:
        return
    assert evaluation.complianceType != "COMPLIANT"


@pytest.mark.parametrize("value", ["\u0663\u0666\u0665", "\uff13\uff16\uff15", "1e2", "365.0"])
def test_integer_parameters_take_ascii_digits_only(value: str) -> None:
    with pytest.raises(InvalidParametersError, match="Days"):
        IntParameter("Days", "days", minimum=90, maximum=2560).parse(value)
