"""Refining the chosen float32 blocks into sub-modules: the order of the tries and the greedy removals."""

import random
from pathlib import Path

import pytest

from mtst.export import agreement
from mtst.export.quantize import HEADS
from mtst.export.refine import split_blocks, trial_order

KINDS = ("attention.self.query", "intermediate.dense", "output.dense")  # graph order within a block


def _blocks(layers: int) -> dict[str, dict[str, list[str]]]:
    """Each block's units, each one node named after the unit."""
    return {f"layer.{n}": {f"layer.{n}.{kind}": [f"layer.{n}.{kind}"] for kind in KINDS} for n in range(layers)}


class NodeScorer:
    """Agreement 1 less `floor` less the penalty of every quantized node (any node not kept float32)."""

    def __init__(self, penalties: dict[str, float], floor: float):
        self.penalties, self.floor, self.kept = penalties, floor, None

    def score(self, path):
        lost = sum(penalty for node, penalty in self.penalties.items() if node not in self.kept)
        return {"intent": round(1.0 - self.floor - lost, 6), "slots": 1.0}


def _fake(monkeypatch, penalties: dict[str, float], layers: int = 2, floor: float = 0.0) -> NodeScorer:
    blocks = _blocks(layers)
    groups = {"embeddings": ["embeddings"]}
    groups |= {block: [node for unit in units.values() for node in unit] for block, units in blocks.items()}
    groups[HEADS] = [HEADS]
    scorer = NodeScorer(penalties, floor)
    monkeypatch.setattr(agreement, "node_groups", lambda path: dict(groups))
    monkeypatch.setattr(agreement, "block_units", lambda path: blocks)
    monkeypatch.setattr(agreement, "quantize_int8", lambda source, target, nodes: setattr(scorer, "kept", nodes))
    return scorer


def test_feed_forward_units_are_tried_first_and_the_last_added_block_first():
    order = trial_order([HEADS, "layer.1", "layer.0", "embeddings"], _blocks(3))
    assert order == [
        "layer.0.intermediate.dense",
        "layer.1.intermediate.dense",
        "layer.0.output.dense",
        "layer.1.output.dense",
        "layer.0.attention.self.query",
        "layer.1.attention.self.query",
    ]  # layer.2 was not chosen, the heads and embeddings are never split


def test_only_blocks_of_several_units_are_split():
    blocks = {"layer.0": {"layer.0.rest": ["a", "b"]}, "layer.1": _blocks(2)["layer.1"]}
    assert split_blocks([HEADS, "layer.0", "layer.1"], blocks) == [HEADS, "layer.0", *blocks["layer.1"]]
    assert trial_order([HEADS, "layer.0", "layer.1"], blocks) == trial_order([HEADS, "layer.1"], blocks)


PENALTIES = {
    HEADS: 0.5,
    "embeddings": 0.01,
    "layer.0.attention.self.query": 0.025,
    "layer.0.intermediate.dense": 0.0,
    "layer.0.output.dense": 0.03,
    "layer.1.attention.self.query": 0.0,
    "layer.1.intermediate.dense": 0.04,
    "layer.1.output.dense": 0.0,
}


def test_refinement_quantizes_the_units_that_keep_the_target(monkeypatch):
    scorer = _fake(monkeypatch, PENALTIES)
    best, trials = agreement.choose_float_nodes(Path("in"), Path("out"), scorer, 0.97)
    # The group search: heads, three singles, then layer.0 + layer.1 (0.99); then one trial per unit.
    assert trials[4].groups == [HEADS, "layer.0", "layer.1"] and trials[4].worst == 0.99
    assert len(trials) == 5 + 6
    units = split_blocks(trials[4].groups, _blocks(2))
    assert trials[5].groups == [name for name in units if name != "layer.1.intermediate.dense"]  # costs 0.04: kept
    assert trials[6].groups == [name for name in units if name != "layer.0.intermediate.dense"]  # free: quantized
    # Kept float32: the units whose quantization would cost more than the 0.02 of margin left.
    kept = ["layer.0.attention.self.query", "layer.0.output.dense", "layer.1.intermediate.dense"]
    assert best.groups == [HEADS, *kept] and best.nodes == [HEADS, *kept] and best.worst == 0.99
    assert sorted(scorer.kept) == sorted(best.nodes)  # the file left on disk is the chosen one


def test_no_refine_keeps_the_group_search_choice(monkeypatch):
    scorer = _fake(monkeypatch, PENALTIES)
    best, trials = agreement.choose_float_nodes(Path("in"), Path("out"), scorer, 0.97, refine=False)
    assert best.groups == [HEADS, "layer.0", "layer.1"] and len(trials) == 5


def test_an_unreached_target_is_not_refined(monkeypatch):
    scorer = _fake(monkeypatch, PENALTIES, floor=0.01)  # all float32 agrees 0.99 at best
    best, trials = agreement.choose_float_nodes(Path("in"), Path("out"), scorer, 0.995)
    assert best.groups == [HEADS, "layer.0", "layer.1", "embeddings"] and len(trials) == 6


@pytest.mark.parametrize("seed", range(20))
def test_refinement_never_fails_the_goal_nor_keeps_more_than_the_group_search(monkeypatch, seed):
    draw = random.Random(seed)
    nodes = [HEADS, "embeddings", *(unit for units in _blocks(3).values() for unit in units)]
    penalties = {node: round(draw.choice([0.0, 0.0, 0.005, 0.01, 0.03]), 3) for node in nodes}
    goal = draw.choice([0.9, 0.95, 0.98, 0.99])
    scorer = _fake(monkeypatch, penalties, layers=3)
    coarse, _ = agreement.choose_float_nodes(Path("in"), Path("out"), scorer, goal, refine=False)
    best, _ = agreement.choose_float_nodes(Path("in"), Path("out"), scorer, goal)
    assert set(best.nodes) <= set(coarse.nodes)
    assert best.worst >= goal or (best.nodes == coarse.nodes and coarse.worst < goal)
    assert sorted(scorer.kept) == sorted(best.nodes)
