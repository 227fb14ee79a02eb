"""Rasa NLU YAML: the defects of issue 24 (repeated keys, multi-entity markup, unbalanced markup, entity type
names, folded blocks), each one line naming the file and line, or a counted warning; never literal markup."""

import logging

import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.data.formats.rasa import read_rasa
from mtst.errors import DataError

runner = CliRunner()


def written(tmp_path, body: str):
    path = tmp_path / "nlu.yml"
    path.write_text(body, encoding="utf-8")
    return path


def tags_of(example) -> list[tuple[str, str]]:
    return [(word, tag) for word, tag in zip(example.words, example.annotations["tags"], strict=True) if tag != "O"]


@pytest.mark.parametrize(
    "body, line, key",
    [
        ("nlu:\n- intent: a\n  examples: |\n    - hi\n  examples: |\n    - hello\n", 5, "examples"),
        ("nlu:\n- intent: a\n  examples: |\n    - hi\nnlu:\n- intent: b\n  examples: |\n    - yo\n", 5, "nlu"),
        ("nlu:\n- intent: a\n  intent: b\n  examples: |\n    - hi\n", 3, "intent"),
    ],
)
def test_a_key_given_twice_is_refused_naming_its_line(tmp_path, body, line, key):
    path = written(tmp_path, body)
    with pytest.raises(DataError, match=f"`{key}` given twice") as error:
        read_rasa(path)
    assert error.value.line == line
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 2 and f"nlu.yml:{line}: `{key}` given twice" in result.output


def test_a_yaml_alias_bomb_is_still_read_without_blowing_up(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(20)]
    path = written(tmp_path, "\n".join(lines) + "\nnlu:\n- intent: a\n  examples: |\n    - hi\n")
    assert [e.text for e in read_rasa(path)] == ["hi"]


def test_several_types_on_one_span_keep_the_first_with_a_counted_warning(tmp_path, caplog):
    body = 'nlu:\n- intent: a\n  examples: |\n    - fly to [Paris][{"entity": "city"}, {"entity": "dest"}] now\n'
    with caplog.at_level(logging.WARNING, "mtst.data"):
        (example,) = read_rasa(written(tmp_path, body))
    assert example.text == "fly to Paris now" and tags_of(example) == [("Paris", "B-city")]
    assert "nlu.yml:4: 1 entity spans with several types; the first type kept" in caplog.text
    with pytest.raises(DataError, match="nlu.yml:4: .*several types"):
        read_rasa(written(tmp_path, body), strict=True)


def test_the_list_form_with_one_type_and_a_role(tmp_path):
    body = 'nlu:\n- intent: a\n  examples: |\n    - to [Oslo][{"entity": "city", "role": "to"}]\n'
    (example,) = read_rasa(written(tmp_path, body))
    assert tags_of(example) == [("Oslo", "B-city.to")]


@pytest.mark.parametrize("markup", ['[Paris][{"entity": "city"}', "[Paris][]", '[Paris][{"role": "x"}]'])
def test_a_broken_list_of_types_is_refused(tmp_path, markup):
    with pytest.raises(DataError, match="nlu.yml:4: "):
        read_rasa(written(tmp_path, f"nlu:\n- intent: a\n  examples: |\n    - fly to {markup} now\n"))


@pytest.mark.parametrize("annotated", ["[New York] (city)", "[New York(city)", '[New York] {"entity": "city"}'])
def test_unbalanced_markup_is_refused(tmp_path, annotated):
    with pytest.raises(DataError, match="nlu.yml:4: malformed entity annotation"):
        read_rasa(written(tmp_path, f"nlu:\n- intent: a\n  examples: |\n    - to {annotated} now\n"))


def test_a_lone_bracket_is_literal_text_with_a_counted_warning(tmp_path, caplog):
    body = "nlu:\n- intent: a\n  examples: |\n    - press [New York] now\n    - press ] now\n"
    with caplog.at_level(logging.WARNING, "mtst.data"):
        examples = read_rasa(written(tmp_path, body))
    assert examples[0].text == "press [New York] now"
    assert "nlu.yml:4: 2 examples hold `[` or `]` outside entity markup" in caplog.text
    with pytest.raises(DataError, match="nlu.yml:4: "):
        read_rasa(written(tmp_path, body), strict=True)


@pytest.mark.parametrize(
    "markup, problem",
    [
        ("[Paris](my city)", "'my city'.*whitespace"),
        ("[Paris](B-city)", "'B-city'.*BIO prefix"),
        ('[Paris]{"entity": "city.from"}', "'city.from'.*`.`"),
        ('[Paris]{"entity": "city", "role": "fr om"}', "'fr om'.*whitespace"),
        ("[Paris](O)", "'O'"),
    ],
)
def test_an_entity_type_mtst_cannot_tag_is_refused(tmp_path, markup, problem):
    with pytest.raises(DataError, match=f"nlu.yml:4: .*{problem}"):
        read_rasa(written(tmp_path, f"nlu:\n- intent: a\n  examples: |\n    - fly to {markup} now\n"))


def test_a_folded_block_is_refused_instead_of_merging_the_examples(tmp_path):
    body = "nlu:\n- intent: a\n  examples: >\n    - hi\n    - hello\n"
    with pytest.raises(DataError, match=r"nlu.yml:3: .*examples: >.*examples: \|"):
        read_rasa(written(tmp_path, body))
