"""A checkpoint whose parts were removed, swapped or edited is refused with one `error:` line and exit status 2:
never garbage predictions with exit 0, never a traceback (the issue's defects 1, 6 and 7)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from mtst.cli import app

runner = CliRunner()


def one_error_line(result, expected: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr


@pytest.fixture
def copy(tiny_checkpoint, tmp_path):
    folder = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, folder)
    return folder


def _predict(folder, *extra):
    return runner.invoke(app, ["predict", str(folder), "weather in paris", "--json", *extra])


def _edit(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_checkpoint_without_its_tokenizer_is_refused(copy):
    (copy / "tokenizer.json").unlink()
    one_error_line(_predict(copy), "incomplete checkpoint (no tokenizer.json)")


def test_a_tokenizer_that_does_not_fit_the_embeddings_is_refused(copy):
    _edit(
        copy / "tokenizer.json",
        lambda data: data["model"].update(vocab={"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}),
    )
    one_error_line(_predict(copy), "the tokenizer has 5 pieces but the encoder 30522 embedding rows")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["encoder"].update(max_length=600), "max_length"),
        (lambda c: c["encoder"].update(max_length="abc"), "max_length"),
        (lambda c: c["encoder"].update(max_length=0), "max_length"),
        (lambda c: c.update(format_version=99), "format_version"),
        (lambda c: c["tasks"][0].update(labels="GetWeather"), "labels"),
        (lambda c: c["tasks"][0].update(dropout="high"), "dropout"),
        (lambda c: c["tasks"][0].update(name="a.b"), "name"),
    ],
    ids=["max_length-600", "max_length-abc", "max_length-0", "format_version-99", "labels-string", "dropout", "name"],
)
def test_edited_config_json_values_are_refused(copy, change, message):
    _edit(copy / "config.json", change)
    one_error_line(_predict(copy), message)


def test_an_encoder_config_that_does_not_fit_the_weights_is_refused(copy):
    _edit(copy / "encoder" / "config.json", lambda c: c.update(hidden_size=385))
    one_error_line(_predict(copy), "encoder")


def _graph(outputs: dict[str, int]):
    """A stand-in model.onnx: inputs as exported, one float output per task of [batch, labels] (all zeros)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Shape", ["input_ids"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "one"], ["batch"]),
    ]
    initializers = [
        helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
    ]
    declared = []
    for name, labels in outputs.items():
        initializers.append(helper.make_tensor(f"{name}_width", TensorProto.INT64, [1], [labels]))
        nodes.append(helper.make_node("Concat", ["batch", f"{name}_width"], [f"{name}_shape"], axis=0))
        nodes.append(
            helper.make_node(
                "ConstantOfShape",
                [f"{name}_shape"],
                [name],
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
            )
        )
        declared.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", labels]))
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "length"])
        for n in ("input_ids", "attention_mask", "word_ids")  # word_ids: the default first_last pooling
    ]
    graph = helper.make_graph(nodes, "swapped", inputs, declared, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("intent_labels", [1, 3])
def test_a_swapped_onnx_graph_with_other_label_counts_is_refused_at_load(copy, intent_labels):
    import onnx

    onnx.save(_graph({"intent": intent_labels, "slots": 5}), copy / "model.onnx")
    one_error_line(_predict(copy, "--backend", "onnx"), f"output intent gives {intent_labels} scores per row")


def test_nan_weights_in_a_checkpoint_are_refused(copy):
    from safetensors.torch import load_file, save_file

    weights = load_file(copy / "model.safetensors")
    weights["heads.intent.classifier.weight"][0, 0] = float("nan")
    save_file(weights, copy / "model.safetensors")
    one_error_line(_predict(copy), "NaN or infinite weights (heads.intent.classifier.weight)")
