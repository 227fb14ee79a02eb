"""Exports a checkpoint's joint graph (encoder, pooling, every head) to ONNX for CPU inference.

Inputs `input_ids` and `attention_mask` (int64, dynamic batch and sequence axes); one logits output per
task, named after the task. `model.onnx` is float32, rewritten by onnxruntime's transformer optimizer
(BERT fusions: LayerNorm, SkipLayerNorm, bias+GELU, attention where its pattern is recognised);
`--quantize int8` adds `model.int8.onnx`, the optimized graph with dynamic int8 quantization of the
weights (activations quantized on the fly), the heads kept in float32, and with `--agreement-data DIR` whatever
else it takes to agree with float32 on DIR's dev sentences (mtst.export.agreement). Both are checked against
PyTorch on a padded batch before they replace anything, and `onnx_export.json` records what was exported.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mtst.errors import MtstError
from mtst.export.agreement import AgreementSettings, agreement_sentences, int8_with_agreement
from mtst.export.quantize import HEADS, node_groups, quantize_int8, quieter
from mtst.files import atomic_file, write_json_atomic
from mtst.inference.onnx import (
    DECODE_HEADS_FILE,
    EXPORT_NOTE,
    INPUT_NAMES,
    INT8_FILE,
    ONNX_FILE,
    WORD_IDS,
    graph_inputs,
    open_session,
)
from mtst.model.multitask import MultiTaskModel
from mtst.model.subtokens import word_ids_input

try:
    import onnxruntime
    import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
    from onnxruntime.transformers import optimizer as transformer_optimizer
except ImportError:  # the optional `export` extra
    raise MtstError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'mtst[export]'") from None

OPSET = 18
FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
FP32_TOLERANCE = 1e-3  # float32 kernels differ in summation order; measured ~2e-5 on all-MiniLM-L6-v2
# Traced with one batch, checked with another of a different size and length, padding included, so a
# shape baked into the graph by mistake shows up as a failed check rather than as wrong predictions later.
TRACE_TEXTS = ["play the song yesterday by the beatles", "weather in paris"]
CHECK_TEXTS = ["what will the weather be like in new york tomorrow evening", "", "play queen"]


class JointGraph(nn.Module):
    """The model's forward with plain tensor inputs and one logits tensor per task, in task order."""

    def __init__(self, model: MultiTaskModel):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        logits = self.model(input_ids, attention_mask, word_ids=word_ids).logits
        return tuple(logits[name] for name in self.model.tasks)


def _batch(model: MultiTaskModel, texts: list[str]) -> tuple[torch.Tensor, ...]:
    """input_ids and attention_mask, and word_ids when the graph takes them (graph_inputs)."""
    encoded = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt")
    if not model.needs_word_ids:
        return encoded["input_ids"], encoded["attention_mask"]
    return encoded["input_ids"], encoded["attention_mask"], word_ids_input(encoded, len(texts))


