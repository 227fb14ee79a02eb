"""`mtst predict`: labels and entities of raw text, from arguments, a file or standard input."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.calibrate import AmbiguityMargin, EntityThresholds, FallbackLabel, IntentThreshold
from mtst.cli.common import BackendOption, app, friendly_errors, setup_logging
from mtst.errors import MtstError


@app.command()
@friendly_errors
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    texts: Annotated[list[str] | None, typer.Argument(help="Sentences; or use --file, or standard input.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="One sentence per line.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    backend: BackendOption = "torch",
    quantized: Annotated[
        bool, typer.Option("--quantized", help="With --backend onnx: use model.int8.onnx (`export --quantize int8`).")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="With --file: stream results into this JSONL file; a rerun resumes where it stops."
        ),
    ] = None,
    ranking: Annotated[int, typer.Option("--ranking", min=0, help="List this many top labels per sentence task.")] = 0,
    intent_threshold: IntentThreshold = None,
    ambiguity_margin: AmbiguityMargin = None,
    fallback_label: FallbackLabel = None,
    entity_thresholds: EntityThresholds = None,
) -> None:
    """Predict the label and the entities (character spans) of raw sentences.

    The thresholds stored in the checkpoint (`mtst calibrate`) apply; the threshold options override them."""
    from mtst.calibration.thresholds import threshold_settings
    from mtst.data.textfile import read_text_lines, text_lines
    from mtst.inference.predictor import describe

    settings = threshold_settings(intent_threshold, ambiguity_margin, fallback_label, entity_thresholds)
    if output is not None:
        _predict_into(checkpoint, file, output, texts, (backend, quantized, ranking), settings)
        return
    sentences = list(texts or [])
    if file is not None:
        sentences += read_text_lines(file)
    if not sentences and sys.stdin is not None and not sys.stdin.isatty():  # None: stdin closed (`<&-`)
        sentences = text_lines(sys.stdin.buffer.read(), "<stdin>")
    if not sentences:
        raise MtstError("no text to predict: give sentences as arguments, --file, or on standard input")
    _refuse_overlong(sentences, file)
    predictor = _predictor(checkpoint, (backend, quantized, ranking), settings)
    for result in predictor.predict(sentences):
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False))
        else:
            parts = describe(predictor.model.tasks, result)
            typer.echo(f"{result['text']}\n" + "".join(f"  {name}: {text}\n" for name, text in parts.items()).rstrip())


def _refuse_overlong(sentences: list[str], file: Path | None) -> None:
    """A text over MAX_LINE_BYTES is no sentence, and its windows would all be predicted at once."""
    from mtst.inference.stream import MAX_LINE_BYTES, input_lines

    for index, text in enumerate(sentences, start=1):
        if len(text) > MAX_LINE_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
            if file is not None:
                for _ in input_lines(file):  # finds the line and refuses it as file:line, if it came from there
                    pass
            raise MtstError(f"text {index} is longer than {MAX_LINE_BYTES} bytes; split it into sentences")


def _predictor(checkpoint: Path, how: tuple[str, bool, int], settings: dict):
    """The checkpoint's predictor (backend, quantized, ranking) with the thresholds given put on its tasks."""
    from mtst.calibration.thresholds import apply_thresholds
    from mtst.inference.predictor import Predictor

    backend, quantized, ranking = how
    predictor = Predictor.from_checkpoint(checkpoint, backend=backend, quantized=quantized, ranking=ranking)
    apply_thresholds(predictor.model.tasks, settings)
    return predictor


def _predict_into(checkpoint: Path, file: Path | None, output: Path, texts, how: tuple, settings: dict) -> None:
    from mtst.inference.stream import is_regular_file, predict_file

    if file is None or texts:
        raise MtstError("--output streams one --file: give --file IN and no sentences as arguments")
    setup_logging()
    predictor = _predictor(checkpoint, how, settings)
    summary = predict_file(predictor, file, output)
    rate = summary.predicted / max(summary.seconds, 1e-9)
    done = f"{output}: {summary.resumed_after + summary.predicted} results ({summary.predicted} new, {rate:.0f}/s)"
    # `--output /dev/stdout` (a pipe, or a file by `>`): the results alone on standard output.
    typer.echo(done, err=not is_regular_file(output) or _is_standard_output(output))


def _is_standard_output(path: Path) -> bool:
    try:
        ours, theirs = os.fstat(sys.stdout.fileno()), path.stat()
    except (OSError, ValueError, AttributeError):  # no real standard output (closed, or captured in memory)
        return False
    return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)
