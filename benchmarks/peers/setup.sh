#!/usr/bin/env bash
# One virtual environment per peer, so the peers' dependencies never enter mtst's:
#   bash benchmarks/peers/setup.sh spacy|hf|flair|setfit   ->  benchmarks/peers/.venvs/PEER
# Each requirements-PEER.txt pins torch==2.13.0 where the peer needs torch (the CPU wheel on disk; a bare
# torch would pull a multi-GB CUDA build).
set -euo pipefail
peer="${1:?usage: setup.sh PEER}"
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venvs/$peer"
python3 -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install -r "$here/requirements-$peer.txt"
"$venv/bin/pip" freeze > "$here/.venvs/$peer.freeze.txt"
echo "peer venv ready: $venv"
