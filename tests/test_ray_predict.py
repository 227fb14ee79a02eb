"""The Ray Data path: `map_batches` with BatchPredictor on a local 2-CPU Ray instance equals the Predictor; and
BatchPredictor itself (no Ray needed) on rows that are not texts."""

import json

import pytest

from mtst.errors import MtstError


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def batch_predictor(tiny_checkpoint):
    from mtst.inference.ray_batch import BatchPredictor

    return BatchPredictor(str(tiny_checkpoint))


def test_bytes_rows_are_read_as_utf8_and_rows_that_are_not_text_are_refused_by_index(batch_predictor):
    import numpy as np

    got = batch_predictor({"text": np.array([b"weather in z\xc3\xbcrich", "play queen"], dtype=object)})
    assert got["text"] == ["weather in zürich", "play queen"]
    assert json.loads(got["prediction"][0])["text"] == "weather in zürich"
    for rows, problem in [
        ([None, "a"], r"`text` row 0 of a batch: expected a text, got None"),
        (["a", 3.0], r"`text` row 1 of a batch: expected a text, got float"),
        (["a", b"\xff"], r"`text` row 1 of a batch: invalid UTF-8 \(byte 0xff\)"),
    ]:
        with pytest.raises(MtstError, match=problem):
            batch_predictor({"text": rows})


@pytest.mark.slow
def test_map_batches_with_two_actors_equals_the_predictor(local_ray, tiny_checkpoint, tmp_path):
    ray = local_ray
    from mtst.inference.predictor import Predictor
    from mtst.inference.ray_batch import BatchPredictor

    texts = [f"weather in paris {i}" if i % 3 else f"play queen number {i}" for i in range(40)]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n")
    # The read takes no CPU of its own: the two actors hold both, and a read waiting for one would never run.
    dataset = ray.data.read_text(str(source), num_cpus=0).map_batches(
        BatchPredictor,
        fn_constructor_kwargs={"checkpoint": str(tiny_checkpoint), "threads": 1},
        concurrency=2,
        batch_size=8,
        num_cpus=1,
    )
    rows = dataset.take_all()
    got = {row["text"]: json.loads(row["prediction"]) for row in rows}
    expected = Predictor.from_checkpoint(tiny_checkpoint, device="cpu").predict(texts)
    assert len(rows) == len(texts) and got == {result["text"]: result for result in expected}
