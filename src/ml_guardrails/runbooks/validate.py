"""Offline validation of SSM Automation runbooks (``remediations/*.yaml``), stricter than AWS.

cfn-lint only checks ``schemaVersion``, and CreateDocument (or moto) accepts a misspelt action, a
dangling ``nextStep`` or an unknown API parameter; the run then fails in the account. This validator
catches those before deployment, and applies the project's conventions (STYLE.md: markdown
``description``, ``assumeRole``, an ``allowedPattern`` on every input). It checks:

* the document: ``schemaVersion`` is the string ``'0.3'``; ``description`` and ``assumeRole`` present;
  no unknown top-level keys; the name (file stem) is a valid document name and does not start with
  ``AWS``/``Amazon`` (reserved by AWS);
* parameters: a valid ``type``, a ``description``, an anchored ``allowedPattern`` or ``allowedValues``
  (String, StringList, Integer), and a ``default`` of the right type that passes them;
* steps: unique names, no unknown keys, a known action the local runner supports, the required inputs of
  that action, ``onFailure``/``onCancel`` syntax, every ``nextStep``/``step:X``/``NextStep``/``Default``
  target exists, output ``Type``s, and selectors inside the supported JSONPath subset;
* ``aws:executeScript``: ``Runtime`` python3.11, the inline ``Script`` parses and defines the
  ``Handler`` function, outputs select from ``$.Payload``;
* ``aws:executeAwsApi`` / ``aws:assertAwsResourceProperty`` / ``aws:waitForAwsResourceProperty``,
  against botocore's service models: ``Service`` is a boto3 service, ``Api`` one of its operations, every
  other input a member of the operation's input shape, every required member given, and each selector a
  path of the output shape (or ``$.ResponseMetadata``);
* references: every ``{{ }}`` names a parameter, a global/automation variable, or an output some step
  declares; every document ``outputs`` entry is a declared step output.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import botocore.session

from ml_guardrails.runbooks.jsonpath import WILDCARD, JsonPathError, compile_path
from ml_guardrails.runbooks.runner import (
    ACTIONS,
    BRANCH_OPERATORS,
    GLOBAL_VARIABLES,
    OUTPUT_TYPES,
    PARAMETER_TYPES,
    REFERENCE,
    SUPPORTED_ACTIONS,
    RunbookError,
    _check_constraints,
    _coerce,
    load_runbook,
    parse_duration,
    parse_timestamp,
)

__all__ = ["RUNTIME", "validate_runbook"]

RUNTIME = "python3.11"
TOP_LEVEL_KEYS = frozenset(
    {"schemaVersion", "description", "assumeRole", "parameters", "mainSteps", "outputs", "files", "variables"}
)
PARAMETER_KEYS = frozenset(
    {
        "type",
        "description",
        "default",
        "allowedValues",
        "allowedPattern",
        "displayType",
        "minItems",
        "maxItems",
        "minChars",
        "maxChars",
    }
)
STEP_KEYS = frozenset(
    {
        "name",
        "action",
        "description",
        "inputs",
        "outputs",
        "maxAttempts",
        "timeoutSeconds",
        "onFailure",
        "onCancel",
        "isEnd",
        "isCritical",
        "nextStep",
    }
)
API_ACTIONS = frozenset(
    {"aws:executeAwsApi", "aws:assertAwsResourceProperty", "aws:waitForAwsResourceProperty"}
)
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "aws:executeAwsApi": ("Service", "Api"),
    "aws:assertAwsResourceProperty": ("Service", "Api", "PropertySelector", "DesiredValues"),
    "aws:waitForAwsResourceProperty": ("Service", "Api", "PropertySelector", "DesiredValues"),
    "aws:executeScript": ("Runtime", "Handler", "Script"),
    "aws:branch": ("Choices",),
}
NON_API_INPUTS = frozenset({"Service", "Api", "PropertySelector", "DesiredValues"})
CONSTRAINED_TYPES = ("String", "StringList", "Integer")
DOCUMENT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{3,128}$")
STEP_NAME = re.compile(r"^[A-Za-z0-9_]+$")
ON_FAILURE = re.compile(r"^(Abort|Continue|step:[A-Za-z0-9_]+)$")
ON_CANCEL = re.compile(r"^(Abort|step:[A-Za-z0-9_]+)$")


@functools.lru_cache(maxsize=1)
def _botocore() -> botocore.session.Session:
    return botocore.session.get_session()


@functools.lru_cache(maxsize=1)
def _services() -> frozenset[str]:
    return frozenset(_botocore().get_available_services())


@functools.lru_cache(maxsize=64)
def _service_model(service: str) -> Any:
    return _botocore().get_service_model(service)


def validate_runbook(doc_or_path: Mapping[str, Any] | str | Path, name: str | None = None) -> list[str]:
    """Every problem found in the runbook, each naming the step or parameter (empty: valid).

    ``name`` is the document name (default: the file stem when a path is given)."""
    try:
        doc = load_runbook(doc_or_path)
    except RunbookError as exc:
        return [f"cannot load the runbook: {exc}"]
    if name is None:
        if isinstance(doc_or_path, Path):
            name = doc_or_path.stem
        elif isinstance(doc_or_path, str) and "\n" not in doc_or_path:
            name = Path(doc_or_path).stem
    return list(dict.fromkeys(_Validator(doc, name).problems()))


class _Validator:
    def __init__(self, doc: dict[str, Any], name: str | None) -> None:
        self.doc = doc
        self.name = name
        raw_params = doc.get("parameters")
        self.params: dict[str, Any] = dict(raw_params) if isinstance(raw_params, Mapping) else {}
        raw_steps = doc.get("mainSteps")
        self.steps: list[Any] = list(raw_steps) if isinstance(raw_steps, list) else []
        self.step_names = [str(s.get("name")) for s in self.steps if isinstance(s, Mapping)]
        self.declared_outputs = {
            f"{s.get('name')}.{o.get('Name')}"
            for s in self.steps
            if isinstance(s, Mapping)
            for o in (s.get("outputs") or [])
            if isinstance(o, Mapping)
        }

    def problems(self) -> Iterator[str]:
        yield from self._document()
        yield from self._parameters()
        yield from self._steps()
        yield from self._references()

    # -- document ------------------------------------------------------------------------------------

    def _document(self) -> Iterator[str]:
        doc = self.doc
        if self.name is not None:
            if self.name.lower().startswith(("aws", "amazon")):
                yield f"document name {self.name!r}: names starting with AWS or Amazon are reserved by AWS"
            if not DOCUMENT_NAME.match(self.name):
                yield f"document name {self.name!r}: must be 3-128 characters of a-z, A-Z, 0-9, _, -, ."
        version = doc.get("schemaVersion")
        if version != "0.3":
            hint = " (quote it: '0.3')" if str(version) == "0.3" else ""
            yield f"schemaVersion must be the string '0.3' for an Automation runbook, got {version!r}{hint}"
        if not isinstance(doc.get("description"), str) or not doc["description"].strip():
            yield "description: missing (a markdown description of what the runbook does and needs)"
        if not isinstance(doc.get("assumeRole"), str) or not doc["assumeRole"].strip():
            yield "assumeRole: missing (e.g. '{{ AutomationAssumeRole }}', declared as a parameter)"
        for key in sorted(set(doc) - TOP_LEVEL_KEYS, key=str):
            yield f"unknown top-level key {key!r} (valid: {', '.join(sorted(TOP_LEVEL_KEYS))})"
        if "parameters" in doc and not isinstance(doc["parameters"], Mapping):
            yield "parameters: must be a mapping of parameter name to definition"
        if not isinstance(doc.get("mainSteps"), list) or not doc["mainSteps"]:
            yield "mainSteps: missing or empty"
        outputs = doc.get("outputs")
        if outputs is not None:
            if not isinstance(outputs, list):
                yield "outputs: must be a list of 'Step.Output' names"
            else:
                for ref in outputs:
                    if ref not in self.declared_outputs:
                        yield f"outputs: {ref!r} is not an output declared by any step"

    # -- parameters ----------------------------------------------------------------------------------

    def _parameters(self) -> Iterator[str]:
        for pname, spec in self.params.items():
            where = f"parameter {pname!r}"
            if not isinstance(spec, Mapping):
                yield f"{where}: definition must be a mapping"
                continue
            ptype = spec.get("type")
            if ptype not in PARAMETER_TYPES:
                yield f"{where}: type {ptype!r} is not one of {', '.join(PARAMETER_TYPES)}"
                continue
            for key in sorted(set(spec) - PARAMETER_KEYS, key=str):
                yield f"{where}: unknown key {key!r}"
            if not isinstance(spec.get("description"), str) or not spec["description"].strip():
                yield f"{where}: description missing"
            pattern = spec.get("allowedPattern")
            allowed = spec.get("allowedValues")
            if ptype in CONSTRAINED_TYPES and pattern is None and allowed is None:
                yield f"{where}: needs an allowedPattern or allowedValues"
            if pattern is not None:
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    yield f"{where}: allowedPattern {pattern!r} is not a valid regular expression: {exc}"
                    continue
                if not (str(pattern).startswith("^") and str(pattern).endswith("$")):
                    yield f"{where}: allowedPattern {pattern!r} must be anchored (^...$)"
            if allowed is not None and (not isinstance(allowed, list) or not allowed):
                yield f"{where}: allowedValues must be a non-empty list"
                continue
            if "default" in spec:
                try:
                    value = _coerce(pname, str(ptype), spec["default"])
                    _check_constraints(pname, spec, value)
                except RunbookError as exc:
                    yield f"{where}: default {spec['default']!r} is invalid: {exc}"

    # -- steps ---------------------------------------------------------------------------------------

    def _steps(self) -> Iterator[str]:
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if not isinstance(step, Mapping):
                yield f"mainSteps[{i}]: must be a mapping"
                continue
            sname = step.get("name")
            if not sname:
                yield f"mainSteps[{i}]: name missing"
                continue
            sname = str(sname)
            where = f"step {sname!r}"
            if sname in seen:
                yield f"{where}: duplicate step name"
            seen.add(sname)
            if not STEP_NAME.match(sname):
                yield f"{where}: name must contain only letters, digits and _"
            for key in sorted(set(step) - STEP_KEYS, key=str):
                yield f"{where}: unknown key {key!r} (valid: {', '.join(sorted(STEP_KEYS))})"
            yield from self._control(where, step)
            action = step.get("action")
            if action not in ACTIONS:
                yield f"{where}: unknown action {action!r}"
                continue
            if action not in SUPPORTED_ACTIONS:
                yield f"{where}: {action} is not supported by the local runner, so it cannot be tested"
                continue
            inputs = step.get("inputs")
            if not isinstance(inputs, Mapping):
                yield f"{where}: inputs missing (required for {action})"
                continue
            for key in REQUIRED_INPUTS.get(str(action), ()):
                if key not in inputs:
                    yield f"{where}: {action} requires input {key!r}"
            yield from self._outputs(where, step)
            if action == "aws:executeScript":
                yield from self._script(where, step, inputs)
            elif action in API_ACTIONS:
                yield from self._api(where, step, inputs)
            elif action == "aws:branch":
                yield from self._branch(where, inputs)
            elif action == "aws:sleep":
                yield from self._sleep(where, inputs)

    def _target(self, where: str, what: str, target: Any) -> Iterator[str]:
        if target is not None and str(target) not in self.step_names:
            yield f"{where}: {what} target {target!r} is not a step of this document"

    def _control(self, where: str, step: Mapping[str, Any]) -> Iterator[str]:
        yield from self._target(where, "nextStep", step.get("nextStep"))
        on_failure = step.get("onFailure")
        if on_failure is not None:
            if not isinstance(on_failure, str) or not ON_FAILURE.match(on_failure):
                yield f"{where}: onFailure {on_failure!r} must be Abort, Continue or step:<step name>"
            elif on_failure.startswith("step:"):
                yield from self._target(where, "onFailure", on_failure[5:])
        on_cancel = step.get("onCancel")
        if on_cancel is not None:
            if not isinstance(on_cancel, str) or not ON_CANCEL.match(on_cancel):
                yield f"{where}: onCancel {on_cancel!r} must be Abort or step:<step name>"
            elif on_cancel.startswith("step:"):
                yield from self._target(where, "onCancel", on_cancel[5:])
        for key in ("isEnd", "isCritical"):
            if key in step and not isinstance(step[key], bool):
                yield f"{where}: {key} must be a boolean (true/false), got {step[key]!r}"
        for key, minimum in (("maxAttempts", 1), ("timeoutSeconds", 1)):
            value = step.get(key)
            if key in step and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
                yield f"{where}: {key} must be an integer >= {minimum}, got {value!r}"

    def _outputs(self, where: str, step: Mapping[str, Any]) -> Iterator[str]:
        outputs = step.get("outputs")
        if outputs is None:
            return
        if not isinstance(outputs, list):
            yield f"{where}: outputs must be a list of {{Name, Selector, Type}}"
            return
        for output in outputs:
            if not isinstance(output, Mapping) or not output.get("Name") or not output.get("Selector"):
                yield f"{where}: output {output!r} needs a Name and a Selector"
                continue
            otype = output.get("Type", "String")
            if otype not in OUTPUT_TYPES:
                valid = ", ".join(OUTPUT_TYPES)
                yield f"{where}: output {output['Name']!r} Type {otype!r} is not one of {valid}"
            try:
                compile_path(str(output["Selector"]))
            except JsonPathError as exc:
                yield f"{where}: output {output['Name']!r}: {exc}"

    def _script(self, where: str, step: Mapping[str, Any], inputs: Mapping[str, Any]) -> Iterator[str]:
        runtime = inputs.get("Runtime")
        if "Runtime" in inputs and runtime != RUNTIME:
            yield f"{where}: Runtime {runtime!r} must be {RUNTIME!r}"
        if "Attachment" in inputs:
            yield f"{where}: Attachment scripts cannot be validated or run locally; use an inline Script"
        if "InputPayload" in inputs and not isinstance(inputs["InputPayload"], Mapping):
            yield f"{where}: InputPayload must be a mapping (it becomes the handler's events)"
        for output in step.get("outputs") or []:
            if isinstance(output, Mapping) and not str(output.get("Selector", "")).startswith("$.Payload"):
                name = output.get("Name")
                # "select" here is JSONPath, not SQL.
                yield f"{where}: output {name!r} must select from $.Payload (the return value)"  # nosec B608
        script, handler = inputs.get("Script"), inputs.get("Handler")
        if not isinstance(script, str):
            return
        try:
            tree = ast.parse(script)
        except SyntaxError as exc:
            yield f"{where}: Script does not parse: {exc.msg} (line {exc.lineno})"
            return
        functions = {
            node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        if isinstance(handler, str) and handler not in functions:
            yield f"{where}: Script defines no top-level function {handler!r} (the Handler)"

    def _api(self, where: str, step: Mapping[str, Any], inputs: Mapping[str, Any]) -> Iterator[str]:
        service, api = inputs.get("Service"), inputs.get("Api")
        if not isinstance(service, str) or not isinstance(api, str):
            return
        if service not in _services():
            yield f"{where}: Service {service!r} is not a boto3 service"
            return
        model = _service_model(service)
        if api not in model.operation_names:
            close = [op for op in model.operation_names if op.lower() == api.lower().replace("_", "")]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield f"{where}: Api {api!r} is not an operation of {service}{hint}"
            return
        operation = model.operation_model(api)
        input_shape = operation.input_shape
        members = dict(input_shape.members) if input_shape is not None else {}
        given = [k for k in inputs if k not in NON_API_INPUTS]
        for key in given:
            if key not in members:
                yield f"{where}: {key!r} is not a parameter of {service}.{api} (valid: {', '.join(members)})"
        required = input_shape.required_members if input_shape is not None else []
        for key in required:
            if key not in inputs:
                yield f"{where}: {service}.{api} requires parameter {key!r}"
        selectors = [
            (f"output {o.get('Name')!r}", o.get("Selector"))
            for o in step.get("outputs") or []
            if isinstance(o, Mapping)
        ]
        if "PropertySelector" in inputs:
            selectors.append(("PropertySelector", inputs["PropertySelector"]))
        for what, selector in selectors:
            try:
                path = compile_path(str(selector))
            except JsonPathError as exc:
                if what == "PropertySelector":  # output selectors are reported by _outputs
                    yield f"{where}: {what}: {exc}"
                continue
            if not _shape_has_path(operation.output_shape, path.parts):
                yield f"{where}: {what} {selector!r} is not a path of the {service}.{api} response"
        desired = inputs.get("DesiredValues")
        if "DesiredValues" in inputs and (not isinstance(desired, list) or not desired):
            yield f"{where}: DesiredValues must be a non-empty list"

    def _branch(self, where: str, inputs: Mapping[str, Any]) -> Iterator[str]:
        choices = inputs.get("Choices")
        if "Choices" in inputs and (not isinstance(choices, list) or not choices):
            yield f"{where}: Choices must be a non-empty list"
            return
        for i, choice in enumerate(choices or []):
            if not isinstance(choice, Mapping):
                yield f"{where}: Choices[{i}] must be a mapping"
                continue
            if "NextStep" not in choice:
                yield f"{where}: Choices[{i}] needs a NextStep"
            yield from self._target(where, f"Choices[{i}] NextStep", choice.get("NextStep"))
            yield from _choice_problems(f"{where}: Choices[{i}]", choice, top=True)
        yield from self._target(where, "Default", inputs.get("Default"))

    def _sleep(self, where: str, inputs: Mapping[str, Any]) -> Iterator[str]:
        if ("Duration" in inputs) == ("Timestamp" in inputs):
            yield f"{where}: aws:sleep needs exactly one of Duration or Timestamp"
            return
        try:
            if "Duration" in inputs:
                if not REFERENCE.search(str(inputs["Duration"])):
                    parse_duration(str(inputs["Duration"]))
            elif not REFERENCE.search(str(inputs["Timestamp"])):
                parse_timestamp(str(inputs["Timestamp"]))
        except ValueError as exc:
            yield f"{where}: {exc}"

    # -- references ----------------------------------------------------------------------------------

    def _references(self) -> Iterator[str]:
        places: list[tuple[str, Any]] = [("assumeRole", self.doc.get("assumeRole"))]
        for step in self.steps:
            if not isinstance(step, Mapping):
                continue
            inputs = step.get("inputs")
            if isinstance(inputs, Mapping):
                places.append(
                    (f"step {step.get('name')!r}", {k: v for k, v in inputs.items() if k != "Script"})
                )
        for where, value in places:
            for ref in sorted(set(_references(value))):
                if ref in self.params or ref in GLOBAL_VARIABLES or ref in self.declared_outputs:
                    continue
                yield (
                    f"{where}: reference {{{{ {ref} }}}} is not a parameter, a global/automation variable "
                    "or an output declared by a step"
                )


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        for match in REFERENCE.finditer(value):
            yield match.group(1)
        if "{{" in value and not REFERENCE.search(value):
            yield value  # a malformed reference is reported as unresolvable, verbatim
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _choice_problems(where: str, choice: Mapping[str, Any], *, top: bool = False) -> Iterator[str]:
    for combinator in ("And", "Or"):
        if combinator in choice:
            if not isinstance(choice[combinator], list) or not choice[combinator]:
                yield f"{where}: {combinator} must be a non-empty list of choices"
                return
            for sub in choice[combinator]:
                if isinstance(sub, Mapping):
                    yield from _choice_problems(where, sub)
                else:
                    yield f"{where}: {combinator} items must be mappings"
            return
    if "Not" in choice:
        inner = choice["Not"]
        items = inner if isinstance(inner, list) else [inner]
        if len(items) != 1 or not isinstance(items[0], Mapping):
            yield f"{where}: Not takes exactly one choice"
            return
        yield from _choice_problems(where, items[0])
        return
    operators = [op for op in BRANCH_OPERATORS if op in choice]
    allowed = {"Variable", "NextStep", *BRANCH_OPERATORS} if top else {"Variable", *BRANCH_OPERATORS}
    unknown = sorted(set(choice) - allowed, key=str)
    if unknown:
        valid = ", ".join(BRANCH_OPERATORS)
        yield f"{where}: unknown operator(s) {', '.join(map(str, unknown))} (valid: {valid})"
    if "Variable" not in choice:
        yield f"{where}: Variable missing"
    if len(operators) != 1 and not unknown:
        yield f"{where}: needs exactly one operator of {', '.join(BRANCH_OPERATORS)} (or And/Or/Not)"


def _shape_has_path(shape: Any, parts: tuple[object, ...]) -> bool:
    """Whether a selector's path can exist in responses of ``shape`` (botocore output shape)."""
    if parts and parts[0] == "ResponseMetadata":
        return True
    for part in parts:
        if shape is None:
            return False
        kind = shape.type_name
        if part is WILDCARD or isinstance(part, int):
            if kind == "list":
                shape = shape.member
            elif part is WILDCARD and kind == "map":
                shape = shape.value
            else:
                # [*] over a structure selects any member: accepted without modelling further.
                return part is WILDCARD and kind == "structure"
        elif kind == "structure":
            shape = shape.members.get(part)
        elif kind == "map":
            shape = shape.value
        else:
            return False
    return True
