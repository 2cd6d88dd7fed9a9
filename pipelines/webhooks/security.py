"""Who may post a notification: the signature, Intercom's outbound address ranges, forwarded addresses.

Why apart from the receiver: these are pure checks (no I/O but reading the ranges file), tested on
their own and shared by `serve` and `refresh-ips`. An address match is never proof of the sender;
the signature check is always on (intercom-api-notes.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

OUTBOUND = "INTERCOM-OUTBOUND"
IP_RANGES_URL = "https://static.intercomcdn.com/intercom-ips/{region}/intercom-ip-ranges.json"
DEFAULT_MAX_AGE_DAYS = 7.0

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def signature_for(body: bytes, secret: str) -> str:
    """`sha1=` + hex HMAC-SHA1 of the raw body keyed by the app's client secret."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time comparison of X-Hub-Signature with the expected one."""
    if not header or not secret:
        return False
    return hmac.compare_digest(signature_for(body, secret).encode(), header.strip().lower().encode())


class RangesError(ValueError):
    """The ranges file is missing, malformed, stale or lists no outbound range."""


def parse_ranges(payload: object) -> list[IPNetwork]:
    """The INTERCOM-OUTBOUND networks of an intercom-ip-ranges.json payload; refuses a malformed one."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("ip_ranges"), list):
        raise RangesError("not an intercom-ip-ranges.json document (no ip_ranges list)")
    networks: list[IPNetwork] = []
    for entry in payload["ip_ranges"]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("range"), str):
            raise RangesError(f"malformed ip_ranges entry: {entry!r}")
        if entry.get("service") != OUTBOUND:
            continue
        try:
            networks.append(ipaddress.ip_network(entry["range"], strict=False))
        except ValueError as exc:
            raise RangesError(f"malformed range {entry['range']!r}: {exc}") from None
    if not networks:
        raise RangesError(f"no {OUTBOUND} range in the file")
    return networks


@dataclass(frozen=True)
class Allowlist:
    """Intercom's outbound ranges as cached by `refresh-ips`, with when they were fetched."""

    networks: tuple[IPNetwork, ...]
    fetched_at: float
    source_date: str | None
    path: Path

    def allows(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in n for n in self.networks if n.version == address.version)

    @classmethod
    def load(cls, path: str | Path, max_age_days: float = DEFAULT_MAX_AGE_DAYS, now: float | None = None) -> Allowlist:
        """Read the cache file; a missing, malformed or stale one raises RangesError (loudly, by design)."""
        path = Path(path)
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RangesError(f"cannot read the IP ranges file {path}: {exc}") from None
        if not isinstance(cached, Mapping) or not isinstance(cached.get("fetched_at"), (int, float)):
            raise RangesError(f"{path} is not a file written by `intercom-sync webhooks refresh-ips`")
        networks = parse_ranges(cached.get("document"))
        age_days = ((now or time.time()) - float(cached["fetched_at"])) / 86400
        if age_days > max_age_days:
            raise RangesError(
                f"the IP ranges file {path} is {age_days:.1f} days old (limit {max_age_days:g}): "
                "run `intercom-sync webhooks refresh-ips` (daily, e.g. from cron)"
            )
        date = cached["document"].get("date")
        return cls(tuple(networks), float(cached["fetched_at"]), str(date) if date is not None else None, path)


def write_ranges_cache(document: object, path: str | Path, now: float | None = None) -> int:
    """Validate a downloaded document and cache it with the time it was fetched; returns the range count."""
    networks = parse_ranges(document)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"fetched_at": now or time.time(), "document": document}))
    tmp.replace(path)  # atomic: a running receiver never reads half a file
    return len(networks)


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[IPNetwork]) -> IPAddress | None:
    """The address that sent the request: the peer, or, when the peer is a trusted proxy, the
    right-most X-Forwarded-For hop that is not itself a trusted proxy (left-most hops are the
    client's to invent, so they are never believed)."""
    try:
        address: IPAddress | None = ipaddress.ip_address(peer) if peer else None
    except ValueError:
        return None

    def trusted(a: IPAddress) -> bool:
        return any(a in n for n in trusted_proxies if n.version == a.version)

    if address is None or not trusted(address) or not forwarded_for:
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            hop_address = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not trusted(hop_address):
            return hop_address
        address = hop_address
    return address
