"""The runbook validator: a valid document passes, each broken fixture fails with the problem it was
broken for, and every runbook in remediations/ passes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ml_guardrails.runbooks import validate_runbook
from ml_guardrails.runbooks.cli import register

FIXTURES = Path(__file__).parent / "fixtures" / "runbooks"
REMEDIATIONS = Path(__file__).resolve().parents[1] / "remediations"
VALID = FIXTURES / "valid_encrypt_bucket.yaml"


def _expected(path: Path) -> str:
    """Each broken fixture states, on its second line, the problem the validator must report."""
    line = path.read_text(encoding="utf-8").splitlines()[1]
    assert line.startswith("# Expected problem: "), f"{path.name}: second line must name the expected problem"
    return line.removeprefix("# Expected problem: ")


BROKEN = sorted(FIXTURES.glob("broken_*.yaml"))

# One broken fixture per check: the table the validator's module docstring promises.
CHECKS = {
    "schema_version",
    "schema_version_unquoted",
    "no_description",
    "no_assume_role",
    "top_level_key",
    "parameter_type",
    "parameter_description",
    "parameter_unconstrained",
    "parameter_pattern_unanchored",
    "parameter_pattern_invalid",
    "parameter_default",
    "parameter_default_type",
    "duplicate_step",
    "step_key",
    "step_flags",
    "unknown_action",
    "unsupported_action",
    "missing_input",
    "assert_inputs",
    "runtime",
    "script_syntax",
    "script_handler",
    "script_output_selector",
    "on_failure",
    "on_failure_target",
    "next_step_target",
    "branch_target",
    "branch_operator",
    "output_type",
    "selector_syntax",
    "selector_path",
    "service",
    "api",
    "api_case",
    "api_parameter",
    "api_required",
    "sleep",
    "reference",
    "step_output_reference",
    "document_outputs",
    "yaml",
}


def test_valid_fixture_has_no_problems() -> None:
    assert validate_runbook(VALID) == []


def test_every_check_has_a_broken_fixture() -> None:
    assert {p.stem.removeprefix("broken_") for p in BROKEN} == CHECKS


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_fixture_reports_its_problem(path: Path) -> None:
    problems = validate_runbook(path)
    expected = _expected(path)
    assert any(expected in problem for problem in problems), problems
    # The fixture differs from the valid one in one place, so the validator says one or two things.
    assert 1 <= len(problems) <= 2, problems


@pytest.mark.parametrize("name", ["AWS-EnableBucketEncryption", "amazon_fix", "AwsFix"])
def test_reserved_document_names(name: str) -> None:
    problems = validate_runbook(VALID, name=name)
    assert problems == [f"document name {name!r}: names starting with AWS or Amazon are reserved by AWS"]


def test_document_name_syntax() -> None:
    assert validate_runbook(VALID, name="my runbook!") == [
        "document name 'my runbook!': must be 3-128 characters of a-z, A-Z, 0-9, _, -, ."
    ]


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "AWS-Copy.yaml"
    path.write_text(VALID.read_text())
    assert any("reserved by AWS" in p for p in validate_runbook(path))
    assert validate_runbook(VALID.read_text()) == []  # YAML text: no name to check


def test_dict_documents_and_nested_branch_operators() -> None:
    doc = {
        "schemaVersion": "0.3",
        "description": "d",
        "assumeRole": "{{ AutomationAssumeRole }}",
        "parameters": {
            "AutomationAssumeRole": {
                "type": "String",
                "description": "r",
                "default": "",
                "allowedPattern": "^$",
            },
            "Flag": {"type": "Boolean", "description": "a flag", "default": False},
        },
        "mainSteps": [
            {
                "name": "Choose",
                "action": "aws:branch",
                "inputs": {
                    "Choices": [
                        {
                            "NextStep": "Done",
                            "And": [
                                {"Variable": "{{ Flag }}", "BooleanEquals": True},
                                {"Not": {"Variable": "{{ global:REGION }}", "StartsWith": "cn-"}},
                                {"Variable": "{{ Flag }}", "NumericBigger": 1},
                            ],
                        }
                    ]
                },
            },
            {"name": "Done", "action": "aws:sleep", "inputs": {"Timestamp": "2026-13-01T00:00:00Z"}},
        ],
    }
    problems = validate_runbook(doc)
    assert any("unknown operator(s) NumericBigger" in p for p in problems), problems
    assert any("'2026-13-01T00:00:00Z' is not an ISO-8601 timestamp" in p for p in problems), problems
    assert len(problems) == 2


def test_output_selector_checked_against_the_response_shape() -> None:
    doc = VALID.read_text().replace(
        "Selector: $.ResponseMetadata.HTTPStatusCode", "Selector: $.ServerSideEncryptionConfiguration"
    )
    assert validate_runbook(doc) == [
        "step 'PutEncryption': output 'HttpStatus' '$.ServerSideEncryptionConfiguration' "
        "is not a path of the "
        "s3.PutBucketEncryption response"
    ]


REMEDIATION_FILES = sorted(REMEDIATIONS.glob("*.yaml"))


@pytest.mark.skipif(not REMEDIATION_FILES, reason="no runbooks in remediations/ yet")
@pytest.mark.parametrize("path", REMEDIATION_FILES, ids=lambda p: p.stem)
def test_remediation_runbooks_are_valid(path: Path) -> None:
    assert validate_runbook(path) == []


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ml-guardrails")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_validate_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    args = _cli(["runbook", "validate", str(VALID)])
    assert args.func(args) == 0
    assert capsys.readouterr().out == f"{VALID}: OK\n"

    broken = FIXTURES / "broken_runtime.yaml"
    args = _cli(["runbook", "validate", str(VALID), str(broken)])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert f"{VALID}: OK" in out
    assert f"{broken}: step 'ReadEncryption': Runtime 'python3.7' must be 'python3.11'" in out
