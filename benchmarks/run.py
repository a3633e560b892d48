"""``make bench``: the performance figures of issue 6, each printed with its target.

    .venv/bin/python -m benchmarks.run [--n 1000] [--n-small 100] [--bulk 10000] [--samples 7]

1. Cold start: importing each rule's handler module vs importing boto3, in Lambda's layout with python3.12
   (benchmarks/coldstart.py).
2. Starts its own moto_server on a free 127.0.0.1 port (benchmarks/server.py), seeded with N resources
   per rule in us-east-1, n-small per rule in us-west-2 and eu-west-1, and ``bulk`` buckets in
   ap-southeast-2; stops it by PID at the end.
3. API calls per change-triggered evaluation, per rule and case (Lambda handler, us-west-2 landscape).
4. Periodic sweeps through the Lambda handler, each in a child process: calls per resource at n-small
   and N, wall time and peak RSS at N, and the peak RSS of the ``bulk``-bucket S3 sweep.
5. CLI scale-out: ``ml-guardrails scan`` over us-west-2 + eu-west-1, ``--workers 1`` vs the default.

Prints a table (figure, value, target, met?) and writes it, with the raw figures, to
benchmarks/results.json. Call counts come from botocore's event system (benchmarks/calls.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULES = (
    "KMS_CMK_ROTATION_ENABLED",
    "S3_BUCKET_SSE_KMS_ENFORCED",
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET",
    "VPC_FLOW_LOGS_ENABLED",
)
SHORT = {
    "KMS_CMK_ROTATION_ENABLED": "KMS",
    "S3_BUCKET_SSE_KMS_ENFORCED": "S3",
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET": "SageMaker",
    "VPC_FLOW_LOGS_ENABLED": "VPC",
}
LARGE, SMALL, OTHER, BULK = "us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"
COLD_START_LIMIT = 1.15
BULK_RSS_LIMIT_MB = 256


@dataclass
class Row:
    figure: str
    value: str
    target: str
    met: bool | None  # None: informational, no target

    def as_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "value": self.value, "target": self.target, "met": self.met}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- the server
@contextmanager
def seeded_server(spec: list[list[Any]], timeout: float = 600.0) -> Iterator[str]:
    """The benchmark's moto_server, seeded per ``spec``; stopped by its PID."""
    from tests.moto_server import free_port, serving

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server", str(port), json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    with serving(process, f"http://127.0.0.1:{port}", timeout, "benchmark moto_server") as endpoint:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until seeded (or the process died)
        if line.strip() != "READY":
            raise RuntimeError(f"benchmark moto_server did not start (exit code {process.poll()})")
        yield endpoint


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "benchmark",
        "AWS_SECRET_ACCESS_KEY": "benchmark",  # moto accepts any; not a secret  # nosec B105
        "AWS_DEFAULT_REGION": LARGE,
        "AWS_REGION": LARGE,
    }


