"""The Ray Data path: `map_batches` with BatchPredictor on a local 2-CPU Ray instance equals the Predictor."""

import json

import pytest

ray = pytest.importorskip("ray", reason="the `ray` extra is not installed")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_map_batches_with_two_actors_equals_the_predictor(local_ray, tiny_checkpoint, tmp_path):
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
