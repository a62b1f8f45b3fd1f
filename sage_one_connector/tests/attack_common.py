"""Shared helpers of the attack suites: security attempts and bad inputs.

Not registered in tests/__init__.py: it holds no test of its own.

Both suites drive Odoo as a browser or a script would, through JSON-RPC
(``/web/dataset/call_kw``) and plain HTTP, and keep a tally of what they tried
so that each class can close with one log line ("security: 14 attempts denied
of 14") and a minimum count.
"""

import json
import logging
import unittest
from contextlib import contextmanager

_logger = logging.getLogger(__name__)


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextmanager
def captured_logs(*logger_names, level=logging.INFO):
    """Collect the records of `logger_names` (and keep them out of the test log).

    Unlike ``assertLogs`` this never fails by itself: an attempt that is not
    refused produces no log line, and the caller reports *that* clearly.
    """
    handler = _ListHandler()
    saved = []
    for name in logger_names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    try:
        yield handler.records
    finally:
        for logger, old_level, old_propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = old_propagate


class AttackTallyMixin:
    """Counts the attempts of a test class and logs the closing line.

    Subclasses set ``tally_name`` ("security", "bad inputs"), ``tally_minimum``
    and ``tally_line`` (a %-format of tried and handled). The minimum is only
    asserted when every test of the class ran (not when one test is run
    alone with --test-tags Class.test_x).
    """

    tally_name = "attempts"
    tally_minimum = 0
    tally_line = "%(name)s: %(handled)s handled of %(tried)s"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._tally_tried = []
        cls._tally_handled = []
        cls._tally_tests_run = 0

    def setUp(self):
        super().setUp()
        type(self)._tally_tests_run += 1

    def tally_try(self, label):
        type(self)._tally_tried.append(label)

    def tally_handled(self, label):
        type(self)._tally_handled.append(label)

    @classmethod
    def tearDownClass(cls):
        tried, handled = len(cls._tally_tried), len(cls._tally_handled)
        _logger.info(cls.tally_line, {"name": cls.tally_name, "tried": tried, "handled": handled})
        not_handled = [label for label in cls._tally_tried if label not in cls._tally_handled]
        if not_handled:
            _logger.info("%s not handled: %s", cls.tally_name, "; ".join(not_handled))
        all_tests = len(unittest.TestLoader().getTestCaseNames(cls))
        super().tearDownClass()
        if cls._tally_tests_run == all_tests and tried < cls.tally_minimum:
            raise AssertionError(
                f"{cls.tally_name}: only {tried} tried, at least {cls.tally_minimum} expected"
            )


class JsonRpcMixin:
    """JSON-RPC calls as the web client makes them (for an HttpCase)."""

    def rpc(self, model, method, args=(), kwargs=None, route=None):
        """POST a call_kw; returns the decoded JSON-RPC answer ({'result'} or {'error'}).

        The test transaction is flushed first (the server thread reads the
        database, not this environment's cache) and invalidated afterwards
        (the server may have written).
        """
        self.env.flush_all()
        payload = {
            "id": 0,
            "jsonrpc": "2.0",
            "method": "call",
            "params": {
                "model": model,
                "method": method,
                "args": list(args),
                "kwargs": kwargs or {},
            },
        }
        route = route or f"/web/dataset/call_kw/{model}/{method}"
        response = self.url_open(
            route, data=json.dumps(payload), headers={"Content-Type": "application/json"}
        )
        self.env.invalidate_all()
        self.assertEqual(response.status_code, 200, response.text[:300])
        return response.json()

    def rpc_button(self, model, method, ids):
        """A form button (``/web/dataset/call_button``)."""
        return self.rpc(model, method, [ids], route="/web/dataset/call_button")

    def rpc_error(self, answer, what):
        """The ``error.data`` of a JSON-RPC answer; fails when the call succeeded."""
        if "error" not in answer:
            self.fail(
                f"{what}: the call was not refused, it returned {answer.get('result')!r:.300}"
            )
        return answer["error"]["data"]
