"""The namespace cluster, short mode: two app hosts (`serve --workers 2` each), PostgreSQL,
Redis and HAProxy on separate network namespaces; partitions, latency and loss, kill -9,
restarts and a rolling deploy while a workload runs; then the checker. The long mode is
`python -m tests.cluster --long`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.net import namespaces_available
from tests.cluster.scenario import run

pytestmark = pytest.mark.slow


def test_guarantees_hold_under_network_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    why_not = namespaces_available()
    if why_not:  # only a machine without network namespaces may skip this, and loudly
        with capsys.disabled():
            print(f"\n!!! CLUSTER TEST SKIPPED: {why_not} !!!\n")
        pytest.skip(f"network namespaces unavailable: {why_not}")
    report = run(tmp_path, hold=4.0, settle=4.0, log=lambda _: None)
    with capsys.disabled():  # the fault table belongs in CI's output, pass or fail
        print("\n" + report.table())
    assert report.ok, report.table()
