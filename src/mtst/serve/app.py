"""The FastAPI application: `/predict` through the micro-batcher, `/health`, `/info`, and the page at `/`."""

# No `from __future__ import annotations` here: FastAPI reads the request model built at run time from
# the endpoint's annotation, which must be the class itself, not a string.

import asyncio
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mtst.errors import validation_problem
from mtst.serve.admission import Admission
from mtst.serve.batching import MicroBatcher, PredictFn, QueueFull
from mtst.serve.config import ServeConfig
from mtst.serve.docs import add_offline_docs
from mtst.serve.limits import BodySizeLimit, StrictJsonBody
from mtst.serve.rasa import rasa_router
from mtst.serve.schemas import ErrorResponse, Health, SentenceResult, predict_request_model

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
ERROR_RESPONSES = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in {
        400: "malformed JSON, a key given twice, or a body that is not UTF-8",
        413: "request body larger than max_body_bytes, or texts holding more than max_subtokens sub-tokens",
        415: "body not sent as application/json, or compressed",
        422: "the body breaks a rule: texts missing, empty, too many, too long, not strings",
        503: "max_queued_requests requests are already waiting; retry after the Retry-After seconds",
    }.items()
}
EXAMPLE = '{"texts": ["a sentence"]}'


def _where(location) -> str:
    return ".".join(str(part) for part in location if part != "body") or "body"


def validation_message(error: dict) -> str:
    """One readable line for the first thing wrong with a request body."""
    where, kind = _where(error["loc"]), error["type"]
    if kind == "missing" and where == "body":
        return f"the request needs a JSON body: {EXAMPLE}"
    if kind in ("model_attributes_type", "dict_type") and where == "body":
        return f"the body must be a JSON object: {EXAMPLE}"
    if kind == "extra_forbidden":
        return f"{where}: unknown field; the body holds only `texts`"
    return f"{where}: {validation_problem(error)}"


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    first = problems[0]
    if first["type"] == "json_invalid":
        return _error(400, f"malformed JSON: {first['ctx']['error']} at character {first['loc'][-1]}")
    if isinstance(error.body, bytes):  # FastAPI parses a body as JSON only when its Content-Type says JSON
        return _error(415, f"send the body as JSON with the header Content-Type: application/json, e.g. {EXAMPLE}")
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return _error(422, validation_message(first) + more)


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone. The body is read already, so the next ASGI message is the
    disconnect (uvicorn does not cancel a handler whose client left; this is how the app learns it)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(work, request: Request):
    """`work`'s result, or None once the client has gone, cancelling the work (a queued request is dropped)."""
    task, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()  # takes effect at the task's next step: it is not done yet, and has no result
    if not task.done() or task.cancelled():
        logger.info('"%s %s" 499: the client left before its answer', request.method, request.url.path)
        return None
    return task.result()


def create_app(
    predict: PredictFn,
    info: dict,
    config: ServeConfig | None = None,
    count_subtokens: Callable[[list[str]], int] | None = None,
) -> FastAPI:
    """An app answering with `predict` (texts -> per-sentence dicts); `info` is what `/info` reports;
    `count_subtokens` (texts -> sub-tokens) enforces `max_subtokens` where given."""
    config = config or ServeConfig()
    batcher = MicroBatcher(predict, config.max_batch_sentences, config.max_wait_ms, config.max_queued_requests)
    admission = Admission(batcher, config, count_subtokens)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()
        admission.close()

    app = FastAPI(
        title="mtst",
        version=info.get("version", ""),
        description="Sentence label and entities from one multi-task encoder. Page at `/`.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's /docs and /redoc load their scripts from a CDN: blank offline
        redoc_url=None,
    )
    add_offline_docs(app)
    app.add_middleware(StrictJsonBody)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    _add_predict(app, batcher, admission)
    _add_status(app, batcher, admission, info, config)
    app.include_router(rasa_router(batcher, config, admission.over_budget))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _add_predict(app: FastAPI, batcher: MicroBatcher, admission: Admission) -> None:
    """POST /predict: the body validated against the limits, admitted (queue room, sub-tokens), then batched."""
    PredictRequest = predict_request_model(admission.config)  # noqa: N806 - a class, named as one

    async def answer(texts: list[str]):
        refusal = await admission.over_budget(texts)
        return _error(413, refusal) if refusal else await batcher.predict(texts)

    @app.post(
        "/predict",
        response_model=list[SentenceResult],
        response_model_exclude_unset=True,
        responses=ERROR_RESPONSES,
        summary="Label each text and find its entities",
    )
    async def predict_texts(body: PredictRequest, request: Request):
        try:
            results = await _unless_disconnected(answer(body.texts), request)
        except QueueFull as error:
            return JSONResponse({"detail": f"server busy: {error}"}, status_code=503, headers={"Retry-After": "1"})
        # 499 (nginx's "client closed request"): nobody reads it, but the access log tells what happened.
        return results if results is not None else Response(status_code=499)


def _add_status(app: FastAPI, batcher: MicroBatcher, admission: Admission, info: dict, config: ServeConfig) -> None:
    """GET /health (model calls and sentences so far) and /info (the checkpoint, limits and batching)."""
    limits = config.model_dump(
        include={"max_texts", "max_chars", "max_body_bytes", "max_subtokens", "max_queued_requests"}
    )
    batching = config.model_dump(include={"max_batch_sentences", "max_wait_ms"})

    @app.get("/health", response_model=Health)
    async def health():
        stats = batcher.stats
        counts = {"batches": stats.batches, "sentences": stats.sentences, "dropped": stats.dropped}
        return {"status": "ok", **counts, "queued": admission.waiting}

    @app.get("/info", summary="Model, tasks and labels, encoder, version, limits")
    async def model_info() -> dict:
        return {**info, "limits": limits, "batching": batching}
