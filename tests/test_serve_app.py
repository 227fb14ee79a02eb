import asyncio
import gzip
import json
import logging
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import mtst
from mtst.inference.predictor import Predictor
from mtst.serve.app import create_app
from mtst.serve.config import ServeConfig
from mtst.serve.loading import describe_checkpoint

JSON = {"content-type": "application/json"}
LIMITS = ServeConfig(max_texts=4, max_chars=200, max_body_bytes=4096, max_wait_ms=1)


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def client(predictor, tiny_checkpoint):
    app = create_app(predictor.predict, describe_checkpoint(tiny_checkpoint), LIMITS)
    with TestClient(app) as test_client:  # runs the lifespan: the micro-batcher starts and stops
        yield test_client


UNICODE = [
    "Play Queen’s “Bohemian Rhapsody” in São Paulo 🎵",
    "weather in Zürich, Kraków and Ñuñoa",
    "الطقس في القاهرة غدا",  # right-to-left
    "מזג האוויר בתל אביב",
    "東京の天気 🌧️ 👩‍👩‍👧",  # CJK, emoji with variation selector and zero-width joiners
    "tab\there\x00nul\x07bell\x1b[31mansi\u200bzero-width\u202eRLO\ufeffbom",  # control and format characters
    "e\u0301\u0301\u0301 z̷̢̛a̸l̴g̵o̶",  # stacked combining marks
    "x" * 200,  # one word at the character limit
]


def test_predict_returns_what_the_predictor_returns(client, predictor):
    texts = ["weather in paris", "play the beatles", "Alice went to Paris."]
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    assert response.json() == predictor.predict(texts)


@pytest.mark.parametrize("text", UNICODE, ids=range(len(UNICODE)))
def test_any_unicode_predicts_with_offsets_into_the_original_text(client, text):
    response = client.post("/predict", json={"texts": [text]})
    assert response.status_code == 200, response.text
    [result] = response.json()
    assert result["text"] == text and result["label"] in ("GetWeather", "PlayMusic")
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]


def test_a_100k_character_word_is_cut_to_max_length_subtokens_not_refused(predictor, tiny_checkpoint):
    config = ServeConfig(max_chars=100_000, max_body_bytes=300_000)
    word = "Paris" * 20_000
    with TestClient(create_app(predictor.predict, describe_checkpoint(tiny_checkpoint), config)) as client:
        response = client.post("/predict", json={"texts": [word, "a " * 49_999 + "b"]})
    assert response.status_code == 200
    assert [r["text"] for r in response.json()] == [word, "a " * 49_999 + "b"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        ({"texts": []}, None, 422, "texts: List should have at least 1 item"),
        ({"texts": [""]}, None, 422, "texts.0: String should have at least 1 character"),
        ({"texts": ["ok", " \n\t "]}, None, 422, "texts.1: text is empty or only whitespace"),
        ({"texts": ["ok", 3]}, None, 422, "texts.1: Input should be a valid string"),
        ({"texts": [None]}, None, 422, "texts.0: Input should be a valid string"),
        ({"texts": ["a", ["b"]]}, None, 422, "texts.1: Input should be a valid string"),
        ({"texts": "one string"}, None, 422, "texts: Input should be a valid list"),
        ({"texts": ["a"] * 5}, None, 422, "texts: List should have at most 4 items"),
        ({"texts": ["a" * 201]}, None, 422, "texts.0: String should have at most 200 characters"),
        ({}, None, 422, "texts: Field required"),
        ({"texts": ["a"], "text": "b"}, None, 422, "text: unknown field"),
        (["a sentence"], None, 422, "the body must be a JSON object"),
        (b"", JSON, 422, "the request needs a JSON body"),
        (b'{"texts": ["a"', JSON, 400, "malformed JSON"),
        (b"{'texts': ['a']}", JSON, 400, "malformed JSON"),
        (b'{"texts": ["\\ud800"]}', JSON, 422, "texts.0: Input should be a valid string"),
        (b'{"texts": ["\xff\xfe"]}', JSON, 400, "the body is not UTF-8: byte 0xff at offset 12"),
        (
            gzip.compress(b'{"texts": ["a"]}', mtime=0),
            {**JSON, "content-encoding": "gzip"},
            415,
            "compressed (Content-Encoding: gzip)",
        ),
        (gzip.compress(b'{"texts": ["a"]}', mtime=0), JSON, 400, "the body looks gzip-compressed"),
        (b'{"texts": ["a"], "texts": ["b", "c"]}', JSON, 400, 'the key "texts" is given twice'),
        (b'{"texts": [{"a": 1, "a": 2}]}', JSON, 400, 'the key "a" is given twice'),
        ('{"texts": ["a"]}'.encode("utf-16"), JSON, 400, "the body is not UTF-8"),
        ('{"texts": ["a"]}'.encode("utf-16-be"), JSON, 400, "the body is not UTF-8"),
        ('{"texts": ["北京"]}'.encode("utf-32"), JSON, 400, "the body is not UTF-8"),
        (b'{"texts": ["a"]}', {"content-type": "text/plain"}, 415, "Content-Type: application/json"),
        (b'{"texts": ["a"]}', {"content-type": "application/x-www-form-urlencoded"}, 415, "application/json"),
        (b'{"texts": ["' + b"a" * 5000 + b'"]}', JSON, 413, "larger than 4096 bytes"),
    ],
    ids=lambda value: None if isinstance(value, dict | list | bytes) else str(value)[:30],
)
def test_bad_requests_get_a_4xx_with_one_clear_message(client, body, headers, status, message):
    if isinstance(body, bytes):
        response = client.post("/predict", content=body, headers=headers)
    else:
        response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and message in detail


