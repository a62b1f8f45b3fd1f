#!/usr/bin/env bash
# Installs what the project needs around Odoo: Python dependencies, and the
# headless Chromium used by the browser tours. Odoo 18.0 itself is not on any
# package registry: install it into this python first (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
$PYTHON -m pip install --quiet -r requirements.txt
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "WARNING: could not install chromium; the browser tours will fail."
fi
if $PYTHON -c 'import odoo.release as r; print("Odoo", r.version)' 2>/dev/null; then :; else
  echo "WARNING: $PYTHON cannot import odoo. Install Odoo 18.0 into it (README, 'Requirements')."
fi
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}"; then
  echo "WARNING: PostgreSQL does not answer on ${PGHOST:-127.0.0.1}:${PGPORT:-5432}."
fi
echo "setup: done"
