"""examples/backend.py, run as a user would against a live server: it mints tokens for its
own users, publishes with an API key, and receives signed webhooks (a push for `unseen`)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.conftest import ROOT
from tests.factories import Factory


def test_the_backend_example_runs_end_to_end(make_server: Any, factory: Factory) -> None:
    live = make_server(webhooks={"allow_private_addresses": True, "poll_seconds": 0.05})
    admin = factory.account(role="admin", server=live)
    with live.http() as client:
        r = client.post(
            "/admin/api-keys",
            json={"name": "backend", "scopes": ["tokens", "publish", "admin"]},
            headers=admin.headers,
        )
    key = r.json()["key"]
    done = subprocess.run(
        [sys.executable, "examples/backend.py", "--url", live.base_url, "--api-key", key],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "push -> dave: carol: dave, are you around?" in out
    assert "order #42 shipped" in out and out.strip().endswith("RESULT ok")
