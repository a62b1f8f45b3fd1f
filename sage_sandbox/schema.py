"""Swagger 2.0 loading and JSON-schema validation for the Sage sandbox.

The Swagger files in ``sage_sandbox/swagger/`` are Sage's own per-module downloads of the
Accounting API v3.1 (see README.md).  Two public helpers are meant to be reused by the
connector's tests for conformance checks:

* :func:`validate_body` -- validate a POST/PUT body against the body schema of an
  operation (found through the Swagger ``paths``),
  e.g. ``validate_body("postSalesInvoices", body)``.
* :func:`validate_response` -- validate an object against a response definition,
  e.g. ``validate_response("SalesInvoice", obj)``.

Both return a list of errors in Sage's error-array shape (empty list = valid)::

    [{"$severity": "error", "$dataCode": "RecordInvalid",
      "$message": "can't be blank", "$source": "invoice_lines.unit_price"}]

Deliberate relaxations of the raw Swagger (all documented in README.md):

* numbers: Sage puts money on the wire as numeric strings ("1250.0"), and accepts both
  numbers and numeric strings in requests, so ``type: number`` also accepts a string
  matching ``^-?\\d+(\\.\\d+)?$``;
* nulls: Sage returns ``null`` for empty attributes; Swagger 2.0 has no ``nullable``, so
  responses accept ``null`` everywhere and request bodies accept ``null`` for optional fields;
* ``maxLength``: the ``post*`` body definitions carry no length limits; the limits of the
  resource definition (e.g. ``SalesInvoice.reference`` max 25, ``Contact.reference`` max 10)
  are merged into the body schema, as Sage enforces them at save time;
* ``idempotency_id`` is stripped from the namespace object before validation (Sage's
  idempotency guide documents it but the schema omits it); it must be 32 hex chars.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import re
import threading
from pathlib import Path
from typing import Any

import jsonschema

SWAGGER_DIR = Path(__file__).resolve().parent / "swagger"

NUMERIC_STRING = r"^-?\d+(\.\d+)?$"
IDEMPOTENCY_RE = re.compile(r"^[0-9a-fA-F]{32}$")

#: Operation ids for the user/businesses module, whose Swagger file has none.
_SYNTHETIC_OPERATION_IDS = {
    ("get", "/businesses"): "getBusinesses",
    ("get", "/businesses/{key}"): "getBusinessesKey",
    ("put", "/businesses/{key}"): "putBusinessesKey",
    ("get", "/user"): "getUser",
    ("put", "/user"): "putUser",
}

#: Preferred Swagger module for a definition name (definitions are repeated across modules).
_DEFINITION_HOME = {
    "SalesInvoice": "invoicing_sales",
    "SalesCreditNote": "invoicing_sales",
    "Contact": "contacts",
    "ContactPerson": "contacts",
    "LedgerAccount": "accounting_setup",
    "TaxRate": "taxes",
    "Business": "user_businesses",
    "User": "user_businesses",
    "ContactAllocation": "payments",
    "ContactPayment": "payments",
    "FinancialSettings": "settings",
    "InvoiceSettings": "settings",
    "Transaction": "accounting",
    "BankAccount": "banking",
}

#: Resources whose Swagger response is a bare ``Base`` link (no dedicated definition).
DEFINITION_ALIASES = {
    "Currency": ("currencies", "Base"),
    "ContactType": ("contacts", "Base"),
    "ArtefactStatus": ("invoicing_general", "Base"),
}

_lock = threading.Lock()
_modules: dict[str, dict] | None = None
_operations: dict[str, tuple[str, str, str, dict]] | None = None
_validators: dict[tuple, jsonschema.protocols.Validator] = {}


def _load_json(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # swagger.settings.json has a trailing comma; strip ``,`` before ``}``/``]``.
        return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


def modules() -> dict[str, dict]:
    """All Swagger modules, keyed by short name (``invoicing_sales``, ``payments``...)."""
    global _modules, _operations
    with _lock:
        if _modules is None:
            mods = {}
            for path in sorted(SWAGGER_DIR.glob("swagger.*.json")):
                mods[path.name[len("swagger."):-len(".json")]] = _load_json(path)
            ops = {}
            for mod_name, doc in mods.items():
                for p, methods in doc.get("paths", {}).items():
                    for method, op in methods.items():
                        if not isinstance(op, dict):
                            continue
                        op_id = op.get("operationId") or _SYNTHETIC_OPERATION_IDS.get((method, p))
                        if op_id:
                            ops[op_id] = (mod_name, method, p, op)
            _modules, _operations = mods, ops
        return _modules


def operations() -> dict[str, tuple[str, str, str, dict]]:
    """operationId -> (module, method, path, operation object)."""
    modules()
    assert _operations is not None
    return _operations


def find_definition(name: str) -> tuple[str, str]:
    """Return (module, definition name) for a resource definition name."""
    mods = modules()
    if name in DEFINITION_ALIASES:
        return DEFINITION_ALIASES[name]
    home = _DEFINITION_HOME.get(name)
    if home and name in mods.get(home, {}).get("definitions", {}):
        return home, name
    for mod_name, doc in mods.items():
        if name in doc.get("definitions", {}):
            return mod_name, name
    raise KeyError(f"unknown Swagger definition {name!r}")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def body_definition(operation_id: str) -> tuple[str, str]:
    """(module, definition) of the body parameter of an operation (e.g. postSalesInvoices)."""
    try:
        mod, _method, _path, op = operations()[operation_id]
    except KeyError:
        raise KeyError(f"unknown operationId {operation_id!r}") from None
    for param in op.get("parameters", []):
        if param.get("in") == "body":
            return mod, _ref_name(param["schema"]["$ref"])
    raise KeyError(f"operation {operation_id!r} takes no body")


def resource_definition(operation_id: str) -> tuple[str, str] | None:
    """(module, definition) of the 200/201 response of an operation, if it is a $ref."""
    mod, _method, _path, op = operations()[operation_id]
    for code in ("201", "200"):
        schema = op.get("responses", {}).get(code, {}).get("schema")
        if schema and "$ref" in schema:
            return mod, _ref_name(schema["$ref"])
    return None


# --------------------------------------------------------------------------- transforms

def _number_schema(node: dict) -> dict:
    out = {k: v for k, v in node.items() if k not in ("type", "format")}
    out["anyOf"] = [{"type": "number"}, {"type": "string", "pattern": NUMERIC_STRING}]
    return out


def _relax(node: Any, nullable: bool) -> Any:
    """Deep-copy a schema node: numbers accept numeric strings; optionally allow null."""
    if isinstance(node, list):
        return [_relax(x, nullable) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in ("description", "example", "examples")}
    if "properties" in node:
        required = set(node.get("required", []))
        props = {}
        for name, sub in node["properties"].items():
            sub = _relax(sub, nullable)
            if nullable is True or (nullable == "optional" and name not in required):
                sub = {"anyOf": [sub, {"type": "null"}]}
            props[name] = sub
        node["properties"] = props
    if "items" in node:
        node["items"] = _relax(node["items"], nullable)
    if node.get("type") in ("number",):
        node = _number_schema(node)
    return node


def _resolve(defs: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = defs.get(_ref_name(node["$ref"]), {})
    return node


def _merge_limits(body: dict, resource: dict, defs: dict, depth: int = 0) -> None:
    """Copy maxLength limits from the resource definition into the body schema (in place)."""
    if depth > 4 or not isinstance(body, dict):
        return
    resource = _resolve(defs, resource)
    rprops = resource.get("properties", {})
    for name, bsub in body.get("properties", {}).items():
        rsub = _resolve(defs, rprops.get(name, {}))
        if not rsub:
            continue
        if "maxLength" in rsub and bsub.get("type") == "string" and "maxLength" not in bsub:
            bsub["maxLength"] = rsub["maxLength"]
        if bsub.get("type") == "object":
            _merge_limits(bsub, rsub, defs, depth + 1)
        elif bsub.get("type") == "array" and rsub.get("type") == "array":
            _merge_limits(bsub.get("items", {}), rsub.get("items", {}), defs, depth + 1)


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_RE.match(value):
        return False
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("date")(_check_date)
FORMAT_CHECKER.checks("date-time")(_check_datetime)


def _validator(kind: str, name: str) -> jsonschema.protocols.Validator:
    key = (kind, name)
    with _lock:
        cached = _validators.get(key)
    if cached is not None:
        return cached
    if kind == "body":
        mod, defname = body_definition(name)
        doc = modules()[mod]
        raw_defs = doc["definitions"]
        body = copy.deepcopy(raw_defs[defname])
        res = resource_definition(name)
        if res and res[0] == mod:
            ns_props = body.get("properties", {})
            if len(ns_props) == 1:
                (ns_schema,) = ns_props.values()
                _merge_limits(ns_schema, raw_defs[res[1]], raw_defs)
        defs = {k: _relax(v, "optional") for k, v in raw_defs.items()}
        root = _relax(body, "optional")
    else:
        mod, defname = find_definition(name)
        raw_defs = modules()[mod]["definitions"]
        defs = {k: _relax(v, True) for k, v in raw_defs.items()}
        root = {"$ref": f"#/definitions/{defname}"}
    schema = dict(root)
    schema["definitions"] = defs
    validator = jsonschema.Draft4Validator(schema, format_checker=FORMAT_CHECKER)
    with _lock:
        _validators[key] = validator
    return validator


# --------------------------------------------------------------------------- error shaping

def _rails_message(err: jsonschema.ValidationError) -> tuple[str, list]:
    path = list(err.absolute_path)
    v = err.validator
    if v == "required":
        missing = re.match(r"'([^']+)' is a required property", err.message)
        field = missing.group(1) if missing else "base"
        return "can't be blank", path + [field]
    if v == "maxLength":
        return f"is too long (maximum is {err.validator_value} characters)", path
    if v == "format":
        return f"is not a valid {err.validator_value}", path
    if v in ("anyOf", "type") and err.instance is None:
        return "can't be blank", path
    if v in ("anyOf", "type"):
        expected = err.validator_value
        if v == "anyOf":
            types = [s.get("type") for s in err.validator_value if isinstance(s, dict)]
            expected = "number" if "number" in types else [t for t in types if t] or "value"
        if isinstance(expected, list):
            expected = " or ".join(str(t) for t in expected if t != "null")
        return f"is not a valid {expected}" if expected != "number" else "is not a number", path
    return err.message, path


def _format_error(err: jsonschema.ValidationError, strip_namespace: bool) -> dict:
    message, path = _rails_message(err)
    if strip_namespace and len(path) > 1 and isinstance(path[0], str):
        path = path[1:]
    source = ".".join(str(p) for p in path if not isinstance(p, int))
    indexed = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    if any(isinstance(p, int) for p in path):
        message = f"{message} (at {indexed})"
    return {
        "$severity": "error",
        "$dataCode": "RecordInvalid",
        "$message": message,
        "$source": source or "base",
    }


def _null_branch(err: jsonschema.ValidationError) -> int | None:
    """Index of the ``{"type": "null"}`` branch of a nullable ``anyOf`` wrapper, if any."""
    if err.validator != "anyOf":
        return None
    for i, branch in enumerate(err.validator_value):
        if branch == {"type": "null"}:
            return i
    return None


def _leaves(err: jsonschema.ValidationError):
    """Unwrap nullable ``anyOf`` wrappers so that every nested violation is reported."""
    null_idx = _null_branch(err)
    if null_idx is None or err.instance is None:
        yield err
        return
    subs = [e for e in err.context or () if e.relative_schema_path[0] != null_idx]
    if not subs:
        yield err
    for sub in subs:
        yield from _leaves(sub)


def _errors(validator, instance, strip_namespace: bool) -> list[dict]:
    errs = [leaf for err in validator.iter_errors(instance) for leaf in _leaves(err)]
    errs.sort(key=lambda e: [str(p) for p in e.absolute_path])
    out, seen = [], set()
    for err in errs:
        item = _format_error(err, strip_namespace)
        key = (item["$source"], item["$message"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


# --------------------------------------------------------------------------- public helpers

def strip_idempotency(body: Any) -> tuple[Any, str | None, list[dict]]:
    """Remove ``idempotency_id`` from the namespace object of a POST body.

    Returns (body without the key, the id or None, errors).  The body is not modified.
    """
    if not isinstance(body, dict) or len(body) != 1:
        return body, None, []
    (ns, obj), = body.items()
    if not isinstance(obj, dict) or "idempotency_id" not in obj:
        return body, None, []
    obj = dict(obj)
    idem = obj.pop("idempotency_id")
    errors = []
    if not isinstance(idem, str) or not IDEMPOTENCY_RE.match(idem):
        errors.append({
            "$severity": "error", "$dataCode": "RecordInvalid",
            "$message": "must be a 32 character hexadecimal GUID without hyphens",
            "$source": "idempotency_id",
        })
        idem = None
    return {ns: obj}, idem, errors


def validate_body(operation_id: str, body: Any) -> list[dict]:
    """Validate a request body against the body schema of a Swagger operation.

    ``idempotency_id`` in the namespace object is accepted (and checked to be 32 hex chars).
    Returns Sage-shaped errors; ``$source`` is the field path inside the namespace object.
    """
    stripped, _idem, errors = strip_idempotency(body)
    return errors + _errors(_validator("body", operation_id), stripped, strip_namespace=True)


def validate_response(definition_name: str, obj: Any) -> list[dict]:
    """Validate a response object against a Swagger definition (``SalesInvoice``, ``Contact``...).

    ``Currency``, ``ContactType`` and ``ArtefactStatus`` have no definition of their own in
    Sage's Swagger (their responses are ``Base`` links) and are checked against ``Base``.
    """
    return _errors(_validator("response", definition_name), obj, strip_namespace=False)


def validate_envelope(obj: Any, definition_name: str | None = None) -> list[dict]:
    """Validate a list envelope ($total/$page/$next/$back/$itemsPerPage/$items).

    Items are validated against ``definition_name`` when given.
    """
    errors = []
    if not isinstance(obj, dict):
        return [{"$severity": "error", "$dataCode": "RecordInvalid",
                 "$message": "envelope is not an object", "$source": "base"}]
    for key, types in (("$total", int), ("$page", int), ("$items", list)):
        if not isinstance(obj.get(key), types):
            errors.append({"$severity": "error", "$dataCode": "RecordInvalid",
                           "$message": f"{key} missing or wrong type", "$source": key})
    for key in ("$next", "$back"):
        if obj.get(key) is not None and not isinstance(obj.get(key), str):
            errors.append({"$severity": "error", "$dataCode": "RecordInvalid",
                           "$message": f"{key} must be a string or null", "$source": key})
    if "$itemsPerPage" not in obj and "$items_per_page" not in obj:
        errors.append({"$severity": "error", "$dataCode": "RecordInvalid",
                       "$message": "$itemsPerPage missing", "$source": "$itemsPerPage"})
    if definition_name and isinstance(obj.get("$items"), list):
        for i, item in enumerate(obj["$items"]):
            for e in validate_response(definition_name, item):
                e["$source"] = f"$items[{i}].{e['$source']}"
                errors.append(e)
    return errors
