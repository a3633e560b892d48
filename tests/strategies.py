"""Hypothesis strategies and profiles for the fuzz tests (``test_fuzz_rules.py``,
``test_fuzz_parameters.py``).

Profiles, chosen with the environment variable ``HYPOTHESIS_PROFILE``:

* ``ci`` (default): a few dozen examples per test, derandomized (the same examples on every run, so the
  default suite never flakes on a newly found input), no deadline (moto calls vary in time);
* ``deep``: 10,000 examples per test, random (each run explores new inputs), for ``make fuzz-deep``;
* ``dev``: 300 random examples, for a quick local look.

``HYPOTHESIS_PROFILE=deep .venv/bin/pytest tests/test_fuzz_rules.py tests/test_fuzz_parameters.py
--hypothesis-show-statistics`` also prints the outcome counts each test records with ``hypothesis.event``.

What is generated: JSON values only (what a Lambda event can carry), including lone surrogates
(``json.dumps`` escapes them, ``json.loads`` gives them back), huge strings and lists, deep nesting (up to
a depth ``json``/``copy.deepcopy`` handle comfortably), wrong types and unknown enumeration values, and
mutations of real configuration items (delete, null, wrong type, unknown value, JSON-encoded, garbage
JSON, huge, unicode, key case changed).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ml_guardrails.params import (
    BoolParameter,
    ChoiceParameter,
    CsvParameter,
    IntParameter,
    Parameter,
    StringParameter,
)

# ------------------------------------------------------------------------------------------------ profiles
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, suppress_health_check=_QUIET, print_blob=True
)
settings.register_profile(
    "dev", max_examples=300, deadline=None, suppress_health_check=_QUIET, print_blob=True
)
settings.register_profile(
    "deep", max_examples=10_000, deadline=None, suppress_health_check=_QUIET, print_blob=True
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def scaled(fraction: float, floor: int = 20) -> settings:
    """The loaded profile with ``fraction`` of its examples (at least ``floor``, at most the profile's):
    secondary tests get fewer examples than each rule's main fuzz test, which gets the full count."""
    current = settings.default
    assert current is not None, "a hypothesis profile is loaded at import"
    full = current.max_examples
    return settings(max_examples=min(full, max(floor, int(full * fraction))))


# ------------------------------------------------------------------------------------------ statistics
# Hypothesis' own statistics cover only tests decorated with @given directly; the fuzz tests run an inner
# @given function inside one moto context, so they count examples and outcomes here. With FUZZ_STATS set
# to a file, each test appends one JSON line: {"test", "profile", "examples", "outcomes"}.
TALLY: Counter[str] = Counter()


def tally(label: str | None = None) -> None:
    """Count one example (``label`` None) or one outcome label."""
    TALLY["examples" if label is None else f"outcome: {label}"] += 1


@pytest.fixture(autouse=True)
def fuzz_stats(request: pytest.FixtureRequest) -> Iterator[None]:
    """Autouse in the modules that import it: writes each test's counts to $FUZZ_STATS."""
    TALLY.clear()
    yield
    target = os.environ.get("FUZZ_STATS")
    if target and TALLY:
        outcomes = {k.removeprefix("outcome: "): v for k, v in sorted(TALLY.items()) if k != "examples"}
        line = {
            "test": request.node.nodeid,
            "profile": PROFILE,
            "examples": TALLY["examples"],
            "outcomes": outcomes,
        }
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    TALLY.clear()


# ----------------------------------------------------------------------------------------- JSON values
Path = tuple[str | int, ...]

# Lone surrogates are legal in JSON text ("\ud800") and come back from json.loads as such.
SURROGATES = ("\ud800", "a\udfffb", "\udc80\udc80", "x\ud83d")  # the last one: half an emoji
ODD_TEXT = (
    "",
    " ",
    "\x00",
    "\n",
    "null",
    "None",
    "true",
    "[]",
    "{}",
    "\u202e\u0645\u0631\u062d\u0628\u0627",  # right-to-left override + Arabic
    "\U0001f600\u200d\U0001f525",  # emoji, zero-width joiner
    "e\u0301",  # combining accent
    "\ufeffBOM",
    "ﬁ",  # a ligature whose upper case is two characters
    *SURROGATES,
)


def unicode_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text over all of Unicode, surrogates included, plus a few known troublemakers."""
    anything = st.text(st.characters(codec=None, exclude_categories=()), max_size=max_size)
    return st.one_of(st.sampled_from(ODD_TEXT), anything)


json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    unicode_text(),
)


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    return st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(unicode_text(12), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def nested(depth: int, leaf: Any = "x") -> Any:
    """A value nested ``depth`` levels deep, alternating lists and objects."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def huge_values() -> st.SearchStrategy[Any]:
    """Long strings (to 200 kB), long lists, many keys, and nesting to depth 200."""
    return st.one_of(
        st.integers(1_000, 200_000).map(lambda n: "A" * n),
        st.integers(300, 5_000).map(lambda n: "\u00e9\U0001f600" * n),
        st.integers(1_000, 20_000).map(lambda n: ["x"] * n),
        st.integers(500, 5_000).map(lambda n: {f"k{i}": i for i in range(n)}),
        st.integers(20, 200).map(nested),
        st.just(10**400 // 10**390),  # a big but finite integer
        st.just(1e308),
        st.just(-(2**70)),
    )


GARBAGE_JSON = (
    "{",
    "[",
    "{oops",
    '{"a":}',
    "[1,",
    '{"rules": [',
    "{'single': 'quotes'}",
    '{"a": NaN}',
    "[" * 50,
    "{}}",
)


def garbage_json_strings() -> st.SearchStrategy[str]:
    """Strings that start like a JSON document but are not one (decode_json must reject them)."""
    return st.one_of(
        st.sampled_from(GARBAGE_JSON),
        st.tuples(st.sampled_from("{["), unicode_text(20)).map("".join).filter(_not_json),
    )


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "number": st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False)),
    "string": unicode_text(),
    "list": st.lists(json_scalars, max_size=3),
    "object": st.dictionaries(unicode_text(8), json_scalars, max_size=3),
}


