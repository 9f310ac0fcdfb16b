"""A small soak in CI (the full one: `python -m tests.soak`): after connect/join/send/
disconnect cycles beside sockets that stay open, RSS, descriptors and asyncio tasks return
to their baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import run

pytestmark = pytest.mark.slow


def test_churn_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    result = run(database_url, cycles=1500, open_count=200, work=tmp_path)
    assert result["cycles"] == 1500
    assert result["ok"], result
