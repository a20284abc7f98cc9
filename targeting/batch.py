"""Many runs as one batch: a national picture as one run per force, side by side.

Each force has its own alert system, its own police.uk crime files and its own tasking meetings,
so a national batch is a run per force rather than one giant run: memory stays that of the largest
force whatever the country's size, forces run in parallel on a machine's cores, and each force
gets its own offline map, report and tasking pack. Every run happens in a fresh worker process, so
its memory goes back to the system when it ends and one force's failure does not stop the others.

The batch's own outputs are a summary per run (`batch.csv`), every force's force-level
representation rows side by side (`representation_by_run.csv`, already disclosure-controlled
within each run; no national total is formed from them, so no withheld count can be recovered by
subtraction), and an offline `index.html` linking each force's map, report and tasking pack.
"""

from __future__ import annotations

import html
import multiprocessing
import os
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing.context import BaseContext
from pathlib import Path

import pandas as pd

from targeting.config import OutputConfig, load_config
from targeting.errors import BatchError, TargetingError
from targeting.store import atomic_output_dir, write_csv

BATCH_MARKER = "batch.csv"
RUN_PAGES = (("map", "map.html"), ("report", "report.html"), ("tasking", "tasking.html"))


@dataclass(frozen=True)
class BatchRun:
    """What one run of a batch did: where it wrote, how long it took, what it found."""

    label: str
    config: str
    out_dir: str
    status: str  # "ok" or "failed"
    error: str
    seconds: float
    peak_rss_mb: float
    residents: float | None = None
    signups_used: int | None = None
    cells: int | None = None
    areas: int | None = None
    under_represented_origins: int | None = None
    top_area_code: str | None = None
    top_area_name: str | None = None


@dataclass(frozen=True)
class BatchResult:
    """The runs of a batch, in the order their configs were given, and the summary's folder."""

    runs: tuple[BatchRun, ...]
    out_dir: Path

    @property
    def failed(self) -> tuple[BatchRun, ...]:
        return tuple(r for r in self.runs if r.status != "ok")


def run_labels(configs: Sequence[Path]) -> list[str]:
    """A run's label: its config's folder name (`forces/T03/synth.toml` is T03), or the config's
    own name where folders repeat."""
    folders = [Path(c).resolve().parent.name for c in configs]
    counts = Counter(folders)
    return [
        f if counts[f] == 1 else f"{f}/{Path(c).stem}"
        for f, c in zip(folders, configs, strict=True)
    ]


