"""The data-format registry: every format is declared once, and everything that lists formats reads it."""

import json
from pathlib import Path

from typer.testing import CliRunner

from mtst.cli import app
from mtst.data.formats import FORMATS, detect_format
from mtst.data.settings import DATA_FORMATS

README = Path(__file__).parent.parent / "README.md"
runner = CliRunner()


def _readme_format_rows() -> list[str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| format | layout |") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("| `"):
            break
        rows.append(line.split("`")[1])
    return rows


def test_the_readme_table_lists_exactly_the_registry_in_its_order():
    assert _readme_format_rows() == list(FORMATS)


def test_config_choices_are_the_registry():
    assert DATA_FORMATS == ("auto", *FORMATS)


def test_data_check_formats_lists_name_suffixes_and_what_each_reads():
    result = runner.invoke(app, ["data", "check", "--formats"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["format", "suffixes", "reads"]
    assert [line.split()[0] for line in lines[1:]] == list(FORMATS)
    assert any(line.startswith("conll") and ".iob" in line for line in lines)
    listed = json.loads(runner.invoke(app, ["data", "check", "--formats", "--json"]).output)
    assert [row["name"] for row in listed] == list(FORMATS)
    assert all(row["reads"] for row in listed)


def test_data_check_without_a_path_or_formats_is_a_usage_error():
    result = runner.invoke(app, ["data", "check"])
    assert result.exit_code == 2


def test_every_suffix_is_detected_as_a_registered_format(tmp_path):
    for fmt in FORMATS.values():
        for suffix in fmt.suffixes:
            path = tmp_path / f"train{suffix}"
            path.write_text('{"text": "a"}\n' if "json" in suffix else "a\n", encoding="utf-8")
            assert detect_format(path) in FORMATS
