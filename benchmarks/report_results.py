"""Rewrite the generated blocks of README.md / BENCHMARKS.md from the committed result files.

    python benchmarks/report_results.py README.md BENCHMARKS.md

A block sits between `<!-- NAME -->` and `<!-- /NAME -->`; the text outside the markers is hand-written and
left alone. Blocks (each from files in benchmarks/results):
- `full-length`: the default recipe and the one it replaced at the committed schedules, per corpus
  (grid_CORPUS_full_pooling.json);
- `peers-paired`: mtst against the peers over the same seeds (peers_snips_paired.json, benchmarks/peers/paired.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
RECIPE = "crf+entity-weight-1"
DEFAULT = "crf+entity-weight-1+pooling-first-last"
# (label, variant) of each corpus's rows: today's default, then the recipe it replaced.
FULL_LENGTH_VARIANTS = (
    ("default (first_last)", DEFAULT),
    ("first sub-token (the default until December 3)", RECIPE),
)
FULL_LENGTH_COMMAND = """```bash
python benchmarks/accuracy_grid.py atis --data-dir ../shared/data/atis --seeds 13 14 15 --jobs 1 --threads 1 \\
    --variants crf+entity-weight-1 crf+entity-weight-1+pooling-first-last \\
    --output benchmarks/results/grid_atis_full_pooling.json
python benchmarks/accuracy_grid.py snips --data-dir ../shared/data/snips --seeds 13 14 15 --jobs 1 --threads 1 \\
    --variants crf+entity-weight-1 crf+entity-weight-1+pooling-first-last \\
    --output benchmarks/results/grid_snips_full_pooling.json
```"""
PEERS_COMMAND = """```bash
python benchmarks/peers/paired.py --corpus snips --peers benchmarks/results/peers_snips.json \\
    benchmarks/results/peers_snips_seed14.json benchmarks/results/peers_snips_seed15.json \\
    --peer-variants hf-two-models flair-multitask-mtst-lr \\
    --mtst "mtst, 3 epochs=benchmarks/results/grid_snips_e3_screen.json:crf+entity-weight-1" \\
           "mtst, 7 epochs, first sub-token=benchmarks/results/grid_snips_full.json:crf+entity-weight-1" \\
           "mtst, 7 epochs, default (first_last)=benchmarks/results/grid_snips_full_pooling.json:crf+entity-weight-1+pooling-first-last" \\
    --output benchmarks/results/peers_snips_paired.json
```"""  # noqa: E501 (one argument of the command, kept whole)
SPLIT_KEYS = {
    "dev": ("intent.accuracy", "slots.f1", "sentence_accuracy"),
    "test": ("intent.accuracy", "slots.precision", "slots.recall", "slots.f1", "sentence_accuracy"),
}


def _cell(stats: dict) -> str:
    return f"{stats['mean']:.2f} ± {stats['std']:.2f}"


def full_length_row(result: dict, corpus: str, label: str, name: str) -> str:
    variant = result["variants"][name]
    runs = sorted((row for row in result["runs"] if row["variant"] == name), key=lambda row: row["seed"])
    best = ", ".join(str(row["best_epoch"]) for row in runs)
    epochs = runs[0]["epochs_run"] if runs else "?"
    cells = [_cell(variant[split][key]) for split, keys in SPLIT_KEYS.items() for key in keys]
    seeds = variant["seeds_done"]
    seed_list = ", ".join(map(str, seeds))
    head = (
        f"{corpus}, {label}, {len(seeds)} seed{'s' * (len(seeds) != 1)} ({seed_list}); best epoch of {epochs}: {best}"
    )
    return f"| {head} | " + " | ".join(cells) + " |"


def full_length_block() -> str:
    rows = []
    for corpus in ("atis", "snips"):
        result = json.loads((RESULTS / f"grid_{corpus}_full_pooling.json").read_text())
        rows += [full_length_row(result, corpus.upper(), label, name) for label, name in FULL_LENGTH_VARIANTS]
    return "\n".join(
        [
            "The default recipe at the committed schedules (configs/atis.yaml 12 epochs, configs/snips.yaml 7; "
            "best epoch on dev), one slot, one thread per run, beside the recipe it replaced (same seeds):",
            "",
            FULL_LENGTH_COMMAND,
            "",
            "| run | dev: intent | slot F1 | sentence | test: intent | slot P | slot R | slot F1 | sentence |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "| DistilBERT (66M) + CRF, JointBERT README, best epoch on test: ATIS | | | | 97.65 | | | 95.89 | 88.24 |",
            "| same, SNIPS | | | | 98.57 | | | 96.46 | 91.85 |",
        ]
    )


def peers_paired_block() -> str:
    sys.path.insert(0, str(Path(__file__).parent / "peers"))
    from paired import table

    summary = json.loads((RESULTS / "peers_snips_paired.json").read_text())
    return "\n".join(
        [
            "SNIPS test, each system over the seeds it has run (mtst's recipe chosen on dev):",
            "",
            PEERS_COMMAND,
            "",
            table(summary),
        ]
    )


BLOCKS = {"full-length": full_length_block, "peers-paired": peers_paired_block}


def rewrite(text: str) -> str:
    """Every known block present in `text`, regenerated."""
    for name, build in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda match, build=build: match.group(1) + build() + "\n" + match.group(2), text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs="+", help="markdown files holding the blocks")
    for file in parser.parse_args(argv).files:
        file.write_text(rewrite(file.read_text()))
        print(f"rewrote the blocks of {file}")


if __name__ == "__main__":
    main()
