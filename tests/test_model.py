import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from mtst.errors import CheckpointError
from mtst.model.multitask import MultiTaskModel
from mtst.model.subtokens import word_ids_input
from mtst.tasks import make_task


def _batch(model, texts):
    """The model's inputs for raw texts: input_ids, attention_mask and word_ids (the default slot head pools each
    word's first and last sub-token)."""
    encoded = model.tokenizer(texts, padding=True, return_tensors="pt")
    return {**encoded, "word_ids": word_ids_input(encoded, len(texts))}


def test_forward_shapes_and_losses(tiny_model):
    batch = _batch(tiny_model, ["play queen", "weather in paris today"])
    labels = {"intent": torch.tensor([0, 1]), "slots": torch.full(batch["input_ids"].shape, -100)}
    labels["slots"][:, 1] = 0
    output = tiny_model(batch["input_ids"], batch["attention_mask"], labels, batch["word_ids"])
    width = batch["input_ids"].shape[1]
    assert output.logits["intent"].shape == (2, len(tiny_model.tasks["intent"].labels))
    assert output.logits["slots"].shape == (2, width, len(tiny_model.tasks["slots"].labels))
    assert set(output.losses) == {"intent", "slots"}
    assert output.sentence_embedding.shape == (2, 32)


def test_no_labels_means_no_loss(tiny_model):
    batch = _batch(tiny_model, ["play queen"])
    assert tiny_model(batch["input_ids"], batch["attention_mask"], word_ids=batch["word_ids"]).losses == {}


def test_mean_pooling_ignores_padding(tiny_model):
    tiny_model.eval()
    alone = tiny_model.encode(["play queen"])
    padded = tiny_model.encode(["play queen", "a much longer sentence about the weather in paris"])[:1]
    assert torch.allclose(alone, padded, atol=1e-5)
    assert torch.allclose(alone.norm(dim=-1), torch.ones(1))


def test_save_load_round_trip_predicts_identically(tiny_model, tmp_path):
    tiny_model.eval()
    tiny_model.heads["slots"].class_weights.fill_(2.0)
    tiny_model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} >= {"config.json", "encoder", "model.safetensors"}
    loaded = MultiTaskModel.from_pretrained(tmp_path / "ckpt")
    batch = _batch(tiny_model, ["play the beatles", "rain in berlin tomorrow"])
    before = tiny_model(batch["input_ids"], batch["attention_mask"], word_ids=batch["word_ids"])
    after = loaded(batch["input_ids"], batch["attention_mask"], word_ids=batch["word_ids"])
    for name in before.logits:
        assert torch.equal(before.logits[name], after.logits[name])
    assert loaded.tasks == tiny_model.tasks
    assert torch.equal(loaded.heads["slots"].class_weights, torch.full_like(loaded.heads["slots"].class_weights, 2.0))


