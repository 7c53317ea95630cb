#!/usr/bin/env python3
"""The registry's benchmarks: P1-P4, each a ratio against a reference measured in the
same run on the same machine. Run through `bench/run`, which builds the release binary first.

Starts its own PostgreSQL cluster (data under target/bench-pg, as the postgres user when run as
root), the registry on it and on an embedded SQLite file, seeds data through the API, drives load
with wrk (Lua scripts in bench/wrk/) and hey, and compares with pgbench and a bare SQLite program
(bench/sqlite_bare.py). Prints a table and writes bench/results.json.

BENCH_SCALE (default 1.0) scales every measured duration; BENCH_LOTS_BIG (default 1000000) the
large registry of P3; BENCH_IMPORT_ROWS (default 200000; a million take ~27 min
here) the lots CSV of P3's import vs COPY;
BENCH_ONLY (e.g. "P1,P4") runs only some of P1-P4 ("P3import" runs only P3's import vs COPY).
"""

import concurrent.futures as cf
import datetime
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = ROOT / "target" / "bench-work"
PGBASE = ROOT / "target" / "bench-pg"
BIN = pathlib.Path(os.environ.get("BENCH_BIN", ROOT / "target" / "release" / "registry"))
PGBIN = pathlib.Path("/usr/lib/postgresql/15/bin")
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
CLIENTS = 16
LOTS_BIG = int(os.environ.get("BENCH_LOTS_BIG", "1000000"))
IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "200000"))
ONLY = {p.strip() for p in os.environ.get("BENCH_ONLY", "P1,P2,P3,P4").split(",")}
ADMIN_PASSWORD = "bench-admin-password"
IS_ROOT = os.geteuid() == 0


def secs(base):
    return max(3, int(round(base * SCALE)))


def log(msg):
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_pg(args, **kw):
    """Runs a PostgreSQL tool, as the postgres user when we are root (initdb refuses root)."""
    cmd = (["runuser", "-u", "postgres", "--"] if IS_ROOT else []) + [str(a) for a in args]
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------- PostgreSQL


class Postgres:
    def __init__(self):
        self.port = free_port()
        self.data = PGBASE / "data"
        if PGBASE.exists():
            self._stop_quietly()
            shutil.rmtree(PGBASE)
        PGBASE.mkdir(parents=True)
        if IS_ROOT:
            subprocess.run(["chown", "postgres:", str(PGBASE)], check=True)
        as_pg([PGBIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
               "--locale=C"], stdout=subprocess.DEVNULL)
        # Durable settings (fsync, synchronous_commit on: PostgreSQL's defaults) so that a 2xx and
        # a pgbench commit both mean the same thing; enough connections for servers and pgbench.
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{PGBASE}'\nmax_connections = 200\n"
                    "shared_buffers = 256MB\nshared_preload_libraries = 'pg_stat_statements'\n"
                    "pg_stat_statements.track_utility = on\n")
        as_pg([PGBIN / "pg_ctl", "start", "-D", self.data, "-w", "-l", PGBASE / "server.log"],
              stdout=subprocess.DEVNULL)
        self.psql("postgres", "CREATE EXTENSION pg_stat_statements")
        log(f"PostgreSQL 15 on port {self.port}, data {self.data}")

    def _stop_quietly(self):
        if (PGBASE / "data" / "postmaster.pid").exists():
            subprocess.run((["runuser", "-u", "postgres", "--"] if IS_ROOT else []) +
                           [str(PGBIN / "pg_ctl"), "stop", "-D", str(PGBASE / "data"), "-m", "fast"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        as_pg([PGBIN / "pg_ctl", "stop", "-D", self.data, "-m", "fast"], stdout=subprocess.DEVNULL)

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, db, sql):
        return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                               str(self.port), "-U", "postgres", "-d", db, "-At", "-c", sql],
                              check=True, capture_output=True, text=True).stdout.strip()

    def createdb(self, name):
        self.psql("postgres", f"CREATE DATABASE {name}")
        self.psql(name, "CREATE EXTENSION pg_stat_statements")

    def reset_stats(self):
        self.psql("postgres", "SELECT pg_stat_statements_reset()")

    def statements(self, db):
        """Statements executed in `db` since the last reset (each one a round trip), and the top ones."""
        rows = self.psql("postgres", "SELECT s.calls, regexp_replace(left(s.query, 70), '\\s+', ' ', 'g') "
                         "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                         f"WHERE d.datname = '{db}' ORDER BY s.calls DESC")
        calls = [(int(r.split("|", 1)[0]), r.split("|", 1)[1]) for r in rows.splitlines() if r]
        return sum(c for c, _ in calls), calls

    def pgbench(self, args):
        out = subprocess.run([str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                              "postgres"] + args + ["pgbench"], check=True, capture_output=True, text=True)
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out.stdout)
        if not m:
            raise RuntimeError("pgbench: no tps in output:\n" + out.stdout + out.stderr)
        return float(m.group(1))


