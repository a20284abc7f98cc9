"""`python -m targeting` runs the command line, like the `targeting` script."""

from targeting.cli import app

app(prog_name="targeting")
