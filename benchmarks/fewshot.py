"""Few-shot intents, SetFit against mtst: K sentences per intent x seeds x systems, one subprocess per run.

python benchmarks/fewshot.py snips --data-dir ../shared/data/snips --shots 8 16 32 --seeds 13 14 15 \\
    --systems setfit mtst mtst-contrastive --epochs 20 --threads 1 --output benchmarks/results/fewshot_snips.json

The seed is both the draw and the training seed: for (K, S), `setfit_peer.py subset --shots K --seed S` draws K train
and K dev sentences of each intent (test is the whole test split) into RUNS/DATASET/data/kK-sS, and every system
trains on that folder with `--seed S`; so the spread over seeds is mostly the draw's, and per-seed differences are
paired. Systems (BENCHMARKS.md, "Few-shot intents"): setfit (`setfit_peer.py train` in
benchmarks/peers/.venvs/setfit from `bash benchmarks/peers/setup.sh setfit`, SetFit's defaults, intents only);
mtst (`mtst_peer.py train --epochs N --config CONFIG`, best epoch on the K-per-intent dev); mtst-contrastive (the
same with --contrastive-config: SetFit's contrastive warm-up of the encoder before the heads).

Each run is scored by benchmarks/peers/score.py's `score_run` and the result JSON is rewritten atomically after it.
A rerun reads finished runs back and trains only the missing ones (a run folder without a row, killed or failed, is
cleared first); rows are reused only from a file written with the same RECORD_KEYS settings. The summary holds,
per K and system, mean ± std over seeds (points) of intent accuracy (slot F1 and sentence accuracy for mtst) and of
wall seconds, and per K each mtst system minus SetFit per seed. `--markdown` prints an existing file's tables.

`--evaluate-on dev` chooses a few-shot option without looking at test: runs are scored on the corpus's dev split
less the K-per-intent dev sentences that run early-stopped on, in folders of their own (`kK-sS-on-dev`), and the
rows hold `dev` scores instead of `test`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine import mean_std as spread
from machine import plain, report_grid, started_record, write_result
from mtst.data.formats.jointbert import read_jointbert

PEERS = Path(__file__).resolve().parent / "peers"
sys.path.insert(0, str(PEERS))
import paired  # noqa: E402
import score  # noqa: E402
import setfit_peer  # noqa: E402
from peer_io import read_split, write_split  # noqa: E402

SYSTEMS = ("setfit", "mtst", "mtst-contrastive")
PEER = "setfit"  # the system every mtst system is differenced against
SETFIT_PYTHON = PEERS / ".venvs" / "setfit" / "bin" / "python"
# An earlier result file's rows are reused only when it was written with these settings unchanged.
RECORD_KEYS = ("dataset", "data_dir", "epochs", "config", "contrastive_config", "evaluate_on")
UNRECORDED = {"evaluate_on": "test"}  # what a file written before the setting existed was run with
# (score key, column title) of the table; SetFit has intent accuracy only.
COLUMNS = (("intent_accuracy", "intent acc"), ("slot_f1", "slot F1"), ("sentence_accuracy", "sentence acc"))


def _draw_name(args, shots: int, seed: int) -> str:
    return f"k{shots}-s{seed}" + ("-on-dev" if args.evaluate_on == "dev" else "")


def data_folder(args, shots: int, seed: int) -> Path:
    return args.runs / args.dataset / "data" / _draw_name(args, shots, seed)


def run_folder(args, shots: int, seed: int, system: str) -> Path:
    return args.runs / args.dataset / _draw_name(args, shots, seed) / system


def draw(args, shots: int, seed: int) -> tuple[int, int]:
    """The (K, seed) subset, written by setfit_peer.py's own `subset` (the BENCHMARKS.md command); the same draw
    every time, so rewriting it before a run is harmless."""
    folder = data_folder(args, shots, seed)
    setfit_peer.subset(argparse.Namespace(data_dir=str(args.data_dir), shots=shots, seed=seed, output=str(folder)))
    if args.evaluate_on == "dev":  # the folder's test split becomes the dev sentences this draw did not take
        drawn = {(tuple(s.words), s.intent) for s in read_split(folder, "dev")}
        held_out = [s for s in read_split(args.data_dir, "dev") if (tuple(s.words), s.intent) not in drawn]
        write_split(folder / "test", held_out)
    return shots, seed


def train_command(args, system: str, data: Path, run: Path, seed: int) -> list[str]:
    common = ["--data-dir", str(data), "--output", str(run), "--seed", str(seed), "--threads", str(args.threads)]
    if system == "setfit":
        return [str(args.setfit_python), str(PEERS / "setfit_peer.py"), "train", *common]
    config = args.config if system == "mtst" else args.contrastive_config
    mtst = [sys.executable, str(PEERS / "mtst_peer.py"), "train", "--corpus", args.dataset]
    return [*mtst, "--epochs", str(args.epochs), "--config", str(config), *common]


def launch(command: list[str], log, env: dict[str, str]) -> int:
    """One run as its own process, its output into `log`; the exit status."""
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def finished_row(run: Path, shots: int, seed: int, system: str, wall_seconds: float, examples, split: str) -> dict:
    """A finished run's scores on `split` (fractions, as score.py writes them), its wall time and run record."""
    record = json.loads((run / "run.json").read_text())
    return {
        "shots": shots,
        "seed": seed,
        "system": system,
        "run": str(run),
        "wall_seconds": round(wall_seconds, 1),
        "train_seconds": record.get("train_seconds"),
        "train_peak_rss_mb": record.get("train_peak_rss_mb"),
        split: score.score_run(run, examples),
    }


