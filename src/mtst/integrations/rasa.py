"""A prediction (what `mtst predict --json` prints) as Rasa's NLU parse result, the body `POST /model/parse`
answers: a Rasa dialogue server whose endpoints.yml says `nlu: url:` reads it as its own NLU's output.

The intent is the first sentence task's label, `intent_ranking` its ranked labels (Rasa lists at most ten),
the entities the first token task's. mtst's Rasa reader joins an entity's role to its type (`city.from`), so
such a label goes back as `entity: city` and `role: from`.
"""

from __future__ import annotations

EXTRACTOR = "mtst"
RANKING_LENGTH = 10  # Rasa's LABEL_RANKING_LENGTH: what its classifiers report
ROLE_SEPARATOR = "."  # how mtst's Rasa reader joins a type and its role in a tag (rasa_markup.py)


def parse_result(prediction: dict) -> dict:
    """Rasa's parse result (text, intent, intent_ranking, entities) of one prediction."""
    intent = _intent(prediction)
    ranking = [_intent_entry(item["label"], item["score"]) for item in prediction.get("ranking", [])]
    if intent["name"] is not None and not any(entry["name"] == intent["name"] for entry in ranking):
        ranking.insert(0, dict(intent))  # a fallback label, or a prediction made without a ranking
    return {
        "text": prediction["text"],
        "intent": intent,
        "intent_ranking": ranking[:RANKING_LENGTH],
        "entities": [_entity(entity) for entity in prediction.get("entities", [])],
    }


def _intent(prediction: dict) -> dict:
    if "label" not in prediction:  # a model without a sentence task: Rasa's "no intent"
        return {"name": None, "confidence": 0.0}
    return _intent_entry(prediction["label"], prediction["score"])


def _intent_entry(name: str, confidence: float) -> dict:
    return {"name": name, "confidence": float(confidence)}


def _entity(entity: dict) -> dict:
    kind, _, role = entity["label"].partition(ROLE_SEPARATOR)
    found = {
        "entity": kind,
        "start": entity["start"],
        "end": entity["end"],
        "value": entity["text"],
        "confidence_entity": float(entity["score"]),
        "extractor": EXTRACTOR,
    }
    if role:
        found.update(role=role, confidence_role=float(entity["score"]))
    return found
