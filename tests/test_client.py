"""Pure tests (no Odoo) for sage_api.client.SageClient: auth, headers, bodies,
errors, pagination, logging. Sage is mocked at the HTTP level with `responses`."""

import json
import logging
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import (
    SageAuthError,
    SageClient,
    SageError,
    SageErrorDetail,
    SageForbiddenError,
    SageNotFoundError,
    SageReauthorizationRequired,
    SageServerError,
    SageValidationError,
    make_idempotency_id,
    parse_error_details,
    to_decimal,
)

API = "https://api.sage.test/v3.1"
TOKEN = "ACCESS-OLD-secret"
NEW_TOKEN = "ACCESS-NEW-secret"
BIZ = "0d40342d0287cd6b13555c54afca6c90"


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_client(sleeps):
    def factory(**kwargs):
        kwargs.setdefault("access_token", TOKEN)
        kwargs.setdefault("business_id", BIZ)
        kwargs.setdefault("sleep", sleeps.append)
        kwargs.setdefault("random_func", lambda: 1.0)
        return SageClient(API, **kwargs)

    return factory


def query(call):
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def auth_header(call):
    return call.request.headers.get("Authorization")


# -- idempotency id ---------------------------------------------------------


def test_idempotency_id_is_deterministic_32_hex():
    a = make_idempotency_id("db-uuid", "account.move", 42, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", a)
    assert a == make_idempotency_id("db-uuid", "account.move", 42, 0)
    assert a != make_idempotency_id("db-uuid", "account.move", 42, 1)
    assert a != make_idempotency_id("db-uuid", "account.move", 43, 0)
    assert a != make_idempotency_id("other-db", "account.move", 42, 0)
    with pytest.raises(ValueError):
        make_idempotency_id()


# -- 401 / refresh ----------------------------------------------------------


def test_401_refreshes_once_and_retries(rsps, make_client):
    rsps.add(responses.GET, API + "/contacts/c1", status=401, json=[])
    rsps.add(responses.GET, API + "/contacts/c1", json={"id": "c1"})
    rsps.add(responses.GET, API + "/contacts/c2", json={"id": "c2"})
    calls = []

    def refresh():
        calls.append(1)
        return NEW_TOKEN

    client = make_client(refresh=refresh)
    assert client.get_contact("c1") == {"id": "c1"}
    assert len(calls) == 1
    assert [auth_header(c) for c in rsps.calls] == ["Bearer " + TOKEN, "Bearer " + NEW_TOKEN]
    # no stale token: the next call uses the refreshed token straight away
    assert client.get_contact("c2") == {"id": "c2"}
    assert auth_header(rsps.calls[2]) == "Bearer " + NEW_TOKEN
    assert client.access_token == NEW_TOKEN
    assert client.calls == 3


def test_refresh_callback_receives_refused_token_when_it_accepts_one(rsps, make_client):
    rsps.add(responses.GET, API + "/user", status=401)
    rsps.add(responses.GET, API + "/user", json={"id": "u"})
    seen = []

    def refresh(refused):
        seen.append(refused)
        return NEW_TOKEN

    make_client(refresh=refresh).get_user()
    assert seen == [TOKEN]


def test_second_401_raises_auth_error(rsps, make_client):
    rsps.add(responses.GET, API + "/contacts/c1", status=401, headers={"x-request-id": "r-1"})
    calls = []
    client = make_client(refresh=lambda: calls.append(1) or NEW_TOKEN)
    with pytest.raises(SageAuthError) as info:
        client.get_contact("c1")
    assert not isinstance(info.value, SageReauthorizationRequired)
    assert info.value.status == 401
    assert len(calls) == 1
    assert len(rsps.calls) == 2
    assert client.calls == 2


def test_401_without_refresh_callable(rsps, make_client):
    rsps.add(responses.GET, API + "/contacts/c1", status=401)
    with pytest.raises(SageAuthError):
        make_client().get_contact("c1")
    assert len(rsps.calls) == 1


def test_refresh_reauthorization_propagates(rsps, make_client):
    rsps.add(responses.GET, API + "/contacts/c1", status=401)

    def refresh():
        raise SageReauthorizationRequired("refresh token revoked")

    with pytest.raises(SageReauthorizationRequired):
        make_client(refresh=refresh).get_contact("c1")
    assert len(rsps.calls) == 1


def test_refresh_returning_nothing_is_auth_error(rsps, make_client):
    rsps.add(responses.GET, API + "/contacts/c1", status=401)
    with pytest.raises(SageAuthError):
        make_client(refresh=lambda: None).get_contact("c1")


def test_constructor_validation():
    with pytest.raises(ValueError):
        SageClient(API, access_token="")
    with pytest.raises(TypeError):
        SageClient(API, access_token="x", refresh="not callable")


# -- X-Business and common headers -----------------------------------------


def test_x_business_only_on_business_scoped_calls(rsps, make_client):
    rsps.add(responses.GET, API + "/businesses", json={"$items": [{"id": BIZ}], "$next": None})
    rsps.add(responses.GET, API + "/businesses/" + BIZ, json={"id": BIZ})
    rsps.add(responses.GET, API + "/user", json={"id": "u1"})
    rsps.add(responses.GET, API + "/financial_settings", json={"base_currency": {"id": "GBP"}})
    rsps.add(responses.GET, API + "/contacts", json={"$items": [], "$next": None})
    rsps.add(responses.POST, API + "/sales_invoices", json={"id": "i1"}, status=201)
    client = make_client()
    assert client.list_businesses() == [{"id": BIZ}]
    client.get_business(BIZ)
    client.get_user()
    client.get_financial_settings()
    client.find_contacts_by_email("ap@acme.example")
    client.create_sales_invoice({"contact_id": "c"}, make_idempotency_id("x"))
    by_path = {urlsplit(c.request.url).path: c.request.headers for c in rsps.calls}
    assert "X-Business" not in by_path["/v3.1/businesses"]
    assert "X-Business" not in by_path["/v3.1/businesses/" + BIZ]
    assert "X-Business" not in by_path["/v3.1/user"]
    for path in ("/v3.1/financial_settings", "/v3.1/contacts", "/v3.1/sales_invoices"):
        assert by_path[path]["X-Business"] == BIZ
    for headers in by_path.values():
        assert headers["Accept"] == "application/json"
        assert headers["Authorization"] == "Bearer " + TOKEN
        assert "sage_one_connector" in headers["User-Agent"]
    assert query(rsps.calls[0])["product_family"] == "sbc_accounting"


def test_timeout_passed_on_every_call_and_one_session_per_thread(rsps):
    import threading

    import requests

    created = []

    class RecordingSession(requests.Session):
        def __init__(self):
            super().__init__()
            self.timeouts = []
            created.append(self)

        def request(self, *args, **kwargs):
            self.timeouts.append(kwargs.get("timeout"))
            return super().request(*args, **kwargs)

    rsps.add(responses.GET, API + "/user", json={})
    client = SageClient(API, access_token=TOKEN, timeout=(3, 17), session_factory=RecordingSession)
    client.get_user()
    client.get_user()
    thread = threading.Thread(target=client.get_user)
    thread.start()
    thread.join()
    assert len(created) == 2
    assert created[0].timeouts == [(3, 17), (3, 17)]
    assert created[1].timeouts == [(3, 17)]
    client.close()


# -- request bodies and responses ------------------------------------------


def test_post_wraps_body_in_namespace_with_idempotency_id(rsps, make_client):
    rsps.add(
        responses.POST,
        API + "/sales_invoices",
        status=201,
        body='{"id": "i1", "total_amount": "1250.0", "net_amount": 1050.50}',
        content_type="application/json",
    )
    idem = make_idempotency_id("db", "account.move", 7, 0)
    invoice = {
        "contact_id": "c1",
        "date": date(2026, 1, 15),
        "invoice_lines": [
            {
                "description": "Consulting",
                "ledger_account_id": "la1",
                "quantity": Decimal("10"),
                "unit_price": Decimal("100.25"),
                "tax_amount": Decimal("200.50"),
            }
        ],
    }
    result = make_client().create_sales_invoice(invoice, idem)
    request = rsps.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    sent = json.loads(request.body)
    assert list(sent) == ["sales_invoice"]
    assert sent["sales_invoice"]["idempotency_id"] == idem
    assert sent["sales_invoice"]["date"] == "2026-01-15"
    line = sent["sales_invoice"]["invoice_lines"][0]
    assert line["quantity"] == 10 and line["unit_price"] == 100.25 and line["tax_amount"] == 200.5
    # the caller's dict is not modified
    assert "idempotency_id" not in invoice
    # money: strings stay strings, JSON numbers come back as Decimal (never float)
    assert result["total_amount"] == "1250.0"
    assert isinstance(result["net_amount"], Decimal)
    assert to_decimal(result["total_amount"]) == Decimal("1250.0")


def test_to_decimal():
    assert to_decimal("1250.10") == Decimal("1250.10")
    assert to_decimal(None) is None
    assert to_decimal("", default=Decimal(0)) == 0
    assert to_decimal(0.1) == Decimal("0.1")
    with pytest.raises(ValueError):
        to_decimal("abc")


def test_get_sales_invoice_does_not_mark_as_sent(rsps, make_client):
    rsps.add(responses.GET, API + "/sales_invoices/i%2F1", json={"id": "i/1"})
    make_client().get_sales_invoice("i/1", attributes=("status", "outstanding_amount"))
    q = query(rsps.calls[0])
    assert q["mark_as_sent"] == "false"
    assert q["attributes"] == "status,outstanding_amount"


def test_void_invoice_and_credit_note(rsps, make_client):
    rsps.add(responses.DELETE, API + "/sales_invoices/i1", json={"id": "i1"})
    rsps.add(responses.DELETE, API + "/sales_credit_notes/n1", json={"id": "n1"})
    client = make_client()
    client.void_sales_invoice("i1", "Cancelled in Odoo")
    client.void_sales_credit_note("n1", "Cancelled in Odoo")
    assert [query(c)["void_reason"] for c in rsps.calls] == ["Cancelled in Odoo"] * 2


def test_credit_note_calls(rsps, make_client):
    rsps.add(responses.POST, API + "/sales_credit_notes", status=201, json={"id": "n1"})
    rsps.add(responses.GET, API + "/sales_credit_notes/n1", json={"id": "n1"})
    rsps.add(responses.GET, API + "/sales_credit_notes", json={"$items": [{"id": "n1"}]})
    client = make_client()
    client.create_sales_credit_note({"contact_id": "c"}, "a" * 32)
    assert json.loads(rsps.calls[0].request.body) == {
        "sales_credit_note": {"contact_id": "c", "idempotency_id": "a" * 32}
    }
    client.get_sales_credit_note("n1")
    assert query(rsps.calls[1])["mark_as_sent"] == "false"
    assert client.search_sales_credit_notes("WO INV/1") == [{"id": "n1"}]
    assert query(rsps.calls[2])["search"] == "WO INV/1"


def test_contact_allocation_body(rsps, make_client):
    rsps.add(responses.POST, API + "/contact_allocations", status=201, json={"id": "a1"})
    make_client().create_contact_allocation(
        "c1", [("inv1", Decimal("250.00")), ("cn1", "-250.00")], date(2026, 3, 31), "b" * 32
    )
    assert json.loads(rsps.calls[0].request.body) == {
        "contact_allocation": {
            "transaction_type_id": "CUSTOMER_ALLOCATION",
            "contact_id": "c1",
            "allocated_artefacts": [
                {"artefact_id": "inv1", "amount": 250},
                {"artefact_id": "cn1", "amount": -250},
            ],
            "date": "2026-03-31",
            "idempotency_id": "b" * 32,
        }
    }


def test_contact_allocation_must_balance(make_client):
    with pytest.raises(ValueError):
        make_client().create_contact_allocation("c1", [("i", 10), ("n", -9)], None, "c" * 32)


def test_find_contacts_and_reference_lists(rsps, make_client):
    rsps.add(responses.GET, API + "/contacts", json={"$items": [{"id": "c1"}], "$next": None})
    rsps.add(responses.GET, API + "/ledger_accounts", json={"$items": [{"id": "l1"}]})
    rsps.add(responses.GET, API + "/tax_rates", json={"$items": [{"id": "GB_STANDARD"}]})
    rsps.add(responses.GET, API + "/currencies", json={"$items": [{"id": "GBP"}]})
    client = make_client()
    assert client.find_contacts_by_email("ap@acme.example") == [{"id": "c1"}]
    assert client.list_ledger_accounts() == [{"id": "l1"}]
    assert client.list_tax_rates() == [{"id": "GB_STANDARD"}]
    assert client.list_currencies() == [{"id": "GBP"}]
    q = [query(c) for c in rsps.calls]
    assert q[0]["email"] == "ap@acme.example" and q[0]["contact_type_id"] == "CUSTOMER"
    assert q[1]["visible_in"] == "sales"
    assert q[1]["attributes"] == (
        "name,display_name,nominal_code,ledger_account_type,visible_in_sales"
    )
    assert q[2]["attributes"] == "name,percentage,is_visible"
    assert all(x["items_per_page"] == "200" for x in q)


def test_changed_since_iterators_format_timestamp(rsps, make_client):
    for path in ("sales_invoices", "sales_credit_notes", "contact_payments", "contact_allocations"):
        rsps.add(responses.GET, f"{API}/{path}", json={"$items": [{"id": path}], "$next": None})
    client = make_client()
    naive_utc = datetime(2026, 1, 15, 10, 2, 11)
    aware = datetime(2026, 1, 15, 11, 2, 11, tzinfo=timezone(timedelta(hours=1)))
    assert [x["id"] for x in client.iter_sales_invoices_changed_since(naive_utc)] == [
        "sales_invoices"
    ]
    list(client.iter_sales_credit_notes_changed_since(aware))
    list(client.iter_contact_payments_changed_since(naive_utc))
    list(client.iter_contact_allocations_changed_since(naive_utc, deleted=True))
    q = [query(c) for c in rsps.calls]
    for item in q[:3]:
        assert item["updated_or_created_since"] == "2026-01-15T10:02:11+00:00"
    assert q[0]["attributes"] == (
        "status,outstanding_amount,total_paid,last_paid,total_amount,void_reason,updated_at"
    )
    assert q[0]["sort"] == "updated_at"
    assert q[3]["deleted_since"] == "2026-01-15T10:02:11+00:00"
    assert "updated_or_created_since" not in q[3]


# -- pagination -------------------------------------------------------------


def _paged_callback(total, seen_queries, style_by_page=None):
    records = [{"id": f"r{i:03d}"} for i in range(total)]

    def callback(request):
        q = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        seen_queries.append(q)
        page = int(q.get("page", 1))
        per_page = int(q["items_per_page"])
        chunk = records[(page - 1) * per_page : page * per_page]
        has_next = page * per_page < total
        body = {
            "$total": total,
            "$page": page,
            "$next": f"/sales_invoices?page={page + 1}&items_per_page={per_page}"
            if has_next
            else None,
            "$back": None,
            "$items": chunk,
        }
        key = (style_by_page or {}).get(page, "$itemsPerPage")
        body[key] = per_page
        return 200, {"x-request-id": f"req-{page}"}, json.dumps(body)

    return callback


def test_iterate_follows_next_over_450_records(rsps, make_client):
    seen = []
    rsps.add_callback(
        responses.GET,
        API + "/sales_invoices",
        callback=_paged_callback(450, seen, {2: "$items_per_page"}),
        content_type="application/json",
    )
    client = make_client()
    items = list(
        client.iterate(
            "/sales_invoices",
            params={"status_id": "UNPAID"},
            attributes=["status", "outstanding_amount"],
            items_per_page=200,
        )
    )
    assert len(items) == 450
    assert len({i["id"] for i in items}) == 450
    assert len(rsps.calls) == 3
    assert client.calls == 3
    assert [q.get("page", "1") for q in seen] == ["1", "2", "3"]
    for q in seen:
        # filters and attributes are carried over to the $next pages
        assert q["items_per_page"] == "200"
        assert q["attributes"] == "status,outstanding_amount"
        assert q["status_id"] == "UNPAID"
    assert all(c.request.headers["X-Business"] == BIZ for c in rsps.calls)


def test_iterate_is_lazy(rsps, make_client):
    seen = []
    rsps.add_callback(responses.GET, API + "/sales_invoices", callback=_paged_callback(450, seen))
    client = make_client()
    iterator = client.iterate("/sales_invoices")
    first = next(iterator)
    assert first == {"id": "r000"}
    assert client.calls == 1


def test_iterate_accepts_absolute_and_prefixed_next_links(rsps, make_client):
    rsps.add(
        responses.GET,
        API + "/contacts",
        match=[responses.matchers.query_param_matcher({"items_per_page": "2"})],
        json={"$items": [{"id": 1}, {"id": 2}], "$next": "/v3.1/contacts?page=2&items_per_page=2"},
    )
    rsps.add(
        responses.GET,
        API + "/contacts",
        match=[responses.matchers.query_param_matcher({"page": "2", "items_per_page": "2"})],
        json={"$items": [{"id": 3}], "$next": API + "/contacts?page=3&items_per_page=2"},
    )
    rsps.add(
        responses.GET,
        API + "/contacts",
        match=[responses.matchers.query_param_matcher({"page": "3", "items_per_page": "2"})],
        json={"$items": [], "$next": None},
    )
    ids = [c["id"] for c in make_client().iterate("/contacts", items_per_page=2)]
    assert ids == [1, 2, 3]


def test_iterate_refuses_next_link_to_other_host(rsps, make_client):
    rsps.add(
        responses.GET,
        API + "/contacts",
        json={"$items": [{"id": 1}], "$next": "https://evil.example/v3.1/contacts?page=2"},
    )
    with pytest.raises(SageError, match="another host"):
        list(make_client().iterate("/contacts"))
    assert len(rsps.calls) == 1


# -- error parsing -----------------------------------------------------------


def test_422_with_several_errors(rsps, make_client):
    rsps.add(
        responses.POST,
        API + "/sales_invoices",
        status=422,
        headers={"x-request-id": "req-422"},
        json=[
            {
                "$severity": "error",
                "$dataCode": "RecordInvalid",
                "$message": "has already been taken",
                "$source": "invoice_number",
            },
            {
                "$severity": "error",
                "$dataCode": "RecordInvalid",
                "$message": "This field is required.",
                "$source": "invoice_lines.0.tax_rate_id",
            },
            {
                "$severity": "error",
                "$dataCode": "RecordInvalid",
                "$message": "is not a number",
                "$source": "invoice_number",
            },
            {
                "$severity": "error",
                "$dataCode": "RecordNotFound",
                "$message": "Couldn't find record.",
                "$source": "",
            },
        ],
    )
    with pytest.raises(SageValidationError) as info:
        make_client().create_sales_invoice({"contact_id": "c"}, None)
    err = info.value
    assert err.status == 422
    assert err.request_id == "req-422"
    assert err.method == "POST" and err.path == "/sales_invoices"
    assert len(err.errors) == 4
    assert err.errors[1] == SageErrorDetail(
        "error", "RecordInvalid", "This field is required.", "invoice_lines.0.tax_rate_id"
    )
    assert err.fields == {
        "invoice_number": "has already been taken; is not a number",
        "invoice_lines.0.tax_rate_id": "This field is required.",
        "base": "Couldn't find record.",
    }
    assert err.data_codes == ["RecordInvalid"] * 3 + ["RecordNotFound"]
    text = str(err)
    assert "has already been taken" in text and "req-422" in text and "422" in text
    assert err.maybe_sent is False
    assert len(rsps.calls) == 1  # a 422 is never retried


def test_error_non_json_body(rsps, make_client):
    rsps.add(
        responses.GET,
        API + "/contacts/c1",
        status=502,
        body="<html><body>Bad gateway</body></html>",
        content_type="text/html",
    )
    with pytest.raises(SageServerError) as info:
        make_client(max_retries=0).get_contact("c1")
    err = info.value
    assert err.errors == []
    assert err.status == 502
    assert "Bad gateway" in err.body_excerpt
    assert "502" in str(err)


@pytest.mark.parametrize(
    "status,exc_class",
    [(403, SageForbiddenError), (404, SageNotFoundError), (400, SageError), (405, SageError)],
)
def test_status_mapping(rsps, make_client, status, exc_class):
    rsps.add(
        responses.GET,
        API + "/contacts/c1",
        status=status,
        json=[{"$severity": "error", "$dataCode": "X", "$message": "nope", "$source": ""}],
    )
    with pytest.raises(SageError) as info:
        make_client().get_contact("c1")
    assert type(info.value) is exc_class
    assert info.value.errors[0].message == "nope"
    assert len(rsps.calls) == 1


def test_parse_error_details_variants():
    assert parse_error_details(b"") == []
    assert parse_error_details("not json") == []
    assert parse_error_details('{"$message": "x", "$source": "a"}') == [
        SageErrorDetail("", "", "x", "a")
    ]
    oauth_style = parse_error_details({"error": "invalid_grant", "error_description": "gone"})
    assert oauth_style[0].data_code == "invalid_grant"
    assert parse_error_details([{"$message": None}, "junk"]) == [SageErrorDetail()]


# -- logging and secrets -----------------------------------------------------


def test_no_token_in_logs_or_exceptions(rsps, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.GET, API + "/contacts/c1", status=401, headers={"x-request-id": "r401"})
    rsps.add(
        responses.GET,
        API + "/contacts/c1",
        status=422,
        headers={"x-request-id": "r422"},
        json=[{"$severity": "error", "$dataCode": "RecordInvalid", "$message": "bad"}],
    )
    rsps.add(responses.GET, API + "/contacts/c2", json={"id": "c2"}, headers={"x-request-id": "ok"})
    client = make_client(refresh=lambda: NEW_TOKEN)
    with pytest.raises(SageValidationError) as info:
        client.get_contact("c1")
    client.get_contact("c2")
    for secret in (TOKEN, NEW_TOKEN):
        assert secret not in caplog.text
        assert secret not in str(info.value) and secret not in repr(info.value)
        assert secret not in repr(client)
    # what is logged: method, path, status, x-request-id
    assert "GET /contacts/c2 -> 200" in caplog.text and "x-request-id=ok" in caplog.text
    assert "r401" in caplog.text and "r422" in caplog.text


def test_exception_str_redacts_jwt_like_content():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk"
    err = SageError(f"boom Bearer {jwt}", body_excerpt=f"token={jwt}")
    assert jwt not in str(err)
    assert jwt not in (err.body_excerpt or "")
