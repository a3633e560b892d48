"""IAM wildcard matching (``*`` and ``?``), shared by the policy grammar and the S3 bucket view.

A module of its own so that a rule that only matches wildcards (S3_BUCKET_SSE_KMS_ENFORCED) does not pay for
importing the policy grammar's classes at a Lambda cold start (``make bench``).
"""

from __future__ import annotations

import re

__all__ = ["glob_covers_prefix", "glob_match", "has_wildcard"]


def _glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: ``*`` any run of characters, ``?`` one character, nothing else special."""
    flags = re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
    return re.fullmatch(_glob_regex(pattern), value, flags) is not None


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def glob_covers_prefix(pattern: str, prefix: str) -> bool:
    """True when ``pattern`` matches *every* string ``prefix + k`` with ``k`` non-empty (case-sensitive,
    as IAM matches resource ARNs): e.g. ``arn:aws:s3:::b/*``, ``arn:aws:s3:::*`` or ``*`` cover every
    object of bucket ``b`` (prefix ``arn:aws:s3:::b/``), ``arn:aws:s3:::b/data/*`` does not.

    Runs the pattern's automaton over the prefix, then asks whether a reached state accepts any
    non-empty rest: the remaining pattern is wildcards only, with a ``*`` and at most one ``?``.
    (Object keys are at least one character long, so ``b/?*`` covers the bucket.)
    """

    def closure(states: set[int]) -> set[int]:
        todo, seen = list(states), set(states)
        while todo:
            i = todo.pop()
            if i < len(pattern) and pattern[i] == "*" and i + 1 not in seen:
                seen.add(i + 1)
                todo.append(i + 1)
        return seen

    states = closure({0})
    for char in prefix:
        step: set[int] = set()
        for i in states:
            if i < len(pattern):
                if pattern[i] == "*":
                    step.add(i)
                elif pattern[i] == "?" or pattern[i] == char:
                    step.add(i + 1)
        states = closure(step)
        if not states:
            return False

    def accepts_any_nonempty(rest: str) -> bool:
        return set(rest) <= {"*", "?"} and "*" in rest and rest.count("?") <= 1

    return any(accepts_any_nonempty(pattern[i:]) for i in states)


# ---------------------------------------------------------------------------------------- principals
