"""Property-based fuzzing of every rule's parameters (``cls.parameter_specs()`` plus the engine's
cross-account parameters), from the catalog.

* invalid values per declared type (wrong JSON type, out of range, not matching the pattern, not among
  the choices, CSV lists with malformed ARNs/ids, empty items, unicode, huge strings) are refused by
  ``evaluate_parameters`` with ``InvalidParametersError`` naming the parameter;
* valid values generated from the spec (Config's strings, padded with spaces, and the CLI's JSON booleans,
  numbers and lists) are accepted;
* through ``handle``, an invalid parameter raises ``InvalidParametersError`` and nothing is posted;
* unknown parameter names (typos, other cases of real names, any text) are refused, naming one of them.

Profiles: see ``tests/strategies.py`` (``HYPOTHESIS_PROFILE`` = ci | dev | deep).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from moto import mock_aws
from rdklib import InvalidParametersError

from ml_guardrails.catalog import discover
from ml_guardrails.engine import GuardrailRule, handle
from ml_guardrails.params import ENGINE_PARAMETERS, BoolParameter, Parameter, StringParameter
from ml_guardrails.testing import PutEvaluationsRecorder, scheduled_event
from tests.strategies import (
    fuzz_stats,  # noqa: F401 - autouse fixture: example counts per test
    invalid_value,
    scaled,
    tally,
    unknown_parameter_names,
    valid_value,
)

RULES = {spec.name: spec.rule_class() for spec in discover()}
# A valid value of each required parameter (parameters.json's InputParameters), so a test of another
# parameter is not refused for a missing required one.
REQUIRED = {
    spec.name: {
        p.name: spec.input_parameters[p.name] for p in spec.rule_class().parameter_specs() if p.required
    }
    for spec in discover()
}
# The engine's parameters as specs, with the patterns params.py documents (IAM role names with an optional
# path, region names), so the same strategies fuzz them.
ENGINE_SPECS: tuple[Parameter, ...] = (
    BoolParameter("AssumeRoleMode", "", default="true"),
    StringParameter("ExecutionRoleName", "", pattern=r"/?(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"),
    StringParameter("ExecutionRoleRegion", "", pattern=r"[a-z]{2}(?:-[a-z]+)+-\d"),
)
CASES = [
    pytest.param(rule, spec, id=f"{rule}.{spec.name}")
    for rule, cls in sorted(RULES.items())
    for spec in (*cls.parameter_specs(), *ENGINE_SPECS)
]
# Invalid values only for the checks that must hold; AssumeRoleMode blank means the default (true).
LOCAL = {"AssumeRoleMode": "false"}


def rule_of(name: str) -> GuardrailRule[Any]:
    return RULES[name]()


def test_engine_parameters_are_the_documented_ones() -> None:
    assert {s.name for s in ENGINE_SPECS} == set(ENGINE_PARAMETERS)


@pytest.mark.parametrize(("rule", "spec"), CASES)
def test_invalid_value_is_refused_naming_the_parameter(rule: str, spec: Parameter) -> None:
    instance = rule_of(rule)

    @scaled(0.1, floor=10)
    @given(value=invalid_value(spec))
    def examples(value: Any) -> None:
        tally()
        event(f"{type(value).__name__}")
        with pytest.raises(InvalidParametersError) as raised:
            instance.evaluate_parameters({**REQUIRED[rule], spec.name: value})
        assert spec.name in str(raised.value), str(raised.value)

    examples()


@pytest.mark.parametrize(("rule", "spec"), CASES)
def test_valid_value_is_accepted(rule: str, spec: Parameter) -> None:
    instance = rule_of(rule)

    @scaled(0.1, floor=10)
    @given(value=valid_value(spec))
    def examples(value: Any) -> None:
        tally()
        note(repr(value))
        instance.evaluate_parameters({**REQUIRED[rule], spec.name: value})

    examples()


@pytest.mark.parametrize("rule", sorted(RULES))
def test_valid_parameter_sets_are_accepted_or_refused_naming_one(rule: str) -> None:
    """Every parameter at once: accepted, unless a cross-check refuses the combination by name
    (e.g. AllowedEgressTargets while CheckNetworkPath is false)."""
    instance = rule_of(rule)
    specs = instance.parameter_specs()

    required = {s.name: valid_value(s) for s in specs if s.name in REQUIRED[rule]}
    optional = {s.name: valid_value(s) for s in specs if s.name not in REQUIRED[rule]}

    @scaled(0.25, floor=10)
    @given(values=st.fixed_dictionaries(required, optional=optional))
    def examples(values: dict[str, Any]) -> None:
        tally()
        try:
            instance.evaluate_parameters(values)
        except InvalidParametersError as exc:
            event("cross-check refused")
            assert any(name in str(exc) for name in values), str(exc)

    examples()


@pytest.mark.parametrize("rule", sorted(RULES))
def test_unknown_names_are_refused_naming_one(rule: str) -> None:
    instance = rule_of(rule)
    known = {s.name for s in instance.parameter_specs()} | set(ENGINE_PARAMETERS)

    @scaled(0.1, floor=10)
    @given(names=st.lists(unknown_parameter_names(known), min_size=1, max_size=3, unique=True))
    def examples(names: list[str]) -> None:
        tally()
        with pytest.raises(InvalidParametersError) as raised:
            instance.evaluate_parameters({**REQUIRED[rule], **dict.fromkeys(names, "true")})
        message = str(raised.value)
        assert any(repr(name)[1:-1] in message or name in message for name in names), message

    examples()


@pytest.mark.parametrize(("rule", "spec"), CASES)
def test_handler_refuses_invalid_parameter_and_posts_nothing(rule: str, spec: Parameter) -> None:
    instance = rule_of(rule)
    with mock_aws():
        rec = PutEvaluationsRecorder()

        @scaled(0.1, floor=10)
        @given(value=invalid_value(spec))
        def examples(value: Any) -> None:
            tally()
            params = {**LOCAL, **REQUIRED[rule], spec.name: value}
            with pytest.raises(InvalidParametersError) as raised:
                handle(instance, scheduled_event(params), session=rec.session)
            assert spec.name in str(raised.value), str(raised.value)
            assert rec.calls == [], "PutEvaluations was called despite invalid parameters"

        examples()