def child_sweep(rule: str, region: str, env: dict[str, str]) -> dict[str, Any]:
    """benchmarks/child.py: one timed sweep in a fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-m", "benchmarks.child", rule, region, out.name],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result: dict[str, Any] = json.loads(Path(out.name).read_text(encoding="utf-8"))
        return result


# --------------------------------------------------------------------------------- measurements
def cold_start_rows(samples: int) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks.coldstart import measure

    log(f"cold start: building the layer, then {samples} paired samples per handler module")
    from ml_guardrails.catalog import discover

    # Every rule of the catalog: the issue names the four core rules, the others are held to the same.
    figures: dict[str, Any] = measure(sorted({*RULES, *(spec.name for spec in discover())}), samples)
    where = f"Lambda layout, Python {figures['python']}"
    if not figures["lambda_runtime"]:
        where += ", NOT the Lambda runtime (no python3.12 found)"
    rows = [
        Row(
            f"cold start ({where}): import boto3 (median CPU / wall)",
            f"{figures['boto3_ms']} ms / {figures['boto3_wall_ms']} ms",
            "-",
            None,
        )
    ]
    for rule, value in figures["rules"].items():
        rows.append(
            Row(
                f"cold start: import {SHORT.get(rule, rule)} handler module / boto3",
                f"{value['ratio']:.2f}x (+{value['own_ms']} ms CPU after boto3; separate processes "
                f"{value['separate_ratio']:.2f}x)",
                f"<= {COLD_START_LIMIT}x",
                value["ratio"] <= COLD_START_LIMIT,
            )
        )
    return rows, figures


def change_rows() -> tuple[list[Row], list[dict[str, Any]]]:
    import boto3

    from benchmarks.calls import change_calls

    log("API calls per change-triggered evaluation")
    results = change_calls(boto3.Session(region_name=SMALL))
    rows = []
    for r in results:
        ops = ", ".join(f"{k.split('.', 1)[1]}" + (f" x{v}" if v > 1 else "") for k, v in r.calls.items())
        rows.append(
            Row(
                f"change: {SHORT[r.rule]} - {r.case}",
                f"{r.total}" + (f" ({ops})" if ops else ""),
                f"{'' if r.exact else '<= '}{r.target}",
                r.met,
            )
        )
    raw = [
        {
            "rule": r.rule,
            "case": r.case,
            "calls": r.calls,
            "target": r.target,
            "exact": r.exact,
            "compliance": r.compliance,
            "met": r.met,
        }
        for r in results
    ]
    return rows, raw


def sweep_rows(env: dict[str, str], n: int, n_small: int) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks.calls import SweepResult, sweep_met

    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for rule in RULES:
        log(f"sweep {rule}: N={n_small} ({SMALL}) and N={n} ({LARGE})")
        small = child_sweep(rule, SMALL, env)
        large = child_sweep(rule, LARGE, env)
        raw[rule] = {"small": small, "large": large}
        results = [
            SweepResult(rule, d["region"], d["evaluated"], d["calls"], d["failures"], d["per_resource_ops"])
            for d in (small, large)
        ]
        met, why = sweep_met(*results)
        per_resource = ", ".join(op.split(".", 1)[1] for op in large["per_resource_ops"]) or "none"
        rows.append(
            Row(
                f"sweep calls/resource: {SHORT[rule]} N={small['evaluated']} -> N={large['evaluated']}",
                f"{small['reads_per_resource']:.3f} -> {large['reads_per_resource']:.3f} "
                f"(per resource: {per_resource}; batched: {small['batched_reads']} -> "
                f"{large['batched_reads']})",
                "batched reads do not grow; per-resource reads only without a batch API",
                met if not why else False,
            )
        )
        rows.append(
            Row(
                f"sweep PutEvaluations: {SHORT[rule]} N={large['evaluated']}",
                str(large["put_evaluations"]),
                f"= ceil(N/100) = {large['put_evaluations_expected']}",
                large["put_evaluations"] == large["put_evaluations_expected"],
            )
        )
        rows.append(
            Row(
                f"sweep wall time / peak RSS: {SHORT[rule]} N={large['evaluated']}",
                f"{large['seconds']:.1f} s / {large['peak_rss_mb']:.0f} MB{_rss_caveat(large)}",
                "-",
                None,
            )
        )
        if why:
            log(f"  {rule}: {why}")
    return rows, raw


def _rss_caveat(result: dict[str, Any]) -> str:
    """benchmarks/child.py: VmHWM is the process's own peak; the fallback is only an upper bound."""
    source = result.get("peak_rss_source", "VmHWM")
    return "" if source == "VmHWM" else f" ({source})"


def bulk_rows(env: dict[str, str], bulk: int) -> tuple[list[Row], dict[str, Any]]:
    log(f"sweep S3 over {bulk} buckets ({BULK})")
    result = child_sweep("S3_BUCKET_SSE_KMS_ENFORCED", BULK, env)
    rows = [
        Row(
            f"S3 sweep of {result['evaluated']} buckets: peak RSS",
            f"{result['peak_rss_mb']:.0f} MB{_rss_caveat(result)} ({result['seconds']:.0f} s, "
            f"{result['calls'].get('s3.ListBuckets', 0)} ListBuckets pages)",
            f"< {BULK_RSS_LIMIT_MB} MB, N = {bulk}",
            result["peak_rss_mb"] < BULK_RSS_LIMIT_MB and result["evaluated"] == bulk,
        )
    ]
    return rows, result


