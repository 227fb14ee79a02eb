"""The spaCy component: `nlp.add_pipe("mtst", config={"checkpoint": PATH})` gives what `mtst predict` gives."""

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

spacy = pytest.importorskip("spacy", reason="the spaCy component needs spaCy (pip install 'mtst[spacy]')")

from spacy import displacy  # noqa: E402

from mtst.errors import ConfigError, MtstError  # noqa: E402
from mtst.inference.predictor import Predictor  # noqa: E402
from mtst.integrations.rasa import parse_result  # noqa: E402
from mtst.integrations.spacy import ALL_LABELS, MtstComponent, make_mtst  # noqa: E402
from mtst.model.multitask import MultiTaskModel  # noqa: E402
from mtst.tasks import make_task  # noqa: E402

TEXTS = ["what is the weather in paris", "play music by queen", "will it rain in berlin tomorrow"]


@pytest.fixture(scope="module")
def nlp(tiny_checkpoint):
    pipeline = spacy.blank("en")
    pipeline.add_pipe("mtst", config={"checkpoint": str(tiny_checkpoint)})
    return pipeline


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu", ranking=ALL_LABELS)


def spans_of(doc, spans) -> list[tuple]:
    return [(span.label_, span.start_char, span.end_char, span._.mtst_score) for span in spans]


def test_a_doc_holds_the_predictions_labels_spans_and_scores(nlp, predictor):
    for doc, expected in zip(nlp.pipe(TEXTS), predictor.predict(TEXTS), strict=True):
        assert doc._.mtst == expected
        assert doc.cats == {item["label"]: item["score"] for item in expected["ranking"]}
        assert max(doc.cats, key=doc.cats.get) == expected["label"]
        wanted = [(e["label"], e["start"], e["end"], e["score"]) for e in expected["entities"]]
        assert spans_of(doc, doc.ents) == wanted  # these texts' words are spaCy's tokens: no expansion
        assert spans_of(doc, doc.spans["slots"]) == wanted
        assert doc.spans["slots"].attrs["scores"] == [e["score"] for e in expected["entities"]]


def test_the_doc_and_the_rasa_parse_agree(nlp, predictor):
    doc = nlp(TEXTS[0])
    parsed = parse_result(predictor.predict([TEXTS[0]])[0])
    assert parsed["intent"]["name"] == max(doc.cats, key=doc.cats.get)
    assert parsed["intent"]["confidence"] == doc.cats[parsed["intent"]["name"]]
    assert [(e["entity"], e["start"], e["end"], e["confidence_entity"]) for e in parsed["entities"]] == spans_of(
        doc, doc.ents
    )


def test_nlp_pipe_sends_the_texts_in_batches(tiny_checkpoint, predictor):
    component = make_mtst(spacy.blank("en"), "mtst", str(tiny_checkpoint), 2, "cpu", None, None, None, None)
    sizes, predict = [], component.predictor.predict
    component.predictor = SimpleNamespace(
        model=component.predictor.model, predict=lambda t: sizes.append(len(t)) or predict(t)
    )
    nlp = spacy.blank("en")
    docs = list(component.pipe(nlp.pipe(TEXTS * 2)))
    assert sizes == [2, 2, 2]
    assert [doc._.mtst for doc in docs] == predictor.predict(TEXTS * 2)


def canned_component(tasks, result: dict) -> MtstComponent:
    model = SimpleNamespace(tasks={task.name: task for task in tasks})
    return MtstComponent(SimpleNamespace(model=model, predict=lambda texts: [{**result, "text": t} for t in texts]))


SLOTS = make_task("slots", "token", "tags", ("O", "B-city.from", "B-city.to"))
NER = make_task("ner", "token", "tags", ("O", "B-LOC", "I-LOC"))
INTENT = make_task("intent", "sentence", "label", ("flight", "other"))


def test_a_span_ending_inside_a_token_is_expanded_to_whole_tokens():
    result = {"entities": [{"text": "Bost", "label": "city.from", "start": 9, "end": 13, "score": 0.8}]}
    doc = canned_component([SLOTS], result)(spacy.blank("en")("fly from Boston to Denver"))
    assert [(ent.text, ent.label_) for ent in doc.ents] == [("Boston", "city.from")]


