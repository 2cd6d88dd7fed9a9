"""Fidelity of the emulator against Intercom's official OpenAPI 2.15 description.

Two layers:

* schemathesis fuzzes each read operation the connector uses (positive data, real path ids,
  valid search bodies) and checks status-code, content-type and response-schema conformance;
* a happy-path walk calls every operation with real ids, follows every page, and validates EVERY
  full body (all records of the tiny workspace) with a Draft-4 validator built from the spec
  (OpenAPI 3.0 `nullable` converted, formats checked), plus the 401/404 error bodies.

Accepted deviations live in `fidelity_baseline.py`; anything else fails.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml

from tests.openapi_files import openapi_available, require_openapi

try:
    from tests.emulator.fidelity_baseline import openapi_waived
except ImportError:  # rootdir-relative import mode without packages
    from fidelity_baseline import openapi_waived  # type: ignore[no-redef]

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
testing = pytest.importorskip("intercom_emulator.testing")

from schemathesis.core.failures import CustomFailure  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    status_code_conformance,
)

SPEC_VERSION = "2.15"  # the file: tests/openapi_files.py (skips with the fetch command when absent)
TOKEN = "emulator-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.15", "Accept": "application/json"}

# The read operations the connector uses: (method, path template).
OPERATIONS: list[tuple[str, str]] = [
    ("GET", "/me"),
    ("GET", "/contacts"),
    ("POST", "/contacts/search"),
    ("GET", "/contacts/{contact_id}"),
    ("GET", "/contacts/{contact_id}/companies"),
    ("GET", "/contacts/{contact_id}/tags"),
    ("GET", "/contacts/{contact_id}/segments"),
    ("GET", "/companies"),
    ("POST", "/companies/list"),
    ("GET", "/companies/scroll"),
    ("GET", "/companies/{company_id}"),
    ("GET", "/companies/{company_id}/segments"),
    ("GET", "/conversations"),
    ("POST", "/conversations/search"),
    ("GET", "/conversations/{conversation_id}"),
    ("GET", "/admins"),
    ("GET", "/admins/{admin_id}"),
    ("GET", "/admins/activity_logs"),
    ("GET", "/tags"),
    ("GET", "/teams"),
    ("GET", "/segments"),
    ("GET", "/data_attributes"),
    ("POST", "/tickets/search"),
]
LABELS = [f"{m} {p}" for m, p in OPERATIONS]

# Path parameter -> (workspace model, python type the spec declares).
PATH_PARAMS: dict[str, tuple[str, type]] = {
    "contact_id": ("contacts", str),
    "company_id": ("companies", str),
    "conversation_id": ("conversations", int),
    "admin_id": ("admins", int),
}

# GET /companies/scroll is left out of fuzzing: only one scroll may be open per workspace, so a
# fuzzer's repeated opening calls legitimately answer 400 `scroll_exists` (undocumented in the spec).
# It is covered by the happy-path walk and the error checks below.
FUZZ_EXCLUDED = {"GET /companies/scroll"}
MAX_EXAMPLES = 12

# Emulator bugs found by these tests; strict xfail, so a fix makes them XPASS and fail until the
# marker is removed. NOT accepted deviations: they must be fixed in the emulator. (All fixed so far:
# null custom attributes / statistics / rating remark / data_attribute.admin_id are now left out;
# `pages.next` as a URL moved to the baseline, see fidelity_baseline.py.)
EMULATOR_BUGS: dict[str, str] = {}


def _params(labels: list[str], only_if_failing: set[str] | None = None) -> list[Any]:
    """Labels as pytest params, emulator bugs marked strict xfail."""
    out = []
    for label in labels:
        reason = EMULATOR_BUGS.get(label)
        if reason and (only_if_failing is None or label in only_if_failing):
            out.append(pytest.param(label, marks=pytest.mark.xfail(strict=True, reason=f"emulator bug: {reason}")))
        else:
            out.append(label)
    return out


# --------------------------------------------------------------------------------------------
# Spec loading and OpenAPI 3.0 -> Draft 4 conversion
# --------------------------------------------------------------------------------------------

_DROP_KEYS = {"nullable", "example", "examples", "discriminator", "xml", "externalDocs", "readOnly",
              "writeOnly", "deprecated", "title", "description"}


def to_draft4(node: Any) -> Any:
    """Convert an OpenAPI 3.0 schema to Draft 4: `nullable: true` admits null; OAS-only keys dropped."""
    if isinstance(node, list):
        return [to_draft4(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or key.startswith("x-"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: to_draft4(sub) for name, sub in value.items()}
        else:
            out[key] = to_draft4(value)
    if node.get("nullable") is True:
        composed = any(k in out for k in ("$ref", "allOf", "oneOf", "anyOf"))
        if "type" in out and isinstance(out["type"], str) and not composed:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def spec() -> dict[str, Any]:
    """The raw 2.15 description."""
    return yaml.safe_load(require_openapi(SPEC_VERSION).read_text())


@functools.cache
def draft4_components() -> dict[str, Any]:
    """`components.schemas` converted once."""
    return {"schemas": to_draft4(spec()["components"]["schemas"])}


@functools.cache
def response_validator(method: str, path: str, status: int) -> jsonschema_rs.Draft4Validator:
    """A Draft-4 validator for one documented response, $refs resolved against the spec."""
    response = spec()["paths"][path][method.lower()]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    root = {"allOf": [to_draft4(schema)], "components": draft4_components()}
    return jsonschema_rs.Draft4Validator(root, validate_formats=True)


def _pointer(parts: list[Any]) -> str:
    return "/".join(str(p) for p in parts)


def schema_errors(method: str, path: str, status: int, body: Any) -> list[str]:
    """Every validation error of `body`, minus the baseline's accepted deviations."""
    label = f"{method} {path}"
    errors = []
    for err in response_validator(method, path, status).iter_errors(body):
        where = _pointer(list(err.instance_path))
        keyword = str(list(err.schema_path)[-1]) if list(err.schema_path) else ""
        if openapi_waived(label, where, keyword, err.instance):
            continue
        errors.append(f"{label} [{status}] /{where}: {keyword}: {err.message[:300]}")
    return errors


