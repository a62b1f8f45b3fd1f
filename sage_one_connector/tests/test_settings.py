"""Settings block, posting rules and mappings, reference data, Test connection."""

from contextlib import contextmanager

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from .common import TEST_CLIENT_ID, TEST_CLIENT_SECRET, SageSandboxCase

CLIENT_LOGGER = "odoo.addons.sage_one_connector.sage_api.client"


@tagged("post_install", "-at_install")
class TestSettings(SageSandboxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        cls.admin = new_test_user(
            cls.env,
            login="sage_settings_admin",
            groups="base.group_system,account.group_account_manager,"
            "sage_one_connector.group_sage_financial_manager",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )
        cls.ledgers = {ledger.nominal_code: ledger for ledger in cls.connection.ledger_account_ids}

    def setUp(self):
        super().setUp()
        self.sage_renew_tokens()

    def _settings(self, user=None, company=None):
        Settings = self.env["res.config.settings"].with_user(user or self.admin)
        return Settings.with_company(company or self.company).create({})

    @contextmanager
    def _refused(self, exception, pattern):
        """assertRaises (which rolls its block back) plus a check of the message."""
        with self.assertRaises(exception) as caught:
            yield
        self.assertRegex(str(caught.exception), pattern)

    def _sandbox_ledger(self, ledger):
        """The sandbox record of `ledger`, restored after the test."""
        record = self.sandbox.state.ledger_accounts[ledger.sage_id]
        saved = {
            "name": record["name"],
            "visible_scopes": list(record["visible_scopes"]),
            "visible_in_sales": record["visible_in_sales"],
        }
        self.addCleanup(record.update, saved)
        return record

    # ------------------------------------------------------------------
    # Settings block
    # ------------------------------------------------------------------
    def test_settings_show_the_connection(self):
        settings = self._settings()
        self.assertEqual(settings.sage_connection_id, self.connection)
        self.assertEqual(settings.sage_connection_state, "connected")
        self.assertEqual(settings.sage_business_name, "Test Trading Ltd")
        self.assertEqual(settings.sage_client_id, TEST_CLIENT_ID)
        self.assertEqual(settings.sage_client_secret, TEST_CLIENT_SECRET)
        arch = settings.get_views([(False, "form")])["views"]["form"]["arch"]
        for name in (
            "sage_one_settings",
            "action_sage_connect",
            "action_sage_disconnect",
            "action_sage_test_connection",
            "action_sage_open_ledger_mappings",
            "action_sage_open_tax_mapping",
            "sage_client_secret",
        ):
            self.assertIn(name, arch)

    def test_saving_the_client_id_creates_the_connection(self):
        company_2 = self.setup_other_company(name="Settings Two")["company"]
        self.admin.write({"company_ids": [(4, company_2.id)]})
        settings = self._settings(company=company_2)
        self.assertFalse(settings.sage_connection_id)
        settings.write({"sage_client_id": "my-app", "sage_client_secret": "my-secret"})
        settings.execute()
        connection = self.env["sage.connection"]._for_company(company_2)
        self.assertEqual(connection.client_id, "my-app")
        self.assertEqual(connection.client_secret, "my-secret")
        self.assertEqual(connection.state, "not_connected")
        self.assertEqual(connection.api_url, "https://api.accounting.sage.com/v3.1")

        action = self._settings(company=company_2).action_sage_connect()
        self.assertEqual(action["type"], "ir.actions.act_url")
        state = self.env["sage.oauth.state"].search([("connection_id", "=", connection.id)])
        self.assertEqual(state.user_id, self.admin)
        self.assertEqual(state.company_id, company_2)
        self.assertIn("state=", action["url"])
        self.assertNotIn(state.nonce_hash, action["url"], "only the nonce leaves the server")

    def test_connect_without_client_id_is_refused_and_creates_nothing(self):
        company_2 = self.setup_other_company(name="Settings Three")["company"]
        self.admin.write({"company_ids": [(4, company_2.id)]})
        with self._refused(UserError, "client ID and client secret"):
            self._settings(company=company_2).action_sage_connect()
        self.assertFalse(self.env["sage.connection"]._for_company(company_2, False))

    def test_settings_actions_open_the_mappings(self):
        settings = self._settings()
        mappings = settings.action_sage_open_ledger_mappings()
        self.assertEqual(mappings["res_model"], "sage.ledger.mapping")
        self.assertEqual(mappings["context"]["default_connection_id"], self.connection.id)
        taxes = settings.action_sage_open_tax_mapping()
        self.assertEqual(taxes["res_model"], "account.tax")
        self.assertIn(("type_tax_use", "=", "sale"), taxes["domain"])
        self.assertIn(("company_id", "=", self.company.id), taxes["domain"])
        self.assertEqual(settings.action_sage_open_connection()["res_id"], self.connection.id)

    # ------------------------------------------------------------------
    # Posting rules
    # ------------------------------------------------------------------
    def test_posting_rules_validation(self):
        connection = self.connection.with_user(self.manager_user)
        connection.write({"numbering_mode": "odoo", "number_prefix": "OD-", "number_suffix": "-UK"})
        with self._refused(ValidationError, "at most 6 characters"):
            connection.write({"number_prefix": "TOOLONG-"})
        with self._refused(ValidationError, "together can be at most 10"):
            connection.write({"number_prefix": "ODOO-", "number_suffix": "-SUFFIX"})
        with self._refused(ValidationError, "cannot contain spaces"):
            connection.write({"number_prefix": "A B"})
        with self._refused(ValidationError, "between 0 and 365"):
            connection.write({"default_due_days": 400})
        other = self._sage_connect(self.setup_other_company(name="Ledgers Two")["company"])
        with self._refused(ValidationError, "belongs to another Sage business"):
            self.connection.write({"default_ledger_id": other.ledger_account_ids[:1].id})

    def test_endpoints_must_be_https_except_on_this_machine(self):
        with self._refused(ValidationError, "https://"):
            self.connection.write({"token_url": "http://sage.example.com/token"})
        with self._refused(ValidationError, "https://"):
            self.connection.write({"api_url": "not a url"})
        self.connection.write({"token_url": "https://oauth.accounting.sage.com/token"})
        self.connection.write({"token_url": self.sandbox.token_url})

    def test_connection_form_posting_rules_page(self):
        form = Form(self.connection.with_user(self.manager_user))
        form.default_ledger_id = self.ledgers["4010"]
        form.default_due_days = 14
        form.save()
        self.assertEqual(self.connection.default_ledger_id, self.ledgers["4010"])
        self.assertEqual(self.connection.default_due_days, 14)

    # ------------------------------------------------------------------
    # Mappings
    # ------------------------------------------------------------------
    def test_ledger_mapping_rules(self):
        income = self.company_data["default_account_revenue"]
        Mapping = self.env["sage.ledger.mapping"].with_user(self.manager_user)
        mapping = Mapping.create(
            {
                "connection_id": self.connection.id,
                "account_id": income.id,
                "ledger_id": self.ledgers["4010"].id,
            }
        )
        self.assertEqual(self.connection.ledger_mapping_count, 1)
        self.assertEqual(mapping.company_id, self.company)

        other = self._sage_connect(self.setup_other_company(name="Mapping Two")["company"])
        with self._refused(ValidationError, "same Sage business"):
            Mapping.create(
                {
                    "connection_id": self.connection.id,
                    "product_id": self.product_a.id,
                    "ledger_id": other.ledger_account_ids[:1].id,
                }
            )
        archived = self.ledgers["4900"]
        archived.active = False
        with self._refused(ValidationError, "no longer visible"):
            Mapping.create(
                {
                    "connection_id": self.connection.id,
                    "product_id": self.product_a.id,
                    "ledger_id": archived.id,
                }
            )
        foreign_account = self.env["account.account"].search(
            [("company_ids", "not in", self.company.ids), ("account_type", "=", "income")],
            limit=1,
        )
        self.assertTrue(foreign_account)
        with self._refused(ValidationError, "is not used by"):
            Mapping.create(
                {
                    "connection_id": self.connection.id,
                    "account_id": foreign_account.id,
                    "ledger_id": self.ledgers["4000"].id,
                }
            )

    def test_tax_mapping_rules(self):
        rate = self.sage_tax_rate("GB_STANDARD")
        self.tax_sale_a.sage_tax_rate_id = rate
        self.assertEqual(self.tax_sale_a.sage_tax_rate_id, rate)
        with self._refused(ValidationError, "Only sales taxes"):
            self.tax_purchase_a.sage_tax_rate_id = rate
        other_company = self.setup_other_company(name="Taxes Two")
        other = self._sage_connect(other_company["company"])
        with self._refused(ValidationError, "another company"):
            self.tax_sale_a.sage_tax_rate_id = self.sage_tax_rate("GB_ZERO", connection=other)

    # ------------------------------------------------------------------
    # Reference data
    # ------------------------------------------------------------------
    def test_manager_syncs_reference_data_team_cannot(self):
        ledger = self.ledgers["4900"]
        with self.sandbox.lock:
            self._sandbox_ledger(ledger)["name"] = "Other Income (renamed)"
        before = self.connection.last_reference_sync
        action = self.connection.with_user(self.manager_user).action_sage_sync_reference_data()
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(ledger.name, "Other Income (renamed)")
        self.assertGreaterEqual(self.connection.last_reference_sync, before)
        with self.assertRaises(AccessError):
            self.connection.with_user(self.team_user).action_sage_sync_reference_data()

    def test_daily_reference_sync_archives_what_sage_hides(self):
        ledger = self.ledgers["4900"]
        with self.sandbox.lock:
            record = self._sandbox_ledger(ledger)
            record["visible_scopes"] = [s for s in record["visible_scopes"] if s != "sales"]
            record["visible_in_sales"] = False
        self.env["sage.connection"]._cron_sage_sync_reference_data()
        self.assertFalse(ledger.active)
        self.assertTrue(self.ledgers["4000"].active)

    # ------------------------------------------------------------------
    # Test connection
    # ------------------------------------------------------------------
    def _run_checks(self, user=None, include_test_invoice=False):
        connection = self.connection.with_user(user or self.manager_user)
        action = connection.action_sage_test_connection()
        test = (
            self.env["sage.connection.test"]
            .browse(action["res_id"])
            .with_user(user or self.manager_user)
        )
        test.include_test_invoice = include_test_invoice
        test.action_sage_run()
        return {line.name: line for line in test.line_ids}, test

    def _open_invoice(self, taxes):
        invoice = self.init_invoice("out_invoice", amounts=[100], taxes=taxes, post=True)
        self.assertEqual(invoice.sage_state, "not_sent")
        return invoice

    def test_every_check_passes_on_a_healthy_connection(self):
        self.tax_sale_a.sage_tax_rate_id = self.sage_tax_rate("GB_STANDARD")
        self._open_invoice(self.tax_sale_a)
        before = self.sandbox.stats()["writes"]
        results, test = self._run_checks()
        self.assertEqual(
            list(results),
            [
                "Access token",
                "Business reachable",
                "Subscription active",
                "Taxes mapped",
                "Default revenue ledger",
            ],
        )
        self.assertTrue(all(line.passed for line in results.values()), results)
        self.assertTrue(test.all_passed)
        self.assertIn("X-Business", results["Business reachable"].detail)
        self.assertIn("Accounting Plus", results["Subscription active"].detail)
        self.assertEqual(results["Access token"].result, "✓")
        self.assertEqual(self.sandbox.stats()["writes"], before, "the checks are read-only")

    def test_unmapped_tax_and_hidden_ledger_are_reported(self):
        self.tax_sale_a.sage_tax_rate_id = False
        self._open_invoice(self.tax_sale_a)
        with self.sandbox.lock:
            record = self._sandbox_ledger(self.connection.default_ledger_id)
            record["visible_scopes"] = [s for s in record["visible_scopes"] if s != "sales"]
        results, test = self._run_checks()
        self.assertFalse(test.all_passed)
        self.assertFalse(results["Taxes mapped"].passed)
        self.assertIn(self.tax_sale_a.name, results["Taxes mapped"].detail)
        self.assertEqual(results["Taxes mapped"].result, "✗")
        self.assertFalse(results["Default revenue ledger"].passed)
        self.assertIn("no longer visible", results["Default revenue ledger"].detail)
        self.assertTrue(results["Access token"].passed)

    def test_inactive_subscription_is_reported(self):
        subscription = self.sandbox.state.businesses[self.sage_business_id]["subscriptions"][0]
        self.addCleanup(subscription.update, {"active": True})
        with self.sandbox.lock:
            subscription["active"] = False
        with mute_logger(CLIENT_LOGGER):
            results, _test = self._run_checks()
        self.assertTrue(results["Access token"].passed)
        self.assertFalse(results["Business reachable"].passed)
        self.assertIn("not active", results["Business reachable"].detail)
        self.assertFalse(results["Subscription active"].passed)

    def test_refused_token_skips_the_other_checks(self):
        self.sandbox.state.refresh_tokens[self.connection.sudo().refresh_token]["active"] = False
        self.sandbox.expire_access_tokens()
        self.connection.sudo().access_token_expires_at = "2000-01-01 00:00:00"
        with mute_logger("odoo.addons.sage_one_connector.models.sage_connection"):
            results, test = self._run_checks()
        self.assertEqual(list(results), ["Access token", "Other checks"])
        self.assertFalse(test.all_passed)
        self.assertEqual(self.connection.state, "needs_reconnect")

    def test_optional_test_invoice_is_created_then_voided(self):
        results, _test = self._run_checks(include_test_invoice=True)
        line = results["Test invoice created and voided"]
        self.assertTrue(line.passed, line.detail)
        contact_id = self.connection.test_contact_id
        self.assertTrue(contact_id)
        invoices = [
            invoice
            for invoice in self.sandbox.state.sales_invoices.values()
            if invoice["contact"]["id"] == contact_id
        ]
        self.assertEqual(len(invoices), 1)
        self.assertEqual(invoices[0]["status"]["id"], "VOID")

        # A second run reuses the test contact.
        results, _test = self._run_checks(include_test_invoice=True)
        self.assertTrue(results["Test invoice created and voided"].passed)
        self.assertEqual(self.connection.test_contact_id, contact_id)
        contacts = [
            contact
            for contact in self.sandbox.state.contacts.values()
            if contact["name"] == "Odoo connection test"
        ]
        self.assertEqual(len(contacts), 1)

    def test_accounts_team_cannot_test_the_connection(self):
        with self.assertRaises(AccessError):
            self.connection.with_user(self.team_user).action_sage_test_connection()


# Polls the page until `selector` holds an element, then runs `check(element)`;
# console.error fails the test, "test successful" ends it.
UI_CHECK = """
const deadline = Date.now() + 30000;
const check = %(check)s;
(function poll() {
    const element = document.querySelector(%(selector)r);
    if (element) {
        const problem = check(element);
        if (problem) { console.error(problem); } else { console.log("test successful"); }
        return;
    }
    if (Date.now() > deadline) { console.error("not rendered: " + %(selector)r); return; }
    setTimeout(poll, 250);
})();
"""


@tagged("post_install", "-at_install")
class TestSettingsUi(SageSandboxCase, HttpCase):
    """The settings block and the connection form as the web client renders them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.company_data["company"]
        cls.ui_admin = new_test_user(
            cls.env,
            login="sage_ui_admin",
            groups="base.group_system,account.group_account_manager,"
            "sage_one_connector.group_sage_financial_manager",
            company_id=company.id,
            company_ids=[(6, 0, company.ids)],
        )
        cls.manager_user.password = "sage_manager"

    def _check_page(self, url, selector, check, login):
        code = UI_CHECK % {"selector": selector, "check": check}
        self.browser_js(url, code, login=login, timeout=90)

    def test_settings_block_of_a_connected_company(self):
        self._check_page(
            "/odoo/action-account.action_account_config",
            "#sage_one_connection",
            """(element) => {
                const text = element.textContent;
                const buttons = [...element.querySelectorAll("button")].map(
                    (button) => button.textContent.trim());
                if (!text.includes("Test Trading Ltd")) { return "business not shown: " + text; }
                for (const name of ["Reconnect", "Disconnect", "Test connection",
                                    "Ledger mappings", "Tax mapping"]) {
                    if (!buttons.includes(name)) { return "missing button " + name; }
                }
                if (buttons.includes("Connect")) { return "Connect shown while connected"; }
                if (element.querySelector(".alert-warning")) { return "banner while connected"; }
                return null;
            }""",
            login="sage_ui_admin",
        )

    def test_reconnect_banner_and_no_secret_for_a_manager(self):
        self.connection.state = "needs_reconnect"
        self._check_page(
            f"/odoo/sage.connection/{self.connection.id}",
            ".o_form_view .alert-warning",
            """(element) => {
                if (!element.textContent.includes("Reconnect")) { return "no banner"; }
                const form = document.querySelector(".o_form_view");
                for (const name of ["client_secret", "client_id", "api_url"]) {
                    if (form.querySelector(`[name="${name}"]`)) { return name + " shown"; }
                }
                if (!form.querySelector('[name="default_ledger_id"]')) {
                    return "posting rules missing";
                }
                return null;
            }""",
            login="sage_manager",
        )

    def test_business_choice_page(self):
        """The page the callback redirects to when the Sage user has several businesses."""
        wizard = (
            self.env["sage.business.select"]
            .with_user(self.ui_admin)
            ._sage_open_for(
                self.connection,
                [
                    {"id": "b-north", "name": "North Ltd", "country": {"id": "GB"}},
                    {"id": "b-south", "name": "South Ltd", "country": {"id": "GB"}},
                ],
            )
        )
        self._check_page(
            f"/odoo/sage.business.select/{wizard.id}",
            ".o_form_view .o_data_row",
            """(element) => {
                const rows = [...document.querySelectorAll(".o_form_view .o_data_row")];
                const text = rows.map((row) => row.textContent).join("|");
                if (rows.length !== 2 || !text.includes("North Ltd")) { return "rows: " + text; }
                const buttons = document.querySelectorAll(
                    '.o_data_row button[name="action_sage_choose"]');
                if (buttons.length !== 2) { return "no choice buttons"; }
                return null;
            }""",
            login="sage_ui_admin",
        )
