"""mtst against the peers over the same seeds: mean ± std of each system, and mtst's paired difference per seed.

    python benchmarks/peers/paired.py --corpus snips \
        --peers benchmarks/results/peers_snips.json benchmarks/results/peers_snips_seed14.json \
                benchmarks/results/peers_snips_seed15.json \
        --mtst "mtst, 3 epochs=benchmarks/results/grid_snips_e3_screen.json:crf+entity-weight-1" \
               "mtst, 7 epochs=benchmarks/results/grid_snips_full.json:crf+entity-weight-1" \
        --peer-variants hf-two-models flair-multitask-mtst-lr --output benchmarks/results/peers_snips_paired.json

The peers' files are benchmarks/peers/score.py's output (one seed's runs each; a run records its seed); mtst's
rows are an accuracy grid's per-seed test scores for one variant, named `LABEL=FILE:VARIANT`. Every row is
scored on test by mtst's own scorer; nothing here chooses anything (the recipe was chosen on dev by the grid).
A paired difference is taken only on the seeds both systems ran.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mtst.files import write_json_atomic

# The table's metrics: (peer score key, grid test key, column title)
METRICS = (
    ("intent_accuracy", "intent.accuracy", "intent acc"),
    ("slot_precision", "slots.precision", "slot P"),
    ("slot_recall", "slots.recall", "slot R"),
    ("slot_f1", "slots.f1", "slot F1"),
    ("sentence_accuracy", "sentence_accuracy", "sentence acc"),
)


def run_seed(run: dict) -> int | None:
    """The seed a peer run trained with; the first two-models runs kept it in their recipe."""
    recipe = run.get("recipe")
    return run.get("seed", recipe.get("seed") if isinstance(recipe, dict) else None)


def peer_scores(files: list[Path], variants: list[str] | None) -> dict[str, dict[int, dict[str, float]]]:
    """{peer variant: {seed: {metric: percent}}} from score.py's result files; `variants` None keeps every one."""
    systems: dict[str, dict[int, dict[str, float]]] = {}
    for file in files:
        for result in json.loads(file.read_text())["results"]:
            seed = run_seed(result["run"])
            if variants is not None and result["variant"] not in variants:
                continue
            if seed is None:
                continue  # a run that recorded no seed cannot be paired
            scores = {key: 100 * result["test"][key] for key, _, _ in METRICS if result["test"].get(key) is not None}
            systems.setdefault(result["variant"], {})[seed] = scores
    return systems


def mtst_scores(spec: str) -> tuple[str, dict[int, dict[str, float]]]:
    """`LABEL=FILE:VARIANT` -> (LABEL, {seed: {metric: percent}}) from an accuracy grid's result file."""
    label, _, rest = spec.partition("=")
    file, _, variant = rest.rpartition(":")
    if not label or not file or not variant:
        raise SystemExit(f"error: --mtst {spec!r}: expected LABEL=FILE:VARIANT")
    rows = [row for row in json.loads(Path(file).read_text())["runs"] if row["variant"] == variant]
    if not rows:
        raise SystemExit(f"error: {file}: no runs of variant {variant!r}")
    return label, {row["seed"]: {peer: 100 * row["test"][grid] for peer, grid, _ in METRICS} for row in rows}


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(systems: dict[str, dict[int, dict[str, float]]], ours: list[str]) -> dict:
    """Each system's mean ± std, and each mtst row minus each peer on the seeds both have."""
    summary: dict = {"systems": {}, "paired": []}
    for name, by_seed in systems.items():
        seeds = sorted(by_seed)
        summary["systems"][name] = {
            "seeds": seeds,
            "per_seed": {str(seed): by_seed[seed] for seed in seeds},
            **{key: mean_std([by_seed[s][key] for s in seeds]) for key, _, _ in METRICS if key in by_seed[seeds[0]]},
        }
    for mine in ours:
        for peer in (name for name in systems if name not in ours):
            seeds = sorted(set(systems[mine]) & set(systems[peer]))
            if not seeds:
                continue
            deltas = {
                key: [round(systems[mine][s][key] - systems[peer][s][key], 2) for s in seeds]
                for key, _, _ in METRICS
                if all(key in systems[peer][s] for s in seeds)
            }
            summary["paired"].append({"mtst": mine, "peer": peer, "seeds": seeds, "deltas": deltas})
    return summary


def table(summary: dict) -> str:
    lines = ["| system (test) | seeds | " + " | ".join(title for _, _, title in METRICS) + " |"]
    lines.append("|---|---|" + "---|" * len(METRICS))
    for name, row in summary["systems"].items():
        cells = [f"{row[key]['mean']:.2f} ± {row[key]['std']:.2f}" if key in row else "–" for key, _, _ in METRICS]
        lines.append(f"| {name} | {', '.join(map(str, row['seeds']))} | " + " | ".join(cells) + " |")
    lines += ["", "| mtst minus peer, per seed (points) | seeds | " + " | ".join(t for _, _, t in METRICS) + " |"]
    lines.append("|---|---|" + "---|" * len(METRICS))
    for pair in summary["paired"]:
        cells = [
            " / ".join(f"{d:+.2f}" for d in pair["deltas"][key]) if key in pair["deltas"] else "–"
            for key, _, _ in METRICS
        ]
        seeds = ", ".join(map(str, pair["seeds"]))
        lines.append(f"| {pair['mtst']} − {pair['peer']} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--peers", type=Path, nargs="+", required=True, help="score.py result files")
    parser.add_argument("--peer-variants", nargs="+", help="the peers' variants to show (default: all)")
    parser.add_argument("--mtst", nargs="+", required=True, help="LABEL=GRID_RESULT.json:VARIANT")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    ours = dict(mtst_scores(spec) for spec in args.mtst)
    systems = {**ours, **peer_scores(args.peers, args.peer_variants)}
    summary = {"corpus": args.corpus, **summarise(systems, list(ours))}
    print(table(summary))
    if args.output:
        write_json_atomic(args.output, summary, indent=2)


if __name__ == "__main__":
    main()
