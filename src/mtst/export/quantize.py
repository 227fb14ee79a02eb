"""Dynamic int8 quantization of an exported graph, with chosen nodes kept in float32.

The quantizable nodes (the operator types onnxruntime's dynamic quantizer rewrites: MatMul, Gather, ...) are
grouped by the part of the model they belong to: `heads`, `embeddings`, `layer.N` (encoder block N) or
`other`. The group comes from the module path the exporter writes into each node's metadata
(`pkg.torch.onnx.name_scopes`) and from the initializer names the node reads; the metadata is needed
because the exporter folds a Linear's transposed weight into a new initializer named `val_N`. The same path
splits an encoder block into units, its sub-modules (`layer.N.attention.self.query`, `layer.N.intermediate.dense`,
...; `layer.N.rest` for nodes whose sub-module cannot be told), which mtst.export.refine keeps float32 one by one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from mtst.errors import MtstError

try:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry
except ImportError:  # the optional `export` extra
    raise MtstError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'mtst[export]'") from None

HEADS, EMBEDDINGS, OTHER = "heads", "embeddings", "other"
_LAYER = re.compile(r"\.layers?\.(\d+)(?:\.|$|')")
_BELOW_LAYER = re.compile(r"\.layers?\.\d+\.([\w.]+)")
UNSCOPED = "rest"  # the unit of a block's nodes whose sub-module cannot be told
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


def _quantizable(path: Path) -> Iterator[tuple[str, str, str, list[str]]]:
    """(name, group, module scopes, initializers read) of each node the quantizer may rewrite, in graph order."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    for node in graph.node:
        reads = [name for name in node.input if name in initializers]
        # Only the nodes the quantizer rewrites count, plus any that multiply by a head's weights (a Gemm).
        if node.op_type not in IntegerOpsRegistry and not any(name.startswith("model.heads.") for name in reads):
            continue
        scopes = next((prop.value for prop in node.metadata_props if prop.key == SCOPES), "")
        yield node.name, _group(" ".join([scopes, *reads])), scopes, reads


def node_groups(path: Path) -> dict[str, list[str]]:
    """Group -> the names of its quantizable nodes, in graph order; groups ordered embeddings, layers, other, heads."""
    groups: dict[str, list[str]] = {}
    for name, group, _, _ in _quantizable(path):
        groups.setdefault(group, []).append(name)
    return {name: groups[name] for name in sorted(groups, key=_group_key)}


def _sub_module(scopes: str, reads: list[str]) -> str:
    """The module path below the node's encoder block (`attention.self.query`); UNSCOPED where it cannot be told."""
    # The scopes nest, so the longest is the deepest; a weight's module is its name less the parameter's.
    paths = [max(_BELOW_LAYER.findall(scopes), key=len, default="")]
    paths += [found.group(1).rpartition(".")[0] for name in reads if (found := _BELOW_LAYER.search(name))]
    parts = [path.split(".") for path in paths if path]
    # A node fused from several sub-modules (one reading query, key and value) belongs to what they share.
    return ".".join(os.path.commonprefix(parts)) or UNSCOPED


def block_units(path: Path) -> dict[str, dict[str, list[str]]]:
    """Encoder block (`layer.N`) -> unit (`layer.N.intermediate.dense`) -> its node names, in graph order."""
    blocks: dict[str, dict[str, list[str]]] = {}
    for name, block, scopes, reads in _quantizable(path):
        if block.startswith("layer."):
            unit = f"{block}.{_sub_module(scopes, reads)}"
            blocks.setdefault(block, {}).setdefault(unit, []).append(name)
    return blocks


def quantize_int8(source: Path, target: Path, float_nodes: list[str]) -> None:
    """Dynamic int8 quantization (QInt8 weights, activations quantized on the fly) of every node but `float_nodes`."""
    # quantize_dynamic logs advice about optional pre-processing through the root logger; keep our output clean.
    with quieter(None):
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, nodes_to_exclude=list(float_nodes))
