"""Request and response bodies. The request model is built from the limits, so the OpenAPI schema states them."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, create_model

from mtst.serve.config import ServeConfig

# Python's whitespace (str.isspace) spelled out, so the JSON Schema pattern that documents the rule matches
# exactly what the validator refuses: ECMA regex `\s` and Python's differ (U+FEFF, U+001C-U+001F).
_WHITESPACE = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{_WHITESPACE}]"


def _has_a_visible_character(text: str) -> str:
    if not re.search(NOT_BLANK, text):
        raise ValueError("text is empty or only whitespace")
    return text


def predict_request_model(config: ServeConfig) -> type[BaseModel]:
    """`{"texts": [...]}`: 1..max_texts strings, each 1..max_chars characters with at least one non-space."""
    text = Annotated[
        StrictStr,
        Field(min_length=1, max_length=config.max_chars, json_schema_extra={"pattern": NOT_BLANK}),
        AfterValidator(_has_a_visible_character),
    ]
    texts = Annotated[
        list[text],
        Field(
            min_length=1,
            max_length=config.max_texts,
            description="Sentences to label; any Unicode, control characters included.",
            examples=[["Alice went to Paris last summer."]],
        ),
    ]
    return create_model("PredictRequest", __config__=ConfigDict(extra="forbid"), texts=(texts, ...))


class Entity(BaseModel):
    text: str
    label: str
    start: int = Field(description="character offset into the text")
    end: int
    score: float


class RankedLabel(BaseModel):
    label: str
    score: float


class SentenceResult(BaseModel):
    """What `mtst predict --json` prints for one sentence; a model with more tasks adds one key per extra task."""

    model_config = ConfigDict(extra="allow")

    text: str
    label: str | None = Field(None, description="the first sentence task's label")
    score: float | None = None
    ranking: list[RankedLabel] | None = Field(None, description="the first sentence task's most probable labels")
    entities: list[Entity] | None = Field(None, description="the first token task's entities")


class ErrorResponse(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    batches: int = Field(description="model calls so far")
    sentences: int = Field(description="sentences predicted so far")
    dropped: int = Field(0, description="requests dropped unbatched because their client disconnected")
    queued: int = Field(0, description="requests waiting for the model now (being counted or queued)")
