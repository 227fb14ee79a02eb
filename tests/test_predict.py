from mtst.data.example import Example
from mtst.inference.predictor import Predictor
from mtst.inference.runner import run_model
from mtst.tasks.token import TokenPrediction, entities, tag_spans


def test_tag_spans_bio_and_stray_inside_tags():
    assert tag_spans(["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG"]) == [
        (0, 1, "PER"),
        (3, 4, "LOC"),
        (5, 5, "LOC"),
        (6, 6, "ORG"),
    ]


def test_entities_are_character_spans_of_the_original_text():
    text = "  Tesla's CEO   Elon Musk visited Wall Street!"
    example = Example.from_text(text)
    tags = ["O"] * len(example.words)
    words = list(example.words)
    tags[words.index("Tesla")] = "B-ORG"
    tags[words.index("Elon")], tags[words.index("Musk")] = "B-PER", "I-PER"
    tags[words.index("Wall")], tags[words.index("Street")] = "B-LOC", "I-LOC"
    found = entities(example, TokenPrediction(tags, [0.5] * len(tags)))
    assert [(e["text"], e["label"]) for e in found] == [("Tesla", "ORG"), ("Elon Musk", "PER"), ("Wall Street", "LOC")]
    for entity in found:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert entity["score"] == 0.5


def test_predictor_output_shape_and_offsets(tiny_model):
    texts = ["Play Queen’s “Bohemian Rhapsody” in São Paulo 🎵", "", "weather   in paris"]
    results = Predictor(tiny_model).predict(texts)
    assert [r["text"] for r in results] == texts
    for result in results:
        assert result["label"] in tiny_model.tasks["intent"].labels
        assert 0 <= result["score"] <= 1
        for entity in result["entities"]:
            assert result["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["label"] and 0 <= entity["score"] <= 1


def test_a_word_without_subtokens_gets_o_and_later_words_keep_their_own_scores(tiny_model):
    # A variation selector with no character before it to combine with is a word of its own, with no sub-token
    # (after a character, as in "❤️", it stays in that character's word).
    example = Example.from_text("I ❤ \ufe0f Paris")
    assert example.words == ("I", "❤", "\ufe0f", "Paris")
    assert Example.from_text("I ❤️ Paris").words == ("I", "❤\ufe0f", "Paris")
    [prediction], _ = run_model(tiny_model, [example])
    slots = prediction["slots"]
    assert len(slots.tags) == 4
    assert (slots.tags[2], slots.scores[2]) == ("O", 0.0)
    assert all(score > 0 for i, score in enumerate(slots.scores) if i != 2)
