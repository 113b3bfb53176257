#!/usr/bin/env python3
"""Kernel-side benchmark clients for scripts/bench.sh (Python 3, stdlib only).

Run inside the benchmark's network namespace, against a server (utcp or the
smoltcp server) answering for 10.77.0.2. Each command prints one JSON object
on stdout; errors go to stderr with exit status 1. Every wait is bounded by
--timeout seconds (socket timeouts and an overall deadline).

Definitions, identical for both stacks:
  bulk-in  HOST PORT BYTES   connect to the sink, send BYTES, shutdown(SHUT_WR),
                             read until the server's EOF (the server closes only
                             after its application has read everything).
                             Time: from before connect() to that EOF.
  bulk-out HOST PORT BYTES   connect to the source, read until EOF, check that
                             BYTES arrived, close. Time: before connect() to EOF.
  pbulk-in HOST PORT BYTES P like bulk-in over P connections at once (one
                             thread each, BYTES/P bytes each). Time: from
                             before the first connect() to the last EOF.
  rtt HOST PORT N            one connection (TCP_NODELAY), 100 warm-up rounds,
                             then N rounds: send 64 B, read 64 B back; p50/p99 µs.
  seqconn HOST PORT N        N times: connect, send 64 B, read the 64 B echo,
                             close. Connections per second over the whole loop.
  conc HOST PORT N PID DEV   open N connections (one after another) to the echo
                             server, RSS (VmRSS of PID) before and with all open,
                             then one echo round: 64 B sent on every connection,
                             then every echo read (selectors); TX drops of DEV
                             (the TUN queue) before and after. Opening all is
                             bounded by --connect-timeout (default: --timeout),
                             the round by --timeout.
"""

import json
import os
import resource
import selectors
import socket
import sys
import time

MSG = b"x" * 64


def out(obj):
    print(json.dumps(obj), flush=True)


def die(msg):
    print(f"clients.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def bulk_in(host, port, nbytes, timeout):
    chunk = memoryview(bytearray(1 << 20))
    t0 = time.perf_counter()
    s = socket.create_connection((host, port), timeout=timeout)
    left = nbytes
    while left > 0:
        k = min(left, len(chunk))
        s.sendall(chunk[:k])
        left -= k
    s.shutdown(socket.SHUT_WR)
    while True:
        d = s.recv(65536)
        if not d:
            break
    t1 = time.perf_counter()
    s.close()
    dt = t1 - t0
    out({"bytes": nbytes, "seconds": dt, "MBps": nbytes / dt / 1e6})


def bulk_out(host, port, nbytes, timeout):
    buf = bytearray(1 << 20)
    t0 = time.perf_counter()
    s = socket.create_connection((host, port), timeout=timeout)
    got = 0
    while True:
        n = s.recv_into(buf)
        if n == 0:
            break
        got += n
    t1 = time.perf_counter()
    s.close()
    if got != nbytes:
        die(f"bulk-out: got {got} bytes, expected {nbytes}")
    dt = t1 - t0
    out({"bytes": got, "seconds": dt, "MBps": got / dt / 1e6})


def pbulk_in(host, port, nbytes, p, timeout):
    import threading
    each = nbytes // p
    errors = []

    def one():
        chunk = memoryview(bytearray(1 << 20))
        try:
            s = socket.create_connection((host, port), timeout=timeout)
            left = each
            while left > 0:
                k = min(left, len(chunk))
                s.sendall(chunk[:k])
                left -= k
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
            s.close()
        except OSError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=one) for _ in range(p)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    dt = time.perf_counter() - t0
    if errors or any(t.is_alive() for t in threads):
        die(f"pbulk-in: {errors[:1] or 'a connection did not finish'}")
    total = each * p
    out({"bytes": total, "flows": p, "seconds": dt, "MBps": total / dt / 1e6})


