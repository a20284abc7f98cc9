"""The engagement portal: a static site of how engagement moves over time, from the history
store, protected across dates (`targeting.portal.series`) and drawn offline
(`targeting.portal.site`)."""

from __future__ import annotations

import functools
import http.server
from dataclasses import dataclass
from pathlib import Path

from targeting.history import read_history
from targeting.portal.series import Series, interval_of, publish_counts, publish_series
from targeting.portal.site import PLOTLY_FILE, SCRIPT, SCRIPT_FILE, page_html, page_path
from targeting.store import atomic_output_dir, write_csv

__all__ = [
    "PortalResult",
    "Series",
    "build_portal",
    "interval_of",
    "publish_counts",
    "publish_series",
    "serve_portal",
]


@dataclass(frozen=True)
class PortalResult:
    """Where the portal was written, its pages and its size."""

    out_dir: Path
    force: str
    dates: int
    pages: int
    bytes: int


def build_portal(
    store: Path, out_dir: Path, *, force: str | None = None, marking: str = "OFFICIAL-SENSITIVE"
) -> PortalResult:
    """Write the portal of one force's history (`force` may be left out when the store holds
    one) into `out_dir`, replacing an earlier portal there all at once.

    The site: `index.html` (the force), `npu/<code>.html`, `area/<code>.html`, the published
    series as `places.csv` and `origins.csv`, `portal.js` and plotly's bundle.
    """
    from plotly.offline import get_plotlyjs  # plotly loads in a third of a second: only here

    history = read_history(store, force=force)
    threshold = int(history.snapshots["threshold"].max())
    series = publish_series(history, threshold=threshold)
    target = Path(out_dir).resolve()
    places = series.places[series.places["as_of"] == series.dates[-1]]
    with atomic_output_dir(target, marker=SCRIPT_FILE) as tmp:
        (tmp / PLOTLY_FILE).write_text(get_plotlyjs(), encoding="utf-8")
        (tmp / SCRIPT_FILE).write_text(SCRIPT, encoding="utf-8")
        for folder in ("npu", "area"):
            (tmp / folder).mkdir()
        for level, code in zip(places["level"].astype(str), places["code"].astype(str),
                               strict=True):  # fmt: skip
            page = page_html(series, level=level, code=code, snapshots=history.snapshots,
                             site=target, marking=marking)  # fmt: skip
            (tmp / page_path(level, code)).write_text(page, encoding="utf-8")
        write_csv(series.places, tmp / "places.csv")
        write_csv(series.origins, tmp / "origins.csv")
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    return PortalResult(target, series.force, len(series.dates), len(places), size)


def serve_portal(folder: Path, *, port: int = 8000) -> None:
    """Serve the portal's folder on this machine (http://localhost:PORT/) until interrupted."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.serve_forever()
