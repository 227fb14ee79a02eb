"""How training time and inference latency grow with sentence length and batch size, on synthetic sentences.

python benchmarks/scaling.py [--lengths 16,64,256] [--train-batch-sizes 8,32] [--infer-batch-sizes 1,8,32,64]

Every synthetic sentence is exactly N sub-tokens long ([CLS] + N-2 words + [SEP]): its words are drawn,
seeded, from the tokenizer's vocabulary among whole lowercase words that it encodes as one sub-token, and
the length is checked after tokenization. Labels are random (7 intents, 73 BIO tags, SNIPS-like sizes);
speed does not depend on them or on the (untrained) heads. The model is built with `encoder.max_length`
equal to the longest length asked for (MiniLM has 512 positions; the configs use 128).

- training: mtst's step (`Trainer.train_epoch`, AdamW, clip 1.0, summed losses) over `--train-steps`
  batches per pass; reported as seconds per 1,000 sentences (median pass);
- inference: `Predictor.predict` on one batch (tokenization, forward, decoding), p50 latency per batch
  and sentences/s.

After one warm-up pass per setting, the repeats go round all settings in turn, so drifting machine load
hits every setting alike. Writes JSON, a PNG (Agg backend) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from machine import median, percentile, started_record, write_result  # noqa: E402
from mtst.config import Config, load_config  # noqa: E402
from mtst.data import Splits  # noqa: E402
from mtst.data.example import Example  # noqa: E402
from mtst.inference.predictor import Predictor  # noqa: E402
from mtst.model.multitask import EncoderInfo, MultiTaskModel  # noqa: E402
from mtst.tasks import make_task  # noqa: E402
from mtst.training.loop import Trainer  # noqa: E402
from mtst.training.state import Progress  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INTENTS = tuple(f"intent_{i}" for i in range(7))
TAGS = ("O", *(f"{prefix}-slot_{i}" for i in range(36) for prefix in "BI"))


def single_token_words(tokenizer, count: int = 2000) -> list[str]:
    """Whole lowercase words the tokenizer encodes as exactly one sub-token."""
    candidates = sorted(token for token in tokenizer.get_vocab() if token.isalpha() and token.islower())
    encoded = tokenizer(candidates, add_special_tokens=False)["input_ids"]
    return [word for word, ids in zip(candidates, encoded, strict=True) if len(ids) == 1][:count]


def synthetic_examples(tokenizer, words: list[str], length: int, count: int, seed: int) -> list[Example]:
    rng = random.Random(seed * 1000 + length)
    examples = []
    for _ in range(count):
        sentence = rng.choices(words, k=length - 2)
        tags = tuple(rng.choice(TAGS) for _ in sentence)
        examples.append(Example.from_words(sentence, {"label": rng.choice(INTENTS), "tags": tags}))
    sizes = {len(ids) for ids in tokenizer([list(e.words) for e in examples], is_split_into_words=True)["input_ids"]}
    if sizes != {length}:
        raise SystemExit(f"synthetic sentences came out at {sorted(sizes)} sub-tokens, not {length}")
    return examples


def scaling_config(args, batch_size: int) -> Config:
    return load_config(
        None,
        **{
            "encoder.name_or_path": args.encoder,
            "encoder.max_length": max(args.lengths),
            "train.batch_size": batch_size,
            "train.epochs": args.repeats + 1,
            "train.seed": args.seed,
            "train.num_sample_predictions": 0,
        },
    )


def time_training(args, words: list[str], tokenizer) -> list[dict]:
    """Seconds per 1,000 sentences of mtst's training step, per (length, batch size)."""
    trainers = {}
    for length in args.lengths:
        for size in args.train_batch_sizes:
            config = scaling_config(args, size)
            examples = synthetic_examples(tokenizer, words, length, size * args.train_steps, args.seed)
            trainer, _ = Trainer.setup(config, Splits(examples, [], []))
            trainer.train_epoch(config.train, Progress(epoch=1), callbacks=[])  # warm-up
            trainers[length, size] = (trainer, config)
    seconds: dict[tuple[int, int], list[float]] = {key: [] for key in trainers}
    for repeat in range(args.repeats):
        for (length, size), (trainer, config) in trainers.items():
            started = time.perf_counter()
            trainer.train_epoch(config.train, Progress(epoch=repeat + 2), callbacks=[])
            seconds[length, size].append(time.perf_counter() - started)
            print(f"train  length {length:>3} batch {size:>2}: {seconds[length, size][-1]:6.2f} s", flush=True)
    return [
        {
            "length": length,
            "batch_size": size,
            "sentences_per_pass": size * args.train_steps,
            "seconds_per_1000_sentences": round(1000 * median(times) / (size * args.train_steps), 2),
            "pass_seconds": [round(t, 3) for t in times],
        }
        for (length, size), times in seconds.items()
    ]


