#!/usr/bin/env bash
# Creates .venv and installs mtst with its test, serving and ONNX export extras, offline-safe on a fresh machine.
# torch is installed first and pinned to 2.13.0: on CPU machines pip takes the CPU wheel on disk,
# where a bare `torch` requirement would pull a multi-GB CUDA build.
# pip runs without --quiet: a first set-up takes a minute or two, and its "Collecting ..." lines show it working.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
step() { echo "==> [$1/4] $2 ($(date +%T))"; }
if [ ! -x .venv/bin/python ]; then
    step 1 "creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
else
    step 1 ".venv exists"
fi
step 2 "upgrading pip"
.venv/bin/python -m pip install --upgrade --progress-bar off pip
step 3 "installing torch 2.13.0 (CPU wheel)"
.venv/bin/python -m pip install --progress-bar off "torch==2.13.0"
step 4 "installing mtst with its serve, dev, export, sentence-transformers, ray and trackers extras"
.venv/bin/python -m pip install --progress-bar off -e ".[serve,dev,export,sentence-transformers,ray,trackers,spacy]"
echo "==> set-up done ($(date +%T))"
