"""Areas shared with convex polygons, by vectorised clipping: known answers by hand, and equal to
GEOS's intersection for random shapes."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from targeting.grid.clip import convex_clip_areas, convex_polygons

L_SHAPE = Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])  # 3 units, concave
SQUARE_WITH_HOLE = box(0, 0, 4, 4).difference(box(1, 1, 3, 3))  # 16 - 4 = 12 units


def _areas(sources: list, clips: list, pairs: list[tuple[int, int]]) -> np.ndarray:
    polygons = convex_polygons(np.array(clips, dtype=object))
    src, poly = (np.array(i) for i in zip(*pairs, strict=True))
    return convex_clip_areas(np.array(sources, dtype=object), src, polygons, poly)


def test_known_answers() -> None:
    triangle = Polygon([(0, 0), (1, 0), (0, 1)])
    middle = box(0.5, 0.5, 1.5, 1.5)
    quarter = box(0, 0, 2, 2)
    two_squares = MultiPolygon([box(0, 0, 1, 1), box(3, 0, 4, 1)])
    areas = _areas(
        [box(0, 0, 1, 1), L_SHAPE, SQUARE_WITH_HOLE, two_squares, box(10, 10, 11, 11)],
        [triangle, middle, quarter, box(0.5, 0, 3.5, 1)],
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 1)],
    )
    # half the unit square; 0.5 + 0.25 of the L; 4 less the hole's 1; half of each of two
    # squares; nothing where they do not meet
    np.testing.assert_allclose(areas, [0.5, 0.75, 3.0, 1.0, 0.0], atol=1e-12)


def test_which_polygons_are_convex_and_their_corners_turn_anticlockwise() -> None:
    hexagon_cw = Polygon([(np.cos(a), -np.sin(a)) for a in np.arange(6) * np.pi / 3])
    found = convex_polygons(
        np.array(
            [
                hexagon_cw,
                L_SHAPE,
                SQUARE_WITH_HOLE,
                MultiPolygon([box(0, 0, 1, 1)]),
                box(0, 0, 1, 1),
            ],
            dtype=object,
        )
    )
    assert found.convex.tolist() == [True, False, False, False, True]
    corners = found.corners[0, :6]
    (ax, ay), (bx, by) = corners[1] - corners[0], corners[2] - corners[1]
    turning = ax * by - ay * bx
    assert turning > 0  # read backwards: counter-clockwise
    assert found.count.tolist() == [6, 0, 0, 0, 4]


def _coord(low: float, high: float) -> st.SearchStrategy[float]:
    # on a 1/1000 grid: GEOS itself mis-measures shapes with coordinates near 1e-308, so those
    # are no test of the clipping
    return st.integers(int(low * 1000), int(high * 1000)).map(lambda i: i / 1000)


def _random_shape(data: st.DataObject) -> shapely.Geometry:
    parts = data.draw(
        st.lists(
            st.tuples(_coord(-3, 3), _coord(-3, 3), _coord(0.2, 3), _coord(0.2, 3)),
            min_size=1,
            max_size=5,
        )
    )
    shape = shapely.union_all([box(x, y, x + w, y + h) for x, y, w, h in parts])
    if data.draw(st.booleans()):
        hx, hy = data.draw(_coord(-2, 2)), data.draw(_coord(-2, 2))
        shape = shape.difference(box(hx, hy, hx + 0.5, hy + 0.5))
    return shapely.make_valid(shape)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_clipped_areas_equal_geos_intersections(data: st.DataObject) -> None:
    sources = [_random_shape(data) for _ in range(3)]
    clips = []
    for _ in range(3):
        cx, cy = data.draw(_coord(-3, 3)), data.draw(_coord(-3, 3))
        r, turn = data.draw(_coord(0.3, 4)), data.draw(_coord(0, np.pi))
        corners = data.draw(st.integers(3, 12))
        step = -1 if data.draw(st.booleans()) else 1  # either orientation
        clips.append(
            Polygon(
                [
                    (cx + r * np.cos(turn + step * a), cy + r * np.sin(turn + step * a))
                    for a in np.arange(corners) * 2 * np.pi / corners
                ]
            )
        )
    pairs = [(i, j) for i in range(3) for j in range(3)]
    areas = _areas(sources, clips, pairs)
    expected = [shapely.intersection(sources[i], clips[j]).area for i, j in pairs]
    np.testing.assert_allclose(areas, expected, rtol=1e-9, atol=1e-9)


def test_no_polygon_is_convex_among_lines_and_empties() -> None:
    found = convex_polygons(
        np.array([shapely.LineString([(0, 0), (1, 1)]), Polygon()], dtype=object)
    )
    assert not found.convex.any()


def test_large_coordinates_keep_their_precision() -> None:
    # metres in a national projection: products of coordinates would lose the small pieces
    offset = np.array([612_345.0, 287_654.0])
    source = shapely.transform(L_SHAPE, lambda c: c + offset)
    clip = shapely.transform(box(0.5, 0.5, 1.5, 1.5), lambda c: c + offset)
    assert _areas([source], [clip], [(0, 0)])[0] == pytest.approx(0.75, abs=1e-9)
