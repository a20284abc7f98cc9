"""targeting: find the communities a police alert system misses, and where to go to invite them in.

The library is organised by concern: `config` (the frozen run configuration), `io` and `ingest`
(reading and validating inputs), `origins` (origin labels and their census categories), `grid`
(the H3 cell x area fragment grid), `store` (the DuckDB store, manifest and atomic output folder),
`pipeline` (the batch runs the CLI calls), `demo` (the synthetic demo city) and `cli`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("targeting")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
