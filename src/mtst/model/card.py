"""The README.md of a checkpoint folder: a model card in the Hugging Face layout (YAML front matter, then the
model, its tasks and labels, data, training settings, metrics, calibration, intended use and limits).

Written from what the run knows when it writes: the checkpoint's own config.json always; the dev metrics of
the saved epoch and the training settings when training saves it; the test metrics once the run has measured
them. Nothing is guessed: what is not known is said to be unknown.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import yaml

from mtst.model.checkpoint import CheckpointConfig

CARD_FILE, FACTS_FILE = "README.md", "model_card.json"
HUB_IDS = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}  # the packaged default, on the Hub
# The Hub's task types for the model-index (its widget and search read them), by mtst task kind.
HUB_TASK_TYPES = {
    "sentence": "text-classification",
    "multilabel": "text-classification",
    "token": "token-classification",
}
LABELS_SHOWN = 40  # a longer label list is cut in the card (config.json has them all)


@dataclass
class CardFacts:
    """What a run knows about the checkpoint beyond its config.json."""

    epoch: int | None = None
    dev: dict[str, float] = field(default_factory=dict)  # headline metrics (`intent.accuracy`, `slots.f1`, ...)
    test: dict[str, float] = field(default_factory=dict)
    train_examples: int | None = None
    training: dict | None = None  # the run's config as config.yaml holds it
    # By task: temperature and expected calibration error before / after, on the split it was fitted on.
    calibration: dict[str, dict] = field(default_factory=dict)
    calibrated_on: str | None = None  # which split that was


def card_files(config: CheckpointConfig, facts: CardFacts) -> dict[str, str]:
    """README.md, and the facts it was written from (so a later rewrite, e.g. by `mtst calibrate`, keeps them)."""
    return {CARD_FILE: render_model_card(config, facts), FACTS_FILE: json.dumps(_finite(asdict(facts)), indent=2)}


def read_card_facts(directory: str | Path) -> CardFacts:
    """The facts a checkpoint's card was written from; none for a checkpoint from before cards, or a damaged file
    (which costs the card its history, never the checkpoint its use)."""
    path = Path(directory) / FACTS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return CardFacts(**{f.name: raw[f.name] for f in fields(CardFacts) if f.name in raw})
    except (OSError, ValueError, TypeError, AttributeError):
        return CardFacts()


def updated(facts: CardFacts, news: CardFacts) -> CardFacts:
    """`facts` with every fact `news` knows (is not empty in it) replaced."""
    return replace(facts, **{f.name: getattr(news, f.name) for f in fields(news) if getattr(news, f.name)})


def _finite(value):
    """NaN and infinity as null: the facts file stays strict JSON whatever a metric turned out to be."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return [_finite(item) for item in value] if isinstance(value, list | tuple) else value


def render_model_card(config: CheckpointConfig, facts: CardFacts) -> str:
    sections = [
        _front_matter(config, facts),
        f"# mtst model: {', '.join(task.name for task in config.tasks)}",
        _model(config),
        _tasks(config),
        _data(config, facts),
        _training(facts),
        _evaluation(facts),
        _calibration(config, facts),
        USE_AND_LIMITS,
    ]
    return "\n\n".join(section.strip() for section in sections) + "\n"


def _front_matter(config: CheckpointConfig, facts: CardFacts) -> str:
    meta = {"library_name": "mtst", "tags": ["mtst", "multi-task", *sorted({t.type for t in config.tasks})]}
    name = config.encoder.name
    if name and not _is_local(name):
        meta["base_model"] = HUB_IDS.get(name, name)
    if facts.test:
        meta["model-index"] = [{"name": "mtst", "results": _results(config, facts.test)}]
    return f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---"


def _results(config: CheckpointConfig, test: dict[str, float]) -> list[dict]:
    results = []
    for task in config.tasks:
        key = f"{task.name}.{task.MAIN_METRIC}"
        if key in test:
            metric = {"type": task.MAIN_METRIC, "value": round(test[key], 4), "name": f"test {task.MAIN_METRIC}"}
            kind = HUB_TASK_TYPES.get(task.type, task.type)
            results.append({"task": {"type": kind, "name": task.name}, "metrics": [metric]})
    return results


def _is_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _encoder_name(name: str | None) -> str:
    if name is None:
        return "unknown (written by an older mtst)"
    # A local folder by its name only: the card travels with the model, the machine's file layout need not.
    return f"the local folder {Path(name).name}" if _is_local(name) else HUB_IDS.get(name, name)


