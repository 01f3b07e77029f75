#!/usr/bin/env bash
# TAUE Layers: set up once, then run.
#   bash run.sh demo   set up, then generate one layered scene on the embedded model into ./taue-out
#   bash run.sh test   set up, then run the whole test suite (CI's), the slowest tests listed at the end
#   bash run.sh lint   set up, then ruff and mypy (CI runs it before the tests)
# Set-up makes ./.venv. torch comes first, so that pip never picks a build for us:
#   TAUE_TORCH unset: torch==2.13.0 on Linux without nvidia-smi (on our development and CI machines that wheel is
#     the CPU build, on local disk), plain torch where nvidia-smi is found or on macOS; nothing if torch imports.
#   TAUE_TORCH set: always wins, installed whenever it differs from what set-up installed last. It may hold several
#     pip arguments, e.g. the CPU build on a CPU-only Linux PC (PyPI's Linux torch is the multi-GB CUDA build):
#       TAUE_TORCH="torch --index-url https://download.pytorch.org/whl/cpu" bash run.sh demo
#     or the CUDA build on a GPU machine: TAUE_TORCH=torch bash run.sh demo
set -euo pipefail
cd "$(dirname "$0")"
VENV=${TAUE_VENV:-.venv}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
  local marker="$VENV/.taue-torch"
  if [ -n "${TAUE_TORCH:-}" ]; then
    if [ "$(cat "$marker" 2>/dev/null)" != "$TAUE_TORCH" ]; then
      echo "run.sh: installing $TAUE_TORCH into $VENV (TAUE_TORCH)" >&2
      # shellcheck disable=SC2086 # several pip arguments, split on purpose
      "${pip[@]}" install $TAUE_TORCH
      printf '%s' "$TAUE_TORCH" >"$marker"
    fi
  elif ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    local spec="torch==2.13.0"
    if command -v nvidia-smi >/dev/null 2>&1 || [ "$(uname -s)" = "Darwin" ]; then
      spec="torch"
    fi
    echo "run.sh: installing $spec into $VENV" >&2
    "${pip[@]}" install "$spec"
  fi
  if ! "$VENV/bin/python" -c "import taue_engine, diffusers, transformers, pytest" >/dev/null 2>&1 \
      || [ pyproject.toml -nt "$VENV/.taue-installed" ]; then
    echo "run.sh: installing taue-layers and its dependencies into $VENV" >&2
    "${pip[@]}" install -e ".[test]"
    touch "$VENV/.taue-installed"
  fi
}

# The plug-ins' end-to-end tests run real editors: Debian's krita (5.1 on Debian 12) with its PyQt5. As root on
# a Debian machine they are installed here; elsewhere those tests skip and say how to install them
# (TAUE_REQUIRE_EDITORS=1, set by CI, makes a missing editor a failure).
editors() {
  if command -v kritarunner >/dev/null 2>&1 && [ -d /usr/lib/python3/dist-packages/PyQt5 ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${TAUE_NO_EDITORS:-}" ]; then
    echo "run.sh: installing Krita (Debian's krita, python3-pyqt5) for the plug-in tests" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      krita python3-pyqt5 python3-sip >/dev/null
  fi
}

# The queue's tests (taue-server --queue, taue-worker) start Debian's redis-server themselves on a free loopback
# port; as root on Debian it is installed here, elsewhere those tests skip and say how (they fail under CI).
services() {
  if command -v redis-server >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${TAUE_NO_EDITORS:-}" ]; then
    echo "run.sh: installing redis-server for the queue tests" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server >/dev/null
    # the tests start their own on a free port: Debian's service on 6379 is not needed
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
  fi
}

case "${1:-}" in
  demo)
    setup
    shift
    "$VENV/bin/taue" generate \
      --foreground "a red star" --background "a blue striped background" \
      --seed 2 --out taue-out "$@"
    ;;
  test)
    setup
    editors
    services
    shift
    "$VENV/bin/python" -m pytest -q --durations=25 "$@"
    ;;
  lint)
    setup
    if [ ! -x "$VENV/bin/ruff" ] || [ ! -x "$VENV/bin/mypy" ]; then
      "$VENV/bin/python" -m pip --disable-pip-version-check -q install -e ".[test]"
    fi
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"
    ;;
  *)
    echo "usage: bash run.sh demo [taue generate flags] | bash run.sh test [pytest args] | bash run.sh lint" >&2
    exit 2
    ;;
esac