def test_a_chunked_body_over_the_limit_is_refused_as_it_streams(client):
    chunks = iter([b'{"texts": ["', b"a" * 3000, b"a" * 3000, b'"]}'])  # no Content-Length: chunked
    response = client.post("/predict", content=chunks, headers=JSON)
    assert response.status_code == 413
    assert response.json() == {"detail": "request body larger than 4096 bytes"}


def test_health_info_and_errors_outside_predict(client, tiny_checkpoint):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["batches"] >= 1 and health["sentences"] >= health["batches"]
    info = client.get("/info").json()
    # The folder's name only: a client has no business knowing where the server keeps its files.
    assert info["model"] == tiny_checkpoint.name and info["version"] == mtst.__version__
    assert str(tiny_checkpoint.parent) not in json.dumps(info)
    tags = ["O", "B-city", "I-city", "B-artist", "I-artist"]
    assert info["tasks"] == [
        {"name": "intent", "type": "sentence", "field": "label", "labels": ["GetWeather", "PlayMusic"]},
        {"name": "slots", "type": "token", "field": "tags", "labels": tags},
    ]
    assert info["encoder"]["model_type"] == "bert" and info["encoder"]["max_length"] == 64
    limits = {"max_texts": 4, "max_chars": 200, "max_body_bytes": 4096, "max_subtokens": 16384}
    assert info["limits"] == {**limits, "max_queued_requests": 64}
    assert client.get("/nowhere").json() == {"detail": "Not Found"}
    assert client.get("/predict").status_code == 405


def test_openapi_schema_states_the_limits(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/predict", "/health", "/info", "/model/parse"}
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    request = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    texts = request["properties"]["texts"]
    assert (texts["minItems"], texts["maxItems"]) == (1, 4)
    assert (texts["items"]["minLength"], texts["items"]["maxLength"]) == (1, 200)
    assert {"400", "413", "415", "422"} <= set(schema["paths"]["/predict"]["post"]["responses"])


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ('<textarea id="text"', '<button id="predict"', 'id="error"', "/static/app.js"):
        assert needle in page.text
    assert 'fetch("/predict"' in client.get("/static/app.js").text
    assert client.get("/static/app.css").status_code == 200


class GatedRecorder:
    """A predict function that records what it was asked and blocks in every call until `release` is set."""

    def __init__(self):
        self.calls, self.started, self.release = [], threading.Event(), threading.Event()

    def __call__(self, texts):
        self.calls.append(list(texts))
        self.started.set()
        if not self.release.wait(timeout=30):
            raise TimeoutError("the test never released the model")
        return [{"text": text} for text in texts]


async def until(condition, timeout: float = 10.0) -> None:
    """Polls `condition` on the event loop until it holds; fails the test after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


def wait_until(condition, timeout: float = 10.0) -> None:
    """`until` for a thread that is not running an event loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def test_health_answers_while_a_slow_prediction_runs(tiny_checkpoint):
    model = GatedRecorder()
    app = create_app(model, describe_checkpoint(tiny_checkpoint), LIMITS)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                slow = asyncio.ensure_future(http.post("/predict", json={"texts": ["slow"]}))
                await until(model.started.is_set)
                health = await asyncio.wait_for(http.get("/health"), timeout=10)  # the model is still blocked
                model.release.set()
                assert (await slow).json() == [{"text": "slow"}]
                return health

    assert asyncio.run(scenario()).status_code == 200


def test_response_is_utf8_json(client):
    response = client.post("/predict", json={"texts": ["São Paulo 🎵"]})
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content.decode("utf-8"))[0]["text"] == "São Paulo 🎵"


