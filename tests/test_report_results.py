"""benchmarks/report_results.py: the README's generated blocks come from the result files, the rest stays."""

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def report(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import report_results

    monkeypatch.setattr(report_results, "RESULTS", tmp_path)
    yield report_results
    for name in ("report_results", "paired"):
        sys.modules.pop(name, None)


def _grid(path: Path, seeds: list[int], f1: float) -> None:
    """A full-length result with the recipe at `f1` and the first_last default one point above it."""
    runs, variants = [], {}
    for name, score in (("crf+entity-weight-1", f1), ("crf+entity-weight-1+pooling-first-last", f1 + 1)):
        stats = {"mean": score, "std": 0.5}
        keys = ("intent.accuracy", "slots.precision", "slots.recall", "slots.f1", "sentence_accuracy")
        split = {key: stats for key in keys}
        runs += [{"variant": name, "seed": s, "best_epoch": 5 + s % 2, "epochs_run": 7} for s in seeds]
        variants[name] = {"seeds_done": seeds, "dev": split, "test": split}
    path.write_text(json.dumps({"runs": runs, "variants": variants}))


def test_the_full_length_block_is_rebuilt_and_the_text_around_it_kept(report, tmp_path):
    _grid(tmp_path / "grid_atis_full_pooling.json", [13, 14, 15], 95.83)
    _grid(tmp_path / "grid_snips_full_pooling.json", [13], 95.84)
    text = "before\n<!-- full-length -->\nstale table\n<!-- /full-length -->\nafter\n"
    readme = tmp_path / "README.md"
    readme.write_text(text)
    report.main([str(readme)])
    rewritten = readme.read_text()
    assert rewritten.startswith("before\n<!-- full-length -->\n") and rewritten.endswith(
        "<!-- /full-length -->\nafter\n"
    )
    assert "stale table" not in rewritten
    assert "| ATIS, default (first_last), 3 seeds (13, 14, 15); best epoch of 7: 6, 5, 6 | 96.83 ± 0.50 |" in rewritten
    assert "| ATIS, first sub-token (the default until December 3), 3 seeds (13, 14, 15);" in rewritten
    assert "| SNIPS, default (first_last), 1 seed (13); best epoch of 7: 6 | 96.84 ± 0.50 |" in rewritten
    report.main([str(readme)])
    assert readme.read_text() == rewritten  # regenerating changes nothing


def test_a_file_without_blocks_is_left_as_it_is(report, tmp_path):
    other = tmp_path / "NOTES.md"
    other.write_text("no blocks here\n")
    report.main([str(other)])
    assert other.read_text() == "no blocks here\n"
