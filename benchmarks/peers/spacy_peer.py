"""spaCy 3.8 as a peer: a blank English pipeline with `textcat` (exclusive classes) + `ner` on a shared CNN
tok2vec, from spaCy's own CPU configs, trained with `spacy train` (its own venv: setup.sh spacy).

    python benchmarks/peers/spacy_peer.py train --optimize efficiency --corpus atis \
        --data-dir ../shared/data/atis --output /work/main/runs/peers/spacy-efficiency/atis \
        --max-steps 3000 --wall-limit-seconds 1080
    python benchmarks/peers/spacy_peer.py speed --data-dir ../shared/data/atis \
        --output /work/main/runs/peers/spacy-efficiency/atis

Caps used for the peer table (one thread, sized from a smoke run so one run stays near 15 minutes):
--max-steps 3000 for efficiency, 1200 for accuracy (about 13x slower per word), patience 1600 as generated.

The configs benchmarks/peers/spacy/{efficiency,accuracy}.cfg are exactly what
`spacy init config --lang en --pipeline textcat,ner --optimize efficiency|accuracy` writes (CPU). `train`
copies one into the run folder with these changes only: the DocBin paths, the cap and patience, the console
logger that also writes a JSONL log, and, for the accuracy config, no static vectors (it asks for
en_core_web_lg, a download; the comparison trains every peer from local files only). Its score weights
(cats_score 0.5, ents_f 0.5) are kept as generated: model-best is chosen on dev with intent and entity scores
weighed equally.

Documents are built from the corpus's own words (`Doc(vocab, words=words)`, never the tokenizer); entities
come from the BIO tags, the intent is a one-hot `doc.cats` over the train labels (a dev label unseen in train
has all cats at 0: it stays wrong, as it must). Predictions: intent = argmax of `doc.cats`, tags = BIO from
`token.ent_iob_` + `token.ent_type_`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peer_io import (  # noqa: E402
    Sentence,
    Stopwatch,
    command_line,
    folder_size_mb,
    machine,
    peak_rss_mb,
    read_split,
    record_speed,
    update_record,
    write_predictions,
)

CONFIGS = Path(__file__).parent / "spacy"


def to_doc(vocab, sentence: Sentence, labels: list[str]):
    """One spaCy Doc on the corpus's own words, with entities from the BIO tags and one-hot cats."""
    from spacy.tokens import Doc
    from spacy.training.iob_utils import biluo_tags_to_spans, iob_to_biluo

    doc = Doc(vocab, words=sentence.words)
    doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(sentence.tags))
    doc.cats = {label: float(label == sentence.intent) for label in labels}
    return doc


def write_docbins(data_dir: str, folder: Path, limits: dict[str, int | None]) -> dict[str, int]:
    """train.spacy and dev.spacy in `folder`; the intent labels are those seen in train."""
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    splits = {split: read_split(data_dir, split)[: limits[split]] for split in ("train", "dev")}
    labels = sorted({s.intent for s in splits["train"]})
    for split, sentences in splits.items():
        DocBin(docs=(to_doc(vocab, s, labels) for s in sentences), store_user_data=False).to_disk(
            folder / f"{split}.spacy"
        )
    unseen = sum(s.intent not in labels for s in splits["dev"])
    return {"train": len(splits["train"]), "dev": len(splits["dev"]), "labels": len(labels), "dev_unseen": unseen}


def write_config(args, folder: Path) -> dict:
    """The generated config with the run's paths, cap and logger; returns the changes made."""
    from spacy.util import load_config

    config = load_config(CONFIGS / f"{args.optimize}.cfg")
    changes = {
        "paths.train": str(folder / "train.spacy"),
        "paths.dev": str(folder / "dev.spacy"),
        "system.seed": args.seed,
        "nlp.batch_size": args.nlp_batch_size,
        "training.max_steps": args.max_steps,
        "training.max_epochs": args.max_epochs,
        "training.patience": args.patience,
        "training.eval_frequency": args.eval_frequency,
        "training.logger": {
            "@loggers": "spacy.ConsoleLogger.v3",
            "progress_bar": None,
            "console_output": True,
            "output_file": str(folder / "train_log.jsonl"),
        },
    }
    if args.optimize == "accuracy":  # en_core_web_lg would be a download: no static vectors
        changes["paths.vectors"] = None
        changes["components.tok2vec.model.embed.include_static_vectors"] = False
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        section = config
        for name in parents:
            section = section[name]
        section[key] = value
    config.to_disk(folder / "config.cfg")
    return changes


