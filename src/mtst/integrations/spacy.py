"""mtst as a spaCy pipeline component: `nlp.add_pipe("mtst", config={"checkpoint": PATH})`.

A Doc gets what `mtst predict --json` gives for its text, from the same checkpoint with the same thresholds:
- `doc.cats`: every label of the first sentence task with its probability (a fallback label, when the intent
  falls back, with the score the prediction gives it); another sentence task's labels as `task:label`;
- `doc.spans[task]` for every token task: its entities, aligned onto spaCy's tokens with
  `doc.char_span(start, end, label, alignment_mode="expand")`, each score in `attrs["scores"]` as spaCy's
  span categorizer keeps them; the first token task's entities are `doc.ents` too (what displaCy draws);
- `doc._.mtst`: the whole prediction, and `span._.mtst_score` on each entity.

The factory is registered under the `spacy_factories` entry point, so spaCy finds it once mtst is installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans, minibatch

from mtst.calibration.thresholds import apply_thresholds, threshold_settings
from mtst.errors import ConfigError
from mtst.inference.predictor import Predictor

ALL_LABELS = 10_000  # a ranking this long lists every label of a task
Doc.set_extension("mtst", default=None, force=True)
Span.set_extension("mtst_score", default=None, force=True)


@Language.factory(
    "mtst",
    default_config={
        "checkpoint": None,
        "batch_size": 32,
        "device": "cpu",
        "intent_threshold": None,
        "ambiguity_margin": None,
        "fallback_label": None,
        "entity_thresholds": None,
    },
)
def make_mtst(
    nlp: Language,
    name: str,
    checkpoint: str | None,
    batch_size: int,
    device: str,
    intent_threshold: float | None,
    ambiguity_margin: float | None,
    fallback_label: str | None,
    entity_thresholds: str | None,
) -> MtstComponent:
    if not checkpoint:
        raise ConfigError('the mtst component needs a checkpoint: nlp.add_pipe("mtst", config={"checkpoint": PATH})')
    predictor = Predictor.from_checkpoint(checkpoint, device=device, ranking=ALL_LABELS)
    settings = threshold_settings(intent_threshold, ambiguity_margin, fallback_label, entity_thresholds)
    apply_thresholds(predictor.model.tasks, settings)
    return MtstComponent(predictor, batch_size)


class MtstComponent:
    def __init__(self, predictor: Predictor, batch_size: int = 32):
        self.predictor = predictor
        self.batch_size = batch_size

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size or self.batch_size):
            for doc, result in zip(batch, self.predictor.predict([doc.text for doc in batch]), strict=True):
                yield self.annotate(doc, result)

    def annotate(self, doc: Doc, result: dict) -> Doc:
        """Each task puts what it predicted on the doc (the first task of each kind sits at the result's top
        level): the first task giving sentence labels fills `doc.cats` by label, later ones as `task:label`; the
        first giving entities sets `doc.ents` too."""
        doc._.mtst = result
        kinds_seen: set[str] = set()
        labelled = spanned = False
        for name, task in self.predictor.model.tasks.items():
            first = task.type not in kinds_seen
            kinds_seen.add(task.type)
            scores = task.label_scores(result, first)
            doc.cats.update({(f"{name}:" if labelled else "") + label: score for label, score in scores.items()})
            labelled = labelled or bool(scores)
            found = task.found_entities(result, first)
            if found is not None:
                spans = entity_spans(doc, found)
                doc.spans[name] = spans
                doc.spans[name].attrs["scores"] = [span._.mtst_score for span in spans]
                if not spanned:  # two entities expanded onto one spaCy token cannot both be ents: the longer stays
                    doc.ents = filter_spans(spans)
                spanned = True
        return doc


def entity_spans(doc: Doc, entities: list[dict]) -> list[Span]:
    """Each entity as a span over the doc's tokens (expanded to whole tokens), its score on `span._.mtst_score`."""
    spans = []
    for entity in entities:
        span = doc.char_span(entity["start"], entity["end"], label=entity["label"], alignment_mode="expand")
        if span is not None:  # None only for a span of nothing but whitespace
            span._.mtst_score = entity["score"]
            spans.append(span)
    return spans
