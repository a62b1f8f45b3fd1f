"""Security: what users and attackers try through JSON-RPC and HTTP, all refused.

Every attempt goes through the server as a browser or a script would send it
(``/web/dataset/call_kw``, ``/web/dataset/call_button``, the OAuth callback),
signed in as the attacker. Each one must be

* denied: an ``AccessError`` in the JSON-RPC error (``error.data.name``), or
  an error page / a redirect to the login page for the callback;
* logged: Odoo's ``odoo.http`` warning for a refused RPC, the connector's own
  warning for a refused callback, ``odoo.http``'s "Session expired" for an
  anonymous visitor;
* harmless: the connection (tokens and secret included), the documents'
  Sage fields and the OAuth states are the same afterwards, Sage received no
  write, and no secret appears in any answer.

The class ends with the line "security: N attempts denied of N".
"""

import json
import logging
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from odoo.tests import HttpCase, new_test_user, tagged

from .attack_common import AttackTallyMixin, JsonRpcMixin, captured_logs
from .common import TEST_CLIENT_ID, TEST_CLIENT_SECRET
from .test_send_common import SagePushCase

CALLBACK = "/sage_one/oauth/callback"
CONTROLLER_LOGGER = "odoo.addons.sage_one_connector.controllers.main"
ACCESS_ERROR = "odoo.exceptions.AccessError"
EVIL = "https://evil.example/steal"

_logger = logging.getLogger(__name__)

# Everything of the connection an attacker would like to read or change.
CONNECTION_FIELDS = (
    "active",
    "company_id",
    "state",
    "api_url",
    "authorize_url",
    "token_url",
    "revoke_url",
    "app_url",
    "client_id",
    "client_secret",
    "access_token",
    "refresh_token",
    "access_token_expires_at",
    "refresh_token_expires_at",
    "business_id",
    "business_name",
    "business_currency",
    "default_ledger_id",
    "bad_debt_ledger_id",
    "default_due_days",
    "numbering_mode",
    "number_prefix",
    "number_suffix",
    "max_concurrency",
)


