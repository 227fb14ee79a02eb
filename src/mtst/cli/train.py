"""`mtst train`, `mtst pretrain` and `mtst compare`: the commands that train."""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, get_args

import typer
from pydantic import ValidationError

from mtst.cli.common import ConfigOption, DataDirOption, app, friendly_errors, setup_logging
from mtst.config import Reporter
from mtst.errors import ConfigError, MtstError
from mtst.training.strategies import STRATEGY_SPECS


@dataclass(frozen=True)
class Setting:
    """A command-line flag and the config setting it overrides."""

    flag: str
    key: str  # dotted config path, e.g. train.epochs
    kind: type
    help: str | None = None
    with_resume: bool = False  # may be given with --resume (it names data, not a setting of the run)
    metavar: str | None = None

    @property
    def name(self) -> str:
        return self.flag.split(" ")[0].split("/")[0]

    @property
    def parameter(self) -> str:
        return self.key.rpartition(".")[2] if self.key != "encoder.name_or_path" else "encoder"


# Every flag of `mtst train`, listed once: the command's options, its overrides and --resume's check come from here.
TRAIN_SETTINGS = (
    Setting("--data-dir", "data.dir", Path, "Dataset folder (overrides the config; env MTST_DATA_DIR).", True),
    Setting("--output-dir -o", "output_dir", Path, "Folder the run writes: best/, metrics.jsonl, summary.json, ..."),
    Setting("--epochs", "train.epochs", int, "Most epochs to train (early stopping may end it sooner)."),
    Setting("--max-train-examples", "train.max_train_examples", int, "A seeded sample of N training examples."),
    Setting("--seed", "train.seed", int, "Seed of every random generator (0 to 2**32-1)."),
    Setting("--text-column", "data.text_column", str, "CSV text column (Label Studio: the `data` key)."),
    Setting("--label-column", "data.label_column", str, "CSV label column."),
    Setting("--encoder", "encoder.name_or_path", str, "Local HF encoder folder."),
    Setting("--strategy", "strategy", str, f"{', '.join(STRATEGY_SPECS)}."),
    Setting(
        "--group-by-length/--no-group-by-length", "train.group_by_length", bool, "Batches of similar-length sentences."
    ),
    Setting(
        "--report-to",
        "train.report_to",
        list[str],
        f"Experiment tracker, local files under the output folder: {', '.join(get_args(Reporter))} (repeat or"
        " join with commas), none.",
        metavar="TRACKER",
    ),
)


def with_settings(settings: tuple[Setting, ...]):
    """Adds one keyword-only option per setting to a command's signature; the command gets them as **given."""

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        extra = [
            inspect.Parameter(
                s.parameter,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[s.kind | None, typer.Option(*s.flag.split(" "), help=s.help, metavar=s.metavar)],
            )
            for s in settings
        ]
        kept = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
        command.__signature__ = signature.replace(parameters=[*kept, *extra])
        return command

    return decorate


def overrides(settings: tuple[Setting, ...], given: dict) -> dict:
    """The config overrides the given flags make (`data.dir` etc.), None for flags not given."""
    return {s.key: (str(v) if isinstance(v := given.get(s.parameter), Path) else v) for s in settings}


@app.command()
@friendly_errors
@with_settings(TRAIN_SETTINGS)
def train(
    config: ConfigOption = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue the interrupted run in this output folder.")
    ] = None,
    **given,
) -> None:
    """Train one joint model; writes best/, metrics.jsonl, curves.png, summary.json and training_state/."""
    from mtst.config import load_config
    from mtst.training.loop import train as run_training

    setup_logging()
    if resume is not None:
        clashing = [
            s.flag.split("/")[0] for s in TRAIN_SETTINGS if not s.with_resume and given.get(s.parameter) is not None
        ]
        if config is not None:
            clashing.insert(0, "--config")
        if clashing:
            raise MtstError(f"--resume continues with the run's own config.yaml; drop {', '.join(clashing)}")
        if not (resume / "config.yaml").is_file():
            raise MtstError(f"{resume}: nothing to resume (no config.yaml)")
        config, given = resume / "config.yaml", {**given, "output_dir": resume}
    settings = load_config(config, **overrides(TRAIN_SETTINGS, given))
    summary = run_training(settings, resume=resume is not None)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # in a multi-process run (torchrun, accelerate launch) the main process reports
    typer.echo(
        json.dumps(
            {"output_dir": settings.output_dir, "best_epoch": summary["best_epoch"], "test": summary["test"]}, indent=2
        )
    )


@app.command()
@friendly_errors
def pretrain(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="The encoder folder to write.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    encoder: Annotated[str | None, typer.Option("--encoder", help="Local HF encoder folder to start from.")] = None,
    extra_text: Annotated[
        Path | None, typer.Option("--extra-text", help="More unlabelled sentences, one per line.")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 5e-5,
    mlm_probability: Annotated[float, typer.Option("--mlm-probability", help="Share of sub-tokens masked.")] = 0.15,
    whole_word_mask: Annotated[
        bool, typer.Option("--whole-word-mask/--subword-mask", help="Mask whole words, or single sub-tokens.")
    ] = True,
    max_train_examples: Annotated[int | None, typer.Option("--max-train-examples")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 13,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace -o even when it is a file or a folder mtst did not write.")
    ] = False,
) -> None:
    """Task-adaptive pre-training: masked-LM training of the encoder on the config's training sentences.

    Writes an encoder folder for `mtst train --encoder DIR` (or `encoder.name_or_path`), with pretrain.json.
    """
    from mtst.config import load_config
    from mtst.training.pretrain import PretrainConfig
    from mtst.training.pretrain import pretrain as run_pretraining

    setup_logging()
    settings = load_config(
        config,
        **{
            "data.dir": str(data_dir) if data_dir else None,
            "encoder.name_or_path": encoder,
            "train.max_train_examples": max_train_examples,
            "train.seed": seed,
        },
    )
    try:
        options = PretrainConfig(
            output_dir=str(output_dir),
            extra_text=str(extra_text) if extra_text else None,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            mlm_probability=mlm_probability,
            whole_word_mask=whole_word_mask,
            max_length=settings.encoder.max_length,
            seed=seed,
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    note = run_pretraining(settings, options, overwrite)
    loss = note["dev_masked_lm_loss"]
    typer.echo(json.dumps({"output_dir": str(output_dir), "dev_masked_lm_loss": loss}, indent=2))


@app.command()
@friendly_errors
def compare(
    strategies: Annotated[
        str, typer.Option("--strategies", help="Comma-separated: full,frozen,discriminative,freeze-lower:N,...")
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o")] = Path("runs/compare"),
    epochs: Annotated[int | None, typer.Option("--epochs")] = None,
    max_train_examples: Annotated[int | None, typer.Option("--max-train-examples")] = None,
    sentences: Annotated[
        Path | None, typer.Option("--sentences", help="Held-out sentences to predict, one per line.")
    ] = None,
) -> None:
    """Train once per strategy (same seed and data); write comparison.md/.json, plots and a qualitative table."""
    from mtst.config import load_config
    from mtst.data.textfile import read_text_lines
    from mtst.evaluation.compare import compare as run_comparison

    setup_logging()
    settings = load_config(
        config,
        **{
            "data.dir": str(data_dir) if data_dir else None,
            "train.epochs": epochs,
            "train.max_train_examples": max_train_examples,
        },
    )
    names = [name.strip() for name in strategies.split(",") if name.strip()]
    run_comparison(settings, names, output_dir, read_text_lines(sentences) if sentences else None)
    typer.echo(f"wrote {output_dir / 'comparison.md'}")