def test_encoder_weights_are_saved_once(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    keys = load_file(tmp_path / "ckpt" / "model.safetensors").keys()
    assert sum(k.endswith("word_embeddings.weight") for k in keys) == 1


def test_saving_over_an_existing_checkpoint_replaces_it(tiny_model, tmp_path):
    target = tmp_path / "models" / "ckpt"
    tiny_model.save_pretrained(target)
    (target / "stale.txt").write_text("old")
    tiny_model.save_pretrained(target)
    assert not (target / "stale.txt").exists()
    assert [p.name for p in target.parent.iterdir()] == ["ckpt"]  # no temporary folder left behind


def test_mismatched_checkpoint_is_refused(tiny_model, tmp_path):
    target = tmp_path / "ckpt"
    tiny_model.save_pretrained(target)
    config = json.loads((target / "config.json").read_text())
    config["tasks"][0]["labels"].append("ExtraIntent")
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        MultiTaskModel.from_pretrained(target)


def test_truncated_weights_are_refused(tiny_model, tmp_path):
    target = tmp_path / "ckpt"
    tiny_model.save_pretrained(target)
    data = (target / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot load weights"):
        MultiTaskModel.from_pretrained(target)


def test_missing_weights_are_refused(tiny_model, tmp_path):
    target = tmp_path / "ckpt"
    tiny_model.save_pretrained(target)
    weights = load_file(target / "model.safetensors")
    weights.pop("heads.intent.classifier.weight")
    save_file(weights, target / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing"):
        MultiTaskModel.from_pretrained(target)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not an mtst checkpoint"):
        MultiTaskModel.from_pretrained(tmp_path)


def test_more_tasks_need_no_new_code(tiny_model):
    specs = list(tiny_model.tasks.values()) + [
        make_task("domain", "sentence", "domain", ("music", "weather", "other")),
        make_task("pos", "token", "pos", ("NOUN", "VERB")),
    ]
    model = MultiTaskModel(tiny_model.encoder, tiny_model.tokenizer, specs)
    batch = _batch(model, ["play queen"])
    output = model(batch["input_ids"], batch["attention_mask"], word_ids=batch["word_ids"])
    assert output.logits["domain"].shape == (1, 3) and output.logits["pos"].shape[-1] == 2


def test_checkpoint_without_encoder_config_is_refused(tiny_model, tmp_path):
    target = tmp_path / "ckpt"
    tiny_model.save_pretrained(target)
    (target / "encoder" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete checkpoint"):
        MultiTaskModel.from_pretrained(target)


def test_checkpoint_files_are_readable_like_any_folder(tiny_model, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        tiny_model.save_pretrained(tmp_path / "ckpt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ckpt").stat().st_mode) == 0o755
    # safetensors writes its file 0600: a service account could not serve the checkpoint.
    files = [path for path in (tmp_path / "ckpt").rglob("*") if path.is_file()]
    assert "model.safetensors" in {path.name for path in files}
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == {path.name: 0o644 for path in files}
    old = os.umask(0o077)
    try:
        tiny_model.save_pretrained(tmp_path / "private")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private" / "model.safetensors").stat().st_mode) == 0o600


def test_encode_ignores_training_mode(tiny_model):
    tiny_model.train()
    first, second = tiny_model.encode(["play queen"]), tiny_model.encode(["play queen"])
    assert torch.equal(first, second) and tiny_model.training


@pytest.mark.parametrize("change", ["add", "remove"])
def test_labels_that_disagree_with_the_weights_are_named(tiny_model, tmp_path, change):
    target = tmp_path / "ckpt"
    tiny_model.save_pretrained(target)
    config = json.loads((target / "config.json").read_text())
    labels = config["tasks"][1]["labels"]
    labels.append("B-extra") if change == "add" else labels.pop()
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as error:
        MultiTaskModel.from_pretrained(target)
    message = str(error.value)
    assert "heads.slots." in message and f"lists {len(labels)} slots labels" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "tasks, problem",
    [
        ([{"name": "x", "type": "span", "field": "f", "labels": ["a"]}], "unknown type"),
        ([{"name": "x", "type": "sentence", "field": "f", "labels": []}], "non-empty label"),
        ([{"name": "x", "type": "sentence", "field": "f", "labels": ["a", "a"]}], "twice"),
        ([{"name": "x", "type": "sentence"}], "unreadable"),
    ],
)
def test_invalid_task_lists_are_refused(tiny_model, tmp_path, tasks, problem):
    target = tmp_path / "ckpt"
    tiny_model.save_pretrained(target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "tasks": tasks}))
    with pytest.raises(CheckpointError, match=problem):
        MultiTaskModel.from_pretrained(target)


def test_the_package_never_unpickles():
    """Checkpoints and training states load from safetensors and JSON only: no pickle, no torch.load."""
    import re
    from pathlib import Path

    import mtst

    package = Path(mtst.__file__).parent
    pattern = re.compile(r"^\s*(import|from)\s+(c?pickle|cloudpickle|dill|joblib)\b|\bpickle\.\w+\(|torch\.load\(")
    offenders = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_nan_weights_are_never_saved(tiny_model, tmp_path):
    with torch.no_grad():
        tiny_model.heads["intent"].classifier.weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="refusing to save NaN or infinite weights .*heads.intent"):
        tiny_model.save_pretrained(tmp_path / "best")
    assert not (tmp_path / "best").exists()
