#!/usr/bin/env python3
"""Crash test for document uploads: SIGKILL the server at random moments while uploads run.

Starts `tiaki serve` on fresh storage (demo patients), runs concurrent uploads through the API,
kills the server with SIGKILL at a random moment, restarts it, and repeats until at least
--uploads uploads have been attempted. Then it sweeps orphans with `tiaki documents sweep
--grace-minutes 0` (the server is stopped, so nothing is in flight) and checks that:
  * no worker met anything but a 201 or a connection cut by the kill (any other answer, 4xx or
    5xx, or an exception in a worker fails the run from the main thread, with the list);
  * every document row the uploads stored, acknowledged or not, downloads completely (the whole
    body, as long as its Content-Length) and byte-for-byte equal to the payload sent for it (each
    upload carries its number in its file name and its first line, so a row is tied to exactly
    one payload), and no upload was stored twice;
  * every upload the server acknowledged (201) is stored, under the id it answered;
  * every live document row has its blob, and no blob is left without a row;
  * no blob intent is left.
Prints the numbers. Exits non-zero on any failure.

Storage: SQLite + a blob folder in a temporary data folder by default. With --postgres URL, a
fresh database is made on that server for the run (and dropped after); with --s3 ENDPOINT, a
fresh bucket is made on that S3-compatible server (and emptied and removed after); credentials
from --s3-access-key/--s3-secret-key or TIAKI_TEST_S3_ACCESS_KEY/TIAKI_TEST_S3_SECRET_KEY.
Needs only the Python standard library, and `psql` for PostgreSQL.

--inject-worker-failure (or TIAKI_CRASH_INJECT=1) sends one upload to a patient that does not
exist, to show that a worker's unexpected answer fails the run.

Usage: scripts/crash-test.py --bin target/debug/tiaki [--uploads 1000] [--seed N]
           [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--s3 http://127.0.0.1:9000]
"""
import argparse, concurrent.futures, datetime, hashlib, hmac, http.client, json, os, random, re
import shutil, signal, socket, sqlite3, subprocess, sys, tempfile, threading, time, traceback
import urllib.parse, uuid
import xml.etree.ElementTree as ET

import portal_http
from portal_http import free_port


class Failed(Exception):
    """A check failed; the message says which."""


