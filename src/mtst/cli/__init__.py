"""The `mtst` command: parses arguments and calls the library; no training or data logic lives here."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, get_args

import typer
from pydantic import ValidationError

from mtst.config import Reporter
from mtst.data.settings import DATA_FORMATS
from mtst.errors import ConfigError, MtstError
from mtst.inference.backends import BACKENDS
from mtst.serve.config import ServeConfig
from mtst.training.strategies import STRATEGY_SPECS

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Multi-task sentence transformer.")


def _setup_logging(verbose: bool = False) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.INFO
    if int(os.environ.get("RANK", "0")) != 0:
        level = logging.WARNING  # in a multi-process run (torchrun, accelerate launch) the main process reports
    logging.basicConfig(
        level=level,
        format="%(message)s",
        # On stderr: standard output carries results (predict --json, train's summary) that programs read.
        handlers=[RichHandler(console=Console(stderr=True), show_path=False, show_time=False, markup=False)],
        force=True,
    )
    for noisy in ("transformers", "accelerate", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_version(value: bool) -> None:
    if value:
        from mtst import __version__

        typer.echo(f"mtst {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print mtst's version and exit.")
    ] = False,
) -> None:
    """Multi-task sentence transformer."""


def friendly_errors(command):
    """Reports mtst's own errors as one line on stderr with exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MtstError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        except OSError as error:
            if error.filename is None:
                raise
            # A file the system refused (permissions, a file where a folder must be): the OS's own words.
            typer.echo(f"error: {error.filename}: {error.strerror or error}", err=True)
            raise typer.Exit(2) from None

    return wrapper


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
BackendOption = Annotated[str, typer.Option("--backend", help=f"{', '.join(BACKENDS)} (onnx after `mtst export`).")]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Dataset folder (overrides the config; env MTST_DATA_DIR).")
]


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

    _setup_logging()
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
) -> None:
    """Task-adaptive pre-training: masked-LM training of the encoder on the config's training sentences.

    Writes an encoder folder for `mtst train --encoder DIR` (or `encoder.name_or_path`), with pretrain.json.
    """
    from mtst.config import load_config
    from mtst.training.pretrain import PretrainConfig
    from mtst.training.pretrain import pretrain as run_pretraining

    _setup_logging()
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
    note = run_pretraining(settings, options)
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
    from mtst.data.readers import read_text_lines
    from mtst.evaluation.compare import compare as run_comparison

    _setup_logging()
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


@app.command()
@friendly_errors
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    data_dir: DataDirOption = None,
    split: Annotated[str, typer.Option("--split")] = "test",
    data_format: Annotated[str | None, typer.Option("--format", help=f"{', '.join(DATA_FORMATS)}.")] = None,
    text_column: Annotated[str | None, typer.Option("--text-column", help="CSV text column.")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="CSV label column.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print full metrics as JSON.")] = False,
    backend: BackendOption = "torch",
    quantized: Annotated[bool, typer.Option("--quantized", help="With --backend onnx: model.int8.onnx.")] = False,
    errors: Annotated[
        Path | None,
        typer.Option("--errors", help="Write the error analysis here: errors.json and mispredicted.jsonl."),
    ] = None,
) -> None:
    """Score a checkpoint on one split: accuracy, entity P/R/F1, sentence accuracy, per-label report.

    Data settings not given as options come from the checkpoint, which keeps those it was trained with.
    With --errors DIR, also the entity error taxonomy (spurious, missed, wrong type / boundary), the most
    confused types and labels, and every mispredicted sentence with gold beside predicted.
    """
    from mtst.data import check_annotations, read_split
    from mtst.evaluation.metrics import evaluate as run_evaluation
    from mtst.evaluation.metrics import headline
    from mtst.inference.predictor import Predictor
    from mtst.model.multitask import read_checkpoint

    _setup_logging()
    folder = data_dir or os.environ.get("MTST_DATA_DIR")
    if not folder:
        raise MtstError("no data directory: pass --data-dir or set MTST_DATA_DIR")
    data = read_checkpoint(checkpoint).config.data_for(folder)
    overrides = {"format": data_format, "text_column": text_column, "label_column": label_column}
    data = data.model_copy(update={"dir": str(folder), **{k: v for k, v in overrides.items() if v is not None}})
    examples = read_split(data, split)
    model = Predictor.from_checkpoint(checkpoint, backend=backend, quantized=quantized).model
    check_annotations(examples, model.tasks.values(), split)
    metrics, predictions = run_evaluation(model, examples)
    summary = _write_error_analysis(model, examples, predictions, errors) if errors is not None else []
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    for key, value in headline(metrics).items():
        typer.echo(f"{key:<28} {value:.4f}")
    for name, value in metrics.items():
        if isinstance(value, dict) and "report" in value:
            typer.echo(f"\n{name} per label (precision / recall / f1 / support)")
            for label, row in value["report"].items():
                if isinstance(row, dict):
                    scores = f"{row['precision']:.3f} {row['recall']:.3f} {row['f1-score']:.3f}"
                    typer.echo(f"  {label:<30} {scores} {int(row['support'])}")
    if summary:
        typer.echo("\nerrors (" + str(errors) + ")\n" + "\n".join(summary))


