"""`mtst suggest`: the unlabelled sentences worth labelling next, pre-annotated for correction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.common import app, friendly_errors, setup_logging
from mtst.errors import MtstError

STRATEGY_HELP = "joint (intent entropy + slot MNLP), margin, entropy, mnlp, bald (MC dropout) or random."
FORMAT_HELP = "mtst (JSONL), label-studio (tasks with predictions) or doccano (JSONL); the readers take each back."


@app.command()
@friendly_errors
def suggest(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    pool: Annotated[Path, typer.Option("--pool", help="Unlabelled sentences: one per line, or any data file.")],
    budget: Annotated[int, typer.Option("--budget", "-n", min=1, help="How many sentences to choose.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where the chosen sentences go.")],
    strategy: Annotated[str, typer.Option("--strategy", help=STRATEGY_HELP)] = "joint",
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "mtst",
    diversity: Annotated[
        bool, typer.Option("--diversity/--no-diversity", help="Best of each k-means cluster of embeddings first.")
    ] = True,
    mc_samples: Annotated[int, typer.Option("--mc-samples", min=2, help="Dropout passes of the heads for bald.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="For random and the clustering.")] = 13,
) -> None:
    """Choose the sentences whose labels should help the joint model most, pre-annotated with its predictions."""
    from mtst.inference.suggest import STRATEGIES, read_pool
    from mtst.inference.suggest import suggest as choose
    from mtst.inference.suggest_output import FORMATS, write_suggestions
    from mtst.model.multitask import MultiTaskModel

    setup_logging()
    if strategy not in STRATEGIES:
        raise MtstError(f"unknown --strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if fmt not in FORMATS:
        raise MtstError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    texts = read_pool(pool)
    if not texts:
        raise MtstError(f"{pool}: no sentences in the pool")
    model = MultiTaskModel.from_pretrained(checkpoint)
    results, reasons = choose(model, texts, budget, strategy, diversity, seed, mc_samples)
    write_suggestions(results, reasons, fmt, output)
    typer.echo(f"wrote {len(results)} of {len(texts)} pool sentences to {output} ({strategy}, {fmt})")
