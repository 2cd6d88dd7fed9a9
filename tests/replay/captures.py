"""The public captures of real Intercom responses that the replay records follow.

Each replay record is built to the shape of one of these (field names, presence, types, nesting)
with values of our own; the record's builder names its capture. A capture is real data recorded
from Intercom by someone else's integration tests, not Intercom's OpenAPI examples, which is why
it is evidence of what a real workspace sends (see `shared/intercom-api-notes.md`, "real wins").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capture:
    """One public file of recorded Intercom responses: repository, path, what it shows."""

    repo: str
    path: str
    shows: str

    def __str__(self) -> str:
        return f"{self.repo}:{self.path}"


NANGO = "NangoHQ/integration-templates"
AIRBYTE = "airbytehq/airbyte"
AIRBYTE_DIR = "airbyte-integrations/connectors/source-intercom"

# GET /conversations/{id} recorded through Nango's proxy (2024-09): `source.type: null` with
# `delivered_as: "admin_initiated"`, `first_contact_reply.type: null`, teammates as `admin.list`,
# every statistics key (null when empty), `topics: {}`, `ticket: null`, parts with body null.
NANGO_CONVERSATION = Capture(
    NANGO, "integrations/intercom/mocks/nango/get/proxy/conversations/1/conversations.json",
    "conversation detail with parts",
)
# GET /contacts: every contact key present, `avatar: null`, `custom_attributes: {}`, embedded
# tags/notes/companies lists with url/total_count/has_more, location with nulls.
NANGO_CONTACTS = Capture(NANGO, "integrations/intercom/mocks/nango/get/proxy/contacts/contacts.json", "contacts list")
# GET /admins: admin.list, no avatar, `team_priority_level: {}`.
NANGO_ADMINS = Capture(NANGO, "integrations/intercom/mocks/nango/get/proxy/admins/users.json", "admins list")
# Airbyte's recorded sandbox records, read with `Intercom-Version: 2.11` (its manifest.yaml):
# built-in data attributes without id/created_at/updated_at, companies with `plan: {}` and no
# website/industry/remote_created_at unless set, teams, tags, segments, activity logs, company
# segments, conversations with teammates as admin.list and every statistics key.
AIRBYTE_RECORDS = Capture(
    AIRBYTE, f"{AIRBYTE_DIR}/integration_tests/expected_records.jsonl", "records of every stream at 2.11",
)
# Tickets at 2.11: `ticket_state` a string plus `ticket_state_internal_label`/`_external_label`,
# `ticket_type.ticket_type_attributes` as `{type: list, data}`, `ticket_parts` embedded in
# search items, `admin_assignee_id`/`team_assignee_id` as the string "0".
AIRBYTE_TICKETS = Capture(
    AIRBYTE, f"{AIRBYTE_DIR}/integration_tests/tickets_expected_records.jsonl", "tickets at 2.11",
)
# What no capture found here shows, taken from Intercom's own OpenAPI description at the version
# (pinned in scripts/fetch_openapi.py): the 2.15 ticket_state object, the 2.16 additions
# (conversation `channel`/`external_references`/`sales_agent`, contact `email_domain`, company
# `notes`), and `/me` with `app.timezone` and the admin avatar object.
OPENAPI_215 = Capture("intercom/Intercom-OpenAPI", "descriptions/2.15/api.intercom.io.yaml", "2.15 schemas")
OPENAPI_216 = Capture("intercom/Intercom-OpenAPI", "descriptions/2.16/api.intercom.io.yaml", "2.16 schemas")
# Shapes reported from real workspaces in this project's issue 15 (sources listed there: snapshot
# tests at 2.11/2.15/2.16, tap-intercom's and Airbyte's schemas) for which no public file was
# located while writing these records: `source: null`, 2.16's `0` assignees and
# `priority: "none"`, the integer ticket `admin_assignee_id` at 2.16.
ISSUE_15 = Capture("this project", "issue 15 / shared/intercom-api-notes.md", "reported real shapes")

ALL: tuple[Capture, ...] = (
    NANGO_CONVERSATION, NANGO_CONTACTS, NANGO_ADMINS, AIRBYTE_RECORDS, AIRBYTE_TICKETS, OPENAPI_215, OPENAPI_216,
    ISSUE_15,
)
