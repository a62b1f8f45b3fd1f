#!/usr/bin/env bash
# ruff on the whole tree, pylint-odoo on the addon.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
echo "== ruff"
$PYTHON -m ruff check .
$PYTHON -m ruff format --check --quiet sage_one_connector/sage_api sage_sandbox tests bench 2>/dev/null \
  || echo "(ruff format: some files are not formatted; not enforced)"
echo "== pylint-odoo"
$PYTHON -m pylint --rcfile=.pylintrc sage_one_connector
echo "lint: ok"
