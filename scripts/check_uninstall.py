"""Uninstall sage_one_connector from a test database and check it left nothing.

Usage: python3 scripts/check_uninstall.py <odoo server options, including -d DB>
Prints "uninstall: N passed, N failed" and exits non-zero on a failure.
"""

import sys

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

MODULE = "sage_one_connector"


def main(argv):
    odoo.tools.config.parse_config(argv)
    db = odoo.tools.config["db_name"]
    checks = []
    with Registry(db).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        module = env["ir.module.module"].search([("name", "=", MODULE)])
        checks.append(("installed before the uninstall", module.state == "installed"))
        module.button_immediate_uninstall()
    with Registry.new(db).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        module = env["ir.module.module"].search([("name", "=", MODULE)])
        checks.append(("module state is uninstalled", module.state == "uninstalled"))
        checks.append(("no model left", "sage.connection" not in env))
        cr.execute("SELECT count(*) FROM ir_model WHERE model LIKE 'sage.%%'")
        checks.append(("no ir.model row left", cr.fetchone()[0] == 0))
        cr.execute("SELECT to_regclass('sage_connection') IS NULL")
        checks.append(("table dropped", cr.fetchone()[0]))
        cr.execute(
            "SELECT count(*) FROM ir_model_fields"
            " WHERE name LIKE 'sage\\_%%' AND model = 'account.move'"
        )
        checks.append(("no field left on account.move", cr.fetchone()[0] == 0))
        groups = env["res.groups"].search([("name", "in", ("Accounts team", "Financial manager"))])
        checks.append(
            (
                "groups removed",
                not groups.filtered(lambda g: g.category_id.name == "Sage Accounting"),
            )
        )
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        print(f"  {'ok ' if ok else 'FAIL'} {name}")
    print(f"uninstall: {len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
