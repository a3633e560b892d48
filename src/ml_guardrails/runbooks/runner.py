"""A local runner for SSM Automation runbooks (schemaVersion 0.3), against any boto3 Session (moto or AWS).

moto does not implement StartAutomationExecution, so runbooks are tested by running their steps here,
in-process, with the semantics the AWS Systems Manager user guide documents:

* parameters get their defaults and are type-checked (String, StringList, Boolean, Integer, MapList,
  StringMap) and checked against ``allowedPattern`` / ``allowedValues`` / ``min*`` / ``max*`` before any
  step runs; a bad parameter raises :class:`RunbookError` and no AWS call is made (as
  StartAutomationExecution rejects it synchronously);
* ``{{ Param }}``, ``{{ Step.Output }}``, ``{{ global:ACCOUNT_ID }}``, ``{{ global:REGION }}``,
  ``{{ global:AWS_PARTITION }}``, ``{{ global:DATE }}``, ``{{ global:DATE_TIME }}`` and
  ``{{ automation:EXECUTION_ID }}``; a string that is only a reference keeps the value's type, an
  embedded reference is stringified (JSON for lists, maps and booleans);
* actions: ``aws:executeAwsApi``, ``aws:executeScript`` (Python, inline ``Script``, run in-process),
  ``aws:assertAwsResourceProperty``, ``aws:waitForAwsResourceProperty``, ``aws:branch``, ``aws:sleep``;
  any other action is rejected before the run starts, naming it;
* control flow: sequential order, ``nextStep``, ``isEnd``, ``onFailure`` (Abort | Continue | step:Name),
  ``maxAttempts``, ``timeoutSeconds``, ``isCritical``; a guard stops a document that loops forever.

Deliberate local differences (each documented where it is implemented):

* ``assumeRole`` is not assumed: the given session *is* the identity every step uses;
* ``aws:executeScript`` runs in this process with ``boto3.DEFAULT_SESSION`` set to the given session
  (under a lock), so ``boto3.client("s3")`` in a script reaches the same endpoint as the other steps;
  the script's ``timeoutSeconds`` is checked after it returns, it cannot be pre-empted;
* waits and sleeps go through an injectable clock, so tests never really sleep; waitFor polls every
  5 s (SSM does not document its interval);
* parameters may be given typed (``5``, ``True``, ``["a"]``) or as SSM takes them (strings, and
  one-element lists of strings, as StartAutomationExecution's map<string, list<string>>);
* ``allowedPattern`` is applied as written (``re.search``): the anchors in the pattern decide, and the
  validator requires ``^...$``, so the choice never matters for this project's runbooks;
* an output whose selector matches nothing is not set (a later ``{{ Step.Output }}`` fails naming it),
  and ``Execution.outputs`` omits it, where SSM shows a placeholder text;
* ``onCancel`` is ignored and ``Cancelled`` never happens: nothing cancels a local run.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import boto3
import yaml  # type: ignore[import-untyped,unused-ignore]
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from ml_guardrails.aws import CLIENT_CONFIG
from ml_guardrails.runbooks.jsonpath import JsonPathError, compile_path, select

__all__ = [
    "ACTIONS",
    "PARAMETER_TYPES",
    "PYTHON_RUNTIMES",
    "SUPPORTED_ACTIONS",
    "Clock",
    "Execution",
    "FakeClock",
    "RunbookError",
    "StepExecution",
    "SystemClock",
    "load_runbook",
    "resolve_parameters",
    "run_runbook",
]

SUPPORTED_ACTIONS = frozenset(
    {
        "aws:executeAwsApi",
        "aws:executeScript",
        "aws:assertAwsResourceProperty",
        "aws:waitForAwsResourceProperty",
        "aws:branch",
        "aws:sleep",
    }
)
# Every action a schema 0.3 document may use (AWS SSM user guide, "Automation actions reference").
ACTIONS = SUPPORTED_ACTIONS | {
    "aws:approve",
    "aws:changeInstanceState",
    "aws:copyImage",
    "aws:createImage",
    "aws:createStack",
    "aws:createTags",
    "aws:deleteImage",
    "aws:deleteStack",
    "aws:executeAutomation",
    "aws:executeStateMachine",
    "aws:invokeLambdaFunction",
    "aws:invokeWebhook",
    "aws:loop",
    "aws:pause",
    "aws:runCommand",
    "aws:runInstances",
    "aws:updateVariable",
}
PARAMETER_TYPES = ("String", "StringList", "Boolean", "Integer", "MapList", "StringMap")
OUTPUT_TYPES = PARAMETER_TYPES
# Python runtimes aws:executeScript accepts. python3.6-3.8 were retired (blocked for runs since
# 2025-02-18); python3.11 is what AWS recommends and what our runbooks use.
PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12")
GLOBAL_VARIABLES = (
    "global:ACCOUNT_ID",
    "global:REGION",
    "global:AWS_PARTITION",
    "global:DATE",
    "global:DATE_TIME",
    "automation:EXECUTION_ID",
    "automation:DOCUMENT_EXECUTION_ID",
)
DEFAULT_WAIT_TIMEOUT = 3600  # aws:waitForAwsResourceProperty / aws:assertAwsResourceProperty default
WAIT_POLL_SECONDS = 5.0  # local poll interval for aws:waitForAwsResourceProperty
MAX_SLEEP_SECONDS = 7 * 24 * 3600  # aws:sleep is limited to 7 days
MAX_STEP_EXECUTIONS = 1000  # loop guard: a cyclic document fails instead of hanging
ON_FAILURE = re.compile(r"^(Abort|Continue|step:[\w.-]+)$")

# One reference: {{ Name }}, {{ Step.Output }}, {{ global:X }}, {{ automation:X }}; spacing tolerant.
REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_:.\-/]+)\s*\}\}")


class RunbookError(Exception):
    """The document or its parameters are unusable; raised before any step runs (no AWS call made)."""


class Clock(Protocol):
    """What the runner needs of time. Tests pass a :class:`FakeClock` so waits never really sleep."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FakeClock:
    """A clock for tests: ``sleep`` only advances time and records the request."""

    def __init__(self, start: float = 0.0, wall: dt.datetime | None = None) -> None:
        self.time = start
        self.sleeps: list[float] = []
        self._start = start
        self._wall = wall or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def monotonic(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds)

    def now(self) -> dt.datetime:
        return self._wall + dt.timedelta(seconds=self.time - self._start)


