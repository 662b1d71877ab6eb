#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install bertdrift with an extra.
# Usage: scripts/env.sh book|test        (VENV=path to use another folder; default .venv)
# torch: kept if already importable; else the CUDA build when a GPU is visible, and otherwise
# the CPU build pinned by TORCH_CPU_SPEC (default torch==2.13.0), from TORCH_INDEX_URL if set
# (e.g. https://download.pytorch.org/whl/cpu to avoid the large CUDA wheels on Linux).
set -euo pipefail
extra="${1:?usage: scripts/env.sh book|test}"
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
stamp="$venv/.bertdrift-$extra-$(cat pyproject.toml | sha256sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  exit 0
fi
"$py" -m pip install -q --upgrade pip >/dev/null
if ! "$py" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$py" -m pip install -q "torch>=2.1"
  else
    "$py" -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "${TORCH_CPU_SPEC:-torch==2.13.0}"
  fi
fi
"$py" -m pip install -q -e ".[$extra]"
touch "$stamp"
