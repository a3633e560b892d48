"""The JSONPath subset SSM Automation selectors use: ``$``, ``.key``, ``['key']``, ``[n]``, ``[*]``.

Output ``Selector``s and ``PropertySelector``s in AWS's own runbooks stay inside this subset
(``$.KeyMetadata.KeyState``, ``$.Reservations[0].Instances[*].State.Name``, ``$.Payload.changed``).
Anything else (filters, slices, recursive descent ``..``, unions) is rejected with a
:class:`JsonPathError` naming the expression, rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["WILDCARD", "JsonPathError", "Path", "compile_path", "select"]


class JsonPathError(ValueError):
    """A selector outside the supported JSONPath subset."""


WILDCARD: object = object()

_NAME = re.compile(r"[A-Za-z_$][\w$-]*")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_STAR = re.compile(r"\[\s*\*\s*\]")


@dataclass(frozen=True)
class Path:
    """A compiled selector: a sequence of keys (str), indexes (int) and wildcards."""

    expression: str
    parts: tuple[object, ...]

    @property
    def is_definite(self) -> bool:
        """True when the path can select at most one value (no ``[*]``/``.*``)."""
        return all(part is not WILDCARD for part in self.parts)


def compile_path(expression: str) -> Path:
    """Parse ``expression``; raise :class:`JsonPathError` for anything outside the subset."""
    if not isinstance(expression, str):
        raise JsonPathError(f"JSONPath selector must be a string, got {type(expression).__name__}")
    text = expression.strip()
    if not text.startswith("$"):
        raise JsonPathError(f"JSONPath selector {expression!r} must start with '$'")
    pos = 1
    parts: list[object] = []
    while pos < len(text):
        if text.startswith("..", pos):
            raise JsonPathError(
                f"JSONPath selector {expression!r}: recursive descent '..' is not supported "
                "(supported: $, .key, ['key'], [n], [*])"
            )
        if text[pos] == ".":
            if text.startswith(".*", pos):
                parts.append(WILDCARD)
                pos += 2
                continue
            match = _NAME.match(text, pos + 1)
            if not match:
                raise JsonPathError(
                    f"JSONPath selector {expression!r}: expected a key name at offset {pos + 1}"
                )
            parts.append(match.group(0))
            pos = match.end()
            continue
        if text[pos] == "[":
            if m := _INDEX.match(text, pos):
                parts.append(int(m.group(1)))
                pos = m.end()
                continue
            if m := _STAR.match(text, pos):
                parts.append(WILDCARD)
                pos = m.end()
                continue
            if m := _QUOTED.match(text, pos):
                raw = m.group(1) if m.group(1) is not None else m.group(2)
                parts.append(re.sub(r"\\(.)", r"\1", raw))
                pos = m.end()
                continue
            raise JsonPathError(
                f"JSONPath selector {expression!r}: unsupported bracket expression at offset {pos} "
                "(supported: ['key'], [n], [*]; no filters, slices or unions)"
            )
        raise JsonPathError(f"JSONPath selector {expression!r}: unexpected {text[pos]!r} at offset {pos}")
    return Path(expression, tuple(parts))


def _step(values: list[Any], part: object) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if part is WILDCARD:
            if isinstance(value, list):
                out.extend(value)
            elif isinstance(value, dict):
                out.extend(value.values())
        elif isinstance(part, int):
            if isinstance(value, list) and -len(value) <= part < len(value):
                out.append(value[part])
        elif isinstance(value, dict) and part in value:
            out.append(value[part])
    return out


def select(data: Any, expression: str | Path) -> list[Any]:
    """All values ``expression`` selects from ``data`` (an empty list when nothing matches)."""
    path = compile_path(expression) if isinstance(expression, str) else expression
    values = [data]
    for part in path.parts:
        values = _step(values, part)
        if not values:
            break
    return values
