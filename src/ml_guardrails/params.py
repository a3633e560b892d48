"""Rule parameters: declared once per rule, parsed strictly, errors that name the parameter.

AWS Config passes input parameters as strings (``"true"``, ``"365"``, ``"a,b"``); the CLI's parameter
file may carry JSON booleans and numbers. Both are accepted. Anything else -- an unknown name (a typo
would silently weaken a control), a value of the wrong type, out of range, or not matching its pattern
-- raises rdklib's :class:`InvalidParametersError` with a message naming the parameter and what is
allowed, before anything is evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import Any, ClassVar

from rdklib import InvalidParametersError

# Parameters rdklib's evaluation machinery reads from every rule (cross-account execution).
ENGINE_PARAMETERS = ("ExecutionRoleName", "ExecutionRoleRegion", "AssumeRoleMode")
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html: role name 1-64 chars of
# [\w+=,.@-]; a path may precede it.
# Patterns are compiled on first use (``re``'s own cache), not at import: a cold start pays only for
# what an invocation uses.
_ROLE_NAME = r"^/?(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
_REGION = r"^[a-z]{2}(?:-[a-z]+)+-\d$"
# Tag keys: 1-128 Unicode letters, digits, whitespace and _ . : / = + - @ ; not starting with "aws:".
_TAG_KEY = r"^(?!aws:)[\w\s.:/=+\-@]{1,128}$"


def _show(value: Any) -> str:
    text = str(value)
    return '"' + (text if len(text) <= 60 else text[:57] + "...") + '"'


def _init(instance: Parameter, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(instance, name, value)


def _text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidParametersError(f"{name} must be a string, got {type(value).__name__}")
    return str(value).strip()


class Parameter:
    """A rule parameter. ``default`` is the string Config would pass (as in ``parameters.json``).

    An immutable value (equality, hash and repr over :attr:`FIELDS`, assignment raises
    ``FrozenInstanceError``), as a frozen dataclass would be, but written out: every rule module imports
    these classes, and ``dataclasses`` generating their methods at import was a measurable share of a
    Lambda cold start (``make bench``).
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("name", "description", "default", "required")
    name: str
    description: str
    default: str | None
    required: bool

    def __init__(
        self, name: str, description: str, default: str | None = None, required: bool = False
    ) -> None:
        _init(self, name=name, description=description, default=default, required=required)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def parse(self, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def parse_or_default(self, raw: Mapping[str, Any]) -> Any:
        value = raw.get(self.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.required:
                raise InvalidParametersError(f"{self.name} is required: {self.description}")
            return None if self.default is None else self.parse(self.default)
        return self.parse(value)


class BoolParameter(Parameter):
    def parse(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise InvalidParametersError(f"{self.name} must be true or false, got {_show(value)}")


class IntParameter(Parameter):
    FIELDS = (*Parameter.FIELDS, "minimum", "maximum")
    minimum: int
    maximum: int

    def __init__(  # noqa: PLR0917 - the signature a dataclass would have (positional fields)
        self,
        name: str,
        description: str,
        default: str | None = None,
        required: bool = False,
        minimum: int = 0,
        maximum: int = 2**31 - 1,
    ) -> None:
        super().__init__(name, description, default, required)
        _init(self, minimum=minimum, maximum=maximum)

    def parse(self, value: Any) -> int:
        text = "" if isinstance(value, bool) else str(value).strip()
        if re.fullmatch(r"[+-]?[0-9]{1,10}", text) and self.minimum <= int(text) <= self.maximum:
            return int(text)
        raise InvalidParametersError(
            f"{self.name} must be an integer from {self.minimum} to {self.maximum}, got {_show(value)}"
        )


class StringParameter(Parameter):
    FIELDS = (*Parameter.FIELDS, "pattern", "what")
    pattern: str
    what: str

    def __init__(  # noqa: PLR0917 - the signature a dataclass would have (positional fields)
        self,
        name: str,
        description: str,
        default: str | None = None,
        required: bool = False,
        pattern: str = r".+",
        what: str = "a non-empty string",
    ) -> None:
        super().__init__(name, description, default, required)
        _init(self, pattern=pattern, what=what)

    def parse(self, value: Any) -> str:
        text = _text(self.name, value)
        if not re.fullmatch(self.pattern, text):
            raise InvalidParametersError(f"{self.name} must be {self.what}, got {_show(value)}")
        return text


class CsvParameter(Parameter):
    """A comma-separated list; each item must match ``pattern`` (or be one of ``choices``)."""

    FIELDS = (*Parameter.FIELDS, "pattern", "what", "choices")
    pattern: str
    what: str
    choices: tuple[str, ...]

    def __init__(  # noqa: PLR0917 - the signature a dataclass would have (positional fields)
        self,
        name: str,
        description: str,
        default: str | None = None,
        required: bool = False,
        pattern: str = r".+",
        what: str = "a comma-separated list",
        choices: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, description, default, required)
        _init(self, pattern=pattern, what=what, choices=choices)

    def parse(self, value: Any) -> frozenset[str]:
        items = value if isinstance(value, list) else _text(self.name, value).split(",")
        result: set[str] = set()
        for item in items:
            text = _text(self.name, item)
            if not text:
                raise InvalidParametersError(f"{self.name} has an empty item: {_show(value)}")
            if self.choices:
                if text not in self.choices:
                    raise InvalidParametersError(
                        f"{self.name} items must be among {', '.join(self.choices)}, got {_show(text)}"
                    )
            elif not re.fullmatch(self.pattern, text):
                raise InvalidParametersError(f"{self.name} must be {self.what}, got {_show(text)}")
            result.add(text)
        return frozenset(result)


class ChoiceParameter(Parameter):
    FIELDS = (*Parameter.FIELDS, "choices")
    choices: tuple[str, ...]

    def __init__(
        self,
        name: str,
        description: str,
        default: str | None = None,
        required: bool = False,
        choices: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, description, default, required)
        _init(self, choices=choices)

    def parse(self, value: Any) -> str:
        text = _text(self.name, value)
        if text not in self.choices:
            raise InvalidParametersError(
                f"{self.name} must be one of {', '.join(self.choices)}, got {_show(value)}"
            )
        return text


EXEMPTION_TAG_KEY = StringParameter(
    "ExemptionTagKey",
    "Resources carrying this tag are NOT_APPLICABLE, annotated with the tag's value as the reason. "
    "No exemptions unless set.",
    pattern=_TAG_KEY,
    what="a tag key (1-128 characters, not starting with aws:)",
)


def parse_parameters(specs: tuple[Parameter, ...], raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``raw`` against ``specs`` (plus the engine's own parameters); values by name.

    Raises one InvalidParametersError naming every bad parameter (unknown names are errors too), so a
    deployer fixes them in one pass.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidParametersError(f"rule parameters must be a JSON object, got {type(raw).__name__}")
    known = {spec.name for spec in specs}
    problems: list[str] = []
    unknown = sorted(str(k) for k in raw if k not in known and k not in ENGINE_PARAMETERS)
    if unknown:
        accepted = ", ".join(sorted(known | set(ENGINE_PARAMETERS)))
        names = ", ".join(unknown)
        problems.append(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {names}; this rule accepts: {accepted}"
        )
    try:
        parse_engine_parameters(raw)
    except InvalidParametersError as exc:
        problems.append(str(exc))
    values: dict[str, Any] = {}
    for spec in specs:
        try:
            values[spec.name] = spec.parse_or_default(raw)
        except InvalidParametersError as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidParametersError("; ".join(problems))
    return values


@dataclass(frozen=True)
class EngineParameters:
    execution_role_name: str | None
    execution_role_region: str | None
    assume_role_mode: bool


def parse_engine_parameters(raw: Mapping[str, Any]) -> EngineParameters:
    """The cross-account parameters. ``AssumeRoleMode`` may be a string or a JSON boolean (default true)."""
    mode = raw.get("AssumeRoleMode")
    if mode is None or (isinstance(mode, str) and not mode.strip()):
        assume = True
    else:
        assume = BoolParameter("AssumeRoleMode", "").parse(mode)
    role = raw.get("ExecutionRoleName")
    if role is not None and role != "":
        role = _text("ExecutionRoleName", role)
        if not re.fullmatch(_ROLE_NAME, role):
            raise InvalidParametersError(
                f"ExecutionRoleName must be an IAM role name, optionally with its path, got {_show(role)}"
            )
    region = raw.get("ExecutionRoleRegion")
    if region is not None and region != "":
        region = _text("ExecutionRoleRegion", region)
        if not re.fullmatch(_REGION, region):
            raise InvalidParametersError(
                f"ExecutionRoleRegion must be an AWS region name, got {_show(region)}"
            )
    return EngineParameters(role or None, region or None, assume)