@dataclass
class StepExecution:
    """One executed step, in the shape of GetAutomationExecution's StepExecutions entries."""

    name: str
    action: str
    status: str = "Pending"  # Success | Failed | TimedOut | Cancelled
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    failure_message: str | None = None
    failure_type: str | None = None  # the exception type / AWS error code behind failure_message
    attempts: int = 0
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    is_critical: bool = True
    on_failure: str = "Abort"
    next_step: str | None = None  # the step that ran next because of this one (None: the run ended)
    response: Any = None  # the raw API response / script Payload of the last attempt (JSON-safe)
    traceback: str | None = None  # for a failed aws:executeScript

    def to_dict(self) -> dict[str, Any]:
        return {
            "StepName": self.name,
            "Action": self.action,
            "StepStatus": self.status,
            "Inputs": _json_safe(self.inputs),
            "Outputs": _json_safe(self.outputs),
            "FailureMessage": self.failure_message,
            "FailureType": self.failure_type,
            "Attempts": self.attempts,
            "ExecutionStartTime": _iso(self.start_time),
            "ExecutionEndTime": _iso(self.end_time),
            "IsCritical": self.is_critical,
            "OnFailure": self.on_failure,
            "NextStep": self.next_step,
            "Response": _json_safe(self.response),
            "Traceback": self.traceback,
        }


@dataclass
class Execution:
    """The record of one run, in the shape of GetAutomationExecution's AutomationExecution."""

    execution_id: str
    document_name: str | None
    status: str = "InProgress"  # Success | Failed | TimedOut | Cancelled
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    failure_message: str | None = None
    failed_step: str | None = None
    steps: list[StepExecution] = field(default_factory=list)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "Success"

    def step(self, name: str) -> StepExecution:
        """The last execution of step ``name``; KeyError if it never ran."""
        for step in reversed(self.steps):
            if step.name == name:
                return step
        raise KeyError(f"step {name!r} did not run (ran: {[s.name for s in self.steps]})")

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return {
            "AutomationExecutionId": self.execution_id,
            "DocumentName": self.document_name,
            "AutomationExecutionStatus": self.status,
            "Parameters": _json_safe(self.parameters),
            "Outputs": _json_safe(self.outputs),
            "FailureMessage": self.failure_message,
            "FailedStep": self.failed_step,
            "ExecutionStartTime": _iso(self.start_time),
            "ExecutionEndTime": _iso(self.end_time),
            "StepExecutions": [s.to_dict() for s in self.steps],
        }


# --------------------------------------------------------------------------------------------------
# Loading and parameters
# --------------------------------------------------------------------------------------------------