def recorded_rows(args) -> dict[tuple[int, int, str], dict]:
    """(K, seed, system) -> row of an earlier result file written with the same RECORD_KEYS settings."""
    if not args.output.is_file():
        return {}
    earlier = json.loads(args.output.read_text())
    settings = earlier.get("settings", {})
    changed = [key for key in RECORD_KEYS if settings.get(key, UNRECORDED.get(key)) != plain(getattr(args, key))]
    if changed:
        print(f"{args.output} was written with other {', '.join(changed)}: its runs are not reused", flush=True)
        return {}
    return {(row["shots"], row["seed"], row["system"]): row for row in earlier.get("runs", [])}


def summarise(rows: list[dict]) -> dict:
    """Per K: each system's mean ± std over seeds (points; wall time in seconds) and each mtst system minus
    SetFit per seed, on the seeds both ran (paired.py's summary, with the mean ± std of the differences)."""
    summary = {}
    for shots in sorted({row["shots"] for row in rows}):
        at_k = [row for row in rows if row["shots"] == shots]
        systems: dict[str, dict[int, dict[str, float]]] = {}
        for row in at_k:
            scores = {key: 100 * value for key, value in _scores(row).items() if value is not None}
            systems.setdefault(row["system"], {})[row["seed"]] = scores
        ordered = {name: systems[name] for name in sorted(systems, key=_order)}
        result = paired.summarise(ordered, [name for name in ordered if name != PEER])
        for name, stats in result["systems"].items():
            runs = [row for row in at_k if row["system"] == name]
            for key in ("wall_seconds", "train_seconds"):
                if all(row.get(key) is not None for row in runs):
                    stats[key] = spread([row[key] for row in runs])
        for pair in result["paired"]:
            pair["name"] = f"{pair['mtst']} − {pair['peer']}"
            pair["intent_accuracy_difference"] = spread(pair["deltas"]["intent_accuracy"])
        summary[str(shots)] = result
    return summary


def _scores(row: dict) -> dict:
    return row["test"] if "test" in row else row["dev"]


def _order(system: str) -> int:
    return SYSTEMS.index(system) if system in SYSTEMS else len(SYSTEMS)


def save(args, result: dict, rows: dict[tuple[int, int, str], dict]) -> None:
    result["runs"] = sorted(rows.values(), key=lambda row: (row["shots"], row["seed"], _order(row["system"])))
    result["summary"] = summarise(result["runs"])
    write_result(result, args.output)


def _cell(stats: dict | None, pattern: str = "{:.2f}", scale: float = 1.0) -> str:
    if stats is None:
        return "—"
    return f"{pattern.format(stats['mean'] / scale)} ± {pattern.format(stats['std'] / scale)}"


def table(result: dict) -> str:
    """The BENCHMARKS.md tables: mean ± std over seeds per K and system, then the paired differences."""
    on_dev = result.get("settings", {}).get("evaluate_on") == "dev"
    lines = ["Scored on dev, less the K-per-intent dev sentences each run early-stopped on:", ""] if on_dev else []
    lines += [
        "| K | system | seeds | " + " | ".join(title for _, title in COLUMNS) + " | wall per run (min) |",
        "|---|---|---|" + "---|" * len(COLUMNS) + "---|",
    ]
    for shots, at_k in result["summary"].items():
        for name, stats in at_k["systems"].items():
            cells = [_cell(stats.get(key)) for key, _ in COLUMNS]
            cells.append(_cell(stats.get("wall_seconds"), "{:.1f}", scale=60))
            lines.append(f"| {shots} | {name} | {', '.join(map(str, stats['seeds']))} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| K | intent acc, paired difference (points) | seeds | per seed | mean ± std |",
        "|---|---|---|---|---|",
    ]
    for shots, at_k in result["summary"].items():
        for pair in at_k["paired"]:
            per_seed = " / ".join(f"{delta:+.2f}" for delta in pair["deltas"]["intent_accuracy"])
            difference = pair["intent_accuracy_difference"]
            mean_std = f"{difference['mean']:+.2f} ± {difference['std']:.2f}"
            seeds = ", ".join(map(str, pair["seeds"]))
            lines.append(f"| {shots} | {pair['name']} | {seeds} | {per_seed} | {mean_std} |")
    return "\n".join(lines)


