"""The accuracy decision in one command where cores (or a GPU) are plenty: every corpus's grid at once.

python benchmarks/settle_grid.py --data-root ../shared/data --jobs 8 \\
    --variants baseline crf+entity-weight-1 crf+entity-weight-1+intent-input crf+entity-weight-1+intent-weight-2

Runs benchmarks/accuracy_grid.py for each of `--datasets` (SNIPS and ATIS) side by side, each with `--jobs`
runs at a time (on a GPU, accelerate puts every run on the card; several share it), at the committed
configs' full schedules unless `--epochs` says otherwise, seeds 13 14 15. Each grid resumes like
accuracy_grid.py (finished runs read back from its runs folder or its result JSON) and writes
benchmarks/results/grid_DATASET_full.json (`--tag` changes `full`); the variants are ranked on dev there.
Sized for one H200: SNIPS and ATIS, four variants, three seeds, full length in under nine minutes at
`--jobs 12`. Tested on CPU with a tiny budget (tests/test_accuracy_benchmarks.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

GRID = Path(__file__).with_name("accuracy_grid.py")


def grid_command(args, dataset: str) -> list[str]:
    command = [sys.executable, str(GRID), dataset, "--data-dir", str(args.data_root / dataset)]
    command += ["--variants", *args.variants, "--seeds", *map(str, args.seeds)]
    command += ["--jobs", str(args.jobs), "--threads", str(args.threads), "--runs", str(args.runs)]
    command += ["--output", str(args.results / f"grid_{dataset}_{args.tag}.json")]
    if args.config_dir:
        command += ["--config", str(args.config_dir / f"{dataset}.yaml")]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    if args.max_train_examples:
        command += ["--max-train-examples", str(args.max_train_examples)]
    return command


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True, help="holds one folder per dataset")
    parser.add_argument("--datasets", nargs="+", default=["snips", "atis"])
    parser.add_argument("--variants", nargs="+", default=["baseline", "crf+entity-weight-1"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--jobs", type=int, default=4, help="runs at a time per dataset")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--epochs", type=int, help="a fixed budget instead of the configs' schedules")
    parser.add_argument("--max-train-examples", type=int, help="a seeded subset of train (a smoke test)")
    parser.add_argument("--config-dir", type=Path, help="configs/DATASET.yaml from here (default: configs/)")
    parser.add_argument("--runs", type=Path, default=Path("runs/grid"))
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--tag", default="full")
    args = parser.parse_args(argv)
    started = time.time()
    grids = {dataset: subprocess.Popen(grid_command(args, dataset)) for dataset in args.datasets}
    failed = [dataset for dataset, grid in grids.items() if grid.wait() != 0]
    print(f"settle_grid: {len(grids)} grids in {time.time() - started:.0f} s", flush=True)
    if failed:
        sys.exit(f"failed grids (rerun the same command to resume them): {', '.join(failed)}")


if __name__ == "__main__":
    main()
