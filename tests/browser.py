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


def evaluate(
    page: Path,
    body: str,
    *,
    width: int,
    height: int,
    home: Path,
    screenshot: Path | None = None,
) -> Any:
    """The value an async JavaScript function `body` returns (JSON-able) in `page` as Chromium
    lays it out in a viewport of `width` x `height`, offline; with `screenshot`, a picture of
    that viewport after the function has run, from a second load.

    Headless Chromium will not make its window narrower than 500 px, so the page is shown in an
    iframe of that size: a copy of the page runs the function after it has loaded and posts the
    result to the host page, which writes it into the DOM that Chromium dumps.
    """
    home.mkdir(parents=True, exist_ok=True)
    copy = home / page.name
    script = (
        "<script>window.addEventListener('load',()=>{Promise.resolve((async function(){"
        f"{body}"
        "})()).then(v=>parent.postMessage(JSON.stringify(v),'*'),"
        "e=>parent.postMessage(JSON.stringify({error:String(e)}),'*'))})</script></body>"
    )
    # errors thrown while the page loads, for the function to report (`window.__errors`)
    catch = (
        "<head><script>window.__errors=[];window.addEventListener('error',"
        "e=>window.__errors.push(String(e.message)))</script>"
    )
    text = page.read_text(encoding="utf-8").replace("<head>", catch, 1)
    copy.write_text(text.replace("</body>", script), encoding="utf-8")
    host = home / "host.html"
    host.write_text(
        "<!DOCTYPE html><html><body style='margin:0'>"
        "<script>window.__errors=[];window.addEventListener('message',e=>"
        "document.body.setAttribute('data-probe',e.data))</script>"
        f"<iframe src='{copy.name}' style='width:{width}px;height:{height}px;border:0'></iframe>"
        "</body></html>",
        encoding="utf-8",
    )
    window = f"--window-size={max(width, 500)},{height}"
    dom = chromium(host.as_uri(), window, "--virtual-time-budget=8000", "--dump-dom",
                   home=home / "profile-home").stdout  # fmt: skip
    if screenshot is not None:
        chromium(host.as_uri(), window, "--virtual-time-budget=8000", "--hide-scrollbars",
                 f"--screenshot={screenshot}", home=home / "profile-shot")  # fmt: skip
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found.group(1)))


def probe(page: Path, expression: str, *, width: int, height: int, home: Path) -> Any:
    """The value of a JavaScript `expression` (JSON-able) in `page` laid out at `width` x
    `height` (`evaluate`)."""
    return evaluate(page, f"return ({expression});", width=width, height=height, home=home)


# the page's width against the window's: a page wider than its window scrolls sideways
WIDTHS = "{doc: document.documentElement.scrollWidth, window: window.innerWidth}"