def documented_statuses(method: str, path: str) -> set[int]:
    """Status codes the spec documents for an operation."""
    return {int(c) for c in spec()["paths"][path][method.lower()]["responses"] if c.isdigit()}


def _labels_documenting(status: int) -> list[str]:
    """Labels whose operation documents `status`; all of them without the spec file (at collection
    time), whose tests then skip with the fetch command (`_openapi_file`)."""
    if not openapi_available(SPEC_VERSION):
        return list(LABELS)
    return [lbl for lbl in LABELS if status in documented_statuses(*lbl.split(" ", 1))]


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _openapi_file() -> None:
    """Skip (in CI: fail) every test here before any server starts when the spec file is absent."""
    require_openapi(SPEC_VERSION)


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """One tiny emulator (seed 1, faults off) for this module."""
    with testing.EmulatorServer(profile="tiny", seed=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: Any) -> Iterator[httpx.Client]:
    """An authenticated raw client."""
    with httpx.Client(base_url=server.base_url, headers=HEADERS, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def st_schema() -> Any:
    """The schemathesis schema object for the 2.15 description."""
    return schemathesis.openapi.from_path(require_openapi(SPEC_VERSION))


def _timestamps(ws: Any, model: str) -> list[int]:
    return [int(rec["created_at"]) for rec in ws.iter(model)]


# --------------------------------------------------------------------------------------------
# Search bodies Intercom accepts (fields documented for each search endpoint)
# --------------------------------------------------------------------------------------------


def search_body_strategy(model: str, ids: list[str], lo: int, hi: int) -> Any:
    """Valid search bodies: filters on documented fields, optional group, sort and pagination."""
    date = st.sampled_from(["created_at", "updated_at"])
    ts = st.integers(min_value=lo, max_value=hi)
    date_filter = st.fixed_dictionaries(
        {"field": date, "operator": st.sampled_from(["=", "<", ">"]), "value": st.one_of(ts, ts.map(str))}
    )
    id_filter = st.fixed_dictionaries(
        {"field": st.just("id"), "operator": st.sampled_from(["IN", "NIN"]),
         "value": st.lists(st.sampled_from(ids), min_size=1, max_size=5, unique=True)}
    )
    extra: list[Any] = [date_filter, id_filter]
    if model == "contacts":
        extra.append(st.fixed_dictionaries({"field": st.just("role"), "operator": st.sampled_from(["=", "!="]),
                                            "value": st.sampled_from(["user", "lead"])}))
    elif model == "conversations":
        extra.append(st.fixed_dictionaries({"field": st.just("state"), "operator": st.sampled_from(["=", "!="]),
                                            "value": st.sampled_from(["open", "closed", "snoozed"])}))
        extra.append(st.fixed_dictionaries({"field": st.just("open"), "operator": st.just("="),
                                            "value": st.booleans()}))
    single = st.one_of(*extra)
    group = st.fixed_dictionaries(
        {"operator": st.sampled_from(["AND", "OR"]), "value": st.lists(single, min_size=1, max_size=4)}
    )
    query = st.one_of(single, group)
    pagination = st.fixed_dictionaries({"per_page": st.integers(min_value=1, max_value=150)})
    sort = st.fixed_dictionaries(
        {"field": st.sampled_from(["created_at", "updated_at", "id"]),
         "order": st.sampled_from(["ascending", "descending"])}
    )
    return st.fixed_dictionaries({"query": query}, optional={"pagination": pagination, "sort": sort})


def case_strategy(st_schema: Any, method: str, path: str, ws: Any) -> Any:
    """Schemathesis cases for one operation, made meaningful: real path ids, sane paging, valid bodies."""
    op = st_schema[path][method]
    names = [n for n in PATH_PARAMS if "{" + n + "}" in path]

    def with_ids(values: tuple[Any, ...]) -> Any:
        params = dict(zip(names, values, strict=True))
        return op.as_strategy(path_parameters=params or None, headers=dict(HEADERS))

    if names:
        per_name = [st.sampled_from([PATH_PARAMS[n][1](i) for i in ws.ids(PATH_PARAMS[n][0])]) for n in names]
        cases = st.tuples(*per_name).flatmap(with_ids)
    else:
        cases = op.as_strategy(headers=dict(HEADERS))

    model = path.split("/")[1]
    if path.endswith("/search"):
        stamps = _timestamps(ws, model)
        bodies = search_body_strategy(model, ws.ids(model), min(stamps) - 86_400, max(stamps) + 86_400)
    else:
        bodies = st.none()
    activity = _timestamps(ws, "activity_logs") or [0]
    after = st.integers(min_value=min(activity) - 86_400, max_value=max(activity))

    def fix(args: tuple[Any, Any, int]) -> Any:
        case, body, stamp = args
        query = dict(case.query or {})
        # Paging knobs: the spec gives no bounds (but per_page <= 150), Intercom's are 1..150 / 1..60.
        if "page" in query:
            query["page"] = 1 + abs(int(query["page"])) % 5
        if "per_page" in query:
            top = 60 if model == "companies" else 150
            query["per_page"] = 1 + abs(int(query["per_page"])) % top
        # `order` is "asc or desc" per its description (the schema has no enum).
        if "order" in query:
            query["order"] = "asc" if len(str(query["order"])) % 2 else "desc"
        # An opaque cursor must come from a previous page; a random one is not a valid request.
        query.pop("starting_after", None)
        if path == "/admins/activity_logs":
            query["created_at_after"] = str(stamp)
            if "created_at_before" in query:
                query["created_at_before"] = str(stamp + 5 * 86_400)
        case.query = query
        if body is not None:
            case.body = body
        return case

    return st.tuples(cases, bodies, after).map(fix)


# --------------------------------------------------------------------------------------------
# 1. schemathesis: status code, content type and response schema conformance
# --------------------------------------------------------------------------------------------


def response_schema_conformance_with_baseline(ctx: Any, response: Any, case: Any) -> bool | None:
    """Response-schema conformance with exact instance paths, minus the baseline's accepted deviations.

    schemathesis' own `response_schema_conformance` turns `nullable` objects into `anyOf`, so an error
    deep inside (e.g. a relative `url` in a contact's nullable `tags`) surfaces as an opaque `anyOf`
    failure on the parent that no baseline entry can address; this check reports the leaf instead.
    """
    method, path = case.operation.method.upper(), case.operation.path
    if str(response.status_code) not in spec()["paths"][path][method.lower()]["responses"]:
        return None  # status_code_conformance reports it
    errors = schema_errors(method, path, response.status_code, response.json())
    if errors:
        raise CustomFailure(operation=case.operation.label, title="Response violates schema",
                            message="\n".join(errors[:20]), exception=AssertionError(errors[0]))
    return None


@pytest.mark.parametrize(
    "label", _params([lbl for lbl in LABELS if lbl not in FUZZ_EXCLUDED], only_if_failing=set(EMULATOR_BUGS) - {
        "GET /companies/scroll"})
)
def test_schemathesis_conformance(label: str, server: Any, st_schema: Any) -> None:
    """Fuzzed positive requests answer documented statuses, JSON, and bodies matching the schema."""
    method, path = label.split(" ", 1)
    statuses: list[int] = []

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=case_strategy(st_schema, method, path, server.workspace))
    def run(case: Any) -> None:
        response = case.call_and_validate(
            base_url=server.base_url,
            headers=dict(HEADERS),
            checks=[status_code_conformance, content_type_conformance, response_schema_conformance_with_baseline],
            timeout=30,
        )
        statuses.append(response.status_code)

    run()
    assert statuses, "no case was sent"
    # The fuzzed requests are all valid, with real ids: they must succeed (not merely be documented).
    assert set(statuses) <= {200, 404} if path == "/companies" else set(statuses) == {200}, statuses