def check_inputs(args) -> None:
    """What a run needs, before anything trains: a missing SetFit venv is one line and exit status 2."""
    if "setfit" in args.systems and not Path(args.setfit_python).is_file():
        missing = f"no SetFit venv ({args.setfit_python} is missing)"
        print(f"error: {missing}; make it with: bash benchmarks/peers/setup.sh setfit", file=sys.stderr)
        sys.exit(2)
    for system, config in (("mtst", args.config), ("mtst-contrastive", args.contrastive_config)):
        if system in args.systems and not config.is_file():
            sys.exit(
                f"error: {system}: no config {config} (give one with --{'contrastive-' * (system != 'mtst')}config)"
            )
    if not (args.data_dir / "test").is_dir():
        sys.exit(f"error: {args.data_dir}/test: no such folder (--data-dir is a JointBERT corpus)")


def train_run(args, shots: int, seed: int, system: str, env: dict[str, str]) -> dict | str:
    """One run trained from a clean folder and scored: its row, or why it failed."""
    run, name = run_folder(args, shots, seed, system), f"K={shots} seed {seed} {system}"
    if run.exists():
        print(f"clearing {run}: a run with no row (interrupted or failed)", flush=True)
        shutil.rmtree(run)
    run.parent.mkdir(parents=True, exist_ok=True)
    command = train_command(args, system, data_folder(args, shots, seed), run, seed)
    print(f"start {name}: {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    with open(run.parent / f"{system}.log", "a") as log:
        code = launch(command, log, env)
    wall = time.perf_counter() - started
    if code != 0:
        return f"{name}: exit {code}, see {run.parent / f'{system}.log'}"
    try:
        examples = read_jointbert(data_folder(args, shots, seed) / "test")
        row = finished_row(run, shots, seed, system, wall, examples, args.evaluate_on)
    except (SystemExit, OSError, ValueError) as error:  # no or bad predictions: score.py says which line
        return f"{name}: {error}"
    print(f"done {name}: intent accuracy {100 * _scores(row)['intent_accuracy']:.2f} in {wall:.0f} s", flush=True)
    return row


def run_grid(args, result: dict) -> list[str]:
    """Trains the runs that have no row yet, K by K, seed by seed; the result file is rewritten after each."""
    rows = recorded_rows(args)
    grid = [(shots, seed, system) for shots in args.shots for seed in args.seeds for system in args.systems]
    pending = [key for key in grid if key not in rows]
    print(f"{len(pending)} of {len(grid)} runs to train in {args.runs / args.dataset}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    drawn, failed = set(), []
    for shots, seed, system in pending:
        if (shots, seed) not in drawn:
            drawn.add(draw(args, shots, seed))
        outcome = train_run(args, shots, seed, system, env)
        if isinstance(outcome, str):
            failed.append(outcome)
            print(f"FAILED {outcome}", flush=True)
            continue
        rows[(shots, seed, system)] = outcome
        save(args, result, rows)
    save(args, result, rows)
    return failed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["atis", "snips"], help="the corpus (mtst_peer.py's --corpus)")
    parser.add_argument("--data-dir", type=Path, required=True, help="the whole JointBERT corpus")
    parser.add_argument("--shots", type=int, nargs="+", default=[8, 16, 32], help="K: sentences per intent")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15], help="each one draw and training seed")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--epochs", type=int, default=20, help="mtst's epochs (patience from the config)")
    parser.add_argument("--threads", type=int, default=1, help="per run")
    parser.add_argument("--config", type=Path, help="mtst's config (default: configs/DATASET.yaml)")
    parser.add_argument("--contrastive-config", type=Path, help="default: peers/configs/DATASET-contrastive.yaml")
    parser.add_argument("--setfit-python", type=Path, default=SETFIT_PYTHON, help="default: SetFit's peer venv")
    parser.add_argument("--runs", type=Path, default=Path("runs/fewshot"))
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/fewshot_DATASET[_dev].json")
    parser.add_argument(
        "--evaluate-on", choices=["test", "dev"], default="test", help="dev: score on dev less the drawn dev sentences"
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables of --output; train nothing")
    args = parser.parse_args(argv)
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.contrastive_config = args.contrastive_config or Path(
        f"benchmarks/peers/configs/{args.dataset}-contrastive.yaml"
    )
    on_dev = "_dev" if args.evaluate_on == "dev" else ""  # a dev screen never rewrites the test grid's file
    args.output = args.output or Path("benchmarks/results") / f"fewshot_{args.dataset}{on_dev}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.markdown:
        if not args.output.is_file():
            sys.exit(f"error: {args.output}: no result file yet (run the grid first)")
        print(table(json.loads(args.output.read_text())))
        return
    check_inputs(args)
    result = started_record(args)
    failed = run_grid(args, result)
    report_grid(table(result), args.output, failed)


if __name__ == "__main__":
    main()
