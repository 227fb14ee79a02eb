"""`mtst suggest`: which unlabelled sentences to label next, so that labelling them helps the joint model most.

Each pool sentence gets each task's uncertainties (its kind's `uncertainty`, tasks/uncertainty.py) from one
encoder pass: for a sentence task the margin between its two likeliest labels and the normalised entropy;
for a token task MNLP (with a CRF, its own sequence probability); and BALD from `mc_samples` passes of the
heads with dropout on, over the same encoder states (cheap: the heads are a few linear layers). `joint`
averages the tasks' main uncertainties, each in [0, 1]; `random` is the control. Near-duplicates never fill a
batch: texts equal up to case and spaces are scored once, and the pick takes the most uncertain sentence of
each k-means cluster of the sentence embeddings before any cluster gives a second.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from sklearn.cluster import KMeans

from mtst.data.batching import Collator
from mtst.data.example import Example
from mtst.data.features import encode_examples

STRATEGIES = ("joint", "margin", "entropy", "mnlp", "bald", "random")


def distinct(texts: Sequence[str]) -> list[str]:
    """The texts less those equal to an earlier one up to case and whitespace."""
    seen, kept = set(), []
    for text in texts:
        key = re.sub(r"\s+", " ", text.casefold()).strip()
        if key not in seen:
            seen.add(key)
            kept.append(text)
    return kept


@torch.inference_mode()
def uncertainties(model, texts: Sequence[str], mc_samples: int = 8, batch_size: int = 64):
    """Per text its uncertainties by name (`intent.margin`, `slots.mnlp`, `slots.bald`, ...), and the texts'
    L2-normalised sentence embeddings [N, H]."""
    tasks = list(model.tasks.values())
    features = encode_examples([Example.from_text(t) for t in texts], model.tokenizer, tasks, model.max_length)
    collate, rows, embeddings = Collator(model.tokenizer.pad_token_id, model.tasks), [], []
    was_training = model.training
    model.eval()
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        batch = collate(chunk)
        embedded = {**model.embed(batch["input_ids"], batch["attention_mask"]), "word_ids": batch["word_ids"]}
        logits = model.run_heads(embedded)[0]
        samples = _dropout_passes(model, embedded, mc_samples)
        rows += _rows(model, logits, samples, [feature.word_starts for feature in chunk])
        embeddings.append(torch.nn.functional.normalize(embedded["sentence_embedding"].float(), dim=-1))
    model.train(was_training)
    return rows, torch.cat(embeddings) if embeddings else torch.empty(0)


def _dropout_passes(model, embedded: dict, count: int) -> list[dict]:
    """The heads' logits `count` times with their dropout on (MC dropout), over the same encoder states."""
    for head in model.heads.values():
        head.train()
    passes = [model.run_heads(embedded)[0] for _ in range(count)]
    for head in model.heads.values():
        head.eval()
    return passes


def _rows(model, logits: dict, samples: list[dict], word_starts: list) -> list[dict[str, float]]:
    """Each sentence of the batch: its uncertainties, keyed `TASK.MEASURE` (`intent.margin`, `slots.mnlp`)."""
    rows = [{} for _ in word_starts]
    for name, task in model.tasks.items():
        sampled = [sample[name] for sample in samples]
        measured = task.uncertainties(logits[name], sampled, word_starts, model.heads[name])
        for values, measures in zip(rows, measured, strict=True):
            values |= {f"{name}.{measure}": value for measure, value in measures.items()}
    if not samples:  # no dropout passes taken: BALD was not measured
        rows = [{key: value for key, value in values.items() if not key.endswith(".bald")} for values in rows]
    return rows


def scores(rows: list[dict[str, float]], strategy: str, seed: int = 13) -> list[float]:
    """One number per text, higher = label it sooner."""
    if strategy == "random":
        draw = random.Random(seed)
        return [draw.random() for _ in rows]
    suffixes = {"margin": (".margin",), "entropy": (".entropy",), "mnlp": (".mnlp",), "bald": (".bald",)}
    picked = []
    for row in rows:
        if strategy == "joint":  # each task's main uncertainty in [0, 1]: entropy, and 1 - exp(-MNLP)
            parts = [v for k, v in row.items() if k.endswith(".entropy")]
            parts += [1.0 - math.exp(-v) for k, v in row.items() if k.endswith(".mnlp")]
        else:
            parts = [v for k, v in row.items() if k.endswith(suffixes[strategy])]
        picked.append(sum(parts) / len(parts) if parts else 0.0)
    return picked


def select(values: Sequence[float], budget: int, embeddings: torch.Tensor | None, seed: int = 13) -> list[int]:
    """The indices to label, best first: the top one of each k-means cluster (k = budget), then the rest by score."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    if embeddings is None or budget >= len(values) or budget < 2:
        return order[:budget]
    clusters = KMeans(n_clusters=budget, n_init=3, random_state=seed).fit_predict(embeddings.numpy())
    firsts, seen = [], set()
    for index in order:
        if clusters[index] not in seen:
            seen.add(clusters[index])
            firsts.append(index)
    rest = [index for index in order if index not in set(firsts)]
    return (firsts + rest)[:budget]


def read_pool(path: Path) -> list[str]:
    """The unlabelled sentences: the texts of a file (or JointBERT folder) a reader takes by its suffix, else one
    per line (`.txt` too: a pool is plain text far more often than CoNLL)."""
    from mtst.data.formats import FORMATS, read_path
    from mtst.data.textfile import read_text_lines

    known = {suffix for fmt in FORMATS.values() for suffix in fmt.suffixes} - {".txt"}
    if path.is_dir() or path.suffix.lower() in known:
        return [example.text for example in read_path(path)]
    return read_text_lines(path)


def suggest(
    model,
    texts: Sequence[str],
    budget: int,
    strategy: str = "joint",
    diversity: bool = True,
    seed: int = 13,
    mc_samples: int = 8,
) -> tuple[list[dict], list[dict]]:
    """The `budget` texts to label next, best first: the model's predictions for them (as `mtst predict --json`
    gives them) and why each was chosen (rank, strategy, score, every uncertainty)."""
    from mtst.inference.predictor import Predictor

    pool = distinct(texts)
    rows, embeddings = uncertainties(model, pool, mc_samples if strategy == "bald" else 0)
    values = scores(rows, strategy, seed)
    chosen = select(values, budget, embeddings if diversity else None, seed)
    results = Predictor(model).predict([pool[i] for i in chosen])
    reasons = [
        {
            "rank": rank,
            "strategy": strategy,
            "score": round(values[i], 4),
            **{k: round(v, 4) for k, v in rows[i].items()},
        }
        for rank, i in enumerate(chosen, start=1)
    ]
    return results, reasons