def read_log(path: Path) -> dict:
    """Evaluations spaCy logged; model-best is the last one reaching the top score (spaCy's own rule)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    top = max(row["score"] for row in rows)
    best = [row for row in rows if row["score"] == top][-1]
    last = rows[-1]
    return {
        "evaluations": len(rows),
        "last_evaluated_step": last["step"],
        "last_epoch": last["epoch"],
        "best_step": best["step"],
        "best_epoch": best["epoch"],
        "best_dev_score": best["score"],
        "best_dev_scores_percent": best["scores"],
    }


def train(args) -> None:
    import spacy

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for stale in ("train_log.jsonl", "run.json"):  # the logger refuses to overwrite an old log
        (output / stale).unlink(missing_ok=True)
    variant = f"spacy-{args.optimize}"
    update_record(output, peer="spacy", variant=variant, corpus=args.corpus, machine_at_start=machine())
    limits = {"train": args.max_train_examples, "dev": args.max_dev_examples}
    with Stopwatch() as conversion:
        counts = write_docbins(args.data_dir, output, limits)
    changes = write_config(args, output)
    command = [sys.executable, "-m", "spacy", "train", str(output / "config.cfg"), "--output", str(output / "model")]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    stopped_by = "spacy train ended (patience or max_steps)"
    with Stopwatch() as clock:
        try:
            subprocess.run(command, env=env, check=True, timeout=args.wall_limit_seconds)
        except subprocess.TimeoutExpired:  # a safety net for the shared deadline; model-best is kept
            stopped_by = f"killed by the wall limit of {args.wall_limit_seconds} s"
    best = output / "model" / "model-best"
    meta = json.loads((best / "meta.json").read_text())
    update_record(
        output,
        library_versions={"spacy": spacy.__version__, "thinc": _version("thinc"), "numpy": _version("numpy")},
        command=command,
        config=f"benchmarks/peers/spacy/{args.optimize}.cfg",
        config_changes=changes,
        data=counts,
        docbin_seconds=conversion.seconds,
        train_seconds=clock.seconds,
        train_peak_rss_mb=peak_rss_mb(),
        threads=args.threads,
        seed=args.seed,
        stopped_by=stopped_by,
        convergence=(
            f"spaCy's early stopping: stop after training.patience={args.patience} steps without a better dev "
            f"score, capped at training.max_steps={args.max_steps} (max_epochs={args.max_epochs}, 0 = no cap); "
            f"dev evaluated every {args.eval_frequency} steps; training batches: the config's batch_by_words "
            "compounding 100 -> 1000 words"
        ),
        training_log=read_log(output / "train_log.jsonl"),
        best_dev_performance=meta.get("performance"),
        model_size_mb=folder_size_mb(best),
        machine_at_end=machine(),
    )
    write_test_predictions(best, args.data_dir, output)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def predictor(model_dir: Path):
    """predict(list of word lists) -> (intents, BIO tags) on the given words, no tokenizer."""
    import spacy
    from spacy.tokens import Doc

    nlp = spacy.load(model_dir)

    def predict(batch: list[list[str]]):
        docs = nlp.pipe((Doc(nlp.vocab, words=words) for words in batch), batch_size=max(1, len(batch)))
        intents, tags = [], []
        for doc in docs:
            intents.append(max(doc.cats, key=doc.cats.get))
            tags.append([f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc])
        return intents, tags

    return predict


def write_test_predictions(model_dir: Path, data_dir: str, output: Path) -> None:
    sentences = read_split(data_dir, "test")
    intents, tags = predictor(model_dir)([s.words for s in sentences])
    write_predictions(output / "predictions.jsonl", intents, tags)


def speed(args) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # before numpy/blis load (imported lazily)
    predict = predictor(Path(args.output) / "model" / "model-best")
    record_speed(args.output, predict, args.data_dir, args.limit, args.threads)


def main() -> None:
    parser, run, speed_parser = command_line(__doc__)
    run.add_argument("--corpus", required=True, choices=["atis", "snips"])
    run.add_argument("--optimize", required=True, choices=["efficiency", "accuracy"])
    run.add_argument("--seed", type=int, default=13)
    run.add_argument("--max-steps", type=int, required=True, help="training.max_steps (the cap)")
    run.add_argument("--max-epochs", type=int, default=0, help="training.max_epochs (0: no epoch cap)")
    run.add_argument("--patience", type=int, default=1600, help="training.patience (the config's default)")
    run.add_argument("--eval-frequency", type=int, default=200, help="training.eval_frequency (config default)")
    run.add_argument("--nlp-batch-size", type=int, default=1000, help="nlp.batch_size: evaluation batches")
    run.add_argument("--wall-limit-seconds", type=float, default=None, help="kill spacy train after this long")
    run.add_argument("--max-train-examples", type=int, default=None, help="first N train sentences (smoke runs)")
    run.add_argument("--max-dev-examples", type=int, default=None, help="first N dev sentences (smoke runs)")
    args = parser.parse_args()
    train(args) if args.command == "train" else speed(args)


if __name__ == "__main__":
    main()
