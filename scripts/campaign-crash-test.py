#!/usr/bin/env python3
"""Crash test (and benchmark) for incident notice campaigns: SIGKILL `tiaki incident notify` at
random moments while it sends, run it again each time, and count what a real SMTP server on
loopback (aiosmtpd) received: every recipient must have exactly one notice.

Seeds a fresh SQLite data folder with --notices affected patients (accounts and patients rows,
an incident whose latest revision has each of them confirmed or possibly affected: the scope is
tested elsewhere, this run is about sending), records the steps taken and when the Privacy
Commissioner was told (`tiaki incident update`), starts aiosmtpd with a handler that appends
each message's recipients to a log (and fsyncs nothing: the server process is never killed),
then runs `tiaki incident notify` and kills it with SIGKILL after a random 0.2 to 2.5 seconds,
--kills times, then once more to the end. Each run resumes the unfinished campaign. Checks:
  * every seeded recipient received exactly one notice, and nobody else received one;
  * every notice is recorded as sent (or, if a kill fell between the server accepting a
    notice and its record, "not confirmed" - listed, never sent again);
  * each notice carries a reference code and no link.
With --busy N, N processes spin on the CPU throughout (a busy server: the sender is then often
descheduled right after a write that wakes the mail server, which is when an unlucky kill lands
between delivering a notice and recording it).
With --bench, also sends the same number of messages of the same size straight to the same
server with Python's smtplib on one connection (the baseline: what the relay takes with no
database and no bookkeeping), and prints both rates and their ratio.

Usage: scripts/campaign-crash-test.py --bin target/debug/tiaki [--notices 10000] [--kills 8]
           [--seed N] [--kill-window 0.2,2.5] [--busy N] [--bench]
The benchmark (docs/BENCHMARKS.md, P6): --bin target/release/tiaki --notices 100000 --kills 1
           --kill-window 40,80 --bench
Needs python3 with aiosmtpd (pip install aiosmtpd).
"""
import argparse, os, random, re, signal, sqlite3, subprocess, sys, tempfile, time, uuid

from portal_http import free_port

HANDLER = r'''
import asyncio, sys
from aiosmtpd.controller import Controller

class Count:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
    async def handle_DATA(self, server, session, envelope):
        body = envelope.content.decode("utf-8", "replace")
        code = "-"
        lines = body.splitlines()
        for i, line in enumerate(lines[:-1]):
            if line.endswith("check that this message is from us:"):
                code = lines[i + 1].strip()
        link = "link" if ("http" in body or "://" in body) else "nolink"
        for rcpt in envelope.rcpt_tos:
            self.f.write(f"{rcpt} {code} {link}\n")
        return "250 OK"

port, path = int(sys.argv[1]), sys.argv[2]
c = Controller(Count(path), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
try:
    asyncio.get_event_loop().run_forever()
except KeyboardInterrupt:
    pass
'''


