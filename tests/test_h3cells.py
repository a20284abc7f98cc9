"""Vectorised H3 (targeting.h3cells) against h3-py's per-cell answers."""

from __future__ import annotations

import h3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from targeting.h3cells import (
    cell_centres,
    cell_corners,
    cell_outlines,
    cell_parents,
    cell_resolutions,
    cells_to_ids,
    ids_to_cells,
    neighbour_pairs,
    points_to_cells,
    valid_cells,
)

CENTRE = h3.latlng_to_cell(52.4862, -1.8904, 9)  # Birmingham
DISK = sorted(h3.grid_disk(CENTRE, 3))


def test_points_to_cells_matches_h3s_known_answer() -> None:
    # the example in h3's documentation
    cells = points_to_cells(np.array([37.3615593]), np.array([-122.0553238]), resolution=5)
    assert cells.tolist() == ["85283473fffffff"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-80, 80), st.floats(-179.9, 179.9)), min_size=1, max_size=20),
    st.integers(0, 15),
)
def test_points_cells_parents_and_centres_agree_with_h3_py(
    points: list[tuple[float, float]], resolution: int
) -> None:
    lat, lon = np.array(points).T
    cells = points_to_cells(lat, lon, resolution=resolution)
    assert cells.tolist() == [h3.latlng_to_cell(a, b, resolution) for a, b in points]
    assert ids_to_cells(cells_to_ids(cells)).tolist() == cells.tolist()
    assert cell_resolutions(cells).tolist() == [resolution] * len(points)
    coarser = max(0, resolution - 2)
    assert cell_parents(cells, resolution=coarser).tolist() == [
        h3.cell_to_parent(c, coarser) for c in cells
    ]
    c_lat, c_lon = cell_centres(cells)
    expected = np.array([h3.cell_to_latlng(c) for c in cells])
    np.testing.assert_allclose(c_lat, expected[:, 0], atol=1e-12)
    np.testing.assert_allclose(c_lon, expected[:, 1], atol=1e-12)


def test_valid_cells_refuses_what_is_not_a_cell() -> None:
    given_ = [DISK[0], "nonsense", "", "89195c0e827fff0", DISK[-1].upper()]
    assert valid_cells(given_).tolist() == [True, False, False, False, True]
    assert [h3.is_valid_cell(c) for c in given_] == [True, False, False, False, True]


def test_neighbour_pairs_are_h3s_rings_within_the_set() -> None:
    i, j = neighbour_pairs(DISK)
    found = {(DISK[a], DISK[b]) for a, b in zip(i, j, strict=True)}
    assert found == {(a, b) for a in DISK for b in h3.grid_ring(a, 1) if b in set(DISK)}
    assert neighbour_pairs([]) == (pytest.approx([]), pytest.approx([]))


def test_outlines_are_h3s_boundaries() -> None:
    outlines = cell_outlines(DISK[:5])
    for outline, cell in zip(outlines, DISK[:5], strict=True):
        ring = np.array(outline.exterior.coords)[:-1]
        expected = np.array([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])
        assert len(ring) == len(expected)
        assert {tuple(p) for p in np.round(ring, 9)} == {tuple(p) for p in np.round(expected, 9)}


@pytest.mark.parametrize(
    "cells",
    [
        [CENTRE, *h3.grid_disk(CENTRE, 2)],  # hexagons only: read as one record each
        [CENTRE, *h3.get_pentagons(9), *h3.get_pentagons(7)],  # pentagons have more corners
        [],
    ],
)
def test_cell_corners_are_h3_boundaries_closed(cells: list[str]) -> None:
    """Each cell's corners as h3-py gives them (latitude, longitude there; longitude, latitude
    here), the ring closed by its first corner, read from h3ronpy's WKB without polygons."""
    coords, ring = cell_corners(np.array(cells, dtype=object))
    assert np.array_equal(ring, np.sort(ring))
    for i, cell in enumerate(cells):
        boundary = np.array(h3.cell_to_boundary(cell))[:, ::-1]
        mine = coords[ring == i]
        np.testing.assert_allclose(mine[:-1], boundary, atol=1e-12, rtol=0)
        assert np.array_equal(mine[0], mine[-1])
    assert len(coords) == sum(len(h3.cell_to_boundary(c)) + 1 for c in cells)
