"""Dynamic int8 quantization of an exported graph, with chosen nodes kept in float32.

The quantizable nodes (the operator types onnxruntime's dynamic quantizer rewrites: MatMul, Gather, ...) are
grouped by the part of the model they belong to: `heads`, `embeddings`, `layer.N` (encoder block N) or
`other`. The group comes from the module path the exporter writes into each node's metadata
(`pkg.torch.onnx.name_scopes`) and from the initializer names the node reads; the metadata is needed
because the exporter folds a Linear's transposed weight into a new initializer named `val_N`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

from mtst.errors import MtstError

try:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry
except ImportError:  # the optional `export` extra
    raise MtstError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'mtst[export]'") from None

HEADS, EMBEDDINGS, OTHER = "heads", "embeddings", "other"
_LAYER = re.compile(r"\.layers?\.(\d+)(?:\.|$|')")
SCOPES = "pkg.torch.onnx.name_scopes"


@contextlib.contextmanager
def quieter(name: str | None):
    """Only errors from the logger `name` (None: the root logger) while inside; its level is restored after."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _group(where: str) -> str:
    """The group of a node whose module path and initializer names are `where`."""
    if "model.heads." in where:
        return HEADS
    if layer := _LAYER.search(where):
        return f"layer.{int(layer.group(1))}"
    return EMBEDDINGS if "embeddings" in where else OTHER


def _group_key(name: str) -> tuple:
    """Embeddings first, the layers in depth order, then other and heads: the order of the graph."""
    order = {EMBEDDINGS: (0, 0), OTHER: (2, 0), HEADS: (3, 0)}
    return order.get(name) or (1, int(name.split(".")[1]))


def node_groups(path: Path) -> dict[str, list[str]]:
    """Group -> the names of its quantizable nodes, in graph order; groups ordered embeddings, layers, other, heads."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    groups: dict[str, list[str]] = {}
    for node in graph.node:
        reads = [name for name in node.input if name in initializers]
        # Only the nodes the quantizer rewrites count, plus any that multiply by a head's weights (a Gemm).
        if node.op_type not in IntegerOpsRegistry and not any(name.startswith("model.heads.") for name in reads):
            continue
        scopes = next((prop.value for prop in node.metadata_props if prop.key == SCOPES), "")
        groups.setdefault(_group(" ".join([scopes, *reads])), []).append(node.name)
    return {name: groups[name] for name in sorted(groups, key=_group_key)}


def quantize_int8(source: Path, target: Path, float_nodes: list[str]) -> None:
    """Dynamic int8 quantization (QInt8 weights, activations quantized on the fly) of every node but `float_nodes`."""
    # quantize_dynamic logs advice about optional pre-processing through the root logger; keep our output clean.
    with quieter(None):
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, nodes_to_exclude=list(float_nodes))
