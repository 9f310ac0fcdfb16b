"""The demo page in a real browser (Debian's Chromium, driven by playwright-core from
clients/js/e2e/browser.mjs): two people chat, one reloads, the server is killed while the
other types (pending, then sent once when it is back)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.factories import Factory
from tests.processes import Worker
from tests.support import LiveServer

pytestmark = pytest.mark.slow
JS = ROOT / "clients" / "js"


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is needed (.ci/run installs it)"
    return found


def test_two_people_chat_through_a_reload_and_a_server_restart(
    database_url: str, tmp_path: Path, factory: Factory
) -> None:
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    factory.user(tenant, "bob", password)
    worker = Worker(database_url, None, tmp_path).start()
    shot = tmp_path / "alice.png"
    try:
        node = subprocess.Popen(
            ["node", "e2e/browser.mjs", worker.base_url, tenant, password, str(shot)],
            cwd=JS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "CHROMIUM": chromium()},
        )
        assert node.stdin is not None and node.stdout is not None
        said = []
        for line in node.stdout:
            said.append(line.strip())
            if line.strip() == "KILL":
                worker.kill()
                node.stdin.write("KILLED\n")
            elif line.strip() == "START":
                worker.start()
                node.stdin.write("STARTED\n")
            else:
                continue
            node.stdin.flush()
        assert node.wait(60) == 0, said
        assert said[-1] == "RESULT ok" and shot.stat().st_size > 0
    finally:
        worker.kill()


def test_direct_messages_typing_unread_badges_edit_and_delete(
    server: LiveServer, tmp_path: Path, factory: Factory
) -> None:
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    factory.user(tenant, "bob", password)
    shot = tmp_path / "bob.png"
    done = subprocess.run(
        ["node", "e2e/conversations.mjs", server.base_url, tenant, password, str(shot)],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "CHROMIUM": chromium()},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("RESULT ok") and shot.stat().st_size > 0
