"""Training throughput of mtst's step, lever by lever, against a fixed-padding reference loop; peak RSS.

python benchmarks/train_throughput.py --data-dir ../shared/data/snips [--sentences 1024] [--threads N] [--compile]

Every variant trains on the same seeded sample of train sentences, each a full pass per repeat, every
sentence once, in batches of `--batch-size`:

- `mtst` variants: mtst's own step (`Trainer.train_epoch`: its Collator padding each batch to its longest
  sentence, MultiTaskModel, AdamW with mtst's parameter groups, cosine schedule, clipping at 1.0, summed
  task losses), batches in seeded random order or, with `train.group_by_length`, from
  `LengthGroupedBatchSampler` over the same draw. LEVERS lists them: the settings that were the defaults
  before the speed issue (AdamW one parameter at a time, word embeddings trained, drawn-order batches),
  then one lever added at a time (fused AdamW, the default now; frozen word embeddings; length grouping),
  and all three with foreach AdamW instead of fused; and fused AdamW with row-wise word-embedding updates
  (`strategy.word_embeddings: rows`) in place of frozen ones;
- `mtst default + torch.compile` (only with `--compile`): the default settings with the model wrapped in
  `torch.compile(dynamic=True)`; its compile time is the `warmup_s` of its row;
- `reference`: the loop a user commonly writes: every sentence padded to `--fixed-length` sub-tokens by the
  tokenizer (`padding="max_length"`), a TensorDataset and DataLoader, `loss.backward()`, clip 1.0, AdamW
  step (torch's default kernel), with the same model (encoder, heads, loss), parameter groups and
  schedule, same batches as `mtst`, every parameter trained.

mtst draws an epoch with replacement (entity up-sampling); here every variant takes each sentence once so
that all see exactly the same sentences. After a warm-up, the variants alternate within every
repeat (in rotating order) so drifting machine load hits all alike; the median pass counts.

Then `mtst train` runs in a subprocess (`--config`, `--max-train-examples`, one epoch) and its peak resident
memory is read from the kernel (wait4's ru_maxrss). Writes JSON and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset
from transformers import get_cosine_schedule_with_warmup

from machine import median, started_record, write_result
from mtst.config import Config, load_config
from mtst.data import Splits, load_splits
from mtst.data.batching import Collator, LengthGroupedBatchSampler
from mtst.data.features import encode_examples
from mtst.data.labels import align_tags
from mtst.model.multitask import MultiTaskModel
from mtst.model.subtokens import word_ids_input
from mtst.training.loop import Trainer
from mtst.training.state import Progress

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 4.4  # mtst's default loop against the fixed-padding loop, from the speed issue
TARGET_VS_OLD_DEFAULT = 2.0  # and against the defaults before it
OLD_DEFAULTS = {
    "train.adamw_implementation": "for-loop",
    "strategy.train_word_embeddings": True,
    "train.group_by_length": False,
}
FUSED = {**OLD_DEFAULTS, "train.adamw_implementation": "fused"}
FROZEN = {**FUSED, "strategy.train_word_embeddings": False}
GROUPED = {**FROZEN, "train.group_by_length": True}
# (variant, every setting it changes): the old defaults, then one lever added at a time.
LEVERS = [
    ("mtst, defaults before the speed issue", OLD_DEFAULTS),
    ("+ fused AdamW = mtst default", FUSED),
    ("+ frozen word embeddings", FROZEN),
    ("+ row-wise word embeddings (instead of frozen)", {**FUSED, "strategy.word_embeddings": "rows"}),
    ("+ group_by_length", GROUPED),
    ("+ group_by_length, foreach AdamW", {**GROUPED, "train.adamw_implementation": "foreach"}),
]
BASELINE = LEVERS[0][0]
DEFAULT = LEVERS[1][0]  # tests/test_benchmarks.py checks that these are the Config defaults


@dataclass
class Variant:
    name: str
    train_pass: Callable[[DataLoader], None]
    loader: DataLoader
    warmup_loader: DataLoader
    padded_tokens: int  # sub-token positions the encoder sees in the first pass, padding included
    model: MultiTaskModel
    settings: dict = field(default_factory=dict)


def benchmark_config(args, **settings) -> Config:
    return load_config(
        args.config,
        **{
            "data.dir": str(args.data_dir),
            "encoder.name_or_path": args.encoder,
            "train.batch_size": args.batch_size,
            "train.seed": args.seed,
            "train.num_sample_predictions": 0,
            **settings,
        },
    )


def sample(config: Config, count: int, seed: int) -> Splits:
    splits = load_splits(config.data)
    train = random.Random(seed).sample(splits.train, min(count, len(splits.train)))
    return Splits(train, [], [])


def random_order(size: int, seed: int) -> RandomSampler:
    return RandomSampler(range(size), generator=torch.Generator().manual_seed(seed))


def mtst_variant(
    name: str, config: Config, splits: Splits, warmup_batches: int, compile_model: bool = False
) -> Variant:
    trainer, _ = Trainer.setup(config, splits)
    if compile_model:
        trainer.model = torch.compile(trainer.model, dynamic=True)
    grouped = config.train.group_by_length
    model = trainer.unwrapped
    tasks = list(model.tasks.values())
    features = encode_examples(splits.train, model.tokenizer, tasks, model.max_length)
    collate = Collator(model.tokenizer.pad_token_id, model.tasks)
    lengths = [len(f.input_ids) for f in features]
    size, seed = config.train.batch_size, config.train.seed
    warmup = warmup_batches * size

    def batches(count: int):
        order = random_order(count, seed)
        return LengthGroupedBatchSampler(order, lengths, size) if grouped else BatchSampler(order, size, False)

    def train_pass(loader: DataLoader) -> None:
        trainer.loaders = [loader]
        trainer.train_epoch(config.train, Progress(), callbacks=[])

    padded = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches(len(features)))
    return Variant(
        name,
        train_pass,
        DataLoader(features, batch_sampler=batches(len(features)), collate_fn=collate),
        DataLoader(features[:warmup], batch_sampler=batches(len(features[:warmup])), collate_fn=collate),
        padded,
        model,
    )


def fixed_padding_tensors(model: MultiTaskModel, splits: Splits, length: int) -> TensorDataset:
    """What `tokenizer(..., padding="max_length")` gives a user, with slot tags on first sub-tokens."""
    intent, slots = model.tasks["intent"], model.tasks["slots"]
    encoded = model.tokenizer(
        [list(example.words) for example in splits.train],
        is_split_into_words=True,
        padding="max_length",
        max_length=length,
        truncation=True,
        return_tensors="pt",
    )
    intent_ids = [intent.labels.index(example.annotations[intent.field]) for example in splits.train]
    tag_ids = [
        align_tags(encoded.word_ids(row), [slots.labels.index(tag) for tag in example.annotations[slots.field]])
        for row, example in enumerate(splits.train)
    ]
    word_ids = word_ids_input(encoded, len(splits.train))  # read only when the slot head pools sub-tokens
    return TensorDataset(
        encoded["input_ids"], encoded["attention_mask"], word_ids, torch.tensor(intent_ids), torch.tensor(tag_ids)
    )


def reference_variant(
    config: Config, splits: Splits, class_weights: torch.Tensor, length: int, warmup_batches: int
) -> Variant:
    model = MultiTaskModel.from_config(config, splits)
    model.heads["slots"].class_weights.copy_(class_weights)  # the same weighted loss as mtst's
    optimizer = torch.optim.AdamW(config.strategy.parameter_groups(model, config.train))
    dataset = fixed_padding_tensors(model, splits, length)
    size, seed = config.train.batch_size, config.train.seed
    total_steps = config.train.epochs * -(-len(dataset) // size)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.train.warmup_ratio * total_steps), total_steps)

    def train_pass(loader: DataLoader) -> None:
        model.train()
        for input_ids, attention_mask, word_ids, intent, slots in loader:
            output = model(input_ids, attention_mask, {"intent": intent, "slots": slots}, word_ids)
            loss = sum(output.losses.values())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

    warmup = TensorDataset(*dataset[: warmup_batches * size])
    return Variant(
        f"reference (padded to {length})",
        train_pass,
        DataLoader(dataset, batch_size=size, sampler=random_order(len(dataset), seed)),
        DataLoader(warmup, batch_size=size, sampler=random_order(len(warmup), seed)),
        len(dataset) * length,
        model,
    )


def time_variants(variants: list[Variant], repeats: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    # The first steps of a fresh model run several times slower (allocations, thread pools, AdamW state).
    warmup = {}
    for variant in variants:
        started = time.perf_counter()
        variant.train_pass(variant.warmup_loader)
        warmup[variant.name] = time.perf_counter() - started
        print(f"warm-up {variant.name:<40} {warmup[variant.name]:6.1f} s", flush=True)
    seconds: dict[str, list[float]] = {variant.name: [] for variant in variants}
    for repeat in range(repeats):
        rotated = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
        for variant in rotated:
            started = time.perf_counter()
            variant.train_pass(variant.loader)
            seconds[variant.name].append(time.perf_counter() - started)
            print(f"repeat {repeat + 1} {variant.name:<40} {seconds[variant.name][-1]:6.1f} s", flush=True)
    return seconds, warmup


def peak_rss_of_training(args) -> dict:
    """Peak RSS of a real `mtst train` run (its own process, so nothing of this one is counted)."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable, "-m", "mtst", "train", "--config", str(args.config), "--data-dir", str(args.data_dir),
            "--max-train-examples", str(args.rss_train_examples), "--epochs", "1",
            "--output-dir", f"{scratch}/run", "--seed", str(args.seed),
        ]  # fmt: skip
        if args.encoder:
            command += ["--encoder", args.encoder]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TQDM_DISABLE": "1"}
        started = time.perf_counter()
        with open(f"{scratch}/log.txt", "w") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"mtst train failed:\n{Path(scratch, 'log.txt').read_text()[-3000:]}")
    return {
        "command": " ".join(["python", *command[1:]]).replace(scratch, "TMP"),
        "train_examples": args.rss_train_examples,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "wall_s": round(wall, 1),
    }