def _write_error_analysis(model, examples, predictions, directory: Path) -> list[str]:
    from mtst.evaluation.error_analysis import analyze, summary_lines, write_analysis

    report, records = analyze(model.tasks, examples, predictions)
    try:
        write_analysis(report, records, directory)
    except OSError as error:
        raise MtstError(f"{directory}: cannot write the error analysis ({error.strerror or error})") from None
    return summary_lines(report, records)


@app.command()
@friendly_errors
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    texts: Annotated[list[str] | None, typer.Argument(help="Sentences; or use --file, or standard input.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="One sentence per line.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    backend: BackendOption = "torch",
    quantized: Annotated[
        bool, typer.Option("--quantized", help="With --backend onnx: use model.int8.onnx (`export --quantize int8`).")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="With --file: stream results into this JSONL file; a rerun resumes where it stops."
        ),
    ] = None,
) -> None:
    """Predict the label and the entities (character spans) of raw sentences."""
    from mtst.data.readers import read_text_lines, text_lines
    from mtst.inference.predictor import Predictor, describe

    if output is not None:
        _predict_into(checkpoint, file, output, texts, backend, quantized)
        return
    sentences = list(texts or [])
    if file is not None:
        sentences += read_text_lines(file)
    if not sentences and not sys.stdin.isatty():
        sentences = text_lines(sys.stdin.buffer.read(), "<stdin>")
    if not sentences:
        raise MtstError("no text to predict: give sentences as arguments, --file, or on standard input")
    predictor = Predictor.from_checkpoint(checkpoint, backend=backend, quantized=quantized)
    for result in predictor.predict(sentences):
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False))
        else:
            parts = describe(predictor.model.tasks, result)
            typer.echo(f"{result['text']}\n" + "".join(f"  {name}: {text}\n" for name, text in parts.items()).rstrip())


def _predict_into(checkpoint: Path, file: Path | None, output: Path, texts, backend: str, quantized: bool) -> None:
    from mtst.inference.predictor import Predictor
    from mtst.inference.stream import predict_file

    if file is None or texts:
        raise MtstError("--output streams one --file: give --file IN and no sentences as arguments")
    _setup_logging()
    predictor = Predictor.from_checkpoint(checkpoint, backend=backend, quantized=quantized)
    summary = predict_file(predictor, file, output)
    rate = summary.predicted / max(summary.seconds, 1e-9)
    typer.echo(f"{output}: {summary.resumed_after + summary.predicted} results ({summary.predicted} new, {rate:.0f}/s)")


