"""Headless Chromium for the browser tests: offline, one profile per call."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

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


def probe(page: Path, expression: str, *, width: int, height: int, home: Path) -> Any:
    """The value of a JavaScript `expression` (JSON-able) evaluated in `page` as Chromium lays
    it out in a viewport of `width` x `height`, offline.

    Headless Chromium will not make its window narrower than 500 px, so the page is shown in an
    iframe of that size: a copy of the page evaluates the expression after layout and posts it
    to the host page, which writes it into the DOM that Chromium dumps.
    """
    home.mkdir(parents=True, exist_ok=True)
    copy = home / page.name
    script = (
        "<script>window.addEventListener('load',()=>parent.postMessage("
        f"JSON.stringify((function(){{return {expression};}})()),'*'))</script></body>"
    )
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8")
    host = home / "host.html"
    host.write_text(
        "<!DOCTYPE html><html><body style='margin:0'>"
        "<script>window.addEventListener('message',e=>document.body.setAttribute('data-probe',"
        "e.data))</script>"
        f"<iframe src='{copy.name}' style='width:{width}px;height:{height}px;border:0'></iframe>"
        "</body></html>",
        encoding="utf-8",
    )
    dom = chromium(host.as_uri(), "--window-size=1400,1000", "--virtual-time-budget=5000",
                   "--dump-dom", home=home / "profile-home").stdout  # fmt: skip
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


# the page's width against the window's: a page wider than its window scrolls sideways
WIDTHS = "{doc: document.documentElement.scrollWidth, window: window.innerWidth}"
