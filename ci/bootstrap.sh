#!/bin/sh
# Creates .venv with ClickVote and its development tools. Idempotent.
# Used by the README's quick start and by .ci/run; needs Python 3.11+.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "ClickVote needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1))." >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian/Ubuntu ship venv separately.
        rm -rf .venv
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && apt-get install -y -qq "python3-venv" >/dev/null
        else
            echo "Install python3-venv first: sudo apt-get install python3-venv" >&2
            exit 1
        fi
        "$PYTHON" -m venv .venv
    fi
fi
stamp=.venv/.clickvote-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[${CLICKVOTE_EXTRAS:-dev}]"
    touch "$stamp"
fi
