"""Digests of every output of three reference runs, to show a refactor leaves the outputs
byte-identical: the demo city, a force's export on real geography (2021 census, 2025 wards,
labels as alert systems write them; `tests/realworld.py`) and the 2011 OA run on the 2013 wards
with sign-ups at real postcodes.

    python benchmarks/output_digests.py before.json              # on the commit before
    python benchmarks/output_digests.py after.json --against before.json

Files are compared by their bytes, except the manifest (without its time, versions and the
temporary folder's name) and the analyst store (each table's columns by row count and summed
hash, in sorted column order, as a DuckDB file's bytes change from run to run). Needs
`../shared/realdata`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from realworld import draw_signups, write_export, write_postcode_signups
from tiny import REALDATA

from targeting.demo import write_demo_inputs
from targeting.pipeline import run


def write_oa2011_inputs(folder: Path, *, signups: int = 6000) -> Path:
    """The 2011 OA run: `signups` sign-ups at real postcodes (`tests/realworld.py`)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_postcode_signups(folder, n=signups)
    config = folder / "real.toml"
    config.write_text(
        f"""[inputs]
areas = "{REALDATA / "boundaries" / "wm_wards_2013.geojson"}"
small_areas = "{REALDATA / "boundaries" / "wm_oa_2011.geojson"}"
population = "{REALDATA / "census" / "census2011_ethnicity_oa_wm.csv"}"
signups = "signups.csv"
postcodes = "{REALDATA / "postcodes" / "wm_postcodes.parquet"}"
crimes = ["{REALDATA / "crime" / "*.csv"}"]
[grid]
small_area_fit = "centroid"
[output]
dir = "out"
""",
        encoding="utf-8",
    )
    return config


def store_digests(path: Path, name: str) -> dict[str, str]:
    """Each table's columns of a DuckDB store by row count and summed hash."""
    digests = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for (table,) in con.execute("SHOW TABLES").fetchall():
            columns = sorted(c[0] for c in con.execute(f'DESCRIBE "{table}"').fetchall())
            for column in columns:
                row = con.execute(
                    f'SELECT count(*), coalesce(sum(hash("{column}")::HUGEINT), 0) FROM "{table}"'
                ).fetchone()
                digests[f"{name}/{table}/{column}"] = str(row)
    return digests


def output_digests(out: Path, run_name: str, *, root: Path) -> dict[str, str]:
    """Every file of one run's output folder by digest; the manifest's paths are read relative
    to `root`, the temporary folder the inputs were written to."""
    digests: dict[str, str] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = f"{run_name}/{path.relative_to(out)}"
        if path.suffix == ".duckdb":
            digests |= store_digests(path, name)
        elif path.name == "manifest.json":
            text = path.read_text(encoding="utf-8").replace(str(root), "<root>")
            manifest = json.loads(text)
            for key in ("created_at", "versions"):
                manifest.pop(key, None)
            manifest["outputs"].pop("targeting.duckdb", None)
            canonical = json.dumps(manifest, sort_keys=True).encode()
            digests[name] = hashlib.sha256(canonical).hexdigest()
        else:
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the digests (JSON)")
    parser.add_argument("--against", type=Path, help="digests of an earlier commit to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="targeting-digests-") as tmp:
        root = Path(tmp)
        configs = {
            "demo": write_demo_inputs(root / "demo"),
            "export": write_export(root / "export", signups=draw_signups()).config,
            "oa2011": write_oa2011_inputs(root / "oa2011"),
        }
        digests: dict[str, str] = {}
        for name, config in configs.items():
            digests |= output_digests(run(config).out_dir, name, root=root)
    args.out.write_text(json.dumps(digests, indent=1, sort_keys=True), encoding="utf-8")
    print(f"{len(digests)} digests written to {args.out}")
    if args.against is None:
        return 0
    before = json.loads(args.against.read_text(encoding="utf-8"))
    changed = sorted(k for k in before.keys() & digests.keys() if before[k] != digests[k])
    for label, keys in (
        ("changed", changed),
        ("only before", sorted(before.keys() - digests.keys())),
        ("only now", sorted(digests.keys() - before.keys())),
    ):
        print(f"{label}: {len(keys)}")
        for key in keys:
            print(f"  {key}")
    return 1 if changed or before.keys() != digests.keys() else 0


if __name__ == "__main__":
    raise SystemExit(main())
