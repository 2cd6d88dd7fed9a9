"""Cursor paging over ordered results, shared by GET /contacts, GET /conversations and the searches."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import Any

import orjson
from aiohttp import web

from intercom_emulator import search
from intercom_emulator.routes.common import apply_data_faults, data_faults_apply, per_page_of, state_of
from intercom_emulator.state import ApiError, EmulatorState, json_response


class Ordered:
    """Items sorted ascending by key, for forward-only cursor paging by bisect.

    `records` are full records, or (when `by_id`) record ids that a page materialises itself: a
    result over a million records then holds keys and ids only, and a page builds its <= 150 dicts.
    """

    __slots__ = ("records", "keys", "by_id")

    def __init__(self, records: list[dict[str, Any]], field: str | None) -> None:
        pairs = sorted(((search.record_key(r, field), r) for r in records), key=lambda p: p[0])
        self.keys = [k for k, _ in pairs]
        self.records: list[Any] = [r for _, r in pairs]
        self.by_id = False

    @classmethod
    def of_ids(cls, pairs: list[tuple[tuple[Any, ...], str]]) -> Ordered:
        """From (key, id) pairs; pages materialise their records."""
        pairs.sort(key=lambda p: p[0])
        out = cls.__new__(cls)
        out.keys = [k for k, _ in pairs]
        out.records = [i for _, i in pairs]
        out.by_id = True
        return out


def page_records(state: EmulatorState, model: str, ordered: Ordered, chunk: list[Any]) -> list[dict[str, Any]]:
    """The records of one page (ids materialised now; a record deleted since the result was built is skipped)."""
    if not ordered.by_id:
        return chunk
    return [r for r in (state.ws.get(model, i) for i in chunk) if r is not None]


def page_response(
    request: web.Request, model: str, ordered: Ordered, chunk: list[Any], list_type: str, items_key: str,
    pages: dict[str, Any],
) -> web.Response:
    """A list page: `{"type", items_key, "total_count", "pages"}`.

    When no data fault edits this request's records, a page of ids is joined from the records'
    stored bytes instead of decoded and encoded again (about 30 x cheaper a record), so that the
    emulator serving a big workspace is not what a benchmark's wall measures.
    """
    state = state_of(request)
    if ordered.by_id and not data_faults_apply(request):
        raws = [b for b in (state.ws.raw(model, i) for i in chunk) if b is not None]
        body = b"".join((
            b'{"type":', orjson.dumps(list_type), b',"', items_key.encode(), b'":[', b",".join(raws),
            b'],"total_count":', str(len(ordered.records)).encode(), b',"pages":', orjson.dumps(pages), b"}",
        ))
        return web.Response(body=body, content_type="application/json")
    records = apply_data_faults(request, page_records(state, model, ordered, chunk))
    return json_response({"type": list_type, items_key: records, "total_count": len(ordered.records), "pages": pages})


# Search queries touching only these fields (and sorts on them) are answered from the store's
# compact columns (`Workspace.timestamps`) instead of materialising every record.
LIGHT_FIELDS = frozenset({"id", "created_at", "updated_at"})
LIGHT_MODELS = frozenset({"contacts", "companies", "conversations"})


def light_ordered(
    state: EmulatorState, model: str, predicate: search.Predicate | None, field: str | None,
    cutoff: int | None, need_id: bool,
) -> Ordered:
    """Ordered ids of the live records matching a date/id-only predicate, no record materialised."""
    ws = state.ws
    pairs: list[tuple[tuple[Any, ...], str]] = []
    for i, created, updated in ws.timestamps(model):
        if cutoff is not None and updated > cutoff:
            continue
        row: dict[str, Any] = {"created_at": created, "updated_at": updated}
        if need_id:
            row["id"] = ws.id_at(model, i)
        if predicate is None or predicate(row):
            if not need_id:
                row["id"] = ws.id_at(model, i)
            pairs.append((search.record_key(row, field), row["id"]))
    return Ordered.of_ids(pairs)


def updated_range(query: Any, timezone: str, day_granular: bool) -> tuple[int, int] | None:
    """[lo, hi) of `updated_at` a query selects when it is one `updated_at` filter or an AND of
    them (the date windows syncs search by); None for anything else (filtered record by record).

    The same comparison as `search._single`: by calendar day in `timezone` (`>` from the day after
    V's, `<` before V's day, `=` V's day) or to the second.
    """
    filters = query.get("value") if isinstance(query, dict) and query.get("operator") == "AND" else [query]
    if not isinstance(filters, list) or not filters:
        return None
    lo, hi = 0, 2**62
    for flt in filters:
        if not isinstance(flt, dict) or flt.get("field") != "updated_at" or "value" not in flt:
            return None
        op, raw = flt.get("operator"), flt["value"]
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            return None
        try:
            v = int(raw)
        except ValueError:
            return None
        if day_granular:
            start, end = search.day_bounds(v, timezone)
            bounds = {">": (end, None), "<": (None, start), "=": (start, end)}.get(op)
        else:
            bounds = {">": (v + 1, None), ">=": (v, None), "<": (None, v), "<=": (None, v + 1), "=": (v, v + 1)}.get(op)
        if bounds is None:
            return None
        lo = max(lo, bounds[0]) if bounds[0] is not None else lo
        hi = min(hi, bounds[1]) if bounds[1] is not None else hi
    return lo, max(lo, hi)


def updated_slice(state: EmulatorState, model: str, lo: int, hi: int) -> Ordered:
    """The live records with lo <= updated_at < hi in `updated_at` order, by bisect on an index
    built once per workspace version (a query no longer walks every record)."""
    key = ("updated_at index", model, state.ws.version)
    index = state.model_cache.lookup(key)
    if index is None:
        index = light_ordered(state, model, None, "updated_at", None, need_id=False)
        state.model_cache.put(key, index)
    start, end = bisect_left(index.keys, ((1, lo),)), bisect_left(index.keys, ((1, hi),))
    out = Ordered.__new__(Ordered)
    out.keys, out.records, out.by_id = index.keys[start:end], index.records[start:end], True
    return out


def warm_updated_indexes(state: EmulatorState) -> None:
    """Build the big models' `updated_at` indexes now (`serve --cache-records`): the first search of
    a benchmark's sync then costs what the later ones do, not the ~1 s of a 200,000-contact index."""
    for model in sorted(LIGHT_MODELS):
        updated_slice(state, model, 0, 0)


def cursor_page(
    ordered: Ordered, descending: bool, per_page: int, cursor: str | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One page after `cursor` plus Intercom's `pages` object (next absent on the last page)."""
    total = len(ordered.records)
    page = 1
    if cursor:
        try:
            page, key = search.decode_cursor(cursor)
        except search.SearchError as err:
            raise ApiError(400, "parameter_invalid", err.message) from err
        if descending:
            end = bisect_left(ordered.keys, key)
            start = max(0, end - per_page)
        else:
            start = bisect_right(ordered.keys, key)
            end = start + per_page
    elif descending:
        end, start = total, max(0, total - per_page)
    else:
        start, end = 0, per_page
    chunk = ordered.records[start:end]
    more = start > 0 if descending else end < total
    if descending:
        chunk = chunk[::-1]
    pages: dict[str, Any] = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": math.ceil(total / per_page) if total else 0,
    }
    if more and chunk:
        last_key = ordered.keys[start] if descending else ordered.keys[end - 1]
        pages["next"] = {"page": page + 1, "starting_after": search.encode_cursor(page + 1, last_key)}
    return chunk, pages


def cursor_list(request: web.Request, model: str, list_type: str, items_key: str, default_pp: int) -> web.Response:
    """GET /contacts, GET /conversations: creation order, forward-only cursor."""
    state = state_of(request)
    per_page = per_page_of(request.query.get("per_page"), default_pp)
    key = ("list", model, state.ws.version)
    ordered = state.search_cache.lookup(key)
    if ordered is None:
        ordered = light_ordered(state, model, None, "created_at", None, need_id=False)
        state.search_cache.put(key, ordered)
    chunk, pages = cursor_page(ordered, False, per_page, request.query.get("starting_after"))
    if model == "conversations" and "per_page" in request.query:
        pages["per_page"] = str(per_page)  # real GET /conversations echoes a passed per_page as a string
    return page_response(request, model, ordered, chunk, list_type, items_key, pages)