def _export_fp32(model: MultiTaskModel, path: Path) -> None:
    # The torch.export-based exporter (dynamo=True) is the one PyTorch maintains and the default since 2.9;
    # the TorchScript one is deprecated and only traces, baking Python branches on shapes into the graph.
    inputs = graph_inputs(model.tasks.values())
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    # "torchvision is not installed" notices and exporter chatter (deprecations inside torch/transformers), not ours.
    with warnings.catch_warnings(), quieter("torch.onnx"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            JointGraph(model).eval(),
            _batch(model, TRACE_TEXTS),
            input_names=list(inputs),
            output_names=list(model.tasks),
            dynamic_shapes=axes,
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    program.save(str(path), external_data=False)  # one self-contained file; fine below protobuf's 2 GB


def _optimize_graph(path: Path, model: MultiTaskModel) -> dict[str, int]:
    """Rewrites the graph in place with onnxruntime's BERT fusions; returns the fused operators it made.

    The fusion patterns were written for the TorchScript exporter's graphs: on the torch.export graph of
    all-MiniLM-L6-v2 they fuse GELU and (Skip)LayerNorm but not attention (recorded in onnx_export.json).
    """
    config = model.encoder.config
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    optimized = transformer_optimizer.optimize_model(
        str(path),
        model_type="bert",
        num_heads=getattr(config, "num_attention_heads", 0),
        hidden_size=getattr(config, "hidden_size", 0),
        opt_level=0,  # graph fusions only; onnxruntime applies its own optimizations when it loads a session
    )
    optimized.save_model_to_file(str(path))
    return {name: count for name, count in optimized.get_fused_operator_statistics().items() if count}


def _max_differences(path: Path, model: MultiTaskModel) -> dict[str, float]:
    """Largest absolute logit difference per task between the ONNX file and PyTorch on CHECK_TEXTS' tokens."""
    inputs = _batch(model, CHECK_TEXTS)
    with torch.no_grad():
        expected = JointGraph(model)(*inputs)
    session = open_session(path)
    names = list(model.tasks)
    feeds = {name: value.numpy() for name, value in zip(graph_inputs(model.tasks.values()), inputs, strict=True)}
    got = session.run(names, feeds)
    expected = dict(zip(names, expected, strict=True))
    real_tokens = inputs[1].numpy().astype(bool)  # padding positions are never decoded
    differences = {}
    for name, value in zip(names, got, strict=True):
        reference = expected[name].numpy()
        if value.shape != reference.shape or not np.isfinite(value).all():
            raise MtstError(f"{path}: output {name!r} has shape {value.shape} or non-finite values; export failed")
        gap = np.abs(value - reference)
        differences[name] = float((gap[real_tokens] if gap.ndim == 3 else gap).max())
    return differences


def _int8(checkpoint: Path, target: Path, agreement: AgreementSettings | None, sentences) -> dict:
    """Quantizes model.onnx into `target`: the heads stay float32 (two small matrices whose outputs are the
    logits themselves, where rounding flips labels for next to no time saved), and with `agreement` whatever
    else the sensitivity pass finds it takes to agree with float32 on real sentences."""
    source = checkpoint / ONNX_FILE
    if agreement is not None:
        return int8_with_agreement(checkpoint, source, target, agreement, *sentences)
    heads = node_groups(source).get(HEADS, [])
    quantize_int8(source, target, heads)
    return {"float32_nodes": heads, "float32_groups": [HEADS]}


def _write_decode_heads(model: MultiTaskModel, checkpoint: Path) -> None:
    """The heads whose decoding reads trained weights (a CRF's transitions), beside the graph."""
    from safetensors.torch import save_file

    tensors = {
        f"heads.{name}.{key}": tensor.contiguous()
        for name, task in model.tasks.items()
        if task.decodes_with_head
        for key, tensor in model.heads[name].state_dict().items()
    }
    if tensors:
        with atomic_file(checkpoint / DECODE_HEADS_FILE) as tmp:
            save_file(tensors, str(tmp))


def _write_files(model: MultiTaskModel, checkpoint: Path, quantize: str | None, agreement=None, sentences=()) -> dict:
    """Writes and checks each file; returns what the note says about them."""
    files = {}
    with atomic_file(checkpoint / ONNX_FILE) as tmp:
        _export_fp32(model, tmp)
        fused = _optimize_graph(tmp, model)
        differences = _max_differences(tmp, model)
        worst = max(differences.values())
        if worst > FP32_TOLERANCE:
            raise MtstError(f"ONNX logits differ from PyTorch by {worst:.2g} (tolerance {FP32_TOLERANCE}); not written")
    files[ONNX_FILE] = {"quantization": None, "fused_operators": fused, "max_abs_logit_difference": differences}
    _write_decode_heads(model, checkpoint)
    if quantize == "int8":
        with atomic_file(checkpoint / INT8_FILE) as tmp:
            kept = _int8(checkpoint, tmp, agreement, sentences)
            # int8 logits cannot match float32 closely; the check is shapes and finite values, the
            # differences are recorded, and accuracy is measured on real data (benchmarks/onnx_parity.py).
            differences = _max_differences(tmp, model)
        files[INT8_FILE] = {
            "quantization": "dynamic int8 (onnxruntime quantize_dynamic, QInt8 weights) of the optimized graph",
            **kept,
            "max_abs_logit_difference": differences,
        }
    return files


def _previous_files(note_path: Path) -> dict:
    """What an earlier export wrote (an int8 file stays valid when only float32 is exported again)."""
    try:
        return json.loads(note_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def export_onnx(
    checkpoint: str | Path, quantize: str | None = None, agreement: AgreementSettings | None = None
) -> dict:
    """Writes model.onnx (and model.int8.onnx) into the checkpoint folder atomically; returns the note.

    With `agreement`, the int8 graph keeps in float32 the smallest node list found that agrees with the
    float32 graph on the data folder's dev sentences (mtst.export.agreement)."""
    if quantize not in (None, *QUANTIZATIONS):
        raise MtstError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    if agreement is not None and quantize != "int8":
        raise MtstError("--agreement-data applies to --quantize int8 only")
    checkpoint = Path(checkpoint)
    sentences = agreement_sentences(agreement) if agreement is not None else ()  # a bad data folder stops here
    model = MultiTaskModel.from_pretrained(checkpoint, device="cpu")
    clashes = sorted(set(model.tasks) & (set(INPUT_NAMES) | {WORD_IDS}))
    if clashes:
        raise MtstError(f"task name {clashes[0]!r} is also an input name of the ONNX graph; rename the task")
    note_path = checkpoint / EXPORT_NOTE
    try:
        files = {**_previous_files(note_path), **_write_files(model, checkpoint, quantize, agreement, sentences)}
        note = {
            "format": "onnx",
            "opset": OPSET,
            "exporter": "torch.onnx.export(dynamo=True)",
            "torch": torch.__version__.split("+")[0],
            "onnxruntime": onnxruntime.__version__,
            "inputs": {name: "int64 [batch, sequence]" for name in graph_inputs(model.tasks.values())},
            "outputs": {name: task.OUTPUT_SHAPE for name, task in model.tasks.items()},
            "files": files,
        }
        write_json_atomic(note_path, note, indent=2)
    except OSError as error:
        raise MtstError(f"{checkpoint}: cannot write the ONNX export ({error.strerror or error})") from None
    return note
