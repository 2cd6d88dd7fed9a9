"""The receiver's pure parts and the inbox on its own: signatures, ranges, forwarded addresses,
secrets from .dlt/secrets.toml, the SQLite inbox's WAL mode and idempotence, drain order rules."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from intercom_elt.pipelines.webhooks import config, security
from intercom_elt.pipelines.webhooks.drain import final_events
from intercom_elt.pipelines.webhooks.inbox import Event, Inbox
from tests.webhooks.conftest import Scene, sign


def test_signature_is_hmac_sha1_of_the_raw_body() -> None:
    body = b'{"type":"notification_event"}'
    assert security.signature_ok(body, sign(body, "k"), "k")
    assert security.signature_ok(body, sign(body, "k").upper().replace("SHA1=", "sha1="), "k")
    assert not security.signature_ok(body + b" ", sign(body, "k"), "k")
    assert not security.signature_ok(body, sign(body, "k"), "other")
    assert not security.signature_ok(body, None, "k") and not security.signature_ok(body, sign(body, ""), "")


def test_only_outbound_ranges_count_and_a_malformed_document_is_refused() -> None:
    doc = {"date": "2026-12-01", "ip_ranges": [
        {"range": "34.0.0.0/24", "region": "us", "service": "INTERCOM-OUTBOUND"},
        {"range": "2600:1f18::/36", "region": "us", "service": "INTERCOM-OUTBOUND"},
        {"range": "10.0.0.0/8", "region": "us", "service": "INTERCOM-INBOUND"}]}
    assert [str(n) for n in security.parse_ranges(doc)] == ["34.0.0.0/24", "2600:1f18::/36"]
    for bad in ({}, {"ip_ranges": "x"}, {"ip_ranges": [{"range": 5}]},
                {"ip_ranges": [{"range": "10.0.0.0/8", "service": "INTERCOM-INBOUND"}]}):
        with pytest.raises(security.RangesError):
            security.parse_ranges(bad)


def test_the_ranges_cache_is_refused_when_stale(tmp_path: Path) -> None:
    doc = {"date": "2026-12-01", "ip_ranges": [{"range": "34.0.0.0/24", "service": "INTERCOM-OUTBOUND"}]}
    path = tmp_path / "r.json"
    security.write_ranges_cache(doc, path, now=time.time() - 3 * 86400)
    allow = security.Allowlist.load(path, max_age_days=7)
    assert allow.allows(ipaddress.ip_address("34.0.0.9")) and not allow.allows(ipaddress.ip_address("34.0.1.9"))
    with pytest.raises(security.RangesError, match="days old"):
        security.Allowlist.load(path, max_age_days=2)


def test_forwarded_addresses_are_believed_only_from_trusted_proxies() -> None:
    proxies = security.parse_networks(["10.0.0.0/8"])
    ip = ipaddress.ip_address
    assert security.client_address("203.0.113.5", "34.0.0.1", proxies) == ip("203.0.113.5")
    assert security.client_address("10.0.0.2", "34.0.0.1", proxies) == ip("34.0.0.1")
    # the left-most hops are the client's to invent: the right-most untrusted one counts
    assert security.client_address("10.0.0.2", "34.0.0.1, 198.51.100.7, 10.0.0.9", proxies) == ip("198.51.100.7")
    assert security.client_address("10.0.0.2", "garbage", proxies) is None


def _secrets_in(cwd: Path, env: dict[str, str]) -> str:
    """resolve_secrets() in a fresh process (dlt reads .dlt/ of the working directory once per process)."""
    code = ("from intercom_elt.pipelines.webhooks.config import resolve_secrets\n"
            "from intercom_elt.pipelines.errors import UserError\n"
            "try:\n    s = resolve_secrets(); print(s.for_app('abc123'), s.for_app('zzz'), repr(s))\n"
            "except UserError as e:\n    print('error:', e)\n")
    clean = {k: v for k, v in os.environ.items() if k != config.SECRET_ENV}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**clean, **env}, capture_output=True, text=True)
    return done.stdout.strip()


def test_client_secrets_come_from_env_or_secrets_toml(tmp_path: Path) -> None:
    assert _secrets_in(tmp_path, {}).startswith("error: no Intercom client secret")
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        '[webhooks]\nclient_secret = "from-toml"\n[webhooks.client_secrets]\nabc123 = "app-abc"\n')
    shown = _secrets_in(tmp_path, {})
    assert shown.startswith("app-abc from-toml ClientSecrets(") and shown.count("from-toml") == 1
    assert _secrets_in(tmp_path, {config.SECRET_ENV: "from-env"}).startswith("app-abc from-env ")


def _event(nid: str, topic: str, item: str, created: int) -> Event:
    return Event(nid, "app", topic, "contact", item, created, time.time())


def test_the_sqlite_inbox_is_wal_and_keeps_one_row_per_notification_id(tmp_path: Path) -> None:
    inbox = Inbox(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    assert inbox.put(_event("n1", "contact.deleted", "c1", 10), "{}") is True
    assert inbox.put(_event("n1", "contact.deleted", "c1", 10), "{}") is False
    with inbox.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("select count(*) from _intercom_webhook_inbox")).scalar() == 1
    inbox.close()


@pytest.mark.postgres
def test_the_postgres_inbox_lives_in_the_dataset_schema(postgres_credentials: str, postgres_dataset: str) -> None:
    inbox = Inbox(postgres_credentials, postgres_dataset)
    assert inbox.put(_event("n1", "contact.deleted", "c1", 10), "{}") and not inbox.put(
        _event("n1", "contact.deleted", "c1", 10), "{}")
    assert [e.item_id for e in inbox.events(["contact.deleted"])] == ["c1"]
    assert inbox.exists()
    inbox.close()


def test_the_newest_event_per_record_wins_whatever_the_arrival_order() -> None:
    archived = _event("n2", "contact.archived", "c1", 100)
    unarchived = _event("n3", "contact.unarchived", "c1", 200)
    deleted = _event("n4", "contact.deleted", "c2", 50)
    for order in ([archived, unarchived, deleted], [unarchived, deleted, archived]):
        finals = final_events(order)
        assert finals[("contacts", "c1")] is unarchived and finals[("contacts", "c2")] is deleted


def test_an_unarchive_clears_the_archive_mark_in_any_delivery_order(scene: Scene) -> None:
    rec = scene.receiver(subscribe=False)
    scene.run()
    cid = scene.live_contact(0)
    archived = scene.notification("contact.archived", {"type": "contact", "id": cid}, nid="notif_a")
    unarchived = scene.notification("contact.unarchived", {"type": "contact", "id": cid}, nid="notif_b")
    unarchived["created_at"] += 60
    assert scene.post(rec.url, unarchived).status_code == 200  # the later event arrives first
    scene.drain()
    assert scene.post(rec.url, archived).status_code == 200
    scene.drain()
    assert scene.deleted("contacts") == {}
    assert scene.rows() == scene.snapshot
    later = scene.notification("contact.archived", {"type": "contact", "id": cid}, nid="notif_c")
    later["created_at"] += 120
    assert scene.post(rec.url, later).status_code == 200
    scene.drain()
    assert scene.deleted("contacts") == {cid: "contact.archived"}


def test_prune_forgets_only_applied_notifications_past_the_retention(tmp_path: Path) -> None:
    inbox = Inbox(f"sqlite:///{tmp_path / 'inbox.sqlite'}")
    old = time.time() - 40 * 86400
    for nid, received in (("applied-old", old), ("pending-old", old), ("applied-new", time.time())):
        inbox.put(Event(nid, "app", "contact.deleted", "contact", nid, int(received), received), "{}")
    inbox.mark_applied(["applied-old", "applied-new"])
    assert inbox.prune() == 1
    assert sorted(e.notification_id for e in inbox.events(["contact.deleted"])) == ["applied-new", "pending-old"]
    inbox.close()


def test_in_history_mode_the_drain_closes_the_current_version(scene: Scene) -> None:
    scene.receiver()
    scene.run("--history")
    victim = scene.live_contact(0)
    scene.ws.delete_contact(victim)
    scene.emu.webhooks_settled()
    scene.drain()
    rows = scene.query(f"select _deleted_reason, _dlt_valid_to is not null from intercom_data.contacts where id = '{victim}'")
    assert rows == [("contact.deleted", True)]
    assert scene.query("select count(*) from intercom_data.contacts where _deleted_at is not null "
                       "and _dlt_valid_to is null") == [(0,)]
    scene.assert_exact()


def test_company_deleted_marks_the_company(scene: Scene) -> None:
    """The emulator cannot delete a company (Intercom archives them asynchronously), so the
    notification Intercom would send is posted signed, as Intercom would."""
    rec = scene.receiver(subscribe=False)
    scene.run()
    company = scene.query("select id from intercom_data.companies order by id limit 1")[0][0]
    note = scene.notification("company.deleted", {"type": "company", "id": company}, nid="notif_company")
    assert scene.post(rec.url, note).status_code == 200
    scene.drain()
    assert scene.deleted("companies") == {company: "company.deleted"}
    assert scene.deleted("contacts") == {} and scene.deleted("conversations") == {}
    assert {t: r for t, r in scene.rows().items() if t != "companies"} == \
        {t: r for t, r in scene.snapshot.items() if t != "companies"}
