"""`gslb external-dns`, external-dns's webhook provider (issue 19 §2), replayed: the requests
external-dns makes (negotiation, records, adjustendpoints, changes with its TXT registry's
ownership records) against a real webhook writing into a real `gslb serve`; two clusters'
Services become one pool by set identifier, health follows the checkers, and a second look
at the records plans no change."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import dns.message
import dns.query
import dns.rdatatype
import pytest

from gslb.externaldns import MEDIA_TYPE
from tests.api_client import Http
from tests.helpers import start_backend, write_zones
from tests.server import ServerProcess
from tests.test_redis_state import until

ZONE = "k8s.example.com"

ZONE_FILE = """\
zone: k8s.example.com
soa: {mname: ns1, rname: hostmaster.example.com.}
records: |
  @    NS  ns1
  ns1  A   192.0.2.53
monitors:
  web: {type: http, port: PORT, path: /healthz, interval: 0.5, timeout: 0.4, rise: 1, fall: 1}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.32.0.1", 0))
        return int(s.getsockname()[1])


class Webhook:
    """A `gslb external-dns` process, its JSON log read as it comes."""

    def __init__(self, api: str, token: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gslb",
                "external-dns",
                "--api",
                api,
                "--zone",
                ZONE,
                "--listen",
                "127.0.0.1:0",
                "--health",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ],
            env={**os.environ, "GSLB_API_TOKEN": token},
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, object]] = []
        started = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for raw in self.proc.stderr:
                try:
                    self.lines.append(json.loads(raw))
                except ValueError:
                    self.lines.append({"text": raw})
                if self.lines[-1].get("event") == "started":
                    started.set()
            started.set()

        threading.Thread(target=read, daemon=True).start()
        started.wait(30)
        first = [line for line in self.lines if line.get("event") == "started"]
        assert first, self.lines
        host, _, port = str(first[0]["listen"]).rpartition(":")
        self.http = Http(host, int(port), token=None)
        health = str(first[0]["health"][0])  # type: ignore[index]
        host, _, port = health.rpartition(":")
        self.health = Http(host, int(port), token=None)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(15)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("externaldns")
    port = free_port()
    backends = {a: start_backend(a, port) for a in ("127.32.1.1", "127.32.1.2", "127.32.2.1")}
    zones = write_zones(base / "zones", {"k8s.yaml": ZONE_FILE.replace("PORT", str(port))})
    server = ServerProcess(zones, base / "data")
    until(lambda: server.events("redis synced"))
    host, http_port = server.http[0]
    token = (base / "data" / "api-token").read_text().strip()
    webhook = Webhook(f"http://{host}:{http_port}", token)
    yield {
        "server": server,
        "webhook": webhook,
        "backends": backends,
        "api": Http(host, http_port, token),
    }
    assert webhook.stop() == 0
    for proc in backends.values():
        proc.terminate()
        proc.wait()
    assert server.stop() == 0


ACCEPT = {"Accept": MEDIA_TYPE}

# What external-dns's service source makes of a Service `shop` in cluster "east" annotated
#   external-dns.alpha.kubernetes.io/hostname: shop.k8s.example.com
#   external-dns.alpha.kubernetes.io/set-identifier: east
#   external-dns.alpha.kubernetes.io/webhook-gslb-policy: "health, round_robin, limit"
#   external-dns.alpha.kubernetes.io/webhook-gslb-monitor: web
# with two load-balancer addresses, and the same Service in cluster "west".
EAST = {
    "dnsName": "shop.k8s.example.com",
    "targets": ["127.32.1.2", "127.32.1.1"],
    "recordType": "A",
    "setIdentifier": "east",
    "recordTTL": 20,
    "labels": {"resource": "service/shop/shop"},
    "providerSpecific": [
        {"name": "webhook/gslb-policy", "value": "health, round_robin, limit"},
        {"name": "webhook/gslb-monitor", "value": "web"},
        {"name": "alias", "value": "false"},
    ],
}
WEST = {**EAST, "targets": ["127.32.2.1"], "setIdentifier": "west"}
# Its TXT registry's ownership records (the "a-" form external-dns writes beside each).
REGISTRY = (
    "heritage=external-dns,external-dns/owner={owner},external-dns/resource=service/shop/shop"
)


def ownership(owner: str) -> dict[str, object]:
    return {
        "dnsName": "a-shop.k8s.example.com",
        "targets": [f'"{REGISTRY.format(owner=owner)}"'],
        "recordType": "TXT",
        "setIdentifier": owner,
        "labels": {},
    }


