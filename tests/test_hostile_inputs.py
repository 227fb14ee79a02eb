"""Hostile input, generated: whatever a config, a request body or standard input holds, mtst answers with one
`error:` line and exit status 2 (CLI) or a 4xx/503 with a JSON detail (server) — never a traceback, never a 500,
never invalid JSON. Cases come from hypothesis; max_examples stay small so the file runs in seconds."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import unicodedata

import pytest
import yaml
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mtst.cli import app
from mtst.config import load_config
from mtst.data.example import split_words
from mtst.data.formats.label_studio import read_label_studio
from mtst.data.formats.rasa import read_rasa
from mtst.errors import ConfigError
from mtst.inference.predictor import Predictor
from mtst.serve.app import create_app
from mtst.serve.config import ServeConfig
from mtst.serve.loading import describe_checkpoint

runner = CliRunner()
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which Python writes but JSON does not have."""

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def assert_one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# -- configs -------------------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["full", "llrd:0.5", "temperature:0.001", "static", "token", "sentence", "a.b", ""]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
KEYS = {
    "encoder": ["name_or_path", "max_length"],
    "data": ["format", "dev_from_train", "label_names", "strict", "train"],
    "train": [
        "epochs",
        "batch_size",
        "encoder_lr",
        "head_lr",
        "weight_decay",
        "warmup_ratio",
        "max_grad_norm",
        "entity_sampler_weight",
        "patience",
        "seed",
        "max_train_examples",
        "checkpoint_every_steps",
    ],
    "strategy": ["name", "discriminative_encoder_lr", "gradual_epochs_per_block"],
    "loss": ["weighting", "weights"],
}
SECTIONS = st.dictionaries(
    st.sampled_from(sorted(KEYS)),
    st.none() | st.just("x") | st.dictionaries(st.sampled_from(sum(KEYS.values(), [])), VALUES, max_size=4),
    max_size=4,
)
TASKS = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["intent", "slots", "a.b", "", "x y", "intent"]),
            "type": st.sampled_from(["sentence", "token", "tree"]),
        },
        optional={
            "field": st.sampled_from(["label", "tags", ""]),
            "dropout": VALUES,
            "condition_on": st.sampled_from(["intent", "slots", "nope"]),
            "crf": VALUES,
        },
    ),
    max_size=3,
)


def _config_text(sections: dict, tasks: list | None, task_sampling) -> str:
    raw = dict(sections)
    if tasks is not None:
        raw["tasks"] = tasks
    if task_sampling is not None:
        raw["task_sampling"] = task_sampling
    return yaml.safe_dump(raw, allow_unicode=True)


@FAST
@given(sections=SECTIONS, tasks=st.none() | TASKS, task_sampling=st.none() | VALUES)
def test_any_config_is_valid_or_one_config_error(tmp_path, sections, tasks, task_sampling):
    path = tmp_path / "c.yaml"
    path.write_text(_config_text(sections, tasks, task_sampling), encoding="utf-8")
    try:
        config = load_config(path)
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    # What validates holds no NaN or infinity anywhere, and dumps as strict JSON.
    strict_json(json.dumps(config.model_dump(), allow_nan=False))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sections=SECTIONS, tasks=st.none() | TASKS)
def test_mtst_train_on_any_config_stops_with_one_error_line(tmp_path, sections, tasks):
    path = tmp_path / "c.yaml"
    path.write_text(_config_text(sections, tasks, None), encoding="utf-8")
    # No data where it points: a config that validates stops at the data, before any model loads.
    arguments = ["train", "-c", str(path), "--data-dir", str(tmp_path / "no-data"), "-o", str(tmp_path / "run")]
    assert_one_error_line(runner.invoke(app, arguments))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64))
def test_config_bytes_of_any_kind_are_valid_or_one_config_error(tmp_path, raw):
    path = tmp_path / "c.yaml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as error:
        assert "\n" not in str(error)


