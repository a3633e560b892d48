"""The benchmark's call-counting functions at tiny N, so ``make bench`` cannot rot unnoticed.

Counts are asserted (they are the targets of issue 6, and deterministic); timings are not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from benchmarks import calls, landscape
from moto import mock_aws

from ml_guardrails.testing import REGION


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def test_change_trigger_call_counts_meet_their_targets(aws: Any) -> None:
    session = boto3.Session(region_name=REGION)
    landscape.seed_region(session, 2)
    results = calls.change_calls(session)
    assert {r.rule for r in results} == set(calls.UNBATCHABLE)
    for result in results:
        assert result.met, (result.rule, result.case, result.calls)
        assert result.compliance in ("COMPLIANT", "NON_COMPLIANT")
    by_case = {(r.rule, r.case): r for r in results}
    assert by_case["VPC_FLOW_LOGS_ENABLED", "any VPC"].calls == {"ec2.DescribeFlowLogs": 1}
    network = by_case["SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET", "in a subnet, network-path check"]
    assert network.calls == {"ec2.DescribeSubnets": 1, "ec2.DescribeRouteTables": 1}
    assert network.compliance == "COMPLIANT"


@pytest.mark.parametrize("rule", sorted(calls.UNBATCHABLE))
def test_sweep_call_counts_do_not_grow_per_resource(aws: Any, rule: str) -> None:
    small_region, large_region = "us-west-2", "eu-west-1"
    landscape.SEEDERS[rule](boto3.Session(region_name=small_region), 2)
    landscape.SEEDERS[rule](boto3.Session(region_name=large_region), 5)
    small = calls.sweep_calls(rule, small_region)
    large = calls.sweep_calls(rule, large_region)
    assert small.evaluated >= 2 and large.evaluated >= 5
    assert large.evaluated - small.evaluated == 3  # only the seeded resources differ
    met, why = calls.sweep_met(small, large)
    assert met, why
    assert set(large.per_resource_ops) <= calls.UNBATCHABLE[rule]
    assert large.put_evaluations == 1


def test_counter_counts_each_call_once_per_client_call(aws: Any) -> None:
    session = boto3.Session(region_name=REGION)
    counter = calls.CallCounter(session)
    s3: Any = session.client("s3")
    s3.list_buckets()
    s3.list_buckets()
    assert counter.calls == {"s3.ListBuckets": 2}


def test_a_sweeps_peak_rss_is_its_own_not_the_benchmarks() -> None:
    """Linux carries ``ru_maxrss`` across fork + exec: a child of a 200 MB process reported 200 MB and
    more. The sweep child reports its own high-water mark (``VmHWM``)."""
    import subprocess
    import sys
    from pathlib import Path

    if not Path("/proc/self/status").exists():
        pytest.skip("VmHWM needs Linux /proc; elsewhere the figure is labelled an upper bound")
    ballast = b"\x01" * (200 << 20)  # resident: every page written
    code = "from benchmarks.child import peak_rss_mb; print(*peak_rss_mb())"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, check=True, capture_output=True, text=True)
    del ballast
    peak, source = out.stdout.split()
    assert source == "VmHWM"
    assert 5 < float(peak) < 150, peak
