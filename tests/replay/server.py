"""A small Intercom stand-in that replays `workspace.build()` records over real HTTP on 127.0.0.1.

Why not the emulator: the emulator shares the connector's picture of Intercom; this server only
knows the replay records and answers the endpoints the connector calls the way Intercom does
(envelopes, search pagination with the cursor in the body, the companies scroll ending on an empty
page, `pages.next` absent on the last page, error.list bodies). It refuses a request whose
`Intercom-Version` is not the one its records were built for, so a test cannot pass on the
wrong shapes. Pages are smaller than Intercom's 150 (`page_size`) so a handful of records still
crosses pages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from tests.replay.records import Record, Workspace

TOKEN = "replay-token"
Handler = Callable[[web.Request], Any]


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"type": "error.list", "request_id": "replay-0000", "errors": [{"code": code, "message": message}]}
    return web.json_response(body, status=status)


def _cursor(offset: int) -> str:
    return base64.b64encode(json.dumps([offset]).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(json.loads(base64.b64decode(cursor))[0])


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def matches(record: Record, query: dict[str, Any]) -> bool:
    """Intercom's search DSL on one record: groups (AND/OR) and filters (=, !=, <, >, IN, NIN).

    Dates compare to the second (contacts search compares by calendar day in real Intercom; the
    connector's day-safe bounds make both readings return the same records).
    """
    operator = query.get("operator")
    if operator in ("AND", "OR"):
        results = [matches(record, sub) for sub in query.get("value") or []]
        return all(results) if operator == "AND" else any(results)
    field, value = query.get("field"), query.get("value")
    if not isinstance(field, str) or field not in record:
        raise ValueError(f"unsupported search field {field!r}")
    actual = record[field]
    if operator in ("IN", "NIN"):
        found = str(actual) in {str(v) for v in value or []}
        return found if operator == "IN" else not found
    left, right = _number(actual), _number(value)
    pair: tuple[Any, Any] = (left, right) if left is not None and right is not None else (str(actual), str(value))
    compare = {"=": pair[0] == pair[1], "!=": pair[0] != pair[1], ">": pair[0] > pair[1], "<": pair[0] < pair[1]}
    if operator not in compare:
        raise ValueError(f"unsupported search operator {operator!r}")
    return compare[operator]


class ReplayServer:
    """`with ReplayServer(workspace) as srv:` serves `workspace` at `srv.base_url`."""

    def __init__(self, workspace: Workspace, page_size: int = 2) -> None:
        self.workspace = workspace
        self.page_size = page_size
        self.requests: Counter[str] = Counter()  # "GET /companies/{id}/segments" -> calls
        self.versions_seen: set[str] = set()
        self._scrolls: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._serve, name="replay-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("replay server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        runner = web.AppRunner(self._app(), access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = int(runner.addresses[0][1])
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        get, post = web.get, web.post
        app.add_routes([
            get("/me", self._me),
            post("/contacts/search", self._search("data", "list", lambda: self.workspace.contacts)),
            post("/conversations/search", self._search("conversations", "conversation.list", self._conversation_items)),
            post("/tickets/search", self._search("tickets", "ticket.list", lambda: self.workspace.tickets)),
            get("/conversations/deleted", self._deleted_conversations),  # before {id}, which would match it
            get("/conversations/{id}", self._conversation),
            get("/tickets/{id}", self._ticket),
            get("/companies/scroll", self._scroll),
            get("/companies", self._companies),
            get("/companies/{id}/segments", self._company_segments),
            get("/contacts/{id}/tags", self._contact_tags),
            get("/contacts/{id}/companies", self._contact_companies),
            get("/admins", self._list("admin.list", "admins", lambda: self.workspace.admins)),
            get("/teams", self._list("team.list", "teams", lambda: self.workspace.teams)),
            get("/tags", self._list("list", "data", lambda: self.workspace.tags)),
            get("/segments", self._segments),
            get("/data_attributes", self._data_attributes),
            get("/admins/activity_logs", self._activity_logs),
        ])
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Auth and version first, as Intercom checks them before anything else."""
        route = request.match_info.route.resource
        template = route.canonical if route is not None else request.path
        self.requests[f"{request.method} {template}"] += 1
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "unauthorized", "Access Token Invalid")
        version = request.headers.get("Intercom-Version", "")
        self.versions_seen.add(version)
        if version != self.workspace.version:
            return _error(400, "intercom_version_invalid",
                          f"replay records are {self.workspace.version}, the request asked for {version!r}")
        response: web.StreamResponse = await handler(request)
        return response

    # ------------------------------------------------------------------ handlers
    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response(self.workspace.me)

    def _conversation_items(self) -> list[Record]:
        """Search results never carry conversation_parts."""
        return [{k: v for k, v in c.items() if k != "conversation_parts"} for c in self.workspace.conversations]

    def _search(self, key: str, list_type: str, records: Callable[[], list[Record]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            body = await request.json()
            query = body.get("query") or {}
            try:
                hits = [r for r in records() if matches(r, query)]
            except ValueError as exc:
                return _error(400, "parameter_invalid", str(exc))
            sort = body.get("sort") or {}
            field = sort.get("field") or "updated_at"
            hits.sort(key=lambda r: (r.get(field) or 0, str(r["id"])), reverse=sort.get("order") == "descending")
            pagination = body.get("pagination") or {}
            per_page = min(int(pagination.get("per_page") or 50), 150, self.page_size)
            start = _offset(pagination.get("starting_after"))
            page = hits[start : start + per_page]
            total_pages = max(1, -(-len(hits) // per_page))
            pages: Record = {"type": "pages", "page": start // per_page + 1, "per_page": per_page,
                             "total_pages": total_pages}
            if start + per_page < len(hits):
                pages["next"] = {"page": start // per_page + 2, "starting_after": _cursor(start + per_page)}
            return web.json_response({"type": list_type, "total_count": len(hits), "pages": pages, key: page})

        return handle

    def _find(self, records: Iterable[Record], record_id: str, what: str) -> Record | web.Response:
        for record in records:
            if str(record["id"]) == record_id:
                return record
        return _error(404, "not_found", f"{what} Not Found")

    async def _deleted_conversations(self, request: web.Request) -> web.Response:
        """2.16's feed, as its OpenAPI description has it (no public capture yet): nothing deleted here."""
        major, _, minor = self.workspace.version.partition(".")
        if (int(major), int(minor)) < (2, 16):
            return _error(400, "intercom_version_invalid", "GET /conversations/deleted needs Intercom-Version 2.16")
        return web.json_response({
            "type": "conversations.list", "conversations": [],
            "pages": {"type": "pages", "page": 1, "per_page": 20, "total_pages": 0},
        })

    async def _conversation(self, request: web.Request) -> web.Response:
        found = self._find(self.workspace.conversations, request.match_info["id"], "Conversation")
        return found if isinstance(found, web.Response) else web.json_response(found)

    async def _ticket(self, request: web.Request) -> web.Response:
        found = self._find(self.workspace.tickets, request.match_info["id"], "Ticket")
        return found if isinstance(found, web.Response) else web.json_response(found)

    async def _scroll(self, request: web.Request) -> web.Response:
        """Pages until an empty one; every page may carry the same scroll_param."""
        param = request.query.get("scroll_param")
        if param is None:
            if self._scrolls:
                return _error(400, "scroll_exists", "scroll already exists for this workspace")
            param = f"replay-scroll-{len(self.requests)}"
            self._scrolls[param] = 0
        elif param not in self._scrolls:
            return _error(404, "not_found", "scroll parameter not found")
        start = self._scrolls[param]
        page = self.workspace.companies[start : start + self.page_size]
        self._scrolls[param] = start + len(page)
        if not page:
            del self._scrolls[param]
        return web.json_response({"type": "list", "data": page, "pages": None, "total_count": None,
                                  "scroll_param": param})

    async def _companies(self, request: web.Request) -> web.Response:
        per_page = min(int(request.query.get("per_page", 15)), 60)
        page_no = int(request.query.get("page", 1))
        everything = self.workspace.companies
        page = everything[(page_no - 1) * per_page : page_no * per_page]
        total_pages = max(1, -(-len(everything) // per_page))
        # the connector only probes this list (per_page=1, for the permission): no `next` here
        return web.json_response({"type": "list", "data": page, "total_count": len(everything), "pages": {
            "type": "pages", "page": page_no, "per_page": per_page, "total_pages": total_pages}})

    async def _company_segments(self, request: web.Request) -> web.Response:
        segment_ids = self.workspace.company_segments.get(request.match_info["id"])
        if segment_ids is None:
            return _error(404, "company_not_found", "Company Not Found")
        return web.json_response({"type": "list", "data": [self.workspace.segment(s) for s in segment_ids]})

    async def _contact_tags(self, request: web.Request) -> web.Response:
        contact_id = request.match_info["id"]
        if all(c["id"] != contact_id for c in self.workspace.contacts):
            return _error(404, "not_found", "User Not Found")
        tag_ids = self.workspace.contact_tags.get(contact_id, [])
        return web.json_response({"type": "list", "data": [self.workspace.tag(t) for t in tag_ids]})

    async def _contact_companies(self, request: web.Request) -> web.Response:
        found = self._find(self.workspace.contacts, request.match_info["id"], "User")
        if isinstance(found, web.Response):
            return found
        companies = [self.workspace.company(ref["id"]) for ref in found["companies"]["data"]]
        return web.json_response({"type": "list", "data": companies, "total_count": len(companies), "pages": {
            "type": "pages", "next": None, "page": 1, "per_page": 50, "total_pages": 1}})

    def _list(self, list_type: str, key: str, records: Callable[[], list[Record]]) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            return web.json_response({"type": list_type, key: records()})

        return handle

    async def _segments(self, request: web.Request) -> web.Response:
        counted = request.query.get("include_count") == "true"
        segments = [{**s, "count": 2 + i} if counted else s for i, s in enumerate(self.workspace.segments)]
        return web.json_response({"type": "segment.list", "segments": segments, "pages": {}})

    async def _data_attributes(self, request: web.Request) -> web.Response:
        model = request.query.get("model")
        by_model = self.workspace.data_attributes
        if model is not None and model not in by_model:
            return _error(400, "parameter_invalid", f"model must be one of {', '.join(by_model)}")
        attrs = by_model[model] if model else [a for attrs in by_model.values() for a in attrs]
        return web.json_response({"type": "list", "data": attrs})

    async def _activity_logs(self, request: web.Request) -> web.Response:
        after = request.query.get("created_at_after")
        if after is None:
            return _error(400, "parameter_not_found", "created_at_after is a required parameter")
        before = request.query.get("created_at_before")
        logs = [log for log in self.workspace.activity_logs
                if log["created_at"] >= int(after) and (before is None or log["created_at"] <= int(before))]
        return web.json_response({"type": "activity_log.list", "pages": {
            "type": "pages", "next": None, "page": 1, "per_page": 20, "total_pages": 1}, "activity_logs": logs})
