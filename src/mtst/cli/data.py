"""`mtst data check`: validate a dataset and describe it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.common import app, friendly_errors
from mtst.data.settings import DATA_FORMATS

data_app = typer.Typer(no_args_is_help=True, help="Validate and describe datasets.")
app.add_typer(data_app, name="data")


@data_app.command("check")
@friendly_errors
def data_check(
    path: Annotated[Path | None, typer.Argument(help="A dataset folder (train, dev, test) or one split.")] = None,
    data_format: Annotated[str, typer.Option("--format", help=f"{', '.join(DATA_FORMATS)}.")] = "auto",
    text_column: Annotated[str, typer.Option("--text-column", help="CSV text column.")] = "text",
    label_column: Annotated[str, typer.Option("--label-column", help="CSV label column.")] = "label",
    strict: Annotated[bool, typer.Option("--strict", help="Repairable problems are errors too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
    list_formats: Annotated[bool, typer.Option("--formats", help="List the formats mtst reads.")] = False,
) -> None:
    """Validate a dataset and print its statistics; exit status 2 with `file:line: problem` on an error."""
    from mtst.data.check import check_dataset, format_rows, render, render_formats

    if list_formats:
        typer.echo(json.dumps(format_rows(), indent=2) if as_json else "\n".join(render_formats()))
        return
    if path is None:
        raise typer.BadParameter("give a dataset folder or split, or --formats", param_hint="PATH")
    report = check_dataset(path, data_format, text_column, label_column, strict)
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else "\n".join(render(report)))
