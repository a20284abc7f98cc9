"""The package's shape, held: no function too long to read, the grid built from the inputs and
the config rather than a keyword per layer, and each score component named in one place (the
registry) with at most one other module spelling it out."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import targeting
from targeting.grid import build_grid
from targeting.scoring import COMPONENT_NAMES

PACKAGE = Path(targeting.__file__).parent
MAX_FUNCTION_LINES = 120


def _trees() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_function_is_over_120_lines() -> None:
    long = [
        f"{name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, tree in _trees().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_build_grid_takes_the_inputs_and_the_config() -> None:
    assert list(inspect.signature(build_grid).parameters) == [
        "data",
        "config",
        "shapes",
        "parallel",
    ]


@pytest.mark.parametrize("as_of", [None, "2018-10-31"])
def test_a_layer_read_in_a_child_starts_after_a_layer_before_it(as_of: str | None) -> None:
    """A `background` layer starts after the turn of a layer read before its own turn, so every
    layer it uses is in hand when its child is forked."""
    from targeting.config import config_from_dict
    from targeting.layers import LAYERS

    run = {"run": {"as_of": as_of}} if as_of else {}
    config = config_from_dict(
        {"inputs": {"areas": "a", "population": "p", "signups": "s"}, **run}, path=Path("/r.toml")
    )
    turn = {layer.name: i for i, layer in enumerate(LAYERS)}
    background = [layer for layer in LAYERS if layer.background is not None]
    assert [layer.name for layer in background] == ["crimes"]
    for layer in background:
        assert layer.background is not None
        assert turn[layer.background(config)] < turn[layer.name]
    assert background[0].background(config) == ("areas" if as_of else "signups")


def test_each_component_name_is_spelled_out_in_at_most_two_modules() -> None:
    spelled: dict[str, set[str]] = {name: set() for name in COMPONENT_NAMES}
    for module, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in spelled:
                spelled[node.value].add(module)
    assert all("scoring.py" in modules for modules in spelled.values())
    assert {name: sorted(m) for name, m in spelled.items() if len(m) > 2} == {}