# -- requests ------------------------------------------------------------------------------------------------

LIMITS = ServeConfig(max_texts=4, max_chars=64, max_body_bytes=2048, max_subtokens=64, max_wait_ms=1)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
BODIES = st.one_of(
    st.fixed_dictionaries({"texts": st.lists(st.text(max_size=80), max_size=6)}).map(lambda b: json.dumps(b).encode()),
    st.fixed_dictionaries({"texts": JSON_VALUES}).map(lambda b: json.dumps(b).encode()),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.lists(st.text(max_size=30), min_size=1, max_size=3).map(
        lambda texts: json.dumps({"texts": texts}).encode(random_encoding(texts))
    ),
    st.binary(max_size=300),
)


def random_encoding(texts) -> str:
    return ["utf-8", "utf-16", "utf-32", "utf-16-le"][len("".join(texts)) % 4]


@pytest.fixture(scope="module")
def served(tiny_checkpoint):
    predictor = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    app_ = create_app(predictor.predict, describe_checkpoint(tiny_checkpoint), LIMITS, predictor.count_subtokens)
    with TestClient(app_, raise_server_exceptions=False) as client:
        yield client


@settings(max_examples=60, deadline=None)
@given(
    body=BODIES,
    content_type=st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-16", None]),
)
def test_any_request_body_gets_200_or_a_4xx_or_503_with_one_json_detail(served, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = served.post("/predict", content=body, headers=headers)
    assert response.status_code in (200, 400, 413, 415, 422, 503), (response.status_code, response.text)
    answer = strict_json(response.content.decode("utf-8"))
    if response.status_code == 200:
        assert isinstance(answer, list) and all(isinstance(result["text"], str) for result in answer)
    else:
        assert list(answer) == ["detail"] and isinstance(answer["detail"], str) and "\n" not in answer["detail"]


# -- standard input ------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(raw=st.binary(max_size=80) | st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_predict_reads_any_standard_input_as_json_lines_or_one_error_line(tiny_checkpoint, raw):
    result = runner.invoke(app, ["predict", str(tiny_checkpoint), "--json"], input=raw)
    if result.exit_code == 0:
        # One object per "\n"-ended line; str.splitlines would also cut at U+0085 or U+2028 inside a text.
        rows = [strict_json(line) for line in result.stdout.split("\n")[:-1]]
        assert rows and all(isinstance(row["score"], float) for row in rows)
    else:
        assert_one_error_line(result)


# -- predict --file / --output through pipes ------------------------------------------------------------------

LINES = st.lists(st.text(max_size=12) | st.binary(max_size=12).map(lambda raw: raw.decode("latin-1")), max_size=6)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=80) | LINES.map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")))
def test_predict_file_from_a_pipe_writes_every_line_or_one_error_line(tiny_checkpoint, tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("pipe")
    pipe, out = folder / "in.pipe", folder / "out.jsonl"
    os.mkfifo(pipe)
    feeder = threading.Thread(target=lambda: pipe.write_bytes(raw), daemon=True)
    feeder.start()
    result = runner.invoke(app, ["predict", str(tiny_checkpoint), "--file", str(pipe), "--output", str(out)])
    feeder.join(timeout=30)
    if result.exit_code != 0:
        assert_one_error_line(result)
        return
    texts = [line for line in re.split(r"\r\n|\r|\n", raw.decode("utf-8").removeprefix("\ufeff")) if line.strip()]
    written = [strict_json(line) for line in out.read_text(encoding="utf-8").split("\n")[:-1]]
    assert [row["text"] for row in written] == texts


def mtst_in_a_shell(command: str, checkpoint) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CKPT": str(checkpoint)}
    mtst = f"{shlex.quote(sys.executable)} -m mtst"
    return subprocess.run(
        ["bash", "-c", command.replace("mtst", mtst, 1)], capture_output=True, text=True, env=environment, timeout=300
    )


@pytest.mark.slow
def test_predict_between_standard_streams_and_with_standard_input_closed(tiny_checkpoint, tmp_path):
    piped = mtst_in_a_shell(
        'printf "play queen\\n\\nweather in paris" | mtst predict "$CKPT" -f /dev/stdin -o /dev/stdout', tiny_checkpoint
    )
    assert piped.returncode == 0, piped.stderr
    assert [strict_json(line)["line"] for line in piped.stdout.splitlines()] == [1, 3]
    assert "2 results (2 new" in piped.stderr and "Traceback" not in piped.stderr
    out = shlex.quote(str(tmp_path / "o.jsonl"))  # standard output redirected to a file: only results in it
    redirected = mtst_in_a_shell(
        f'printf "play queen" | mtst predict "$CKPT" -f /dev/stdin -o /dev/stdout > {out}; cat {out}',
        tiny_checkpoint,
    )
    assert [strict_json(line)["line"] for line in redirected.stdout.splitlines()] == [1], redirected.stdout
    closed = mtst_in_a_shell('mtst predict "$CKPT" <&-', tiny_checkpoint)
    assert closed.returncode == 2 and closed.stderr.startswith("error: no text to predict"), closed.stderr


# -- checkpoints ---------------------------------------------------------------------------------------------

CONFIG_KEYS = st.sampled_from(["format_version", "max_length", "pooling", "tasks"])
TASK_KEYS = st.sampled_from(["name", "type", "field", "labels", "dropout", "crf", "condition_on", "allowed_tags"])


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(top=st.none() | CONFIG_KEYS, task_key=st.none() | TASK_KEYS, value=VALUES)
@example(top=None, task_key="type", value=[])  # an unhashable type once raised TypeError in the kind lookup
def test_a_checkpoint_with_any_edited_config_json_predicts_or_is_one_error_line(
    tiny_checkpoint, tmp_path_factory, top, task_key, value
):
    import shutil

    folder = tmp_path_factory.mktemp("edited") / "best"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    # The task edit goes first: after `config["tasks"] = value`, tasks[0] could be `value` itself (a cycle) or None.
    if task_key is not None and isinstance(config.get("tasks"), list) and config["tasks"]:
        config["tasks"][0][task_key] = value
    if top is not None:
        config[top] = value
    (folder / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, ["predict", str(folder), "weather in paris", "--json"])
    if result.exit_code == 0:
        [row] = [strict_json(line) for line in result.stdout.split("\n")[:-1]]
        assert row["text"] == "weather in paris"
    else:
        assert_one_error_line(result)


# -- annotation-tool exports ---------------------------------------------------------------------------------
# `mtst data check` on a generated export: statistics (exit 0) or one `error:` line (exit 2); what is read never
# holds Rasa markup as words, a Label Studio span always covers its `value.text`, and a key given twice is
# always refused.

NFD_WORDS = ["Rene\u0301", "Mu\u0308ller", "Zu\u0308rich", "नमस्ते", "か\u3099", "e\u0301\u0301"]
WORDS = ["fly", "to", "Paris", "New York", "😀", "A", "B", *NFD_WORDS]
MARKUP = [
    "[Paris](city)",
    "[New York] (city)",
    "[New York(city)",
    "[Paris]",
    "]",
    '[Paris][{"entity": "city"}, {"entity": "dest"}]',
    '[Paris]{"entity": "city.from"}',
    '[Paris]{"entity": "city", "role": "to"}',
    "[Paris](my city)",
    "[Paris](B-city)",
    "[Rene\u0301](person)",
]
RASA_LINES = st.lists(st.sampled_from(WORDS + MARKUP), min_size=1, max_size=5).map(" ".join)


def check_data(path) -> dict | None:
    """`mtst data check --json` on one file: its report, or None after asserting one error line."""
    result = runner.invoke(app, ["data", "check", str(path), "--json"])
    if result.exit_code != 0:
        assert_one_error_line(result)
        return None
    return json.loads(result.stdout)


@FAST
@given(
    examples=st.lists(RASA_LINES, min_size=1, max_size=3),
    repeated=st.sampled_from([None, "examples", "intent", "nlu"]),
    block=st.sampled_from(["|", ">"]),
)
def test_any_rasa_file_is_read_without_markup_or_one_error_line(tmp_path, examples, repeated, block):
    lines = ["nlu:", "- intent: fly", f"  examples: {block}", *(f"    - {example}" for example in examples)]
    if repeated == "examples":
        lines += ["  examples: |", "    - hi"]
    elif repeated == "intent":
        lines.insert(2, "  intent: other")
    elif repeated == "nlu":
        lines += ["nlu:", "- intent: b", "  examples: |", "    - yo"]
    path = tmp_path / "nlu.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = check_data(path)
    if report is None:
        return
    assert repeated is None and block == "|"
    assert report["splits"]["nlu"]["examples"] == len(examples)
    for read in read_rasa(path):
        assert not any(piece in read.text for piece in ("](", "]{", "][", "] (")), read.text


@FAST
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6),
    pick=st.integers(min_value=0, max_value=5),
    units=st.sampled_from(["code points", "utf-16", "elsewhere"]),
)
def test_label_studio_offsets_in_any_unit_tag_value_text_or_are_one_error_line(tmp_path, words, pick, units):
    text = " ".join(words)
    word = words[pick % len(words)]
    start = text.index(word)
    if units == "utf-16":
        start = len(text[:start].encode("utf-16-le")) // 2
        end = start + len(word.encode("utf-16-le")) // 2
    elif units == "elsewhere":  # the offsets of the last word, whatever `value.text` says
        start = text.rindex(words[-1])
        end = start + len(words[-1])
    else:
        end = start + len(word)
    value = {"start": start, "end": end, "text": word, "labels": ["x"]}
    result = {"type": "labels", "from_name": "l", "to_name": "t", "value": value}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([{"data": {"text": text}, "annotations": [{"result": [result]}]}]), encoding="utf-8")
    if check_data(path) is None:
        return
    [read] = read_label_studio(path)
    tagged = [i for i, tag in enumerate(read.annotations["tags"]) if tag != "O"]
    first, last = read.offsets[tagged[0]][0], read.offsets[tagged[-1]][1]
    assert text[first:last] == word


