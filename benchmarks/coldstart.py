"""Cold start: importing a rule's handler module against importing boto3 alone, in fresh interpreters.

Each sample is a new ``python`` process that times one import statement with ``perf_counter`` (the
interpreter's own start-up is the same for both and excluded). Samples alternate (boto3, rule 1, ...,
rule n, boto3, ...) so load on the machine hits every subject alike; the figure is the ratio of medians.

Bytecode: the benchmark gives the subprocesses a private ``PYTHONPYCACHEPREFIX`` and one warm-up import
each, so modules load from compiled bytecode as they do from an installed wheel or a layer built with
bytecode (this environment sets PYTHONDONTWRITEBYTECODE, which would otherwise make every sample compile
the project's sources while boto3's bytecode comes from site-packages: an unfair comparison).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"

_TIMER = "import sys, time\n{setup}t = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)\n"


def _sample(module: str, path: Path | None, env: dict[str, str]) -> float:
    setup = f"sys.path.insert(0, {str(path)!r})\n" if path else ""
    code = _TIMER.format(setup=setup, module=module)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    )
    return float(out.stdout.strip().splitlines()[-1])


def measure(rules: list[str], samples: int = 7) -> dict[str, object]:
    """Median import seconds of boto3 and of each rule module, and each rule's ratio to boto3."""
    with tempfile.TemporaryDirectory(prefix="ml-guardrails-pyc-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        subjects: list[tuple[str, str, Path | None]] = [("boto3", "boto3", None)]
        subjects += [(rule, rule, RULES / rule) for rule in rules]
        for _, module, path in subjects:  # warm-up: compile once into the private cache
            _sample(module, path, env)
        times: dict[str, list[float]] = {name: [] for name, _, _ in subjects}
        for _ in range(samples):
            for name, module, path in subjects:
                times[name].append(_sample(module, path, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["boto3"]
    return {
        "samples": samples,
        "boto3_ms": round(base * 1000, 1),
        "rules": {
            rule: {"ms": round(medians[rule] * 1000, 1), "ratio": round(medians[rule] / base, 3)}
            for rule in rules
        },
    }
