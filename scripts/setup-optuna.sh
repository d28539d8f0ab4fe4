#!/usr/bin/env bash
# Installs the Optuna worker's Python packages (workers/optuna/requirements.txt: temporalio,
# optuna, SQLAlchemy, psycopg2-binary, scikit-learn, optuna-dashboard, all pinned) from PyPI into
# a virtualenv at .tools/optuna, where infra/optuna-worker.ts and the tests look for them.
# Idempotent: does nothing when the stamp of the requirements' hash (and the Python version) is
# there. OPTUNA_PYTHON picks the interpreter (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
req=workers/optuna/requirements.txt
dest=.tools/optuna
py="${OPTUNA_PYTHON:-$(command -v python3 || true)}"
if [ -z "$py" ] || ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
  echo "setup-optuna: python3 (3.10 or newer) not found; install it (Debian: apt-get install python3 python3-venv), or set OPTUNA_PYTHON" >&2
  exit 1
fi
hash=$( { cat "$req"; "$py" -c 'import platform, sys; print(sys.version, platform.machine())'; } | sha256sum | cut -c1-16)
stamp="$dest/.installed-$hash"
if [ -f "$stamp" ] && [ -x "$dest/bin/python" ] && [ -x "$dest/bin/optuna-dashboard" ]; then
  exit 0
fi
rm -rf "$dest"
pip_args=(install --quiet --disable-pip-version-check --no-warn-script-location -r "$req")
if "$py" -m venv "$dest" 2>/dev/null; then
  "$dest/bin/python" -m pip "${pip_args[@]}"
else
  # Debian's python3 without python3-venv has venv but not ensurepip: a venv without pip,
  # filled by this python's own pip (pip 22.3+: --python).
  rm -rf "$dest"
  if ! "$py" -m venv --without-pip "$dest" || ! "$py" -m pip --python "$dest/bin/python" "${pip_args[@]}"; then
    rm -rf "$dest"
    echo "setup-optuna: could not make the virtualenv $dest with $py; install the venv module (Debian: apt-get install python3-venv) or pip 22.3+" >&2
    exit 1
  fi
fi
"$dest/bin/python" -c 'import optuna, temporalio, sqlalchemy, psycopg2, sklearn, optuna_dashboard; from importlib.metadata import version as v; print("setup-optuna:", ", ".join(p + " " + v(p) for p in ("temporalio", "optuna", "optuna-dashboard")))'
touch "$stamp"
echo "setup-optuna: installed into $dest. optuna-dashboard opens the hyperopt studies (schema optuna of the ledger's database):" >&2
echo "  the embedded PostgreSQL of trader up:" >&2
echo "    $dest/bin/optuna-dashboard \"postgresql+psycopg2://trader:\$(cat .data/postgres.password)@127.0.0.1:54329/ledger?options=-csearch_path%3Doptuna\"" >&2
echo "  DATABASE_URL=postgres://USER:PASS@HOST:PORT/DB:" >&2
echo "    $dest/bin/optuna-dashboard 'postgresql+psycopg2://USER:PASS@HOST:PORT/DB?options=-csearch_path%3Doptuna'" >&2
