"""Two results of benchmarks/accuracy.py on the same seeds, compared seed by seed (dev and test).

python benchmarks/paired_seeds.py BEFORE.json AFTER.json [--output benchmarks/results/NAME.json]

The question it answers is the one a new default must pass: is AFTER's mean within one sample standard
deviation of BEFORE's, on each metric of the dev split (where defaults are chosen)? Test is shown beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from accuracy import METRICS


def compare(before: dict, after: dict) -> dict:
    seeds = sorted({row["seed"] for row in before["per_seed"]} & {row["seed"] for row in after["per_seed"]})
    rows = {name: {row["seed"]: row for row in result["per_seed"]} for name, result in (("b", before), ("a", after))}
    result: dict = {"seeds": seeds}
    for split, field in (("dev", "mean_std_dev"), ("test", "mean_std")):
        result[split] = {}
        for key in METRICS:
            deltas = [100 * (rows["a"][s][split][key] - rows["b"][s][split][key]) for s in seeds]
            old, new = before[field][key], after[field][key]
            result[split][key] = {
                "before": round(old["mean"], 2),
                "before_std": round(old["std"], 2),
                "after": round(new["mean"], 2),
                "after_std": round(new["std"], 2),
                "paired_deltas": [round(d, 2) for d in deltas],
                "within_one_std": abs(new["mean"] - old["mean"]) <= old["std"],
            }
    return result


def table(result: dict) -> str:
    lines = [
        "| split | metric | before (mean ± std) | after (mean ± std) | per-seed Δ (points) | within one std |",
        "|---|---|---|---|---|---|",
    ]
    for split in ("dev", "test"):
        for key, row in result[split].items():
            deltas = ", ".join(f"{d:+.2f}" for d in row["paired_deltas"])
            lines.append(
                f"| {split} | {key} | {row['before']:.2f} ± {row['before_std']:.2f} | "
                f"{row['after']:.2f} ± {row['after_std']:.2f} | {deltas} | {'yes' if row['within_one_std'] else 'no'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    result = compare(json.loads(args.before.read_text()), json.loads(args.after.read_text()))
    result.update(before=str(args.before), after=str(args.after))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
