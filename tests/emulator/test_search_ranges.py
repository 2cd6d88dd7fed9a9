"""The emulator answers `updated_at` range searches from a sorted index: same records, same order
as filtering every record with the compiled query (day and second comparison, DST days included)."""

from __future__ import annotations

import random

import pytest

from intercom_emulator import search
from intercom_emulator.routes.cursor import light_ordered, updated_range, updated_slice
from intercom_emulator.testing import EmulatorServer


@pytest.mark.parametrize("day_granular", [True, False])
def test_range_index_answers_like_the_full_filter(day_granular: bool) -> None:
    with EmulatorServer(profile="demo", seed=2, timezone="America/Santiago") as emu:
        state, ws = emu.state, emu.workspace
        updated = sorted(u for _, _, u in ws.timestamps("contacts"))
        rng = random.Random(7)
        ops = [">", "<", "="] if day_granular else [">", "<", "=", ">=", "<="]
        for _ in range(60):
            a, b = sorted(rng.sample(updated, 2))
            v = rng.choice([a, b, a - 1, b + 1])
            queries = [
                {"field": "updated_at", "operator": rng.choice(ops), "value": str(v)},
                {"operator": "AND", "value": [
                    {"field": "updated_at", "operator": ">", "value": str(a - rng.choice([0, 1, 3600]))},
                    {"field": "updated_at", "operator": "<", "value": b + rng.choice([0, 1, 3600])},
                ]},
            ]
            for query in queries:
                window = updated_range(query, ws.timezone, day_granular)
                assert window is not None
                fast = updated_slice(state, "contacts", *window)
                predicate = search.compile_query(query, model="contacts", timezone=ws.timezone, day_granular=day_granular)
                slow = light_ordered(state, "contacts", predicate, "updated_at", None, need_id=False)
                assert fast.records == slow.records and fast.keys == slow.keys, query
    # a query on anything else is filtered record by record
    assert updated_range({"field": "email", "operator": "=", "value": "x"}, "UTC", True) is None
    assert updated_range({"operator": "OR", "value": [{"field": "updated_at", "operator": ">", "value": 1}]}, "UTC", True) is None
