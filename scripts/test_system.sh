#!/usr/bin/env bash
# The slow suites: real Odoo server processes and a real browser (pytest on system_tests/).
#   - browser tours in headless Chromium (Send to Sage, Push all + completion notice, job → Completed),
#     end-state screenshots in test-output/screenshots/;
#   - a 200-invoice Push all while the Odoo server is SIGKILLed 10 times and restarted;
#   - the same push while Sage answers 429 / 5xx / drops connections after saving;
#   - two Odoo server processes refreshing the same expired Sage token at once.
# Each prints its figures in the closing "system test figures" section.
#
#   bash scripts/test_system.sh                # everything (about 8-12 minutes on 2 cores)
#   bash scripts/test_system.sh -k crash       # extra arguments go to pytest
#
# It creates its own databases (sage_sys_<run>_*: a template with the addon, 20 customers and
# 200 posted invoices, and one copy per test) and drops them, kills the Odoo processes it
# started, and exits non-zero when a test fails. Without Odoo or Chromium the tests are
# skipped loudly; with CI=true that is a failure.
#
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (current user), PGPASSWORD;
# SAGE_SYSTEM_BASE_DB: an existing database with account and crm installed, copied instead of
# installing them from scratch (saves about 3 minutes); SAGE_CRASH_SEED, SAGE_FAULT_SEED replay
# a run (each run prints its seeds); SAGE_SYSTEM_KEEP_TEMPLATE=1 keeps the prepared template and
# SAGE_SYSTEM_TEMPLATE_DB=<its name> reuses it, updating the addon in it first (faster reruns
# while working on a test); SAGE_SYSTEM_KEEP_DBS=1 keeps each test's database for inspection.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
export PYTHON
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-$(id -un)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export OAUTHLIB_INSECURE_TRANSPORT=1  # the sandbox is plain http on loopback
RUN_ID="$(date +%s)_$$"
export SAGE_SYSTEM_RUN_ID=$RUN_ID
mkdir -p test-output/system test-output/screenshots
export SAGE_SYSTEM_PIDFILE="$ROOT/test-output/system/pids-$RUN_ID"
: > "$SAGE_SYSTEM_PIDFILE"

missing=""
$PYTHON -c 'import odoo.release' 2>/dev/null || missing="Odoo 18.0 (python3 -c 'import odoo')"
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
   && ! command -v google-chrome >/dev/null; then
  missing="${missing:+$missing, }Chromium"
fi
if [ -n "$missing" ]; then
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  echo "!! Missing: $missing. The tests that need it are SKIPPED."
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  if [ "${CI:-}" = "true" ]; then echo "CI=true: a missing $missing is a failure."; fi
fi

cleanup() {
  # Odoo servers still running (an interrupted run): their process groups, TERM then KILL.
  local pid
  while read -r pid; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -TERM -- "-$pid" 2>/dev/null
  done < "$SAGE_SYSTEM_PIDFILE"
  sleep 1
  while read -r pid; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  done < "$SAGE_SYSTEM_PIDFILE"
  rm -f "$SAGE_SYSTEM_PIDFILE"
  # Databases (and filestores) of this run that a test could not drop.
  local db filestore="${ODOO_DATA_DIR:-$HOME/.local/share/Odoo}/filestore"
  for db in $(psql -d postgres -lqtA 2>/dev/null | cut -d'|' -f1 | grep "^sage_sys_${RUN_ID}_"); do
    [ "${SAGE_SYSTEM_KEEP_TEMPLATE:-}" = "1" ] && [ "$db" = "sage_sys_${RUN_ID}_tpl" ] && continue
    [ "${SAGE_SYSTEM_KEEP_DBS:-}" = "1" ] && [ "$db" != "sage_sys_${RUN_ID}_tpl" ] && continue
    psql -d postgres -qtAc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db'" >/dev/null 2>&1
    dropdb --if-exists "$db" >/dev/null 2>&1 || true
    [ -d "$filestore/$db" ] && rm -rf "${filestore:?}/$db"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== System tests (run $RUN_ID): real Odoo servers, the Sage sandbox, headless Chromium"
$PYTHON -m pytest system_tests -v -rfEs -p no:cacheprovider \
  --junitxml=test-output/system/junit.xml "$@"
status=$?
if [ $status -eq 5 ]; then echo "No test ran."; fi
exit $status