def _model(config: CheckpointConfig) -> str:
    encoder = config.encoder
    return f"""## Model

One shared encoder, `{_encoder_name(encoder.name)}`, read up to {encoder.max_length}
sub-tokens with `{encoder.pooling}` pooling for the sentence embedding, feeds one head per task in a single pass.
Load it with mtst (`Predictor.from_checkpoint(FOLDER)`, `mtst predict FOLDER ...`, `mtst serve FOLDER`)."""


def _tasks(config: CheckpointConfig) -> str:
    rows = ["| task | kind | reads | labels |", "|---|---|---|---|"]
    for task in config.tasks:
        shown = ", ".join(f"`{label}`".replace("|", "\\|") for label in task.labels[:LABELS_SHOWN])
        more = f" and {len(task.labels) - LABELS_SHOWN} more" if len(task.labels) > LABELS_SHOWN else ""
        rows.append(f"| {task.name} | {task.type} | `{task.field}` | {len(task.labels)}: {shown}{more} |")
    return "## Tasks and labels\n\n" + "\n".join(rows)


def _data(config: CheckpointConfig, facts: CardFacts) -> str:
    data = config.data
    if data is None:
        return "## Training data\n\nNot recorded (a checkpoint written by an older mtst)."
    where = Path(data.dir).name if data.dir else "not recorded"
    lines = [f"- dataset folder: `{where}` (format `{data.format}`)"]
    lines.append(f"- splits: train `{data.train}`, dev `{data.dev}`, test `{data.test}`")
    if facts.train_examples is not None:
        lines.append(f"- train examples: {facts.train_examples}")
    for task in config.tasks:
        if task.data is not None and task.data.dir:
            lines.append(f"- task `{task.name}` has its own corpus: `{Path(task.data.dir).name}`")
    return "## Training data\n\n" + "\n".join(lines)


def _training(facts: CardFacts) -> str:
    if not facts.training:
        return "## Training configuration\n\nNot recorded with this checkpoint."
    train = facts.training.get("train", {})
    keys = ("epochs", "batch_size", "encoder_lr", "head_lr", "seed", "max_train_examples")
    lines = [f"- {key}: {train[key]}" for key in keys if key in train]
    lines.append(
        f"- strategy: `{facts.training.get('strategy')}`; loss weighting: "
        f"`{facts.training.get('loss', {}).get('weighting')}`"
    )
    if facts.epoch is not None:
        lines.append(f"- saved after epoch {facts.epoch} (the best dev score so far)")
    return "## Training configuration\n\n" + "\n".join(lines)


def _evaluation(facts: CardFacts) -> str:
    if not facts.dev and not facts.test:
        return "## Evaluation\n\nNo metrics recorded with this checkpoint (`mtst evaluate FOLDER --data-dir D`)."
    names = [name for name in {**facts.dev, **facts.test} if not name.endswith("loss")]
    rows = ["| metric | dev | test |", "|---|---|---|"]
    rows += [f"| {name} | {_number(facts.dev.get(name))} | {_number(facts.test.get(name))} |" for name in names]
    note = "" if facts.test else "\n\nTest metrics: not measured yet (training writes them once it ends)."
    return "## Evaluation\n\n" + "\n".join(rows) + note


def _number(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def _calibration(config: CheckpointConfig, facts: CardFacts) -> str:
    lines = []
    for task in config.tasks:
        if task.temperature != 1.0:
            fitted = facts.calibration.get(task.name)
            ece = f"; ECE {fitted['ece_uncalibrated']:.4f} -> {fitted['ece']:.4f}" if fitted else ""
            where = f" on {facts.calibrated_on}" if fitted and facts.calibrated_on else ""
            lines.append(f"- {task.name}: temperature {task.temperature}{ece}{where}")
        lines += [f"- {task.name}: {rule}" for rule in task.confidence_rules()]
    if not lines:
        return (
            "## Calibration\n\nNone: scores are the heads' raw softmax (sigmoid for multilabel) probabilities; "
            "fine-tuned transformers are over-confident, so read a score as a ranking, not a probability."
        )
    return "## Calibration\n\n" + "\n".join(lines)


USE_AND_LIMITS = """## Intended use

Intent or topic labels and slots or named entities for short texts like those of the training data, e.g. as
the NLU of an assistant (`mtst serve` also answers Rasa's `POST /model/parse`).

## Limitations

- It knows only the labels above; a text about anything else still gets one of them (set a threshold with a
  fallback label where that matters).
- Trained on one dataset: expect lower scores on other domains, spellings, languages or text lengths.
- A text longer than the encoder's window is read in overlapping windows; its sentence label comes from the
  first window.
- The metrics above are on the dataset's own dev and test splits, not on your traffic: measure on your data."""
