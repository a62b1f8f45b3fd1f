"""Who may see and change the connection: tokens and secret are for system
administrators only, posting rules for financial managers, and a connection
stays inside its company."""

import json

from odoo.exceptions import AccessError
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from .common import SageSandboxCase

SECRET_FIELDS = (
    "client_secret",
    "client_id",
    "access_token",
    "refresh_token",
    "access_token_expires_at",
    "refresh_token_expires_at",
)


@tagged("post_install", "-at_install")
class TestConnectionSecurity(SageSandboxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_2 = cls.setup_other_company(name="Elsewhere Ltd")["company"]
        cls.manager_2 = new_test_user(
            cls.env,
            login="sage_manager_elsewhere",
            groups="sage_one_connector.group_sage_financial_manager,base.group_system",
            company_id=cls.company_2.id,
            company_ids=[(6, 0, cls.company_2.ids)],
        )

    def test_manager_cannot_read_tokens_or_secret(self):
        connection = self.connection.with_user(self.manager_user)
        for name in SECRET_FIELDS:
            with self.assertRaises(AccessError, msg=name):
                connection.read([name])
            with self.assertRaises(AccessError, msg=name):
                self.env["sage.connection"].with_user(self.manager_user).search_read(
                    [("id", "=", self.connection.id)], [name]
                )
        values = connection.read()[0]
        for name in SECRET_FIELDS:
            self.assertNotIn(name, values)
        self.assertEqual(values["business_name"], "Test Trading Ltd")
        with self.assertRaises(AccessError):
            self.env["sage.connection.token"].with_user(self.manager_user).search([])

    def test_manager_cannot_write_tokens_secret_or_endpoints(self):
        connection = self.connection.with_user(self.manager_user)
        for values in (
            {"access_token": "stolen"},
            {"refresh_token": "stolen"},
            {"client_secret": "mine"},
            {"client_id": "mine"},
            {"token_url": "https://evil.example/token"},
            {"api_url": "https://evil.example/v3.1"},
            {"business_id": "another"},
            {"company_id": self.company_2.id},
        ):
            with self.assertRaises(AccessError, msg=str(values)):
                connection.write(values)
        self.assertEqual(self.connection.api_url, self.sandbox.api_url)
        # Posting rules are theirs to change.
        connection.write({"default_due_days": 21, "numbering_mode": "odoo"})
        self.assertEqual(self.connection.default_due_days, 21)

    def test_accounts_team_reads_only(self):
        connection = self.connection.with_user(self.team_user)
        self.assertEqual(connection.read(["state"])[0]["state"], "connected")
        with self.assertRaises(AccessError):
            connection.write({"default_due_days": 10})
        with self.assertRaises(AccessError):
            connection.read(["refresh_token"])

    def test_only_administrators_connect_and_disconnect(self):
        connection = self.connection.with_user(self.manager_user)
        with self.assertRaises(AccessError):
            connection.action_sage_connect()
        with self.assertRaises(AccessError):
            connection.action_sage_disconnect()
        self.assertEqual(self.connection.state, "connected")
        with self.assertRaises(AccessError):
            self.env["sage.connection"].with_user(self.manager_user).create(
                {"company_id": self.company_2.id}
            )
        with self.assertRaises(AccessError):
            self.env["sage.oauth.state"].with_user(self.manager_user).search([])

    def test_forms_show_no_secret_to_managers(self):
        arch = (
            self.env["sage.connection"]
            .with_user(self.manager_user)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        for name in ("client_secret", "client_id", "refresh_token", "api_url"):
            self.assertNotIn(f'name="{name}"', arch)
        self.assertIn('name="default_ledger_id"', arch)
        fields = self.env["sage.connection"].with_user(self.manager_user).fields_get()
        for name in SECRET_FIELDS:
            self.assertNotIn(name, fields)

    def test_other_company_user_cannot_read_the_connection(self):
        Connection = self.env["sage.connection"].with_user(self.manager_2)
        self.assertFalse(Connection.search([("id", "=", self.connection.id)]))
        with self.assertRaises(AccessError):
            self.connection.with_user(self.manager_2).read(["name"])
        with self.assertRaises(AccessError):
            self.connection.with_user(self.manager_2).ledger_account_ids.read(["name"])
        with self.assertRaises(AccessError):
            self.connection.with_user(self.manager_2).action_sage_test_connection()


@tagged("post_install", "-at_install")
class TestConnectionSecurityRpc(SageSandboxCase, HttpCase):
    """The same refusals through JSON-RPC, as a browser or script would meet them."""

    def _call(self, method, args, kwargs=None):
        response = self.url_open(
            f"/web/dataset/call_kw/sage.connection/{method}",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "model": "sage.connection",
                        "method": method,
                        "args": args,
                        "kwargs": kwargs or {},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        return response.json()

    def test_manager_rpc_is_refused(self):
        self.manager_user.password = "sage_manager"
        self.authenticate("sage_manager", "sage_manager")
        ids = [self.connection.id]
        with mute_logger("odoo.http"):
            for method, args, kwargs in (
                ("read", [ids, ["refresh_token"]], {}),
                ("read", [ids, ["client_secret"]], {}),
                ("search_read", [[("id", "in", ids)]], {"fields": ["access_token"]}),
                ("write", [ids, {"refresh_token": "x"}], {}),
                ("write", [ids, {"client_secret": "x"}], {}),
                ("action_sage_connect", [ids], {}),
            ):
                answer = self._call(method, args, kwargs)
                self.assertIn("error", answer, method)
                self.assertEqual(
                    answer["error"]["data"]["name"], "odoo.exceptions.AccessError", method
                )
            answer = self._call("read", [ids, ["business_name", "state"]])
        self.assertEqual(answer["result"][0]["business_name"], "Test Trading Ltd")
        # Private helpers are not reachable at all.
        with mute_logger("odoo.http"):
            answer = self._call("_sage_access_token", [ids])
        self.assertIn("error", answer)


@tagged("post_install", "-at_install")
class TestNeutralize(SageSandboxCase):
    def test_neutralized_copy_forgets_the_tokens(self):
        self.env["sage.oauth.state"]._sage_issue(self.connection)
        for query in get_neutralization_queries(["sage_one_connector"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        self.assertEqual(self.connection.state, "not_connected")
        self.assertFalse(self.connection.sudo().refresh_token)
        self.assertFalse(self.env["sage.connection.token"].search([]))
        self.assertFalse(self.env["sage.oauth.state"].search([]))
