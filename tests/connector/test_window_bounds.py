"""Search windows partition time exactly under Intercom's date comparison, across DST changes.

The window queries (sources/intercom/window_readers.py) are compiled by the emulator's own search
predicate (intercom_emulator/search.py), day-granular as contacts search is, or to the second:
every timestamp around a DST change falls in exactly one window, and each window's query matches
at least its records (with day units in a known zone: exactly them, no page wasted).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from intercom_elt.sources.intercom.window_readers import Units, Window
from intercom_emulator import search

# New York springs forward at 02:00; Santiago at midnight (its change day starts at 01:00);
# Lord Howe moves by 30 minutes
CHANGES = {
    "America/New_York": datetime(2026, 3, 8, 12),
    "America/Santiago": datetime(2026, 9, 6, 12),
    "Australia/Lord_Howe": datetime(2026, 10, 4, 12),
}


@pytest.mark.parametrize("tz", sorted(CHANGES))
@pytest.mark.parametrize(("unit", "day_granular"), [("day", True), ("day", False), ("second", False), ("second", True)])
def test_windows_partition_every_timestamp(tz: str, unit: str, day_granular: bool) -> None:
    zone = ZoneInfo(tz)
    middle = int(CHANGES[tz].replace(tzinfo=zone).timestamp())
    units = Units(unit, tz)  # type: ignore[arg-type]
    lo, hi = units.floor(middle - 4 * 86400), units.floor(middle + 4 * 86400)
    cuts = units.cuts(lo, hi, 8)  # day units: one window per local day
    windows = [Window(a, b) for a, b in zip(cuts, cuts[1:], strict=False)] + [Window(hi, None)]
    if unit == "day":
        assert len(windows) == 9 and all(datetime.fromtimestamp(c, zone).hour in (0, 1) for c in cuts)
    records = [{"id": str(t), "updated_at": t} for t in range(lo - 86400, hi + 2 * 86400, 900)]
    records += [{"id": f"b{c}", "updated_at": c} for c in cuts] + [{"id": f"e{c}", "updated_at": c - 1} for c in cuts]
    holders = {r["id"]: [w for w in windows if w.holds(r)] for r in records if r["updated_at"] >= lo}
    assert all(len(found) == 1 for found in holders.values()), [k for k, v in holders.items() if len(v) != 1][:5]
    for window in windows:
        matches = search.compile_query(units.query(window), model="contacts", timezone=tz, day_granular=day_granular)
        matched = {r["id"] for r in records if matches(r)}
        own = {r["id"] for r in records if r["updated_at"] >= lo and window.holds(r)}
        assert own <= matched, f"{window}: the query misses {sorted(own - matched)[:3]}"
        if unit == "day" and day_granular:
            assert matched == own
