"""`mtst export`: ONNX (and int8) for CPU inference, or the encoder as a sentence-transformers folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.common import app, friendly_errors
from mtst.errors import MtstError


@app.command()
@friendly_errors
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    export_format: Annotated[str, typer.Option("--format", help="onnx, or sentence-transformers.")] = "onnx",
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="int8: also write model.int8.onnx (dynamic quantization).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="sentence-transformers: the folder (default CHECKPOINT/sentence-transformers)."
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace --output even when it is a file or a folder mtst did not write."),
    ] = False,
) -> None:
    """Export the whole model (encoder, pooling, every head) for CPU inference into the checkpoint folder.

    Writes model.onnx (and model.int8.onnx) plus onnx_export.json; use them with `predict --backend onnx`.
    `--format sentence-transformers` writes the fine-tuned encoder as a folder SentenceTransformer(path) loads.
    """
    if export_format not in ("onnx", "sentence-transformers"):
        raise MtstError(f"unknown export format {export_format!r}; choose one of onnx, sentence-transformers")
    if export_format == "sentence-transformers":
        if quantize is not None:
            raise MtstError("--quantize applies to --format onnx only")
        from mtst.export.sentence_transformers import export_sentence_transformers

        typer.echo(f"{export_sentence_transformers(checkpoint, output, overwrite)}  (SentenceTransformer(path).encode)")
        return
    if output is not None:
        raise MtstError("--output applies to --format sentence-transformers; ONNX files go into the checkpoint")
    from mtst.export.onnx import export_onnx

    note = export_onnx(checkpoint, quantize)
    for name, entry in note["files"].items():
        difference = max(entry["max_abs_logit_difference"].values())
        typer.echo(f"{checkpoint / name}  (max |logit - PyTorch| on a check batch: {difference:.2g})")
