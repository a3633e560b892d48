"""pytest plugin: record every AWS API call each rule and each runbook makes while the suite runs them.

Loaded from ``tests/conftest.py`` (``pytest_plugins``). At load it

* wraps ``botocore.client.BaseClient._make_api_call`` -- every boto3 client call, whatever session built
  the client: rule clients, the runner's clients, and ``boto3.client()`` inside ``aws:executeScript``
  scripts (the runner points ``boto3.DEFAULT_SESSION`` at its session), paginators and waiters;
* sets the *actor* of the calls with a context variable, by wrapping
  ``GuardrailRule.evaluate_change`` / ``.run_sweep`` and ``engine.handle`` (actor ``rule:<RULE_NAME>``:
  the engine's own calls during ``handle`` -- PutEvaluations, GetResourceConfigHistory, AssumeRole --
  belong to the rule's function) and ``runbooks.runner.run_runbook`` (actor ``runbook:<document>``).

Calls made outside any actor (test setup, seeding moto) are not recorded. A runbook passed as a mapping
is named by comparing it with ``remediations/*.yaml``; an edited or synthetic document is recorded as
``runbook:?`` and ignored by the least-privilege test.

At session end the recording is written as JSON to ``.pytest_cache/d/ml-guardrails-iam/calls.json``
(``ML_GUARDRAILS_IAM_RECORD`` overrides the path). ``tests/test_least_privilege.py`` is moved to the end
of the run so that it sees everything the session recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.client
import pytest
import yaml

from tests.iam_action_map import facets as call_facets
from tests.iam_action_map import iam_actions

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN_RUNBOOK = "runbook:?"

_ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("ml_guardrails_iam_actor", default=None)


@dataclass(frozen=True, order=True)
class Call:
    actor: str
    service: str  # the signing name = the IAM prefix (logs, sagemaker, kms, ec2, config, s3, sts)
    operation: str
    facets: tuple[str, ...] = ()

    @property
    def actions(self) -> frozenset[str]:
        return iam_actions(self.service, self.operation, self.facets)


class Recording:
    """Calls (with counts) per actor."""

    def __init__(self) -> None:
        self.calls: Counter[Call] = Counter()

    def add(self, call: Call) -> None:
        self.calls[call] += 1

    def update(self, other: Recording) -> None:
        self.calls.update(other.calls)

    def actors(self) -> set[str]:
        return {c.actor for c in self.calls}

    def actions(self, actor: str) -> set[str]:
        return {a for c in self.calls if c.actor == actor for a in c.actions}

    def operations(self, actor: str) -> set[str]:
        return {f"{c.service}:{c.operation}" for c in self.calls if c.actor == actor}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for call, count in sorted(self.calls.items()):
            entry = out.setdefault(call.actor, {"calls": [], "actions": []})
            entry["calls"].append(
                {
                    "service": call.service,
                    "operation": call.operation,
                    "facets": list(call.facets),
                    "count": count,
                }
            )
        for actor, entry in out.items():
            entry["actions"] = sorted(self.actions(actor))
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recording:
        rec = cls()
        for actor, entry in data.items():
            for c in entry["calls"]:
                rec.calls[Call(actor, c["service"], c["operation"], tuple(c["facets"]))] += int(c["count"])
        return rec


SESSION = Recording()
_SINKS: list[Recording] = [SESSION]


@contextlib.contextmanager
def capture() -> Iterator[Recording]:
    """Also collect the calls made inside the block into a fresh :class:`Recording`."""
    rec = Recording()
    _SINKS.append(rec)
    try:
        yield rec
    finally:
        _SINKS.remove(rec)


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> str | None:
    return _ACTOR.get()


# ------------------------------------------------------------------------------------------- patches
_ORIGINALS: dict[str, Any] = {}


_LIBRARIES = tuple(
    {
        prefix + os.sep
        for module in (botocore, boto3)
        for prefix in (
            os.path.dirname(str(module.__file__)),
            str(Path(str(module.__file__)).resolve().parent),
        )
    }
    | {__file__, str(Path(__file__).resolve())}
)
_PROJECT_CODE = (str(ROOT / "src" / "ml_guardrails") + os.sep, str(ROOT / "rules") + os.sep)


def _made_by_project_code() -> bool:
    """True when the code that made the call (the first frame outside boto3/botocore) is ours: the
    engine, a rule module, the runner, or an aws:executeScript script (compiled as ``<Step script>``).
    A call made by a test's botocore hook during an invocation (e.g. deleting a resource between list
    and read) is test harness, not something the function or role does."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_LIBRARIES):
            if filename.startswith("<") and filename.endswith(" script>"):
                return True
            path = str(Path(filename).resolve())
            return path.startswith(_PROJECT_CODE) and not path.endswith("_test.py")
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _record(client: Any, operation_name: str, api_params: Any) -> None:
    actor = _ACTOR.get()
    if actor is None or not _made_by_project_code():
        return
    service = client.meta.service_model.signing_name
    params = api_params if isinstance(api_params, Mapping) else {}
    call = Call(actor, service, operation_name, call_facets(service, operation_name, params))
    for sink in _SINKS:
        sink.add(call)


