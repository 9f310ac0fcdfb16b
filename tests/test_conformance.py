"""RFC 6455: Autobahn|Testsuite's fuzzing client against the WebSocket implementation
Switchboard serves with, through an echo route mounted only here (`.ci/autobahn` installs
wstest; `python -m tests.conformance` compares every uvicorn implementation and writes
docs/conformance.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance import IMPLEMENTATIONS, ROOT, fuzz

pytestmark = pytest.mark.slow
WSTEST = ROOT / ".autobahn" / "bin" / "wstest"


def test_the_served_websocket_implementation_passes_autobahn(tmp_path: Path) -> None:
    assert WSTEST.exists(), "run .ci/autobahn (it installs Autobahn|Testsuite for Python 2.7)"
    ours = IMPLEMENTATIONS["switchboard (websockets-sansio + api.transport)"]
    counts, failing = fuzz(str(WSTEST), ours, tmp_path)
    assert sum(counts.values()) > 200  # the suite ran
    assert failing == [], counts
