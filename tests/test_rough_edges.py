"""Rough edges a new user hit: each fixed, each checked here."""

import warnings
from pathlib import Path

from typer.testing import CliRunner

from mtst.cli import app
from tests.conftest import TOY_SENTENCES

ROOT = Path(__file__).resolve().parents[1]


def test_a_missing_csv_column_hint_names_the_flag_the_user_types(tmp_path):
    (tmp_path / "train.csv").write_text("label,content\n1,some news\n")
    result = CliRunner().invoke(app, ["data", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert "no column 'text' in the header (columns found: 'label', 'content')" in result.output
    assert "--text-column" in result.output
    assert CliRunner().invoke(app, ["data", "check", str(tmp_path), "--text-column", "content"]).exit_code == 0


def test_pyproject_license_is_an_spdx_string_setuptools_reads_without_a_warning():
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old `license = { text = ... }` table warned here
        distribution = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert distribution.metadata.license_expression == "MIT"


def test_readme_examples_use_the_demo_checkpoint_a_new_user_has():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = [line for line in readme.splitlines() if line.startswith(("mtst predict", "mtst export", "mtst serve"))]
    assert examples and all("runs/demo/best" in line for line in examples)


def test_version_flag_prints_the_package_version():
    import mtst

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mtst {mtst.__version__}"
    assert "--version" in CliRunner().invoke(app, ["--help"]).output


def test_mtst_train_takes_the_column_flags_its_csv_hint_names(tmp_path, tiny_encoder_dir):
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    for split in ("train", "dev", "test"):
        (data / f"{split}.csv").write_text("topic,content\n" + "".join(f"{y},{x}\n" for x, _, y in TOY_SENTENCES))
    config = tmp_path / "config.yaml"
    config.write_text(f"encoder: {{name_or_path: {tiny_encoder_dir}}}\ntasks: [{{name: intent, type: sentence}}]\n")
    base = ["train", "-c", str(config), "--data-dir", str(data), "-o", str(run), "--epochs", "1"]
    refused = CliRunner().invoke(app, base)
    assert refused.exit_code == 2 and "--text-column / --label-column" in refused.output
    result = CliRunner().invoke(app, [*base, "--text-column", "content", "--label-column", "topic"])
    assert result.exit_code == 0, result.output
    written = (run / "config.yaml").read_text()
    assert "text_column: content" in written and "label_column: topic" in written