class Recorder:
    """A predict function that records what it was asked."""

    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return [{"text": text} for text in texts]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _raw_post(port: int, texts) -> bytes:
    body = json.dumps({"texts": texts}).encode()
    head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def test_under_uvicorn_a_disconnected_clients_work_is_dropped_before_it_is_batched(tiny_checkpoint, caplog):
    import socket

    import uvicorn

    model = GatedRecorder()
    app = create_app(model, describe_checkpoint(tiny_checkpoint), ServeConfig(max_wait_ms=1))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    gone = lambda: caplog.text.count('"POST /predict" 499')  # noqa: E731
    with caplog.at_level(logging.INFO):
        thread.start()
        try:
            wait_until(lambda: server.started)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                busy = threading.Thread(target=http.post, args=("/predict",), kwargs={"json": {"texts": ["busy"]}})
                busy.start()
                wait_until(model.started.is_set)  # "busy" is being computed
                for index in range(3):  # three clients send their request and give up
                    with socket.create_connection(("127.0.0.1", port)) as client:
                        client.sendall(_raw_post(port, [f"gone{index}"]))
                        wait_until(lambda: http.get("/health").json()["queued"] == 1)
                    wait_until(lambda index=index: gone() == index + 1)  # noticed, and taken out of the queue
                model.release.set()
                fresh = http.post("/predict", json={"texts": ["fresh"]})
                busy.join()
                health = http.get("/health").json()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert fresh.json() == [{"text": "fresh"}]
    assert model.calls == [["busy"], ["fresh"]], model.calls
    assert health["dropped"] == 3 and health["queued"] == 0
    assert "Traceback" not in caplog.text and "Exception in ASGI application" not in caplog.text


def test_a_full_queue_answers_503_with_retry_after(tiny_checkpoint):
    model = GatedRecorder()
    config = ServeConfig(max_wait_ms=0, max_batch_sentences=1, max_queued_requests=1)
    app = create_app(model, describe_checkpoint(tiny_checkpoint), config)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                busy = asyncio.ensure_future(http.post("/predict", json={"texts": ["busy"]}))
                await until(model.started.is_set)
                queued = asyncio.ensure_future(http.post("/predict", json={"texts": ["queued"]}))
                while (await http.get("/health")).json()["queued"] != 1:
                    await asyncio.sleep(0.005)
                refused = await http.post("/predict", json={"texts": ["refused"]})
                model.release.set()
                return refused, await busy, await queued

    refused, busy, queued = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "server busy: 1 requests are already waiting" in refused.json()["detail"]
    assert busy.status_code == queued.status_code == 200 and ["refused"] not in model.calls


