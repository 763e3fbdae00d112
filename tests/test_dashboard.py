"""The dashboard end to end (issue 6, "Done when"): Debian's Chromium, driven by Playwright,
against a running `gslb serve` with real backends and its health checker.

Screenshots of each view go to test-output/ at the top of the repository.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.query
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.helpers import query, start_backend, write_zones
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import until

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
CHROMIUM = "/usr/bin/chromium"
PORT = 18090
INTERVAL, FALL = 1, 2
MEMBERS = ["127.10.6.10", "127.10.7.10", "127.10.6.20"]
ZONE = f"""\
zone: dash.example
soa: {{mname: ns1, rname: hostmaster.dash.example.}}
dnssec: {{algorithm: ED25519}}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
isps:
  isp-a: [127.10.6.0/24]
  isp-b: [127.10.7.0/24]
sites:
  lon: {{lat: 51.5, lon: -0.13}}
monitors:
  web: {{type: http, port: {PORT}, path: /healthz, interval: {INTERVAL}, timeout: 0.5, rise: 1, fall: {FALL}}}
pools:
  www:
    policy: [health, isp_interleave, limit]
    monitor: web
    members:
      - {{address: 127.10.6.10, site: lon, weight: 2}}
      - {{address: 127.10.7.10, site: lon}}
      - {{address: 127.10.6.20}}
  www-v6:
    name: www
    type: AAAA
    members:
      - {{address: "2001:db8:a::10", site: lon}}