def check_batch(configs: Sequence[Path]) -> list[str]:
    """Read every config before any run starts, so a mistake in one is found in seconds, not
    after an hour; two runs writing the same output folder are an error too."""
    if not configs:
        raise BatchError("no configs given: name at least one run's TOML config")
    labels = run_labels(configs)
    problems = []
    outputs: dict[Path, str] = {}
    for label, path in zip(labels, configs, strict=True):
        try:
            out = load_config(path).output.dir.resolve()
        except TargetingError as exc:
            problems.append(f"{label}: {exc}")
            continue
        if out in outputs:
            problems.append(
                f"{label} and {outputs[out]} both write {out}: give each run its own [output] dir"
            )
        outputs[out] = label
    duplicates = [c for c, n in Counter(Path(c).resolve() for c in configs).items() if n > 1]
    problems += [f"{c} is given more than once" for c in duplicates]
    if problems:
        raise BatchError("the batch cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
    return labels


def _run_one(label: str, config: str, parallel: bool) -> BatchRun:
    """One run in this (fresh) worker process; errors become the run's status, not a crash.
    `parallel` as `run`'s."""
    start = time.perf_counter()
    try:
        from targeting.pipeline import run

        result = run(Path(config), parallel=parallel)
    except Exception as exc:  # a failed force is reported, and the other forces carry on
        kind = "" if isinstance(exc, TargetingError) else f"unexpected {type(exc).__name__}: "
        return BatchRun(
            label=label,
            config=config,
            out_dir="",
            status="failed",
            error=f"{kind}{exc}",
            seconds=round(time.perf_counter() - start, 3),
            peak_rss_mb=_peak_rss_mb(),
        )
    seconds = round(time.perf_counter() - start, 3)
    m = result.manifest
    ranked = pd.read_csv(result.out_dir / "ranked_areas.csv", dtype=str, nrows=1)
    rep = pd.read_csv(result.out_dir / "representation.csv", dtype={"under_represented": object})
    force = rep[(rep["level"] == "force") & (rep["origin_level"] == "origin")]
    return BatchRun(
        label=label,
        config=config,
        out_dir=str(result.out_dir),
        status="ok",
        error="",
        seconds=seconds,
        peak_rss_mb=_peak_rss_mb(),
        residents=round(float(m["grid"]["residents_on_grid"]), 3),
        signups_used=int(m["inputs"]["signups"]["rows_used"]),
        cells=int(m["grid"]["cells"]),
        areas=int(m["inputs"]["areas"]["rows_used"]),
        under_represented_origins=int(force["under_represented"].astype(str).eq("True").sum()),
        top_area_code=ranked["area_code"].iloc[0] if len(ranked) else None,
        top_area_name=ranked["area_name"].iloc[0] if len(ranked) else None,
    )


# what every run loads (the engine, the map's folium, the audit's HiGHS): loaded once by the
# process the workers are forked from, rather than by each worker, two seconds a force
PRELOAD = ("targeting.pipeline", "targeting.maps", "highspy")


def _worker_context() -> BaseContext | None:
    """Workers forked from a server process that has loaded `PRELOAD`, where the system has
    one (Linux, macOS); otherwise the default (spawned). Either way, a fresh process per run."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def runs_that_fork(runs: int, *, workers: int, cores: int) -> list[bool]:
    """Which runs (in the order they start) may hand work to child processes (`run`'s
    `parallel`): every run where the batch leaves cores idle (fewer workers than cores), and
    otherwise the last one where there are no more workers than cores, since it ends alone
    while the others' cores fall idle (a national batch ends about 2 s sooner)."""
    if workers < cores:
        return [True] * runs
    return [i == runs - 1 and workers <= cores for i in range(runs)]


def run_batch(
    configs: Sequence[Path],
    *,
    out_dir: Path,
    jobs: int = 2,
    on_done: Callable[[BatchRun], None] | None = None,
) -> BatchResult:
    """Run every config, `jobs` at a time, each in a fresh process; then write the summary.

    Every config is checked before the first run starts. A run that fails is reported in the
    summary and does not stop the others; `on_done` hears of each run as it ends.
    """
    labels = check_batch(configs)
    if jobs < 1:
        raise BatchError(f"jobs must be at least 1, got {jobs}")
    paths = [str(Path(c).resolve()) for c in configs]
    done: dict[str, BatchRun] = {}
    workers = min(jobs, len(paths))
    forking = runs_that_fork(len(paths), workers=workers, cores=os.cpu_count() or 1)
    # one task per worker process: a force's memory is returned to the system when it ends
    with ProcessPoolExecutor(
        max_workers=workers, max_tasks_per_child=1, mp_context=_worker_context()
    ) as pool:
        futures = [
            pool.submit(_run_one, label, path, parallel)
            for label, path, parallel in zip(labels, paths, forking, strict=True)
        ]
        for future in as_completed(futures):
            outcome = future.result()
            done[outcome.label] = outcome
            if on_done is not None:
                on_done(outcome)
    runs = tuple(done[label] for label in labels)
    marking = load_config(configs[0]).output.protective_marking
    write_batch_summary(runs, out_dir=out_dir, marking=marking)
    return BatchResult(runs, Path(out_dir).resolve())


def batch_representation(runs: Sequence[BatchRun]) -> pd.DataFrame:
    """Every successful run's force-level rows of `representation.csv`, with the run's label."""
    frames = []
    for r in runs:
        if r.status != "ok":
            continue
        rep = pd.read_csv(Path(r.out_dir) / "representation.csv", dtype=str, keep_default_na=False)
        frames.append(rep[rep["level"] == "force"].assign(run=r.label))
    if not frames:
        return pd.DataFrame(columns=["run"])
    table = pd.concat(frames, ignore_index=True)
    return table[["run", *(c for c in table.columns if c != "run")]]


def write_batch_summary(
    runs: Sequence[BatchRun], *, out_dir: Path, marking: str = OutputConfig.protective_marking
) -> Path:
    """Write `batch.csv`, `representation_by_run.csv` and `index.html` into `out_dir`."""
    target = Path(out_dir)
    with atomic_output_dir(target, marker=BATCH_MARKER) as tmp:
        write_csv(pd.DataFrame([asdict(r) for r in runs]), tmp / BATCH_MARKER)
        write_csv(batch_representation(runs), tmp / "representation_by_run.csv")
        (tmp / "index.html").write_text(
            batch_index_html(runs, base=target.resolve(), marking=marking), "utf-8"
        )
    return target.resolve()


def batch_index_html(runs: Sequence[BatchRun], *, base: Path, marking: str) -> str:
    """An offline page listing the runs, with relative links to each one's pages."""
    rows = []
    for r in runs:
        if r.status == "ok":
            links = " · ".join(
                f'<a href="{html.escape(os.path.relpath(Path(r.out_dir) / page, base))}">{name}</a>'
                for name, page in RUN_PAGES
                if (Path(r.out_dir) / page).is_file()
            )
            cells = (
                f"<td>{r.residents:,.0f}</td><td>{r.signups_used:,}</td>"
                f"<td>{r.under_represented_origins}</td>"
                f"<td>{html.escape(str(r.top_area_name or ''))}</td><td>{links}</td>"
            )
        else:
            cells = f'<td colspan="5">failed: {html.escape(r.error)}</td>'
        rows.append(f"<tr><th>{html.escape(r.label)}</th>{cells}<td>{r.seconds:.1f}</td></tr>")
    ok = sum(r.status == "ok" for r in runs)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>targeting: batch</title><style>body{font-family:sans-serif;margin:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:left}.marking{font-weight:bold;text-align:center}</style></head><body>"
        f"<p class='marking'>{html.escape(marking)}</p><h1>Batch of {len(runs)} runs</h1><p>{ok} ran, {len(runs) - ok} failed. Each run has "
        "its own offline map, report and tasking pack.</p><table><thead><tr><th>run</th>"
        "<th>residents</th><th>sign-ups</th><th>under-represented origins</th>"
        "<th>first-ranked area</th><th>pages</th><th>seconds</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table><p class='marking'>{html.escape(marking)}</p></body></html>\n"
    )
