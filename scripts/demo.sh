#!/usr/bin/env bash
# The demo: a database with demo data, the Sage sandbox, and Odoo on localhost,
# the company already connected to the sandbox business "Demo Trading Ltd".
#   bash scripts/demo.sh            # start (creates the database the first time)
#   bash scripts/demo.sh --reset    # drop and rebuild the demo database first
# Environment: DEMO_DB (sage_demo), ODOO_PORT (8069), SANDBOX_PORT (8090),
# PGHOST/PGPORT/PGUSER/PGPASSWORD as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
DB=${DEMO_DB:-sage_demo}
ODOO_PORT=${ODOO_PORT:-8069}
SANDBOX_PORT=${SANDBOX_PORT:-8090}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-$(id -un)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# The sandbox speaks plain http on loopback; oauthlib refuses that unless told.
# Real Sage is https and needs no such setting.
export OAUTHLIB_INSECURE_TRANSPORT=1
ODOO_URL="http://localhost:$ODOO_PORT"
ODOO_ARGS=(--db_host="$PGHOST" --db_port="$PGPORT" --db_user="$PGUSER" --addons-path="$ROOT"
           -d "$DB" --db-filter="^$DB\$")
[ -n "${PGPASSWORD:-}" ] && ODOO_ARGS+=(--db_password="$PGPASSWORD")

$PYTHON -c 'import odoo.release' 2>/dev/null || {
  echo "python3 cannot import odoo: install Odoo 18.0 first (README, Requirements)."; exit 1; }

if [ "${1:-}" = "--reset" ]; then dropdb --if-exists "$DB"; fi
if ! psql -lqtA | cut -d'|' -f1 | grep -qx "$DB"; then
  echo "== Creating database $DB with demo data (a few minutes the first time)"
  $PYTHON -m odoo "${ODOO_ARGS[@]}" -i sage_one_connector --stop-after-init --log-level=warn
else
  echo "== Updating sage_one_connector in $DB"
  $PYTHON -m odoo "${ODOO_ARGS[@]}" -u sage_one_connector --stop-after-init --log-level=warn
fi

mkdir -p test-output
echo "== Starting the Sage sandbox on 127.0.0.1:$SANDBOX_PORT"
$PYTHON -m sage_sandbox --host 127.0.0.1 --port "$SANDBOX_PORT" --client-id demo \
  --client-secret demo-secret --redirect-uri "$ODOO_URL/sage_one/oauth/callback" \
  > test-output/demo-sandbox.log 2>&1 &
SANDBOX_PID=$!
trap 'kill $SANDBOX_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  $PYTHON -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$SANDBOX_PORT/_sandbox/stats', timeout=1)" \
    2>/dev/null && break
  sleep 0.2
done

echo "== Connecting the demo company to the sandbox"
$PYTHON scripts/demo_configure.py "${ODOO_ARGS[@]}" --sandbox-url "http://127.0.0.1:$SANDBOX_PORT" \
  --odoo-url "$ODOO_URL"

cat <<MSG

  Odoo     $ODOO_URL   (login: admin / password: admin)
  Sandbox  http://127.0.0.1:$SANDBOX_PORT   (demo Sage user demo@example.com; log: test-output/demo-sandbox.log)
  Try: Invoicing > Customers > Invoices > a posted invoice > Send to Sage.
  The sandbox keeps its data in memory: a restart of the demo reconnects to a fresh one.
  Ctrl-C stops both.

MSG
$PYTHON -m odoo "${ODOO_ARGS[@]}" --http-port="$ODOO_PORT" --http-interface=127.0.0.1 --log-level=info
