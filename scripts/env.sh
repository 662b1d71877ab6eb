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
# MathJax 3 for offline maths in the book: bertdrift.book.stage copies it into the build, so the
# rendered pages need no CDN. Installed from npm beside the venv (no node needed afterwards).
mathjax="$venv/mathjax/node_modules/mathjax/es5/tex-chtml.js"
if [ ! -f "$mathjax" ] && [ -z "${BERTDRIFT_MATHJAX:-}" ]; then
  if command -v npm >/dev/null 2>&1; then
    npm install --silent --no-audit --no-fund --prefix "$venv/mathjax" "mathjax@3" >/dev/null \
      || echo "[env] npm could not install mathjax@3: the book build stops until it is installed"
  else
    echo "[env] npm not found: install Node.js/npm (Debian: apt-get install npm) and rerun, or"
    echo "[env] set BERTDRIFT_MATHJAX to a MathJax 3 es5/ folder; the book build needs MathJax"
  fi
fi
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
