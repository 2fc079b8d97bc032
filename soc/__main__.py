"""``python -m soc``: the same as the ``soc`` command."""

from soc.cli import run

run()
