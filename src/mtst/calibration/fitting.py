"""`mtst calibrate`'s work: fit each head's temperature, then the entity thresholds on the tempered scores,
and add the intent fallback settings given; everything set on the model's tasks, and reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mtst.calibration.temperature import fit_temperatures
from mtst.calibration.thresholds import apply_thresholds, fit_entity_thresholds
from mtst.data import Corpus, Splits
from mtst.data.example import Example
from mtst.inference.runner import run_model
from mtst.model.card import CardFacts


@dataclass
class CalibrationReport:
    split: str
    temperatures: dict[str, dict] = field(default_factory=dict)  # by task: temperature, ECE before / after
    entity_thresholds: dict[str, dict] = field(default_factory=dict)  # by task: thresholds, F1 before / after

    @property
    def card(self) -> CardFacts:
        return CardFacts(calibration=self.temperatures, calibrated_on=self.split)

    def as_json(self) -> dict:
        return {"split": self.split, "temperature": self.temperatures, "entity_thresholds": self.entity_thresholds}

    def lines(self) -> list[str]:
        lines = [f"fitted on {self.split}"]
        for name, fit in self.temperatures.items():
            ece = f"ECE {fit['ece_uncalibrated']:.4f} -> {fit['ece']:.4f}"
            lines.append(f"{name}: temperature {fit['temperature']}; {ece}")
        for name, picked in self.entity_thresholds.items():
            chosen = ", ".join(f"{kind} {value}" for kind, value in picked["thresholds"].items()) or "none"
            lines.append(f"{name}: entity thresholds {chosen}; F1 {picked['f1_before']:.4f} -> {picked['f1']:.4f}")
        return lines


def calibrate_checkpoint(model, examples: Sequence[Example], settings: dict, split: str = "dev") -> CalibrationReport:
    """Sets on `model`'s tasks the temperatures and entity thresholds fitted on `examples`, then `settings`."""
    corpus = Corpus(list(model.tasks), Splits(train=[], dev=list(examples), test=[]))
    report = CalibrationReport(split, temperatures=fit_temperatures(model, [corpus], "dev"))
    predictions, _ = run_model(model, examples)
    for name, task in model.tasks.items():
        if "entity_thresholds" not in type(task).model_fields:  # the kinds that give entities
            continue
        rows = [i for i, example in enumerate(examples) if task.field in example.annotations]
        gold = [examples[i].annotations[task.field] for i in rows]
        fitted = fit_entity_thresholds(gold, [predictions[i][name] for i in rows])
        report.entity_thresholds[name] = fitted
        model.tasks[name] = task.with_thresholds({"entity_thresholds": fitted["thresholds"]})
    apply_thresholds(model.tasks, settings)
    return report