@FAST
@given(
    key=st.sampled_from(["text", "label", "entities", "annotations", "data"]),
    fmt=st.sampled_from(["doccano", "label_studio"]),
)
def test_a_json_key_given_twice_in_a_tool_export_is_one_error_line(tmp_path, key, fmt):
    if fmt == "doccano":
        record = f'{{"text": "fly to Paris", "label": [[7, 12, "city"]], "{key}": []}}'
        path, body = tmp_path / "all.jsonl", '{"text": "hi", "label": [[0, 2, "x"]]}\n' + record + "\n"
    else:
        task = f'{{"data": {{"text": "fly to Paris"}}, "annotations": [{{"result": []}}], "{key}": []}}'
        path, body = tmp_path / "export.json", f"[{task}]"
    path.write_text(body, encoding="utf-8")
    # The key is given twice when the generated one repeats a key the record already has.
    twice = key in (("text", "label") if fmt == "doccano" else ("data", "annotations"))
    report = check_data(path)
    if twice:
        assert report is None


@FAST
@given(text=st.text(alphabet=st.sampled_from("aeouncAZ ,.!-'0" + "áéüñçÅ" + "がぱ" + "नमस्ते" + "한국"), max_size=30))
def test_decomposed_text_splits_into_the_words_of_its_composed_form(text):
    def words(value: str) -> list[str]:
        return [unicodedata.normalize("NFC", word) for word, _, _ in split_words(value)]

    assert words(unicodedata.normalize("NFD", text)) == words(unicodedata.normalize("NFC", text))