def wrong_type(original: Any, *, also_not: Iterable[str] = ()) -> st.SearchStrategy[Any]:
    """A non-null JSON value of another type than ``original`` (and none of ``also_not``)."""
    excluded = {json_type(original), *also_not}
    return st.one_of([s for name, s in _BY_TYPE.items() if name not in excluded])


def unknown_string(
    valid: Iterable[str], normalise: Callable[[str], str] = str.strip
) -> st.SearchStrategy[str]:
    """Strings that are not among ``valid`` after ``normalise`` (the leniency the reader documents), and
    are not empty after it: near misses (case, punctuation, lookalikes) first, then any text."""
    valid_set = set(valid)
    near = sorted(
        {
            variant
            for v in valid_set
            for variant in (
                v.lower(),
                v.upper(),
                v.swapcase(),
                v + "_V2",
                v[:-1],
                v.replace("_", "-"),
                v.replace("S", "\u0405"),  # Cyrillic lookalike
                "\u200b" + v,  # zero-width space: not stripped by str.strip()
            )
        }
    )
    candidates = st.one_of(st.sampled_from(near or ["?"]), unicode_text(30))
    return candidates.filter(lambda s: bool(normalise(s)) and normalise(s) not in valid_set)


def bool_normalise(text: str) -> str:
    return text.strip().lower()


BOOL_STRINGS = ("true", "false")


# ------------------------------------------------------------------------------------ tree mutation
MISSING = object()


def get_path(tree: Any, path: Path) -> Any:
    node = tree
    for step in path:
        if not _has(node, step):
            return MISSING
        node = node[step]
    return node


