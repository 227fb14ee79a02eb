"""`mtst demo`: train on the bundled corpus, then show predictions for sentences it never saw."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from mtst.cli.common import app, friendly_errors, setup_logging
from mtst.config import Config, validate_config

DEMO_DIR = resources.files("mtst") / "resources" / "demo"
# Held out from the corpus (scripts/build_demo_corpus.py checks): the demo shows how the model generalises.
HELD_OUT = (DEMO_DIR / "held_out.txt").read_text(encoding="utf-8").splitlines()


def demo_config(output_dir: Path, epochs: int | None = None) -> Config:
    """The demo's settings; `epochs` (None: 10) is validated like any config value."""
    return validate_config(
        {
            "data": {"dir": str(DEMO_DIR), "format": "jsonl"},
            "tasks": [{"name": "topic", "type": "sentence"}, {"name": "entities", "type": "token"}],
            # A few hundred sentences: a higher encoder LR and more epochs than the big-corpus defaults. 10
            # epochs: a 20-epoch run with these settings peaked on the demo's dev split at epoch 8
            # (BENCHMARKS.md, "The demo"); with batches grouped by length and the word embeddings frozen the
            # demo took 47 s on 2 idle cores.
            "train": {
                "epochs": 10 if epochs is None else epochs,
                "batch_size": 16,
                "encoder_lr": 1e-4,
                "patience": 6,
                "num_sample_predictions": 2,
                "group_by_length": True,
            },
            "strategy": {"word_embeddings": "frozen"},
            "output_dir": str(output_dir),
        }
    )


def prediction_table(results: list[dict]):
    from rich.table import Table

    table = Table(title="held-out sentences", show_lines=True)
    for column in ("sentence", "topic", "entities"):
        table.add_column(column)
    for result in results:
        found = "\n".join(f"{e['text']} → {e['label']} ({e['score']:.2f})" for e in result["entities"]) or "-"
        table.add_row(result["text"], f"{result['label']} ({result['score']:.2f})", found)
    return table


def run_demo(output_dir: Path, epochs: int | None = None) -> list[dict]:
    from rich.console import Console

    from mtst.inference.predictor import Predictor
    from mtst.training.loop import train

    config = demo_config(output_dir, epochs)
    summary = train(config)
    results = Predictor.from_checkpoint(Path(config.output_dir) / "best").predict(HELD_OUT)
    console = Console()
    console.print(prediction_table(results))
    console.print(f"test split of the demo corpus: {summary['test']}")
    return results


@app.command()
@friendly_errors
def demo(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o")] = Path("runs/demo"),
    epochs: Annotated[int | None, typer.Option("--epochs")] = None,
) -> None:
    """Train on the bundled corpus with the packaged encoder, then predict six held-out sentences."""
    typer.echo("mtst demo: loading torch and the encoder, then training on the bundled corpus", err=True)
    setup_logging()
    run_demo(output_dir, epochs)
