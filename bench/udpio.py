"""The UDP I/O mechanisms, measured before one is chosen (issue 17 §1).

The same trivial DNS server (the reply is the query with QR set, from a dict keyed by the
query's octets after its ID, as gslb's front cache answers) is run four ways, pinned to core
0, with dnsperf on core 1, the same queries and flags as `make bench`:

- Python, one `recvfrom` and one `sendto` per query (what gslb's UDP threads do today);
- Python, `recvmmsg` / `sendmmsg` through ctypes over libc, 64 datagrams per call, the
  per-datagram fields read and written through memoryviews over the ctypes arrays;
- C, one `recvfrom` and one `sendto` per query;
- C, `recvmmsg` / `sendmmsg`, 64 per call (compiled here with the system's cc).

Each runs three times; the median is reported, with the server's CPU use, and written to
docs/performance.md between the bench-udpio markers. Only loopback is used.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchlib import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT / "docs" / "performance.md"
SECONDS, RUNS = 5, 3
DNSPERF = ["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-c", "4", "-q", "200"]

PYTHON_SERVER = """
import ctypes, ctypes.util, socket, sys

mode, port = sys.argv[1], int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
sock.bind(("127.0.0.1", port))
front = {}

def answer(wire):
    key = wire[2:]
    reply = front.get(key)
    if reply is None:
        reply = front[key] = bytes([wire[2] | 0x80]) + wire[3:]
    return wire[:2] + reply

if mode == "plain":
    recvfrom, sendto = sock.recvfrom, sock.sendto
    while True:
        wire, addr = recvfrom(65535)
        sendto(answer(wire), addr)

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

class iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]

class msghdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.POINTER(iovec)), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]

class mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", msghdr), ("msg_len", ctypes.c_uint)]

N, SIZE, NAME = 64, 4096, 28
rbuf, sbuf = ctypes.create_string_buffer(N * SIZE), ctypes.create_string_buffer(N * SIZE)
names = ctypes.create_string_buffer(N * NAME)
riov, siov = (iovec * N)(), (iovec * N)()
rmsgs, smsgs = (mmsghdr * N)(), (mmsghdr * N)()
nbase = ctypes.addressof(names)
for i in range(N):
    riov[i].iov_base, riov[i].iov_len = ctypes.addressof(rbuf) + i * SIZE, SIZE
    siov[i].iov_base = ctypes.addressof(sbuf) + i * SIZE
    r, s = rmsgs[i].msg_hdr, smsgs[i].msg_hdr
    r.msg_name, r.msg_namelen, r.msg_iov, r.msg_iovlen = nbase + i * NAME, NAME, ctypes.pointer(riov[i]), 1
    s.msg_namelen, s.msg_iov, s.msg_iovlen = 16, ctypes.pointer(siov[i]), 1
recvmmsg, sendmmsg = libc.recvmmsg, libc.sendmmsg
recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
fd, WAITFORONE = sock.fileno(), 0x10000
rptr, sptr = ctypes.addressof(rmsgs), ctypes.addressof(smsgs)
rview, sview, nview = (memoryview(b).cast("B") for b in (rbuf, sbuf, names))
rlen = memoryview(rmsgs).cast("B").cast("I")  # msg_len of message i: i * 16 + 14
sname = memoryview(smsgs).cast("B").cast("Q")  # msg_name of message i: i * 8
slen = memoryview(siov).cast("B").cast("Q")  # iov_len of iovec i: i * 2 + 1
ntop, AF = socket.inet_ntop, socket.AF_INET
while True:
    n = recvmmsg(fd, rptr, N, WAITFORONE, None)
    for i in range(max(n, 0)):
        wire = bytes(rview[i * SIZE : i * SIZE + rlen[i * 16 + 14]])
        ntop(AF, nview[i * NAME + 4 : i * NAME + 8])  # the address, as a string
        reply = answer(wire)
        sview[i * SIZE : i * SIZE + len(reply)] = reply
        slen[i * 2 + 1] = len(reply)
        sname[i * 8] = nbase + i * NAME
    if n > 0:
        sendmmsg(fd, sptr, n, 0)
