#!/usr/bin/env bash
# The paper profile on one GPU, in under 8 minutes: the paper's recipes at full sequence length
# for a bounded number of steps per stage (fine-tuning MNLI / SQuAD / UD parsing, feature
# extraction, edge and structural probes); prints samples/s (or steps/s) and peak GPU memory per
# stage and projects the wall time of the full `paper` profile (method: README, "GPU check").
#
#   make env-book && PY=.venv/bin/python scripts/gpu_check.sh
#
# Settings (environment): PY (python with bertdrift installed), STEPS (optimizer steps per
# stage, default 40), OUT (JSON report, default gpu_check.json), LIMIT (seconds, default 460).
# Extra arguments go to `python -m bertdrift.gpu_check` (e.g. --model bert-large-uncased).
# The data directory is $BERTDRIFT_DATA as usual (MNLI, SQuAD dev, UD EWT are read). Without
# network access to the Hub, a random model of bert-base-uncased's shape is timed instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
STEPS=${STEPS:-40}
OUT=${OUT:-gpu_check.json}
LIMIT=${LIMIT:-460}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA GPU is visible; this check needs one." >&2
  echo "(CI covers the paper path on the CPU: tests/test_bounded.py)" >&2
  exit 2
fi
start=$(date +%s)
timeout "$LIMIT" "$PY" -m bertdrift.gpu_check --device cuda --steps "$STEPS" --out "$OUT" "$@"
echo "gpu_check: finished in $(( $(date +%s) - start )) s; figures in $OUT"
