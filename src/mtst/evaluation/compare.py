"""`mtst compare`: the same data and seed trained once per freezing strategy, then set side by side.

Writes OUTPUT/<strategy>/ (each a normal run), comparison.json, comparison.md, plots/<metric>.png (one line
per strategy) and plots/train_loss.<task>.png, and a table of the same held-out sentences as each predicts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

# Figures are built with the object-oriented API (no pyplot), so no global backend is set or needed.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mtst.config import Config
from mtst.files import atomic_file, write_json_atomic, write_text_atomic
from mtst.inference.predictor import describe
from mtst.training.strategies import STRATEGY_SPECS, parse_strategy

logger = logging.getLogger(__name__)
SENTENCES_PER_CORPUS = 5


def run_folder(spec: str) -> str:
    return spec.replace(":", "-")


def compare(config: Config, strategies: list[str], output_dir: str | Path, sentences: list[str] | None = None) -> dict:
    """Trains one run per strategy into OUTPUT/<strategy>/ and writes the comparison artifacts."""
    from mtst.data import load_corpora
    from mtst.errors import ConfigError
    from mtst.training.loop import train

    if not strategies:
        raise ConfigError(
            f"--strategies names no strategy; give them comma-separated, from {', '.join(STRATEGY_SPECS)}"
        )
    parsed = {strategy.spec: strategy for strategy in map(parse_strategy, strategies)}
    if len(parsed) != len(strategies):
        raise ConfigError(f"--strategies must name distinct strategies, got {','.join(strategies)}")
    strategies = list(parsed)
    output = Path(output_dir)
    corpora = load_corpora(config)  # once: every strategy sees the very same examples
    if sentences is None:
        sentences = [ex.text for corpus in corpora for ex in corpus.splits.dev[:SENTENCES_PER_CORPUS]]
    runs = {}
    for spec in strategies:
        logger.info("strategy %s", spec)
        run_config = config.model_copy(
            update={
                "strategy": parsed[spec],
                "output_dir": str(output / run_folder(spec)),
            }
        )
        summary = train(run_config, corpora)
        history = [json.loads(line) for line in (output / run_folder(spec) / "metrics.jsonl").read_text().splitlines()]
        runs[spec] = {"summary": summary, "history": history}
    predictions, trained_tasks = _predict(output, strategies, sentences)
    result = {
        "strategies": strategies,
        "tasks": [task.name for task in config.tasks],
        "runs": runs,
        "sentences": sentences,
        "predictions": predictions,
    }
    write_json_atomic(output / "comparison.json", result, indent=2, ensure_ascii=False)
    write_text_atomic(output / "comparison.md", render_markdown(result, config, trained_tasks))
    plot_overlays(runs, [task.name for task in config.tasks], output / "plots")
    return result


def _predict(output: Path, strategies: list[str], sentences: list[str]) -> tuple[dict[str, list[dict]], dict]:
    """Each run's predictions of `sentences`, and the tasks as trained (the same in every run)."""
    from mtst.inference.predictor import Predictor

    predictors = {spec: Predictor.from_checkpoint(output / run_folder(spec) / "best") for spec in strategies}
    predictions = {spec: predictor.predict(sentences) if sentences else [] for spec, predictor in predictors.items()}
    return predictions, predictors[strategies[0]].model.tasks


def _headline_keys(runs: dict) -> list[str]:
    """Main metric per task, sentence accuracy and score: the columns worth comparing."""
    keys: list[str] = []
    for run in runs.values():
        for key in [*run["summary"]["dev"], *run["summary"]["test"]]:
            if key not in keys and not key.endswith((".loss", ".precision", ".recall")):
                keys.append(key)
    return keys


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def render_markdown(result: dict, config: Config, tasks: dict) -> str:
    runs = result["runs"]
    keys = _headline_keys(runs)
    first = next(iter(runs.values()))["summary"]
    lines = [
        "# Strategy comparison",
        "",
        f"Same data and seed ({config.train.seed}) for every strategy; up to {config.train.epochs} epochs, "
        f"{first['train_examples']} train sentences, early stopping on dev `{config.train.early_stopping_metric}`. "
        "Test numbers are from each run's best dev epoch.",
        "",
        "| strategy | "
        + " | ".join(f"dev {k}" for k in keys)
        + " | "
        + " | ".join(f"test {k}" for k in keys)
        + " | best epoch | epochs run | wall time (s) | trainable parameters |",
        "|" + "---|" * (2 * len(keys) + 5),
    ]
    for spec, run in runs.items():
        summary = run["summary"]
        trainable = summary["parameters"]["trainable_by_epoch"]
        shown = f"{trainable[0]:,}" if len(set(trainable)) == 1 else " → ".join(f"{n:,}" for n in trainable)
        cells = [_cell(summary["dev"].get(k)) for k in keys] + [_cell(summary["test"].get(k)) for k in keys]
        lines.append(
            f"| {spec} | "
            + " | ".join(cells)
            + f" | {summary['best_epoch']} | {summary['epochs_run']} | {summary['wall_time_s']:.0f} | {shown} |"
        )
    lines += ["", f"Total parameters: {first['parameters']['total']:,}.", "", "## Held-out sentences", ""]
    for index, sentence in enumerate(result["sentences"]):
        lines += [f"**{sentence}**", "", "| strategy | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
        for spec in runs:
            prediction = result["predictions"][spec][index]
            lines.append(f"| {spec} | " + " | ".join(describe(tasks, prediction).values()) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_overlays(runs: dict, tasks: list[str], folder: Path) -> None:
    """One PNG per dev metric and one per task's training loss; one line per strategy."""
    folder.mkdir(parents=True, exist_ok=True)
    series: dict[str, dict[str, tuple[list, list]]] = {}
    for spec, run in runs.items():
        for row in run["history"]:
            points = {f"dev.{k}": v for k, v in row["dev"].items()}
            points.update({f"train_loss.{t}": row["train_loss"].get(t) for t in tasks})
            for metric, value in points.items():
                if value is not None:
                    xs, ys = series.setdefault(metric, {}).setdefault(spec, ([], []))
                    xs.append(row["epoch"])
                    ys.append(value)
    for metric, lines in series.items():
        figure = Figure(figsize=(6, 4))
        axis = figure.subplots()
        for spec, (xs, ys) in lines.items():
            axis.plot(xs, ys, marker="o", label=spec)
        axis.set(title=metric, xlabel="epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        with atomic_file(folder / f"{metric}.png") as tmp:
            figure.savefig(tmp, dpi=100)
