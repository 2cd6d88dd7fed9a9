"""Every attack on the receiver, over real HTTP: refused with the right status, no row, exact warehouse.

Each test: sync, delete one contact for real in the emulator (its webhook arrives signed), then
attack with a notification that would mark another contact deleted, drain, and check that the
warehouse's deleted set is exactly the emulator's and nothing else changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import orjson

from intercom_elt.pipelines.cli import main
from tests.webhooks.conftest import SECRET, Scene, sign


def _real_delete(scene: Scene) -> str:
    victim = scene.live_contact(0)
    scene.ws.delete_contact(victim)
    scene.emu.webhooks_settled()
    return victim


def _attack_then_check(scene: Scene, response: httpx.Response, status: int, target: str) -> None:
    assert response.status_code == status, response.text
    assert all(row[2] != target for row in scene.inbox())  # no row for the attacked contact
    scene.drain()
    scene.assert_exact()
    assert target not in scene.deleted("contacts")


def test_forged_and_missing_signatures_are_401(scene: Scene) -> None:
    rec = scene.receiver()
    scene.run()
    victim = _real_delete(scene)
    target = scene.live_contact(1)
    forged = scene.notification("contact.deleted", {"type": "contact", "id": target})
    assert scene.post(rec.url, forged, signature=None).status_code == 401
    assert scene.post(rec.url, forged, signature="sha1=" + "0" * 40).status_code == 401
    assert scene.post(rec.url, forged, signature="sha256=whatever").status_code == 401
    _attack_then_check(scene, scene.post(rec.url, forged, signature=sign(b"another body")), 401, target)
    assert scene.deleted("contacts") == {victim: "contact.deleted"}


def test_a_signature_made_with_another_apps_secret_is_401(scene: Scene) -> None:
    rec = scene.receiver()
    scene.run()
    _real_delete(scene)
    target = scene.live_contact(1)
    forged = scene.notification("contact.deleted", {"type": "contact", "id": target})
    body = orjson.dumps(forged)
    other = "sha1=" + hmac.new(b"another-apps-client-secret", body, hashlib.sha1).hexdigest()
    _attack_then_check(scene, scene.post(rec.url, body, signature=other), 401, target)


def test_a_replayed_notification_has_no_second_effect(scene: Scene) -> None:
    rec = scene.receiver()
    scene.run()
    victim = _real_delete(scene)
    scene.drain()
    [(nid, raw)] = scene.inbox("select notification_id, body from _intercom_webhook_inbox where topic = 'contact.deleted'")
    marked_at = scene.query(f"select _deleted_at from intercom_data.contacts where id = '{victim}'")
    replay = scene.post(rec.url, raw.encode(), signature=sign(raw.encode()))  # exactly what Intercom sent
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert len(scene.inbox()) == 1 and scene.inbox()[0][0] == nid
    scene.drain()
    scene.assert_exact()
    assert scene.query(f"select _deleted_at from intercom_data.contacts where id = '{victim}'") == marked_at


def test_an_oversized_body_is_413_even_when_signed(scene: Scene) -> None:
    rec = scene.receiver(extra=["--max-body-bytes", "4096"])
    scene.run()
    _real_delete(scene)
    target = scene.live_contact(1)
    big = scene.notification("contact.deleted", {"type": "contact", "id": target, "pad": "x" * 5000})
    _attack_then_check(scene, scene.post(rec.url, big), 413, target)


def test_not_json_and_unknown_topics(scene: Scene) -> None:
    rec = scene.receiver()
    scene.run()
    assert scene.post(rec.url, b"[1, 2]").status_code == 400
    ping = scene.notification("ping", {"type": "ping", "message": "something"}, nid="notif_ping")
    assert scene.post(rec.url, ping).status_code == 200
    unknown = scene.notification("visitor.signed_up", {"type": "visitor", "id": "v1"}, nid="notif_unknown")
    assert scene.post(rec.url, unknown).status_code == 200
    scene.drain()
    scene.assert_exact()


def _ranges_file(scene: Scene, tmp_path: Path, ranges: list[str]) -> Path:
    from intercom_emulator.webhooks import sender_of  # the emulator serves a copy of Intercom's file

    sender_of(scene.emu.state).configure(ip_ranges=ranges)
    out = tmp_path / "ranges.json"
    url = f"{scene.emu.base_url}/_emulator/intercom-ips/us/intercom-ip-ranges.json"
    assert main(["webhooks", "refresh-ips", "--url", url, "--out", str(out)]) == 0
    return out


def test_a_request_from_outside_intercoms_ranges_is_403_even_when_signed(scene: Scene, tmp_path: Path) -> None:
    ranges = _ranges_file(scene, tmp_path, ["127.0.0.1/32"])
    rec = scene.receiver(extra=["--allow-ips", str(ranges), "--trusted-proxy", "127.0.0.3/32"])
    scene.run()
    victim = _real_delete(scene)  # the emulator sends from 127.0.0.1: allowed
    target = scene.live_contact(1)
    forged = scene.notification("contact.deleted", {"type": "contact", "id": target})
    # a forwarded address is believed only from a configured proxy
    spoofed = scene.post(rec.url, forged, local_address="127.0.0.2", headers={"X-Forwarded-For": "127.0.0.1"})
    ping = scene.notification("ping", {"type": "ping"}, nid="notif_via_proxy")
    proxied = scene.post(rec.url, ping, local_address="127.0.0.3", headers={"X-Forwarded-For": "127.0.0.1"})
    assert proxied.status_code == 200
    outside = scene.post(rec.url, ping, local_address="127.0.0.3", headers={"X-Forwarded-For": "127.0.0.9"})
    assert outside.status_code == 403
    _attack_then_check(scene, spoofed, 403, target)
    assert scene.deleted("contacts") == {victim: "contact.deleted"}


def test_a_stale_or_malformed_ranges_file_stops_the_receiver_from_starting(scene: Scene, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ranges = _ranges_file(scene, tmp_path, ["127.0.0.1/32"])
    cached = json.loads(ranges.read_text())
    cached["fetched_at"] -= 30 * 86400
    ranges.write_text(json.dumps(cached))
    args = ["webhooks", "serve", "--port", "1", "--allow-ips", str(ranges), *scene.target_args]
    assert main(args) == 2
    assert "days old" in capsys.readouterr().err
    ranges.write_text(json.dumps({"fetched_at": cached["fetched_at"] + 30 * 86400,
                                  "document": {"ip_ranges": [{"range": "not-a-cidr", "service": "INTERCOM-OUTBOUND"}]}}))
    assert main(args) == 2
    assert "malformed range" in capsys.readouterr().err
    url = f"{scene.emu.base_url}/_emulator/intercom-ips/us/intercom-ip-ranges.json"
    assert main(["webhooks", "refresh-ips", "--url", url + "x", "--out", str(tmp_path / "r2.json")]) != 0
    assert not (tmp_path / "r2.json").exists()


def test_the_client_secret_never_reaches_the_logs(scene: Scene) -> None:
    rec = scene.receiver(extra=["--debug"])
    scene.run()
    forged = scene.notification("contact.deleted", {"type": "contact", "id": scene.live_contact(1)})
    assert scene.post(rec.url, forged, signature=sign(b"x", SECRET)).status_code == 401
    assert SECRET not in rec.stop()


def test_several_apps_are_routed_by_app_id_and_drained_per_workspace(scene: Scene, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ours = scene.ws.app["id_code"]
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        f'[webhooks.client_secrets]\n{ours} = "app-one-secret"\nothers00 = "app-two-secret"\n')
    rec = scene.receiver(env={"INTERCOM_CLIENT_SECRET": ""}, cwd=tmp_path, secret="app-one-secret")
    scene.run()
    victim = _real_delete(scene)  # signed with app one's secret: kept
    target = scene.live_contact(1)
    theirs = dict(scene.notification("contact.deleted", {"type": "contact", "id": target}, nid="notif_theirs"),
                  app_id="others00")
    body = orjson.dumps(theirs)
    signed_two = "sha1=" + hmac.new(b"app-two-secret", body, hashlib.sha1).hexdigest()
    assert scene.post(rec.url, body, signature=signed_two).status_code == 200  # the other workspace's, kept
    mine = orjson.dumps(dict(theirs, app_id=ours, id="notif_crossed"))
    crossed = "sha1=" + hmac.new(b"app-two-secret", mine, hashlib.sha1).hexdigest()
    assert scene.post(rec.url, mine, signature=crossed).status_code == 401  # our app_id, their secret
    assert main(["webhooks", "drain", *scene.target_args]) == 2  # which workspace is this warehouse?
    assert "--app-id" in capsys.readouterr().err
    assert main(["webhooks", "drain", "--app-id", ours, *scene.target_args]) == 0
    scene.assert_exact()
    assert scene.deleted("contacts") == {victim: "contact.deleted"}
    capsys.readouterr()
    scene.run()  # `run` knows its workspace from /me and drains only its notifications
    out = capsys.readouterr().out
    assert "Webhooks drained: 1 delete-like notification(s)" in out and "not applied" not in out
    scene.assert_exact()


def test_a_replay_older_than_the_inbox_remembers_is_answered_but_not_kept(scene: Scene) -> None:
    rec = scene.receiver()
    scene.run()
    target = scene.live_contact(1)
    old = scene.notification("contact.archived", {"type": "contact", "id": target}, nid="notif_old")
    old["created_at"] -= 25 * 86400  # signed by Intercom once, replayed after the inbox forgot its id
    resp = scene.post(rec.url, old)
    assert resp.status_code == 200 and resp.json()["kept"] is False  # no retry storm, no effect
    _attack_then_check(scene, resp, 200, target)
