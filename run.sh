#!/usr/bin/env bash
# Set up (once) and start JupyterLab with the coflux extension and the demo notebook.
#
#   ./run.sh                 # http://127.0.0.1:8888/ (the URL with its token is printed)
#   ./run.sh --port 9999     # extra arguments go to `jupyter lab`
#
# The coflux server runs inside Jupyter (SQLite under notebooks/.coflux by default); the demo
# notebook's first cell, `%load_ext coflux`, attaches its kernel as a worker.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
export PIP_DISABLE_PIP_VERSION_CHECK=1

python_ok() { "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
venv_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if ! { [ -x .venv/bin/python ] && venv_ok .venv/bin/python; }; then
    PY=$(find_python || true)
    if [ -z "$PY" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run.sh: installing python3 and python3-venv with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
        PY=$(find_python || true)
    fi
    if [ -z "$PY" ]; then
        echo "run.sh: need Python >= 3.11 with the venv module (Debian: apt-get install python3 python3-venv)" >&2
        exit 1
    fi
    echo "run.sh: creating .venv with $PY"
    rm -rf .venv
    "$PY" -m venv .venv
fi

# The front-end (Studio, the run view, the JupyterLab panel) is built by `pip install` with npm.
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing nodejs and npm with apt-get (to build the front-end)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
command -v npm >/dev/null 2>&1 || echo "run.sh: no npm: Studio and the run view will not be built (install Node.js 20 with npm)" >&2

STAMP=.venv/.run-installed
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if ! { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x .venv/bin/jupyter-lab ]; }; then
    echo "run.sh: installing coflux with JupyterLab (pip install -e \".[lab]\"; log: .venv/run-pip.log)"
    if ! { .venv/bin/python -m pip install --upgrade "pip>=23.1" \
            && .venv/bin/python -m pip install -e ".[lab]"; } >.venv/run-pip.log 2>&1; then
        tail -n 40 .venv/run-pip.log >&2
        echo "run.sh: pip install failed" >&2
        exit 1
    fi
    echo "$WANT" > "$STAMP"
fi

NOTEBOOK=demo.ipynb
if [ ! -f "notebooks/$NOTEBOOK" ]; then
    NOTEBOOK=""
fi

echo "run.sh: starting JupyterLab (Ctrl-C to stop)"
exec .venv/bin/jupyter lab --ip=127.0.0.1 --no-browser --allow-root \
    --ServerApp.root_dir="$PWD/notebooks" ${NOTEBOOK:+"notebooks/$NOTEBOOK"} "$@"
