#!/usr/bin/env python3
"""Crash test for document uploads: SIGKILL the server at random moments while uploads run.

Starts `tiaki serve` on a fresh data folder (demo patients), runs concurrent uploads through the
API, kills the server with SIGKILL at a random moment, restarts it, and repeats until at least
--uploads uploads have been attempted. Then it sweeps orphans with `tiaki documents sweep
--grace-minutes 0` (the server is stopped, so nothing is in flight) and checks that:
  * every upload the server acknowledged (201) downloads byte-for-byte intact;
  * every stored document row has its blob, and no blob is left without a row;
  * no blob intent is left.
Prints the numbers. Exits non-zero on any failure.

Usage: scripts/crash-test.py --bin target/debug/tiaki [--uploads 1000] [--seed N]
"""
import argparse, hashlib, http.client, json, os, random, re, shutil, signal, socket, sqlite3
import subprocess, sys, tempfile, threading, time, urllib.parse


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, bin_path, env):
        self.port = free_port()
        env = dict(env, TIAKI_LISTEN=f"127.0.0.1:{self.port}")
        self.proc = subprocess.Popen([bin_path, "serve"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the server did not become ready")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def sign_in(port, email, password):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/signin")
    r = c.getresponse()
    page = r.read().decode()
    cookies = {}
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, val = v.split(";")[0].split("=", 1)
            cookies[name] = val
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "email": email, "password": password})
    c.request("POST", "/signin", body, {"Content-Type": "application/x-www-form-urlencoded",
                                         "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    r = c.getresponse()
    r.read()
    for k, v in r.getheaders():
        if k.lower() == "set-cookie":
            name, val = v.split(";")[0].split("=", 1)
            cookies[name] = val
    if r.status != 303:
        raise SystemExit(f"sign-in failed: {r.status}")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def document(rng, n):
    size = rng.choice([rng.randint(10, 2000), rng.randint(2000, 70000), rng.randint(65536, 400000)])
    head = f"%PDF-1.7\n% crash test upload {n}\n".encode()
    body = rng.randbytes(max(0, size - len(head)))
    return head + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--uploads", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--workers", type=int, default=4)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    data = tempfile.mkdtemp(prefix="tiaki-crash-")
    env = dict(os.environ, TIAKI_DATA_DIR=data, TIAKI_LOG="error")
    env.pop("TIAKI_DATABASE_URL", None)
    demo = subprocess.run([a.bin, "demo"], env=env, capture_output=True, text=True)
    if demo.returncode != 0:
        raise SystemExit(demo.stderr)
    m = re.search(r"patient, NHI (\w+)\)\s+(\S+@\S+)\s+(\S+)", demo.stderr)
    email, password = m.group(2), m.group(3)

    attempted, acked, lost_in_flight, kills = 0, {}, 0, 0
    lock = threading.Lock()
    patient = None
    cookie = None
    started = time.time()
    while attempted < a.uploads:
        server = Server(a.bin, env)
        if cookie is None:
            cookie = sign_in(server.port, email, password)
            c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            c.request("GET", "/api/v1/me", headers={"Cookie": cookie})
            patient = json.loads(c.getresponse().read())["patient"]
        stop = threading.Event()

        def worker(wid):
            nonlocal attempted, lost_in_flight
            wrng = random.Random(rng.random())
            while not stop.is_set():
                with lock:
                    if attempted >= a.uploads:
                        return
                    attempted += 1
                    n = attempted
                doc = document(wrng, n)
                try:
                    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                    c.request("POST", f"/api/v1/patients/{patient}/documents?filename=crash-{n}.pdf", doc,
                              {"Content-Type": "application/pdf", "Cookie": cookie})
                    r = c.getresponse()
                    body = r.read()
                    if r.status == 201:
                        with lock:
                            acked[json.loads(body)["id"]] = hashlib.sha256(doc).hexdigest()
                    elif r.status >= 500 or r.status == 503:
                        with lock:
                            lost_in_flight += 1
                    else:
                        raise SystemExit(f"upload {n}: unexpected {r.status} {body[:200]!r}")
                except (OSError, http.client.HTTPException):
                    with lock:
                        lost_in_flight += 1
                    return

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.workers)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.02, 0.35))
        server.kill()
        kills += 1
        stop.set()
        for t in threads:
            t.join()

    # Sweep with nothing in flight, then check everything.
    sweep = subprocess.run([a.bin, "documents", "sweep", "--grace-minutes", "0"], env=env, capture_output=True,
                           text=True)
    if sweep.returncode != 0:
        raise SystemExit(sweep.stderr)
    swept = sweep.stderr.strip()
    server = Server(a.bin, env)
    bad = 0
    for doc_id, digest in acked.items():
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        c.request("GET", f"/api/v1/documents/{doc_id}/content", headers={"Cookie": cookie})
        r = c.getresponse()
        got = r.read()
        if r.status != 200 or hashlib.sha256(got).hexdigest() != digest:
            bad += 1
            print(f"acknowledged document {doc_id} is not intact: {r.status}", file=sys.stderr)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait()
    db = sqlite3.connect(os.path.join(data, "tiaki.db"))
    rows = {k for (k,) in db.execute("SELECT blob_key FROM documents WHERE deleted_at IS NULL AND withdrawn_at IS NULL")}
    intents = db.execute("SELECT COUNT(*) FROM blob_intents").fetchone()[0]
    stored = db.execute("SELECT COUNT(*) FROM documents WHERE category = 'patient_upload'").fetchone()[0]
    blob_root = os.path.join(data, "blobs")
    blobs = set()
    for root, _, files in os.walk(blob_root):
        for f in files:
            blobs.add(os.path.relpath(os.path.join(root, f), blob_root))
    orphans = blobs - rows
    missing = rows - blobs
    print(f"crash test (seed {a.seed}): {attempted} uploads attempted over {kills} SIGKILLs in "
          f"{time.time() - started:.0f}s; {len(acked)} acknowledged, {lost_in_flight} cut off in flight; "
          f"{stored} stored; {len(acked) - bad}/{len(acked)} acknowledged documents intact; sweep: {swept}; "
          f"orphan blobs left: {len(orphans)}; rows without a blob: {len(missing)}; intents left: {intents}")
    for o in sorted(orphans)[:5]:
        print(f"  orphan: {o}", file=sys.stderr)
    shutil.rmtree(data, ignore_errors=True)
    if bad or orphans or missing or intents or len(acked) == 0 or stored < len(acked):
        raise SystemExit("FAILED")


if __name__ == "__main__":
    main()
