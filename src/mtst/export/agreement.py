"""Chooses which nodes of the int8 graph stay float32 so that it agrees with the float32 graph on real sentences.

Agreement is measured per task on a data folder's dev sentences, the float32 graph's predictions taken as
the gold labels: label agreement (the task's accuracy) for label tasks, entity F1 (seqeval) for token tasks.
The target is reached when every task's agreement is at least the target. The heads always stay float32;
when that is not enough, a sensitivity pass quantizes once per group of nodes (an encoder block, the
embeddings, the rest; see mtst.export.quantize) with that group kept float32 too, ranks the groups by the
agreement gained, and adds them greedily in that order until the target is reached. Whole blocks are coarse
(a strict target can keep most of them float32, and int8 then loses most of its speed), so a refinement pass
(mtst.export.refine; `refine=False` skips it) then quantizes the chosen blocks' sub-modules one at a time,
keeping each that leaves the target reached: finer than whole blocks, it keeps more of int8's speed at the
same agreement. Of every list measured, the smallest (fewest nodes) that reaches the target is kept; when none
does (a target of 1.0 that even an all-float32 graph misses by a rounding), the best found is kept and a warning
says so. The note's trials show what each group and each unit costs.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path

from mtst.data.formats import find_split, read_path
from mtst.errors import MtstError
from mtst.export.quantize import HEADS, block_units, node_groups, quantize_int8
from mtst.export.refine import refine_float_groups
from mtst.inference.onnx import OnnxModel, load_heads, open_session
from mtst.inference.runner import run_model
from mtst.model.multitask import read_checkpoint

logger = logging.getLogger(__name__)

DEFAULT_TARGET = 0.995  # the int8 target of issue 27: intent agreement >= 99.5 %
DEFAULT_MAX_SENTENCES = 500
SPLIT = "dev"  # chosen on dev: test stays for reporting


@dataclass(frozen=True)
class AgreementSettings:
    """`mtst export --agreement-data DIR --agreement TARGET --max-sentences N --refine/--no-refine`."""

    data_dir: Path
    target: float = DEFAULT_TARGET
    max_sentences: int = DEFAULT_MAX_SENTENCES
    refine: bool = True  # split the chosen encoder blocks into sub-modules (mtst.export.refine)

    def __post_init__(self):
        if not 0.0 <= self.target <= 1.0:
            raise MtstError(f"--agreement {self.target}: the target is a share between 0 and 1 (e.g. 0.995)")
        if self.max_sentences < 1:
            raise MtstError(f"--max-sentences {self.max_sentences}: needs at least 1 sentence")


def agreement_sentences(settings: AgreementSettings) -> tuple[list, str]:
    """The first `max_sentences` dev sentences without their labels (only the text matters), and their source."""
    path = find_split(settings.data_dir, SPLIT)
    examples = read_path(path)[: settings.max_sentences]
    return [dataclasses.replace(example, annotations={}) for example in examples], str(path)


class Scorer:
    """Predicts with a graph of the checkpoint and scores it against the float32 graph's predictions."""

    def __init__(self, checkpoint: Path, float_graph: Path, examples: list):
        self.spec = read_checkpoint(checkpoint)
        self.heads = load_heads(checkpoint, self.spec)
        self.examples = examples
        self.reference = self._predict(float_graph)
        # What agreement means per task: the task's own metric with float32's predictions as the gold labels.
        self.measures = {
            task.name: "accuracy"
            if "accuracy" in task.metrics(self.reference[task.name][:1], self.reference[task.name][:1])
            else "f1"
            for task in self.spec.tasks
        }

    def _predict(self, path: Path) -> dict[str, list]:
        spec = self.spec
        # One thread: the pass predicts a few hundred sentences per graph, and agreement does not depend on it.
        model = OnnxModel(open_session(path, threads=1), spec.tokenizer, spec.tasks, spec.max_length, self.heads)
        predictions, _ = run_model(model, self.examples)
        return {name: [task.predicted(p[name]) for p in predictions] for name, task in model.tasks.items()}

    def score(self, path: Path) -> dict[str, float]:
        """Per task: the graph's agreement with float32 (label agreement, or entity F1 for token tasks)."""
        got, scores = self._predict(path), {}
        for task in self.spec.tasks:
            reference, predicted = self.reference[task.name], got[task.name]
            if predicted == reference:  # also where neither has an entity, which seqeval scores 0
                scores[task.name] = 1.0
                continue
            scores[task.name] = float(task.metrics(reference, predicted)[self.measures[task.name]])
        return scores


