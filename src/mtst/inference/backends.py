"""The inference backends: one list, read by the Predictor, `mtst predict/evaluate` and the server."""

from __future__ import annotations

from typing import Literal, get_args

Backend = Literal["torch", "onnx"]
BACKENDS: tuple[str, ...] = get_args(Backend)