# --------------------------------------------------------------------------------------------
# 2. Happy path: every page, every record, full-body validation
# --------------------------------------------------------------------------------------------


def _get(http: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    return http.get(url, **kw)


def walk_cursor(http: httpx.Client, path: str, key: str, per_page: int = 7) -> list[dict[str, Any]]:
    """GET /contacts and /conversations: follow `pages.next.starting_after` to the end."""
    bodies: list[dict[str, Any]] = []
    params: dict[str, Any] = {"per_page": per_page}
    for _ in range(1000):
        resp = _get(http, path, params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        bodies.append(body)
        nxt = (body.get("pages") or {}).get("next")
        if not nxt:
            return bodies
        params = {"per_page": per_page, "starting_after": nxt["starting_after"]}
    raise AssertionError("pagination did not end")


def walk_search(http: httpx.Client, path: str, query: dict[str, Any], per_page: int = 7) -> list[dict[str, Any]]:
    """POST .../search: resend the same query with `pagination.starting_after` until no `next`."""
    bodies: list[dict[str, Any]] = []
    pagination: dict[str, Any] = {"per_page": per_page}
    for _ in range(1000):
        resp = http.post(path, json={"query": query, "pagination": pagination})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        bodies.append(body)
        nxt = (body.get("pages") or {}).get("next")
        if not nxt or not nxt.get("starting_after"):
            return bodies
        pagination = {"per_page": per_page, "starting_after": nxt["starting_after"]}
    raise AssertionError("search pagination did not end")


def walk_pages(http: httpx.Client, method: str, path: str, per_page: int = 4) -> list[dict[str, Any]]:
    """GET /companies and POST /companies/list: page numbers until total_pages."""
    bodies: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = http.request(method, path, params={"page": page, "per_page": per_page})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        bodies.append(body)
        if page >= int(body["pages"]["total_pages"]) or page > 100:
            return bodies
        page += 1


def walk_scroll(http: httpx.Client) -> list[dict[str, Any]]:
    """GET /companies/scroll until a page with empty `data`."""
    bodies: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    for _ in range(1000):
        resp = _get(http, "/companies/scroll", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        bodies.append(body)
        if not body.get("data"):
            return bodies
        params = {"scroll_param": body["scroll_param"]}
    raise AssertionError("scroll did not end")


def walk_activity_logs(http: httpx.Client, after: int) -> list[dict[str, Any]]:
    """GET /admins/activity_logs, following `pages.next` as a URL."""
    bodies: list[dict[str, Any]] = []
    resp = _get(http, "/admins/activity_logs", params={"created_at_after": str(after)})
    for _ in range(1000):
        assert resp.status_code == 200, resp.text
        body = resp.json()
        bodies.append(body)
        nxt = (body.get("pages") or {}).get("next")
        if not nxt:
            return bodies
        if isinstance(nxt, str):  # a URL (what other connectors follow)
            resp = _get(http, nxt)
        else:  # the spec's cursor_pages.next object
            params = {"created_at_after": str(after), "per_page": nxt.get("per_page"),
                      "starting_after": nxt.get("starting_after"), "page": nxt.get("page")}
            resp = _get(http, "/admins/activity_logs", params={k: v for k, v in params.items() if v is not None})
    raise AssertionError("activity log pagination did not end")


def _ids(bodies: list[dict[str, Any]], key: str) -> list[str]:
    return [str(item["id"]) for body in bodies for item in body[key]]


Fetcher = Callable[[httpx.Client, Any], tuple[list[dict[str, Any]], int]]


def happy_bodies(label: str, http: httpx.Client, ws: Any) -> list[dict[str, Any]]:
    """All 200 bodies for one operation, with exact completeness assertions along the way."""
    contacts, companies = ws.ids("contacts"), ws.ids("companies")
    conversations, admins = ws.ids("conversations"), ws.ids("admins")
    if label == "GET /me":
        return [_get(http, "/me").json()]
    if label == "GET /contacts":
        bodies = walk_cursor(http, "/contacts", "data")
        assert _ids(bodies, "data") == contacts
        return bodies
    if label == "POST /contacts/search":
        bodies = walk_search(http, "/contacts/search", {"field": "created_at", "operator": ">", "value": 86_400})
        assert sorted(_ids(bodies, "data")) == sorted(contacts)
        return bodies
    if label == "GET /contacts/{contact_id}":
        return [_get(http, f"/contacts/{cid}").json() for cid in contacts]
    if label.startswith("GET /contacts/{contact_id}/"):
        sub = label.rsplit("/", 1)[1]
        return [_get(http, f"/contacts/{cid}/{sub}").json() for cid in contacts]
    if label == "GET /companies":
        return walk_pages(http, "GET", "/companies")
    if label == "POST /companies/list":
        return walk_pages(http, "POST", "/companies/list")
    if label == "GET /companies/scroll":
        bodies = walk_scroll(http)
        assert sorted(_ids(bodies, "data")) == sorted(companies)
        return bodies
    if label == "GET /companies/{company_id}":
        return [_get(http, f"/companies/{cid}").json() for cid in companies]
    if label == "GET /companies/{company_id}/segments":
        return [_get(http, f"/companies/{cid}/segments").json() for cid in companies]
    if label == "GET /conversations":
        bodies = walk_cursor(http, "/conversations", "conversations")
        assert sorted(_ids(bodies, "conversations")) == sorted(conversations)
        return bodies
    if label == "POST /conversations/search":
        bodies = walk_search(http, "/conversations/search", {"field": "created_at", "operator": ">", "value": 86_400})
        assert sorted(_ids(bodies, "conversations")) == sorted(conversations)
        return bodies
    if label == "GET /conversations/{conversation_id}":
        out = []
        for cid in conversations:
            body = _get(http, f"/conversations/{cid}").json()
            total = len(ws.conversation_parts(cid))
            assert body["conversation_parts"]["total_count"] == total
            assert len(body["conversation_parts"]["conversation_parts"]) == min(500, total)
            out.append(body)
        return out
    if label == "GET /admins":
        return [_get(http, "/admins").json()]
    if label == "GET /admins/{admin_id}":
        return [_get(http, f"/admins/{aid}").json() for aid in admins]
    if label == "GET /admins/activity_logs":
        stamps = _timestamps(ws, "activity_logs")
        bodies = walk_activity_logs(http, min(stamps) - 1)
        assert sorted(_ids(bodies, "activity_logs")) == sorted(ws.ids("activity_logs"))
        return bodies
    if label == "GET /tags":
        return [_get(http, "/tags").json()]
    if label == "GET /teams":
        return [_get(http, "/teams").json()]
    if label == "GET /segments":
        return [_get(http, "/segments").json(), _get(http, "/segments", params={"include_count": "true"}).json()]
    if label == "GET /data_attributes":
        return [_get(http, "/data_attributes").json()] + [
            _get(http, "/data_attributes", params={"model": m}).json() for m in ("contact", "company", "conversation")
        ]
    if label == "POST /tickets/search":
        bodies = walk_search(http, "/tickets/search", {"field": "created_at", "operator": ">", "value": 86_400})
        assert sorted(_ids(bodies, "tickets")) == sorted(ws.ids("tickets"))
        return bodies
    raise AssertionError(f"no happy path for {label}")


@pytest.mark.parametrize("label", _params(LABELS))
def test_happy_path_bodies_match_schema(label: str, server: Any, http: httpx.Client) -> None:
    """Every 200 body of every page/record validates in full against the operation's 200 schema."""
    method, path = label.split(" ", 1)
    bodies = happy_bodies(label, http, server.workspace)
    assert bodies and all(isinstance(b, dict) for b in bodies)
    errors = [e for body in bodies for e in schema_errors(method, path, 200, body)]
    assert errors == [], "\n".join(errors[:40]) + f"\n... {len(errors)} errors in total"


# --------------------------------------------------------------------------------------------
# 3. Error bodies: 401 (bad token) and 404 (missing id) validate against the documented schema
# --------------------------------------------------------------------------------------------

MISSING = {"contact_id": "0" * 24, "company_id": "0" * 24, "conversation_id": "999999999", "admin_id": "999999999"}
SEARCH_BODY = {"query": {"field": "created_at", "operator": ">", "value": 0}}


def example_errors(method: str, path: str, status: int) -> list[dict[str, str]]:
    """The `errors` of the spec's own example for a documented error response."""
    content = spec()["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]
    examples = [ex["value"] for ex in content.get("examples", {}).values()]
    assert len(examples) == 1, f"expected one example for {method} {path} {status}"
    return list(examples[0]["errors"])


def _concrete(path: str, ws: Any, missing: bool) -> str:
    for name, (model, _) in PATH_PARAMS.items():
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", MISSING[name] if missing else str(ws.ids(model)[0]))
    return path


def _send(server: Any, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    params = {"created_at_after": "0"} if path == "/admins/activity_logs" else None
    body = SEARCH_BODY if path.endswith("/search") else None
    return httpx.request(method, server.base_url + path, headers=headers, params=params, json=body, timeout=30)


@pytest.mark.parametrize("label", _labels_documenting(401))
def test_unauthorized_body_matches_schema(label: str, server: Any) -> None:
    """A bad token answers 401 with the spec example's `error.list` (code and message), schema-valid."""
    method, path = label.split(" ", 1)
    resp = _send(server, method, _concrete(path, server.workspace, False),
                 {**HEADERS, "Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["type"] == "error.list"
    assert body["errors"] == example_errors(method, path, 401)
    assert schema_errors(method, path, 401, body) == []


@pytest.mark.parametrize("label", [lbl for lbl in _labels_documenting(404) if "{" in lbl])
def test_not_found_body_matches_schema(label: str, server: Any) -> None:
    """A missing id answers 404 with the spec example's error code/message and a schema-valid body."""
    method, path = label.split(" ", 1)
    resp = _send(server, method, _concrete(path, server.workspace, True), HEADERS)
    assert resp.status_code == 404, resp.text
    body = resp.json()
    assert body["type"] == "error.list"
    assert body["errors"] == example_errors(method, path, 404)
    assert schema_errors(method, path, 404, body) == []


def test_validator_is_not_vacuous() -> None:
    """The converted validator rejects wrong types, accepts documented nulls, and checks formats."""
    contact_errors = schema_errors("GET", "/contacts/{contact_id}", 200, {"id": 5})
    assert contact_errors == ["GET /contacts/{contact_id} [200] /id: type: 5 is not of type \"string\""]
    assert schema_errors("GET", "/conversations/{conversation_id}", 200, {"admin_assignee_id": None}) == []
    assert len(schema_errors("GET", "/conversations/{conversation_id}", 200, {"admin_assignee_id": "7"})) == 1
    assert len(schema_errors("GET", "/admins/{admin_id}", 200, {"email": 3})) == 1
    # the baseline waives the relative contact-list url, but not a wrong type there
    assert schema_errors("GET", "/contacts/{contact_id}", 200, {"tags": {"url": "/contacts/x/tags"}}) == []
    assert len(schema_errors("GET", "/contacts/{contact_id}", 200, {"tags": {"url": 3}})) == 1