def build_variants(args, splits: Splits) -> list[Variant]:
    variants = []
    for name, settings in LEVERS:
        variant = mtst_variant(name, benchmark_config(args, **settings), splits, args.warmup_batches)
        variant.settings = settings
        variants.append(variant)
    if args.compile:
        compiled = mtst_variant(
            "mtst default + torch.compile", benchmark_config(args), splits, args.warmup_batches, compile_model=True
        )
        compiled.settings = {"torch.compile": "dynamic=True"}
        variants.append(compiled)
    weights = variants[0].model.heads["slots"].class_weights
    config = benchmark_config(args, **OLD_DEFAULTS)  # the reference trains every parameter, as users do
    return variants + [reference_variant(config, splits, weights, args.fixed_length, args.warmup_batches)]


def measure(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    splits = sample(benchmark_config(args), args.sentences, args.seed)
    variants = build_variants(args, splits)
    seconds, warmup = time_variants(variants, args.repeats)
    rate = {variant.name: len(splits.train) / median(seconds[variant.name]) for variant in variants}
    reference_rate, baseline_rate = rate[variants[-1].name], rate[BASELINE]
    rows = [
        {
            "variant": variant.name,
            "settings": variant.settings,
            "sentences_per_s": round(rate[variant.name], 2),
            "ratio_vs_reference": round(rate[variant.name] / reference_rate, 3),
            "ratio_vs_old_default": round(rate[variant.name] / baseline_rate, 3),
            "padded_tokens_per_sentence": round(variant.padded_tokens / len(splits.train), 2),
            "warmup_s": round(warmup[variant.name], 2),
            "seconds": [round(s, 3) for s in seconds[variant.name]],
        }
        for variant in variants
    ]
    real_tokens = sum(len(f.input_ids) for f in variants[0].loader.dataset)
    return {
        "sentences": len(splits.train),
        "real_tokens_per_sentence": round(real_tokens / len(splits.train), 2),
        "truncated_at_fixed_length": sum(len(f.input_ids) > args.fixed_length for f in variants[0].loader.dataset),
        "rows": rows,
        "target": {"vs_reference": TARGET_RATIO, "vs_old_default": TARGET_VS_OLD_DEFAULT},
        "target_met": rate[DEFAULT] / reference_rate >= TARGET_RATIO
        and rate[DEFAULT] / baseline_rate >= TARGET_VS_OLD_DEFAULT,
    }


def tables(result: dict) -> str:
    lines = [
        "| variant | sentences/s (median) | vs old default | vs reference | sub-token positions per sentence "
        "| warm-up (s) |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["throughput"]["rows"]:
        lines.append(
            f"| {row['variant']} | {row['sentences_per_s']:.1f} | {row['ratio_vs_old_default']:.2f}x "
            f"| {row['ratio_vs_reference']:.2f}x | {row['padded_tokens_per_sentence']:.1f} | {row['warmup_s']:.1f} |"
        )
    rss = result.get("training_run")
    if rss:
        lines += [
            "",
            "| training run | train sentences | peak RSS (MiB) | wall (s) |",
            "|---|---|---|---|",
            f"| `{rss['command']}` | {rss['train_examples']} | {rss['peak_rss_mib']:.1f} | {rss['wall_s']:.1f} |",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("MTST_DATA_DIR"))
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "snips.yaml")
    parser.add_argument("--encoder", default=None, help="local HF encoder folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--sentences", type=int, default=1024, help="seeded sample of the train split")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--fixed-length", type=int, default=50, help="the reference loop's padding length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-batches", type=int, default=8, help="untimed steps per variant first")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    parser.add_argument("--compile", action="store_true", help="add today's defaults under torch.compile")
    parser.add_argument("--rss-train-examples", type=int, default=2000, help="0 skips the training run")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "train_throughput.json")
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("no data directory: pass --data-dir or set MTST_DATA_DIR")
    record = started_record(args)
    record["throughput"] = measure(args)
    if args.rss_train_examples:
        record["training_run"] = peak_rss_of_training(args)
    write_result(record, args.output)
    print(tables(record))
    print(
        f"\ntarget (mtst default >= {TARGET_VS_OLD_DEFAULT}x the old default and >= {TARGET_RATIO}x the "
        f"fixed-padding loop) met: {record['throughput']['target_met']}"
    )


if __name__ == "__main__":
    main()
