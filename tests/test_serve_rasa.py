"""`POST /model/parse`: Rasa's NLU parse format, field by field, with Rasa's token auth.

The format checked is the one Rasa documents for `/model/parse` and its NLU-only server (`endpoints.yml`
`nlu: url:`): `text`; `intent` {name, confidence}; `intent_ranking` [{name, confidence}], most confident first;
`entities` [{entity, start, end, value, confidence_entity, extractor}] plus `role` / `confidence_role` for an
entity with a role. Rasa's client (`RasaNLUHttpInterpreter`) posts {"text", "message_id", "token"}.
"""

import pytest
from fastapi.testclient import TestClient

from mtst.inference.predictor import Predictor
from mtst.integrations.rasa import parse_result
from mtst.serve.app import create_app
from mtst.serve.batching import QueueFull
from mtst.serve.config import ServeConfig
from mtst.serve.loading import describe_checkpoint

INTENT_KEYS = {"name", "confidence"}
ENTITY_KEYS = {"entity", "start", "end", "value", "confidence_entity", "extractor"}
CANNED = {
    "text": "fly from Boston to Denver",
    "label": "atis_flight",
    "score": 0.91,
    "ranking": [{"label": "atis_flight", "score": 0.91}, {"label": "atis_airfare", "score": 0.06}],
    "entities": [
        {"text": "Boston", "label": "city.from", "start": 9, "end": 15, "score": 0.97},
        {"text": "Denver", "label": "city.to", "start": 19, "end": 25, "score": 0.88},
    ],
}


def canned_predict(texts):
    return [{**CANNED, "text": text} for text in texts]


def client_for(predict, info=None, **settings):
    return TestClient(create_app(predict, info or {"version": "test"}, ServeConfig(max_wait_ms=1, **settings)))


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu", ranking=10)


def assert_rasa_format(parsed: dict, text: str) -> None:
    assert set(parsed) == {"text", "intent", "intent_ranking", "entities"}
    assert parsed["text"] == text
    assert set(parsed["intent"]) == INTENT_KEYS
    assert isinstance(parsed["intent"]["name"], str) and 0 <= parsed["intent"]["confidence"] <= 1
    ranking = parsed["intent_ranking"]
    assert 1 <= len(ranking) <= 10 and all(set(entry) == INTENT_KEYS for entry in ranking)
    assert ranking[0] == parsed["intent"]
    assert [entry["confidence"] for entry in ranking] == sorted((e["confidence"] for e in ranking), reverse=True)
    for entity in parsed["entities"]:
        assert ENTITY_KEYS <= set(entity) <= ENTITY_KEYS | {"role", "confidence_role"}
        assert isinstance(entity["start"], int) and isinstance(entity["end"], int)
        assert text[entity["start"] : entity["end"]] == entity["value"]
        assert 0 <= entity["confidence_entity"] <= 1 and entity["extractor"] == "mtst"


def test_a_role_tag_goes_back_as_entity_and_role():
    parsed = parse_result(CANNED)
    assert_rasa_format(parsed, CANNED["text"])
    assert parsed["intent"] == {"name": "atis_flight", "confidence": 0.91}
    assert parsed["intent_ranking"] == [
        {"name": "atis_flight", "confidence": 0.91},
        {"name": "atis_airfare", "confidence": 0.06},
    ]
    assert parsed["entities"][0] == {
        "entity": "city",
        "start": 9,
        "end": 15,
        "value": "Boston",
        "confidence_entity": 0.97,
        "extractor": "mtst",
        "role": "from",
        "confidence_role": 0.97,
    }
    assert parsed["entities"][1]["role"] == "to"


def test_an_entity_without_a_role_has_no_role_key():
    entity = {"text": "Paris", "label": "LOC", "start": 0, "end": 5, "score": 0.5}
    [parsed] = parse_result({"text": "Paris", "label": "x", "score": 1.0, "entities": [entity]})["entities"]
    assert "role" not in parsed and parsed["entity"] == "LOC"


def test_a_fallback_label_outside_the_ranking_leads_it():
    prediction = {**CANNED, "label": "nlu_fallback", "score": 0.4}
    ranking = parse_result(prediction)["intent_ranking"]
    assert ranking[0] == {"name": "nlu_fallback", "confidence": 0.4} and ranking[1]["name"] == "atis_flight"


def test_a_model_without_a_sentence_task_gives_rasas_no_intent():
    parsed = parse_result({"text": "x", "entities": []})
    assert parsed["intent"] == {"name": None, "confidence": 0.0} and parsed["intent_ranking"] == []


def test_the_endpoint_answers_as_rasa_does_with_the_predictors_labels_spans_and_scores(predictor, tiny_checkpoint):
    text = "what is the weather in paris"
    with client_for(predictor.predict, describe_checkpoint(tiny_checkpoint)) as client:
        # The body Rasa's RasaNLUHttpInterpreter posts: message_id and a null token ride along.
        response = client.post("/model/parse", json={"text": text, "message_id": "abc", "token": None})
    assert response.status_code == 200, response.text
    parsed = response.json()
    assert_rasa_format(parsed, text)
    [expected] = predictor.predict([text])
    assert parsed["intent"] == {"name": expected["label"], "confidence": expected["score"]}
    assert {entry["name"] for entry in parsed["intent_ranking"]} == {"GetWeather", "PlayMusic"}
    assert [(e["entity"], e["start"], e["end"], e["confidence_entity"]) for e in parsed["entities"]] == [
        (e["label"], e["start"], e["end"], e["score"]) for e in expected["entities"]
    ]