@dataclass
class Trial:
    groups: list[str]
    nodes: list[str]
    scores: dict[str, float]

    @property
    def worst(self) -> float:
        return min(self.scores.values())

    def rank(self) -> tuple:
        """Higher is better: the worst task's agreement, then the mean, then fewer float32 nodes."""
        return self.worst, statistics.mean(self.scores.values()), -len(self.nodes)


def _trial(groups: dict[str, list[str]], kept: list[str], source: Path, target: Path, scorer: Scorer) -> Trial:
    nodes = [node for name in kept for node in groups[name]]
    quantize_int8(source, target, nodes)
    return Trial(kept, nodes, scorer.score(target))


def _group_search(groups: dict[str, list[str]], source: Path, target: Path, scorer: Scorer, goal: float) -> list[Trial]:
    """The trials of the heads alone, then of each group beside them, then of the greedy additions."""
    trials = [_trial(groups, [HEADS], source, target, scorer)]
    if trials[0].worst >= goal:
        return trials
    singles = [_trial(groups, [HEADS, name], source, target, scorer) for name in groups if name != HEADS]
    trials += singles
    # Every group in the order of what it gained alone: one that gained nothing alone may still help once
    # the groups before it are float32 (the error it adds was hidden by theirs).
    ranked = [t.groups[1] for t in sorted(singles, key=Trial.rank, reverse=True)]
    kept = [HEADS]
    for name in ranked:
        kept = [*kept, name]
        if len(kept) > 2:  # two groups were measured in the sensitivity pass already
            trials.append(_trial(groups, kept, source, target, scorer))
        if any(t.groups == kept and t.worst >= goal for t in trials):
            break
    return trials


def _best(trials: list[Trial], goal: float) -> Trial:
    """The trial with the fewest float32 nodes reaching `goal`, or the best-ranked where none does."""
    reaching = [t for t in trials if t.worst >= goal]
    if reaching:
        return min(reaching, key=lambda t: (len(t.nodes), -t.worst))
    return max(trials, key=Trial.rank)


def _refine(
    groups: dict[str, list[str]], best: Trial, source: Path, target: Path, scorer: Scorer, goal: float
) -> list[Trial]:
    """The trials of quantizing the sub-modules of `best`'s encoder blocks one at a time (mtst.export.refine)."""
    blocks, trials = block_units(source), []
    units = {unit: nodes for block in blocks.values() for unit, nodes in block.items()}

    def measure(kept: list[str]) -> float:
        trials.append(_trial({**groups, **units}, kept, source, target, scorer))
        return trials[-1].worst

    refine_float_groups(best.groups, blocks, measure, goal)
    return trials


def choose_float_nodes(
    source: Path, target: Path, scorer: Scorer, goal: float, refine: bool = True
) -> tuple[Trial, list[Trial]]:
    """Quantizes `source` into `target` with the smallest float32 list found reaching `goal`; returns that
    trial and every trial measured (heads only first, then one per group, then the greedy additions, then
    with `refine` the sub-modules of the chosen encoder blocks quantized one at a time)."""
    groups = node_groups(source)
    groups.setdefault(HEADS, [])
    trials = _group_search(groups, source, target, scorer, goal)
    best = _best(trials, goal)
    if refine and best.worst >= goal:
        trials += _refine(groups, best, source, target, scorer, goal)
        best = _best(trials, goal)
    if trials[-1] is not best:
        quantize_int8(source, target, best.nodes)  # the file on disk is the last trial's; write the chosen one
    return best, trials


def int8_with_agreement(checkpoint: Path, source: Path, target: Path, settings: AgreementSettings, examples, data):
    """Writes `target` (int8 of `source`) agreeing with float32 as far as the groups allow; returns its note."""
    scorer = Scorer(checkpoint, source, examples)
    best, trials = choose_float_nodes(source, target, scorer, settings.target, settings.refine)
    reached = best.worst >= settings.target
    if not reached:
        logger.warning(
            "int8 agreement %.4f is below the target %.4f even with the best float32 list found (%s); "
            "model.int8.onnx keeps that list",
            best.worst,
            settings.target,
            ", ".join(best.groups),
        )
    return {
        "float32_nodes": best.nodes,
        "float32_groups": best.groups,
        "agreement": {
            "target": settings.target,
            "reached": reached,
            "per_task": best.scores,
            "measure": {
                name: f"{metric} against the float32 graph's predictions" for name, metric in scorer.measures.items()
            },
            "sentences": len(examples),
            "data": data,
            "trials": [{"float32_groups": t.groups, "nodes": len(t.nodes), "per_task": t.scores} for t in trials],
        },
    }
