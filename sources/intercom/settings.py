"""Static knowledge about the Intercom API: hosts, endpoints, permissions, page sizes, streams.

Everything the client and streams need to know about Intercom that is not code lives here, so a
new endpoint or a changed limit is a one-line edit.
"""

from __future__ import annotations

from dataclasses import dataclass

REGIONS: dict[str, str] = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
DEFAULT_REGION = "us"
DEFAULT_VERSION = "2.15"
# the Intercom-Version values the suite syncs end to end (tests/connector/test_versions.py); shapes
# differ between them (docs/emulator-contract.md), so an untested one is refused, not guessed at
SUPPORTED_VERSIONS: tuple[str, ...] = ("2.11", "2.12", "2.13", "2.14", "2.15", "2.16")


def version_at_least(intercom_version: str, first: tuple[int, int]) -> bool:
    """True for a numbered Intercom-Version at or after `first` ("2.16" >= (2, 16))."""
    major, _, minor = str(intercom_version).partition(".")
    return major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= first
DEFAULT_LOOKBACK_SECONDS = 900
DEFAULT_MAX_WORKERS = 32  # upper bound of concurrent detail fetches; sized down from quota x latency

SEARCH_PAGE_SIZE = 150  # Intercom's maximum for search and cursor lists
SEARCH_SPLIT_MIN_PAGES = 8  # a search matching more pages than this is read as concurrent windows
# a split search commits a load package (its progress) every so many records; fewer, larger parts
# load faster (at 1,000,000 contacts 112.7 s against 161.5 s for 100,000: each part's merge scans
# the whole table, and DuckDB writes row groups of 122,880 rows straight to disk, not via its WAL)
SEARCH_CHECKPOINT_RECORDS = 250_000
SEARCH_WINDOW_MIN_PAGES = 8  # pages per window at least, on average (each window ends on a part page)
ACTIVITY_LOG_WINDOW_SECONDS = 5 * 24 * 3600  # 5-day windows: wider ones have caused 500s
ACTIVITY_LOG_WORKERS = 8  # activity-log windows fetched at once
HTTP_POOL_EXTRA = 16  # connections beyond the detail workers: streams run in parallel
# Calls a second one Python process can send and parse (httpx costs ~1 ms of CPU a call). Pools
# are sized for min(quota, this) x latency: with a fast server, more threads only fight for the GIL.
CLIENT_MAX_CALLS_PER_SECOND = 400

# HTTP behaviour
REQUEST_TIMEOUT_SECONDS = 60.0
MAX_RETRIES = 6  # for 5xx, timeouts, connection errors, malformed bodies
MAX_RATE_LIMIT_RETRIES = 20  # 429s get their own budget: waiting for the reset is cheap
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
MAX_RATE_LIMIT_WAIT_SECONDS = 60.0  # Intercom windows are 10 s; never trust a reset further away
SCROLL_BUSY_MAX_WAIT_SECONDS = 150.0  # an idle scroll expires after ~1 minute
SCROLL_MAX_RESTARTS = 3  # restarts in a row that reach no new company; then the sync fails

# Intercom permission names, as shown in the Developer Hub "Authentication" settings
PERM_USERS_COMPANIES = "Read and list users and companies"
PERM_CONVERSATIONS = "Read conversations"
PERM_ADMINS = "Read admins"
PERM_TAGS = "Read tags"
PERM_TICKETS = "Read tickets"


@dataclass(frozen=True)
class Endpoint:
    """One Intercom route: method, path template (the key of request stats), its permission and,
    for one-page lists, the key of the record list in its answer."""

    method: str
    path: str
    permission: str | None
    records: str = "data"

    @property
    def template(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS: dict[str, Endpoint] = {
    "me": Endpoint("GET", "/me", None),
    "contacts_search": Endpoint("POST", "/contacts/search", PERM_USERS_COMPANIES),
    "companies_scroll": Endpoint("GET", "/companies/scroll", PERM_USERS_COMPANIES),
    "companies_list": Endpoint("GET", "/companies", PERM_USERS_COMPANIES),
    "conversations_search": Endpoint("POST", "/conversations/search", PERM_CONVERSATIONS),
    "conversation": Endpoint("GET", "/conversations/{id}", PERM_CONVERSATIONS),
    "admins": Endpoint("GET", "/admins", PERM_ADMINS, records="admins"),
    "activity_logs": Endpoint("GET", "/admins/activity_logs", PERM_ADMINS),
    "teams": Endpoint("GET", "/teams", PERM_ADMINS, records="teams"),
    "tags": Endpoint("GET", "/tags", PERM_TAGS),
    "segments": Endpoint("GET", "/segments", PERM_USERS_COMPANIES, records="segments"),
    "data_attributes": Endpoint("GET", "/data_attributes", PERM_USERS_COMPANIES),
    "tickets_search": Endpoint("POST", "/tickets/search", PERM_TICKETS),
    # complete relations, tickets and delete reconciliation (relations.py, tickets.py, deletes.py)
    "contact": Endpoint("GET", "/contacts/{id}", PERM_USERS_COMPANIES),
    "contact_tags": Endpoint("GET", "/contacts/{id}/tags", PERM_USERS_COMPANIES),
    "contact_companies": Endpoint("GET", "/contacts/{id}/companies", PERM_USERS_COMPANIES),
    "company_segments": Endpoint("GET", "/companies/{id}/segments", PERM_USERS_COMPANIES),
    "contacts_list": Endpoint("GET", "/contacts", PERM_USERS_COMPANIES),
    "conversations_list": Endpoint("GET", "/conversations", PERM_CONVERSATIONS),
    "conversations_deleted": Endpoint("GET", "/conversations/deleted", PERM_CONVERSATIONS),  # 2.16+
    "ticket": Endpoint("GET", "/tickets/{id}", PERM_TICKETS),
}

DATA_ATTRIBUTE_MODELS = ("contact", "company", "conversation")
