#!/usr/bin/env bash
# Install a2v from scratch into ./.venv: system packages (apt-get), then Python packages.
# Usage: ./install.sh            (then: .venv/bin/a2v demo)
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  # ffmpeg: codecs for PyAV-independent tools; espeak-ng: speech for the demo and tests;
  # chromium + driver: the browser test of the web UI.
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    ffmpeg espeak-ng libsndfile1 chromium chromium-driver >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[all]'
# facenet-pytorch ships MTCNN weights but pins torch<2.3 in its metadata; its code runs on
# current torch, so it is installed without its pins.
.venv/bin/python -m pip install -q --no-deps 'facenet-pytorch==2.6.0'
# k-diffusion: reference samplers for the tests (only k_diffusion.sampling is used; its own
# requirements are a training stack we do not need).
.venv/bin/python -m pip install -q --no-deps 'k-diffusion==0.1.1.post1'
echo "a2v installed in .venv"