def test_an_abandoned_request_answers_499_and_logs_it_without_a_traceback(tiny_checkpoint, caplog):
    model = GatedRecorder()
    app = create_app(model, describe_checkpoint(tiny_checkpoint), ServeConfig(max_wait_ms=0))
    body = json.dumps({"texts": ["left"]}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "server": ("t", 80),
        "client": ("c", 1),
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if messages:
            return messages.pop()
        await until(model.started.is_set)  # the request is in a running batch when its client leaves
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def scenario():
        async with app.router.lifespan_context(app):
            await app(scope, receive, send)
            model.release.set()

    with caplog.at_level(logging.INFO, "mtst.serve.app"):
        asyncio.run(scenario())
    assert sent[0]["status"] == 499 and '"POST /predict" 499: the client left' in caplog.text


def test_a_burst_of_oversized_requests_neither_delays_a_short_one_nor_escapes_the_queue_limit(tiny_checkpoint):
    counted, release = [], threading.Event()

    def slow_count(texts):  # counting a big request takes long: here, until released
        counted.append(len(texts))
        release.wait(timeout=30)
        return 10**6

    config = ServeConfig(max_wait_ms=0, max_queued_requests=3, max_chars=10_000, max_body_bytes=10**6)
    app = create_app(Recorder(), describe_checkpoint(tiny_checkpoint), config, slow_count)
    big = {"texts": ["word " * 2000] * 4}

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                oversized = [asyncio.ensure_future(http.post("/predict", json=big)) for _ in range(3)]
                while (await http.get("/health")).json()["queued"] != 3:  # one counted, two waiting to be
                    await asyncio.sleep(0.005)
                assert counted == [4]
                short = await asyncio.wait_for(http.post("/predict", json={"texts": ["hi"]}), timeout=10)
                one_more = await asyncio.wait_for(http.post("/predict", json=big), timeout=10)
                release.set()
                return short, one_more, await asyncio.gather(*oversized)

    short, one_more, oversized = asyncio.run(scenario())
    assert short.status_code == 503  # the queue limit covers requests being counted
    assert one_more.status_code == 503 and "3 requests are already waiting" in one_more.json()["detail"]
    assert [response.status_code for response in oversized] == [413] * 3


def test_a_short_request_is_not_counted_and_passes_while_big_ones_are(tiny_checkpoint):
    counted, release = [], threading.Event()

    def slow_count(texts):
        counted.append(len(texts))
        release.wait(timeout=30)
        return 10**6

    config = ServeConfig(max_wait_ms=0, max_queued_requests=64, max_chars=10_000, max_body_bytes=10**6)
    app = create_app(Recorder(), describe_checkpoint(tiny_checkpoint), config, slow_count)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                big = [asyncio.ensure_future(http.post("/predict", json={"texts": ["w " * 5000]})) for _ in range(8)]
                await until(lambda: len(counted) >= 1)
                short = await asyncio.wait_for(http.post("/predict", json={"texts": ["hi"]}), timeout=10)
                release.set()
                return short, await asyncio.gather(*big)

    short, big = asyncio.run(scenario())
    assert short.status_code == 200 and short.json() == [{"text": "hi"}]
    assert [response.status_code for response in big] == [413] * 8


def test_a_request_over_the_subtoken_budget_is_refused_before_any_work(predictor, tiny_checkpoint):
    recorder = Recorder()
    config = ServeConfig(max_subtokens=50, max_wait_ms=1)
    app = create_app(recorder, describe_checkpoint(tiny_checkpoint), config, predictor.count_subtokens)
    with TestClient(app) as http:
        assert http.post("/predict", json={"texts": ["paris " * 25, "berlin " * 25]}).status_code == 200
        refused = http.post("/predict", json={"texts": ["paris " * 25, "berlin " * 26]})
    assert refused.status_code == 413
    assert refused.json()["detail"] == "the texts hold 51 sub-tokens; at most 50 per request"
    assert len(recorder.calls) == 1


@pytest.mark.parametrize("value", ["inf", "nan", "60001"])
def test_max_wait_ms_must_be_finite_and_bounded(value, tmp_path):
    from pydantic import ValidationError
    from typer.testing import CliRunner

    from mtst.cli import app

    with pytest.raises(ValidationError):
        ServeConfig(max_wait_ms=float(value))
    result = CliRunner().invoke(app, ["serve", str(tmp_path), "--max-wait-ms", value])
    assert result.exit_code == 2 and result.stderr.startswith("error: --max-wait-ms: "), result.output


def test_the_readme_names_every_info_key(client):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| `GET /info` |")]
    described = re.sub(r"\([^)]*\)", "", row.split("|")[2])  # the keys, without what the brackets say of them
    assert set(re.findall(r"`(\w+)`", described)) == set(client.get("/info").json())