class Server:
    def __init__(self, bin_path, env, log_path):
        self.port = free_port()
        env = dict(env, TIAKI_LISTEN=f"127.0.0.1:{self.port}")
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([bin_path, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        if portal_http.ready(self.port, self.proc):
            return
        self.stop(signal.SIGKILL)
        raise Failed(f"the server did not become ready; its log ends:\n{portal_http.log_tail(log_path)}")

    def stop(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait()
        self.log.close()


def sign_in(port, email, password):
    try:
        cookies = portal_http.sign_in(port, email, password)
    except RuntimeError as e:
        raise Failed(str(e)) from e
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def listed_names(port, patient, cookie):
    """Every document in the patient's list, id -> file name, page by page."""
    names, page = {}, 1
    while True:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", f"/api/v1/patients/{patient}/documents?page={page}", headers={"Cookie": cookie})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise Failed(f"listing the documents answered {r.status}: {body[:300]!r}")
        docs = json.loads(body)
        names.update((d["id"], d["filename"]) for d in docs)
        total = int(r.getheader("X-Total-Count") or 0)
        if not docs or len(names) >= total:
            return names
        page += 1


def document(seed, n):
    """Upload n's payload, made again from its seed whenever it is needed."""
    rng = random.Random(seed)
    size = rng.choice([rng.randint(10, 2000), rng.randint(2000, 70000), rng.randint(65536, 400000)])
    head = f"%PDF-1.7\n% crash test upload {n}\n".encode()
    return head + rng.randbytes(max(0, size - len(head)))


FILENAME = re.compile(r"crash-(\d+)\.pdf")


# --- storage -----------------------------------------------------------------------------------

class SqliteDb:
    id_sql = "lower(hex(id))"

    def __init__(self, path):
        self.path = path

    def rows(self, sql):
        db = sqlite3.connect(self.path)
        try:
            return [tuple("" if v is None else str(v) for v in row) for row in db.execute(sql)]
        finally:
            db.close()


class PostgresDb:
    id_sql = "replace(id::text, '-', '')"

    def __init__(self, url):
        self.url = url

    def rows(self, sql):
        out = subprocess.run(["psql", self.url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed(f"psql failed on {sql!r}: {out.stderr.strip()}")
        return [tuple(line.split("\x1f")) for line in out.stdout.splitlines() if line]


def psql_admin(url, sql):
    out = subprocess.run(["psql", url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise Failed(f"psql failed on {sql!r}: {out.stderr.strip()}")


class S3:
    """Just enough of S3 (path-style, SigV4, standard library only) for a bucket of our own."""

    def __init__(self, endpoint, access_key, secret_key, bucket, region="us-east-1"):
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme != "http":
            raise Failed(f"--s3 wants an http:// endpoint (the local test server), not {endpoint!r}")
        self.endpoint, self.host, self.port = endpoint.rstrip("/"), u.hostname, u.port or 80
        self.netloc = u.netloc
        self.access_key, self.secret_key, self.bucket, self.region = access_key, secret_key, bucket, region

    def request(self, method, key="", query=None, body=b"", now=None):
        path = "/" + self.bucket + ("/" + urllib.parse.quote(key, safe="/-_.~") if key else "")
        q = sorted((query or {}).items())
        qs = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in q)
        headers = self.sign(method, path, qs, body, now or datetime.datetime.now(datetime.timezone.utc))
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        c.request(method, path + ("?" + qs if qs else ""), body, headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def sign(self, method, path, qs, body, now, extra=None):
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        h = {"host": self.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date, **(extra or {})}
        names = sorted(h)
        canonical = "\n".join([method, path, qs, "".join(f"{k}:{h[k].strip()}\n" for k in names), ";".join(names),
                               payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + self.secret_key).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        h["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                              f"SignedHeaders={';'.join(names)}, Signature={sig}")
        h["Host"] = h.pop("host")  # sent as signed (http.client would drop a :80)
        return h

    def create_bucket(self):
        status, data = self.request("PUT")
        if not 200 <= status < 300:
            raise Failed(f"cannot create the bucket {self.bucket} at {self.endpoint}: {status} {data[:300]!r}")

    def keys(self):
        keys, token = [], None
        while True:
            q = {"list-type": "2"}
            if token:
                q["continuation-token"] = token
            status, data = self.request("GET", query=q)
            if status != 200:
                raise Failed(f"cannot list the bucket {self.bucket}: {status} {data[:300]!r}")
            root = ET.fromstring(data)
            ns = {"s3": root.tag.split("}")[0][1:]} if root.tag.startswith("{") else {}
            p = "s3:" if ns else ""
            keys += [e.text for e in root.findall(f"{p}Contents/{p}Key", ns)]
            if root.findtext(f"{p}IsTruncated", "false", ns) != "true":
                return keys
            token = root.findtext(f"{p}NextContinuationToken", None, ns)

    def remove_bucket(self):
        for key in self.keys():
            self.request("DELETE", key)
        status, data = self.request("DELETE")
        if not 200 <= status < 300:
            print(f"warning: could not remove the bucket {self.bucket}: {status} {data[:200]!r}", file=sys.stderr)


def folder_keys(root):
    keys = set()
    for d, _, files in os.walk(root):
        for f in files:
            keys.add(os.path.relpath(os.path.join(d, f), root))
    return keys


# --- the run -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--uploads", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    # One account has at most three uploads arriving at once (a fourth is refused with 429).
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--postgres", metavar="URL",
                    help="a PostgreSQL server (admin URL); a fresh database is made there for the run")
    ap.add_argument("--s3", metavar="ENDPOINT", help="an S3-compatible server (http://); a fresh bucket is made there")
    ap.add_argument("--s3-access-key", default=os.environ.get("TIAKI_TEST_S3_ACCESS_KEY"))
    ap.add_argument("--s3-secret-key", default=os.environ.get("TIAKI_TEST_S3_SECRET_KEY"))
    ap.add_argument("--inject-worker-failure", action="store_true",
                    default=os.environ.get("TIAKI_CRASH_INJECT", "") not in ("", "0"),
                    help="send one upload to a patient that does not exist (shows that the run then fails)")
    a = ap.parse_args()
    if a.s3 and not (a.s3_access_key and a.s3_secret_key):
        ap.error("--s3 needs --s3-access-key and --s3-secret-key (or TIAKI_TEST_S3_ACCESS_KEY/SECRET_KEY)")

    label = f"{'PostgreSQL' if a.postgres else 'SQLite'} + {'S3' if a.s3 else 'folder'}"
    data = tempfile.mkdtemp(prefix="tiaki-crash-")
    run_id = uuid.uuid4().hex[:12]
    cleanup = []
    try:
        ok = run(a, label, data, run_id, cleanup)
    except Failed as e:
        print(f"crash test ({label}, seed {a.seed}) FAILED: {e}", file=sys.stderr)
        ok = False
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as e:  # cleanup must not hide the verdict
                print(f"warning: cleanup failed: {e}", file=sys.stderr)
        shutil.rmtree(data, ignore_errors=True)
    sys.exit(0 if ok else 1)


def run(a, label, data, run_id, cleanup):
    rng = random.Random(a.seed)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIAKI_")}
    # One patient takes every upload: lift the per-patient document cap for the run.
    env.update(TIAKI_DATA_DIR=data, TIAKI_LOG="error", TIAKI_MAX_DOCUMENTS_PER_PATIENT="10000")
    log = os.path.join(data, "server.log")

    if a.postgres:
        name = f"tiaki_crash_{run_id}"
        psql_admin(a.postgres, f"CREATE DATABASE {name}")
        cleanup.append(lambda: psql_admin(a.postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        u = urllib.parse.urlsplit(a.postgres)
        env["TIAKI_DATABASE_URL"] = urllib.parse.urlunsplit(u._replace(path="/" + name))
        db = PostgresDb(env["TIAKI_DATABASE_URL"])
    else:
        db = SqliteDb(os.path.join(data, "tiaki.db"))
    if a.s3:
        s3 = S3(a.s3, a.s3_access_key, a.s3_secret_key, f"tiaki-crash-{run_id}")
        s3.create_bucket()
        cleanup.append(s3.remove_bucket)
        env.update(TIAKI_BLOB_STORE="s3", TIAKI_S3_BUCKET=s3.bucket, TIAKI_S3_ENDPOINT=s3.endpoint,
                   TIAKI_S3_REGION=s3.region, TIAKI_S3_ACCESS_KEY_ID=s3.access_key,
                   TIAKI_S3_SECRET_ACCESS_KEY=s3.secret_key)
        blob_keys = lambda: set(s3.keys())
    else:
        blob_keys = lambda: folder_keys(os.path.join(data, "blobs"))

    for cmd in (["migrate"], ["demo"]):
        out = subprocess.run([a.bin, *cmd], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed(f"tiaki {cmd[0]} failed:\n{out.stderr}")
    m = re.search(r"patient, NHI (\w+)\)\s+(\S+@\S+)\s+(\S+)", out.stderr)
    if not m:
        raise Failed(f"no demo patient in the output of tiaki demo:\n{out.stderr}")
    email, password = m.group(2), m.group(3)
    before = {r[0] for r in db.rows(f"SELECT {db.id_sql} FROM documents")}

    attempted, lost_in_flight, kills = 0, 0, 0
    seeds = {}  # upload number -> the seed its payload is made from
    acked = {}  # document id -> upload number
    errors = []  # what went wrong in the workers; the main thread fails the run on it
    lock = threading.Lock()
    inject = {"pending": a.inject_worker_failure}
    patient = cookie = None
    started = time.time()
    while attempted < a.uploads and not errors:
        server = Server(a.bin, env, log)
        try:
            if cookie is None:
                cookie = sign_in(server.port, email, password)
                c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                c.request("GET", "/api/v1/me", headers={"Cookie": cookie})
                patient = json.loads(c.getresponse().read())["patient"]
        except BaseException:
            server.stop(signal.SIGKILL)
            raise
        stop = threading.Event()

        def worker(wid, wseed):
            nonlocal attempted, lost_in_flight
            wrng = random.Random(wseed)
            n = None
            try:
                while not stop.is_set():
                    with lock:
                        if attempted >= a.uploads or errors:
                            return
                        attempted += 1
                        n = attempted
                        seeds[n] = seed = wrng.getrandbits(64)
                        target = patient
                        if inject["pending"]:
                            inject["pending"] = False
                            target = str(uuid.uuid4())  # injected: a patient that does not exist
                    doc = document(seed, n)
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                        c.request("POST", f"/api/v1/patients/{target}/documents?filename=crash-{n}.pdf", doc,
                                  {"Content-Type": "application/pdf", "Cookie": cookie})
                        r = c.getresponse()
                        body = r.read()
                    except (OSError, http.client.HTTPException):
                        # Cut off by the kill (or refused after it): this worker's round is over.
                        with lock:
                            lost_in_flight += 1
                            if target != patient:
                                inject["pending"] = True  # the injection never got an answer; try again
                        return
                    if r.status == 201:
                        doc_id = json.loads(body)["id"]
                        with lock:
                            acked[doc_id] = n
                    else:  # a 4xx or a 5xx: a killed server answers nothing, so this is a bug
                        with lock:
                            errors.append(f"worker {wid}, upload {n}: unexpected {r.status} {body[:200]!r}")
                        return
            except Exception as e:
                with lock:
                    errors.append(f"worker {wid}, upload {n}: {type(e).__name__}: {e}\n"
                                  + "".join(traceback.format_exc(limit=3)))

        threads = [threading.Thread(target=worker, args=(i, rng.getrandbits(64))) for i in range(a.workers)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.02, 0.35))
        server.stop(signal.SIGKILL)
        kills += 1
        stop.set()
        for t in threads:
            t.join()
    if errors:
        raise Failed(f"{len(errors)} worker error(s) after {attempted} uploads:\n  " + "\n  ".join(errors))

    # Sweep with nothing in flight, then check everything.
    sweep = subprocess.run([a.bin, "documents", "sweep", "--grace-minutes", "0"], env=env, capture_output=True,
                           text=True)
    if sweep.returncode != 0:
        raise Failed(f"the sweep failed:\n{sweep.stderr}")
    swept = sweep.stderr.strip()

    problems = []
    # File names are sealed in the database: the portal's own list tells them (a page at a time).
    server = Server(a.bin, env, log)
    try:
        names = listed_names(server.port, patient, cookie)
    finally:
        server.stop(signal.SIGTERM)
    rows = db.rows(f"SELECT {db.id_sql}, size, category, deleted_at, withdrawn_at FROM documents")
    new = [r for r in rows if r[0] not in before]
    live_keys = {k for (k,) in db.rows("SELECT blob_key FROM documents WHERE deleted_at IS NULL "
                                       "AND withdrawn_at IS NULL")}
    intents = int(db.rows("SELECT COUNT(*) FROM blob_intents")[0][0])
    stored = {}  # document id -> upload number
    by_number = {}
    for hex_id, size, category, deleted_at, withdrawn_at in new:
        doc_id = str(uuid.UUID(hex=hex_id))
        filename = names.get(doc_id, "(not in the patient's list)")
        m = FILENAME.fullmatch(filename)
        if not m or int(m.group(1)) not in seeds:
            problems.append(f"document {doc_id}: file name {filename!r} is no upload of this run")
            continue
        n = int(m.group(1))
        if category != "patient_upload" or deleted_at or withdrawn_at:
            problems.append(f"document {doc_id} (upload {n}): category {category}, deleted {deleted_at or '-'}, "
                            f"withdrawn {withdrawn_at or '-'}")
        if n in by_number:
            problems.append(f"upload {n} is stored twice: {by_number[n]} and {doc_id}")
        by_number[n] = doc_id
        stored[doc_id] = (n, int(size))
    for doc_id, n in acked.items():
        if stored.get(doc_id, (None,))[0] != n:
            problems.append(f"acknowledged upload {n} ({doc_id}) is not stored as such")

    server = Server(a.bin, env, log)
    try:
        def check(item):
            doc_id, (n, size) = item
            want = document(seeds[n], n)
            try:
                c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                c.request("GET", f"/api/v1/documents/{doc_id}/content", headers={"Cookie": cookie})
                r = c.getresponse()
                got = r.read()  # raises IncompleteRead if the body breaks off mid-stream
                c.close()
            except (OSError, http.client.HTTPException) as e:
                return f"upload {n} ({doc_id}): the download failed: {type(e).__name__}: {e}"
            if r.status != 200:
                return f"upload {n} ({doc_id}): download answered {r.status} {got[:200]!r}"
            length = r.getheader("Content-Length")
            if length is None or int(length) != len(got):
                return f"upload {n} ({doc_id}): Content-Length {length} but {len(got)} bytes arrived"
            if got != want or size != len(want):
                at = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
                return (f"upload {n} ({doc_id}): {len(got)} bytes (row says {size}) differ from the "
                        f"{len(want)} sent, first at byte {at}")
            return None

        with concurrent.futures.ThreadPoolExecutor(a.workers) as pool:
            bad = [p for p in pool.map(check, sorted(stored.items(), key=lambda i: i[1][0])) if p]
    finally:
        server.stop(signal.SIGTERM)
    problems += bad
    blobs = blob_keys()
    orphans, missing = blobs - live_keys, live_keys - blobs
    problems += [f"orphan blob: {k}" for k in sorted(orphans)]
    problems += [f"row without a blob: {k}" for k in sorted(missing)]
    if intents:
        problems.append(f"{intents} blob intents left")
    if not acked:
        problems.append("no upload was acknowledged")

    unacked = len(stored) - len([d for d in acked if d in stored])
    print(f"crash test ({label}, seed {a.seed}): {attempted} uploads attempted over {kills} SIGKILLs in "
          f"{time.time() - started:.0f}s; {len(acked)} acknowledged, {lost_in_flight} cut off in flight; "
          f"{len(stored)} stored ({unacked} never acknowledged); "
          f"{len(stored) - len(bad)}/{len(stored)} stored documents intact; sweep: {swept}; "
          f"orphan blobs left: {len(orphans)}; rows without a blob: {len(missing)}; intents left: {intents}")
    if problems:
        shown = problems[:50]
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise Failed(f"{len(problems)} problem(s):\n  " + "\n  ".join(shown) + more)
    return True


if __name__ == "__main__":
    main()