# ---------------------------------------------------------------- the registry


class Server:
    def __init__(self, url, name, workers=2):
        self.dir = WORK / name
        self.dir.mkdir(parents=True, exist_ok=True)
        # Key files: a PostgreSQL registry refuses to start without them; every server of one run
        # shares the same set (`registry keys init` keeps existing files).
        keys = WORK / "keys"
        subprocess.run([str(BIN), "keys", "init", "--dir", str(keys)], check=True,
                       stdout=subprocess.DEVNULL)
        env = dict(os.environ, DATABASE_URL=url, REGISTRY_DATA_DIR=str(self.dir),
                   REGISTRY_KEYS_DIR=str(keys),
                   REGISTRY_ADMIN_PASSWORD=ADMIN_PASSWORD, REGISTRY_PASSWORD_HASH_COST="fast",
                   RUST_LOG="warn")
        self.log = open(self.dir / "server.log", "w")
        self.proc = subprocess.Popen([str(BIN), "serve", "--bind", "127.0.0.1:0", "--workers", str(workers),
                                      "--db-pool-size", str(CLIENTS)],
                                     env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server {name} exited; see {self.dir / 'server.log'}")
            if line.startswith("registry listening on "):
                base = line.split("registry listening on ", 1)[1].strip()
                break
        else:
            raise RuntimeError(f"server {name} did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.base = base
        hostport = base.split("://", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        log(f"registry ({name}) at {base}, pid {self.proc.pid}")

    def hwm_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Api:
    """A tiny keep-alive JSON client (one per thread)."""

    def __init__(self, srv, token=None):
        self.srv, self.token = srv, token
        self.conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)

    def call(self, method, path, body=None, key=None, expect=None):
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if key:
            headers["idempotency-key"] = key
        data = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=60)
                if attempt:
                    raise
        out = json.loads(raw) if raw else None
        if expect is not None and r.status != expect:
            raise RuntimeError(f"{method} {path}: {r.status} {out}")
        return r.status, out

    def post(self, path, body, key=None, expect=None):
        return self.call("POST", path, body, key or str(uuid.uuid4()), expect)[1]

    def get(self, path, expect=200):
        return self.call("GET", path, expect=expect)[1]


def login(srv, username, password):
    t = Api(srv).call("POST", "/v1/auth/token", {"username": username, "password": password}, expect=200)[1]
    return Api(srv, t["access_token"])


def uscc(n):
    """A valid unified social credit code (R1's check character) for `n`."""
    charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    first = f"91350702{n % 1_000_000_000:09d}"
    s = sum(charset.index(c) * w for c, w in zip(first, weights))
    return first + charset[(31 - s % 31) % 31]


def par_map(fn, items, workers=8):
    with cf.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


class World:
    """What the seeding made: tokens, parties, lots with their holders, pledges."""


def seed(srv, n_parties=64, n_lots=128, holders_per_lot=8, n_ent_users=16, n_pledges=64):
    t0 = time.time()
    # The bootstrap admin administers accounts only; two operators (two persons) do the business.
    user_admin = login(srv, "admin", ADMIN_PASSWORD)
    # After the first operator, an operator account works once an operator of another person
    # approves it; every new operator first replaces the password the administrator chose.
    def operator(name, person, approver=None):
        made = user_admin.post("/v1/users", {"username": name, "password": f"bench-{name}-password", "role": "operator",
                                             "person_id": person}, expect=201)
        if made.get("approval_proposal") and approver is not None:
            approver.post(f"/v1/proposals/{made['approval_proposal']}/approve", {}, expect=200)
        Api(srv).call("POST", "/v1/auth/password", {"username": name, "current_password": f"bench-{name}-password",
                                                   "new_password": "Bench-own-passphrase-01"}, expect=204)
        return login(srv, name, "Bench-own-passphrase-01")

    admin = operator("operator", "BENCH-OP-1")
    checker = operator("checker", "BENCH-OP-2", approver=admin)
    w = World()
    w.admin_token = admin.token
    w.checker_token = checker.token
    tls = threading.local()

    def api(token):
        # One keep-alive connection per thread and token.
        cache = getattr(tls, "apis", None)
        if cache is None:
            cache = tls.apis = {}
        if token not in cache:
            cache[token] = Api(srv, token)
        return cache[token]

    def mk_party(i):
        kind = "bank" if i >= n_parties else "enterprise"
        return api(admin.token).post("/v1/parties", {"kind": kind, "name_zh": f"基准{kind}{i}", "uscc": uscc(9000 + i),
                                                      "region_code": "350702"}, expect=201)["id"]

    ids = par_map(mk_party, range(n_parties + 2))
    w.parties, w.banks = ids[:n_parties], ids[n_parties:]
    # An enterprise or bank login works once an operator approves it (the user administrator
    # alone never binds a login to a party), and it first replaces the password the administrator chose.
    def admit(made, name, chosen):
        if made.get("approval_proposal"):
            api(admin.token).post(f"/v1/proposals/{made['approval_proposal']}/approve", {}, expect=200)
        Api(srv).call("POST", "/v1/auth/password", {"username": name, "current_password": chosen,
                                                   "new_password": "Bench-own-passphrase-01"}, expect=204)
        return login(srv, name, "Bench-own-passphrase-01").token

    w.bank_token = admit(user_admin.post("/v1/users", {"username": "banker", "password": "bench-banker-password",
                                                       "role": "bank", "party_id": w.banks[0]}, expect=201),
                         "banker", "bench-banker-password")

    def mk_ent_user(i):
        made = api(user_admin.token).post("/v1/users", {"username": f"ent{i}", "password": f"bench-ent-{i}-password",
                                                        "role": "enterprise", "party_id": w.parties[i]}, expect=201)
        return admit(made, f"ent{i}", f"bench-ent-{i}-password")

    w.ent_tokens = par_map(mk_ent_user, range(n_ent_users))

    def mk_lot(i):
        body = {"right_type": "EU", "vintage": 2026, "valid_from": "2026-01-01", "valid_to": "2030-12-31",
                "region_code": "350702", "origin": "paid_use", "quantity": "1000000",
                "holder_party_id": w.parties[i % n_parties], "source_document": f"基准用能权-{i}"}
        p = api(admin.token).post("/v1/lots", body, expect=202)
        return api(checker.token).post(f"/v1/proposals/{p['id']}/approve", {}, expect=200)["result"]["id"]

    w.lots = par_map(mk_lot, range(n_lots))
    # Each lot spread over `holders_per_lot` holders; the first is the issuance's holder.
    w.holders = [[w.parties[(i + j) % n_parties] for j in range(holders_per_lot)] for i in range(n_lots)]

    def spread(i):
        hs = w.holders[i]
        for h in hs[1:]:
            p = api(admin.token).post("/v1/transfers/registered", {"lot_id": w.lots[i], "from_party_id": hs[0],
                                                                    "to_party_id": h, "quantity": "100000"}, expect=202)
            api(checker.token).post(f"/v1/proposals/{p['id']}/approve", {}, expect=200)

    par_map(spread, range(n_lots))

    # Pledges of enterprise users' holdings to the bank: registration numbers for the lookups.
    banker = Api(srv, w.bank_token)
    accept = {"secured_amount": "2000000.00", "loan_maturity": "2028-12-31", "period_end": "2029-12-31",
              "loan_reference": "BENCH-LOAN", "appraisal_value": "3150000.00", "appraiser": "基准评估",
              "appraisal_date": "2026-11-20"}

    def mk_pledge(k):
        u = k % n_ent_users
        party = w.parties[u]
        lot = next(w.lots[i] for i in range(n_lots) if w.holders[i][0] == party)
        p = api(w.ent_tokens[u]).post("/v1/pledges", {"lot_id": lot, "quantity": "10",
                                                       "lender_party_id": w.banks[0]}, expect=201)
        return api(banker.token).post(f"/v1/pledges/{p['id']}/accept", accept, expect=200)["registration_no"]

    w.registrations = par_map(mk_pledge, range(n_pledges))
    log(f"seeded {n_parties} parties, {n_lots} lots x {holders_per_lot} holders, {n_pledges} pledges "
        f"in {time.time() - t0:.1f}s")
    return w


# ---------------------------------------------------------------- load generators


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_data(name, **kv):
    path = WORK / f"{name}.lua"
    lines = []
    for k, v in kv.items():
        if isinstance(v, str):
            lines.append(f"{k} = {lua_str(v)}")
        elif isinstance(v, list) and v and isinstance(v[0], list):
            lines.append(f"{k} = {{" + ",".join("{" + ",".join(map(str, x)) + "}" for x in v) + "}")
        elif isinstance(v, list):
            lines.append(f"{k} = {{" + ",".join(lua_str(x) if isinstance(x, str) else str(x) for x in v) + "}")
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(srv, script, data, seconds, clients=CLIENTS, threads=2):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", str(BENCH / "wrk" / script), srv.base, "--", str(data)],
                         check=True, capture_output=True, text=True)
    m = re.search(r"^BENCH (.*)$", out.stdout, re.M)
    if not m:
        raise RuntimeError("wrk: no summary\n" + out.stdout + out.stderr)
    r = json.loads(m.group(1))
    ok = r["requests"] - r["non2xx"] - r["socket_errors"]
    # registered.lua proposes and approves (two requests a transfer): it counts settled transfers.
    if "settled" in r:
        ok = r["settled"]
    r["ok_per_s"] = ok / (r["duration_us"] / 1e6)
    r["errors"] = r["non2xx"] + r["socket_errors"]
    return r


