"""Disclosure control for counts derived from sign-ups (special category data).

A count from 1 to the threshold minus one could identify a person when it describes a small group,
so where such counts are published they are withheld and shown as "<threshold".
"""

from __future__ import annotations

from collections.abc import Mapping


def withhold_small_counts(counts: Mapping[str, int], *, threshold: int) -> dict[str, int | str]:
    """The counts with every value from 1 to `threshold - 1` replaced by "<threshold"."""
    return {k: (f"<{threshold}" if 0 < v < threshold else v) for k, v in counts.items()}
