"""Fixtures of the system tests: a template database, copies of it, servers, sandboxes.

* ``template_db`` (session): the addon installed (on ``SAGE_SYSTEM_BASE_DB``
  when that database exists, else on an empty database) and filled by
  ``odoo_prepare.py``: 20 customers, 200 posted invoices. Dropped at the end
  unless ``SAGE_SYSTEM_KEEP_TEMPLATE=1``; ``SAGE_SYSTEM_TEMPLATE_DB=<name>``
  reuses such a kept template (faster reruns while working on a test).
* ``make_db(name)``: a copy of it (``createdb -T``), dropped after the test.
* ``make_server(db, ...)``: an ``OdooServer`` stopped after the test.
* ``make_business(seed)``: an in-process Sage sandbox with one business, stopped after the test.
* ``report(line)``: a figure printed in the closing summary.

Without an importable Odoo the tests are skipped, unless ``CI=true``: then they fail.
"""

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import odoo_system
import scenario
from odoo_system import require

INVOICES = 200
CUSTOMERS = 20
RUN_ID = os.environ.get("SAGE_SYSTEM_RUN_ID") or f"{int(time.time())}_{os.getpid()}"
FIGURES = []


def odoo_importable():
    import subprocess

    return (
        subprocess.run(
            [odoo_system.PYTHON, "-c", "import odoo.release"],
            capture_output=True,
            check=False,
            env=odoo_system.odoo_env(),
        ).returncode
        == 0
    )


@pytest.fixture(scope="session")
def odoo_available():
    require(odoo_importable(), f"{odoo_system.PYTHON} cannot import odoo (Odoo 18.0)")
    try:
        odoo_system.sql("postgres", "SELECT 1")
    except Exception as error:
        require(False, f"PostgreSQL is not reachable: {error}")


@pytest.fixture(scope="session")
def template_db(odoo_available):
    prepared = os.environ.get("SAGE_SYSTEM_TEMPLATE_DB")
    if prepared:
        # A template kept from an earlier run (see KEEP_TEMPLATE): used as is, never dropped.
        require(odoo_system.database_exists(prepared), f"no database {prepared}")
        odoo_system.run_odoo_command(  # the addon's data model may have changed since
            prepared,
            ["-u", "sage_one_connector", "--stop-after-init", "--max-cron-threads=0"]
            + [f"--http-port={odoo_system.free_port()}", "--log-level=warn"],
            odoo_system.OUTPUT_DIR / f"{prepared}-update.log",
        )
        FIGURES.append(f"template: {prepared} (prepared earlier, addon updated)")
        yield prepared
        return
    name = f"sage_sys_{RUN_ID}_tpl"
    base = os.environ.get("SAGE_SYSTEM_BASE_DB")
    started = time.monotonic()
    try:
        if base and odoo_system.database_exists(base):
            odoo_system.create_database(name, template=base)
            odoo_system.copy_filestore(base, name)
            origin = f"copy of {base}"
        else:
            odoo_system.create_database(name)
            origin = "empty database"
        odoo_system.run_odoo_command(
            name,
            [
                "-i",
                "sage_one_connector",
                "--without-demo=all",
                "--stop-after-init",
                f"--http-port={odoo_system.free_port()}",
                "--max-cron-threads=0",
                "--log-level=warn",
            ],
            odoo_system.OUTPUT_DIR / f"{name}-install.log",
        )
        odoo_system.run_odoo_script(
            name,
            "odoo_prepare.py",
            ["--invoices", str(INVOICES), "--customers", str(CUSTOMERS)],
            odoo_system.OUTPUT_DIR / f"{name}-prepare.log",
        )
        FIGURES.append(
            f"template: {origin}, addon installed, {CUSTOMERS} customers and {INVOICES} posted "
            f"invoices in {time.monotonic() - started:.0f}s"
        )
        yield name
    finally:
        if os.environ.get("SAGE_SYSTEM_KEEP_TEMPLATE") == "1":
            FIGURES.append(f"template kept: SAGE_SYSTEM_TEMPLATE_DB={name} reuses it")
        else:
            odoo_system.drop_database(name)
            odoo_system.drop_filestore(name)


@pytest.fixture
def make_db(template_db, request):
    created = []

    def make(suffix):
        name = f"sage_sys_{RUN_ID}_{suffix}"
        odoo_system.create_database(name, template=template_db)
        odoo_system.copy_filestore(template_db, name)
        created.append(name)
        return name

    yield make
    for name in created:
        if os.environ.get("SAGE_SYSTEM_KEEP_DBS") == "1":
            FIGURES.append(f"kept for inspection: database {name}")
            continue
        odoo_system.drop_database(name)
        odoo_system.drop_filestore(name)


@pytest.fixture
def make_server():
    servers = []

    def make(db, **options):
        server = odoo_system.OdooServer(db, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def make_business():
    businesses = []

    def make(seed=0):
        business = scenario.start_sandbox(seed)
        businesses.append(business)
        return business

    yield make
    for business in businesses:
        business.sandbox.stop()


@pytest.fixture
def report():
    return FIGURES.append


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("system test figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