def _scan(cli: Path, env: dict[str, str], extra: list[str]) -> dict[str, Any]:
    command = [str(cli), "scan", "--region", SMALL, "--region", OTHER, "--format", "json", "--no-progress"]
    for rule in RULES:  # the rules the landscape is seeded for
        command += ["--rule", rule]
    start = time.perf_counter()
    proc = subprocess.run(command + extra, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    rows_out = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else []
    verdicts = sorted(
        json.dumps(
            [r.get("rule"), r.get("account"), r.get("region"), r.get("resource_id"), r.get("compliance")]
        )
        for r in rows_out
    )
    return {
        "seconds": seconds,
        "exit_code": proc.returncode,
        "evaluations": len(rows_out),
        "verdicts": verdicts,
    }


def set_latency(endpoint: str, ms: int) -> None:
    with urllib.request.urlopen(f"{endpoint}/bench/latency?ms={ms}", timeout=10):  # nosec B310 (loopback)
        pass


def cli_rows(
    env: dict[str, str], endpoint: str, latencies: tuple[int, ...]
) -> tuple[list[Row], dict[str, Any]]:
    """``scan --workers 1`` vs the default (concurrent) over two regions, per added latency."""
    cli = Path(sys.executable).with_name("ml-guardrails")
    help_text = subprocess.run(
        [str(cli), "scan", "--help"], capture_output=True, text=True, env=env, check=False
    ).stdout
    if "--workers" not in help_text:
        row = Row("CLI scan: sequential / concurrent", "not measured (no --workers)", "> 1x", False)
        return [row], {"error": "ml-guardrails scan has no --workers option"}
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for ms in latencies:
        set_latency(endpoint, ms)
        runs: dict[str, Any] = {}
        for label, extra in (("sequential", ["--workers", "1"]), ("concurrent", [])):
            log(f"CLI scan {SMALL} + {OTHER}, {ms} ms added per call: {label}")
            runs[label] = _scan(cli, env, extra)
        seq, con = runs["sequential"], runs["concurrent"]
        same = seq["verdicts"] == con["verdicts"] and seq["evaluations"] > 0
        if not same:
            runs["only_sequential"] = sorted(set(seq["verdicts"]) - set(con["verdicts"]))[:20]
            runs["only_concurrent"] = sorted(set(con["verdicts"]) - set(seq["verdicts"]))[:20]
        ratio = seq["seconds"] / con["seconds"] if con["seconds"] else 0.0
        for run in (seq, con):
            del run["verdicts"]
        raw[f"{ms}ms"] = {**runs, "same_verdicts": same, "speedup": ratio}
        where = "loopback, no added latency" if not ms else f"{ms} ms added per call"
        rows.append(
            Row(
                f"CLI scan 2 regions x {len(RULES)} rules: sequential / concurrent ({where})",
                f"{ratio:.2f}x ({seq['seconds']:.1f} s / {con['seconds']:.1f} s, "
                f"{con['evaluations']} evaluations, {'same' if same else 'DIFFERENT'} verdicts)",
                "> 1x, same verdicts" if ms else "same verdicts",
                (ratio > 1.0 and same) if ms else same,
            )
        )
    set_latency(endpoint, 0)
    return rows, raw


# ------------------------------------------------------------------------------------------ output
def render(rows: list[Row]) -> str:
    headers = ("figure", "value", "target", "met?")
    cells = [
        (r.figure, r.value, r.target, "-" if r.met is None else ("yes" if r.met else "NO")) for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) + " |" for cell in cells
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="resources per rule for the sweeps (us-east-1)")
    parser.add_argument("--n-small", type=int, default=100, help="resources per rule, smaller landscapes")
    parser.add_argument("--bulk", type=int, default=10000, help="buckets of the memory sweep")
    parser.add_argument("--samples", type=int, default=7, help="cold-start samples per module (>= 5)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument(
        "--latency-ms", type=int, default=20, help="per-call latency added for the second CLI figure"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    rows: list[Row] = []
    raw: dict[str, Any] = {}
    cold, raw["cold_start"] = cold_start_rows(max(args.samples, 5))
    rows += cold
    spec = [[LARGE, "all", args.n], [SMALL, "all", args.n_small], [OTHER, "all", args.n_small]]
    spec.append([BULK, "s3-bulk", args.bulk])
    log(f"seeding moto_server: {spec}")
    seed_start = time.perf_counter()
    with seeded_server(spec) as endpoint:
        raw["seed_seconds"] = time.perf_counter() - seed_start
        log(f"moto_server ready on {endpoint} after {raw['seed_seconds']:.0f} s")
        env = {**os.environ, **aws_env(endpoint)}
        os.environ.update(aws_env(endpoint))
        change, raw["change"] = change_rows()
        sweeps, raw["sweeps"] = sweep_rows(env, args.n, args.n_small)
        bulk, raw["bulk_s3"] = bulk_rows(env, args.bulk)
        cli, raw["cli"] = cli_rows(env, endpoint, (0, args.latency_ms))
    rows += change + sweeps + bulk + cli
    raw["total_seconds"] = time.perf_counter() - started
    table = render(rows)
    print(table)
    print(
        f"\n{sum(1 for r in rows if r.met)} of {sum(1 for r in rows if r.met is not None)} targets met; "
        f"{raw['total_seconds']:.0f} s in all (seeding {raw['seed_seconds']:.0f} s) on "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}."
    )
    document = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "parameters": vars(args),
        "table": [r.as_dict() for r in rows],
        "raw": raw,
    }
    Path(args.out).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    log(f"written {args.out}")
    return 1 if args.strict and any(r.met is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