def load_runbook(path_or_text: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The parsed document: from a mapping (copied), a ``Path``, a path string, or YAML/JSON text."""
    if isinstance(path_or_text, Mapping):
        return copy.deepcopy(dict(path_or_text))
    text: str
    if isinstance(path_or_text, Path):
        text = _read(path_or_text)
    elif "\n" not in path_or_text and path_or_text.strip().endswith((".yaml", ".yml", ".json")):
        text = _read(Path(path_or_text))
    else:
        text = path_or_text
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RunbookError(f"runbook is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise RunbookError(f"runbook must be a YAML mapping, got {type(doc).__name__}")
    return doc


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunbookError(f"cannot read runbook {path}: {exc}") from exc


def _document_name(doc_or_path: Any) -> str | None:
    if isinstance(doc_or_path, Path):
        return doc_or_path.stem
    if isinstance(doc_or_path, str) and "\n" not in doc_or_path and doc_or_path.endswith((".yaml", ".yml")):
        return Path(doc_or_path).stem
    return None


def _coerce(name: str, ptype: str, value: Any) -> Any:
    """``value`` as a ``ptype`` parameter, accepting what a user would pass (strings from a CLI)."""

    def bad(expected: str) -> RunbookError:
        return RunbookError(
            f"Parameter {name!r} ({ptype}): expected {expected}, got {type(value).__name__} {value!r}"
        )

    # StartAutomationExecution (and AWS Config's StaticValue.Values) carry every value as a list of
    # strings: a one-element list is the value itself for every type but the list types.
    single = isinstance(value, (list, tuple)) and len(value) == 1
    list_type = ptype in ("StringList", "MapList")
    if single and (not list_type or (ptype == "MapList" and isinstance(value[0], str))):
        value = value[0]

    if ptype == "String":
        if isinstance(value, str):
            return value
        raise bad("a string")
    if ptype == "Integer":
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise bad("an integer")
    if ptype == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise bad("true or false")
    if ptype == "StringList":
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = _json_param(name, ptype, text)
            else:
                value = [item.strip() for item in text.split(",")] if text else []
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise bad("a list of strings")
    if ptype == "StringMap":
        if isinstance(value, str):
            value = _json_param(name, ptype, value)
        if isinstance(value, Mapping):
            return dict(value)
        raise bad("a map")
    if ptype == "MapList":
        if isinstance(value, str):
            value = _json_param(name, ptype, value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) for v in value):
            return [dict(v) for v in value]
        raise bad("a list of maps")
    raise RunbookError(f"Parameter {name!r}: unknown type {ptype!r} (valid: {', '.join(PARAMETER_TYPES)})")


def _json_param(name: str, ptype: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunbookError(f"Parameter {name!r} ({ptype}): not valid JSON: {exc}") from exc


def _check_constraints(name: str, spec: Mapping[str, Any], value: Any) -> None:
    """allowedPattern / allowedValues / minItems / maxItems / minChars / maxChars, as SSM applies them:
    to the value, or to each element of a StringList."""
    ptype = spec.get("type")
    items = value if ptype == "StringList" else [value]
    pattern = spec.get("allowedPattern")
    allowed = spec.get("allowedValues")
    for item in items:
        text = _stringify(item)
        # The pattern is applied as written (re.search): SSM's own patterns carry their anchors
        # (^...$), and the validator requires ours to.
        if pattern is not None and re.search(str(pattern), text) is None:
            raise RunbookError(
                f"Parameter {name!r}: value {text!r} does not match allowedPattern {pattern!r}"
            )
        if allowed is not None and text not in [_stringify(a) for a in allowed]:
            raise RunbookError(f"Parameter {name!r}: value {text!r} is not one of allowedValues {allowed}")
        if isinstance(item, str) and "minChars" in spec and len(item) < int(spec["minChars"]):
            raise RunbookError(
                f"Parameter {name!r}: value {text!r} is shorter than minChars={spec['minChars']}"
            )
        if isinstance(item, str) and "maxChars" in spec and len(item) > int(spec["maxChars"]):
            raise RunbookError(
                f"Parameter {name!r}: value {text!r} is longer than maxChars={spec['maxChars']}"
            )
    if isinstance(value, list):
        if "minItems" in spec and len(value) < int(spec["minItems"]):
            raise RunbookError(f"Parameter {name!r}: {len(value)} items, minItems is {spec['minItems']}")
        if "maxItems" in spec and len(value) > int(spec["maxItems"]):
            raise RunbookError(f"Parameter {name!r}: {len(value)} items, maxItems is {spec['maxItems']}")


def resolve_parameters(doc: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's parameter values: ``given`` coerced to the declared types, defaults filled in, every
    value checked. Raises :class:`RunbookError` naming the parameter; makes no AWS call."""
    declared = doc.get("parameters") or {}
    if not isinstance(declared, Mapping):
        raise RunbookError("'parameters' must be a mapping of parameter name to definition")
    given = dict(given or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise RunbookError(
            f"Unknown parameter(s) {', '.join(unknown)}; "
            f"the document declares: {', '.join(declared) or 'none'}"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if not isinstance(spec, Mapping):
            raise RunbookError(f"Parameter {name!r}: definition must be a mapping with a 'type'")
        ptype = spec.get("type")
        if ptype not in PARAMETER_TYPES:
            raise RunbookError(
                f"Parameter {name!r}: unknown type {ptype!r} (valid: {', '.join(PARAMETER_TYPES)})"
            )
        if name in given:
            raw = given[name]
        elif "default" in spec:
            raw = copy.deepcopy(spec["default"])
        else:
            raise RunbookError(f"Missing required parameter {name!r} ({ptype}): it has no default")
        value = _coerce(name, str(ptype), raw)
        _check_constraints(name, spec, value)
        values[name] = value
    return values


# --------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------


class _StepFailure(Exception):
    """A step failed: ``message`` becomes the step's (and maybe the execution's) failure message."""

    def __init__(self, message: str, failure_type: str | None = None, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.failure_type = failure_type
        self.timed_out = timed_out
        self.traceback: str | None = None


def _stringify(value: Any) -> str:
    """How an embedded reference or a DesiredValues comparison renders a value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    return json.dumps(_json_safe(value), sort_keys=False)


class _Variables:
    """Everything ``{{ }}`` can name during one run. Account id is fetched (STS) only when first needed."""

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner

    def lookup(self, name: str) -> Any:
        runner = self._runner
        if name in runner.parameters:
            return runner.parameters[name]
        if name in runner.step_outputs:
            return runner.step_outputs[name]
        if name == "global:ACCOUNT_ID":
            return runner.account_id()
        if name == "global:REGION":
            return runner.region
        if name == "global:AWS_PARTITION":
            return runner.partition
        if name == "global:DATE":
            return runner.now().strftime("%Y-%m-%d")
        if name == "global:DATE_TIME":
            return runner.now().strftime("%m-%d-%Y_%H.%M.%S")
        if name in ("automation:EXECUTION_ID", "automation:DOCUMENT_EXECUTION_ID"):
            return runner.execution.execution_id
        if "." in name and name.split(".", 1)[0] in runner.step_names:
            step = name.split(".", 1)[0]
            raise _StepFailure(
                f"Unresolved reference {{{{ {name} }}}}: step {step!r} has no output "
                f"{name.split('.', 1)[1]!r} (it did not run, failed, or its selector matched nothing)",
                "UnresolvedReference",
            )
        raise _StepFailure(
            f"Unresolved reference {{{{ {name} }}}}: not a parameter, a step output or a "
            "global/automation variable",
            "UnresolvedReference",
        )

    def substitute(self, value: Any) -> Any:
        """``value`` with every reference replaced; recurses into lists and maps."""
        if isinstance(value, str):
            whole = REFERENCE.fullmatch(value.strip())
            if whole:
                return copy.deepcopy(self.lookup(whole.group(1)))
            return REFERENCE.sub(lambda m: _stringify(self.lookup(m.group(1))), value)
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        return value


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """A JSON-serialisable copy: datetimes as ISO-8601 (as the Automation service renders them)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _convert_output(step: str, name: str, otype: str, value: Any) -> Any:
    """A selected value as the declared output ``Type``; a mismatch fails the step."""

    def bad() -> _StepFailure:
        return _StepFailure(
            f"Output {name!r} of step {step!r}: selected value {value!r} ({type(value).__name__}) "
            f"cannot be converted to {otype}",
            "OutputTypeMismatch",
        )

    if otype == "String":
        if isinstance(value, (dict, list)):
            raise bad()
        return _stringify(value)
    if otype == "Integer":
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise bad()
    if otype == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad()
    if otype == "StringList":
        if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            return [_stringify(v) for v in value]
        raise bad()
    if otype == "StringMap":
        if isinstance(value, dict):
            return value
        raise bad()
    if otype == "MapList":
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
        raise bad()
    raise _StepFailure(
        f"Output {name!r} of step {step!r}: unknown Type {otype!r} (valid: {', '.join(OUTPUT_TYPES)})",
        "InvalidOutputType",
    )


_DURATION = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration (``PT10M``, ``P1DT2H``, ``PT30S``)."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as PT10M")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return (
        parts.get("w", 0) * 604800
        + parts.get("d", 0) * 86400
        + parts.get("h", 0) * 3600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO-8601 timestamp (``2026-01-01T00:00:00Z``) as an aware datetime (UTC if no offset)."""
    try:
        value = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp such as 2026-01-01T00:00:00Z") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# Scripts see boto3.DEFAULT_SESSION = the runner's session; one script at a time process-wide.
_SCRIPT_LOCK = threading.RLock()


class _ScriptContext(dict[str, Any]):
    """The ``context`` argument of an executeScript handler. ``global:ACCOUNT_ID`` is looked up (STS)
    only if the script reads it."""

    def __init__(self, runner: _Runner) -> None:
        super().__init__(
            {
                "automation:EXECUTION_ID": runner.execution.execution_id,
                "automation:DOCUMENT_EXECUTION_ID": runner.execution.execution_id,
                "global:REGION": runner.region,
                "global:AWS_PARTITION": runner.partition,
                "global:DATE": runner.now().strftime("%Y-%m-%d"),
                "global:DATE_TIME": runner.now().strftime("%m-%d-%Y_%H.%M.%S"),
            }
        )
        self._runner = runner

    def __missing__(self, key: str) -> Any:
        if key == "global:ACCOUNT_ID":
            value = self._runner.account_id()
            self[key] = value
            return value
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------


class _Runner:
    def __init__(
        self,
        *,
        doc: dict[str, Any],
        parameters: dict[str, Any],
        session: boto3.Session,
        clock: Any,
        account_id: str | None,
        region: str,
        execution: Execution,
    ) -> None:
        self.doc = doc
        self.parameters = parameters
        self.session = session
        self.clock = clock
        self._account_id = account_id
        self.region = region
        self.partition = _partition(session, region)
        self.execution = execution
        self.steps: list[dict[str, Any]] = list(doc["mainSteps"])
        self.index = {str(s["name"]): i for i, s in enumerate(self.steps)}
        self.step_names = set(self.index)
        self.step_outputs: dict[str, Any] = {}
        self.variables = _Variables(self)
        self._clients: dict[str, Any] = {}
        self._t0 = clock.monotonic()
        self._wall0 = dt.datetime.now(dt.UTC)

    # -- environment ---------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        now = getattr(self.clock, "now", None)
        if callable(now):
            value = now()
            if isinstance(value, dt.datetime):
                return value
        return self._wall0 + dt.timedelta(seconds=self.clock.monotonic() - self._t0)

    def account_id(self) -> str:
        if self._account_id is None:
            try:
                sts = self.client("sts")
                self._account_id = str(sts.get_caller_identity()["Account"])
            except (ClientError, BotoCoreError) as exc:
                raise _StepFailure(
                    f"Cannot resolve global:ACCOUNT_ID (sts:GetCallerIdentity failed: {exc}); "
                    "pass account_id= to run_runbook",
                    "AccountIdUnavailable",
                ) from exc
        return self._account_id

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = cast("Any", self.session).client(
                    service,
                    region_name=self.region,
                    config=CLIENT_CONFIG,
                )
            except Exception as exc:
                raise _StepFailure(
                    f"Unknown Service {service!r}: boto3 has no such service ({exc})", "InvalidService"
                ) from exc
        return self._clients[service]

    # -- main loop -----------------------------------------------------------------------------------

    def run(self) -> None:
        execution = self.execution
        execution.start_time = self.now()
        position: int | None = 0
        critical_failure: StepExecution | None = None
        abort: StepExecution | None = None
        executed = 0
        while position is not None and position < len(self.steps):
            if executed >= MAX_STEP_EXECUTIONS:
                execution.status = "Failed"
                execution.failure_message = (
                    f"Stopped after {MAX_STEP_EXECUTIONS} step executions: the document loops "
                    "(check nextStep / onFailure step: / aws:branch targets)"
                )
                execution.end_time = self.now()
                return
            executed += 1
            spec = self.steps[position]
            record, goto = self._run_step(spec)
            execution.steps.append(record)
            if record.status == "Success":
                position = self._next_on_success(spec, position, goto)
            else:
                on_failure = record.on_failure
                if record.is_critical and critical_failure is None:
                    critical_failure = record
                if on_failure == "Abort":
                    abort = record
                    position = None
                elif on_failure.startswith("step:"):
                    position = self.index[on_failure[5:]]
                elif _truthy(spec.get("isEnd")):
                    position = None
                else:  # Continue
                    position = self._next_on_success(spec, position, None)
            record.next_step = (
                self.steps[position]["name"] if position is not None and position < len(self.steps) else None
            )
        execution.end_time = self.now()
        self._collect_outputs()
        failed = abort or critical_failure
        if failed is None:
            execution.status = "Success"
            return
        execution.status = "TimedOut" if failed.status == "TimedOut" else "Failed"
        execution.failure_message = failed.failure_message
        execution.failed_step = failed.name

    def _next_on_success(self, spec: Mapping[str, Any], position: int, goto: str | None) -> int | None:
        if goto is not None:
            return self.index[goto]
        if _truthy(spec.get("isEnd")):
            return None
        if spec.get("nextStep"):
            return self.index[str(spec["nextStep"])]
        return position + 1

    def _collect_outputs(self) -> None:
        # SSM lists every declared output; one whose step did not produce it shows a placeholder. Here
        # it is simply absent, so `"Step.Out" in execution.outputs` says whether it was produced.
        for ref in self.doc.get("outputs") or []:
            if ref in self.step_outputs:
                self.execution.outputs[ref] = self.step_outputs[ref]

    def _run_step(self, spec: Mapping[str, Any]) -> tuple[StepExecution, str | None]:
        name = str(spec["name"])
        action = str(spec["action"])
        on_failure = str(spec.get("onFailure") or "Abort")
        is_critical = _truthy(spec["isCritical"]) if "isCritical" in spec else on_failure != "Continue"
        record = StepExecution(name=name, action=action, on_failure=on_failure, is_critical=is_critical)
        record.start_time = self.now()
        max_attempts = max(1, int(spec.get("maxAttempts") or 1))
        goto: str | None = None
        for attempt in range(1, max_attempts + 1):
            record.attempts = attempt
            record.failure_message = record.failure_type = record.traceback = None
            try:
                inputs = self.variables.substitute(copy.deepcopy(dict(spec.get("inputs") or {})))
                if action == "aws:executeScript" and "Script" in (spec.get("inputs") or {}):
                    # The script text is code, not a template: pass it through untouched.
                    inputs["Script"] = spec["inputs"]["Script"]
                record.inputs = inputs
                outputs, goto, response = self._dispatch(spec, action, inputs)
            except _StepFailure as failure:
                record.status = "TimedOut" if failure.timed_out else "Failed"
                record.failure_message = failure.message
                record.failure_type = failure.failure_type
                record.traceback = failure.traceback
                continue  # maxAttempts retries every failure, time-outs included
            except Exception as exc:  # a local-runner limitation or bug: report it on the step, don't crash
                record.status = "Failed"
                record.failure_message = f"Local runner error in step {name!r}: {type(exc).__name__}: {exc}"
                record.failure_type = "LocalRunnerError"
                record.traceback = traceback.format_exc()
                continue
            record.status = "Success"
            record.outputs = outputs
            record.response = _json_safe(response)
            for out_name, value in outputs.items():
                self.step_outputs[f"{name}.{out_name}"] = value
            break
        record.end_time = self.now()
        return record, goto

    def _dispatch(
        self, spec: Mapping[str, Any], action: str, inputs: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None, Any]:
        timeout = spec.get("timeoutSeconds")
        if action == "aws:executeAwsApi":
            response = self._call_api(inputs)
            return self._select_outputs(spec, response), None, response
        if action == "aws:executeScript":
            payload = self._execute_script(spec, inputs, timeout)
            response = {"Payload": payload}
            return self._select_outputs(spec, response), None, payload
        if action == "aws:assertAwsResourceProperty":
            response = self._call_api(inputs, exclude=("PropertySelector", "DesiredValues"))
            ok, actual = _property_matches(response, inputs)
            if not ok:
                raise _StepFailure(
                    f"Property {inputs.get('PropertySelector')} is {actual}, not one of the desired values "
                    f"{inputs.get('DesiredValues')} "
                    f"(Service {inputs.get('Service')}, Api {inputs.get('Api')})",
                    "VerificationErrorException",
                )
            return {}, None, response
        if action == "aws:waitForAwsResourceProperty":
            return {}, None, self._wait(spec, inputs, timeout)
        if action == "aws:branch":
            return {}, _branch(spec, inputs), None
        if action == "aws:sleep":
            self._sleep(inputs)
            return {}, None, None
        raise _StepFailure(f"{action} is not supported by the local runner", "UnsupportedAction")

    # -- actions -------------------------------------------------------------------------------------

    def _call_api(self, inputs: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> Any:
        service = inputs.get("Service")
        api = inputs.get("Api")
        if not isinstance(service, str) or not service:
            raise _StepFailure(
                "Input 'Service' is required (a boto3 service name such as s3)", "InvalidInput"
            )
        if not isinstance(api, str) or not api:
            raise _StepFailure(
                "Input 'Api' is required (an operation such as PutBucketEncryption)", "InvalidInput"
            )
        client = self.client(service)
        operation = _operation_name(client, service, api)
        params = {k: v for k, v in inputs.items() if k not in ("Service", "Api", *exclude)}
        try:
            return getattr(client, xform_name(operation))(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise _StepFailure(str(exc), str(code) if code else "ClientError") from exc
        except BotoCoreError as exc:
            raise _StepFailure(f"{type(exc).__name__}: {exc}", type(exc).__name__) from exc

    def _select_outputs(self, spec: Mapping[str, Any], response: Any) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        data = _json_safe(response)
        step = str(spec["name"])
        for output in spec.get("outputs") or []:
            name = str(output.get("Name"))
            otype = str(output.get("Type") or "String")
            selector = output.get("Selector")
            try:
                path = compile_path(str(selector))
            except JsonPathError as exc:
                raise _StepFailure(f"Output {name!r} of step {step!r}: {exc}", "InvalidSelector") from exc
            matches = select(data, path)
            if not matches:
                # Nothing selected: the output is not set (a later {{ Step.Output }} fails, naming it).
                continue
            value = matches[0] if path.is_definite else matches
            outputs[name] = _convert_output(step, name, otype, value)
        return outputs

    def _execute_script(self, spec: Mapping[str, Any], inputs: Mapping[str, Any], timeout: Any) -> Any:
        runtime = inputs.get("Runtime")
        if runtime not in PYTHON_RUNTIMES:
            raise _StepFailure(
                f"Runtime {runtime!r} is not supported by the local runner (supported: "
                f"{', '.join(PYTHON_RUNTIMES)}; PowerShell scripts cannot run locally)",
                "UnsupportedRuntime",
            )
        if "Attachment" in inputs and "Script" not in inputs:
            raise _StepFailure(
                "aws:executeScript with an Attachment is not supported by the local runner; "
                "use an inline Script",
                "UnsupportedInput",
            )
        script = inputs.get("Script")
        handler_name = inputs.get("Handler")
        if not isinstance(script, str) or not script.strip():
            raise _StepFailure("Input 'Script' is required (inline Python source)", "InvalidInput")
        if not isinstance(handler_name, str) or not handler_name:
            raise _StepFailure("Input 'Handler' is required (the function to call)", "InvalidInput")
        events = inputs.get("InputPayload") or {}
        step = str(spec["name"])
        namespace: dict[str, Any] = {"__name__": f"ssm_script_{step}", "__builtins__": __builtins__}
        context = _ScriptContext(self)
        started = self.clock.monotonic()
        with _SCRIPT_LOCK:
            previous = boto3.DEFAULT_SESSION
            boto3.DEFAULT_SESSION = self.session
            try:
                code = compile(script, f"<{step} script>", "exec")
                # Running the runbook's own script is the point of aws:executeScript.
                exec(code, namespace)  # noqa: S102  # nosec B102
                handler = namespace.get(handler_name)
                if not callable(handler):
                    raise _StepFailure(
                        f"Handler {handler_name!r} is not a function defined by the script of step {step!r}",
                        "InvalidHandler",
                    )
                result = handler(events, context)
            except _StepFailure:
                raise
            except SyntaxError as exc:
                raise _StepFailure(f"SyntaxError in script: {exc}", "SyntaxError") from exc
            except (Exception, SystemExit) as exc:
                failure = _StepFailure(_exception_message(exc), type(exc).__name__)
                failure.traceback = traceback.format_exc()
                raise failure from exc
            finally:
                boto3.DEFAULT_SESSION = previous
        if timeout is not None and self.clock.monotonic() - started > float(timeout):
            raise _StepFailure(
                f"Step {step!r} timed out: the script ran longer than timeoutSeconds={timeout}",
                "TimedOut",
                timed_out=True,
            )
        try:
            return json.loads(json.dumps(result, default=_json_default))
        except (TypeError, ValueError) as exc:
            raise _StepFailure(
                f"The script's return value is not JSON-serialisable: {exc}", "InvalidPayload"
            ) from exc

    def _wait(self, spec: Mapping[str, Any], inputs: Mapping[str, Any], timeout: Any) -> Any:
        limit = float(timeout) if timeout is not None else float(DEFAULT_WAIT_TIMEOUT)
        started = self.clock.monotonic()
        polls = 0
        while True:
            polls += 1
            response = self._call_api(inputs, exclude=("PropertySelector", "DesiredValues"))
            ok, actual = _property_matches(response, inputs)
            if ok:
                return response
            elapsed = self.clock.monotonic() - started
            if elapsed + WAIT_POLL_SECONDS > limit:
                raise _StepFailure(
                    f"Timed out after {limit:g}s ({polls} polls) waiting for "
                    f"{inputs.get('PropertySelector')} "
                    f"to be one of {inputs.get('DesiredValues')}; last value: {actual}",
                    "TimedOut",
                    timed_out=True,
                )
            self.clock.sleep(WAIT_POLL_SECONDS)

    def _sleep(self, inputs: Mapping[str, Any]) -> None:
        if "Duration" in inputs:
            try:
                seconds = parse_duration(str(inputs["Duration"]))
            except ValueError as exc:
                raise _StepFailure(f"Input 'Duration': {exc}", "InvalidInput") from exc
        elif "Timestamp" in inputs:
            try:
                until = parse_timestamp(str(inputs["Timestamp"]))
            except ValueError as exc:
                raise _StepFailure(f"Input 'Timestamp': {exc}", "InvalidInput") from exc
            seconds = max(0.0, (until - self.now()).total_seconds())
        else:
            raise _StepFailure("aws:sleep needs a Duration or a Timestamp input", "InvalidInput")
        if seconds > MAX_SLEEP_SECONDS:
            raise _StepFailure(f"aws:sleep of {seconds:g}s exceeds the 7-day maximum", "InvalidInput")
        self.clock.sleep(seconds)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _exception_message(exc: BaseException) -> str:
    """What an operator sees for a script exception: the message, prefixed by the type unless it is a
    plain ``Exception``."""
    message = str(exc)
    if type(exc) is Exception:
        return message or "Exception"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _partition(session: boto3.Session, region: str) -> str:
    try:
        return str(session.get_partition_for_region(region))
    except Exception:
        return (
            "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        )


def _operation_name(client: Any, service: str, api: str) -> str:
    """The botocore operation for ``Api`` (PascalCase as in the API reference; snake_case accepted)."""
    names = [str(n) for n in client.meta.service_model.operation_names]
    if api in names:
        return api
    for name in names:
        if xform_name(name) == api or name.lower() == api.lower():
            return name
    raise _StepFailure(
        f"Unknown Api {api!r} for Service {service!r}: botocore has no such operation", "InvalidApi"
    )


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _property_matches(response: Any, inputs: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether PropertySelector's value is one of DesiredValues, compared as strings. A selector that
    selects several values (``[*]``) matches only when every value is desired; nothing selected never
    matches."""
    selector = inputs.get("PropertySelector")
    desired = inputs.get("DesiredValues")
    if not isinstance(selector, str):
        raise _StepFailure(
            "Input 'PropertySelector' is required (a JSONPath such as $.Table.TableStatus)", "InvalidInput"
        )
    if not isinstance(desired, list) or not desired:
        raise _StepFailure("Input 'DesiredValues' is required (a non-empty list)", "InvalidInput")
    try:
        path = compile_path(selector)
    except JsonPathError as exc:
        raise _StepFailure(f"Input 'PropertySelector': {exc}", "InvalidSelector") from exc
    matches = select(_json_safe(response), path)
    wanted = {_desired(v) for v in desired}
    rendered = [_stringify(v) for v in matches]
    actual = (
        rendered[0]
        if path.is_definite and rendered
        else (repr(rendered) if rendered else "(nothing selected)")
    )
    if not matches:
        return False, actual
    ok = all(_desired(v) in wanted for v in matches)
    return ok, actual


def _desired(value: Any) -> str:
    # Booleans compare case-insensitively: AWS's examples write DesiredValues "True"/"False" while the
    # JSON value is true/false.
    text = _stringify(value)
    return text.lower() if text.lower() in ("true", "false") else text


# -- aws:branch ---------------------------------------------------------------------------------------

BRANCH_OPERATORS = (
    "StringEquals",
    "EqualsIgnoreCase",
    "StartsWith",
    "EndsWith",
    "Contains",
    "NumericEquals",
    "NumericGreater",
    "NumericLesser",
    "NumericGreaterOrEquals",
    "NumericLesserOrEquals",
    "BooleanEquals",
)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise _StepFailure(f"aws:branch: {what} {value!r} is not a number", "InvalidInput")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise _StepFailure(f"aws:branch: {what} {value!r} is not a number", "InvalidInput") from exc


def _boolean(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _StepFailure(f"aws:branch: {what} {value!r} is not a boolean", "InvalidInput")


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda v, x: _stringify(v) == _stringify(x),
    "EqualsIgnoreCase": lambda v, x: _stringify(v).lower() == _stringify(x).lower(),
    "StartsWith": lambda v, x: _stringify(v).startswith(_stringify(x)),
    "EndsWith": lambda v, x: _stringify(v).endswith(_stringify(x)),
    "Contains": lambda v, x: (
        _stringify(x) in [_stringify(i) for i in v] if isinstance(v, list) else _stringify(x) in _stringify(v)
    ),
    "NumericEquals": lambda v, x: _number(v, "Variable") == _number(x, "operand"),
    "NumericGreater": lambda v, x: _number(v, "Variable") > _number(x, "operand"),
    "NumericLesser": lambda v, x: _number(v, "Variable") < _number(x, "operand"),
    "NumericGreaterOrEquals": lambda v, x: _number(v, "Variable") >= _number(x, "operand"),
    "NumericLesserOrEquals": lambda v, x: _number(v, "Variable") <= _number(x, "operand"),
    "BooleanEquals": lambda v, x: _boolean(v, "Variable") == _boolean(x, "operand"),
}


def evaluate_choice(choice: Mapping[str, Any]) -> bool:
    """One (already substituted) aws:branch choice or sub-expression: Variable + operator, And, Or, Not."""
    if not isinstance(choice, Mapping):
        raise _StepFailure(f"aws:branch: a choice must be a mapping, got {choice!r}", "InvalidInput")
    if "And" in choice:
        return all(evaluate_choice(c) for c in choice["And"])
    if "Or" in choice:
        return any(evaluate_choice(c) for c in choice["Or"])
    if "Not" in choice:
        inner = choice["Not"]
        if isinstance(inner, list):
            if len(inner) != 1:
                raise _StepFailure("aws:branch: Not takes exactly one expression", "InvalidInput")
            inner = inner[0]
        return not evaluate_choice(inner)
    operators = [op for op in BRANCH_OPERATORS if op in choice]
    if len(operators) != 1 or "Variable" not in choice:
        raise _StepFailure(
            "aws:branch: a choice needs a Variable and exactly one operator of "
            f"{', '.join(BRANCH_OPERATORS)} "
            f"(or And/Or/Not); got keys {sorted(choice)}",
            "InvalidInput",
        )
    op = operators[0]
    return _OPERATORS[op](choice["Variable"], choice[op])


def _branch(spec: Mapping[str, Any], inputs: Mapping[str, Any]) -> str | None:
    """The step an aws:branch jumps to: the first true choice's NextStep, else Default, else None (the
    document's next step runs, as the user guide says)."""
    choices = inputs.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise _StepFailure("aws:branch needs a non-empty Choices list", "InvalidInput")
    for i, choice in enumerate(choices):
        if not isinstance(choice, Mapping):
            raise _StepFailure(f"aws:branch: Choices[{i}] must be a mapping", "InvalidInput")
        if evaluate_choice(choice):
            if not choice.get("NextStep"):
                raise _StepFailure(f"aws:branch: Choices[{i}] is true but has no NextStep", "InvalidInput")
            return str(choice["NextStep"])
    default = inputs.get("Default")
    return str(default) if default else None


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def _preflight(doc: Mapping[str, Any]) -> None:
    """Structural checks the Automation service makes before a run starts (CreateDocument /
    StartAutomationExecution), so a broken document fails fast without any AWS call."""
    version = doc.get("schemaVersion")
    if str(version) != "0.3":
        raise RunbookError(f"schemaVersion must be '0.3' for an Automation runbook, got {version!r}")
    steps = doc.get("mainSteps")
    if not isinstance(steps, list) or not steps:
        raise RunbookError("mainSteps must be a non-empty list of steps")
    names: list[str] = []
    for i, step in enumerate(steps):
        if not isinstance(step, Mapping) or not step.get("name") or not step.get("action"):
            raise RunbookError(f"mainSteps[{i}] needs a name and an action")
        names.append(str(step["name"]))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RunbookError(f"Duplicate step name(s): {', '.join(duplicates)}")
    for step in steps:
        name, action = step["name"], step["action"]
        if action not in SUPPORTED_ACTIONS:
            known = "an Automation action" if action in ACTIONS else "not a known Automation action"
            raise RunbookError(
                f"Step {name!r}: {action} is not supported by the local runner ({known}; supported: "
                f"{', '.join(sorted(SUPPORTED_ACTIONS))})"
            )
        if "inputs" in step and not isinstance(step["inputs"], Mapping):
            raise RunbookError(f"Step {name!r}: inputs must be a mapping")
        for key in ("maxAttempts", "timeoutSeconds"):
            value = step.get(key)
            if key in step and (isinstance(value, bool) or not str(value).isdigit() or int(value) < 1):
                raise RunbookError(f"Step {name!r}: {key} must be a positive integer, got {value!r}")
        on_failure = str(step.get("onFailure") or "Abort")
        if not ON_FAILURE.match(on_failure):
            raise RunbookError(
                f"Step {name!r}: onFailure {on_failure!r} is not Abort, Continue or step:<name>"
            )
        targets = [("nextStep", step.get("nextStep"))]
        if on_failure.startswith("step:"):
            targets.append(("onFailure", on_failure[5:]))
        if action == "aws:branch":
            inputs = step.get("inputs") or {}
            targets += [
                ("NextStep", c.get("NextStep")) for c in inputs.get("Choices") or [] if isinstance(c, Mapping)
            ]
            targets.append(("Default", inputs.get("Default")))
        for what, target in targets:
            if target and str(target) not in names:
                raise RunbookError(f"Step {name!r}: {what} target {target!r} is not a step of this document")


def run_runbook(
    doc_or_path: Mapping[str, Any] | str | Path,
    parameters: Mapping[str, Any] | None = None,
    session: boto3.Session | None = None,
    *,
    clock: Clock | None = None,
    account_id: str | None = None,
    region: str | None = None,
    execution_id: str | None = None,
) -> Execution:
    """Run an Automation runbook locally against ``session`` and return its execution record.

    Raises :class:`RunbookError` (before any AWS call) when the document is structurally unusable, uses
    an action this runner does not support, or a parameter is unknown, missing or invalid. Step failures
    do not raise: they are in the returned :class:`Execution` (``status``, ``failure_message``,
    ``steps``), as GetAutomationExecution reports them.

    ``assumeRole`` is ignored: ``session`` is the identity for every step, including boto3 calls made by
    aws:executeScript scripts. ``account_id`` defaults to sts:GetCallerIdentity (called only if a step
    needs it), ``region`` to the session's region.
    """
    doc = load_runbook(doc_or_path)
    _preflight(doc)
    values = resolve_parameters(doc, parameters)
    session = session or boto3.Session()
    region = region or session.region_name
    if not region:
        raise RunbookError("No region: pass region= or use a session with a region")
    execution = Execution(
        execution_id=execution_id or str(uuid.uuid4()),
        document_name=_document_name(doc_or_path),
        parameters=values,
    )
    runner = _Runner(
        doc=doc,
        parameters=values,
        session=session,
        clock=clock or SystemClock(),
        account_id=account_id,
        region=region,
        execution=execution,
    )
    runner.run()
    return execution
