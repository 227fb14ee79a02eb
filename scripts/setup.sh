#!/usr/bin/env bash
# Creates .venv and installs mtst with its test, serving and ONNX export extras, offline-safe on a fresh machine.
# torch is installed first and pinned to 2.13.0: on CPU machines pip takes the CPU wheel on disk,
# where a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[serve,dev,export]"