"""

C_SERVER = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#define N 64
int main(int argc, char **argv) {
    int batch = strcmp(argv[1], "mmsg") == 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0), size = 1 << 22;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(fd, (void *)&a, sizeof a)) return 1;
    static char bufs[N][4096];
    static struct sockaddr_in names[N];
    struct iovec iov[N];
    struct mmsghdr m[N];
    for (;;) {
        if (!batch) {
            struct sockaddr_in from;
            socklen_t l = sizeof from;
            ssize_t n = recvfrom(fd, bufs[0], 4096, 0, (void *)&from, &l);
            if (n > 2) { bufs[0][2] |= 0x80; sendto(fd, bufs[0], n, 0, (void *)&from, l); }
            continue;
        }
        for (int i = 0; i < N; i++) {
            iov[i].iov_base = bufs[i]; iov[i].iov_len = 4096;
            memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
            m[i].msg_hdr.msg_name = &names[i]; m[i].msg_hdr.msg_namelen = sizeof names[i];
            m[i].msg_hdr.msg_iov = &iov[i]; m[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, m, N, MSG_WAITFORONE, NULL);
        for (int i = 0; i < n; i++) { bufs[i][2] |= 0x80; iov[i].iov_len = m[i].msg_len; }
        if (n > 0) sendmmsg(fd, m, n, 0);
    }
}
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def measure(argv: list[str], port: int, queries: Path) -> tuple[float, float]:
    """(queries per second, share of its core the server used) for one run."""
    proc = subprocess.Popen(["taskset", "-c", "0", *argv, str(port)])
    try:
        time.sleep(0.5)
        before = cpu_seconds(proc.pid)
        out = subprocess.run(
            [*DNSPERF, "-p", str(port), "-d", str(queries), "-l", str(SECONDS)],
            capture_output=True,
            text=True,
            timeout=SECONDS + 30,
        ).stdout
        busy = (cpu_seconds(proc.pid) - before) / SECONDS
    finally:
        stop(proc)
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return qps, busy


def main() -> int:
    cc = shutil.which("cc") or shutil.which("gcc")
    for tool in ("dnsperf", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench/udpio.py needs {tool} (bench/deps.sh installs it)", file=sys.stderr)
            return 1
    if cc is None:
        print("bench/udpio.py needs a C compiler (bench/deps.sh installs gcc)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="gslb-udpio-"))
    (work / "server.py").write_text(PYTHON_SERVER)
    (work / "server.c").write_text(C_SERVER)
    subprocess.run([cc, "-O2", "-o", str(work / "server"), str(work / "server.c")], check=True)
    queries = work / "queries.txt"
    queries.write_text("www.gslb.example.com A\n")
    python = [sys.executable, str(work / "server.py")]
    ways = {
        "Python, recvfrom/sendto": [*python, "plain"],
        "Python, recvmmsg/sendmmsg (ctypes, 64 per call)": [*python, "mmsg"],
        "C, recvfrom/sendto": [str(work / "server"), "plain"],
        "C, recvmmsg/sendmmsg (64 per call)": [str(work / "server"), "mmsg"],
    }
    results: dict[str, tuple[float, float, list[float]]] = {}
    for label, argv in ways.items():
        runs = [measure(argv, free_port(), queries) for _ in range(RUNS)]
        qps = [r[0] for r in runs]
        results[label] = (statistics.median(qps), statistics.median(r[1] for r in runs), qps)
        print(f"{label}: {results[label][0]:,.0f} qps, core {results[label][1]:.0%}", flush=True)
    write_doc(results)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def write_doc(results: dict[str, tuple[float, float, list[float]]]) -> None:
    base = results["Python, recvfrom/sendto"][0]
    rows = "\n".join(
        f"| {label} | {qps:,.0f} | {' / '.join(f'{x:,.0f}' for x in runs)} | {busy:.0%} "
        f"| {qps / base:.2f}x |"
        for label, (qps, busy, runs) in results.items()
    )
    section = textwrap.dedent(
        f"""\
        <!-- bench-udpio:start -->
        ## UDP I/O mechanisms (`make bench`, bench/udpio.py, {time.strftime("%Y-%m-%d")})

        The same trivial server four ways (the reply is the query with QR set, from a dict
        keyed by the query's octets, as gslb's front answers a repeated question), pinned to
        core 0, dnsperf on core 1 (`-c 4 -q 200`, one name), {RUNS} runs of {SECONDS} s, the
        median with every run. "Core" is the server's CPU time over the run's length.

        | server | median qps | runs | core | / Python recvfrom |
        |---|---:|---|---:|---:|
        {{rows}}
        <!-- bench-udpio:end -->"""
    ).replace("{rows}", rows)
    text = PERF.read_text()
    if "<!-- bench-udpio:start -->" in text:
        text = re.sub(
            r"<!-- bench-udpio:start -->.*<!-- bench-udpio:end -->", section, text, flags=re.S
        )
    else:
        text = text.replace("<!-- bench-dns:end -->", "<!-- bench-dns:end -->\n\n" + section)
    PERF.write_text(text)
    print(f"wrote {PERF}")


if __name__ == "__main__":
    sys.exit(main())
