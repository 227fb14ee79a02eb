"""Inference with one joint mtst model against the two single-task models a user would otherwise run.

python benchmarks/joint_vs_two_models.py --data-dir ../shared/data/snips [--checkpoint DIR] [--threads N]

The split's sentences are cut, in file order, into batches of each `--batch-sizes` size; every variant
gets the same batches:

- `joint Predictor`: `mtst.Predictor.predict(texts)`, what `mtst predict` and the server run
  (word splitting with character offsets, tokenization, one forward pass, decoding with scores, entities
  as character spans);
- `joint forward`: the joint model's forward pass inside the same hand-written pipeline as the two models;
- `two models`: `AutoModelForSequenceClassification` + `AutoModelForTokenClassification` built from the
  same encoder folder with the same label counts, each given the same tokenized batch.

The hand-written pipeline tokenizes the batch once (pre-split words, padding to the longest, truncation
at the model's `max_length`), runs the model(s), takes softmax, argmax and scores, maps each word's first
sub-token tag back to the word and collects entity spans: the same post-processing for both, so the
pair differs only in the forward passes. Per batch, the variants run one after the other in rotating
order, so drifting machine load hits all alike. Without `--checkpoint` the joint model is an untrained
MultiTaskModel with the corpus's label sets: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification
from transformers.utils import logging as hf_logging

from machine import median, percentile, started_record, write_result
from mtst.config import load_config
from mtst.data import load_splits
from mtst.data.example import Example
from mtst.data.features import first_subtokens
from mtst.data.formats import find_split, read_path
from mtst.inference.predictor import Predictor
from mtst.model.encoder import resolve_encoder_path
from mtst.model.multitask import MultiTaskModel
from mtst.model.subtokens import word_ids_input
from mtst.tasks.token import tag_spans

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.8  # joint against two models at batch size 64, from the benchmarks issue
TARGET_BATCH = 64

Pipeline = Callable[[list[Example]], list[dict]]


def joint_model(args) -> tuple[MultiTaskModel, str]:
    if args.checkpoint:
        return MultiTaskModel.from_pretrained(args.checkpoint), f"checkpoint {args.checkpoint}"
    overrides = {"data.dir": str(args.data_dir), "encoder.name_or_path": args.encoder}
    config = load_config(args.config, **overrides)
    model = MultiTaskModel.from_config(config, load_splits(config.data)).eval()
    return model, f"untrained MultiTaskModel ({args.encoder or 'all-MiniLM-L6-v2'}, labels of {args.data_dir} train)"


def tasks_of(model: MultiTaskModel) -> tuple[str, str]:
    """The names of the first sentence task and the first token task."""
    sentence = next(name for name, task in model.tasks.items() if task.type == "sentence")
    token = next(name for name, task in model.tasks.items() if task.type == "token")
    return sentence, token


def decode(examples: list[Example], word_ids: list, label_logits, tag_logits, labels: tuple, tags: tuple) -> list[dict]:
    """Label and score per sentence, a tag per word from its first sub-token, entity spans over words."""
    label_scores, label_ids = (v.tolist() for v in label_logits.float().softmax(-1).max(-1))
    tag_scores, tag_ids = (v.tolist() for v in tag_logits.float().softmax(-1).max(-1))
    results = []
    for row, example in enumerate(examples):
        starts = first_subtokens(word_ids[row], len(example.words))
        word_tags = [tags[tag_ids[row][s]] if s is not None else "O" for s in starts]
        word_scores = [tag_scores[row][s] if s is not None else 0.0 for s in starts]
        results.append(
            {
                "label": labels[label_ids[row]],
                "score": label_scores[row],
                "tags": word_tags,
                "tag_scores": word_scores,
                "entities": tag_spans(word_tags),
            }
        )
    return results


def hand_pipeline(model: MultiTaskModel, forward: Callable) -> Pipeline:
    """Tokenize once, `forward(encoded batch, rows) -> (label logits, tag logits)`, decode."""
    sentence, token = tasks_of(model)
    labels, tags = model.tasks[sentence].labels, model.tasks[token].labels

    @torch.no_grad()
    def run(examples: list[Example]) -> list[dict]:
        encoded = model.tokenizer(
            [list(example.words) for example in examples],
            is_split_into_words=True,
            padding=True,
            truncation=True,
            max_length=model.max_length,
            return_tensors="pt",
        )
        label_logits, tag_logits = forward(encoded, len(examples))
        word_ids = [encoded.word_ids(row) for row in range(len(examples))]
        return decode(examples, word_ids, label_logits, tag_logits, labels, tags)

    return run


def joint_forward(model: MultiTaskModel) -> Callable:
    sentence, token = tasks_of(model)

    def forward(encoded, rows: int):
        word_ids = word_ids_input(encoded, rows) if model.needs_word_ids else None
        logits = model(encoded["input_ids"], encoded["attention_mask"], word_ids=word_ids).logits
        return logits[sentence], logits[token]

    return forward


def two_models_forward(model: MultiTaskModel, encoder_dir: Path) -> Callable:
    sentence, token = tasks_of(model)
    hf_logging.set_verbosity_error()  # "newly initialized classifier weights" is the point here
    classifier = AutoModelForSequenceClassification.from_pretrained(
        encoder_dir, num_labels=len(model.tasks[sentence].labels), local_files_only=True
    ).eval()
    tagger = AutoModelForTokenClassification.from_pretrained(
        encoder_dir, num_labels=len(model.tasks[token].labels), local_files_only=True
    ).eval()

    def forward(encoded, rows: int):
        input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
        return (
            classifier(input_ids=input_ids, attention_mask=attention_mask).logits,
            tagger(input_ids=input_ids, attention_mask=attention_mask).logits,
        )

    return forward


def predictor_pipeline(model: MultiTaskModel, batch_size: int) -> Pipeline:
    predictor = Predictor(model, batch_size=batch_size)  # one forward pass per call
    return lambda examples: predictor.predict([example.text for example in examples])


def time_batches(pipelines: dict[str, Pipeline], batches: list, repeats: int, warmup: int) -> dict:
    """Per variant: each batch's latency (all repeats) and each repeat's total time."""
    names = list(pipelines)
    for batch in batches[:warmup]:
        for name in names:
            pipelines[name](batch)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    totals: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, list[dict]] = {}
    for repeat in range(repeats):
        spent = dict.fromkeys(names, 0.0)
        for position, batch in enumerate(batches):
            shift = position % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                result = pipelines[name](batch)
                elapsed = time.perf_counter() - started
                latencies[name].append(elapsed)
                spent[name] += elapsed
                if repeat == 0:
                    outputs.setdefault(name, []).extend(result)
        for name in names:
            totals[name].append(spent[name])
    return {"latencies": latencies, "totals": totals, "outputs": outputs}


def agreement(predictor: list[dict], hand: list[dict]) -> dict:
    """Shares of sentences where the Predictor and the hand-written pipeline over the same joint model
    give the same label and the same entity types in order (a check that both run the same model)."""
    pairs = list(zip(predictor, hand, strict=True))
    same_entities = [[e["label"] for e in p["entities"]] == [kind for _, _, kind in h["entities"]] for p, h in pairs]
    return {
        "label": sum(p["label"] == h["label"] for p, h in pairs) / len(pairs),
        "entity_types": sum(same_entities) / len(pairs),
    }


def measure(args) -> dict:
    torch.set_num_threads(args.threads)
    examples = read_path(find_split(args.data_dir, args.split))[: args.max_sentences]
    model, source = joint_model(args)
    encoder_dir = resolve_encoder_path(args.encoder)
    forward_joint, forward_two = joint_forward(model), two_models_forward(model, encoder_dir)
    rows, checks = [], {}
    for batch_size in args.batch_sizes:
        pipelines = {
            "joint Predictor": predictor_pipeline(model, batch_size),
            "joint forward": hand_pipeline(model, forward_joint),
            "two models": hand_pipeline(model, forward_two),
        }
        batches = [examples[start : start + batch_size] for start in range(0, len(examples), batch_size)]
        timed = time_batches(pipelines, batches, args.repeats, args.warmup_batches)
        two_rate = len(examples) / median(timed["totals"]["two models"])
        for name in pipelines:
            rate = len(examples) / median(timed["totals"][name])
            latencies = timed["latencies"][name]
            rows.append(
                {
                    "variant": name,
                    "batch_size": batch_size,
                    "sentences_per_s": round(rate, 2),
                    "ratio_vs_two_models": round(rate / two_rate, 3),
                    "p50_ms": round(1000 * percentile(latencies, 0.5), 2),
                    "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
                    "pass_seconds": [round(s, 3) for s in timed["totals"][name]],
                }
            )
            print(f"batch {batch_size:>3} {name:<16} {rate:7.1f} sentences/s", flush=True)
        outputs = timed["outputs"]
        checks[str(batch_size)] = agreement(outputs["joint Predictor"], outputs["joint forward"])
    target_rows = [r for r in rows if r["batch_size"] == TARGET_BATCH and r["variant"] != "two models"]
    return {
        "joint_model": source,
        "two_models": f"AutoModelForSequenceClassification + AutoModelForTokenClassification from {encoder_dir}",
        "data": f"{args.data_dir} ({args.split}, {len(examples)} sentences)",
        "rows": rows,
        "predictor_vs_hand_pipeline_agreement": checks,
        "target": {"ratio": TARGET_RATIO, "batch_size": TARGET_BATCH},
        "target_met": {r["variant"]: r["ratio_vs_two_models"] >= TARGET_RATIO for r in target_rows},
    }


def table(result: dict) -> str:
    lines = [
        "| batch | variant | sentences/s | vs two models | p50 ms / batch | p99 ms / batch |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['batch_size']} | {row['variant']} | {row['sentences_per_s']:.1f} | "
            f"{row['ratio_vs_two_models']:.2f}x | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("MTST_DATA_DIR"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-sentences", type=int, default=None, help="only the split's first N sentences")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a trained mtst checkpoint (else untrained)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "snips.yaml", help="without --checkpoint")
    parser.add_argument(
        "--encoder",
        default=None,
        help="local HF encoder folder for the two models (and the untrained joint one); default all-MiniLM-L6-v2",
    )
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64])
    parser.add_argument("--repeats", type=int, default=3, help="passes over the split per batch size")
    parser.add_argument("--warmup-batches", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "joint_vs_two_models.json")
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("no data directory: pass --data-dir or set MTST_DATA_DIR")
    record = started_record(args)
    record["result"] = measure(args)
    write_result(record, args.output)
    print(table(record["result"]))
    met = record["result"]["target_met"]
    print(f"\ntarget (joint >= {TARGET_RATIO}x two models at batch {TARGET_BATCH}) met: {met}")


if __name__ == "__main__":
    main()
