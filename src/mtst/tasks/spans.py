"""Entity spans read from BIO tags, and predicted spans judged against gold ones (the token kind's errors).

Each predicted entity span of a token task gets exactly one category, judged against the gold spans of its
sentence (the categories of Chinchor & Sundheim's MUC scoring, as nervaluate and most NER error studies use):

- `correct`: a gold span with the same boundaries and type;
- `wrong_type`: a gold span with the same boundaries and another type;
- `wrong_boundary`: no exact match, but it overlaps a gold span of its type;
- `wrong_type_and_boundary`: it overlaps only gold spans of other types, none with its boundaries;
- `spurious`: it overlaps no gold span.

A gold span that no predicted span overlaps is `missed`. So the predicted count is the sum of the first five,
and a gold span split in two by the prediction yields two boundary errors. Spans are read from BIO tags the
way `mtst predict` reads them (`tag_spans`), so the counts describe the entities a user gets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mtst.data.example import Example

# hand-written rather than nervaluate: its MUC schemas give partial/incorrect counts per schema, not the
# five-way category of each predicted span with the type pair behind it, which the confusion table needs.
CATEGORIES = ("correct", "wrong_type", "wrong_boundary", "wrong_type_and_boundary", "spurious", "missed")
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


def tag_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(first word, last word, type) for each entity; an I- tag that opens an entity starts one, as conlleval does."""
    spans: list[tuple[int, int, str]] = []
    for index, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and spans and spans[-1][1] == index - 1 and spans[-1][2] == kind
        if continues:
            spans[-1] = (spans[-1][0], index, kind)
        elif prefix in ("B", "I") and kind:
            spans.append((index, index, kind))
    return spans


def span_score(scores: Sequence[float], first: int, last: int) -> float:
    """An entity's score: the mean of its words' tag scores, rounded as a prediction's JSON gives it."""
    return round(sum(scores[first : last + 1]) / (last - first + 1), 4)


def entities(example: Example, tokens) -> list[dict]:
    """The predicted entities as character spans into the example's text, each with its mean tag score."""
    found = []
    for first, last, kind in tag_spans(tokens.tags):
        start, end = example.offsets[first][0], example.offsets[last][1]
        score = span_score(tokens.scores, first, last)
        found.append({"text": example.text[start:end], "label": kind, "start": start, "end": end, "score": score})
    return found


def spans_json(example: Example, tags: Sequence[str]) -> list[dict]:
    return [
        {"text": " ".join(example.words[a : b + 1]), "label": kind, "words": [a, b]} for a, b, kind in tag_spans(tags)
    ]


def error_json(example: Example, category: str, gold: Span | None, predicted: Span | None) -> dict:
    def text(span: Span | None) -> str | None:
        return None if span is None else f"{' '.join(example.words[span[0] : span[1] + 1])} [{span[2]}]"

    return {"category": category, "gold": text(gold), "predicted": text(predicted)}


def check_entity_thresholds(tags: Sequence[str], thresholds: dict[str, float]) -> None:
    """ValueError naming the first threshold for a type the tags do not have, or outside 0..1."""
    types = sorted({tag.partition("-")[2] for tag in tags if tag != "O"})
    for kind, threshold in thresholds.items():
        if kind not in types:
            raise ValueError(f"entity_thresholds: unknown entity type {kind!r}; the types are {', '.join(types)}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"entity_thresholds: {kind!r} is {threshold}; a threshold lies in 0..1")


def confident(found: list[dict], thresholds: dict[str, float]) -> list[dict]:
    """The entities whose score reaches their type's threshold (a type without one keeps every entity)."""
    return [entity for entity in found if entity["score"] >= thresholds.get(entity["label"], 0.0)]


def confident_tags(tags: Sequence[str], scores: Sequence[float], thresholds: dict[str, float]) -> list[str]:
    """The tags with every entity under its type's threshold turned to `O`: the entities `confident` keeps,
    as tags (so that evaluation scores the entities a prediction gives)."""
    kept = list(tags)
    for first, last, kind in tag_spans(tags):
        if span_score(scores, first, last) < thresholds.get(kind, 0.0):
            kept[first : last + 1] = ["O"] * (last - first + 1)
    return kept


def error_digest(name: str, entry: dict) -> list[str]:
    """A token task's entry of errors.json in a few lines: P/R/F1, the categories, confused and costly types."""
    errors = entry["errors"]
    pairs = ", ".join(f"{c['gold']} -> {c['predicted']} ({c['count']})" for c in errors["confused_types"][:5])
    # The types that cost most: (1 - F1) x support, i.e. roughly the gold entities the type's errors lose.
    costly = sorted(
        ((label, row) for label, row in entry["report"].items() if "avg" not in label),
        key=lambda item: (1 - item[1]["f1-score"]) * item[1]["support"],
        reverse=True,
    )[:5]
    return [
        f"{name}: P {100 * entry['precision']:.2f} R {100 * entry['recall']:.2f} F1 {100 * entry['f1']:.2f}; "
        f"{errors['predicted_spans']} predicted / {errors['gold_spans']} gold spans",
        "  " + ", ".join(f"{category} {errors['counts'][category]}" for category in CATEGORIES),
        f"  most confused types: {pairs or 'none'}",
        "  costliest types: "
        + ", ".join(f"{label} F1 {100 * row['f1-score']:.1f} (n={int(row['support'])})" for label, row in costly),
    ]
