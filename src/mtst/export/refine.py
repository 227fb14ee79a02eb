"""Refines a float32 list of whole encoder blocks down to the sub-modules of them that need float32.

The group search of mtst.export.agreement keeps whole encoder blocks in float32, which is coarse: a strict
target on SNIPS kept 5 of 6 blocks and int8 lost most of its speed, though a block's error often comes from a
few of its sub-modules. Once the search has a list reaching the target, each block in it is split into its
units (mtst.export.quantize.block_units: `layer.N.attention.self.query`, `layer.N.intermediate.dense`, ...) and
the units are quantized one at a time, each removal kept when every task still reaches the target. The list
only shrinks and only ever to one that was measured reaching the target, so the result keeps no more nodes
than the search chose, at the same agreement, and keeps more of int8's speed.
"""

from __future__ import annotations

from collections.abc import Callable

# Tried first: the feed-forward pair carries two thirds of a block's MatMul work (2 x 4h^2 of 12h^2 per token),
# so quantizing it saves the most time, and the first tries have the whole agreement margin to spend.
FIRST = (
    "intermediate.dense",
    "output.dense",
    "attention.output.dense",
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
)


def _splits(group: str, blocks: dict[str, dict[str, list[str]]]) -> bool:
    """Whether `group` is an encoder block of more than one unit (one unit is the block itself)."""
    return len(blocks.get(group, {})) > 1


def split_blocks(chosen: list[str], blocks: dict[str, dict[str, list[str]]]) -> list[str]:
    """`chosen` with each encoder block that splits replaced by its units, in graph order."""
    return [unit for group in chosen for unit in (blocks[group] if _splits(group, blocks) else [group])]


def _priority(unit: str, block: str) -> int:
    kind = unit.removeprefix(f"{block}.")
    return FIRST.index(kind) if kind in FIRST else len(FIRST)


def trial_order(chosen: list[str], blocks: dict[str, dict[str, list[str]]]) -> list[str]:
    """The units of the chosen blocks, the most MatMul work first; among equals, the blocks the search added
    last (the least sensitive) first."""
    units = [(unit, block) for block in reversed(chosen) if _splits(block, blocks) for unit in blocks[block]]
    return [unit for unit, block in sorted(units, key=lambda pair: _priority(*pair))]  # a stable sort


def refine_float_groups(
    chosen: list[str], blocks: dict[str, dict[str, list[str]]], measure: Callable[[list[str]], float], goal: float
) -> list[str]:
    """The float32 list left after trying to quantize each unit of `chosen`'s blocks; `measure(groups)` is the
    worst task's agreement with `groups` in float32, and a unit goes when it stays at least `goal`."""
    kept = split_blocks(chosen, blocks)
    for unit in trial_order(chosen, blocks):
        fewer = [name for name in kept if name != unit]
        if measure(fewer) >= goal:
            kept = fewer
    return kept