def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
    _record(self, operation_name, api_params)
    return _ORIGINALS["_make_api_call"](self, operation_name, api_params)


def _rule_actor(rule: Any) -> str:
    return f"rule:{getattr(rule, 'RULE_NAME', type(rule).__name__)}"


def _wrap_method(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with acting_as(_rule_actor(self)):
            return original(self, *args, **kwargs)

    wrapper.__ml_guardrails_iam__ = True  # type: ignore[attr-defined]
    return wrapper


def _wrap_handle(original: Any) -> Any:
    @functools.wraps(original)
    def handle(rule: Any, *args: Any, **kwargs: Any) -> Any:
        with acting_as(_rule_actor(rule)):
            return original(rule, *args, **kwargs)

    handle.__ml_guardrails_iam__ = True  # type: ignore[attr-defined]
    return handle


@functools.cache
def _shipped_runbooks() -> tuple[tuple[str, Any], ...]:
    return tuple(
        (path.stem, yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted((ROOT / "remediations").glob("*.yaml"))
    )


def runbook_actor(doc_or_path: Any) -> str:
    """``runbook:<document name>`` for a shipped runbook given as a path or its exact content."""
    doc: Any = None
    if isinstance(doc_or_path, str) and "\n" not in doc_or_path and doc_or_path.endswith((".yaml", ".yml")):
        doc_or_path = Path(doc_or_path)
    if isinstance(doc_or_path, Path):
        shipped_path = ROOT / "remediations" / doc_or_path.name
        if doc_or_path.resolve() == shipped_path.resolve():
            return f"runbook:{doc_or_path.stem}"
        with contextlib.suppress(OSError, yaml.YAMLError):
            doc = yaml.safe_load(doc_or_path.read_text(encoding="utf-8"))
    elif isinstance(doc_or_path, str):
        with contextlib.suppress(yaml.YAMLError):
            doc = yaml.safe_load(doc_or_path)
    elif isinstance(doc_or_path, Mapping):
        doc = doc_or_path
    for name, shipped in _shipped_runbooks():
        if doc == shipped:
            return f"runbook:{name}"
    return UNKNOWN_RUNBOOK


def _wrap_run_runbook(original: Any) -> Any:
    @functools.wraps(original)
    def run_runbook(doc_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        with acting_as(runbook_actor(doc_or_path)):
            return original(doc_or_path, *args, **kwargs)

    run_runbook.__ml_guardrails_iam__ = True  # type: ignore[attr-defined]
    return run_runbook


def install() -> None:
    """Patch once (idempotent). Module attributes are rebound where the functions are re-exported, so
    ``from ml_guardrails.runbooks import run_runbook`` made later gets the wrapper too."""
    if _ORIGINALS:
        return
    from ml_guardrails import engine, runbooks
    from ml_guardrails.runbooks import cli as runbook_cli
    from ml_guardrails.runbooks import runner

    _ORIGINALS["_make_api_call"] = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009
    setattr(botocore.client.BaseClient, "_make_api_call", _make_api_call)  # noqa: B010
    for name in ("evaluate_change", "run_sweep"):
        _ORIGINALS[name] = getattr(engine.GuardrailRule, name)
        setattr(engine.GuardrailRule, name, _wrap_method(_ORIGINALS[name]))
    _ORIGINALS["handle"] = engine.handle
    engine.handle = _wrap_handle(engine.handle)
    _ORIGINALS["run_runbook"] = runner.run_runbook
    wrapped = _wrap_run_runbook(runner.run_runbook)
    for module in (runner, runbooks, runbook_cli):
        if getattr(module, "run_runbook", None) is _ORIGINALS["run_runbook"]:
            module.run_runbook = wrapped  # type: ignore[attr-defined]


def installed() -> bool:
    """True when every patch is in place (the least-privilege test checks this before trusting us)."""
    from ml_guardrails import engine, runbooks
    from ml_guardrails.runbooks import runner

    return (
        bool(_ORIGINALS)
        and all(
            getattr(f, "__ml_guardrails_iam__", False)
            for f in (
                engine.GuardrailRule.evaluate_change,
                engine.GuardrailRule.run_sweep,
                engine.handle,
                runner.run_runbook,
                runbooks.run_runbook,
            )
        )
        and getattr(botocore.client.BaseClient, "_make_api_call") is _make_api_call  # noqa: B009
    )


install()


# ------------------------------------------------------------------------------------------- hooks
def record_path(config: pytest.Config) -> Path:
    override = os.environ.get("ML_GUARDRAILS_IAM_RECORD")
    if override:
        return Path(override)
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("ml-guardrails-iam")) / "calls.json"
    return Path(tempfile.gettempdir()) / "ml-guardrails-iam-calls.json"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    """Run the least-privilege comparison last, after every other test has been recorded."""
    last = [
        i
        for i in items
        if getattr(i, "module", None) is not None and i.module.__name__.endswith("test_least_privilege")
    ]
    if last:
        items[:] = [i for i in items if i not in last] + last


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not SESSION.calls:
        return
    path = record_path(session.config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SESSION.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