def pct(sorted_vals, p):
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def rtt(host, port, n, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(100):
        s.sendall(MSG)
        recv_exact(s, 64)
    samples = []
    pc = time.perf_counter_ns
    deadline = time.monotonic() + timeout
    for i in range(n):
        t0 = pc()
        s.sendall(MSG)
        recv_exact(s, 64)
        samples.append(pc() - t0)
        if (i & 1023) == 0 and time.monotonic() > deadline:
            die(f"rtt: deadline after {i} rounds")
    s.close()
    samples.sort()
    out({"n": n, "p50_us": pct(samples, 50) / 1e3, "p99_us": pct(samples, 99) / 1e3})


def seqconn(host, port, n, timeout):
    deadline = time.monotonic() + timeout
    t0 = time.perf_counter()
    for i in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(MSG)
        recv_exact(s, 64)
        s.close()
        if time.monotonic() > deadline:
            die(f"seqconn: deadline after {i + 1} connections")
    dt = time.perf_counter() - t0
    out({"n": n, "seconds": dt, "per_s": n / dt})


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def tx_dropped(dev):
    try:
        with open(f"/sys/class/net/{dev}/statistics/tx_dropped") as f:
            return int(f.read())
    except OSError:
        import subprocess

        o = subprocess.run(["ip", "-s", "link", "show", dev], capture_output=True,
                           text=True, timeout=5).stdout.split("\n")
        for i, line in enumerate(o):
            if line.strip().startswith("TX:"):
                return int(o[i + 1].split()[3])
        return -1


def conc(host, port, n, pid, dev, timeout, connect_timeout):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    res = {"n": n}
    drops0 = tx_dropped(dev)
    rss0 = rss_kib(pid)
    socks = []
    deadline = time.monotonic() + connect_timeout
    t0 = time.perf_counter()
    try:
        for i in range(n):
            if time.monotonic() > deadline:
                raise TimeoutError(f"deadline with {i} of {n} connections open")
            s = socket.create_connection((host, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
    except Exception as e:  # report how far it got
        res["error"] = f"connect: {e} ({len(socks)} open)"
    res["connect_seconds"] = time.perf_counter() - t0
    res["open"] = len(socks)
    # Let the server settle (utcp's accept loop spawns a thread per connection).
    last = -1
    for _ in range(20):
        time.sleep(0.25)
        r = rss_kib(pid)
        if r == last:
            break
        last = r
    rss1 = rss_kib(pid)
    res["rss_before_kib"] = rss0
    res["rss_open_kib"] = rss1
    if socks:
        res["kib_per_conn"] = (rss1 - rss0) / len(socks)
        res["kib_total_per_conn"] = rss1 / len(socks)
    if "error" not in res and socks:
        sel = selectors.DefaultSelector()
        want = {}
        for s in socks:
            s.setblocking(False)
        t1 = time.perf_counter()
        for s in socks:
            s.send(MSG)  # 64 B always fit an empty send buffer
            want[s.fileno()] = 64
            sel.register(s, selectors.EVENT_READ)
        pending = len(socks)
        rdeadline = time.monotonic() + timeout
        while pending > 0:
            left = rdeadline - time.monotonic()
            if left <= 0:
                res["error"] = f"echo round: {pending} of {len(socks)} echoes missing after {timeout} s"
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                s = key.fileobj
                try:
                    d = s.recv(4096)
                except BlockingIOError:
                    continue
                if not d:
                    res["error"] = "echo round: EOF"
                    pending = 0
                    break
                want[s.fileno()] -= len(d)
                if want[s.fileno()] <= 0:
                    sel.unregister(s)
                    pending -= 1
        if "error" not in res:
            res["round_seconds"] = time.perf_counter() - t1
        sel.close()
    res["tx_dropped"] = tx_dropped(dev) - drops0
    for s in socks:
        s.close()
    out(res)


def main():
    a = sys.argv[1:]
    timeout = 60.0
    connect_timeout = None
    while len(a) >= 2 and a[0] in ("--timeout", "--connect-timeout"):
        if a[0] == "--timeout":
            timeout = float(a[1])
        else:
            connect_timeout = float(a[1])
        a = a[2:]
    if connect_timeout is None:
        connect_timeout = timeout
    if not a:
        die(__doc__)
    cmd, rest = a[0], a[1:]
    try:
        if cmd == "bulk-in":
            bulk_in(rest[0], int(rest[1]), int(rest[2]), timeout)
        elif cmd == "bulk-out":
            bulk_out(rest[0], int(rest[1]), int(rest[2]), timeout)
        elif cmd == "pbulk-in":
            pbulk_in(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), timeout)
        elif cmd == "rtt":
            rtt(rest[0], int(rest[1]), int(rest[2]), timeout)
        elif cmd == "seqconn":
            seqconn(rest[0], int(rest[1]), int(rest[2]), timeout)
        elif cmd == "conc":
            conc(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), rest[4], timeout, connect_timeout)
        else:
            die(f"unknown command {cmd}")
    except (OSError, ConnectionError, IndexError, ValueError) as e:
        die(f"{cmd}: {e}")


if __name__ == "__main__":
    main()
