"""Where a model loses: the error taxonomy of entity spans, confused types and labels, mispredicted sentences.

Each predicted entity span of a token task gets exactly one category, judged against the gold spans of its
sentence (the categories of Chinchor & Sundheim's MUC scoring, as nervaluate and most NER error studies use):

- `correct`: a gold span with the same boundaries and type;
- `wrong_type`: a gold span with the same boundaries and another type;
- `wrong_boundary`: no exact match, but it overlaps a gold span of its type;
- `wrong_type_and_boundary`: it overlaps only gold spans of other types, none with its boundaries;
- `spurious`: it overlaps no gold span.

A gold span that no predicted span overlaps is `missed`. So the predicted count is the sum of the first five,
and a gold span split in two by the prediction yields two boundary errors. Spans are read from BIO tags the
way `mtst predict` reads them (`predict.tag_spans`), so the counts describe the entities a user gets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from mtst.checkpoint import write_text_atomic
from mtst.data.example import Example
from mtst.evaluate import compute_metrics
from mtst.inference import Prediction
from mtst.jsonout import dumps
from mtst.predict import tag_spans

# hand-written rather than nervaluate: its MUC schemas give partial/incorrect counts per schema, not the
# five-way category of each predicted span with the type pair behind it, which the confusion table needs.
CATEGORIES = ("correct", "wrong_type", "wrong_boundary", "wrong_type_and_boundary", "spurious", "missed")
ERRORS_FILE, SENTENCES_FILE = "errors.json", "mispredicted.jsonl"

Span = tuple[int, int, str]  # first word, last word (inclusive), type


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def classify_spans(gold: Sequence[Span], predicted: Sequence[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """(category, gold span, predicted span) for every predicted span, then one `missed` per unmatched gold span.

    The gold span given with a wrong-type or boundary error is the one it is judged against (the same type
    first), so (gold type, predicted type) pairs can be counted.
    """
    judged: list[tuple[str, Span | None, Span | None]] = []
    for span in predicted:
        overlapping = [g for g in gold if _overlaps(g, span)]
        exact = next((g for g in overlapping if g[:2] == span[:2]), None)
        same_type = next((g for g in overlapping if g[2] == span[2]), None)
        if exact is not None:
            judged.append(("correct" if exact[2] == span[2] else "wrong_type", exact, span))
        elif same_type is not None:
            judged.append(("wrong_boundary", same_type, span))
        elif overlapping:
            judged.append(("wrong_type_and_boundary", overlapping[0], span))
        else:
            judged.append(("spurious", None, span))
    judged += [("missed", g, None) for g in gold if not any(_overlaps(g, p) for p in predicted)]
    return judged


def token_task_errors(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], top: int = 10) -> dict:
    """Category counts, the most confused (gold type, predicted type) pairs, and span totals."""
    counts: Counter[str] = Counter({category: 0 for category in CATEGORIES})
    confused: Counter[tuple[str, str]] = Counter()
    boundary_by_type: Counter[str] = Counter()
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        for category, gold_span, span in classify_spans(tag_spans(gold_tags), tag_spans(predicted_tags)):
            counts[category] += 1
            if category in ("wrong_type", "wrong_type_and_boundary"):
                confused[(gold_span[2], span[2])] += 1
            elif category == "wrong_boundary":
                boundary_by_type[span[2]] += 1
    return {
        "gold_spans": sum(len(tag_spans(tags)) for tags in gold),
        "predicted_spans": sum(counts[c] for c in CATEGORIES if c != "missed"),
        "counts": dict(counts),
        "confused_types": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confused.most_common(top)],
        "wrong_boundary_by_type": dict(boundary_by_type.most_common(top)),
    }


def sentence_confusions(gold: Sequence[str], predicted: Sequence[str], top: int = 10) -> list[dict]:
    """The most frequent (gold label, predicted label) pairs among the mistakes."""
    pairs = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    return [{"gold": g, "predicted": p, "count": n} for (g, p), n in pairs.most_common(top)]


def _spans_json(example: Example, tags: Sequence[str]) -> list[dict]:
    return [
        {"text": " ".join(example.words[a : b + 1]), "label": kind, "words": [a, b]} for a, b, kind in tag_spans(tags)
    ]


def mispredicted(tasks: dict, examples: Sequence[Example], predictions: Sequence[Prediction]) -> list[dict]:
    """One record per sentence with any task wrong: gold beside predicted, and each span error named."""
    records = []
    for example, prediction in zip(examples, predictions, strict=True):
        record: dict = {"origin": example.origin, "text": example.text, "tasks": {}}
        for name, task in tasks.items():
            gold = example.annotations.get(task.field)
            if gold is None:
                continue
            if task.type == "sentence":
                if gold != prediction[name].label:
                    record["tasks"][name] = {"gold": gold, "predicted": prediction[name].label}
            elif tuple(gold) != tuple(prediction[name].tags):
                judged = classify_spans(tag_spans(gold), tag_spans(prediction[name].tags))
                record["tasks"][name] = {
                    "gold": _spans_json(example, gold),
                    "predicted": _spans_json(example, prediction[name].tags),
                    "errors": [_error_json(example, *entry) for entry in judged if entry[0] != "correct"],
                }
        if record["tasks"]:
            records.append(record)
    return records


def _error_json(example: Example, category: str, gold: Span | None, predicted: Span | None) -> dict:
    def text(span: Span | None) -> str | None:
        return None if span is None else f"{' '.join(example.words[span[0] : span[1] + 1])} [{span[2]}]"

    return {"category": category, "gold": text(gold), "predicted": text(predicted)}


def analyze(tasks: dict, examples: Sequence[Example], predictions: Sequence[Prediction]) -> tuple[dict, list[dict]]:
    """(report, mispredicted sentences): per task P/R/F1 and support per type or label, plus the errors."""
    metrics = compute_metrics(tasks, examples, predictions)
    report: dict = {"sentences": len(examples), "sentence_accuracy": metrics["sentence_accuracy"], "tasks": {}}
    for name, task in tasks.items():
        rows = [i for i, example in enumerate(examples) if task.field in example.annotations]
        if not rows:
            continue
        gold = [examples[i].annotations[task.field] for i in rows]
        entry = {"type": task.type, **{k: v for k, v in metrics[name].items() if k != "loss"}}
        if task.type == "sentence":
            entry["confusions"] = sentence_confusions(gold, [predictions[i][name].label for i in rows])
        else:
            entry["errors"] = token_task_errors(gold, [predictions[i][name].tags for i in rows])
        report["tasks"][name] = entry
    return report, mispredicted(tasks, examples, predictions)


def write_analysis(report: dict, records: Sequence[dict], directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / ERRORS_FILE, dumps(report, ERRORS_FILE, indent=2, ensure_ascii=False) + "\n")
    lines = "".join(dumps(record, SENTENCES_FILE, ensure_ascii=False) + "\n" for record in records)
    write_text_atomic(directory / SENTENCES_FILE, lines)


def summary_lines(report: dict, records: Sequence[dict]) -> list[str]:
    """A short human-readable digest of the report."""
    lines = [f"{report['sentences']} sentences, {len(records)} with an error; sentence accuracy "
             f"{100 * report['sentence_accuracy']:.2f}"]  # fmt: skip
    for name, entry in report["tasks"].items():
        if entry["type"] == "sentence":
            pairs = ", ".join(f"{c['gold']} -> {c['predicted']} ({c['count']})" for c in entry["confusions"][:5])
            lines.append(f"{name}: accuracy {100 * entry['accuracy']:.2f}; most confused: {pairs or 'none'}")
            continue
        errors = entry["errors"]
        lines.append(
            f"{name}: P {100 * entry['precision']:.2f} R {100 * entry['recall']:.2f} F1 {100 * entry['f1']:.2f}; "
            f"{errors['predicted_spans']} predicted / {errors['gold_spans']} gold spans"
        )
        lines.append("  " + ", ".join(f"{category} {errors['counts'][category]}" for category in CATEGORIES))
        pairs = ", ".join(f"{c['gold']} -> {c['predicted']} ({c['count']})" for c in errors["confused_types"][:5])
        lines.append(f"  most confused types: {pairs or 'none'}")
        # The types that cost most: (1 - F1) x support, i.e. roughly the gold entities the type's errors lose.
        costly = sorted(
            ((label, row) for label, row in entry["report"].items() if "avg" not in label),
            key=lambda item: (1 - item[1]["f1-score"]) * item[1]["support"],
            reverse=True,
        )[:5]
        lines.append(
            "  costliest types: "
            + ", ".join(f"{label} F1 {100 * row['f1-score']:.1f} (n={int(row['support'])})" for label, row in costly)
        )
    return lines
