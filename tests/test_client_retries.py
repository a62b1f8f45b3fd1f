"""Pure tests for SageClient retry rules: 429, 5xx, network errors, idempotency."""

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
import responses
from urllib3.exceptions import NewConnectionError, ProtocolError

try:  # puts the addon folder on sys.path (see tests/_paths.py)
    from . import _paths
except ImportError:
    import _paths  # noqa: F401

from sage_api import (
    SageClient,
    SageConnectionError,
    SageRateLimitError,
    SageServerError,
    make_idempotency_id,
)

API = "https://api.sage.test/v3.1"
IDEM = make_idempotency_id("db", "account.move", 1, 0)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps():
    return []


def client(sleeps, **kwargs):
    kwargs.setdefault("sleep", sleeps.append)
    kwargs.setdefault("random_func", lambda: 1.0)
    kwargs.setdefault("business_id", "biz")
    return SageClient(API, access_token="tok", **kwargs)


def aborted():
    """What requests raises when the server drops the connection after the send."""
    return requests.exceptions.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    )


def refused():
    return requests.exceptions.ConnectionError(
        NewConnectionError(None, "Failed to establish a new connection: refused")
    )


# -- 429 ---------------------------------------------------------------------


def test_429_retry_after_is_honoured(rsps, sleeps):
    rsps.add(responses.GET, API + "/contacts/c1", status=429, headers={"Retry-After": "3"})
    rsps.add(responses.GET, API + "/contacts/c1", status=429, headers={"Retry-After": "7"})
    rsps.add(responses.GET, API + "/contacts/c1", json={"id": "c1"})
    c = client(sleeps)
    assert c.get_contact("c1") == {"id": "c1"}
    assert sleeps == [3.0, 7.0]
    assert c.calls == 3


def test_429_retry_after_http_date(rsps, sleeps):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    rsps.add(
        responses.GET,
        API + "/user",
        status=429,
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )
    rsps.add(responses.GET, API + "/user", json={})
    client(sleeps).get_user()
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 31


