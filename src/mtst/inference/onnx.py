"""Runs a checkpoint's exported ONNX graph with onnxruntime on CPU, behind the interface `run_model` uses.

Tokenizer, tasks, labels and max_length come from the checkpoint's config.json and tokenizer files, so
ONNX inference never builds the torch encoder; besides the graph it reads only the heads of kinds whose
decoding needs their trained weights (`decodes_with_head`: a CRF's transitions), from onnx_heads.safetensors
(written by the export; model.safetensors for older exports), so an ONNX-only deployment needs no
model.safetensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from mtst.errors import CheckpointError, MtstError
from mtst.model.multitask import WEIGHTS_FILE, ModelOutput, read_checkpoint

try:
    import onnxruntime as ort
except ImportError:  # the optional `export` extra
    raise MtstError("the onnx backend needs onnxruntime: pip install 'mtst[export]'") from None

ONNX_FILE, INT8_FILE, EXPORT_NOTE = "model.onnx", "model.int8.onnx", "onnx_export.json"
# The heads whose decoding reads trained weights (a CRF's transitions), written by the export so that an
# ONNX-only folder needs no model.safetensors.
DECODE_HEADS_FILE = "onnx_heads.safetensors"
INPUT_NAMES = ("input_ids", "attention_mask")
# A third input, only in the graph of a model whose token task pools sub-tokens (Task.needs_word_ids).
WORD_IDS = "word_ids"


def graph_inputs(tasks) -> tuple[str, ...]:
    """The graph's inputs for these tasks: word_ids only when some token task pools sub-tokens."""
    return INPUT_NAMES + ((WORD_IDS,) if any(task.needs_word_ids for task in tasks) else ())


def onnx_path(directory: str | Path, quantized: bool = False) -> Path:
    return Path(directory) / (INT8_FILE if quantized else ONNX_FILE)


def open_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session; `threads` sets the intra-op pool (None: onnxruntime's default, one per core)."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graph is one chain; a second pool would only compete for cores
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own exception types share no base below Exception
        raise CheckpointError(f"{path}: cannot load ONNX model ({str(error).splitlines()[0]})") from None


class OnnxModel:
    """The exported graph with the MultiTaskModel surface that run_model needs: tasks, tokenizer,
    max_length and `forward(input_ids, attention_mask, labels, word_ids) -> ModelOutput` (logits only, no losses)."""

    def __init__(self, session: ort.InferenceSession, tokenizer, tasks, max_length: int, heads: dict):
        self.session = session
        self.tokenizer = tokenizer
        self.tasks = {task.name: task for task in tasks}
        self.max_length = max_length
        self.heads = heads

    @classmethod
    def from_checkpoint(cls, directory: str | Path, quantized: bool = False, threads: int | None = None) -> OnnxModel:
        directory = Path(directory)
        spec = read_checkpoint(directory)
        path = onnx_path(directory, quantized)
        if not path.is_file():
            flag = " --quantize int8" if quantized else ""
            raise CheckpointError(f"{path}: no ONNX export; run `mtst export {directory} --format onnx{flag}` first")
        session = open_session(path, threads)
        inputs = [node.name for node in session.get_inputs()]
        outputs = sorted(node.name for node in session.get_outputs())
        if inputs != list(graph_inputs(spec.tasks)) or outputs != sorted(task.name for task in spec.tasks):
            raise CheckpointError(
                f"{path}: graph inputs {inputs} / outputs {outputs} do not match the tasks in config.json; "
                "run `mtst export` again"
            )
        _check_output_shapes(session, spec.tasks, path)
        return cls(session, spec.tokenizer, spec.tasks, spec.max_length, load_heads(directory, spec))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: dict | None = None, word_ids=None
    ) -> ModelOutput:
        names = list(self.tasks)
        feeds = {"input_ids": input_ids.long().numpy(), "attention_mask": attention_mask.long().numpy()}
        if WORD_IDS in graph_inputs(self.tasks.values()):
            feeds[WORD_IDS] = word_ids.long().numpy()
        outputs = self.session.run(names, feeds)
        logits = {name: torch.from_numpy(value) for name, value in zip(names, outputs, strict=True)}
        return ModelOutput(logits, {}, None)


def _check_output_shapes(session: ort.InferenceSession, tasks, path: Path) -> None:
    """Each output has its task's rank and one score per label: a graph exported from another checkpoint with
    the same task names would decode wrong labels, or index past the label list."""
    by_name = {task.name: task for task in tasks}
    for node in session.get_outputs():
        task = by_name[node.name]
        rank, width = task.OUTPUT_RANK, (node.shape[-1] if node.shape else None)
        if len(node.shape or ()) != rank or (isinstance(width, int) and width != len(task.labels)):
            raise CheckpointError(
                f"{path}: output {node.name} gives {width} scores per row (shape {node.shape}) but config.json "
                f"lists {len(task.labels)} labels; this graph belongs to another checkpoint: run `mtst export` again"
            )


def load_heads(directory: Path, spec) -> dict[str, torch.nn.Module]:
    """Each task's head as `decode` takes it: trained (read tensor by tensor from model.safetensors) where the
    kind decodes with it, freshly built otherwise (its logits come from the graph; decode reads nothing of it)."""
    heads = {task.name: task.head(spec.encoder_config).eval() for task in spec.tasks}
    trained = {task.name for task in spec.tasks if task.decodes_with_head}
    if not trained:
        return heads
    path = directory / DECODE_HEADS_FILE
    if not path.is_file():  # exported before the export wrote it: the full weights hold the heads too
        path = directory / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="pt") as handle:
            for name in trained:
                head = heads[name]
                head.load_state_dict({key: handle.get_tensor(f"heads.{name}.{key}") for key in head.state_dict()})
    except (OSError, SafetensorError, RuntimeError) as error:
        raise CheckpointError(f"{path}: cannot read the heads ({str(error).splitlines()[0]})") from None
    return heads
