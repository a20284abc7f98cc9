"""The small lookups the engine ships in `reference_data/` (see its README).

A wheel installs them inside the package (`targeting/reference_data`); an editable install or a
source checkout reads the repository's `reference_data/` folder beside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

_INSTALLED = Path(__file__).resolve().parent / "reference_data"  # where a wheel puts it
REFERENCE_DIR = (
    _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parent.parent / "reference_data"
)
DEMO_DIR = REFERENCE_DIR / "demo"


@cache
def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / name, dtype=str, keep_default_na=False)


def read_reference(name: str) -> pd.DataFrame:
    """A reference CSV as text columns (a fresh copy: callers may change it)."""
    return _read(name).copy()


def read_crime_types() -> pd.DataFrame:
    """police.uk crime types with `sac` and `asb` flags (`true`/`false`)."""
    return read_reference("police_uk_crime_types.csv")