"""


HEALTH_COLOURS = {"#1a7f37", "#cf222e", "#9a6700", "#6e7781", "#57606a"}


def key(address: str) -> str:
    return f"dash.example/www/{address}"


class Bed:
    def __init__(self, base: Path) -> None:
        self.backends = {a: self._backend(a) for a in MEMBERS}
        self.zones = write_zones(base / "zones", {"z.yaml": ZONE})
        self.server = ServerProcess(self.zones, base / "data")
        self.token = (base / "data" / "api-token").read_text().strip()
        host, port = self.server.http[0]
        self.url = f"http://{host}:{port}/"

    @staticmethod
    def _backend(address: str) -> subprocess.Popen[str]:
        return start_backend(address, PORT)

    def answers(self) -> set[str]:
        reply = dns.query.udp(
            query("www.dash.example"), self.server.host, port=self.server.port, timeout=2
        )
        return {rr.to_text() for rrset in reply.answer for rr in rrset}

    def stop(self) -> None:
        self.server.stop()
        for proc in self.backends.values():
            stop_process(proc)


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    b = Bed(tmp_path)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        browser.close()
        assert not errors, errors  # no script error in the page, ever


def sign_in(page: Page, bed: Bed) -> None:
    page.goto(bed.url)
    page.wait_for_selector("#token", state="visible")
    page.fill("#token", "not-the-token-0123456789")
    page.keyboard.press("Enter")  # usable by keyboard
    page.wait_for_selector("#login-error:has-text('Unknown token')")
    page.fill("#token", bed.token)
    page.keyboard.press("Enter")
    page.wait_for_selector("#login", state="hidden")


def test_the_dashboard_follows_health_and_drains_a_member(bed: Bed, page: Page) -> None:
    OUTPUT.mkdir(exist_ok=True)
    sign_in(page, bed)

    # Overview: the pool with every member up, the node and the checker alive.
    for address in MEMBERS:
        page.wait_for_selector(
            f'.chip[data-member="{key(address)}"][data-health="up"]', timeout=15000
        )
    card = page.locator('.card[data-pool="dash.example/www"]')
    assert "3 up" in card.inner_text() and "alarm" not in (card.get_attribute("class") or "")
    # A pool is titled by the name it answers, not by its key (www-v6.dash.example is NXDOMAIN).
    v6 = page.locator('.card[data-pool="dash.example/www-v6"] h3').inner_text()
    assert v6 == "www.dash.example AAAA (pool www-v6)", v6
    # A pool without a monitor has nothing checking it: "not monitored", not a green "up".
    page.wait_for_selector(
        '.chip[data-member="dash.example/www-v6/2001:db8:a::10"][data-health="unmonitored"]'
    )
    assert "1 not monitored" in page.locator('.card[data-pool="dash.example/www-v6"]').inner_text()
    page.wait_for_selector("#nodes tbody tr td:has-text('alive')")
    page.wait_for_selector("#checkers tbody tr td:has-text('alive')")
    # The zone is signed: its key, and a rollover once one is started.
    signed = page.locator('#dnssec p[data-zone="dash.example"]')
    signed.wait_for()
    assert "DNSSEC ED25519, key " in signed.inner_text() and "rollover" not in signed.inner_text()
    import urllib.request

    roll = urllib.request.Request(
        bed.url + "api/v1/zones/dash.example/dnssec/roll",
        method="POST",
        headers={"Authorization": f"Bearer {bed.token}"},
    )
    with urllib.request.urlopen(roll, timeout=10) as response:
        assert response.status == 200
    page.wait_for_selector('#dnssec p[data-zone="dash.example"]:has-text("rollover in progress")')
    page.screenshot(path=str(OUTPUT / "dashboard-overview.png"), full_page=True)

    # Pool view: members with site, ISP and health; the checker-by-path matrix.
    page.click("text=www.dash.example")
    row = page.locator(f'#members tr[data-member="{key("127.10.7.10")}"]')
    row.wait_for()
    assert row.locator("td").nth(2).inner_text() == "isp-b"
    page.wait_for_selector(f'#matrix tr[data-member="{key("127.10.6.10")}"] td.health-up')
    # A few RTT samples, and a finished 10 s bucket of answers, in the plots.
    until(lambda: page.evaluate("window.gslbPlots['plot-rtt'].data[0].length") >= 3)
    for _ in range(12):
        bed.answers()
    page.wait_for_function(
        "() => window.gslbPlots['plot-answers'] && window.gslbPlots['plot-answers'].data[0].length >= 1",
        timeout=25000,
    )
    page.screenshot(path=str(OUTPUT / "dashboard-pool.png"), full_page=True)
    # The plots (uPlot) say what they show: a time axis, a y axis from zero with its unit, no
    # line in a health colour, and no bucket that is still filling.
    for plot, unit in (("plot-rtt", "ms"), ("plot-answers", "answers / 10 s")):
        facts = page.evaluate(
            f"""() => {{ const u = window.gslbPlots['{plot}'];
                return {{time: u.scales.x.time, ymin: u.scales.y.min, unit: u.axes[1].label,
                         colours: u.gslbColours, canvas: !!u.root.querySelector('canvas')}}; }}"""
        )
        assert facts["time"] is True and facts["ymin"] == 0 and facts["unit"] == unit, facts
        assert facts["canvas"], "drawn by uPlot"
        assert facts["colours"] and not set(facts["colours"]) & HEALTH_COLOURS, facts
    last = page.evaluate("Math.max(...window.gslbPlots['plot-answers'].data[0])")
    assert last + 10 <= time.time() + 1, "the last bucket plotted is a finished one"

    # A member's server stops: the row turns down without a reload, within interval x fall + 2 s.
    stopped = time.monotonic()
    stop_process(bed.backends.pop("127.10.6.20"))
    page.wait_for_selector(
        f'#members tr[data-member="{key("127.10.6.20")}"][data-health="down"]',
        timeout=(INTERVAL * FALL + 2) * 1000,
    )
    took = time.monotonic() - stopped
    assert took <= INTERVAL * FALL + 2, took

    # Drain from the page, with a confirmation; the member leaves the DNS answers.
    assert "127.10.6.10" in bed.answers()
    page.click(f'#members tr[data-member="{key("127.10.6.10")}"] button.drain')
    page.wait_for_selector("#confirm[open]")
    assert "127.10.6.10" in page.inner_text("#confirm-text")
    page.click("#confirm-yes")
    until(lambda: "127.10.6.10" not in bed.answers())
    page.wait_for_selector(f'#members tr[data-member="{key("127.10.6.10")}"][data-admin="drained"]')
    assert bed.answers() == {"127.10.7.10"}
    page.screenshot(path=str(OUTPUT / "dashboard-pool-drained.png"), full_page=True)

    # Sites: each site with its members' health and its share of the answers, by region.
    page.click("#nav-sites")
    row = page.locator('#sites tr[data-site="dash.example/lon"]')
    row.wait_for()
    assert "127.10.7.10" in row.inner_text() and "%" in row.inner_text()
    assert (
        page.locator('#sites tr[data-site="dash.example/"]')
        .inner_text()
        .startswith("(members without a site)")
    )
    # The answers handed out so far (counted in 10 s buckets) add up to all of them.
    page.wait_for_function(
        "() => Math.abs([...document.querySelectorAll('#sites td.share')]"
        ".reduce((sum, c) => sum + Number(c.dataset.share), 0) - 100) < 0.5",
        timeout=25000,
    )
    page.screenshot(path=str(OUTPUT / "dashboard-sites.png"), full_page=True)

    # Events: the health change and the drain, with who did it, when (date, time and zone)
    # and what changed.
    page.click("#nav-events")
    page.wait_for_selector("#events li:has-text('127.10.6.20 is down')")
    drain = page.locator("#events li:has-text('api:local-admin: drain')").first
    drain.wait_for()
    stamp = drain.locator("time").inner_text()
    assert re.search(r"20\d\d", stamp) and re.search(r"\d:\d\d:\d\d", stamp), stamp
    assert re.search(r"(UTC|GMT|[A-Z]{3,4})", stamp), stamp
    drain.locator("details summary").click()
    change = drain.locator("details").inner_text()
    assert 'state: "drained"' in change, change  # the member's admin state was added
    assert "127.10.6.10" in drain.inner_text()  # the resource: the member

    # A broken zone file on reload: refused whole, said on the overview and in events, and
    # gone once the file loads again.
    zone_file = bed.zones / "z.yaml"
    good = zone_file.read_text()
    zone_file.write_text(good + "  broken: [\n")
    bed.server.signal(signal.SIGHUP)
    page.click("#nav-overview")
    page.wait_for_selector("#refusals .refusal:has-text('z.yaml')", timeout=10000)
    page.screenshot(path=str(OUTPUT / "dashboard-refused.png"), full_page=True)
    page.click("#nav-events")
    page.wait_for_selector("#events li.refused-event:has-text('z.yaml')")
    zone_file.write_text(good)
    bed.server.signal(signal.SIGHUP)
    page.click("#nav-overview")
    page.wait_for_selector("#refusals .refusal", state="detached", timeout=10000)
    page.click("#nav-events")
    page.screenshot(path=str(OUTPUT / "dashboard-events.png"), full_page=True)

    # 420 px wide: nothing wider than the screen; tables scroll in their own box.
    page.set_viewport_size({"width": 420, "height": 860})
    for view in ("overview", "pool/dash.example/www", "sites", "events"):
        page.goto(bed.url + "#/" + view)
        page.wait_for_selector(f"#view-{view.split('/')[0]}:not([hidden])")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, (view, width)
    page.goto(bed.url + "#/overview")
    page.wait_for_selector('.card[data-pool="dash.example/www"]')
    page.screenshot(path=str(OUTPUT / "dashboard-420px.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 860})

    # Explain: what a client gets, step by step.
    page.click("#nav-explain")
    page.fill("#explain-client", "127.0.0.1")
    page.fill("#explain-name", "www.dash.example")
    page.click("#explain-form button[type=submit]")
    page.wait_for_selector("#explain-answer")
    assert "127.10.7.10" in page.inner_text("#explain-answer")
    assert "health" in page.inner_text("#explain-result")
    page.screenshot(path=str(OUTPUT / "dashboard-explain.png"), full_page=True)

    # The server goes away: a banner says so, without a reload.
    bed.server.stop()
    page.wait_for_selector("#banner:has-text('Connection to the gslb server lost')", timeout=10000)


def test_the_dashboard_is_served_with_a_strict_policy(bed: Bed) -> None:
    import urllib.request

    with urllib.request.urlopen(bed.url, timeout=5) as response:
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        page = response.read().decode()
    assert '<script src="/static/app.js"' in page
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
    with urllib.request.urlopen(bed.url + "static/app.js", timeout=5) as response:
        script = response.read().decode()
    assert "https://" not in script and "document.cookie" not in script  # the token: a header


def test_a_banner_says_when_the_server_loses_redis(tmp_path: Path, page: Page) -> None:
    from tests.test_redis_state import RedisServer, free_port

    backing = RedisServer(tmp_path, free_port())
    backing.start()
    url = f"redis://127.0.0.1:{backing.port}/0"
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    server = ServerProcess(
        zones, tmp_path / "data", "--redis", url, "--no-checker", "--api-read-open"
    )
    try:
        host, port = server.http[0]
        page.goto(f"http://{host}:{port}/")  # reading is open: no sign-in
        page.wait_for_selector('.card[data-pool="dash.example/www"]')
        assert page.locator("#banner").is_hidden()
        backing.kill()
        page.wait_for_selector("#banner:has-text('lost its connection to Redis')", timeout=10000)
        page.screenshot(path=str(OUTPUT / "dashboard-redis-lost.png"), full_page=True)
        backing.start()
        page.wait_for_selector("#banner", state="hidden", timeout=15000)
    finally:
        server.stop()
        backing.kill()
