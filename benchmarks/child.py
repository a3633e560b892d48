"""One timed periodic sweep in a process of its own: ``python -m benchmarks.child RULE REGION OUT_JSON``.

The rule runs through its Lambda handler against ``AWS_ENDPOINT_URL`` (the benchmark's moto_server).
Written to OUT_JSON: wall time of the handler call, the process's peak RSS (``getrusage``: what a Lambda
function's memory setting must hold) and the call counts. Logs and EMF metrics go to the process's
stdout/stderr, which the benchmark sends to /dev/null, as Lambda sends them to CloudWatch.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main(argv: list[str]) -> int:
    rule, region, out = argv[0], argv[1], argv[2]
    params = json.loads(argv[3]) if len(argv) > 3 else {}
    from benchmarks.calls import sweep_calls

    start = time.perf_counter()
    result = sweep_calls(rule, region, params, capture_output=False)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({**result.as_dict(), "seconds": seconds, "peak_rss_mb": peak_kb / 1024}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
