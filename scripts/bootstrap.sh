#!/usr/bin/env bash
# Create the virtualenv for requirements.txt once, cache it keyed on the file's hash, and link
# it as .venv. A second run with the same requirements.txt costs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "PruneScope needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
key=$(sha256sum requirements.txt | cut -c1-16)
venv="${PRUNESCOPE_VENV_CACHE:-$HOME/.cache/prunescope}/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "setting up $venv (first time only)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
  touch "$venv/.complete"
fi
ln -sfn "$venv" .venv
