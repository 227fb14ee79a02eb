"""What every command shares: the typer app, logging set-up, one-line errors, the common options."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from mtst.errors import MtstError
from mtst.inference.backends import BACKENDS

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multi-task sentence transformer.")


def setup_logging(verbose: bool = False) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.INFO
    if int(os.environ.get("RANK", "0")) != 0:
        level = logging.WARNING  # in a multi-process run (torchrun, accelerate launch) the main process reports
    logging.basicConfig(
        level=level,
        format="%(message)s",
        # On stderr: standard output carries results (predict --json, train's summary) that programs read.
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, show_time=False, markup=False)],
        force=True,
    )
    for noisy in ("transformers", "accelerate", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_version(value: bool) -> None:
    if value:
        from mtst import __version__

        typer.echo(f"mtst {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print mtst's version and exit.")
    ] = False,
) -> None:
    """Multi-task sentence transformer."""


def friendly_errors(command):
    """Reports mtst's own errors as one line on stderr with exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MtstError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        except OSError as error:
            if error.filename is None:
                raise
            # A file the system refused (permissions, a file where a folder must be): the OS's own words.
            typer.echo(f"error: {error.filename}: {error.strerror or error}", err=True)
            raise typer.Exit(2) from None

    return wrapper


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
BackendOption = Annotated[str, typer.Option("--backend", help=f"{', '.join(BACKENDS)} (onnx after `mtst export`).")]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Dataset folder (overrides the config; env MTST_DATA_DIR).")
]
