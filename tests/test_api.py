"""The REST API over real HTTP, on Debian's redis-server, with two DNS nodes following it
(issue 5, "Done when"): create a pool and see it answered, drain a member and see it leave,
bad documents refused with the field path and nothing changed, conflicting writes 409,
writes without a token refused, the audit log, the event stream, and zone files round-trip."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.query
import pytest

from tests.api_client import Http
from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_redis_state import RedisServer, free_port, until

WRITER = "writer-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
ZONE = "api.example.com"

DOCUMENT = {
    "zone": ZONE,
    "soa": {"mname": "ns1", "rname": "hostmaster.example.com."},
    "records": "@ NS ns1\nns1 A 192.0.2.53\n",
    "isps": {"isp-a": ["192.0.2.0/24"], "isp-b": ["198.51.100.0/24"]},
}
POOL = {
    "ttl": 10,
    "policy": ["health", "isp_interleave", "limit"],
    "members": [
        {"address": "192.0.2.10"},
        {"address": "198.51.100.10"},
        {"address": "192.0.2.20"},
    ],
}


def tokens_file(directory: Path) -> Path:
    path = directory / "tokens.yaml"
    path.write_text(
        json.dumps(
            [
                {"name": "alice", "role": "write", "token": WRITER},
                {"name": "robot", "role": "read", "token": READER},
            ]
        )
    )
    return path


def answers(node: ServerProcess, name: str = f"www.{ZONE}") -> set[str]:
    reply = dns.query.udp(query(name), node.host, port=node.port, timeout=2)
    return {rr.to_text() for rrset in reply.answer for rr in rrset}


class Cluster:
    def __init__(self, base: Path) -> None:
        self.redis = RedisServer(base, free_port())
        self.redis.start()
        url = f"redis://127.0.0.1:{self.redis.port}/0"
        tokens = str(tokens_file(base))
        self.api = ServerProcess(
            None, base / "api-data", "--redis", url, "--api-tokens", tokens, dns=(), role="api"
        )
        self.nodes = [ServerProcess(None, None, "--redis", url, role="dns") for _ in range(2)]
        host, port = self.api.http[0]
        self.http = Http(host, port, WRITER)

    def stop(self) -> None:
        for process in (self.api, *self.nodes):
            process.stop()
        self.redis.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("api"))
    try:
        reply = c.http("PUT", f"/api/v1/zones/{ZONE}", DOCUMENT)
        assert reply.status == 201, reply.body
        yield c
    finally:
        c.stop()


def seconds_until_every_node(cluster: Cluster, check: object, timeout: float = 3) -> float:
    return until(lambda: all(check(node) for node in cluster.nodes), timeout)  # type: ignore[operator]


def test_a_new_pool_is_answered_by_every_node_within_a_second(cluster: Cluster) -> None:
    started = time.monotonic()
    reply = cluster.http("PUT", f"/api/v1/zones/{ZONE}/pools/www", POOL)
    assert reply.status == 201, reply.body
    assert reply.headers["ETag"]
    want = {"192.0.2.10", "198.51.100.10", "192.0.2.20"}
    seconds_until_every_node(cluster, lambda n: answers(n) == want)
    assert time.monotonic() - started < 1.0
    # Applying the same document again is no change: same ETag, no new audit record.
    again = cluster.http("PUT", f"/api/v1/zones/{ZONE}/pools/www", POOL)
    assert again.status == 200 and again.headers["ETag"] == reply.headers["ETag"]
    audit = cluster.http("GET", f"/api/v1/audit?zone={ZONE}").json["records"]
    assert [r["resource"] for r in audit].count(f"zones/{ZONE}/pools/www") == 1


def test_a_drained_member_leaves_the_answers_of_every_node(cluster: Cluster) -> None:
    cluster.http("PUT", f"/api/v1/zones/{ZONE}/pools/www", POOL)
    base = f"/api/v1/zones/{ZONE}/pools/www/members/192.0.2.10"
    started = time.monotonic()
    reply = cluster.http("POST", base + "/drain")
    assert reply.status == 200 and reply.json["state"] == "drained"
    seconds_until_every_node(cluster, lambda n: "192.0.2.10" not in answers(n))
    assert time.monotonic() - started < 1.0
    assert cluster.http("GET", base).json["state"] == "drained"
    assert cluster.http("POST", base + "/enable").status == 200
    seconds_until_every_node(cluster, lambda n: "192.0.2.10" in answers(n))
    assert "state" not in cluster.http("GET", base).json  # enabled is the default


def test_members_are_added_changed_and_removed(cluster: Cluster) -> None:
    cluster.http("PUT", f"/api/v1/zones/{ZONE}/pools/www", POOL)
    members = f"/api/v1/zones/{ZONE}/pools/www/members"
    added = cluster.http("POST", members, {"address": "198.51.100.20", "weight": 3})
    assert added.status == 201, added.body
    assert cluster.http("POST", members, {"address": "198.51.100.20"}).status == 409
    patched = cluster.http("PATCH", members + "/198.51.100.20", {"weight": 5, "priority": 2})
    assert patched.json == {"address": "198.51.100.20", "weight": 5, "priority": 2}
    seconds_until_every_node(cluster, lambda n: "198.51.100.20" in answers(n))
    assert cluster.http("DELETE", members + "/198.51.100.20").status == 204
    assert cluster.http("GET", members + "/198.51.100.20").status == 404
    seconds_until_every_node(cluster, lambda n: "198.51.100.20" not in answers(n))


def test_writes_need_a_write_token(cluster: Cluster) -> None:
    path = f"/api/v1/zones/{ZONE}/pools/www/members/192.0.2.10/drain"
    nobody = cluster.http("POST", path, token=None)
    assert nobody.status == 401 and nobody.headers["WWW-Authenticate"].startswith("Bearer")
    assert cluster.http("POST", path, token="wrong-token-0123456789").status == 401
    reader = cluster.http("POST", path, token=READER)
    assert reader.status == 403 and "read" in reader.json["message"]
    assert cluster.http("GET", f"/api/v1/zones/{ZONE}", token=None).status == 401
    assert cluster.http("GET", f"/api/v1/zones/{ZONE}", token=READER).status == 200
    member = cluster.http("GET", path.removesuffix("/drain"), token=READER).json
    assert member.get("state") != "drained"


# 400: the request breaks the published schema; 422: it matches the schema and is refused
# for what a schema cannot say (docs/api.md, "Errors").
@pytest.mark.parametrize(
    ("path", "body", "status", "field", "message"),
    [
        (
            "/pools/bad",
            {"members": [{"address": "192.0.2.1"}, {"address": "not-an-ip"}]},
            422,
            "pools.bad.members[1].address",
            "not an IP address",
        ),
        ("/pools/bad", {"members": []}, 400, "pools.bad.members", "at least 1"),
        (
            "/pools/bad",
            {"monitor": "nope", "members": [{"address": "192.0.2.1"}]},
            422,
            "pools.bad.monitor",
            "unknown monitor 'nope'",
        ),
        (
            "/pools/bad",
            {"type": "AAAA", "members": [{"address": "192.0.2.1"}]},
            422,
            "pools.bad.members[0].address",
            "not an IPv6 address",
        ),
        ("/sites/lon", {"lat": 123, "lon": 0}, 400, "sites.lon.lat", "less than or equal to 90"),
        ("/sites/half", {"lat": 12}, 422, "sites.half", "give both lat and lon, or neither"),
        (
            "/pools/bad",
            {"topology": [{"match": {}, "prefer": ["par"]}], "members": [{"address": "192.0.2.1"}]},
            422,
            "pools.bad.topology[0].prefer[0]",
            "unknown site 'par'",
        ),
        ("/isps/isp-c", ["10.0.0.1/8"], 422, "isps.isp-c[0]", "host bits set"),
        ("", {**DOCUMENT, "records": "@ NS ns1\nns1 A 192.0.2.530\n"}, 422, "records", "line 2"),
        (  # 90 octets that would make four billion names: refused before making any
            "",
            {**DOCUMENT, "records": "@ NS ns1\n$GENERATE 1-4294967295 h$ A 10.0.0.1\n"},
            422,
            "records",
            "line 2: $GENERATE 1-4294967295 makes 4294967295 names; the limit is 65536",
        ),
        ("", {**DOCUMENT, "zone": "other.example.com"}, 422, "zone", "the URL"),
        ("", {**DOCUMENT, "surprise": 1}, 400, "surprise", "Extra inputs"),
        ("", {**DOCUMENT, "ttl": "soon"}, 400, "ttl", "valid integer"),
    ],
)
def test_a_bad_document_is_refused_with_the_field_path_and_changes_nothing(
    cluster: Cluster, path: str, body: object, status: int, field: str, message: str
) -> None:
    before = cluster.http("GET", f"/api/v1/zones/{ZONE}")
    audit_before = cluster.http("GET", "/api/v1/audit?limit=10000").json["records"]
    reply = cluster.http("PUT", f"/api/v1/zones/{ZONE}{path}", body)
    assert reply.status == status, reply.body
    error = reply.json
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert message in error["message"]
    after = cluster.http("GET", f"/api/v1/zones/{ZONE}")
    assert after.headers["ETag"] == before.headers["ETag"]
    assert cluster.http("GET", "/api/v1/audit?limit=10000").json["records"] == audit_before


def test_a_site_named_only_by_a_pools_own_rules_cannot_be_removed(cluster: Cluster) -> None:
    site = f"/api/v1/zones/{ZONE}/sites/spare"
    assert cluster.http("PUT", site, {}).status in (200, 201), "a site without coordinates"
    ruled = {
        "topology": [{"match": {"subdivision": ["US-CA"]}, "prefer": ["spare"], "others": "drop"}],
        "members": [{"address": "192.0.2.77"}],
    }
    pool = f"/api/v1/zones/{ZONE}/pools/ruled"
    assert cluster.http("PUT", pool, ruled).status in (200, 201)
    refused = cluster.http("DELETE", site)
    assert refused.status == 422, refused.body
    assert refused.json["field"] == "pools.ruled.topology[0].prefer[0]"
    assert cluster.http("DELETE", pool).status in (200, 204)
    assert cluster.http("DELETE", site).status in (200, 204)


def test_malformed_requests_get_json_errors(cluster: Cluster) -> None:
    pool = f"/api/v1/zones/{ZONE}/pools/www"
    not_json = cluster.http("PUT", pool, raw=b"{nope")
    assert not_json.status == 400 and not_json.json["field"] == "body"
    text = cluster.http("PUT", pool, raw=b"x", headers={"Content-Type": "text/plain"})
    assert text.status == 415
    huge = cluster.http("PUT", pool, raw=b"[" + b"1," * 700_000 + b"1]")
    assert huge.status == 413 and huge.json["status"] == 413
    assert cluster.http("GET", "/api/v1/zones/nowhere.example").status == 404
    assert cluster.http("GET", f"/api/v1/zones/{ZONE}/pools/nothing").json["field"] == (
        "pools.nothing"
    )
    wrong_method = cluster.http("PATCH", f"/api/v1/zones/{ZONE}/export", {})
    assert wrong_method.status == 405 and "GET" in wrong_method.headers["Allow"]


def test_a_write_against_a_stale_etag_gets_409(cluster: Cluster) -> None:
    pool = f"/api/v1/zones/{ZONE}/pools/www"
    cluster.http("PUT", pool, POOL)
    tag = cluster.http("GET", pool).headers["ETag"]
    first = cluster.http("PATCH", pool, {"ttl": 11}, headers={"If-Match": tag})
    assert first.status == 200
    stale = cluster.http("PATCH", pool, {"ttl": 12}, headers={"If-Match": tag})
    assert stale.status == 409 and first.headers["ETag"] in stale.json["message"]
    assert cluster.http("GET", pool).json["ttl"] == 11
    exists = cluster.http("PUT", pool, POOL, headers={"If-None-Match": "*"})
    assert exists.status == 409


def test_concurrent_conflicting_writes_one_wins_the_other_gets_409(cluster: Cluster) -> None:
    pool = f"/api/v1/zones/{ZONE}/pools/www"
    cluster.http("PUT", pool, POOL)
    for round_ in range(3):
        tag = cluster.http("GET", pool).headers["ETag"]
        statuses: list[int] = []
        go = threading.Barrier(8)

        def write(
            ttl: int, tag: str = tag, go: threading.Barrier = go, statuses: list[int] = statuses
        ) -> None:
            go.wait()
            reply = cluster.http("PATCH", pool, {"ttl": ttl}, headers={"If-Match": tag})
            statuses.append(reply.status)

        # Every writer changes something (a write that changes nothing is no conflict).
        threads = [threading.Thread(target=write, args=(100 * round_ + i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200] + [409] * 7


def test_concurrent_edits_of_different_members_all_land(cluster: Cluster) -> None:
    pool = f"/api/v1/zones/{ZONE}/pools/www"
    cluster.http("PUT", pool, POOL)
    addresses = [f"192.0.2.{100 + i}" for i in range(8)]
    go = threading.Barrier(len(addresses))

    def add(address: str) -> None:
        go.wait()
        assert cluster.http("POST", pool + "/members", {"address": address}).status == 201

    threads = [threading.Thread(target=add, args=(a,)) for a in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    members = {m["address"] for m in cluster.http("GET", pool + "/members").json["members"]}
    assert set(addresses) <= members


def test_the_audit_log_says_who_changed_what(cluster: Cluster) -> None:
    cluster.http("PUT", f"/api/v1/zones/{ZONE}/pools/www", POOL)
    path = f"/api/v1/zones/{ZONE}/pools/www/members/198.51.100.10"
    cluster.http("POST", path + "/disable")
    cluster.http("POST", path + "/enable")
    records = cluster.http("GET", f"/api/v1/audit?zone={ZONE}&limit=2", token=READER).json
    enable, disable = records["records"]
    assert enable["action"] == "enable" and disable["action"] == "disable"
    assert disable["who"] == "api:alice"
    assert disable["before"] == {"address": "198.51.100.10"}
    assert disable["after"] == {"address": "198.51.100.10", "state": "disabled"}
    assert enable["at"] >= disable["at"] > time.time() - 60
    assert WRITER not in json.dumps(records)
    assert not any(WRITER in json.dumps(line) for line in cluster.api.lines)


def test_the_event_stream_reports_changes(cluster: Cluster) -> None:
    host, port = cluster.api.http[0]
    request = urllib.request.Request(
        f"http://{host}:{port}/api/v1/events", headers={"Authorization": f"Bearer {READER}"}
    )
    with urllib.request.urlopen(request, timeout=10) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.readline() == b"event: hello\n"
        cluster.http("PATCH", f"/api/v1/zones/{ZONE}/pools/www", {"ttl": 15})
        event = None
        for _ in range(50):
            line = stream.readline().decode()
            if line.startswith("event: "):
                event = line.split(": ", 1)[1].strip()
            if line.startswith("data: ") and event == "config":
                data = json.loads(line[6:])
                break
        else:
            raise AssertionError("no config event")
    assert data["zones"] == [ZONE] and data["who"] == "api:alice"
    assert data["resource"] == f"zones/{ZONE}/pools/www"


def test_the_openapi_document_matches_the_running_routes(cluster: Cluster) -> None:
    spec = cluster.http("GET", "/api/v1/openapi.json", token=None).json
    assert spec["openapi"] == "3.1.0"
    for path, item in spec["paths"].items():
        concrete = (
            path.replace("{zone}", ZONE)
            .replace("{pool}", "www")
            .replace("{address}", "192.0.2.10")
            .replace("{monitor}", "m")
            .replace("{site}", "s")
            .replace("{isp}", "i")
        )
        for method in item:
            if concrete.endswith("/events"):
                continue  # a stream: see test_the_event_stream_reports_changes
            # Without a token every documented route answers 401 (or 200 if open), never
            # 404 or 405: the route exists with that method.
            reply = cluster.http(method.upper(), concrete, token=None)
            assert reply.status in (200, 401), (method, path, reply.status)
            assert str(reply.status) in item[method]["responses"]


def test_export_and_apply_round_trip(cluster: Cluster, tmp_path: Path) -> None:
    cluster.http("PUT", f"/api/v1/zones/{ZONE}/pools/www", POOL)
    host, port = cluster.api.http[0]
    token = tmp_path / "token"
    token.write_text(WRITER)
    api = ["--api", f"http://{host}:{port}", "--token-file", str(token)]

    def gslb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gslb", "zones", *args, *api],
            capture_output=True,
            text=True,
            timeout=30,
        )

    first = gslb("export", "--out", str(tmp_path / "one"))
    assert first.returncode == 0, first.stderr
    exported = (tmp_path / "one" / f"{ZONE}.yaml").read_text()
    assert exported.startswith(f"zone: {ZONE}\n")
    assert "records: |\n" in exported
    check = subprocess.run(
        [sys.executable, "-m", "gslb", "check-zones", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stderr
    before = cluster.http("GET", f"/api/v1/zones/{ZONE}").headers["ETag"]
    applied = gslb("apply", str(tmp_path / "one"))
    assert applied.returncode == 0, applied.stderr
    assert cluster.http("GET", f"/api/v1/zones/{ZONE}").headers["ETag"] == before
    second = gslb("export", "--out", str(tmp_path / "two"))
    assert second.returncode == 0
    assert (tmp_path / "two" / f"{ZONE}.yaml").read_text() == exported

    # A changed file applies; a broken one is refused with file:line and sends nothing.
    edited = exported.replace("ttl: 10", "ttl: 9")
    (tmp_path / "one" / f"{ZONE}.yaml").write_text(edited)
    assert gslb("apply", str(tmp_path / "one")).returncode == 0
    assert cluster.http("GET", f"/api/v1/zones/{ZONE}/pools/www").json["ttl"] == 9
    (tmp_path / "one" / f"{ZONE}.yaml").write_text(edited.replace("ttl: 9", "ttl: -1"))
    refused = gslb("apply", str(tmp_path / "one"))
    assert refused.returncode == 1 and f"{ZONE}.yaml:" in refused.stderr
    assert cluster.http("GET", f"/api/v1/zones/{ZONE}/pools/www").json["ttl"] == 9


def test_a_write_while_redis_is_down_gets_503_and_changes_nothing(tmp_path: Path) -> None:
    backing = RedisServer(tmp_path, free_port())
    backing.start()
    url = f"redis://127.0.0.1:{backing.port}/0"
    api = ServerProcess(
        None,
        tmp_path / "data",
        "--redis",
        url,
        "--api-tokens",
        str(tokens_file(tmp_path)),
        dns=(),
        role="api",
    )
    http = Http(*api.http[0], WRITER)
    try:
        assert http("PUT", f"/api/v1/zones/{ZONE}", DOCUMENT).status == 201
        tag = http("GET", f"/api/v1/zones/{ZONE}").headers["ETag"]
        backing.kill()
        down = http("PUT", f"/api/v1/zones/{ZONE}/pools/www", POOL)
        assert down.status == 503 and "nothing was changed" in down.json["message"]
        assert http("GET", f"/api/v1/zones/{ZONE}").status == 503
        backing.start()  # the same append-only file: what was stored before
        # Reconnecting can take a few seconds on a loaded machine; then what was stored is
        # there, unchanged (a 404 here would be lost data, and fails below).
        until(lambda: http("GET", f"/api/v1/zones/{ZONE}").status != 503)
        assert http("GET", f"/api/v1/zones/{ZONE}").status == 200
        assert http("GET", f"/api/v1/zones/{ZONE}").headers["ETag"] == tag
        assert http("GET", f"/api/v1/zones/{ZONE}/pools/www").status == 404
    finally:
        api.stop()
        backing.kill()


def test_zone_files_and_api_edits(tmp_path: Path) -> None:
    """An unchanged file does not undo API edits at restart; a changed file wins."""
    text = (
        f"zone: {ZONE}\nsoa: {{mname: ns1, rname: hostmaster.example.com.}}\n"
        "records: |\n  @ NS ns1\n  ns1 A 192.0.2.53\n"
        "pools:\n  www:\n    members:\n      - {address: 192.0.2.10}\n"
        "      - {address: 192.0.2.20}\n"
    )
    zones = write_zones(tmp_path / "zones", {"z.yaml": text})
    args = ("--no-checker", "--api-tokens", str(tokens_file(tmp_path)))
    server = ServerProcess(zones, tmp_path / "data", *args)
    try:
        until(lambda: server.events("redis synced"))
        http = Http(*server.http[0], WRITER)
        drain = f"/api/v1/zones/{ZONE}/pools/www/members/192.0.2.10/drain"
        assert http("POST", drain).status == 200
        until(lambda: answers(server) == {"192.0.2.20"})
    finally:
        server.stop()
    server = ServerProcess(zones, tmp_path / "data", *args)
    try:
        until(lambda: server.events("redis synced"))
        assert answers(server) == {"192.0.2.20"}  # the file said nothing new
        (zones / "z.yaml").write_text(text.replace("192.0.2.20}", "192.0.2.30}"))
        server.signal(__import__("signal").SIGHUP)
        until(lambda: answers(server) == {"192.0.2.10", "192.0.2.30"})
        warning = server.wait_for_event(
            "zone file changed: it replaces the edits made through the API"
        )[0]
        assert warning["edited_by"] == "api:alice"
    finally:
        server.stop()


def test_a_put_of_null_removes_nothing(cluster: Cluster) -> None:
    """Found by schemathesis: PUT null on an ISP answered 204 and removed it."""
    path = f"/api/v1/zones/{ZONE}/isps/isp-a"
    reply = cluster.http("PUT", path, raw=b"null")
    assert reply.status == 400 and reply.json["field"] == "body"
    assert cluster.http("GET", path).json == ["192.0.2.0/24"]


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        (  # found by the review: accepted, then exported outside the export directory
            "/api/v1/zones/%2Ftmp%2Fx%2Fpwned",
            {"soa": {"mname": "ns1", "rname": "h"}, "records": "@ NS ns1\n"},
            "zone",
            "is not a host name",
        ),
        (  # a TXT of more than 65 535 octets: accepted, then answered SERVFAIL
            f"/api/v1/zones/{ZONE}",
            {
                **DOCUMENT,
                "records": DOCUMENT["records"]
                + "t TXT "
                + " ".join(['"' + "x" * 255 + '"'] * 300)
                + "\n",
            },
            "records",
            "at most 65535",
        ),
        (  # an authority in a monitor's path: the checker fetched another host
            f"/api/v1/zones/{ZONE}/monitors/evil",
            {"type": "http", "port": 80, "path": "@127.0.0.1:9999/x"},
            "monitors.evil.path",
            "an absolute path",
        ),
        (
            f"/api/v1/zones/{ZONE}/monitors/evil",
            {"type": "http", "port": 80, "host": "a\r\nX-Injected: 1"},
            "monitors.evil.host",
            "a host name or address",
        ),
    ],
)
def test_what_the_review_found_accepted_is_refused_naming_the_field(
    cluster: Cluster, path: str, body: object, field: str, message: str
) -> None:
    """Each was accepted (or answered 500) before; each matches the schema, so 422."""
    reply = cluster.http("PUT", path, body)
    assert reply.status == 422, reply.body
    assert reply.json["field"] == field and message in reply.json["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("name=www.api.example.com&client=192.0.2.1&type=NOSUCHTYPE", "type"),
        (f"name={'a' * 64}.api.example.com&client=192.0.2.1", "name"),
        ("name=www.api.example.com&client=not-an-address", "client"),
    ],
)
def test_explain_refuses_what_it_cannot_ask_naming_the_field(
    cluster: Cluster, params: str, field: str
) -> None:
    """They answered 500 before; each is a string the schema allows, so 422."""
    reply = cluster.http("GET", f"/api/v1/explain?{params}")
    assert reply.status == 422, reply.body
    assert reply.json["field"] == field


def test_a_zone_over_another_is_refused_unless_asked_for(cluster: Cluster) -> None:
    """Found by the review: a write token could create www.api.example.com and shadow a
    pool, or `com` above everything."""
    inside = {"soa": {"mname": "ns1", "rname": "h"}, "records": "@ NS ns1\nns1 A 192.0.2.1\n"}
    refused = cluster.http("PUT", f"/api/v1/zones/www.{ZONE}", inside)
    assert refused.status == 409 and "overlap" in refused.json["message"]
    above = cluster.http("PUT", "/api/v1/zones/com", inside)
    assert above.status == 409
    made = cluster.http("PUT", f"/api/v1/zones/deep.www.{ZONE}?overlap=allow", inside)
    assert made.status == 201, made.body
    assert cluster.http("DELETE", f"/api/v1/zones/deep.www.{ZONE}").status == 204


def test_tokens_scoped_to_zones_write_only_those(tmp_path: Path) -> None:
    backing = RedisServer(tmp_path, free_port())
    backing.start()
    scoped = tmp_path / "scoped.yaml"
    scoped.write_text(
        json.dumps(
            [
                {"name": "root", "role": "write", "token": WRITER},
                {
                    "name": "tenant",
                    "role": "write",
                    "token": "tenant-token-0123456789",
                    "zones": ["*.tenant.example"],
                },
            ]
        )
    )
    api = ServerProcess(
        None,
        tmp_path / "data",
        "--redis",
        f"redis://127.0.0.1:{backing.port}/0",
        "--api-tokens",
        str(scoped),
        dns=(),
        role="api",
    )
    try:
        root = Http(*api.http[0], WRITER)
        tenant = Http(*api.http[0], "tenant-token-0123456789")
        document = {"soa": {"mname": "ns1", "rname": "h"}, "records": "@ NS ns1\nns1 A 192.0.2.1\n"}
        assert root("PUT", "/api/v1/zones/other.example", document).status == 201
        assert tenant("PUT", "/api/v1/zones/a.tenant.example", document).status == 201
        denied = tenant("PUT", "/api/v1/zones/other.example", document)
        assert denied.status == 403 and "other.example" in denied.json["message"]
        assert tenant("GET", "/api/v1/zones/other.example").status == 403
        listed = {z["zone"] for z in tenant("GET", "/api/v1/zones").json["zones"]}
        assert listed == {"a.tenant.example"}
        assert {r["zone"] for r in tenant("GET", "/api/v1/audit").json["records"]} == {
            "a.tenant.example"
        }
        # Above another zone: refused even when asked, unless the token may write both.
        assert tenant("PUT", "/api/v1/zones/tenant.example?overlap=allow", document).status == 403
    finally:
        api.stop()
        backing.kill()
