"""Data attributes: the declared custom and built-in attributes of each model, and their values.

Kept apart from generator.py because GET /data_attributes and every record's `custom_attributes`
must agree on one declaration; the values are drawn from the record's generator (the typed
attributes) or its shape generator (the workspace-named ones), so adding names never moves the
other draws of a record.
"""

from __future__ import annotations

import random
from typing import Any

DAY = 86_400
ATTR_BASE = 800_000

# Custom data attributes: (model, name, data_type, options). Every data type appears for each model.
CUSTOM_ATTRIBUTES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("contact", "plan_tier", "string", ("free", "starter", "pro", "enterprise")),
    ("contact", "seats", "integer", ()),
    ("contact", "mrr", "float", ()),
    ("contact", "is_vip", "boolean", ()),
    ("contact", "trial_ends_at", "date", ()),
    ("contact", "referral_code", "string", ()),
    ("company", "account_tier", "string", ("bronze", "silver", "gold")),
    ("company", "seats_purchased", "integer", ()),
    ("company", "arr", "float", ()),
    ("company", "is_partner", "boolean", ()),
    ("company", "renewal_date", "date", ()),
    ("conversation", "priority_reason", "string", ("outage", "billing", "vip", "other")),
    ("conversation", "escalation_count", "integer", ()),
    ("conversation", "order_value", "float", ()),
    ("conversation", "is_escalated", "boolean", ()),
    ("conversation", "resolved_on", "date", ()),
)
# Custom attributes named as real workspaces name them (spaces, colons, Intercom's own Fin/Copilot
# flags). "Fin AI Agent: Preview" and "Fin AI agent preview" map to the same snake_case column.
# Their values come from the shape generator (`SHAPE_SALT`), so the attributes above keep their draws.
REAL_NAMED_ATTRIBUTES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("contact", "Lead source: Web", "string", ("organic", "paid", "referral")),
    ("conversation", "Fin AI Agent: Preview", "boolean", ()),
    ("conversation", "Copilot used", "boolean", ()),
    ("conversation", "Fin AI agent preview", "string", ("on", "off")),
)
# Built-in data attributes: (model, name, full_name, data_type). `name` repeats within a model
# (company `name` / `plan.name`, `id` / `plan.id`); only (model, full_name) is unique.
BUILTIN_ATTRIBUTES: tuple[tuple[str, str, str, str], ...] = (
    ("contact", "name", "name", "string"), ("contact", "email", "email", "string"),
    ("contact", "phone", "phone", "string"), ("contact", "created_at", "created_at", "date"),
    ("contact", "signed_up_at", "signed_up_at", "date"), ("contact", "last_seen_at", "last_seen_at", "date"),
    ("company", "id", "id", "string"), ("company", "name", "name", "string"),
    ("company", "company_id", "company_id", "string"), ("company", "size", "size", "integer"),
    ("company", "monthly_spend", "monthly_spend", "float"), ("company", "name", "plan.name", "string"),
    ("company", "id", "plan.id", "string"), ("conversation", "title", "title", "string"),
)


def data_attribute_rows(model: str, history_start: int, admin_base: int) -> list[dict]:
    """GET /data_attributes rows for one model: built-ins (custom false) then custom ones.

    Built-ins carry no `id`, `created_at`, `updated_at` or `admin_id` (the 2.15 text: `id` "Only
    available for custom attributes"; tap-intercom keys these streams on a record hash for it).
    """
    rows: list[dict] = []
    created = history_start
    for m, name, full_name, dtype in BUILTIN_ATTRIBUTES:
        if m == model:
            rows.append({"type": "data_attribute", "model": m, "name": name, "full_name": full_name,
                         "label": full_name.replace("_", " ").replace(".", " ").title(),
                         "description": f"The {full_name.replace('_', ' ')} of the {m}.", "data_type": dtype,
                         "api_writable": name not in ("created_at", "id"), "messenger_writable": False,
                         "ui_writable": name != "id", "custom": False, "archived": False})
    customs = [(m, n, d, o) for m, n, d, o in CUSTOM_ATTRIBUTES + REAL_NAMED_ATTRIBUTES]
    for j, (m, name, dtype, options) in enumerate(customs):
        if m == model:
            row = {"type": "data_attribute", "id": ATTR_BASE + 100 + j, "model": m, "name": name,
                   "full_name": f"custom_attributes.{name}", "label": name.replace("_", " ").title(),
                   "description": f"Custom {dtype} attribute {name}.", "data_type": dtype,
                   "api_writable": True, "messenger_writable": False, "ui_writable": True,
                   "custom": True, "archived": False, "created_at": created + DAY * (j + 1),
                   "updated_at": created + DAY * (j + 2), "admin_id": str(admin_base)}
            if options:
                row["options"] = list(options)
            rows.append(row)
    return rows

def custom_values(rng: random.Random, model: str, updated: int) -> dict:
    """One value per declared custom attribute, of its declared type; ~12% stay unset (key omitted).

    Unset attributes are left out rather than sent as null: no Intercom example holds a null
    custom attribute and the schemas type the values non-nullable. The draws are unchanged.
    """
    out: dict[str, Any] = {}
    for m, name, dtype, options in CUSTOM_ATTRIBUTES:
        if m != model:
            continue
        r = rng.random()
        if r < 0.12:
            continue
        elif dtype == "string":
            out[name] = rng.choice(options) if options else f"{name[:3].upper()}-{rng.randrange(10**6):06d}"
        elif dtype == "integer":
            out[name] = rng.randrange(0, 500)
        elif dtype == "float":
            out[name] = round(rng.uniform(0, 5_000), 2)
        elif dtype == "boolean":
            out[name] = r < 0.5
        else:
            out[name] = updated - rng.randrange(0, 200) * DAY
    return out

def real_named_values(shape: random.Random, model: str) -> dict:
    """Values of `REAL_NAMED_ATTRIBUTES` (drawn from the shape generator); ~20% unset each."""
    out: dict[str, Any] = {}
    for m, name, dtype, options in REAL_NAMED_ATTRIBUTES:
        if m != model:
            continue
        r = shape.random()
        if r < 0.2:
            continue
        out[name] = r < 0.6 if dtype == "boolean" else shape.choice(options)
    return out
