import json

import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.training.reports import gradient_summary

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder_dir):
    from tests.conftest import TOY_SENTENCES, write_jointbert

    root = tmp_path_factory.mktemp("cli")
    for split in ("train", "dev", "test"):
        write_jointbert(root / "data" / split, TOY_SENTENCES)
    config = root / "config.yaml"
    config.write_text(f"encoder: {{name_or_path: {tiny_encoder_dir}}}\ntrain: {{epochs: 5, batch_size: 4}}\n")
    result = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(config),
            "--data-dir",
            str(root / "data"),
            "--output-dir",
            str(root / "run"),
            "--epochs",
            "1",
            "--seed",
            "3",
            "--group-by-length",
            "--report-to",
            "tensorboard",
        ],
    )
    assert result.exit_code == 0, result.output
    return root


def test_train_flags_override_config(trained):
    rows = (trained / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # --epochs 1 beat the config's 5
    written = (trained / "run" / "config.yaml").read_text()
    assert "seed: 3" in written and "group_by_length: true" in written and "report_to:\n  - tensorboard" in written
    assert list((trained / "run" / "tensorboard" / "run").glob("events.out.tfevents.*"))


def test_each_epoch_records_its_gradient_norms_before_clipping(trained):
    row = json.loads((trained / "run" / "metrics.jsonl").read_text().splitlines()[0])
    gradients = row["gradients"]
    assert 0 < gradients["norm_mean"] <= gradients["norm_max"] and 0 <= gradients["clipped_share"] <= 1
    assert gradient_summary([0.5, 1.5, 4.0], clip=1.0) == {
        "steps": 3,
        "norm_mean": 2.0,
        "norm_max": 4.0,
        "clipped_share": 2 / 3,
    }


def test_evaluate_prints_metrics_and_json(trained):
    checkpoint = str(trained / "run" / "best")
    result = runner.invoke(app, ["evaluate", checkpoint, "--data-dir", str(trained / "data"), "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "slots.f1" in result.output and "per label" in result.output
    result = runner.invoke(app, ["evaluate", checkpoint, "--data-dir", str(trained / "data"), "--json"])
    metrics = json.loads(result.output)
    assert 0 <= metrics["intent"]["accuracy"] <= 1 and "report" in metrics["slots"]


def test_predict_json_lines_from_args_and_file(trained, tmp_path):
    checkpoint = str(trained / "run" / "best")
    texts = tmp_path / "in.txt"
    texts.write_text("weather in berlin\n\nplay queen\n")
    result = runner.invoke(app, ["predict", checkpoint, "play the beatles", "--file", str(texts), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["text"] for r in rows] == ["play the beatles", "weather in berlin", "play queen"]
    assert all({"label", "score", "entities"} <= set(r) for r in rows)


def test_bad_data_is_one_line_naming_file_and_line(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "seq.in").write_text("a b\nc d e\n")
    (tmp_path / "train" / "seq.out").write_text("O O\nO O\n")
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "seq.out:2: 2 tags for 3 words" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"train.txt": ""}, "train.txt: empty file"),
        ({"train.parquet": "x"}, "unknown data format"),
    ],
)
def test_empty_and_unknown_files(tmp_path, files, message):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    result = runner.invoke(app, ["train", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_config_and_missing_checkpoint(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train: {epochs: 0}\n")
    result = runner.invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "train.epochs" in result.stderr
    result = runner.invoke(app, ["predict", str(tmp_path), "hello"])
    assert result.exit_code == 2 and "not an mtst checkpoint" in result.stderr


def test_env_var_sets_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MTST_DATA_DIR", str(tmp_path / "nowhere"))
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2 and "nowhere" in result.stderr


def test_evaluate_reads_csv_columns_from_the_run_config(tmp_path, tiny_encoder_dir):
    data = tmp_path / "data"
    data.mkdir()
    rows = "label,content\n" + "".join(
        f"{label},{text}\n" for label, text in [("1", "stocks fell"), ("2", "the team won")] * 4
    )
    for split in ("train", "dev", "test"):
        (data / f"{split}.csv").write_text(rows)
    config = tmp_path / "topics.yaml"
    config.write_text(
        f"encoder: {{name_or_path: {tiny_encoder_dir}}}\ndata: {{text_column: content}}\n"
        "tasks: [{name: topic, type: sentence}]\ntrain: {epochs: 1, batch_size: 4}\n"
    )
    result = runner.invoke(app, ["train", "-c", str(config), "--data-dir", str(data), "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run" / "best"), "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.output)["topic"]["accuracy"] <= 1


def test_predict_file_with_bom_and_unknown_format(trained, tmp_path):
    checkpoint = str(trained / "run" / "best")
    texts = tmp_path / "in.txt"
    texts.write_bytes("\ufeffplay queen\r\n".encode())
    result = runner.invoke(app, ["predict", checkpoint, "--file", str(texts), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["text"] == "play queen"
    result = runner.invoke(app, ["evaluate", checkpoint, "--data-dir", str(trained / "data"), "--format", "xml"])
    assert result.exit_code == 2 and "unknown data format 'xml'" in result.stderr


def test_empty_config_section_with_a_flag(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("train:\n")
    result = runner.invoke(app, ["train", "--config", str(config), "--epochs", "1", "--data-dir", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no 'train' split found" in result.stderr


def test_serve_builds_the_app_on_loopback_and_hands_it_to_uvicorn(tiny_checkpoint, monkeypatch):
    import uvicorn

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    result = runner.invoke(app, ["serve", str(tiny_checkpoint), "--port", "8123", "--max-texts", "3"])
    assert result.exit_code == 0, result.output
    assert (started["host"], started["port"]) == ("127.0.0.1", 8123)
    from fastapi.testclient import TestClient

    with TestClient(started["app"]) as client:
        assert client.get("/info").json()["limits"]["max_texts"] == 3
        assert client.post("/predict", json={"texts": ["weather in paris"]}).status_code == 200


@pytest.mark.slow
def test_serve_runs_the_onnx_export(tiny_checkpoint, tmp_path, monkeypatch):
    import shutil

    import uvicorn

    checkpoint = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, checkpoint)
    assert runner.invoke(app, ["export", str(checkpoint), "--format", "onnx"]).exit_code == 0
    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app, **options))
    result = runner.invoke(app, ["serve", str(checkpoint), "--backend", "onnx"])
    assert result.exit_code == 0, result.output
    from fastapi.testclient import TestClient

    from mtst.inference.predictor import Predictor

    texts = ["weather in paris", "play queen"]
    with TestClient(started["app"]) as client:
        assert client.get("/info").json()["backend"] == "onnx"
        served = client.post("/predict", json={"texts": texts}).json()
    assert served == Predictor.from_checkpoint(checkpoint, device="cpu", ranking=10).predict(texts)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--max-texts", "0"], "--max-texts: Input should be greater than or equal to 1"),
        (["--max-wait-ms", "-1"], "--max-wait-ms: Input should be greater than or equal to 0"),
        (["--backend", "onnx"], "no ONNX export; run `mtst export"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(tiny_checkpoint, arguments, message):
    result = runner.invoke(app, ["serve", str(tiny_checkpoint), *arguments])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_serve_a_folder_that_is_no_checkpoint(tmp_path):
    result = runner.invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "not an mtst checkpoint" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_evaluate_takes_a_multi_corpus_runs_settings_for_the_corpus_it_scores(tmp_path):
    from mtst.data.settings import DataConfig
    from mtst.model.checkpoint import CheckpointConfig
    from mtst.tasks import make_task

    news, ner = tmp_path / "news", tmp_path / "ner"
    config = CheckpointConfig(
        data=DataConfig(format="jsonl"),
        tasks=[
            make_task(
                "topic", "sentence", "label", ["W"], data={"dir": str(news), "format": "csv", "label_names": {"1": "W"}}
            ),
            make_task("entities", "token", "tags", ["O"], data={"dir": str(ner), "format": "conll"}),
        ],
    )
    assert config.data_for(news).label_names == {"1": "W"}
    assert config.data_for(ner).format == "conll"
    assert config.data_for(tmp_path / "other") == config.data


def one_error_line(result, expected: str) -> str:
    """Exit status 2, exactly one `error:` line holding `expected`, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    return errors[0]


def _train(tmp_path, config_text: str, *extra: str):
    from tests.conftest import TOY_SENTENCES, write_jointbert

    for split in ("train", "dev", "test"):
        write_jointbert(tmp_path / "data" / split, TOY_SENTENCES)
    config = tmp_path / "c.yaml"
    config.write_text(config_text)
    arguments = ["train", "-c", str(config), "--data-dir", str(tmp_path / "data"), "-o", str(tmp_path / "run")]
    return runner.invoke(app, [*arguments, *extra])


def test_an_mtst_checkpoint_as_the_encoder_is_one_line(tmp_path, tiny_checkpoint):
    result = _train(tmp_path, f"encoder: {{name_or_path: {tiny_checkpoint}}}\n")
    one_error_line(result, "is an mtst checkpoint, not a Hugging Face encoder")


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ("[{name: intent, type: sentence}, {name: slots, type: token, field: label}]", "token task 'slots' reads"),
        ("[{name: intent, type: sentence, field: tags}, {name: slots, type: token}]", "sentence task 'intent' reads"),
    ],
)
def test_a_task_reading_the_other_kind_of_field_is_one_line_before_training(tmp_path, tiny_encoder_dir, tasks, message):
    result = _train(tmp_path, f"encoder: {{name_or_path: {tiny_encoder_dir}}}\ntasks: {tasks}\n")
    line = one_error_line(result, message)
    assert "seq.in:1:" in line
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_an_output_dir_that_is_a_file_is_one_line_before_the_model_loads(tmp_path, tiny_encoder_dir):
    (tmp_path / "run").write_text("not a folder")
    result = _train(tmp_path, f"encoder: {{name_or_path: {tiny_encoder_dir}}}\n")
    one_error_line(result, "run: output_dir is a file, not a folder")


@pytest.mark.parametrize("epochs", ["-3", "0"])
def test_demo_refuses_epochs_below_one(tmp_path, epochs):
    result = runner.invoke(app, ["demo", "--epochs", epochs, "-o", str(tmp_path / "demo")])
    one_error_line(result, "train.epochs: Input should be greater than or equal to 1")
    assert not (tmp_path / "demo").exists()


def test_predict_refuses_invalid_utf8_on_standard_input(trained):
    result = runner.invoke(app, ["predict", str(trained / "run" / "best")], input=b"play queen\nbad \xff byte\n")
    one_error_line(result, "<stdin>:2: invalid UTF-8 (byte 0xff)")


def test_an_unreadable_split_folder_is_one_line(tmp_path, monkeypatch):
    """Root ignores mode 000, so the test makes the folder's stat fail as it does for any other user."""
    from pathlib import Path

    from tests.conftest import TOY_SENTENCES, write_jointbert

    locked = write_jointbert(tmp_path / "train", TOY_SENTENCES)
    exists = Path.exists

    def denied(path, *args, **kwargs):
        if locked in path.parents:
            raise PermissionError(13, "Permission denied", str(path))
        return exists(path, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", denied)
    for command in (["data", "check", str(tmp_path)], ["train", "--data-dir", str(tmp_path)]):
        one_error_line(runner.invoke(app, command), f"{locked / 'seq.in'}: Permission denied")


def test_evaluate_on_a_split_without_a_tasks_annotation_is_refused(trained, tmp_path):
    from tests.conftest import TOY_SENTENCES, write_jointbert

    (write_jointbert(tmp_path / "test", TOY_SENTENCES) / "seq.out").unlink()  # labels only, no tags
    result = runner.invoke(app, ["evaluate", str(trained / "run" / "best"), "--data-dir", str(tmp_path)])
    one_error_line(result, "no example of the test split holds `tags`, which task 'slots' reads")


def test_every_train_option_has_a_help_text_shown_by_help():
    import typer

    from mtst.cli import TRAIN_SETTINGS

    options = [p for p in typer.main.get_command(app).commands["train"].params if p.param_type_name == "option"]
    assert {s.name for s in TRAIN_SETTINGS} <= {p.opts[0] for p in options}
    result = runner.invoke(app, ["train", "--help"], terminal_width=400, env={"COLUMNS": "400"})
    shown = " ".join(result.output.split())
    for option in options:
        assert option.help, f"{option.opts[0]} has no help text"
        assert " ".join(option.help.split()) in shown, option.opts[0]
