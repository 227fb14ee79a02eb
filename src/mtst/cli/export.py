"""`mtst export`: ONNX (and int8) for CPU inference, or the encoder as a sentence-transformers folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.common import app, friendly_errors
from mtst.errors import MtstError

# Plain constants: the command's help is built without importing onnxruntime (mtst.export.agreement needs it).
DEFAULT_TARGET, DEFAULT_MAX_SENTENCES, INT8_FILE = 0.995, 500, "model.int8.onnx"

AgreementDataOption = Annotated[
    Path | None,
    typer.Option(
        "--agreement-data",
        help="With --quantize int8: a data folder whose dev sentences the int8 graph must agree on with float32; "
        "encoder groups stay float32 until it does (recorded in onnx_export.json).",
    ),
]
AgreementOption = Annotated[
    float | None,
    typer.Option(
        "--agreement", help=f"With --agreement-data: the agreement every task must reach (default {DEFAULT_TARGET})."
    ),
]
MaxSentencesOption = Annotated[
    int | None,
    typer.Option(
        "--max-sentences",
        help=f"With --agreement-data: dev sentences used (default the first {DEFAULT_MAX_SENTENCES}).",
    ),
]
RefineOption = Annotated[
    bool | None,
    typer.Option(
        "--refine/--no-refine",
        help="With --agreement-data: after whole encoder blocks are chosen, quantize their sub-modules "
        "(attention.self.query, intermediate.dense, ...) one at a time while the target holds, keeping more "
        "of int8's speed (default on; --no-refine keeps whole blocks, with fewer trials).",
    ),
]


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
    agreement_data: AgreementDataOption = None,
    agreement: AgreementOption = None,
    max_sentences: MaxSentencesOption = None,
    refine: RefineOption = None,
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
        if quantize is not None or agreement_data is not None:
            raise MtstError("--quantize and --agreement-data apply to --format onnx only")
        from mtst.export.sentence_transformers import export_sentence_transformers

        typer.echo(f"{export_sentence_transformers(checkpoint, output, overwrite)}  (SentenceTransformer(path).encode)")
        return
    if output is not None:
        raise MtstError("--output applies to --format sentence-transformers; ONNX files go into the checkpoint")
    from mtst.export.onnx import export_onnx

    settings = _agreement_settings(agreement_data, agreement, max_sentences, refine)
    note = export_onnx(checkpoint, quantize, settings)
    for name, entry in note["files"].items():
        difference = max(entry["max_abs_logit_difference"].values())
        typer.echo(f"{checkpoint / name}  (max |logit - PyTorch| on a check batch: {difference:.2g})")
    if settings is not None:
        typer.echo(_agreement_line(note["files"][INT8_FILE]))


def _agreement_settings(data: Path | None, target: float | None, sentences: int | None, refine: bool | None):
    if data is None:
        if target is not None or sentences is not None or refine is not None:
            raise MtstError("--agreement, --max-sentences and --refine apply with --agreement-data DIR only")
        return None
    from mtst.export.agreement import AgreementSettings

    target = DEFAULT_TARGET if target is None else target
    sentences = DEFAULT_MAX_SENTENCES if sentences is None else sentences
    return AgreementSettings(data, target, sentences, refine=refine is not False)


def _agreement_line(entry: dict) -> str:
    reached = entry["agreement"]
    scores = ", ".join(f"{task} {score:.4f}" for task, score in reached["per_task"].items())
    verdict = "reached" if reached["reached"] else "NOT reached (best found kept)"
    return (
        f"int8 agreement with float32 on {reached['sentences']} dev sentences: {scores}; "
        f"target {reached['target']} {verdict}; float32: {', '.join(entry['float32_groups'])}"
    )
