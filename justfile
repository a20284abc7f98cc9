# Recipes for working on targeting. `just` comes from PyPI (rust-just, in the dev extra).

# run the engine on the built-in demo city
demo out="targeting-demo":
    targeting demo --out {{out}}

# the test suite (as CI runs it)
test *args:
    pytest {{args}}

# lint, format check and type check
lint:
    ruff check targeting tests
    ruff format --check targeting tests
    mypy targeting

# benchmarks, not part of the tests: the force-scale run per stage, the usual-tools comparison, the national batch (27 forces), the size sweep, and the 1,000-trial simulation study
bench:
    python benchmarks/run.py --scale force
    python benchmarks/compare.py
    python benchmarks/run.py --scale national
    python benchmarks/run.py --sweep 1,3,10
    pytest -m slow -s -n 0
