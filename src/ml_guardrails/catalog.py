"""The rule catalog: discovers ``rules/*/parameters.json``, validates each, imports each rule by path.

Adding a rule means adding its folder; nothing here changes. The folder, module, class and
``RuleName`` must agree, and the parameters ``parameters.json`` declares must be exactly the ones the
rule's class accepts (a test over the catalog proves both).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from ml_guardrails.engine import ACCOUNT_RESOURCE_TYPE, GuardrailRule

RULE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,62}$")
PERIODS = ("One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours")
RUNTIME = "python3.12-lib"
# SSM document names: 3-128 of [a-zA-Z0-9_.-]; names starting with AWS or Amazon are reserved.
DOCUMENT_NAME = re.compile(r"^(?![Aa][Ww][Ss])(?![Aa][Mm][Aa][Zz][Oo][Nn])[a-zA-Z0-9_.-]{3,128}$")


class CatalogError(ValueError):
    """A rule folder is inconsistent; the message names the file and the field."""


@dataclass(frozen=True)
class RemediationSpec:
    """A rule's ``Remediation`` (RDK's shape: the AWS::Config::RemediationConfiguration properties)."""

    target_id: str
    resource_type: str
    automatic: bool
    maximum_automatic_attempts: int
    retry_attempt_seconds: int
    resource_parameter: str
    static_parameters: dict[str, list[str]]

    @property
    def runbook_path(self) -> Path:
        return data_dir("remediations") / f"{self.target_id}.yaml"

    def parameters_for(self, resource_id: str) -> dict[str, Any]:
        """The runbook parameters AWS Config passes for ``resource_id`` (static values as lists; the runner
        types them by the runbook's declaration, as SSM does)."""
        values: dict[str, Any] = {k: list(v) for k, v in self.static_parameters.items()}
        values[self.resource_parameter] = resource_id
        return values

    @classmethod
    def parse(cls, raw: Any, path: Path, rule: str, types: tuple[str, ...]) -> RemediationSpec:
        where = f"{path}: Remediation"
        if not isinstance(raw, dict):
            raise CatalogError(f"{where} must be an object")
        if raw.get("TargetType") != "SSM_DOCUMENT":
            raise CatalogError(f"{where}.TargetType must be SSM_DOCUMENT")
        target = raw.get("TargetId")
        if not isinstance(target, str) or not DOCUMENT_NAME.fullmatch(target):
            raise CatalogError(f"{where}.TargetId must be an SSM document name not starting with AWS/Amazon")
        if raw.get("ConfigRuleName") != rule:
            raise CatalogError(f"{where}.ConfigRuleName must be {rule}")
        resource_type = raw.get("ResourceType")
        if resource_type not in types:
            raise CatalogError(f"{where}.ResourceType must be one of the rule's types {types}")
        automatic = raw.get("Automatic", False)
        attempts = raw.get("MaximumAutomaticAttempts", 5)
        retry = raw.get("RetryAttemptSeconds", 60)
        if not isinstance(automatic, bool):
            raise CatalogError(f"{where}.Automatic must be a boolean")
        # PutRemediationConfigurations: MaximumAutomaticAttempts 1-25, RetryAttemptSeconds 1-2678000.
        if not isinstance(attempts, int) or not 1 <= attempts <= 25:
            raise CatalogError(f"{where}.MaximumAutomaticAttempts must be an integer from 1 to 25")
        if not isinstance(retry, int) or not 1 <= retry <= 2678000:
            raise CatalogError(f"{where}.RetryAttemptSeconds must be an integer from 1 to 2678000")
        bindings = raw.get("Parameters")
        if not isinstance(bindings, dict) or not bindings:
            raise CatalogError(f"{where}.Parameters must bind the runbook's inputs")
        resource_params: list[str] = []
        static: dict[str, list[str]] = {}
        for name, binding in bindings.items():
            if not isinstance(binding, dict) or len(binding) != 1:
                raise CatalogError(
                    f"{where}.Parameters.{name} needs exactly one of ResourceValue, StaticValue"
                )
            if "ResourceValue" in binding:
                if binding["ResourceValue"] != {"Value": "RESOURCE_ID"}:
                    raise CatalogError(
                        f"{where}.Parameters.{name}.ResourceValue must be {{Value: RESOURCE_ID}}"
                    )
                resource_params.append(name)
            elif "StaticValue" in binding:
                values = (
                    binding["StaticValue"].get("Values") if isinstance(binding["StaticValue"], dict) else None
                )
                if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
                    raise CatalogError(
                        f"{where}.Parameters.{name}.StaticValue.Values must be a list of strings"
                    )
                static[name] = values
            else:
                raise CatalogError(f"{where}.Parameters.{name} needs ResourceValue or StaticValue")
        if len(resource_params) != 1:
            raise CatalogError(f"{where}.Parameters must bind exactly one input to RESOURCE_ID")
        return cls(target, resource_type, automatic, attempts, retry, resource_params[0], static)


@dataclass(frozen=True)
class RuleSpec:
    """One rule's metadata, as ``parameters.json`` declares it (RDK format)."""

    name: str
    directory: Path
    description: str
    source_runtime: str
    resource_types: tuple[str, ...]
    periodic: str | None
    input_parameters: dict[str, str]
    optional_parameters: dict[str, str]
    remediation: RemediationSpec | None
    raw: dict[str, Any]

    @property
    def module_path(self) -> Path:
        return self.directory / f"{self.name}.py"

    @property
    def parameter_names(self) -> set[str]:
        return set(self.input_parameters) | set(self.optional_parameters)

    def load_module(self) -> ModuleType:
        return load_rule_module(self.name, self.module_path)

    def rule_class(self) -> type[GuardrailRule[Any]]:
        cls = getattr(self.load_module(), self.name, None)
        if not (isinstance(cls, type) and issubclass(cls, GuardrailRule)):
            raise CatalogError(f"{self.module_path}: no GuardrailRule subclass named {self.name}")
        return cls

    @classmethod
    def load(cls, path: Path) -> RuleSpec:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CatalogError(f"{path}: cannot read: {exc}") from exc
        params = doc.get("Parameters")
        if not isinstance(params, dict):
            raise CatalogError(f"{path}: no Parameters object")
        name = params.get("RuleName")
        if not isinstance(name, str) or not RULE_NAME.fullmatch(name):
            raise CatalogError(f"{path}: RuleName must be UPPER_SNAKE_CASE, got {name!r}")
        if name != path.parent.name:
            raise CatalogError(f"{path}: RuleName {name} differs from its folder {path.parent.name}")
        runtime = params.get("SourceRuntime")
        if runtime != RUNTIME:
            raise CatalogError(f"{path}: SourceRuntime must be {RUNTIME}, got {runtime!r}")
        events = params.get("SourceEvents", "")
        if not isinstance(events, str):
            raise CatalogError(f"{path}: SourceEvents must be a comma-separated string")
        types = tuple(t.strip() for t in events.split(",") if t.strip())
        periodic = params.get("SourcePeriodic")
        if periodic is not None and periodic not in PERIODS:
            raise CatalogError(
                f"{path}: SourcePeriodic must be one of {', '.join(PERIODS)}, got {periodic!r}"
            )
        if not types and periodic is None:
            raise CatalogError(f"{path}: a rule needs SourceEvents or SourcePeriodic")

        def _params(key: str) -> dict[str, str]:
            value = params.get(key, "{}")
            try:
                decoded = json.loads(value) if isinstance(value, str) else value
            except ValueError as exc:
                raise CatalogError(f"{path}: {key} is not a JSON object string: {exc}") from exc
            if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
                raise CatalogError(f"{path}: {key} must map parameter names to string values")
            return decoded

        inputs, optional = _params("InputParameters"), _params("OptionalParameters")
        both = set(inputs) & set(optional)
        if both:
            raise CatalogError(f"{path}: {sorted(both)} both in InputParameters and OptionalParameters")
        remediation = params.get("Remediation")
        if remediation is not None:
            # A periodic-only rule (no SourceEvents) reports on the account: AWS::::Account.
            remediation = RemediationSpec.parse(remediation, path, name, types or (ACCOUNT_RESOURCE_TYPE,))
        return cls(
            name=name,
            directory=path.parent,
            description=str(params.get("Description", "")),
            source_runtime=runtime,
            resource_types=types,
            periodic=periodic,
            input_parameters=inputs,
            optional_parameters=optional,
            remediation=remediation,
            raw=doc,
        )


def data_dir(kind: str) -> Path:
    """Where ``rules`` or ``remediations`` live: ``ML_GUARDRAILS_<KIND>_DIR``, the copy packaged in the
    wheel, else this source checkout."""
    override = os.environ.get(f"ML_GUARDRAILS_{kind.upper()}_DIR")
    if override:
        return Path(override)
    packaged = Path(__file__).parent / "_data" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / kind


def load_rule_module(name: str, path: Path) -> ModuleType:
    """Import a rule module by path under its own name (rule module names are unique by design, and
    ``rdk test-local`` imports them under the same names)."""
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == path.resolve():
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CatalogError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@cache
def discover(rules_dir: Path | None = None) -> tuple[RuleSpec, ...]:
    """Every rule under ``rules_dir`` (default :func:`data_dir`), sorted by name."""
    root = rules_dir or data_dir("rules")
    specs = [RuleSpec.load(p) for p in sorted(root.glob("*/parameters.json"))]
    if not specs:
        raise CatalogError(f"no rules found under {root}")
    return tuple(specs)


def get(name: str, rules_dir: Path | None = None) -> RuleSpec:
    """One rule by name, loading only its own folder (a broken neighbour does not hide it)."""
    root = rules_dir or data_dir("rules")
    path = root / name / "parameters.json"
    if not RULE_NAME.fullmatch(name) or not path.is_file():
        known = sorted(p.parent.name for p in root.glob("*/parameters.json"))
        raise CatalogError(f"unknown rule {name}; known: {', '.join(known)}")
    return RuleSpec.load(path)
