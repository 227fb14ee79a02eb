"""`mtst calibrate`: fit a checkpoint's confidence on dev (temperatures, per-type entity thresholds) and keep
it in the checkpoint, so predict, serve, the Rasa endpoint and the spaCy component all give the same."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.common import DataDirOption, app, friendly_errors, setup_logging
from mtst.errors import MtstError

UNIT = {"min": 0.0, "max": 1.0}  # a threshold or a margin: refused by the option parser outside 0..1
IntentThreshold = Annotated[
    float | None,
    typer.Option("--intent-threshold", **UNIT, help="Below this score the intent is the fallback label."),
]
AmbiguityMargin = Annotated[
    float | None,
    typer.Option("--ambiguity-margin", **UNIT, help="Top two intents closer than this: the fallback label."),
]
FallbackLabel = Annotated[str | None, typer.Option("--fallback-label", help="The fallback intent (nlu_fallback).")]
EntityThresholds = Annotated[
    Path | None,
    typer.Option("--entity-thresholds", help='JSON or YAML file {"entity type": minimum score, ...}.'),
]


@app.command()
@friendly_errors
def calibrate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best); it is updated in place.")],
    data_dir: DataDirOption = None,
    split: Annotated[str, typer.Option("--split", help="The split to fit on (never test).")] = "dev",
    intent_threshold: IntentThreshold = None,
    ambiguity_margin: AmbiguityMargin = None,
    fallback_label: FallbackLabel = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was fitted as JSON.")] = False,
) -> None:
    """Fit temperatures and pick per-type entity thresholds that maximise F1 on dev; write them into the checkpoint.

    The intent options, when given, are stored too. config.json and README.md are rewritten atomically;
    the weights are untouched. `mtst evaluate` then reports the expected calibration error before and after.
    """
    from mtst.calibration.fitting import calibrate_checkpoint
    from mtst.calibration.thresholds import threshold_settings
    from mtst.data import check_annotations, read_split
    from mtst.model.multitask import MultiTaskModel

    setup_logging()
    folder = data_dir or os.environ.get("MTST_DATA_DIR")
    if not folder:
        raise MtstError("no data directory: pass --data-dir or set MTST_DATA_DIR")
    model = MultiTaskModel.from_pretrained(checkpoint)
    data = model.checkpoint_config().data_for(folder).model_copy(update={"dir": str(folder)})
    examples = read_split(data, split)
    check_annotations(examples, model.tasks.values(), split)
    settings = threshold_settings(intent_threshold, ambiguity_margin, fallback_label)
    report = calibrate_checkpoint(model, examples, settings, split)
    model.save_settings(checkpoint, report.card)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        typer.echo("\n".join(report.lines()))