def _has(node: Any, step: str | int) -> bool:
    if isinstance(node, Mapping):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def set_path(tree: Any, path: Path, value: Any) -> bool:
    """Set ``path`` in ``tree`` (creating the last key of an existing object). False when impossible."""
    parent = get_path(tree, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        parent[last] = value
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        parent[last] = value
        return True
    return False


def delete_path(tree: Any, path: Path) -> bool:
    parent = get_path(tree, path[:-1])
    last = path[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]
        return True
    return False


def rename_key(tree: Any, path: Path, new: str) -> bool:
    parent = get_path(tree, path[:-1])
    last = path[-1]
    if isinstance(parent, dict) and last in parent and new not in parent:
        parent[new] = parent.pop(last)
        return True
    return False


def all_paths(tree: Any, limit_depth: int = 6) -> list[Path]:
    """Every key/index path of ``tree`` (objects and lists), to ``limit_depth`` levels."""
    out: list[Path] = []

    def walk(node: Any, prefix: Path) -> None:
        if len(prefix) >= limit_depth:
            return
        if isinstance(node, Mapping):
            for key in node:
                out.append((*prefix, key))
                walk(node[key], (*prefix, key))
        elif isinstance(node, list):
            for index, item in enumerate(node[:5]):
                out.append((*prefix, index))
                walk(item, (*prefix, index))

    walk(tree, ())
    return out


@dataclass(frozen=True)
class Mutation:
    path: Path
    kind: str
    value: Any = None

    def __str__(self) -> str:
        shown = repr(self.value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        where = ".".join(str(p) for p in self.path) or "<root>"
        return f"{self.kind} {where}" + ("" if self.kind in ("delete",) else f" = {shown}")


MUTATION_KINDS = (
    "delete",
    "null",
    "wrong_type",
    "unknown",
    "jsonify",
    "garbage_json",
    "huge",
    "unicode",
    "recase_key",
)


def apply(tree: Any, mutation: Mutation) -> bool:
    """Apply one mutation in place; False when it does not apply to this tree (e.g. the path is gone)."""
    path, kind = mutation.path, mutation.kind
    if not path:
        return False
    if kind == "delete":
        return delete_path(tree, path)
    if kind == "recase_key":
        return isinstance(path[-1], str) and rename_key(tree, path, str(mutation.value))
    if kind == "jsonify":
        current = get_path(tree, path)
        if current is MISSING:
            return False
        return set_path(tree, path, json.dumps(current))
    return set_path(tree, path, mutation.value)


@st.composite
def mutation_for(draw: st.DrawFn, tree: Any, path: Path, kinds: Iterable[str] = MUTATION_KINDS) -> Mutation:
    """One mutation of ``path`` (which may be absent from ``tree``: then it is set)."""
    current = get_path(tree, path)
    original = None if current is MISSING else current
    kind = draw(st.sampled_from(tuple(kinds)))
    if kind in ("delete", "jsonify"):
        return Mutation(path, kind)
    if kind == "null":
        return Mutation(path, "null", None)
    if kind == "wrong_type":
        return Mutation(path, kind, draw(wrong_type(original, also_not=("null",))))
    if kind == "unknown":
        valid = [original] if isinstance(original, str) else []
        return Mutation(path, kind, draw(unknown_string(valid)))
    if kind == "garbage_json":
        return Mutation(path, kind, draw(garbage_json_strings()))
    if kind == "huge":
        return Mutation(path, kind, draw(huge_values()))
    if kind == "unicode":
        return Mutation(path, kind, draw(unicode_text(60)))
    if kind == "recase_key":
        last = str(path[-1])
        new = draw(
            st.sampled_from([last.upper(), last.lower(), last.swapcase(), last[:1].upper() + last[1:]])
        )
        return Mutation(path, kind, new)
    raise AssertionError(kind)


@st.composite
def mutated(
    draw: st.DrawFn,
    base: Mapping[str, Any],
    focus: Iterable[Path] = (),
    max_mutations: int = 4,
    min_depth: int = 1,
) -> tuple[dict[str, Any], tuple[Mutation, ...]]:
    """A deep copy of ``base`` with 0..``max_mutations`` mutations; half of them aim at ``focus`` paths
    (the fields a decision needs), the rest at any path of the item at least ``min_depth`` deep.
    Returns (item, applied mutations)."""
    tree: dict[str, Any] = copy.deepcopy(dict(base))
    focus = tuple(focus)
    applied: list[Mutation] = []
    for _ in range(draw(st.integers(0, max_mutations))):
        candidates = [p for p in all_paths(tree) if len(p) >= min_depth]
        use_focus = bool(focus) and draw(st.booleans())
        pool: st.SearchStrategy[Path] | None = st.sampled_from(focus) if use_focus else None
        if pool is None:
            if not candidates:
                continue
            pool = st.sampled_from(candidates)
        path = draw(pool)
        mutation = draw(mutation_for(tree, path))
        if apply(tree, mutation):
            applied.append(mutation)
    return tree, tuple(applied)


def describe(mutations: Iterable[Mutation]) -> str:
    return "; ".join(str(m) for m in mutations) or "(no mutation)"


# ---------------------------------------------------------------------------------------- parameters
def _strip_lookarounds(pattern: str) -> str:
    return re.sub(r"\(\?<?[!=][^()]*\)", "", pattern)


def matching(pattern: str) -> st.SearchStrategy[str]:
    """Strings fully matching ``pattern``. Lookarounds (which hypothesis cannot generate from) are
    dropped for generation and enforced by a filter."""
    compiled = re.compile(pattern)
    try:
        base = st.from_regex(pattern, fullmatch=True)
    except Exception:  # hypothesis rejects some constructs: generate without them, then filter
        base = st.from_regex(_strip_lookarounds(pattern), fullmatch=True)
    return base.filter(lambda s: compiled.fullmatch(s) is not None)


def _padded(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The value with optional surrounding spaces (Config values are stripped before checking)."""
    return st.tuples(st.sampled_from(["", " ", "  "]), text, st.sampled_from(["", " "])).map("".join)


def valid_value(spec: Parameter) -> st.SearchStrategy[Any]:
    """Values the parameter must accept: Config's strings, and the CLI's JSON booleans and numbers."""
    if isinstance(spec, BoolParameter):
        words = st.sampled_from(["true", "false", "True", "FALSE", "tRuE"])
        return st.one_of(st.booleans(), _padded(words))
    if isinstance(spec, IntParameter):
        number = st.integers(spec.minimum, spec.maximum)
        return st.one_of(
            number, _padded(number.map(str)), number.map(lambda n: f"+{n}" if n >= 0 else str(n))
        )
    if isinstance(spec, ChoiceParameter):
        return _padded(st.sampled_from(spec.choices))
    if isinstance(spec, CsvParameter):
        item = st.sampled_from(spec.choices) if spec.choices else matching(spec.pattern)
        items = st.lists(item, min_size=1, max_size=5)
        return st.one_of(
            items.map(",".join),
            items.map(", ".join),
            items,  # the CLI's parameter file may hold a JSON list
        )
    if isinstance(spec, StringParameter):
        return matching(spec.pattern).filter(lambda s: s.strip() == s and s != "")
    raise TypeError(f"no strategy for {type(spec).__name__}")


def _non_string() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(json_scalars, min_size=0, max_size=3),
        st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
    )


def _not_blank(s: str) -> bool:
    """A blank value (empty or whitespace only) means "not set": the default applies, nothing is wrong."""
    return bool(s.strip())


def invalid_value(spec: Parameter) -> st.SearchStrategy[Any]:
    """Values the parameter must reject with InvalidParametersError naming it."""
    huge = st.integers(300, 100_000).map(lambda n: "x" * n)
    if isinstance(spec, BoolParameter):
        return st.one_of(
            unknown_string(BOOL_STRINGS, bool_normalise),
            st.sampled_from(["yes", "no", "1", "0", "on", "t", "truee", "true,false", "\u0074rue\u200b"]),
            st.integers(),
            _non_string(),
            huge,
        )
    if isinstance(spec, IntParameter):
        out_of_range = st.one_of(
            st.integers(max_value=spec.minimum - 1), st.integers(min_value=spec.maximum + 1)
        )
        ascii_digits = re.compile(r"[+-]?[0-9]+")
        return st.one_of(
            out_of_range,
            out_of_range.map(str),
            st.sampled_from(["abc", "1e3", "0x10", "365.0", "365 days", "3 65", "--365", "", "NaN"]),
            unicode_text(20).filter(lambda s: ascii_digits.fullmatch(s.strip()) is None),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
            st.lists(st.integers(spec.minimum, spec.maximum), min_size=1, max_size=2),
            huge,
        ).filter(lambda v: not isinstance(v, str) or _not_blank(v))
    if isinstance(spec, ChoiceParameter):
        return st.one_of(unknown_string(spec.choices), st.booleans(), _non_string(), huge)
    if isinstance(spec, CsvParameter):
        good = st.sampled_from(spec.choices) if spec.choices else matching(spec.pattern)
        if spec.choices:
            bad = unknown_string(spec.choices)
        else:
            compiled = re.compile(spec.pattern)
            bad = st.one_of(malformed_like(spec.pattern), unicode_text(40), huge).filter(
                lambda s: _not_blank(s) and "," not in s and compiled.fullmatch(s.strip()) is None
            )
        return st.one_of(
            # one bad item among good ones
            st.tuples(st.lists(good, max_size=2), bad, st.lists(good, max_size=2)).map(
                lambda t: ",".join([*t[0], t[1], *t[2]])
            ),
            # an empty item
            st.lists(good, min_size=1, max_size=3).map(lambda items: ",".join([*items, ""])),
            st.lists(good, min_size=1, max_size=3).map(lambda items: ",," + ",".join(items)),
            st.just(","),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.dictionaries(st.text(max_size=5), json_scalars, min_size=1, max_size=3),
            st.lists(st.one_of(st.integers(), st.none(), st.booleans()), min_size=1, max_size=3),
        )
    if isinstance(spec, StringParameter):
        compiled = re.compile(spec.pattern)
        return st.one_of(
            unicode_text(40).filter(lambda s: _not_blank(s) and compiled.fullmatch(s.strip()) is None),
            st.builds(lambda s: "aws:" + s, st.text(min_size=1, max_size=10)).filter(
                lambda s: compiled.fullmatch(s.strip()) is None
            ),
            st.integers(129, 5_000).map(lambda n: "k" * n),
            st.booleans(),
            _non_string(),
        )
    raise TypeError(f"no strategy for {type(spec).__name__}")


KMS_KEY_ARN_NEAR_MISSES = (
    "arn:aws:kms:us-east-1:123456789012:alias/ml",  # an alias ARN, not a key ARN
    "arn:aws:kms:us-east-1:12345678901:key/1234abcd-12ab-34cd-56ef-1234567890ab",  # 11-digit account
    "arn:aws:kms:us-east-1:123456789012:key/1234ABCD-12AB-34CD-56EF-1234567890AB",  # upper-case id
    "arn:aws:kms:us-east-1:123456789012:key/mrk-1234",  # short multi-Region id
    "arn:aws:kms::123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",  # no region
    "arn:aws:s3:::bucket",
    "1234abcd-12ab-34cd-56ef-1234567890ab",  # a bare key id
    "alias/aws/s3",
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab/extra",
    "arn:aws:kms:US-EAST-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "subnet-XYZ",
    "subnet-0123",
    "sg-0123abcd",
    "igw-0123abcd",
    "nat-0123456789abcdef0",
    "eigw-0123abcd",
    "tgw-0123abc",
    "arn:aws:networkmanager::123456789012:core-network/core-network-0123",
)


def malformed_like(pattern: str) -> st.SearchStrategy[str]:
    """Near misses for ARN/id patterns: truncated, mis-cased, with a character replaced, plus known
    malformed ARNs and ids."""
    compiled = re.compile(pattern)
    valid = matching(pattern)

    def mangle(text: str, at: int, char: str) -> str:
        index = at % max(len(text), 1)
        return text[:index] + char + text[index + 1 :]

    mangled = st.builds(mangle, valid, st.integers(0, 200), st.sampled_from(list(":/_ Z!é\u0000-")))
    return st.one_of(
        st.sampled_from(KMS_KEY_ARN_NEAR_MISSES),
        valid.map(lambda s: s[: len(s) // 2]),
        valid.map(str.upper),
        mangled,
    ).filter(lambda s: compiled.fullmatch(s.strip()) is None)


def unknown_parameter_names(known: Iterable[str]) -> st.SearchStrategy[str]:
    """Names that are no parameter of the rule: typos and other cases of real names, and any text."""
    known_set = set(known)
    typos = sorted(
        {v for name in known_set for v in (name.lower(), name.upper(), name + "s", name[:-1], " " + name)}
        - known_set
    )
    return st.one_of(st.sampled_from(typos or ["x"]), unicode_text(30)).filter(lambda n: n not in known_set)


def iter_specs(specs: Iterable[Parameter]) -> Iterator[tuple[str, Parameter]]:
    for spec in specs:
        yield spec.name, spec
