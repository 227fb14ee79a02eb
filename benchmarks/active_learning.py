"""Does choosing what to label pay? Simulated annotation rounds on a labelled corpus, one line per strategy.

python benchmarks/active_learning.py snips --data-dir ../shared/data/snips --strategies random joint mnlp bald \\
    --seeds 13 14 15 --start 100 --batch 100 --rounds 10 --epochs 6

Strategies can run side by side, each in its own slot and result file (`--strategies joint --output
.../active_learning_atis_joint.json`); a last run over all of them with `--read-also` those files trains nothing
and writes the combined result, plot and headline.

Per strategy and seed: start from `--start` random train sentences, train mtst (configs/DATASET.yaml, `--epochs`
epochs, the best epoch picked on dev), score dev and test, then let the strategy pick `--batch` more from the
rest of train (`mtst suggest`'s scoring and diversity, from the round's checkpoint) and reveal their gold
labels; `--rounds` times. `random` is the control. Every finished round is written to the result JSON
(benchmarks/results/active_learning_DATASET.json) and read back on a rerun, so the command resumes. It also
plots slot F1, intent accuracy and sentence accuracy against labelled sentences (strategies as lines, the
seeds' range as a band) and, given `--full-slot-f1` (the full-data dev slot F1), the labelled sentences each
strategy needed to reach 95% and 98% of it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
from pathlib import Path

import torch

from machine import started_record, write_result
from mtst.config import load_config
from mtst.data import Splits, load_splits
from mtst.inference.suggest import STRATEGIES, distinct, scores, select, uncertainties
from mtst.model.multitask import MultiTaskModel
from mtst.training.loop import train

HEADLINES = {"slot_f1": "slots.f1", "intent": "intent.accuracy", "sentence": "sentence_accuracy"}


def train_round(config, splits: Splits, labelled: list[int], folder: Path) -> tuple[dict, Path]:
    subset = Splits([splits.train[i] for i in labelled], splits.dev, splits.test)
    run = config.model_copy(update={"output_dir": str(folder)}, deep=True)
    summary = train(run, subset)
    metrics = {split: {k: 100 * summary[split][v] for k, v in HEADLINES.items()} for split in ("dev", "test")}
    return metrics, folder / "best"


def pick(checkpoint: Path, splits: Splits, labelled: list[int], strategy: str, batch: int, seed: int) -> list[int]:
    """The next `batch` train indices the strategy chooses from the unlabelled rest."""
    rest = [i for i in range(len(splits.train)) if i not in set(labelled)]
    texts = [splits.train[i].text for i in rest]
    kept = distinct(texts)
    index_of = {text: rest[position] for position, text in reversed(list(enumerate(texts)))}
    if strategy == "random":
        return random.Random(seed + len(labelled)).sample(rest, min(batch, len(rest)))
    model = MultiTaskModel.from_pretrained(checkpoint)
    rows, embeddings = uncertainties(model, kept, mc_samples=8 if strategy == "bald" else 0)
    chosen = select(scores(rows, strategy, seed), batch, embeddings, seed)
    return [index_of[kept[i]] for i in chosen]


def run_curve(args, config, splits: Splits, strategy: str, seed: int, done: list[dict], save) -> list[dict]:
    """The strategy's rounds for one seed, continuing after those already `done` (their last checkpoint is
    trained again when an earlier session took it away)."""
    rows, runs = list(done), args.runs / args.dataset / strategy / f"seed-{seed}"
    labelled = (
        rows[-1]["labelled_indices"] if rows else random.Random(seed).sample(range(len(splits.train)), args.start)
    )
    config = config.model_copy(deep=True)
    config.train.seed = seed
    for round_number in range(len(rows), args.rounds + 1):
        if rows:  # every round after the first adds the strategy's choice to what is labelled
            previous = runs / f"round-{round_number - 1}"
            if not (previous / "best").is_dir():
                train_round(config, splits, labelled, previous)
            labelled = labelled + pick(previous / "best", splits, labelled, strategy, args.batch, seed)
            shutil.rmtree(previous)  # a checkpoint per round would fill the disk
        metrics, _ = train_round(config, splits, labelled, runs / f"round-{round_number}")
        rows.append({"round": round_number, "labelled": len(labelled), **metrics, "labelled_indices": labelled})
        save(rows)
        print(
            f"{strategy} seed {seed} round {round_number}: {len(labelled)} labelled, dev {metrics['dev']}", flush=True
        )
    return rows


def needed(curves: dict, target: float, metric: str = "slot_f1") -> dict[str, float | None]:
    """Per strategy, the mean over seeds (issue 26's measure) of the labelled count at which dev `metric` first
    reaches `target`; None when a seed never does."""
    result = {}
    for strategy, by_seed in curves.items():
        counts = []
        for rows in by_seed.values():
            hit = next((row["labelled"] for row in rows if row["dev"][metric] >= target), None)
            counts.append(hit)
        result[strategy] = statistics.mean(counts) if counts and None not in counts else None
    return result


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for axis, metric in zip(axes, HEADLINES, strict=True):
        for strategy, by_seed in curves.items():
            rounds = min(len(rows) for rows in by_seed.values())
            x = [list(by_seed.values())[0][r]["labelled"] for r in range(rounds)]
            values = [[rows[r]["test"][metric] for rows in by_seed.values()] for r in range(rounds)]
            axis.plot(x, [statistics.mean(v) for v in values], label=strategy)
            axis.fill_between(x, [min(v) for v in values], [max(v) for v in values], alpha=0.2)
        axis.set(xlabel="labelled sentences", ylabel=f"test {metric}", title=metric)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="default: configs/DATASET.yaml")
    parser.add_argument("--strategies", nargs="+", default=["random", "joint"], choices=STRATEGIES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10, help="rounds after the first training")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--full-slot-f1", type=float, help="the full-data dev slot F1, for the 95%% / 98%% headline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=Path("runs/active_learning"))
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--read-also",
        type=Path,
        nargs="*",
        default=[],
        help="result files whose finished rounds count as done (strategies simulated in parallel, one file each)",
    )
    args = parser.parse_args(argv)
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.output = args.output or Path("benchmarks/results") / f"active_learning_{args.dataset}.json"
    return args


def finished_curves(paths: list[Path]) -> dict:
    """Strategy -> seed -> rounds from earlier result files; of two files with the same curve, the longer wins."""
    curves: dict = {}
    for path in paths:
        if not path.is_file():
            continue
        for strategy, by_seed in json.loads(path.read_text()).get("curves", {}).items():
            for seed, rows in by_seed.items():
                known = curves.setdefault(strategy, {}).get(seed, [])
                curves[strategy][seed] = rows if len(rows) > len(known) else known
    return curves


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result = started_record(args)
    earlier = finished_curves([*args.read_also, args.output])
    config = load_config(args.config, **{"data.dir": str(args.data_dir)})
    config.train.epochs, config.train.patience, config.train.num_sample_predictions = args.epochs, args.epochs, 0
    splits = load_splits(config.data)
    curves = result["curves"] = {}
    for strategy in args.strategies:
        curves[strategy] = {}
        for seed in args.seeds:
            done = earlier.get(strategy, {}).get(str(seed), [])[: args.rounds + 1]

            def save(rows, strategy=strategy, seed=seed) -> None:
                curves[strategy][str(seed)] = rows
                write_result(result, args.output)

            curves[strategy][str(seed)] = run_curve(args, config, splits, strategy, seed, done, save)
    if args.full_slot_f1:
        result["labelled_needed"] = {
            f"{share}% of {args.full_slot_f1}": needed(curves, share / 100 * args.full_slot_f1) for share in (95, 98)
        }
    write_result(result, args.output)
    plot(curves, args.output.with_suffix(".png"))
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