def seed(db, n, rng):
    """n patients, and an incident whose latest revision has each of them affected."""
    con = sqlite3.connect(db)
    now = int(time.time())
    incident = str(uuid.uuid4())
    con.execute(
        "INSERT INTO incidents (id, title, description, discovered_at, declared_at, declared_by, steps_taken) "
        "VALUES (?, ?, ?, ?, ?, 'console', '')",
        (incident, "Crash test", "Someone used a stolen password to open patients' letters.", now - 3600, now),
    )
    con.execute(
        "INSERT INTO incident_revisions (incident_id, revision, indicators, note, tree_size, root, checkpoint, "
        "digest, confirmed, possible, objects, events, created_at, created_by) "
        "VALUES (?, 1, '{}', 'seeded', 0, '', '', '', ?, ?, 0, 0, ?, 'console')",
        (incident, n // 2, n - n // 2, now),
    )
    rows, scope, objects = [], [], []
    for i in range(n):
        account, patient = uuid.uuid4(), uuid.uuid4()
        email = f"p{i:06d}@example.nz"
        rows.append((account.bytes, email, f"Patient {i}", now, patient.bytes, account.bytes, f"ZCT{i:06d}", f"Patient {i}"))
        cls = "confirmed" if i % 2 == 0 else "possible"
        scope.append((incident, str(patient), cls, f"event {i}"))
        if cls == "confirmed":
            objects.append((incident, str(patient), str(uuid.uuid4()), "discharge_summary", "2025-03-03", "G00001-A",
                            "Te Whatu Ora Te Tai Tokerau", i))
    con.executemany("INSERT INTO accounts (id, kind, email, display_name, created_at) VALUES (?, 'patient', ?, ?, ?)",
                    [(r[0], r[1], r[2], r[3]) for r in rows])
    con.executemany("INSERT INTO patients (id, account_id, nhi, name, date_of_birth, created_at) "
                    "VALUES (?, ?, ?, ?, '1980-01-01', 0)", [(r[4], r[5], r[6], r[7]) for r in rows])
    con.executemany("INSERT INTO incident_patients (incident_id, revision, patient_id, class, why) VALUES (?, 1, ?, ?, ?)",
                    scope)
    con.executemany("INSERT INTO incident_objects (incident_id, revision, patient_id, kind, object_id, class, category, "
                    "dated, controller_id, controller_name, first_seq) VALUES (?, 1, ?, 'document', ?, 'confirmed', ?, ?, ?, ?, ?)",
                    objects)
    con.commit()
    con.close()
    return incident, {r[1] for r in rows}


def received(log):
    counts, links, codes = {}, 0, set()
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                counts[parts[0]] = counts.get(parts[0], 0) + 1
                codes.add(parts[1])
                links += parts[2] == "link"
    return counts, links, codes


def baseline(port, n, size):
    import smtplib
    body = ("x" * 70 + "\r\n") * (size // 72)
    s = smtplib.SMTP("127.0.0.1", port)
    t = time.monotonic()
    for i in range(n):
        s.sendmail("base@tiaki.test", [f"base{i}@example.nz"], f"Subject: baseline\r\n\r\n{body}")
    s.quit()
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--notices", type=int, default=10000)
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--busy", type=int, default=0, help="processes spinning on the CPU while the campaign sends")
    ap.add_argument("--kill-window", default="0.2,2.5",
                    help="each kill comes this many seconds (a random point between the two) after a run starts")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="tiaki-campaign-")
    env = dict(os.environ, TIAKI_DATA_DIR=tmp, TIAKI_SUPPORT_PHONE="0800 824 254", TIAKI_LOG_FORMAT="json")
    env.pop("TIAKI_DATABASE_URL", None)
    env.pop("TIAKI_SMTP_URL", None)
    subprocess.run([a.bin, "migrate"], env=env, check=True, capture_output=True)
    t0 = time.monotonic()
    incident, emails = seed(os.path.join(tmp, "tiaki.db"), a.notices, rng)
    seeded = time.monotonic() - t0
    subprocess.run([a.bin, "incident", "update", incident, "--steps",
                    "We ended the sessions involved and are checking every access.",
                    "--commissioner-told", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())],
                   env=env, check=True, capture_output=True)
    port = free_port()
    log = os.path.join(tmp, "received.log")
    server = subprocess.Popen([sys.executable, "-c", HANDLER, str(port), log], stdout=subprocess.PIPE)
    if server.stdout.readline().strip() != b"ready":
        sys.exit("aiosmtpd did not start (pip install aiosmtpd)")
    cmd = [a.bin, "incident", "notify", incident, "--smtp", f"127.0.0.1:{port}", "--per-minute", "100000"]
    failures = []
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy)]
    try:
        kills, runs = 0, 0
        t1 = time.monotonic()
        while True:
            runs += 1
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if kills < a.kills:
                lo, hi = (float(x) for x in a.kill_window.split(","))
                time.sleep(rng.uniform(lo, hi))
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    kills += 1
                    continue
            _, err = p.communicate()
            if p.returncode != 0:
                failures.append(f"notify exited {p.returncode}: {err.decode()[-500:]}")
                break
            if kills >= a.kills or p.returncode == 0:
                break
        sent_secs = time.monotonic() - t1
        time.sleep(0.5)
        counts, links, codes = received(log)
        missing = sorted(e for e in emails if counts.get(e, 0) == 0)
        twice = sorted(e for e, c in counts.items() if c > 1)
        strangers = sorted(e for e in counts if e not in emails)
        con = sqlite3.connect(os.path.join(tmp, "tiaki.db"))
        states = dict(con.execute("SELECT state, COUNT(*) FROM incident_notices GROUP BY state").fetchall())
        con.close()
        if missing:
            failures.append(f"{len(missing)} recipient(s) received nothing, e.g. {missing[:5]}")
        if twice:
            failures.append(f"{len(twice)} recipient(s) received more than one, e.g. {twice[:5]}")
        if strangers:
            failures.append(f"{len(strangers)} message(s) to people not in the campaign")
        if links:
            failures.append(f"{links} notice(s) had a link")
        if "-" in codes or len(codes) != len(counts):
            failures.append("a notice without its own reference code")
        if states.get("sent", 0) + states.get("sending", 0) != a.notices or set(states) - {"sent", "sending"}:
            failures.append(f"notice states: {states}")
        rate = a.notices / sent_secs if sent_secs else 0
        print(f"campaign crash test (seed {a.seed}): {a.notices} notices, {kills} SIGKILLs over {runs} runs; "
              f"{a.busy} busy; received {sum(counts.values())} by {len(counts)} recipients; states {states}; "
              f"seeded in {seeded:.1f}s, sent in {sent_secs:.1f}s ({rate:.0f} notices/s including restarts)")
        if a.bench:
            size = 1800
            base = baseline(port, a.notices, size)
            print(f"baseline: smtplib, one connection, no database: {a.notices} messages in {base:.1f}s "
                  f"({a.notices / base:.0f}/s); tiaki's campaign took {sent_secs / base:.2f}x as long")
    finally:
        for b in busy:
            b.kill()
            b.wait()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("every recipient received exactly one notice")


if __name__ == "__main__":
    main()