@tagged("post_install", "-at_install")
class TestSecurityAttempts(AttackTallyMixin, JsonRpcMixin, SagePushCase, HttpCase):
    tally_name = "security"
    tally_minimum = 12
    tally_line = "%(name)s: %(handled)s attempts denied of %(tried)s"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        # Odoo gives new internal users the export right by default: the team
        # attacker has it, so export_data is really tried, not refused for lack of it.
        cls.team_user.groups_id |= env.ref("base.group_allow_export")
        cls.rival_company = cls.setup_other_company(name="Rival Trading Ltd")["company"]
        cls.rival = new_test_user(
            env,
            login="sage_rival",
            groups="sage_one_connector.group_sage_financial_manager,base.group_allow_export",
            company_id=cls.rival_company.id,
            company_ids=[(6, 0, cls.rival_company.ids)],
        )
        cls.portal = new_test_user(env, login="sage_portal", groups="base.group_portal")
        cls.portal.partner_id.email = "portal-customer@customer.example"
        admin_values = {
            "groups": "base.group_system,sage_one_connector.group_sage_financial_manager",
            "company_id": cls.company.id,
            "company_ids": [(6, 0, cls.company.ids)],
        }
        cls.admin_1 = new_test_user(env, login="sage_admin_one", **admin_values)
        cls.admin_2 = new_test_user(env, login="sage_admin_two", **admin_values)

    def setUp(self):
        super().setUp()
        # The portal user's own invoice: the one document a portal user can see.
        self.invoice = self.make_invoice(self.portal.partner_id)
        self.send(self.invoice)
        self.assertEqual(self.invoice.sage_state, "sent", self.invoice.sage_last_error)
        self.credit_note = self.make_credit_note(self.invoice)
        self.unsent = self.make_invoice()
        self.uncertain = self.make_invoice()
        self.uncertain.write({"sage_state": "uncertain", "sage_idempotency_id": "kept-id-1"})
        self.documents = self.invoice + self.credit_note + self.unsent + self.uncertain
        conn = self.connection.sudo()
        self.secrets = [TEST_CLIENT_SECRET, conn.access_token, conn.refresh_token]
        self.assertTrue(all(self.secrets))

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def snapshot(self):
        """Everything an attempt could change, read as superuser."""
        self.env.invalidate_all()
        conn = self.connection.sudo()
        states = self.env["sage.oauth.state"].sudo().search([])
        return {
            "connection": {name: conn[name] for name in CONNECTION_FIELDS},
            "documents": self.move_snapshot(self.documents),
            "oauth_states": [(s.id, s.used_at, s.user_id.id) for s in states],
            "contact_links": self.env["sage.contact.link"].sudo().search_count([]),
            "ledger_mappings": self.env["sage.ledger.mapping"].sudo().search_count([]),
        }

    def assertNoSecret(self, text, label):
        for secret in self.secrets:
            self.assertNotIn(secret, text, f"{label}: a secret was disclosed")

    def login(self, user):
        if user:
            self.authenticate(user.login, user.login)
        else:
            self.authenticate(None, None)

    def attempt_rpc(self, label, user, model, method, args=(), kwargs=None, message=None):
        """One JSON-RPC attempt by `user`: AccessError, logged, nothing changed."""
        self.tally_try(label)
        self.login(user)
        before = self.snapshot()
        writes = self.sage_writes()
        with captured_logs("odoo.http", level=logging.WARNING) as records:
            answer = self.rpc(model, method, args, kwargs)
        self.assertNoSecret(json.dumps(answer, default=str), label)
        error = self.rpc_error(answer, label)
        self.assertEqual(error["name"], ACCESS_ERROR, f"{label}: {error['message']}")
        if message:
            self.assertRegex(error["message"], message, label)
        first_line = error["message"].splitlines()[0]
        self.assertTrue(
            any(first_line in record.getMessage() for record in records),
            f"{label}: the denial was not logged ({[r.getMessage() for r in records]})",
        )
        self.assertEqual(self.sage_writes(), writes, f"{label}: Sage received a write")
        self.assertEqual(self.snapshot(), before, f"{label}: data changed")
        self.tally_handled(label)
        return error

    def click_connect(self, admin):
        """`admin` clicks Connect on the company's (connected) connection: its state."""
        action = self.connection.with_user(admin).action_sage_connect()
        return parse_qs(urlsplit(action["url"]).query)["state"][0]

    def sage_code(self, state):
        """What Sage hands back after its user approved Odoo with `state`."""
        callback = self.sandbox.approve(
            TEST_CLIENT_ID, self.redirect_uri, state, user_id=self.sage_user_id
        )
        return parse_qs(urlsplit(callback).query)["code"][0]

    def open_callback(self, query):
        with captured_logs(CONTROLLER_LOGGER, "odoo.http", level=logging.INFO) as records:
            response = self.url_open(CALLBACK + "?" + urlencode(query), allow_redirects=False)
        self.env.invalidate_all()
        return response, [record.getMessage() for record in records]

    def assertNotOffSite(self, response, label):
        location = response.headers.get("Location")
        here = ("", urlsplit(self.base_url()).netloc)
        if location:
            target = urlsplit(location)
            self.assertIn(target.netloc, here, label)
            # The login page sends the visitor back to the `redirect` it is
            # given: that must be a path of this site too (the attacker's URL
            # may only survive as an inert query parameter of it).
            for after_login in parse_qs(target.query).get("redirect", []):
                self.assertTrue(after_login.startswith("/"), f"{label}: {after_login}")
                self.assertFalse(after_login.startswith("//"), f"{label}: {after_login}")
                self.assertIn(urlsplit(after_login).netloc, here, label)
        self.assertNotIn('href="https://evil', response.text, label)
        self.assertNotIn("href='https://evil", response.text, label)
        self.assertNotIn('href="//evil', response.text, label)

    def attempt_callback(self, label, user, query, status, page_text, log_text, code=None):
        """One callback attempt: error page `status`, logged, not redirected, nothing changed."""
        self.tally_try(label)
        self.login(user)
        before = self.snapshot()
        writes = self.sage_writes()
        response, logs = self.open_callback(query)
        self.assertNotOffSite(response, label)
        self.assertNoSecret(response.text, label)
        self.assertEqual(response.status_code, status, f"{label}: {response.text[:300]}")
        if page_text:
            self.assertIn("The connection to Sage was not made", response.text, label)
            self.assertIn(page_text, response.text, label)
        self.assertTrue(any(log_text in line for line in logs), f"{label}: not logged ({logs})")
        if code:
            self.assertFalse(self.sandbox.state.codes[code]["used"], f"{label}: code exchanged")
        self.assertEqual(self.sage_writes(), writes, f"{label}: Sage received a write")
        self.assertEqual(self.snapshot(), before, f"{label}: data changed")
        self.tally_handled(label)
        return response

    # ------------------------------------------------------------------
    # The accounts team oversteps its role
    # ------------------------------------------------------------------
    def test_team_pushes_what_only_managers_may(self):
        team = self.team_user
        self.attempt_rpc(
            "team sends a credit note",
            team,
            "account.move",
            "action_sage_send",
            [self.credit_note.ids],
            message="Only financial managers can send credit notes",
        )
        self.attempt_rpc(
            "team writes an invoice off",
            team,
            "account.move",
            "action_sage_write_off",
            [self.invoice.ids],
            message="Only financial managers can write invoices off",
        )
        self.attempt_rpc(
            "team resends an uncertain document",
            team,
            "account.move",
            "action_sage_send",
            [self.uncertain.ids],
            message="Only financial managers can resend",
        )
        self.attempt_rpc(
            "team links an uncertain document to a Sage document",
            team,
            "account.move",
            "action_sage_link_candidate",
            [self.uncertain.ids],
        )
        self.attempt_rpc(
            "team marks an invoice written off",
            team,
            "account.move",
            "action_sage_mark_written_off",
            [self.invoice.ids],
        )
        self.attempt_rpc(
            "team writes the written-off status directly",
            team,
            "account.move",
            "write",
            [self.invoice.ids, {"sage_payment_status": "written_off"}],
        )

    def test_team_clears_the_uncertain_state_to_resend_it(self):
        # The manager-only rule on uncertain documents must not be bypassed
        # by rewriting the Sage state with a plain write.
        self.attempt_rpc(
            "team rewrites the Sage state of an uncertain document",
            self.team_user,
            "account.move",
            "write",
            [self.uncertain.ids, {"sage_state": "not_sent", "sage_idempotency_id": False}],
        )
        self.attempt_rpc(
            "team unlinks a sent invoice from its Sage document",
            self.team_user,
            "account.move",
            "write",
            [self.invoice.ids, {"sage_state": "not_sent", "sage_id": False}],
        )

    def test_team_runs_push_all(self):
        if "sage.push.wizard" not in self.env.registry:
            self.skipTest("the Push all wizard is not registered yet")
        team = self.team_user
        self.attempt_rpc(
            "team opens Push all",
            team,
            "account.move",
            "action_sage_open_push_all",
            [[]],
            message="Only financial managers can push all",
        )
        self.attempt_rpc(
            "team previews Push all",
            team,
            "sage.push.wizard",
            "default_get",
            [["type_line_ids", "company_id", "scope"]],
            message="Only financial managers can push all",
        )
        # A wizard made by a manager, its buttons clicked by the team.
        wizard = self.env["sage.push.wizard"].with_user(self.manager_user).create({})
        for method in ("action_push_now", "action_remove_drafts"):
            self.attempt_rpc(
                f"team clicks {method} in Push all",
                team,
                "sage.push.wizard",
                method,
                [wizard.ids],
            )

    # ------------------------------------------------------------------
    # Secrets: tokens and client secret
    # ------------------------------------------------------------------
    def test_team_reads_the_secrets(self):
        team = self.team_user
        conn_ids = self.connection.ids
        self.attempt_rpc(
            "team reads the client secret",
            team,
            "sage.connection",
            "read",
            [conn_ids, ["client_id", "client_secret"]],
        )
        self.attempt_rpc(
            "team search_reads the tokens",
            team,
            "sage.connection",
            "search_read",
            [[], ["access_token", "refresh_token"]],
        )
        self.attempt_rpc(
            "team web_reads the refresh token",
            team,
            "sage.connection",
            "web_read",
            [conn_ids],
            {"specification": {"refresh_token": {}, "client_secret": {}}},
        )
        self.attempt_rpc(
            "team groups connections by client secret",
            team,
            "sage.connection",
            "read_group",
            [[], ["client_secret"], ["client_secret"]],
        )
        self.attempt_rpc(
            "team probes the client secret with a search domain",
            team,
            "sage.connection",
            "search_count",
            [[("client_secret", "=like", "odoo-%")]],
        )
        self.attempt_rpc(
            "team exports the client secret",
            team,
            "sage.connection",
            "export_data",
            [conn_ids, ["client_secret"]],
        )
        self.attempt_rpc(
            "team exports the access and refresh tokens",
            team,
            "sage.connection",
            "export_data",
            [conn_ids, ["access_token", "refresh_token"]],
        )
        self.attempt_rpc(
            "team reads the token table",
            team,
            "sage.connection.token",
            "search_read",
            [[], ["access_token", "refresh_token"]],
        )
        self.attempt_rpc(
            "team reads the OAuth states",
            team,
            "sage.oauth.state",
            "search_read",
            [[], ["nonce_hash", "user_id"]],
        )

    def test_secrets_do_not_leak_through_allowed_reads(self):
        """What the team may read (the form, fields_get) carries no secret."""
        self.login(self.team_user)
        answers = [
            self.rpc("sage.connection", "fields_get", [], {"attributes": ["string", "type"]}),
            self.rpc("sage.connection", "read", [self.connection.ids]),
            self.rpc("sage.connection", "search_read", [[]]),
            self.rpc("account.move", "read", [self.invoice.ids]),
        ]
        for answer in answers:
            self.assertIn("result", answer, answer.get("error"))
            self.assertNoSecret(json.dumps(answer, default=str), "allowed read")
        fields_description = answers[0]["result"]
        for name in ("client_id", "client_secret", "access_token", "refresh_token"):
            self.assertNotIn(name, fields_description, "system-only fields are not described")
            self.assertNotIn(name, answers[1]["result"][0])

    def test_team_and_manager_write_the_connection_itself(self):
        conn_ids = self.connection.ids
        self.attempt_rpc(
            "team replaces the client secret",
            self.team_user,
            "sage.connection",
            "write",
            [conn_ids, {"client_secret": "attacker-secret"}],
        )
        self.attempt_rpc(
            "team edits the posting rules",
            self.team_user,
            "sage.connection",
            "write",
            [conn_ids, {"default_due_days": 1}],
        )
        self.attempt_rpc(
            "manager injects an access token",
            self.manager_user,
            "sage.connection",
            "write",
            [conn_ids, {"access_token": "attacker-token", "refresh_token": "attacker-refresh"}],
            message="Only system administrators",
        )
        self.attempt_rpc(
            "manager points the token URL at a foreign host",
            self.manager_user,
            "sage.connection",
            "write",
            [conn_ids, {"token_url": "https://evil.example/token"}],
            message="Only system administrators",
        )
        self.attempt_rpc(
            "manager moves the company to another Sage business",
            self.manager_user,
            "sage.connection",
            "web_save",
            [conn_ids, {"business_id": "another-business", "client_id": "other-app"}],
            {"specification": {}},
            message="Only system administrators",
        )
        self.attempt_rpc(
            "manager writes the token row",
            self.manager_user,
            "sage.connection.token",
            "create",
            [{"connection_id": self.connection.id, "access_token": "x"}],
        )
        self.attempt_rpc(
            "team clicks Connect",
            self.team_user,
            "sage.connection",
            "action_sage_connect",
            [conn_ids],
        )
        self.attempt_rpc(
            "manager clicks Disconnect",
            self.manager_user,
            "sage.connection",
            "action_sage_disconnect",
            [conn_ids],
        )
        self.attempt_rpc(
            "team syncs the reference data",
            self.team_user,
            "sage.connection",
            "action_sage_sync_reference_data",
            [conn_ids],
        )

    # ------------------------------------------------------------------
    # Another company
    # ------------------------------------------------------------------
    def test_user_of_another_company(self):
        rival = self.rival
        self.attempt_rpc(
            "other company pushes our invoice",
            rival,
            "account.move",
            "action_sage_send",
            [self.unsent.ids],
        )
        self.attempt_rpc(
            "other company writes our sent invoice off",
            rival,
            "account.move",
            "action_sage_write_off",
            [self.invoice.ids],
        )
        self.attempt_rpc(
            "other company reads our invoice's Sage fields",
            rival,
            "account.move",
            "read",
            [self.invoice.ids, ["sage_id", "sage_number", "sage_state"]],
        )
        self.attempt_rpc(
            "other company reads our connection",
            rival,
            "sage.connection",
            "web_read",
            [self.connection.ids],
            {"specification": {"business_id": {}, "business_name": {}}},
        )
        self.attempt_rpc(
            "other company changes our posting rules",
            rival,
            "sage.connection",
            "write",
            [self.connection.ids, {"default_due_days": 0}],
        )
        self.attempt_rpc(
            "other company pulls our payments",
            rival,
            "sage.connection",
            "action_sage_pull_payments",
            [self.connection.ids],
        )
        self.attempt_rpc(
            "other company tests our connection",
            rival,
            "sage.connection",
            "action_sage_test_connection",
            [self.connection.ids],
        )
        # Searching is not an error but finds nothing of ours.
        self.login(rival)
        answer = self.rpc("sage.connection", "search_read", [[], ["business_id"]])
        self.assertEqual(answer.get("result"), [])

    # ------------------------------------------------------------------
    # Portal
    # ------------------------------------------------------------------
    def test_portal_user_calls_sage_methods(self):
        portal = self.portal
        # The portal user's own invoice, which the portal may read.
        self.login(portal)
        self.assertIn("result", self.rpc("account.move", "read", [self.invoice.ids, ["name"]]))
        for method, ids in (
            ("action_sage_send", self.invoice.ids),
            ("action_sage_write_off", self.invoice.ids),
            ("action_sage_mark_written_off", self.invoice.ids),
        ):
            self.attempt_rpc(f"portal calls {method}", portal, "account.move", method, [ids])
        for method in (
            "action_sage_connect",
            "action_sage_disconnect",
            "action_sage_sync_reference_data",
            "action_sage_test_connection",
            "action_sage_pull_payments",
        ):
            self.attempt_rpc(
                f"portal calls {method}",
                portal,
                "sage.connection",
                method,
                [self.connection.ids],
            )
        self.attempt_rpc(
            "portal reads the connection",
            portal,
            "sage.connection",
            "read",
            [self.connection.ids, ["business_id"]],
        )

    # ------------------------------------------------------------------
    # OAuth callback
    # ------------------------------------------------------------------
    def test_callback_with_a_forged_state(self):
        forged = secrets.token_urlsafe(32)
        code = self.sage_code(forged)
        self.attempt_callback(
            "callback with a forged state",
            self.admin_1,
            {"code": code, "state": forged},
            403,
            "unknown state",
            "Sage OAuth callback refused: invalid state",
            code=code,
        )

    def test_callback_with_a_reused_state(self):
        state = self.click_connect(self.admin_1)
        self.login(self.admin_1)
        # First use: the administrator declined in Sage; the state is spent.
        response, _logs = self.open_callback({"state": state, "error": "access_denied"})
        self.assertEqual(response.status_code, 400)
        code = self.sage_code(state)
        self.attempt_callback(
            "callback with a state already used",
            self.admin_1,
            {"code": code, "state": state},
            403,
            "already used",
            "Sage OAuth callback refused: used state",
            code=code,
        )

    def test_callback_with_another_users_state(self):
        state = self.click_connect(self.admin_1)
        code = self.sage_code(state)
        self.attempt_callback(
            "callback with another administrator's state",
            self.admin_2,
            {"code": code, "state": state},
            403,
            "started by another user",
            "Sage OAuth callback refused: other_user state",
            code=code,
        )
        self.attempt_callback(
            "callback by a financial manager who is no administrator",
            self.manager_user,
            {"code": code, "state": state},
            403,
            "Only system administrators",
            "Sage OAuth callback refused: user",
            code=code,
        )

    def test_callback_open_redirect(self):
        # A state that is itself an external URL, with every usual redirect parameter.
        code = self.sage_code(EVIL)
        redirects = {"redirect": EVIL, "next": EVIL, "url": EVIL, "return_to": "//evil.example"}
        self.attempt_callback(
            "callback whose state is an external URL",
            self.admin_1,
            dict(redirects, code=code, state=EVIL),
            403,
            "unknown state",
            "Sage OAuth callback refused: invalid state",
            code=code,
        )
        # A genuine state of the administrator, redirect parameters added by an attacker.
        state = self.click_connect(self.admin_2)
        code = self.sage_code(state)
        self.attempt_callback(
            "another user's state with redirect parameters",
            self.admin_1,
            dict(redirects, code=code, state=state),
            403,
            "started by another user",
            "Sage OAuth callback refused: other_user state",
            code=code,
        )
        # The state's owner lands on the error page of Sage's refusal, on this site.
        self.login(self.admin_2)
        before = self.snapshot()
        response, _logs = self.open_callback(dict(redirects, state=state, error="access_denied"))
        self.assertEqual(response.status_code, 400)
        self.assertNotOffSite(response, "declined callback with redirect parameters")
        self.assertIn(f'href="/odoo/sage.connection/{self.connection.id}"', response.text)
        before["oauth_states"] = self.snapshot()["oauth_states"]  # the state is spent
        self.assertEqual(self.snapshot(), before)

    def test_callback_without_a_session(self):
        state = self.click_connect(self.admin_1)
        code = self.sage_code(state)
        label = "anonymous visitor opens the callback"
        self.tally_try(label)
        self.login(None)
        before = self.snapshot()
        writes = self.sage_writes()
        response, logs = self.open_callback({"code": code, "state": state, "redirect": EVIL})
        self.assertIn(response.status_code, (302, 303), response.text[:300])
        self.assertNotOffSite(response, label)
        self.assertEqual(urlsplit(response.headers["Location"]).path, "/web/login")
        self.assertTrue(any("Session expired" in line for line in logs), logs)
        self.assertFalse(self.sandbox.state.codes[code]["used"])
        self.assertEqual(self.sage_writes(), writes)
        self.assertEqual(self.snapshot(), before)
        self.tally_handled(label)
