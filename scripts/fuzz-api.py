#!/usr/bin/env python3
"""The API under a fuzzer: schemathesis against a running portal's /api/openapi.json.

Starts `tiaki serve` on fresh storage with the demo data, then runs schemathesis (property-based,
coverage and stateful phases, valid and invalid data, every check) twice: signed in as a demo
patient (session cookie) and as a practice's API client (bearer token). Any failure — a 5xx, a
response that does not match the schema, invalid data accepted, valid data refused — fails the
run. Prints the number of generated test cases for each.

Usage: scripts/fuzz-api.py --bin target/debug/tiaki --st PATH/TO/st [--examples 25] [--seed 42]
"""
import argparse, http.client, json, os, re, shutil, signal, subprocess, sys, tempfile, time

import portal_http
from portal_http import free_port


# The demo practice's HPI facility id (`tiaki demo`).
DEMO_PRACTICE = "FZZ999-B"


class Failed(Exception):
    """A step failed; the message says which."""


def wait_ready(port, proc, log_path):
    if not portal_http.ready(port, proc):
        raise Failed(f"the portal did not become ready; its log ends:\n{portal_http.log_tail(log_path)}")


def sign_in(port, email, password):
    """The session cookie of a password sign-in (the demo patients have no second factor)."""
    try:
        return f"tiaki_session={portal_http.sign_in(port, email, password)['tiaki_session']}"
    except RuntimeError as e:
        raise Failed(str(e)) from e


def get_json(port, path, header):
    name, value = header.split(": ", 1)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={name: value})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise Failed(f"GET {path} answered {r.status}: {body[:300]!r}")
    return json.loads(body)


def fuzz(st, port, label, header, examples, seed, workdir, parameters, extra=()):
    """One schemathesis run; returns the number of generated cases. Raises on any failure.
    `parameters` fixes path parameters to real objects (the patient's own record and document),
    so that the generated requests reach the handlers rather than stopping at 404."""
    base = f"http://127.0.0.1:{port}"
    slug = re.sub(r"[^a-z]+", "-", label.lower()).strip("-")
    log_path = os.path.join(workdir, f"schemathesis-{slug}.log")
    config = os.path.join(workdir, f"schemathesis-{slug}.toml")
    with open(config, "w") as f:
        f.write("[parameters]\n")
        for k, v in parameters.items():
            f.write(f'"{k}" = "{v}"\n')

    cmd = [
        st, "--config-file", config, "run", f"{base}/api/openapi.json", "--url", base, "--wait-for-schema", "30",
        "-H", header,
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--mode", "all",
        "--max-examples", str(examples),
        "--seed", str(seed), "--workers", "1", "--no-color", "--request-timeout", "20",
        *extra,
    ]
    print(f"\n--- schemathesis as {label} ---", flush=True)
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=1500)
    with open(log_path) as f:
        text = f.read()
    m = re.search(r"^Test cases:\s*\n\s*(.+)$", text, re.M)
    summary = m.group(1).strip() if m else "(no summary)"
    generated = re.search(r"(\d+) generated", summary)
    print(f"{label}: {summary}", flush=True)
    if proc.returncode != 0:
        print(text[-20000:])
        raise Failed(f"schemathesis found problems as {label} (exit {proc.returncode}); the report is above")
    return int(generated.group(1)) if generated else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--st", required=True)
    ap.add_argument("--examples", type=int, default=25)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tiaki-fuzz-")
    data = os.path.join(work, "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIAKI_")}
    env.update(TIAKI_DATA_DIR=data, TIAKI_LOG="warn")
    proc = None
    try:
        out = subprocess.run([a.bin, "demo"], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed(f"tiaki demo failed:\n{out.stderr}")
        m = re.search(r"patient, NHI (\w+)\)\s+(\S+@\S+)\s+(\S+)", out.stderr)
        if not m:
            raise Failed(f"no demo patient in the output of tiaki demo:\n{out.stderr}")
        email, password = m.group(2), m.group(3)
        client = subprocess.run(
            [a.bin, "admin", "create-client", "--practice", DEMO_PRACTICE, "--label", "Fuzzing PMS",
             "--org-name", "Fuzzing practice system", "--records", "--appointments"],
            env=env, capture_output=True, text=True)
        if client.returncode != 0:
            raise Failed(f"tiaki admin create-client failed:\n{client.stderr}")
        token = client.stdout.strip().splitlines()[-1]
        port = free_port()
        log_path = os.path.join(work, "portal.log")
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([a.bin, "serve"], env=dict(env, TIAKI_LISTEN=f"127.0.0.1:{port}"),
                                    stdout=subprocess.DEVNULL, stderr=log)
        wait_ready(port, proc, log_path)
        cookie = f"Cookie: {sign_in(port, email, password)}"
        patient = get_json(port, "/api/v1/me", cookie)["patient"]
        documents = get_json(port, f"/api/v1/patients/{patient}/documents", cookie)
        records = get_json(port, f"/api/v1/patients/{patient}/records", cookie)
        own = {"path.patient_id": patient, "path.document_id": documents[0]["id"],
               "path.record_id": records["entry"][0]["resource"]["id"]}
        total = fuzz(a.st, port, "a patient", cookie, a.examples, a.seed, work, own)
        # A push's metadata is JSON inside a multipart part, so any text is schema-valid there;
        # the portal checks it (an NHI's check digit, a date in the past) and answers 422, rightly.
        # Every other check applies.
        total += fuzz(a.st, port, "a practice's API client", f"Authorization: Bearer {token}", a.examples,
                      a.seed, work, own, ("--exclude-checks", "positive_data_acceptance"))
        print(f"\nschemathesis: {total} generated test cases, 0 failures.")
    except Failed as e:
        print(f"\nAPI fuzzing FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