def hey_latency(url, token, rate, seconds, clients=CLIENTS):
    """p50/p99 at a fixed offered rate: hey paces each of its workers at rate/clients per second."""
    qps = max(1, int(rate / clients))
    args = ["hey", "-z", f"{seconds}s", "-c", str(clients), "-q", str(qps)]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout
    pct = {int(a): float(b) * 1000 for a, b in re.findall(r"(\d+)%+ in ([0-9.]+) secs", out)}
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    return {"offered_per_s": qps * clients, "achieved_per_s": rps, "p50_ms": pct.get(50), "p99_ms": pct.get(99),
            "status_counts": codes}


def flow_client(srv, w, seconds):
    """The three-step flow (request, confirm, approve) by 16 Python threads, each a sender/receiver
    pair of enterprise users; counts completed (settled) flows per second."""
    n = len(w.ent_tokens)
    stop = time.time() + seconds
    counts, errors = [0] * CLIENTS, [0] * CLIENTS

    def run(c):
        s, r = c % n, (c + 1) % n
        sender, receiver, op = Api(srv, w.ent_tokens[s]), Api(srv, w.ent_tokens[r]), Api(srv, w.admin_token)
        lot = next(w.lots[i] for i in range(len(w.lots)) if w.holders[i][0] == w.parties[s])
        while time.time() < stop:
            st, t = sender.call("POST", "/v1/transfers", {"lot_id": lot, "to_party_id": w.parties[r], "quantity": "1"},
                                key=str(uuid.uuid4()))
            if st != 201:
                errors[c] += 1
                continue
            st, _ = receiver.call("POST", f"/v1/transfers/{t['id']}/confirm", None, key=str(uuid.uuid4()))
            if st != 200:
                errors[c] += 1
                continue
            st, t = op.call("POST", f"/v1/transfers/{t['id']}/approve", None, key=str(uuid.uuid4()))
            if st == 200 and t["status"] == "settled":
                counts[c] += 1
            else:
                errors[c] += 1

    t0 = time.time()
    ths = [threading.Thread(target=run, args=(c,)) for c in range(CLIENTS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return {"flows_per_s": sum(counts) / (time.time() - t0), "errors": sum(errors)}


# ---------------------------------------------------------------- measurements


RESULTS = {}


def record(key, **kv):
    RESULTS.setdefault(key, {}).update(kv)
    log(f"{key}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in kv.items()))


def p1(pg, srv, w):
    data = write_data("p1", TOKEN=w.admin_token, CHECKER=w.checker_token, LOTS=w.lots, HOLDERS=w.holders)
    log("P1: registered transfers over HTTP (warm-up 3 s)")
    wrk(srv, "registered.lua", data, 3)
    pg.reset_stats()
    r = wrk(srv, "registered.lua", data, secs(20))
    n, top = pg.statements("registry")
    per_req = n / max(1, r.get("settled", r["requests"]))
    log("P1: pgbench TPC-B-like")
    pg.reset_stats()
    tps = pg.pgbench(["-c", str(CLIENTS), "-j", "2", "-T", str(secs(20))])
    pn, _ = pg.statements("pgbench")
    per_tx = pn / max(1, tps * secs(20))
    (WORK / "p1-statements.txt").write_text("\n".join(f"{c}\t{q}" for c, q in top))
    flow = flow_client(srv, w, secs(15))
    record("P1", registered_per_s=r["ok_per_s"], errors=r["errors"], pgbench_tpcb_tps=tps,
           ratio=r["ok_per_s"] / tps, target=0.6, three_step_flows_per_s=flow["flows_per_s"],
           three_step_errors=flow["errors"], p50_ms=r["p50_us"] / 1000, p99_ms=r["p99_us"] / 1000,
           statements_per_transfer=per_req, statements_per_pgbench_tx=per_tx)


def lookup_paths(w):
    return [f"/v1/encumbrances/{no}" for no in w.registrations]


def p2(pg, srv, w):
    data = write_data("p2", GET_TOKEN=w.bank_token, PATHS=lookup_paths(w))
    health = write_data("health", PATHS=["/healthz"])
    wrk(srv, "get.lua", data, 3)
    log("P2: encumbrance lookups")
    pg.reset_stats()
    r = wrk(srv, "get.lua", data, secs(15))
    n, top = pg.statements("registry")
    per_req = n / max(1, r.get("settled", r["requests"]))
    (WORK / "p2-statements.txt").write_text("\n".join(f"{c}\t{q}" for c, q in top))
    h = wrk(srv, "get.lua", health, secs(10))
    log("P2: pgbench -S")
    tps = pg.pgbench(["-S", "-c", str(CLIENTS), "-j", "2", "-T", str(secs(15))])
    url = srv.base + lookup_paths(w)[0]
    lat = hey_latency(url, w.bank_token, 0.8 * r["ok_per_s"], secs(15))
    record("P2", lookups_per_s=r["ok_per_s"], errors=r["errors"], pgbench_select_tps=tps,
           ratio=r["ok_per_s"] / tps, target=0.5, healthz_per_s=h["ok_per_s"],
           ratio_to_healthz=r["ok_per_s"] / h["ok_per_s"], at_80pct_offered_per_s=lat["offered_per_s"],
           at_80pct_achieved_per_s=lat["achieved_per_s"], p50_ms=lat["p50_ms"], p99_ms=lat["p99_ms"],
           p99_over_p50=(lat["p99_ms"] / lat["p50_ms"]) if lat["p50_ms"] else None, p99_over_p50_target=5.0,
           status_counts=lat["status_counts"], statements_per_lookup=per_req)


def add_lots(pg, db, upto, parties):
    """Grows the registry to `upto` lots with SQL straight into its own tables (lots and one
    holding each, spread over the parties); certificate numbers and source documents unique."""
    have = int(pg.psql(db, "SELECT count(*) FROM lots"))
    if have >= upto:
        return have, 0.0
    n = upto - have
    p = ",".join(map(str, parties))
    t0 = time.time()
    pg.psql(db, f"""
        BEGIN;
        INSERT INTO lots (right_type, sub_kind, certificate_no, source_document, vintage, compliance_year,
            valid_from, valid_to, region_code, origin, project, monitoring_period, issued, retired, cancelled,
            first_holder_id, proposed_by, approved_by, version, created_at)
        SELECT 'EU', NULL, 'EU-BULK-350702-2026-' || lpad(g::text, 7, '0'), '基准批量-' || g, 2026, NULL,
            DATE '2026-01-01', DATE '2030-12-31', '350702', 'paid_use', NULL, NULL, 10000000, 0, 0,
            (ARRAY[{p}])[1 + g % {len(parties)}], 'bench', 'bench', 0, now()
        FROM generate_series({have + 1}, {upto}) g;
        INSERT INTO holdings (party_id, lot_id, available, listed, in_transfer, pledged, frozen,
            acquired_free, acquired_paid, acquired_market, acquired_forced, updated_at)
        SELECT l.first_holder_id, l.id, l.issued, 0, 0, 0, 0, 0, l.issued, 0, 0, now()
        FROM lots l WHERE l.source_document LIKE '基准批量-%' AND NOT EXISTS
            (SELECT 1 FROM holdings h WHERE h.lot_id = l.id);
        COMMIT;
        ANALYZE;""")
    return upto, time.time() - t0


def import_available():
    r = subprocess.run([str(BIN), "import", "--help"], capture_output=True, text=True)
    return r.returncode == 0 and "lots" in (r.stdout + r.stderr)


def p3(pg, srv, w, db):
    data = write_data("p2", GET_TOKEN=w.bank_token, PATHS=lookup_paths(w))
    _, t_small = add_lots(pg, db, 10_000, w.parties)
    wrk(srv, "get.lua", data, 3)
    small = wrk(srv, "get.lua", data, secs(10))
    log(f"P3: growing the registry to {LOTS_BIG} lots with SQL")
    _, t_big = add_lots(pg, db, LOTS_BIG, w.parties)
    wrk(srv, "get.lua", data, 3)
    big = wrk(srv, "get.lua", data, secs(10))
    lots_now = int(pg.psql(db, "SELECT count(*) FROM lots"))
    record("P3", lookups_per_s_10k=small["ok_per_s"], lookups_per_s_big=big["ok_per_s"], lots_big=lots_now,
           errors=small["errors"] + big["errors"], ratio=big["ok_per_s"] / small["ok_per_s"], target=0.8,
           sql_load_seconds=t_small + t_big)


# The reference of P3's import: the same CSV's columns (and a certificate number, as the registry
# gives each lot) with the lots table's indexes (primary key, unique certificate_no, unique
# source_document); then what the import also writes per lot, a holding and a journal row, with
# the holdings and movements tables' indexes, filled from the loaded lots in one statement each.
BARE_LOTS = """
CREATE TABLE bare_lots (
    id BIGSERIAL PRIMARY KEY,
    right_type TEXT NOT NULL, sub_kind TEXT, vintage INTEGER NOT NULL, compliance_year INTEGER,
    valid_from DATE NOT NULL, valid_to DATE NOT NULL, region_code TEXT NOT NULL, origin TEXT NOT NULL,
    project TEXT, monitoring_period TEXT, quantity NUMERIC NOT NULL, holder_uscc TEXT NOT NULL,
    source_document TEXT NOT NULL UNIQUE,
    certificate_no TEXT NOT NULL UNIQUE GENERATED ALWAYS AS
        (right_type || '-' || coalesce(sub_kind || '-', '') || region_code || '-' || vintage::text || '-' ||
         lpad(id::text, 6, '0')) STORED
);
CREATE TABLE bare_holdings (
    id BIGSERIAL PRIMARY KEY, holder_uscc TEXT NOT NULL, lot_id BIGINT NOT NULL, available NUMERIC NOT NULL,
    updated_at TIMESTAMP NOT NULL, UNIQUE (holder_uscc, lot_id));
CREATE INDEX bare_holdings_lot ON bare_holdings (lot_id);
CREATE TABLE bare_movements (
    id BIGSERIAL PRIMARY KEY, lot_id BIGINT NOT NULL, to_holder TEXT NOT NULL, quantity NUMERIC NOT NULL,
    cause TEXT NOT NULL, reference TEXT NOT NULL, at TIMESTAMP NOT NULL);
CREATE INDEX bare_movements_lot ON bare_movements (lot_id, id);
"""
CSV_COLUMNS = ("right_type, sub_kind, vintage, compliance_year, valid_from, valid_to, region_code, origin, "
               "project, monitoring_period, quantity, holder_uscc, source_document")


def timed(cmd, env=None):
    """Runs `cmd` under /usr/bin/time -v: (seconds, peak RSS in KiB, stdout)."""
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-v"] + [str(c) for c in cmd], env=env, capture_output=True, text=True)
    took = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", p.stderr))
    return took, int(m.group(1)) if m else None, p.stdout + "\n" + p.stderr, cpu


def p3_import(pg):
    """P3, second half: `registry import lots FILE` into a fresh database vs COPY of the same CSV."""
    if not import_available():
        RESULTS.setdefault("P3", {})["import_vs_copy"] = "not measured: import not available"
        return
    d = WORK / "import"
    shutil.rmtree(d, ignore_errors=True)
    log(f"P3 import: generating {IMPORT_ROWS} lots (bench/gen_lots.py)")
    subprocess.run([sys.executable, str(BENCH / "gen_lots.py"), str(IMPORT_ROWS), str(d)], check=True)
    csv_path = d / "lots.csv"
    mib = csv_path.stat().st_size / 1048576
    pg.createdb("import")
    env = dict(os.environ, DATABASE_URL=pg.url("import"), REGISTRY_DATA_DIR=str(d / "data"),
               REGISTRY_ADMIN_PASSWORD=ADMIN_PASSWORD, REGISTRY_PASSWORD_HASH_COST="fast", RUST_LOG="warn")
    timed([BIN, "import", "parties", d / "parties.csv"], env)
    pg.psql("import", "ANALYZE")
    log(f"P3 import: registry import lots ({IMPORT_ROWS} rows, {mib:.0f} MiB)")
    pg.reset_stats()
    load0 = open("/proc/loadavg").read().split()[:3]
    t_imp, rss_kb, out, cpu_imp = timed([BIN, "import", "lots", csv_path], env)
    load1 = open("/proc/loadavg").read().split()[:3]
    n_stmts, top = pg.statements("import")
    # Time PostgreSQL spent executing the import's statements (the rest of the wall clock is the
    # import's own CPU and the round trips between them).
    pg_exec_s = float(pg.psql("postgres", "SELECT coalesce(sum(s.total_exec_time), 0) / 1000 FROM "
                              "pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                              "WHERE d.datname = 'import'"))
    phases = {name: float(rate) for name, rate in
              re.findall(r"^(validate|load): [0-9.]+/[0-9.]+ (?:MiB|rows) \(100%\), ([0-9.]+) ", out, re.M)}
    (WORK / "p3-import-statements.txt").write_text("\n".join(f"{c}\t{q}" for c, q in top))
    (WORK / "p3-import-output.txt").write_text(out)
    m = re.search(r"(\d+) imported in ([0-9.]+)s", out)
    imported = int(m.group(1)) if m else 0
    if imported != IMPORT_ROWS:
        raise RuntimeError(f"registry import lots imported {imported} of {IMPORT_ROWS} rows:\n{out[-2000:]}")
    counts = pg.psql("import", "SELECT (SELECT count(*) FROM lots), (SELECT count(*) FROM holdings), "
                     "(SELECT count(*) FROM movements), (SELECT count(*) FROM audit_events)")
    log(f"P3 import: {t_imp:.1f} s, peak RSS {rss_kb} KiB; lots, holdings, movements, audit events: {counts}")

    log("P3 import: COPY of the same CSV into a bare table with the lots table's indexes")
    pg.createdb("copyref")
    pg.psql("copyref", BARE_LOTS)
    t0 = time.time()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(pg.port), "-U",
                    "postgres", "-d", "copyref", "-c",
                    f"\\copy bare_lots ({CSV_COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"],
                   check=True, capture_output=True)
    t_copy = time.time() - t0
    t0 = time.time()
    pg.psql("copyref", "BEGIN; INSERT INTO bare_holdings (holder_uscc, lot_id, available, updated_at) "
                       "SELECT holder_uscc, id, quantity, now() FROM bare_lots; "
                       "INSERT INTO bare_movements (lot_id, to_holder, quantity, cause, reference, at) "
                       "SELECT id, holder_uscc, quantity, 'issuance', 'lot:' || id, now() FROM bare_lots; COMMIT")
    t_rest = time.time() - t0
    copied = int(pg.psql("copyref", "SELECT count(*) FROM bare_lots"))
    if copied != IMPORT_ROWS:
        raise RuntimeError(f"COPY loaded {copied} of {IMPORT_ROWS} rows")
    imp_rate, copy_rate, full_rate = IMPORT_ROWS / t_imp, IMPORT_ROWS / t_copy, IMPORT_ROWS / (t_copy + t_rest)
    r = RESULTS.setdefault("P3", {})
    r.update(import_rows=IMPORT_ROWS, import_csv_mib=round(mib, 1), import_seconds=t_imp,
             import_rows_per_s=imp_rate, import_peak_rss_mb=rss_kb / 1024 if rss_kb else None,
             import_statements_per_row=n_stmts / IMPORT_ROWS, import_loadavg=[load0, load1],
             import_cpu_seconds=cpu_imp, import_pg_exec_seconds=pg_exec_s,
             import_validate_mib_per_s=phases.get("validate"), import_load_rows_per_s=phases.get("load"),
             import_tables_written=dict(zip(["lots", "holdings", "movements", "audit_events"],
                                            map(int, counts.split("|")))),
             copy_seconds=t_copy, copy_rows_per_s=copy_rate, import_ratio=imp_rate / copy_rate,
             import_target=0.3, copy_with_holdings_movements_seconds=t_copy + t_rest,
             import_ratio_like_for_like=imp_rate / full_rate,
             import_vs_copy=f"{imp_rate:.0f} vs {copy_rate:.0f} rows/s")
    log("P3 import: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                                  if k.startswith(("import", "copy"))))


def p4(w_pg):
    sqlite_dir = WORK / "sqlite"
    shutil.rmtree(sqlite_dir, ignore_errors=True)
    sqlite_dir.mkdir(parents=True)
    srv = Server(str(sqlite_dir / "registry.db"), "sqlite")
    try:
        w = seed(srv, n_parties=32, n_lots=32, holders_per_lot=8, n_ent_users=4, n_pledges=4)
        data = write_data("p4", TOKEN=w.admin_token, CHECKER=w.checker_token, LOTS=w.lots, HOLDERS=w.holders)
        wrk(srv, "registered.lua", data, 3)
        log("P4: registered transfers on SQLite")
        r = wrk(srv, "registered.lua", data, secs(20))
        hwm = srv.hwm_kb()
    finally:
        srv.stop()
    log("P4: bare SQLite programs, same writes and syncs, 16 clients")

    def bare(cmd, name):
        p = subprocess.run(cmd + [str(sqlite_dir / name), str(secs(20)), str(CLIENTS)], capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[-1]} failed: {p.stderr}")
        return json.loads(p.stdout.strip().splitlines()[-1])["per_s"]

    py = bare([sys.executable, str(BENCH / "sqlite_bare.py")], "bare-py.db")
    # The Rust one links the registry's own SQLite build (bundled); built by bench/run.
    rust_bin = BIN.parent / "examples" / "sqlite_bare"
    rs = bare([str(rust_bin)], "bare-rs.db") if rust_bin.exists() else None
    ref = rs if rs is not None else py
    record("P4", registered_per_s=r["ok_per_s"], errors=r["errors"], bare_sqlite_per_s=ref,
           bare_reference="examples/sqlite_bare.rs" if rs is not None else "bench/sqlite_bare.py",
           bare_rust_per_s=rs, bare_python_per_s=py,
           ratio=r["ok_per_s"] / ref, peak_rss_mb=hwm / 1024 if hwm else None, rss_target_mb=100.0,
           pg_server_peak_rss_mb=w_pg)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "nproc": os.cpu_count(), "cpu": cpu,
            "mem": subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()[1],
            "loadavg_start": open("/proc/loadavg").read().split()[:3],
            "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip(),
            "scale": SCALE}


def fmt(v, places=1):
    return "—" if v is None else (f"{v:.{places}f}" if isinstance(v, float) else str(v))


def table():
    rows = []

    def row(name, subject, reference, ratio, target, ok):
        rows.append((name, subject, reference, ratio, target, "ok" if ok else "SHORT"))

    if "P1" in RESULTS:
        r = RESULTS["P1"]
        row("P1 registered transfers/s (PG) vs pgbench TPC-B", fmt(r["registered_per_s"]), fmt(r["pgbench_tpcb_tps"]),
            fmt(r["ratio"], 2), "≥ 0.6", r["ratio"] >= 0.6)
        rows.append(("P1 three-step flows/s (request, confirm, approve)", fmt(r["three_step_flows_per_s"]), "", "", "",
                     ""))
        rows.append(("P1 SQL statements per transfer vs per TPC-B transaction", fmt(r["statements_per_transfer"]),
                     fmt(r["statements_per_pgbench_tx"]), "", "", ""))
    if "P2" in RESULTS:
        r = RESULTS["P2"]
        row("P2 encumbrance lookups/s vs pgbench -S", fmt(r["lookups_per_s"]), fmt(r["pgbench_select_tps"]),
            fmt(r["ratio"], 2), "≥ 0.5", r["ratio"] >= 0.5)
        rows.append(("P2 SQL statements per lookup vs per pgbench -S transaction", fmt(r["statements_per_lookup"]),
                     "1", "", "", ""))
        rows.append(("P2 lookups/s vs /healthz/s", fmt(r["lookups_per_s"]), fmt(r["healthz_per_s"]),
                     fmt(r["ratio_to_healthz"], 2), "", ""))
        row(f"P2 p99/p50 at 80 % of peak ({fmt(r['p50_ms'], 2)} / {fmt(r['p99_ms'], 2)} ms)", "", "",
            fmt(r["p99_over_p50"], 2), "≤ 5", (r["p99_over_p50"] or 99) <= 5)
    if "P3" in RESULTS:
        r = RESULTS["P3"]
        if "ratio" in r:
            row(f"P3 lookups/s at {r['lots_big']} vs 10,000 lots", fmt(r["lookups_per_s_big"]),
                fmt(r["lookups_per_s_10k"]), fmt(r["ratio"], 2), "≥ 0.8", r["ratio"] >= 0.8)
        if "import_ratio" in r:
            row(f"P3 import rows/s vs COPY rows/s ({r['import_rows']} lots)", fmt(r["import_rows_per_s"]),
                fmt(r["copy_rows_per_s"]), fmt(r["import_ratio"], 3), "≥ 0.3", r["import_ratio"] >= 0.3)
            rows.append(("P3 import vs COPY + holdings + journal rows (like for like)", "", "",
                         fmt(r["import_ratio_like_for_like"], 3), "", ""))
            rows.append(("P3 import: SQL statements per row; peak RSS (MB)", fmt(r["import_statements_per_row"]),
                         fmt(r["import_peak_rss_mb"]), "", "", ""))
        else:
            rows.append(("P3 import vs COPY", r.get("import_vs_copy", "not measured"), "", "", "≥ 0.3", ""))
    if "P4" in RESULTS:
        r = RESULTS["P4"]
        row(f"P4 registered transfers/s (SQLite) vs bare SQLite ({r['bare_reference']})", fmt(r["registered_per_s"]),
            fmt(r["bare_sqlite_per_s"]), fmt(r["ratio"], 2), "", True)
        row("P4 peak RSS of the SQLite server under load (MB)", fmt(r["peak_rss_mb"]), "", "", "≤ 100",
            (r["peak_rss_mb"] or 999) <= 100)
    widths = [max(len(str(x[i])) for x in rows + [("measure", "subject", "reference", "ratio", "target", "")])
              for i in range(6)]
    lines = []
    for x in [("measure", "subject", "reference", "ratio", "target", "")] + rows:
        lines.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(x)).rstrip())
    return "\n".join(lines)


def main():
    if not BIN.exists():
        sys.exit(f"{BIN} missing: run bench/run (it builds the release binary)")
    for tool in ["wrk", "hey", "psql"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} missing: apt-get install wrk hey postgresql-client")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    meta = machine()
    log(f"machine: {meta}")
    t0 = time.time()
    pg = Postgres()
    srv = None
    try:
        pg.createdb("registry")
        pg.createdb("pgbench")
        subprocess.run([str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-i",
                        "-q", "-s", str(CLIENTS), "pgbench"], check=True, capture_output=True)
        pg_hwm = None
        if ONLY & {"P1", "P2", "P3"}:
            srv = Server(pg.url("registry"), "pg")
            w = seed(srv)
            if "P1" in ONLY:
                p1(pg, srv, w)
            if "P2" in ONLY:
                p2(pg, srv, w)
            pg_hwm = srv.hwm_kb() / 1024
            if "P3" in ONLY:
                p3(pg, srv, w, "registry")
            srv.stop()
            srv = None
        if "P4" in ONLY:
            p4(pg_hwm)
        # Last: minutes of bulk writes into PostgreSQL, which must not disturb the other measurements.
        if ONLY & {"P3", "P3import"}:
            p3_import(pg)
    finally:
        if srv:
            srv.stop()
        pg.stop()
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    meta["seconds"] = round(time.time() - t0)
    out = {"machine": meta, "results": RESULTS}
    (BENCH / "results.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table())
    print(f"\n{meta['date']} · {meta['cpu']} · nproc {meta['nproc']} · load {' '.join(meta['loadavg_start'])} → "
          f"{' '.join(meta['loadavg_end'])} · {meta['seconds']} s · written to bench/results.json")


if __name__ == "__main__":
    main()
