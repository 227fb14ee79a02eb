"""`mtst evaluate`: score a checkpoint on a split, and where it loses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.common import BackendOption, DataDirOption, app, friendly_errors, setup_logging
from mtst.data.settings import DATA_FORMATS
from mtst.errors import MtstError

ThresholdsOption = Annotated[
    bool,
    typer.Option(
        "--thresholds/--no-thresholds",
        help="Score the entities predict gives: those under the checkpoint's entity thresholds left out.",
    ),
]


@app.command()
@friendly_errors
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    data_dir: DataDirOption = None,
    split: Annotated[str, typer.Option("--split")] = "test",
    data_format: Annotated[str | None, typer.Option("--format", help=f"{', '.join(DATA_FORMATS)}.")] = None,
    text_column: Annotated[str | None, typer.Option("--text-column", help="CSV text column.")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="CSV label column.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print full metrics as JSON.")] = False,
    backend: BackendOption = "torch",
    quantized: Annotated[bool, typer.Option("--quantized", help="With --backend onnx: model.int8.onnx.")] = False,
    errors: Annotated[
        Path | None,
        typer.Option("--errors", help="Write the error analysis here: errors.json and mispredicted.jsonl."),
    ] = None,
    thresholds: ThresholdsOption = True,
) -> None:
    """Score a checkpoint on one split: accuracy, entity P/R/F1, sentence accuracy, per-label report.

    Data settings not given as options come from the checkpoint, which keeps those it was trained with.
    The per-type entity thresholds stored by `mtst calibrate` apply, as in predict and serve, unless
    --no-thresholds; the output says which. With --errors DIR, also the entity error taxonomy (spurious,
    missed, wrong type / boundary), the most confused types and labels, and every mispredicted sentence
    with gold beside predicted.
    """
    from mtst.data import check_annotations, read_split
    from mtst.evaluation.metrics import evaluate as run_evaluation
    from mtst.inference.predictor import Predictor
    from mtst.model.multitask import read_checkpoint

    setup_logging()
    if errors is not None:
        _prepare_errors_folder(errors)
    folder = data_dir or os.environ.get("MTST_DATA_DIR")
    if not folder:
        raise MtstError("no data directory: pass --data-dir or set MTST_DATA_DIR")
    data = read_checkpoint(checkpoint).config.data_for(folder)
    overrides = {"format": data_format, "text_column": text_column, "label_column": label_column}
    data = data.model_copy(update={"dir": str(folder), **{k: v for k, v in overrides.items() if v is not None}})
    examples = read_split(data, split)
    model = Predictor.from_checkpoint(checkpoint, backend=backend, quantized=quantized).model
    check_annotations(examples, model.tasks.values(), split)
    metrics, predictions = run_evaluation(model, examples, calibration=True, entity_thresholds=thresholds)
    summary = _write_error_analysis(model, examples, predictions, errors) if errors is not None else []
    used = _thresholds_used(model.tasks, thresholds)
    if as_json:
        typer.echo(json.dumps({**metrics, "entity_thresholds": used}, indent=2))
        return
    _print_report(metrics, used)
    if summary:
        typer.echo("\nerrors (" + str(errors) + ")\n" + "\n".join(summary))


def _print_report(metrics: dict, thresholds_used: dict) -> None:
    """The headline numbers, the entity thresholds the scores are with, and each task's per-label report."""
    from mtst.evaluation.metrics import headline

    for key, value in headline(metrics).items():
        typer.echo(f"{key:<28} {value:.4f}")
    typer.echo(_thresholds_line(thresholds_used))
    for name, value in metrics.items():
        if isinstance(value, dict) and "report" in value:
            typer.echo(f"\n{name} per label (precision / recall / f1 / support)")
            for label, row in value["report"].items():
                if isinstance(row, dict):
                    scores = f"{row['precision']:.3f} {row['recall']:.3f} {row['f1-score']:.3f}"
                    typer.echo(f"  {label:<30} {scores} {int(row['support'])}")


def _prepare_errors_folder(directory: Path) -> None:
    """Makes the --errors folder before the evaluation, so that a path it cannot be fails at once, not after."""
    if directory.exists() and not directory.is_dir():
        raise MtstError(f"{directory}: a file is there; --errors names a folder for errors.json and mispredicted.jsonl")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MtstError(f"{directory}: cannot write the error analysis ({error.strerror or error})") from None


def _write_error_analysis(model, examples, predictions, directory: Path) -> list[str]:
    from mtst.evaluation.error_analysis import analyze, summary_lines, write_analysis

    report, records = analyze(model.tasks, examples, predictions)
    try:
        write_analysis(report, records, directory)
    except OSError as error:
        raise MtstError(f"{directory}: cannot write the error analysis ({error.strerror or error})") from None
    return summary_lines(report, records)


def _thresholds_used(tasks: dict, requested: bool) -> dict:
    """The JSON's `entity_thresholds`: whether the scores are with them, and those the checkpoint stores."""
    from mtst.calibration.thresholds import stored_entity_thresholds

    stored = stored_entity_thresholds(tasks)
    return {"applied": requested and bool(stored), "stored": stored}


def _thresholds_line(used: dict) -> str:
    if not used["stored"]:
        return "entity thresholds: none in the checkpoint (`mtst calibrate` picks them on dev); every entity scored"
    held = "; ".join(
        f"{name}: " + ", ".join(f"{kind} {value}" for kind, value in sorted(thresholds.items()))
        for name, thresholds in used["stored"].items()
    )
    state = "applied, as predict applies them" if used["applied"] else "not applied (--no-thresholds)"
    return f"entity thresholds: {state}: {held}"
