"""The JavaScript client (built from clients/js) against a real `switchboard serve` that is
killed with SIGKILL and restarted twice mid-stream: every send stored exactly once, and the
receiving app sees seqs 1..N exactly once, in order."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.factories import Factory
from tests.processes import Worker

pytestmark = pytest.mark.slow
TOTAL = 300
JS = ROOT / "clients" / "js"


def test_js_client_exactly_once_across_two_kill_9(
    database_url: str, tmp_path: Path, factory: Factory
) -> None:
    assert shutil.which("node"), "node is needed (Node >= 20)"
    assert (JS / "dist" / "index.js").exists(), "build it: cd clients/js && npm run build"
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    factory.user(tenant, "bob", password)
    worker = Worker(database_url, None, tmp_path).start()
    try:
        alice = factory.login(tenant, "alice", password, server=_Http(worker))  # type: ignore[arg-type]
        with httpx.Client(base_url=worker.base_url) as http:
            assert http.post("/rooms", json={"name": "general"}, headers=alice.headers).is_success
        node = subprocess.Popen(
            ["node", "e2e/chat.mjs", worker.base_url, tenant, password, str(TOTAL)],
            cwd=JS,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert node.stdout is not None
        kills = [TOTAL // 3, 2 * TOTAL // 3]
        result = None
        for line in node.stdout:
            if line.startswith("acked ") and kills and int(line.split()[1]) >= kills[0]:
                kills.pop(0)
                worker.kill()
                worker.start()
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
        assert node.wait(120) == 0
        assert result is not None and not kills
        assert result["seen"] == list(range(1, TOTAL + 1))
        assert sorted(result["acks"]) == list(range(1, TOTAL + 1))
        assert "reconnecting" in result["states"]
        with httpx.Client(base_url=worker.base_url) as http:
            page = http.get(
                "/rooms/general/messages?after=0&limit=500", headers=alice.headers
            ).json()
        assert sorted(m["body"] for m in page["messages"]) == sorted(f"m{i}" for i in range(TOTAL))
        assert [m["seq"] for m in page["messages"]] == list(range(1, TOTAL + 1))
    finally:
        worker.kill()


class _Http:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.worker.base_url, timeout=10)