def time_inference(args, words: list[str], model: MultiTaskModel) -> list[dict]:
    """Latency of `Predictor.predict` on one batch, per (length, batch size)."""
    calls = {}
    for length in args.lengths:
        texts = [e.text for e in synthetic_examples(model.tokenizer, words, length, max(args.infer_batch_sizes), 1)]
        for size in args.infer_batch_sizes:
            predictor = Predictor(model, batch_size=size)
            predictor.predict(texts[:size])  # warm-up
            calls[length, size] = (predictor, texts[:size])
    latencies: dict[tuple[int, int], list[float]] = {key: [] for key in calls}
    for _ in range(args.infer_repeats):
        for key, (predictor, texts) in calls.items():
            started = time.perf_counter()
            predictor.predict(texts)
            latencies[key].append(time.perf_counter() - started)
    rows = []
    for (length, size), times in latencies.items():
        p50 = percentile(times, 0.5)
        rows.append(
            {
                "length": length,
                "batch_size": size,
                "p50_ms": round(1000 * p50, 2),
                "sentences_per_s": round(size / p50, 2),
                "latencies_ms": [round(1000 * t, 2) for t in times],
            }
        )
        print(f"infer  length {length:>3} batch {size:>2}: p50 {1000 * p50:8.1f} ms", flush=True)
    return rows


def inference_model(args) -> MultiTaskModel:
    from mtst.model.encoder import load_encoder

    tokenizer, encoder = load_encoder(args.encoder, max(args.lengths))
    tasks = [make_task("intent", "sentence", "label", INTENTS), make_task("slots", "token", "tags", TAGS)]
    return MultiTaskModel(encoder, tokenizer, tasks, EncoderInfo(max_length=max(args.lengths))).eval()


def _labelled_line(axis, rows: list[dict], key: str, label: str) -> None:
    """One line, each point labelled with its value: a log axis spanning a decade or two shows few ticks."""
    lengths, values = [r["length"] for r in rows], [r[key] for r in rows]
    axis.plot(lengths, values, marker="o", label=label)
    for length, value in zip(lengths, values, strict=True):
        axis.annotate(f"{value:.0f}", (length, value), textcoords="offset points", xytext=(4, -10), fontsize=7)


def plot(result: dict, path: Path) -> None:
    figure, (train_axis, infer_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for size in sorted({row["batch_size"] for row in result["training"]}):
        rows = [row for row in result["training"] if row["batch_size"] == size]
        _labelled_line(train_axis, rows, "seconds_per_1000_sentences", f"batch {size}")
    for size in sorted({row["batch_size"] for row in result["inference"]}):
        rows = [row for row in result["inference"] if row["batch_size"] == size]
        _labelled_line(infer_axis, rows, "p50_ms", f"batch {size}")
    lengths = sorted({row["length"] for row in result["training"] + result["inference"]})
    train_axis.set(title="training: seconds per 1,000 sentences", ylabel="s")
    infer_axis.set(title="inference (Predictor): p50 latency per batch", ylabel="ms")
    for axis in (train_axis, infer_axis):
        axis.set(xscale="log", yscale="log", xlabel="sentence length (sub-tokens)")
        axis.set_xticks(lengths, [str(n) for n in lengths])
        axis.minorticks_off()
        axis.grid(alpha=0.3)
        axis.legend()
    machine = result["machine"]
    figure.suptitle(f"mtst scaling, {machine['cpu']}, {machine['threads']} thread(s), {result['date']}", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def tables(result: dict) -> str:
    train_sizes = sorted({row["batch_size"] for row in result["training"]})
    infer_sizes = sorted({row["batch_size"] for row in result["inference"]})
    train = {(r["length"], r["batch_size"]): r for r in result["training"]}
    infer = {(r["length"], r["batch_size"]): r for r in result["inference"]}
    lengths = sorted({length for length, _ in train} | {length for length, _ in infer})
    lines = grid("Training, seconds per 1,000 sentences:", lengths, train_sizes,
                 lambda row: f"{row['seconds_per_1000_sentences']:.1f}", train)  # fmt: skip
    lines += [""] + grid("Inference (Predictor), p50 latency per batch in ms (sentences/s):", lengths, infer_sizes,
                         lambda row: f"{row['p50_ms']:.1f} ({row['sentences_per_s']:.1f})", infer)  # fmt: skip
    return "\n".join(lines)


def grid(title: str, lengths: list[int], batch_sizes: list[int], cell, rows: dict) -> list[str]:
    """A Markdown table, one row per length and one column per batch size, each cell `cell(result row)`."""
    lines = [title, "", "| length | " + " | ".join(f"batch {s}" for s in batch_sizes) + " |"]
    lines.append("|---|" + "---|" * len(batch_sizes))
    for length in lengths:
        lines.append(f"| {length} | " + " | ".join(cell(rows[length, s]) for s in batch_sizes) + " |")
    return lines


def sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default=None, help="local HF encoder folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--lengths", type=sizes, default=[16, 64, 256], help="sub-tokens per sentence")
    parser.add_argument("--train-batch-sizes", type=sizes, default=[8, 32])
    parser.add_argument("--infer-batch-sizes", type=sizes, default=[1, 8, 32, 64])
    parser.add_argument("--train-steps", type=int, default=1, help="batches per timed training pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed training passes per setting")
    parser.add_argument("--infer-repeats", type=int, default=5, help="timed inference calls per setting")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "scaling.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "results" / "scaling.png")
    parser.add_argument("--replot", type=Path, default=None, help="only redraw the plot and tables of this JSON")
    args = parser.parse_args()
    if args.replot:
        record = json.loads(args.replot.read_text())
        plot(record, args.plot)
        print(tables(record))
        return
    record = started_record(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = inference_model(args)
    words = single_token_words(model.tokenizer)
    record["vocabulary_words"] = len(words)
    record["training"] = time_training(args, words, model.tokenizer)
    record["inference"] = time_inference(args, words, model)
    write_result(record, args.output)
    plot(record, args.plot)
    print(tables(record))


if __name__ == "__main__":
    main()
