#!/usr/bin/env bash
# Creates (once) the virtual environment of the PyTorch peers, offline, from the
# machine's wheelhouse (as shared/golden/regenerate.sh does):
#   bench/peers/make_venv.sh [VENV_DIR]      default: .bench-venv (gitignored)
# Environment: WHEELHOUSE (default "/opt/wheels /opt/pypi/files /opt/pypi-more/files"),
#              BENCH_PYTHON (default python3.11, then python3).
set -euo pipefail
VENV="${1:-.bench-venv}"
[ -f "$VENV/.complete" ] && exit 0
PY="${BENCH_PYTHON:-$(command -v python3.11 || command -v python3)}"
FL=()
for d in ${WHEELHOUSE:-/opt/wheels /opt/pypi/files /opt/pypi-more/files}; do [ -d "$d" ] && FL+=(--find-links "$d"); done
[ ${#FL[@]} -gt 0 ] || { echo "no wheelhouse folder found" >&2; exit 3; }
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --no-index --disable-pip-version-check --quiet "${FL[@]}" \
  "torch==2.13.0+cpu" "transformers==5.18.0" "safetensors==0.8.0" "tokenizers==0.23.2" \
  "huggingface_hub==1.33.0" "numpy==2.4.6" "pillow==12.3.0"
touch "$VENV/.complete"