def test_several_token_tasks_each_get_their_span_group_and_overlaps_stay_out_of_ents():
    result = {
        "entities": [
            {"text": "New", "label": "city.from", "start": 9, "end": 12, "score": 0.9},
            {"text": "w York", "label": "city.to", "start": 11, "end": 17, "score": 0.6},  # shares "New"
        ],
        "ner": [{"text": "New York", "label": "LOC", "start": 9, "end": 17, "score": 0.7}],
    }
    doc = canned_component([SLOTS, NER], result)(spacy.blank("en")("fly from New York"))
    assert [span.text for span in doc.spans["slots"]] == ["New", "New York"]
    assert [(span.text, span.label_) for span in doc.spans["ner"]] == [("New York", "LOC")]
    assert [ent.text for ent in doc.ents] == ["New York"]  # the longer of two overlapping spans


def test_a_fallback_intent_is_in_the_cats_with_the_score_the_prediction_gives():
    result = {
        "label": "nlu_fallback",
        "score": 0.55,
        "fallback_from": "flight",
        "ranking": [{"label": "flight", "score": 0.55}, {"label": "other", "score": 0.45}],
    }
    doc = canned_component([INTENT], result)(spacy.blank("en")("hm"))
    assert doc.cats == {"nlu_fallback": 0.55, "flight": 0.55, "other": 0.45}
    assert doc._.mtst["label"] == "nlu_fallback"


def test_the_checkpoints_thresholds_and_the_config_overrides_apply(tiny_checkpoint, tmp_path):
    copy = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, copy)
    model = MultiTaskModel.from_pretrained(copy)
    model.tasks["slots"] = model.tasks["slots"].with_thresholds({"entity_thresholds": {"city": 1.0, "artist": 1.0}})
    model.save_settings(copy)
    nlp = spacy.blank("en")
    nlp.add_pipe("mtst", config={"checkpoint": str(copy), "intent_threshold": 1.0})
    doc = nlp(TEXTS[0])
    assert doc.ents == () and doc._.mtst["label"] == "nlu_fallback" and "nlu_fallback" in doc.cats


def test_displacy_draws_the_entities_and_the_span_groups(nlp):
    doc = nlp(TEXTS[0])
    html = displacy.render(doc, style="ent")
    assert all(ent.label_ in html and ent.text in html for ent in doc.ents)
    drawn = displacy.render(doc, style="span", options={"spans_key": "slots"})
    assert all(span.label_ in drawn for span in doc.spans["slots"]) and doc.spans["slots"]


def test_a_missing_or_broken_checkpoint_is_one_line():
    with pytest.raises(ConfigError, match="needs a checkpoint"):
        spacy.blank("en").add_pipe("mtst")
    with pytest.raises(MtstError, match="not an mtst checkpoint"):
        spacy.blank("en").add_pipe("mtst", config={"checkpoint": "/nonexistent"})


def test_the_factory_is_declared_under_spacys_entry_point():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    section = re.search(r"\[project\.entry-points\.spacy_factories\]\n([^\[]*)", pyproject)
    assert section and 'mtst = "mtst.integrations.spacy:make_mtst"' in section.group(1)
    assert spacy.language.Language.has_factory("mtst")
    assert 'spacy = ["spacy>=3.7"]' in pyproject


@pytest.mark.filterwarnings("ignore:.*No entities to visualize")
def test_the_readme_recipe_runs_as_written(tiny_encoder_dir, tmp_path, monkeypatch):
    """The README's spaCy block, run on a random model with the demo's task names in the demo's folder."""
    from mtst.model.encoder import load_encoder
    from mtst.model.multitask import EncoderInfo

    tokenizer, encoder = load_encoder(str(tiny_encoder_dir), 64)
    tasks = [
        make_task("topic", "sentence", "label", ("travel", "tech")),
        make_task("entities", "token", "tags", ("O", "B-PER", "B-LOC")),
    ]
    MultiTaskModel(encoder, tokenizer, tasks, EncoderInfo(max_length=64)).save_pretrained(tmp_path / "runs/demo/best")
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("### In a spaCy pipeline\n\n```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102 - the project's own README
    assert set(namespace["doc"].cats) == {"travel", "tech"} and len(namespace["docs"]) == 2
    assert "<div" in namespace["html"]
