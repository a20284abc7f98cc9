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

# benchmarks (not part of the tests): time the demo run end to end, then the long simulation
# studies (1,000 simulated trials: coverage of the intervals, false positives of a null arm)
bench:
    python benchmarks/run.py
    pytest -m slow -s
