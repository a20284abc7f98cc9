"""Headless Chromium for the browser tests: offline, one profile per call."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"headless browser test needs Chromium at {CHROMIUM}"
)


def chromium(url: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once with its own profile under `home`, with every network request
    sent to a closed port (so a page that needs the network shows it) and console messages on
    stderr."""
    home.mkdir(parents=True, exist_ok=True)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={home / 'profile'}",
        *args,
        url,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(home)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
