"""Cold start: importing a rule's handler module against importing boto3 alone, in fresh interpreters.

Each sample is a new ``python`` process that times one import statement (the interpreter's own start-up
is the same for both and excluded), as CPU time of the process (``process_time``: what the import costs,
and steady on a machine shared with other work) and as wall time (``perf_counter``: shown, but other
processes' load moves it). Samples alternate (boto3, rule 1, ..., rule n, boto3, ...) so load hits every
subject alike; the figure is the ratio of median CPU times.

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

_TIMER = (
    "import sys, time\n{setup}c, t = time.process_time(), time.perf_counter()\nimport {module}\n"
    "print(time.process_time() - c, time.perf_counter() - t)\n"
)


def _sample(module: str, path: Path | None, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one import in a fresh interpreter."""
    setup = f"sys.path.insert(0, {str(path)!r})\n" if path else ""
    code = _TIMER.format(setup=setup, module=module)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    )
    cpu, wall = out.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def measure(rules: list[str], samples: int = 7) -> dict[str, object]:
    """Median import CPU (and wall) milliseconds of boto3 and of each rule module, and each rule's
    ratio of median CPU times to boto3's."""
    with tempfile.TemporaryDirectory(prefix="ml-guardrails-pyc-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        subjects: list[tuple[str, str, Path | None]] = [("boto3", "boto3", None)]
        subjects += [(rule, rule, RULES / rule) for rule in rules]
        for _, module, path in subjects:  # warm-up: compile once into the private cache
            _sample(module, path, env)
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in subjects}
        wall: dict[str, list[float]] = {name: [] for name, _, _ in subjects}
        for _ in range(samples):
            for name, module, path in subjects:
                c, w = _sample(module, path, env)
                cpu[name].append(c)
                wall[name].append(w)
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    med_wall = {name: statistics.median(values) for name, values in wall.items()}
    base = med_cpu["boto3"]
    return {
        "samples": samples,
        "boto3_ms": round(base * 1000, 1),
        "boto3_wall_ms": round(med_wall["boto3"] * 1000, 1),
        "rules": {
            rule: {
                "ms": round(med_cpu[rule] * 1000, 1),
                "wall_ms": round(med_wall[rule] * 1000, 1),
                "ratio": round(med_cpu[rule] / base, 3),
                "wall_ratio": round(med_wall[rule] / med_wall["boto3"], 3),
            }
            for rule in rules
        },
    }
