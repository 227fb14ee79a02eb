"""What `mtst suggest` writes: the chosen sentences pre-annotated with the model's predictions, so the annotator
corrects instead of starting blank, in a format mtst's readers take back (export → annotate → import → retrain).

`mtst`: mtst JSONL (`text`, `label`, `entities`); `label-studio`: a JSON array of Label Studio tasks whose
`predictions` hold a `choices` result (from_name `intent`) and `labels` results (from_name `label`), which
Label Studio shows as pre-annotations and exports, once submitted, as the `annotations` mtst reads; `doccano`:
doccano JSONL (`label` spans, `cats`). The first sentence task and the first token task are carried (the keys
of a prediction's top level); each record also keeps why it was chosen under `mtst_suggestion`, a key the
readers pass over.
"""

from __future__ import annotations

import json
from pathlib import Path

from mtst.files import write_text_atomic

FORMATS = ("mtst", "label-studio", "doccano")


def to_mtst(result: dict, why: dict) -> dict:
    record: dict = {"text": result["text"]}
    if "label" in result:
        record["label"] = result["label"]
    spans = [{key: e[key] for key in ("start", "end", "label")} for e in result.get("entities", [])]
    return {**record, "entities": spans, "mtst_suggestion": why}


def to_label_studio(result: dict, why: dict) -> dict:
    items = []
    if "label" in result:
        value = {"choices": [result["label"]]}
        items.append({"from_name": "intent", "to_name": "text", "type": "choices", "value": value})
    for entity in result.get("entities", []):
        value = {key: entity[key] for key in ("start", "end", "text")} | {"labels": [entity["label"]]}
        items.append({"from_name": "label", "to_name": "text", "type": "labels", "value": value})
    prediction = {"model_version": "mtst", "score": why["score"], "result": items}
    return {"data": {"text": result["text"]}, "predictions": [prediction], "meta": {"mtst_suggestion": why}}


def to_doccano(result: dict, why: dict) -> dict:
    spans = [[e["start"], e["end"], e["label"]] for e in result.get("entities", [])]
    cats = [result["label"]] if "label" in result else []
    return {"text": result["text"], "label": spans, "cats": cats, "mtst_suggestion": why}


def write_suggestions(results: list[dict], reasons: list[dict], fmt: str, output: Path) -> None:
    """One record per chosen sentence, best first, written atomically."""
    convert = {"mtst": to_mtst, "label-studio": to_label_studio, "doccano": to_doccano}[fmt]
    records = [convert(result, why) for result, why in zip(results, reasons, strict=True)]
    if fmt == "label-studio":
        text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    else:
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    write_text_atomic(output, text)
