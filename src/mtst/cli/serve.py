"""`mtst serve`: the HTTP server over a checkpoint."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from mtst.cli.calibrate import AmbiguityMargin, EntityThresholds, FallbackLabel, IntentThreshold
from mtst.cli.common import app, friendly_errors, setup_logging
from mtst.errors import ConfigError, MtstError
from mtst.serve.config import ServeConfig


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
def serve(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint folder (OUTPUT/best).")],
    intent_threshold: IntentThreshold = None,
    ambiguity_margin: AmbiguityMargin = None,
    fallback_label: FallbackLabel = None,
    entity_thresholds: EntityThresholds = None,
    **options,
) -> None:
    """Serve a checkpoint over HTTP: POST /predict, Rasa's POST /model/parse, GET /health and /info, OpenAPI at
    /docs, a page at /. The checkpoint's thresholds apply; the threshold options override them."""
    from mtst.calibration.thresholds import apply_thresholds, confidence_settings, threshold_settings

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

    settings = threshold_settings(intent_threshold, ambiguity_margin, fallback_label, entity_thresholds)
    setup_logging()
    predictor = load_predictor(checkpoint, config.backend)
    apply_thresholds(predictor.model.tasks, settings)
    info = {**describe_checkpoint(checkpoint, config.backend), "confidence": confidence_settings(predictor.model.tasks)}
    server = create_app(predictor.predict, info, config, predictor.count_subtokens)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning("listening on %s: anyone who can reach it can use the model", config.host)
    uvicorn.run(server, host=config.host, port=config.port, log_config=None)
