"""The `mtst` command: one module per command group; each parses arguments and calls the library.

Importing a group registers its commands on `app`, in the order `mtst --help` lists them; none imports
torch until a command runs.
"""

# isort: off
from mtst.cli.common import app
from mtst.cli import train, evaluate, calibrate, predict, suggest, export, demo, data, serve  # noqa: F401  (registers, in order)

# isort: on
from mtst.cli.train import TRAIN_SETTINGS

__all__ = ["TRAIN_SETTINGS", "app", "main"]


def main() -> None:
    app()