def test_429_without_retry_after_uses_backoff(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", status=429)
    rsps.add(responses.GET, API + "/user", status=429)
    rsps.add(responses.GET, API + "/user", json={})
    client(sleeps, backoff=0.5).get_user()
    assert sleeps == [0.5, 1.0]


def test_429_also_retried_for_non_idempotent_post(rsps, sleeps):
    # a 429 means Sage refused the request: retrying cannot duplicate anything
    rsps.add(responses.POST, API + "/contacts", status=429, headers={"Retry-After": "1"})
    rsps.add(responses.POST, API + "/contacts", status=201, json={"id": "c1"})
    assert client(sleeps).post("/contacts", "contact", {"name": "A"}) == {"id": "c1"}
    assert sleeps == [1.0]


def test_429_gives_up_after_max_retries(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", status=429, headers={"Retry-After": "2"})
    with pytest.raises(SageRateLimitError) as info:
        client(sleeps, max_retries=3).get_user()
    assert sleeps == [2.0, 2.0, 2.0]
    assert len(rsps.calls) == 4
    assert info.value.retry_after == 2.0


def test_429_retry_after_too_long_is_not_waited(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", status=429, headers={"Retry-After": "600"})
    with pytest.raises(SageRateLimitError) as info:
        client(sleeps, max_retry_after=120).get_user()
    assert sleeps == []
    assert info.value.retry_after == 600.0
    assert len(rsps.calls) == 1


# -- 5xx ---------------------------------------------------------------------


def test_5xx_get_retried_with_exponential_backoff(rsps, sleeps):
    rsps.add(responses.GET, API + "/contacts/c1", status=503)
    rsps.add(responses.GET, API + "/contacts/c1", status=500)
    rsps.add(responses.GET, API + "/contacts/c1", status=502)
    rsps.add(responses.GET, API + "/contacts/c1", json={"id": "c1"})
    c = client(sleeps, backoff=0.5)
    assert c.get_contact("c1") == {"id": "c1"}
    assert sleeps == [0.5, 1.0, 2.0]
    assert c.calls == 4


def test_5xx_backoff_is_bounded_and_jittered(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", status=500)
    with pytest.raises(SageServerError):
        client(sleeps, max_retries=6, backoff=1, max_backoff=4).get_user()
    assert sleeps == [1, 2, 4, 4, 4, 4]
    assert len(rsps.calls) == 7
    low = []
    with pytest.raises(SageServerError):
        client(low, max_retries=6, backoff=1, max_backoff=4, random_func=lambda: 0.0).get_user()
    # equal jitter: never below half of the capped exponential delay
    assert low == [0.5, 1, 2, 2, 2, 2]


def test_real_jitter_stays_in_bounds(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", status=503)
    c = SageClient(
        API, access_token="tok", sleep=sleeps.append, max_retries=8, backoff=0.5, max_backoff=5
    )
    with pytest.raises(SageServerError):
        c.get_user()
    assert len(sleeps) == 8
    for n, delay in enumerate(sleeps):
        ceiling = min(5, 0.5 * 2**n)
        assert ceiling / 2 <= delay <= ceiling


def test_idempotent_post_retried_after_5xx_with_same_body(rsps, sleeps):
    rsps.add(responses.POST, API + "/sales_invoices", status=500)
    rsps.add(responses.POST, API + "/sales_invoices", status=503)
    rsps.add(responses.POST, API + "/sales_invoices", status=201, json={"id": "i1"})
    c = client(sleeps)
    assert c.create_sales_invoice({"contact_id": "c"}, IDEM) == {"id": "i1"}
    assert sleeps == [0.5, 1.0]
    bodies = [json.loads(call.request.body) for call in rsps.calls]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["sales_invoice"]["idempotency_id"] == IDEM


def test_idempotency_id_inside_body_also_enables_retry(rsps, sleeps):
    rsps.add(responses.POST, API + "/contacts", status=500)
    rsps.add(responses.POST, API + "/contacts", status=201, json={"id": "c"})
    assert client(sleeps).post("/contacts", "contact", {"name": "A", "idempotency_id": IDEM})
    assert len(rsps.calls) == 2


def test_non_idempotent_post_not_retried_after_5xx(rsps, sleeps):
    rsps.add(responses.POST, API + "/sales_invoices", status=500, headers={"x-request-id": "r5"})
    rsps.add(responses.POST, API + "/sales_invoices", status=201, json={"id": "never"})
    with pytest.raises(SageServerError) as info:
        client(sleeps).create_sales_invoice({"contact_id": "c"}, None)
    assert len(rsps.calls) == 1
    assert sleeps == []
    assert info.value.maybe_sent is True
    assert info.value.request_id == "r5"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_put_and_delete_without_idempotency_not_retried(rsps, sleeps, method):
    rsps.add(method, API + "/sales_invoices/i1", status=503)
    c = client(sleeps)
    with pytest.raises(SageServerError):
        if method == "PUT":
            c.put("/sales_invoices/i1", "sales_invoice", {"notes": "x"})
        else:
            c.void_sales_invoice("i1", "reason")
    assert len(rsps.calls) == 1


def test_idempotent_put_retried(rsps, sleeps):
    rsps.add(responses.PUT, API + "/sales_invoices/i1", status=503)
    rsps.add(responses.PUT, API + "/sales_invoices/i1", json={"id": "i1"})
    c = client(sleeps)
    assert c.put("/sales_invoices/i1", "sales_invoice", {"notes": "x"}, idempotency_id=IDEM)
    assert len(rsps.calls) == 2


# -- network errors ------------------------------------------------------------


def test_connection_error_after_send_on_post(rsps, sleeps):
    rsps.add(responses.POST, API + "/sales_invoices", body=aborted())
    with pytest.raises(SageConnectionError) as info:
        client(sleeps).create_sales_invoice({"contact_id": "c"}, None)
    assert info.value.maybe_sent is True
    assert len(rsps.calls) == 1 and sleeps == []


def test_read_timeout_on_post_maybe_sent(rsps, sleeps):
    rsps.add(responses.POST, API + "/contacts", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(SageConnectionError) as info:
        client(sleeps).create_contact({"name": "A"}, None)
    assert info.value.maybe_sent is True
    assert "read timeout" in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [lambda: requests.exceptions.ConnectTimeout("connect timed out"), refused],
    ids=["connect-timeout", "refused"],
)
def test_connection_failure_before_send_not_maybe_sent(rsps, sleeps, exc):
    rsps.add(responses.POST, API + "/contacts", body=exc())
    with pytest.raises(SageConnectionError) as info:
        client(sleeps).create_contact({"name": "A"}, None)
    assert info.value.maybe_sent is False
    assert len(rsps.calls) == 1


def test_get_retried_after_connection_errors(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", body=aborted())
    rsps.add(responses.GET, API + "/user", body=requests.exceptions.ReadTimeout("slow"))
    rsps.add(responses.GET, API + "/user", json={"id": "u"})
    c = client(sleeps)
    assert c.get_user() == {"id": "u"}
    assert sleeps == [0.5, 1.0]
    assert c.calls == 3


def test_idempotent_post_retried_after_read_timeout(rsps, sleeps):
    rsps.add(responses.POST, API + "/sales_invoices", body=requests.exceptions.ReadTimeout("x"))
    rsps.add(responses.POST, API + "/sales_invoices", status=201, json={"id": "i1"})
    assert client(sleeps).create_sales_invoice({"contact_id": "c"}, IDEM) == {"id": "i1"}
    assert len(rsps.calls) == 2


def test_get_gives_up_after_max_retries_on_network_errors(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", body=aborted())
    with pytest.raises(SageConnectionError):
        client(sleeps, max_retries=2).get_user()
    assert len(rsps.calls) == 3
    assert len(sleeps) == 2


def test_401_refresh_does_not_consume_retry_budget(rsps, sleeps):
    rsps.add(responses.GET, API + "/user", status=401)
    rsps.add(responses.GET, API + "/user", status=503)
    rsps.add(responses.GET, API + "/user", json={"id": "u"})
    c = client(sleeps, max_retries=1, refresh=lambda: "tok2")
    assert c.get_user() == {"id": "u"}
    assert [call.request.headers["Authorization"] for call in rsps.calls] == [
        "Bearer tok",
        "Bearer tok2",
        "Bearer tok2",
    ]
