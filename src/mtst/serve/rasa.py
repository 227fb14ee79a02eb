"""`POST /model/parse`: Rasa's NLU server endpoint, so a Rasa dialogue server can take its parses from mtst.

Rasa (`RasaNLUHttpInterpreter`) posts `{"text": ..., "message_id": ..., "token": ...}` to `{url}/model/parse`,
the token in the body; Rasa's own server reads it from the query (`?token=`). Both are accepted. The text goes
through the same micro-batcher, limits and model as `/predict`.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations at run time.

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from mtst.integrations.rasa import parse_result
from mtst.serve.batching import MicroBatcher, QueueFull
from mtst.serve.config import ServeConfig

EXAMPLE = '{"text": "a sentence"}'
OverBudget = Callable[[list[str]], Awaitable[str | None]]


class ParseRequest(BaseModel):
    # Rasa sends fields of its own (message_id, token, and more in later versions): ignored, never refused.
    model_config = ConfigDict(extra="ignore")

    text: StrictStr
    message_id: StrictStr | None = None
    token: StrictStr | None = None


class RasaIntent(BaseModel):
    name: str | None
    confidence: float


class RasaEntity(BaseModel):
    entity: str
    start: int
    end: int
    value: str
    confidence_entity: float
    extractor: str
    role: str | None = Field(None, description="from a tag `type.role` written by mtst's Rasa reader")
    confidence_role: float | None = None


class ParseResult(BaseModel):
    text: str
    intent: RasaIntent
    intent_ranking: list[RasaIntent]
    entities: list[RasaEntity]


REFUSALS = {
    400: "malformed JSON",
    401: "a token is set (`--rasa-token`) and the request's `?token=` or body `token` is not it",
    413: "the text holds more than max_subtokens sub-tokens",
    422: "no `text`, a `text` that is not a string or longer than max_chars",
    503: "max_queued_requests requests are already waiting; retry after the Retry-After seconds",
}


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def read_parse_request(body: bytes, max_chars: int) -> ParseRequest | str:
    """The request, or one line saying what is wrong with it."""
    try:
        raw = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"malformed JSON: {error}"
    if not isinstance(raw, dict):
        return f"the body must be a JSON object: {EXAMPLE}"
    try:
        request = ParseRequest.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"
    if len(request.text) > max_chars:
        return f"text: {len(request.text)} characters; at most {max_chars}"
    return request


def token_accepted(expected: str | None, *given: str | None) -> bool:
    """No token set: every request; else one of the given tokens must equal it (compared in constant time)."""
    if expected is None:
        return True
    return any(token is not None and hmac.compare_digest(token.encode(), expected.encode()) for token in given)


def subtoken_budget(config: ServeConfig, count_subtokens: Callable[[list[str]], int] | None) -> OverBudget:
    """Why texts ask for more than `max_subtokens` sub-tokens, or None: the check `/predict` makes too."""

    async def over_budget(texts: list[str]) -> str | None:
        if count_subtokens is None:
            return None
        subtokens = await asyncio.to_thread(count_subtokens, texts)
        if subtokens > config.max_subtokens:
            return f"the texts hold {subtokens} sub-tokens; at most {config.max_subtokens} per request"
        return None

    return over_budget


def rasa_router(batcher: MicroBatcher, config: ServeConfig, over_budget: OverBudget | None = None) -> APIRouter:
    """The endpoint over the server's micro-batcher; `over_budget` (texts -> why they are refused, or None; it may
    raise QueueFull) is the admission check `/predict` makes."""
    router = APIRouter(tags=["Rasa"])
    schema = ParseRequest.model_json_schema()
    schema["properties"]["text"]["maxLength"] = config.max_chars

    @router.post(
        "/model/parse",
        response_model=ParseResult,
        responses={code: {"description": why} for code, why in REFUSALS.items()},
        # The body is read by hand (Rasa's extra fields ignored, one-line errors); its schema is stated here.
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}},
        summary="Rasa's NLU parse format: intent, intent_ranking, entities",
    )
    async def parse(request: Request, token: str | None = None):
        body = read_parse_request(await request.body(), config.max_chars)
        if isinstance(body, str):
            return _error(400 if body.startswith("malformed") else 422, body)
        if not token_accepted(config.rasa_token, token, body.token):
            return _error(401, "a wrong or missing token: pass the token `mtst serve --rasa-token` was given")
        try:
            refusal = await over_budget([body.text]) if over_budget is not None else None
            if refusal:
                return _error(413, refusal)
            [prediction] = await batcher.predict([body.text])
        except QueueFull as error:
            return JSONResponse({"detail": f"server busy: {error}"}, status_code=503, headers={"Retry-After": "1"})
        return JSONResponse(parse_result(prediction))  # as built: `role` only where there is one

    return router