@app.command()
@friendly_errors
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    export_format: Annotated[str, typer.Option("--format", help="onnx, or sentence-transformers.")] = "onnx",
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="int8: also write model.int8.onnx (dynamic quantization).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="sentence-transformers: the folder (default CHECKPOINT/sentence-transformers)."
        ),
    ] = None,
) -> None:
    """Export the whole model (encoder, pooling, every head) for CPU inference into the checkpoint folder.

    Writes model.onnx (and model.int8.onnx) plus onnx_export.json; use them with `predict --backend onnx`.
    `--format sentence-transformers` writes the fine-tuned encoder as a folder SentenceTransformer(path) loads.
    """
    if export_format not in ("onnx", "sentence-transformers"):
        raise MtstError(f"unknown export format {export_format!r}; choose one of onnx, sentence-transformers")
    if export_format == "sentence-transformers":
        if quantize is not None:
            raise MtstError("--quantize applies to --format onnx only")
        from mtst.export.sentence_transformers import export_sentence_transformers

        typer.echo(f"{export_sentence_transformers(checkpoint, output)}  (SentenceTransformer(path).encode)")
        return
    if output is not None:
        raise MtstError("--output applies to --format sentence-transformers; ONNX files go into the checkpoint")
    from mtst.export.onnx import export_onnx

    note = export_onnx(checkpoint, quantize)
    for name, entry in note["files"].items():
        difference = max(entry["max_abs_logit_difference"].values())
        typer.echo(f"{checkpoint / name}  (max |logit - PyTorch| on a check batch: {difference:.2g})")


@app.command()
@friendly_errors
def demo(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o")] = Path("runs/demo"),
    epochs: Annotated[int | None, typer.Option("--epochs")] = None,
) -> None:
    """Train on the bundled corpus with the packaged encoder, then predict six held-out sentences."""
    typer.echo("mtst demo: loading torch and the encoder, then training on the bundled corpus", err=True)
    from mtst.cli.demo import run_demo

    _setup_logging()
    run_demo(output_dir, epochs)


data_app = typer.Typer(no_args_is_help=True, help="Validate and describe datasets.")
app.add_typer(data_app, name="data")


@data_app.command("check")
@friendly_errors
def data_check(
    path: Annotated[Path, typer.Argument(help="A dataset folder (train, optional dev/test) or one split.")],
    data_format: Annotated[str, typer.Option("--format", help=f"{', '.join(DATA_FORMATS)}.")] = "auto",
    text_column: Annotated[str, typer.Option("--text-column", help="CSV text column.")] = "text",
    label_column: Annotated[str, typer.Option("--label-column", help="CSV label column.")] = "label",
    strict: Annotated[bool, typer.Option("--strict", help="Repairable problems are errors too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Validate a dataset and print its statistics; exit status 2 with `file:line: problem` on an error."""
    from mtst.data.check import check_dataset, render

    report = check_dataset(path, data_format, text_column, label_column, strict)
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else "\n".join(render(report)))


def with_serve_options(command):
    """One option per ServeConfig field (its default and description): the server's settings are listed once."""
    signature = inspect.signature(command, eval_str=True)
    options = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.default,
            annotation=Annotated[field.annotation, typer.Option(f"--{name.replace('_', '-')}", help=field.description)],
        )
        for name, field in ServeConfig.model_fields.items()
    ]
    kept = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = signature.replace(parameters=[*kept, *options])
    return command


@app.command()
@friendly_errors
@with_serve_options
def serve(checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")], **options) -> None:
    """Serve a checkpoint over HTTP: POST /predict, GET /health and /info, OpenAPI at /docs, a page at /."""
    try:
        config = ServeConfig(**options)
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    try:
        import uvicorn

        from mtst.serve.app import create_app
        from mtst.serve.loading import describe_checkpoint, load_predictor
    except ImportError as error:
        raise MtstError(f"serving needs the serve extra ({error.name} is missing): pip install 'mtst[serve]'") from None

    _setup_logging()
    predictor = load_predictor(checkpoint, config.backend)
    info = describe_checkpoint(checkpoint, config.backend)
    server = create_app(predictor.predict, info, config, predictor.count_subtokens)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("listening on %s: anyone who can reach it can use the model", config.host)
    uvicorn.run(server, host=config.host, port=config.port, log_config=None)


def main() -> None:
    app()