def test_an_empty_text_is_parsed_as_rasa_parses_it(predictor):
    with client_for(predictor.predict) as client:
        response = client.post("/model/parse", json={"text": ""})
    assert response.status_code == 200 and response.json()["entities"] == []


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        ("", {}, 401),
        ("?token=wrong", {}, 401),
        ("?token=s3cret", {}, 200),
        ("", {"token": "s3cret"}, 200),  # where Rasa's own client puts it
        ("", {"token": "wrong"}, 401),
    ],
)
def test_a_rasa_token_is_required_when_set(query, body, status):
    with client_for(canned_predict, rasa_token="s3cret") as client:
        response = client.post(f"/model/parse{query}", json={"text": "fly to Denver", **body})
    assert response.status_code == status
    if status == 401:
        assert "token" in response.json()["detail"]


def test_without_a_token_set_any_token_is_accepted():
    with client_for(canned_predict) as client:
        assert client.post("/model/parse?token=anything", json={"text": "hi"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2]", 422, "the body must be a JSON object"),
        (b'{"message_id": "a"}', 422, "text: Field required"),
        (b'{"text": 3}', 422, "text: Input should be a valid string"),
        (b'{"text": "' + b"x" * 201 + b'"}', 422, "text: 201 characters; at most 200"),
    ],
)
def test_a_bad_body_gets_one_line_naming_the_field(body, status, message):
    with client_for(canned_predict, max_chars=200) as client:
        response = client.post("/model/parse", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status and response.json()["detail"].startswith(message)


def test_the_sub_token_limit_applies_as_for_predict(predictor):
    config = ServeConfig(max_subtokens=3, max_wait_ms=1)
    app = create_app(predictor.predict, {"version": "test"}, config, predictor.count_subtokens)
    with TestClient(app) as client:
        response = client.post("/model/parse", json={"text": "what is the weather in paris"})
    assert response.status_code == 413 and "sub-tokens" in response.json()["detail"]


def test_the_served_predict_lists_the_intent_ranking(predictor):
    with client_for(predictor.predict) as client:
        [result] = client.post("/predict", json={"texts": ["play queen"]}).json()
    assert [item["label"] for item in result["ranking"]][0] == result["label"]
    assert sum(item["score"] for item in result["ranking"]) == pytest.approx(1, abs=1e-3)


def test_the_openapi_schema_documents_the_parse_endpoint(predictor):
    with client_for(predictor.predict) as client:
        schema = client.get("/openapi.json").json()
    assert "/model/parse" in schema["paths"]
    assert set(schema["components"]["schemas"]["RasaEntity"]["required"]) == ENTITY_KEYS


def test_mtst_serve_takes_the_rasa_token(tiny_checkpoint, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from mtst.cli import app

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda server, **options: started.update(app=server))
    result = CliRunner().invoke(app, ["serve", str(tiny_checkpoint), "--rasa-token", "s3cret"])
    assert result.exit_code == 0, result.output
    with TestClient(started["app"]) as client:
        assert client.post("/model/parse", json={"text": "hi"}).status_code == 401
        assert client.post("/model/parse?token=s3cret", json={"text": "hi"}).status_code == 200
        assert "rasa_token" not in str(client.get("/info").json())  # the secret is never shown


def test_the_readme_endpoints_yml_is_what_rasa_needs_to_reach_this_server():
    """Rasa posts {"token", "text", "message_id"} to `{nlu.url}/model/parse`: the README's endpoints.yml, so."""
    from pathlib import Path

    import yaml

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("### As a Rasa assistant's NLU", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    nlu = yaml.safe_load(block)["nlu"]
    assert nlu["url"] == "http://127.0.0.1:8000" and "--rasa-token " + nlu["token"] in readme
    with client_for(canned_predict, rasa_token=nlu["token"]) as client:
        body = {"token": nlu["token"], "text": "fly from Boston to Denver", "message_id": "m1"}
        response = client.post("/model/parse", json=body)
    assert response.status_code == 200 and response.json()["entities"][0]["role"] == "from"


@pytest.mark.parametrize(("refusal", "status"), [("too much work", 413), (QueueFull("3 waiting"), 503), (None, 200)])
def test_the_admission_check_given_decides_before_the_model(refusal, status):
    """The server's own admission (queue room, sub-token budget) plugs in as `over_budget`."""
    from fastapi import FastAPI

    from mtst.serve.batching import MicroBatcher
    from mtst.serve.rasa import rasa_router

    async def over_budget(texts):
        if isinstance(refusal, Exception):
            raise refusal
        return refusal

    batcher = MicroBatcher(canned_predict, 8, 1)
    app = FastAPI()
    app.include_router(rasa_router(batcher, ServeConfig(), over_budget))
    app.router.on_startup.append(batcher.start)
    with TestClient(app) as client:
        response = client.post("/model/parse", json={"text": "fly to Denver"})
    assert response.status_code == status
    if status == 503:
        assert response.headers["retry-after"] == "1" and response.json()["detail"] == "server busy: 3 waiting"