# A plain CNAME from an Ingress, external-dns's way: no trailing dot.
DOCS = {
    "dnsName": "docs.k8s.example.com",
    "targets": ["shop.k8s.example.com"],
    "recordType": "CNAME",
}


def key(e: dict[str, object]) -> tuple[object, object, object]:
    return (e["dnsName"], e["recordType"], e.get("setIdentifier", ""))


def plan(current: list[dict[str, object]], desired: list[dict[str, object]]) -> list[str]:
    """What external-dns's planner would change: endpoints whose targets, TTL (when set) or
    provider-specific properties differ, or that are missing."""
    have = {key(e): e for e in current}
    out = []
    for want in desired:
        got = have.get(key(want))
        if got is None:
            out.append(f"create {key(want)}")
            continue
        if sorted(got["targets"]) != sorted(want["targets"]):  # type: ignore[arg-type]
            out.append(f"update targets {key(want)}")
        if want.get("recordTTL") and got.get("recordTTL") != want["recordTTL"]:
            out.append(f"update ttl {key(want)}")
        if (got.get("providerSpecific") or []) != (want.get("providerSpecific") or []):
            out.append(f"update properties {key(want)}")
    return out


def answers(server: ServerProcess, name: str, rdtype: str = "A") -> set[str]:
    q = dns.message.make_query(name, rdtype)
    reply = dns.query.udp(q, server.host, port=server.port, timeout=2)
    return {
        rd.to_text()
        for rr in reply.answer
        if rr.rdtype == dns.rdatatype.from_text(rdtype)
        for rd in rr
    }


def test_negotiation_answers_with_the_media_type_and_the_zones(world: dict[str, object]) -> None:
    webhook: Webhook = world["webhook"]  # type: ignore[assignment]
    reply = webhook.http("GET", "/", headers=ACCEPT)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == MEDIA_TYPE
    assert reply.headers["Vary"] == "Content-Type"
    assert reply.json == {"include": [ZONE]}
    assert webhook.http("GET", "/", headers={"Accept": "text/html"}).status == 406
    assert webhook.health("GET", "/healthz").status == 200


def test_two_clusters_publish_into_one_pool_and_a_second_look_plans_nothing(
    world: dict[str, object],
) -> None:
    webhook: Webhook = world["webhook"]  # type: ignore[assignment]
    server: ServerProcess = world["server"]  # type: ignore[assignment]
    before = webhook.http("GET", "/records", headers=ACCEPT)
    assert before.status == 200 and before.headers["Content-Type"] == MEDIA_TYPE
    assert {
        "dnsName": ZONE,
        "targets": ["ns1.k8s.example.com"],
        "recordType": "NS",
        "recordTTL": 300,
    } in before.json

    desired_raw = [EAST, DOCS]
    adjusted = webhook.http("POST", "/adjustendpoints", desired_raw, headers=ACCEPT)
    assert adjusted.status == 200, adjusted.body
    desired = adjusted.json
    east = desired[0]
    assert east["targets"] == ["127.32.1.1", "127.32.1.2"]
    assert east["labels"] == EAST["labels"], "labels are the registry's: passed through"
    assert east["providerSpecific"] == [{"name": "webhook/gslb-monitor", "value": "web"}], (
        "the default policy and the properties of other providers are left out"
    )
    assert plan(before.json, desired) == [
        f"create {key(EAST)}",
        f"create {key(DOCS)}",
    ]

    # external-dns in cluster east applies its plan, with its ownership record ...
    changes = {"Create": [*desired, ownership("east")]}
    applied = webhook.http("POST", "/records", changes, headers=ACCEPT)
    assert applied.status == 204, applied.body
    # ... and cluster west its own (newer external-dns spells the keys in lower case).
    west = webhook.http("POST", "/adjustendpoints", [WEST], headers=ACCEPT).json
    applied = webhook.http(
        "POST", "/records", {"create": [*west, ownership("west")]}, headers=ACCEPT
    )
    assert applied.status == 204, applied.body

    current = webhook.http("GET", "/records", headers=ACCEPT).json
    assert plan(current, [*desired, *west]) == [], "nothing left to do"
    owners = sorted(
        (e["setIdentifier"], e["targets"])
        for e in current
        if e["dnsName"] == "a-shop.k8s.example.com"
    )
    assert owners == [
        ("east", [f'"{REGISTRY.format(owner="east")}"']),
        ("west", [f'"{REGISTRY.format(owner="west")}"']),
    ], "each cluster's ownership record reads back as its own"

    # One pool, its members at the clusters' sites, answering over the wire.
    until(
        lambda: (
            answers(server, "shop.k8s.example.com") == {"127.32.1.1", "127.32.1.2", "127.32.2.1"}
        )
    )
    assert answers(server, "docs.k8s.example.com", "CNAME") == {"shop.k8s.example.com."}
    api: Http = world["api"]  # type: ignore[assignment]
    pool = api("GET", f"/api/v1/zones/{ZONE}/pools/shop-a").json
    assert pool["monitor"] == "web" and pool["ttl"] == 20
    assert sorted((m["address"], m["site"]) for m in pool["members"]) == [
        ("127.32.1.1", "east"),
        ("127.32.1.2", "east"),
        ("127.32.2.1", "west"),
    ]


