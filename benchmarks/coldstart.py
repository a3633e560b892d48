"""Cold start: importing a rule's handler module against importing boto3 alone, in Lambda's layout.

**What is imported, from where.** The layer is built as ``sam build`` builds it (the Makefile's
``build-GuardrailsLayer``: ``pip install --no-compile --target python/ .``, then ``compileall
--invalidation-mode unchecked-hash``) with the Lambda runtime's Python, 3.12 (``template.yaml``:
``Runtime: python3.12``). The handler module is the rule's source file, as ``sam build`` copies it to
``/var/task``: it is compiled at every import, because Lambda cannot write bytecode there. Each sample is a
fresh interpreter (``-I``, ``PYTHONDONTWRITEBYTECODE``) whose ``sys.path`` starts as Lambda's does: the
function's directory, then the layer's ``python/``. boto3 is the layer's (it shadows the runtime's copy),
so "boto3 alone" and the handler load the same files.

**The figure: paired, per process.** A handler module imports boto3 (through rdklib) and then its own
modules. Each paired sample times ``import boto3`` and then ``import HANDLER`` in one process; the sample's
ratio is (boto3 + the rest) / boto3, and the figure is the median ratio. Process-to-process variation of
boto3's own import (±15% on a shared 2-CPU VM: 230-360 ms) cancels out of a ratio taken inside one
process; it does not cancel out of a ratio of medians of separate processes, which is printed beside it
as a cross-check (handler alone / boto3 alone, alternating processes). Both are CPU time
(``process_time``); wall time is kept in the raw figures.

**Why Python 3.12, not the dev venv's 3.11.** Under CPython 3.11 a nested import chain crossing a frame
data-stack chunk boundary makes the interpreter map and unmap a chunk on every call that crosses it: a
handler importing rdklib one level deeper than ``import boto3`` does makes urllib3's URL regexes compile
3-4x slower (``strace -c``: 782 mmap calls for ``import rdklib``, 3,328 for a module that imports rdklib;
``-X importtime``: ``urllib3.util.url`` 14 ms -> 50 ms). It is the interpreter, not the handler, and 3.12
(Lambda's runtime) does not do it. Without a python3.12 the benchmark measures with its own interpreter
and says so in the figure's name.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
LAMBDA_PYTHON = (3, 12)  # template.yaml: Runtime: python3.12

_PAIRED = (
    "import sys, time\nsys.path[:0] = [{task!r}, {layer!r}]\n"
    "c0, w0 = time.process_time(), time.perf_counter()\nimport boto3\n"
    "c1, w1 = time.process_time(), time.perf_counter()\nimport {module}\n"
    "c2, w2 = time.process_time(), time.perf_counter()\n"
    "print(c1 - c0, c2 - c0, w1 - w0, w2 - w0)\n"
)
_ALONE = (
    "import sys, time\nsys.path[:0] = [{task!r}, {layer!r}]\n"
    "c0, w0 = time.process_time(), time.perf_counter()\nimport {module}\n"
    "print(time.process_time() - c0, time.perf_counter() - w0)\n"
)


def _version(python: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:3])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return tuple(int(part) for part in out.stdout.split())


def lambda_python() -> tuple[str, str]:
    """(executable, version) of the Python to measure with: ``$LAMBDA_PYTHON``, ``python3.12`` on PATH,
    a pyenv 3.12, else this interpreter."""
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), "python3.12"]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        if root:
            candidates += sorted(str(p) for p in Path(root, "versions").glob("3.12*/bin/python3.12"))[::-1]
    for candidate in filter(None, candidates):
        version = _version(candidate)
        if version and version[:2] == LAMBDA_PYTHON:
            return candidate, ".".join(map(str, version))
    return sys.executable, ".".join(map(str, sys.version_info[:3]))


def build_layer(python: str, dest: Path) -> None:
    """The layer as the Makefile's ``build-GuardrailsLayer`` builds it for ``sam build``."""
    target = str(dest / "python")
    for command in (
        [python, "-m", "pip", "install", "--no-compile", "--quiet", "--target", target, "."],
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", target],
    ):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"building the layer failed: {' '.join(command)}\n{done.stderr[-2000:]}")


def _run(python: str, code: str) -> list[float]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    out = subprocess.run([python, "-I", "-c", code], env=env, check=True, capture_output=True, text=True)
    return [float(value) for value in out.stdout.strip().splitlines()[-1].split()]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def measure(rules: list[str], samples: int = 7) -> dict[str, object]:
    """Per rule: the median paired ratio (see the module's docstring), the handler's own median CPU
    milliseconds after boto3, and the cross-check ratio of medians of separate processes."""
    python, version = lambda_python()
    with tempfile.TemporaryDirectory(prefix="ml-guardrails-layer-") as work:
        started = time.perf_counter()
        build_layer(python, Path(work))
        built = time.perf_counter() - started
        layer = str(Path(work) / "python")
        fill = {"layer": layer}
        _run(python, _ALONE.format(task=str(RULES), module="boto3", **fill))  # warm the file cache
        paired: dict[str, list[list[float]]] = {rule: [] for rule in rules}
        alone: dict[str, list[list[float]]] = {rule: [] for rule in ["boto3", *rules]}
        for _ in range(samples):  # rounds: load on the machine hits every subject alike
            alone["boto3"].append(_run(python, _ALONE.format(task=str(RULES), module="boto3", **fill)))
            for rule in rules:
                task = str(RULES / rule)
                paired[rule].append(_run(python, _PAIRED.format(task=task, module=rule, **fill)))
                alone[rule].append(_run(python, _ALONE.format(task=task, module=rule, **fill)))

    boto3_cpu = statistics.median([s[0] for s in alone["boto3"]])
    figures: dict[str, object] = {
        "python": version,
        "executable": python,
        "lambda_runtime": version.startswith("3.12."),
        "layer_build_seconds": round(built, 1),
        "samples": samples,
        "boto3_ms": _ms(statistics.median([s[0] for rule in rules for s in paired[rule]])),
        "boto3_wall_ms": _ms(statistics.median([s[2] for rule in rules for s in paired[rule]])),
        "rules": {
            rule: {
                "ratio": round(statistics.median([s[1] / s[0] for s in paired[rule]]), 3),
                "wall_ratio": round(statistics.median([s[3] / s[2] for s in paired[rule]]), 3),
                "own_ms": _ms(statistics.median([s[1] - s[0] for s in paired[rule]])),
                "ms": _ms(statistics.median([s[1] for s in paired[rule]])),
                "separate_ratio": round(statistics.median([s[0] for s in alone[rule]]) / boto3_cpu, 3),
            }
            for rule in rules
        },
    }
    return figures
