#!/usr/bin/env python3
"""Login flood: the server's resident memory and /readyz latency while many clients send bad
passwords at once.

Starts `registry serve` (BENCH_BIN or --bin; default target/release/registry) on a fresh embedded
SQLite file with the production password-hash cost (Argon2id, 19 MiB, 2 passes), measures a quiet
baseline, then runs CONCURRENCY client threads that each send bad logins back to back for
DURATION seconds while another thread probes /readyz every 50 ms and a third samples the
server's RSS every 100 ms. Reports baseline and peak RSS, RSS after the flood, /readyz
p50/p99/max before and during, and the answers by status.

  --spread   each flooding client uses its own source address (127.0.0.2 …) and invented
             login names, so neither the per-address nor the per-account limit applies and only
             the bound on concurrent hashing holds the server.

  python3 bench/login_flood.py --bin target/release/registry --label after
  python3 bench/login_flood.py --bin /path/to/old/registry --label before

Prints one JSON object (also appended to target/login_flood.jsonl).
"""

import argparse
import http.client
import json
import os
import pathlib
import random
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "bench-admin-password"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def start(binary, workdir):
    env = dict(os.environ,
               DATABASE_URL=str(workdir / "flood.db"),
               REGISTRY_DATA_DIR=str(workdir),
               REGISTRY_ADMIN_PASSWORD=ADMIN_PASSWORD,
               REGISTRY_PASSWORD_HASH_COST="standard",
               RUST_LOG="error")
    proc = subprocess.Popen([binary, "serve", "--bind", "127.0.0.1:0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on http://" in line:
            addr = line.strip().split("http://", 1)[1]
            host, port = addr.rsplit(":", 1)
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, host, int(port)
    proc.kill()
    sys.exit("the server did not start")


def probe(host, port):
    """One /readyz on a fresh connection: seconds taken, or None on failure."""
    t = time.perf_counter()
    try:
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.request("GET", "/readyz")
        r = c.getresponse()
        r.read()
        c.close()
        return time.perf_counter() - t if r.status == 200 else None
    except OSError:
        return None


def probes(host, port, stop, out, every=0.05):
    while not stop.is_set():
        out.append(probe(host, port))
        time.sleep(every)


def flooder(host, port, stop, counts, lock, source, spread):
    conn = None
    body_name = "admin"
    while not stop.is_set():
        if spread:
            body_name = "x-" + "".join(random.choices(string.ascii_lowercase, k=10))
        body = json.dumps({"username": body_name, "password": "not-the-password"})
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=60,
                                                  source_address=(source, 0) if source else None)
            conn.request("POST", "/v1/auth/token", body, {"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            status = r.status
            if r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            status = "error"
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.05)
        with lock:
            counts[status] = counts.get(status, 0) + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("BENCH_BIN", str(ROOT / "target" / "release" / "registry")))
    ap.add_argument("--label", default="")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--spread", action="store_true")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        proc, host, port = start(a.bin, pathlib.Path(tmp))
        try:
            time.sleep(1)
            quiet = []
            stop = threading.Event()
            t = threading.Thread(target=probes, args=(host, port, stop, quiet))
            t.start()
            time.sleep(3)
            stop.set()
            t.join()
            base_rss = rss_kib(proc.pid)

            counts, lock = {}, threading.Lock()
            stop = threading.Event()
            during, peak = [], [base_rss]
            threads = [threading.Thread(target=flooder, args=(
                host, port, stop, counts, lock,
                f"127.0.{(i + 2) // 250}.{(i + 2) % 250 + 1}" if a.spread else None, a.spread))
                for i in range(a.concurrency)]

            def sample():
                while not stop.is_set():
                    peak.append(rss_kib(proc.pid))
                    time.sleep(0.1)

            sampler = threading.Thread(target=sample)
            prober = threading.Thread(target=probes, args=(host, port, stop, during))
            for th in threads:
                th.start()
            sampler.start()
            prober.start()
            time.sleep(a.duration)
            stop.set()
            for th in threads + [sampler, prober]:
                th.join()
            time.sleep(3)
            after_rss = rss_kib(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    ok_quiet = [x for x in quiet if x is not None]
    ok_during = [x for x in during if x is not None]
    ms = lambda x: None if x is None else round(x * 1000, 1)
    result = {
        "label": a.label,
        "bin": a.bin,
        "concurrency": a.concurrency,
        "duration_s": a.duration,
        "spread": a.spread,
        "rss_mib": {"baseline": round(base_rss / 1024, 1), "peak": round(max(peak) / 1024, 1),
                    "after": round(after_rss / 1024, 1)},
        "readyz_ms_quiet": {"p50": ms(pct(ok_quiet, 50)), "p99": ms(pct(ok_quiet, 99)),
                            "n": len(quiet)},
        "readyz_ms_flood": {"p50": ms(pct(ok_during, 50)), "p99": ms(pct(ok_during, 99)),
                            "max": ms(max(ok_during) if ok_during else None),
                            "n": len(during), "failed": len(during) - len(ok_during)},
        "logins_by_status": {str(k): v for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))},
        "loadavg": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "target" / "login_flood.jsonl"
    out.parent.mkdir(exist_ok=True)
    with open(out, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