def test_health_follows_the_checkers_and_updates_and_deletes_land(
    world: dict[str, object],
) -> None:
    webhook: Webhook = world["webhook"]  # type: ignore[assignment]
    server: ServerProcess = world["server"]  # type: ignore[assignment]
    backends: dict[str, subprocess.Popen[str]] = world["backends"]  # type: ignore[assignment]
    until(lambda: len(answers(server, "shop.k8s.example.com")) == 3)
    backends["127.32.2.1"].terminate()
    until(lambda: answers(server, "shop.k8s.example.com") == {"127.32.1.1", "127.32.1.2"})

    # Cluster east scales down to one address; cluster west's Service goes away.
    current = webhook.http("GET", "/records", headers=ACCEPT).json
    old_east = next(e for e in current if key(e) == ("shop.k8s.example.com", "A", "east"))
    old_west = next(e for e in current if key(e) == ("shop.k8s.example.com", "A", "west"))
    new_east = webhook.http(
        "POST", "/adjustendpoints", [{**EAST, "targets": ["127.32.1.1"]}], headers=ACCEPT
    ).json[0]
    changes = {
        "UpdateOld": [old_east],
        "UpdateNew": [new_east],
        "Delete": [old_west, ownership("west")],
    }
    assert webhook.http("POST", "/records", changes, headers=ACCEPT).status == 204
    until(lambda: answers(server, "shop.k8s.example.com") == {"127.32.1.1"})
    current = webhook.http("GET", "/records", headers=ACCEPT).json
    assert ("shop.k8s.example.com", "A", "west") not in {key(e) for e in current}
    assert [e["setIdentifier"] for e in current if e["dnsName"] == "a-shop.k8s.example.com"] == [
        "east"
    ]
    assert plan(current, [new_east]) == []


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({**EAST, "targets": ["not-an-address"]}, "'not-an-address' is not an address"),
        ({**EAST, "recordType": "AAAA"}, "is not an AAAA address"),
        (
            {
                **EAST,
                "providerSpecific": [{"name": "webhook/gslb-policy", "value": "health,fastestt"}],
            },
            "unknown policy step 'fastestt'",
        ),
        ({**DOCS, "recordType": "NAPTR"}, "record type not kept"),
        ({**DOCS, "dnsName": "docs.elsewhere.example.org"}, "not in k8s.example.com"),
    ],
)
def test_an_endpoint_it_cannot_keep_is_refused_with_the_reason_and_changes_nothing(
    world: dict[str, object], endpoint: dict[str, object], message: str
) -> None:
    webhook: Webhook = world["webhook"]  # type: ignore[assignment]
    api: Http = world["api"]  # type: ignore[assignment]
    before = api("GET", f"/api/v1/zones/{ZONE}")
    reply = webhook.http("POST", "/records", {"Create": [endpoint]}, headers=ACCEPT)
    assert reply.status == 422, reply.body
    assert message in reply.json["message"]
    assert api("GET", f"/api/v1/zones/{ZONE}").headers["ETag"] == before.headers["ETag"]


def test_a_change_the_server_refuses_is_422_with_its_reason(world: dict[str, object]) -> None:
    webhook: Webhook = world["webhook"]  # type: ignore[assignment]
    unknown = {
        **EAST,
        "dnsName": "cart.k8s.example.com",
        "providerSpecific": [{"name": "webhook/gslb-monitor", "value": "nope"}],
    }
    reply = webhook.http("POST", "/records", {"Create": [unknown]}, headers=ACCEPT)
    assert reply.status == 422
    assert "unknown monitor 'nope'" in reply.json["message"]


def test_a_body_over_the_limit_is_refused_naming_it(world: dict[str, object]) -> None:
    webhook: Webhook = world["webhook"]  # type: ignore[assignment]
    huge = b'{"Create": [' + b" " * (9 * 1024 * 1024) + b"]}"
    reply = webhook.http("POST", "/records", raw=huge, headers=ACCEPT)
    assert reply.status == 413
    assert b"8388608" in reply.body, reply.body
