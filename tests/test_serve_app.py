import asyncio
import json
import re
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
        (b'{"texts": ["\xff\xfe"]}', JSON, 400, "error parsing the body"),
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


def test_health_answers_while_a_slow_prediction_runs(tiny_checkpoint):
    def slow_predict(texts):
        time.sleep(0.5)
        return [{"text": text} for text in texts]

    app = create_app(slow_predict, describe_checkpoint(tiny_checkpoint), LIMITS)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                slow = asyncio.ensure_future(http.post("/predict", json={"texts": ["slow"]}))
                await asyncio.sleep(0.05)
                started = time.perf_counter()
                health = await http.get("/health")
                health_seconds = time.perf_counter() - started
                assert (await slow).json() == [{"text": "slow"}]
                return health, health_seconds

    health, seconds = asyncio.run(scenario())
    assert health.status_code == 200 and seconds < 0.3


def test_response_is_utf8_json(client):
    response = client.post("/predict", json={"texts": ["São Paulo 🎵"]})
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content.decode("utf-8"))[0]["text"] == "São Paulo 🎵"


class SlowRecorder:
    """A predict function that takes `seconds` per call and records what it was asked."""

    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, []

    def __call__(self, texts):
        self.calls.append(list(texts))
        time.sleep(self.seconds)
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


def test_under_uvicorn_a_disconnected_clients_work_is_dropped_before_it_is_batched(tiny_checkpoint):
    import socket
    import threading

    import uvicorn

    recorder = SlowRecorder(0.4)
    app = create_app(recorder, describe_checkpoint(tiny_checkpoint), ServeConfig(max_wait_ms=1))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            busy = threading.Thread(target=http.post, args=("/predict",), kwargs={"json": {"texts": ["busy"]}})
            busy.start()
            time.sleep(0.1)  # "busy" is being computed
            for index in range(3):  # three clients send their request and give up
                with socket.create_connection(("127.0.0.1", port)) as client:
                    client.sendall(_raw_post(port, [f"gone{index}"]))
                    time.sleep(0.02)
            started = time.perf_counter()
            fresh = http.post("/predict", json={"texts": ["fresh"]})
            waited = time.perf_counter() - started
            busy.join()
            health = http.get("/health").json()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert fresh.json() == [{"text": "fresh"}]
    assert recorder.calls == [["busy"], ["fresh"]], recorder.calls
    assert health["dropped"] == 3 and waited < 0.4 * 2 + 0.3  # the rest of "busy", then its own call


def test_a_full_queue_answers_503_with_retry_after(tiny_checkpoint):
    recorder = SlowRecorder(0.3)
    config = ServeConfig(max_wait_ms=0, max_batch_sentences=1, max_queued_requests=1)
    app = create_app(recorder, describe_checkpoint(tiny_checkpoint), config)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                busy = asyncio.ensure_future(http.post("/predict", json={"texts": ["busy"]}))
                await asyncio.sleep(0.05)
                queued = asyncio.ensure_future(http.post("/predict", json={"texts": ["queued"]}))
                await asyncio.sleep(0.05)
                refused = await http.post("/predict", json={"texts": ["refused"]})
                return refused, await busy, await queued

    refused, busy, queued = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "server busy: 1 requests are already waiting" in refused.json()["detail"]
    assert busy.status_code == queued.status_code == 200 and ["refused"] not in recorder.calls


def test_a_request_over_the_subtoken_budget_is_refused_before_any_work(predictor, tiny_checkpoint):
    recorder = SlowRecorder(0)
    config = ServeConfig(max_subtokens=50, max_wait_ms=1)
    app = create_app(recorder, describe_checkpoint(tiny_checkpoint), config, predictor.count_subtokens)
    with TestClient(app) as http:
        assert http.post("/predict", json={"texts": ["paris " * 25, "berlin " * 25]}).status_code == 200
        refused = http.post("/predict", json={"texts": ["paris " * 25, "berlin " * 26]})
    assert refused.status_code == 413
    assert refused.json()["detail"] == "the texts hold 51 sub-tokens; at most 50 per request"
    assert len(recorder.calls) == 1


def test_the_readme_names_every_info_key(client):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| `GET /info` |")]
    described = re.sub(r"\([^)]*\)", "", row.split("|")[2])  # the keys, without what the brackets say of them
    assert set(re.findall(r"`(\w+)`", described)) == set(client.get("/info").json())
