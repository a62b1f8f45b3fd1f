#!/usr/bin/env bash
# ruff on the whole tree, pylint-odoo on the addon.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
echo "== ruff"
$PYTHON -m ruff check .
$PYTHON -m ruff format --check --quiet . >/dev/null 2>&1 \
  || echo "(ruff format: some files are not formatted; not enforced)"
echo "== pylint-odoo"
$PYTHON -m pylint --rcfile=.pylintrc sage_one_connector
echo "lint: ok"
