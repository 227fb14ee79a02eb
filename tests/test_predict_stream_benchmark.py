"""benchmarks/predict_stream.py stays runnable: two tiny sizes through the real CLI on the tiny checkpoint."""

import json

import pytest

from tests.test_benchmarks import _check_record, run_script  # noqa: F401  (run_script is a fixture)


@pytest.mark.slow
def test_predict_stream_records_rss_and_throughput_per_size(run_script, tiny_checkpoint, tmp_path):  # noqa: F811
    output = tmp_path / "stream.json"
    run_script("predict_stream", str(tiny_checkpoint), "--lines", "30", "60", "--output", str(output))
    result = json.loads(output.read_text())
    _check_record(result)
    assert set(result["stream"]) == {"30", "60"}
    for lines, row in result["stream"].items():
        assert row["texts"] == int(lines) and row["peak_rss_mib"] > 50 and row["texts_per_s"] > 0
        assert all(0 <= done <= int(lines) and 0 < peak <= row["peak_rss_mib"] for done, peak in row["rss_profile"])
