"""One timed periodic sweep in a process of its own: ``python -m benchmarks.child RULE REGION OUT_JSON``.

The rule runs through its Lambda handler against ``AWS_ENDPOINT_URL`` (the benchmark's moto_server).
Written to OUT_JSON: wall time of the handler call, the process's peak RSS (what a Lambda function's
memory setting must hold) and the call counts.

Peak RSS is ``VmHWM`` of ``/proc/self/status``: the high-water mark of this process's own memory since it
was exec'd. Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries a process's ``maxrss`` across
``execve`` from the process that forked it, so every child of the benchmark reported at least the
benchmark's own peak (122 MB for every sweep, before this was found). ``ru_maxrss`` is the fallback
where there is no ``/proc`` (kilobytes on Linux, bytes on macOS), and says so.

Logs and EMF metrics go to the process's stdout/stderr, which the benchmark sends to /dev/null, as Lambda
sends them to CloudWatch.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def peak_rss_mb() -> tuple[float, str]:
    """This process's peak resident set size in MB, and where the figure comes from."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "VmHWM"  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss may include the parent's peak (see the module's docstring): an upper bound.
    return (peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024), "ru_maxrss (upper bound)"


def main(argv: list[str]) -> int:
    rule, region, out = argv[0], argv[1], argv[2]
    params = json.loads(argv[3]) if len(argv) > 3 else {}
    from benchmarks.calls import sweep_calls

    start = time.perf_counter()
    result = sweep_calls(rule, region, params, capture_output=False)
    seconds = time.perf_counter() - start
    peak_mb, source = peak_rss_mb()
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(
            {**result.as_dict(), "seconds": seconds, "peak_rss_mb": peak_mb, "peak_rss_source": source},
            handle,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
