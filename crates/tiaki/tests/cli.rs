//! The `tiaki` binary as an operator uses it: help, first start, configuration errors,
//! migrate/demo/admin on the same data, HTTPS, graceful shutdown, and `PostgreSQL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tiaki");

struct TempDir(PathBuf);
impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("tiaki-cli-{}-{}", std::process::id(), rand_suffix()));
        Self(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().concat()
}

fn tiaki(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("TIAKI_SMTP_URL").env_remove("TIAKI_DATABASE_URL");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut c = Command::new(BIN);
        c.arg("serve")
            .env_remove("TIAKI_SMTP_URL")
            .env_remove("TIAKI_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut s = Self { child, lines, log: Vec::new() };
        s.wait_for("listening on");
        s
    }

    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.log.push(l),
                Err(e) => panic!("server never printed {needle:?} ({e}); it printed:\n{}", self.log.join("\n")),
            }
        }
    }

    /// The next one-time code the server prints (on a line of its own).
    fn wait_for_code(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(code) = self.log.iter().find_map(|l| code_of(l)) {
                return code;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.log.push(l),
                Err(e) => panic!("server never printed a code ({e}); it printed:\n{}", self.log.join("\n")),
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Fetches the sign-in page for its pre-session cookie and CSRF token, then posts a sign-in.
fn sign_in_over_http(port: u16, email: &str, password: &str) -> String {
    let page = http_get(port, "/signin");
    let cookie = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: tiaki_pre="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let marker = "name=\"csrf\" value=\"";
    let csrf = page[page.find(marker).unwrap() + marker.len()..].split('"').next().unwrap().to_owned();
    let body = format!("csrf={csrf}&email={email}&password={password}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: tiaki_pre={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn help_explains_every_subcommand() {
    let out = tiaki(&["--help"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "demo",
        "admin",
        "keys",
        "documents",
        "incident",
        "TIAKI_BLOB_STORE",
        "TIAKI_DATA_DIR",
        "TIAKI_DATABASE_URL",
        "TIAKI_LISTEN",
        "TIAKI_PUBLIC_URL",
    ] {
        assert!(text.contains(word), "--help mentions {word}");
    }
    let admin = String::from_utf8_lossy(&tiaki(&["admin", "--help"], &[]).stdout).into_owned();
    for word in ["create-operator", "create-practice", "invite-staff", "create-client", "agree-to-receive"] {
        assert!(admin.contains(word), "admin --help mentions {word}");
    }
    for sub in [vec!["serve", "--help"], vec!["demo", "--help"], vec!["admin", "invite-staff", "--help"]] {
        let out = tiaki(&sub, &[]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{sub:?}");
    }
}

#[test]
fn first_start_creates_private_data_prints_a_code_serves_and_stops_gracefully() {
    let dir = TempDir::new();
    let data = dir.0.join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Server::start(&[("TIAKI_DATA_DIR", data.to_str().unwrap()), ("TIAKI_LISTEN", &listen)]);
    let told = server.wait_for("/activate and type this one-time code");
    assert!(told.contains(&format!("open http://{listen}/activate and type")), "{told}");
    let link = server.wait_for_code();
    server.wait_for("mail is written as .eml files");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(std::fs::metadata(data.join("master.key")).unwrap().len(), 32);
    assert!(data.join("tiaki.db").exists());
    assert_eq!(mode(&data.join("tiaki.db")), 0o600, "the database is the portal user's alone");
    assert_eq!(mode(&data.join("mail")), 0o700, "so is the mail folder, which holds live codes");
    assert!(http_get(port, "/healthz").ends_with("ok"));
    let ready = http_get(port, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200") && ready.contains("database: ok"));
    let metrics = http_get(port, "/metrics");
    assert!(metrics.contains("tiaki_http_requests_total"), "{metrics}");
    // Sign-ins are counted by outcome.
    let refused = sign_in_over_http(port, "nobody%40example.nz", "not+the+password");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let metrics = http_get(port, "/metrics");
    assert!(metrics.contains("tiaki_sign_in_total{outcome=\"failed\"} 1"), "{metrics}");
    assert!(metrics.contains("tiaki_sign_in_under_attack 0"), "{metrics}");
    // JSON logs with a request id, and not the code in them.
    let token = link.clone();
    let request_log = server.wait_for("\"route\":\"/readyz\"");
    let json: serde_json::Value = serde_json::from_str(&request_log).unwrap();
    assert!(json["span"]["request_id"].as_str().is_some_and(|s| s.len() == 36), "{request_log}");
    assert!(server.log.iter().filter(|l| l.starts_with('{')).all(|l| !l.contains(&token)));
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits cleanly: {status:?}");
    // The key survives restarts unchanged; the link is printed once (review #25), a restart only
    // says it still works, and a lost one is replaced on request.
    let key = std::fs::read(data.join("master.key")).unwrap();
    let mut again = Server::start(&[("TIAKI_DATA_DIR", data.to_str().unwrap()), ("TIAKI_LISTEN", &listen)]);
    again.wait_for("first-operator-link");
    assert!(again.log.iter().all(|l| code_of(l).is_none()), "no code at the second start");
    assert_eq!(std::fs::read(data.join("master.key")).unwrap(), key);
    again.terminate();
    let out = tiaki(
        &["admin", "first-operator-link"],
        &[("TIAKI_DATA_DIR", data.to_str().unwrap()), ("TIAKI_LISTEN", &listen)],
    );
    let second = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(out.status.success() && code_of(&second).is_some() && second != link, "{second}");
}

/// Review #19: a data folder that already existed readable by others (made by hand, or by an
/// installer), and a database file someone opened up, are made private at start.
#[test]
fn an_existing_data_folder_and_database_are_made_private_at_start() {
    let dir = TempDir::new();
    let d = dir.0.to_str().unwrap();
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = tiaki(&["migrate"], &[("TIAKI_DATA_DIR", d)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&dir.0), 0o700);
    assert_eq!(mode(&dir.0.join("tiaki.db")), 0o600);
    std::fs::set_permissions(dir.0.join("tiaki.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = tiaki(&["migrate"], &[("TIAKI_DATA_DIR", d)]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("private to this user"));
    assert_eq!(mode(&dir.0.join("tiaki.db")), 0o600);
}

#[test]
fn bad_configuration_is_explained_without_printing_secrets() {
    let dir = TempDir::new();
    let d = dir.0.to_str().unwrap();
    let out = tiaki(&["migrate"], &[("TIAKI_DATA_DIR", d), ("TIAKI_LISTEN", "nowhere")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TIAKI_LISTEN"));
    let out = tiaki(&["migrate"], &[("TIAKI_DATA_DIR", d), ("TIAKI_DATABASE_URL", "mysql://user:hunter2@db/x")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("TIAKI_DATABASE_URL") && !err.contains("hunter2"), "{err}");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("tiaki.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
    let out = tiaki(&["--config", file.to_str().unwrap(), "migrate"], &[("TIAKI_DATA_DIR", d)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("listen_port"), "{err}");
    // A key file others can read is refused with the fix.
    let data = dir.0.join("data");
    assert!(tiaki(&["migrate"], &[("TIAKI_DATA_DIR", data.to_str().unwrap())]).status.success());
    std::fs::set_permissions(data.join("master.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = tiaki(&["migrate"], &[("TIAKI_DATA_DIR", data.to_str().unwrap())]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    std::fs::set_permissions(data.join("master.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // Review #25: a breached-password list that cannot be read stops the start (it is not
    // skipped), saying which setting to fix.
    let missing = dir.0.join("no-such-list.txt");
    let env = [("TIAKI_DATA_DIR", data.to_str().unwrap()), ("TIAKI_BREACHED_PASSWORDS", missing.to_str().unwrap())];
    let out = tiaki(&["migrate"], &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("TIAKI_BREACHED_PASSWORDS"), "{err}");
}

#[test]
fn migrate_demo_and_admin_work_on_the_same_data() {
    let dir = TempDir::new();
    let d = dir.0.to_str().unwrap();
    assert!(tiaki(&["migrate"], &[("TIAKI_DATA_DIR", d)]).status.success());
    let out = tiaki(&["demo"], &[("TIAKI_DATA_DIR", d)]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for who in ["admin@kowhai.example.nz", "gp@kowhai.example.nz", "hemi@example.nz", "ZZZ0016"] {
        assert!(text.contains(who), "demo prints how to sign in as {who}");
    }
    let again = tiaki(&["demo"], &[("TIAKI_DATA_DIR", d)]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already"));
    // The demo practice's GP and nurse have four weeks of slots (weekdays from 8:30, with public
    // holidays off; a New Zealand day is a UTC day shifted by 12 hours for these hours, in
    // either season); each demo patient has repeat-eligible medications and one past request.
    let days = sqlite(
        &dir.0,
        "SELECT COUNT(DISTINCT schedule_id || ':' || CAST((starts_at + 43200) / 86400 AS TEXT)) FROM slots WHERE status = 'free'",
    );
    let days: i64 = days.parse().unwrap();
    assert!((2 * 17..=2 * 21).contains(&days), "about four weeks of weekdays for two clinicians: {days}");
    for statement in [
        "SELECT COUNT(DISTINCT patient_id) FROM repeat_medications WHERE excluded = 0",
        "SELECT COUNT(DISTINCT patient_id) FROM repeat_requests WHERE status = 'approved'",
    ] {
        assert_eq!(sqlite(&dir.0, statement), "3", "{statement}");
    }
    assert_eq!(sqlite(&dir.0, "SELECT COUNT(*) FROM repeat_requests"), "3", "one past request each");
    let out = tiaki(
        &["admin", "create-operator", "--email", "ops@example.nz", "--name", "Ops Person"],
        &[("TIAKI_DATA_DIR", d)],
    );
    assert!(out.status.success());
    assert!(code_of(&String::from_utf8_lossy(&out.stdout)).is_some(), "the command prints the code");
    let out = tiaki(
        &[
            "admin",
            "invite-staff",
            "--practice",
            "fzz999-b",
            "--name",
            "New Nurse",
            "--email",
            "nn@example.nz",
            "--role",
            "nurse",
        ],
        &[("TIAKI_DATA_DIR", d)],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tiaki(
        &["admin", "invite-staff", "--practice", "FZZ999-B", "--name", "X", "--email", "bad", "--role", "wizard"],
        &[("TIAKI_DATA_DIR", d)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--email") && err.contains("--role"), "{err}");
    let out = tiaki(
        &[
            "admin",
            "invite-staff",
            "--practice",
            "FNO000-X",
            "--name",
            "X",
            "--email",
            "x@example.nz",
            "--role",
            "nurse",
        ],
        &[("TIAKI_DATA_DIR", d)],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no practice has HPI facility id"));

    people_leave_at_the_console(d);

    // Keys: a new master key re-wraps every patient key (the demo's three) without touching a
    // blob; a patient's own key rotates under it; erasure asks for confirmation.
    let env = [("TIAKI_DATA_DIR", d)];
    let blobs_before = files_in(&dir.0.join("blobs"));
    assert_eq!(blobs_before.len(), 12, "the demo's four documents for each of three patients");
    let old_key = std::fs::read(dir.0.join("master.key")).unwrap();
    let out = tiaki(&["keys", "rotate-master"], &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("Re-wrapped 3 patient key(s)"), "{err}");
    assert_ne!(std::fs::read(dir.0.join("master.key")).unwrap(), old_key, "a new master key is in place");
    assert!(!dir.0.join("master.key.next").exists());
    assert_eq!(mode(&dir.0.join("master.key")), 0o600);
    let out = tiaki(&["keys", "rotate-patient", "--nhi", "ZZZ0016"], &env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("4 document key(s) re-wrapped"), "{err}");
    assert_eq!(files_in(&dir.0.join("blobs")), blobs_before, "no blob was rewritten");
    let out = tiaki(&["keys", "erase-patient", "--nhi", "ZZZ0016"], &env);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--yes-destroy-their-documents"));
    erasure_leaves_no_key_behind(&dir.0, d);
    let out = tiaki(&["documents", "unwrap-counts", "--since-minutes", "600"], &env);
    let counts = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && counts.lines().any(|l| l.contains("client:")),
        "the demo's pushes unwrapped keys: {counts}"
    );
    let out = tiaki(&["documents", "sweep"], &env);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Removed 0 blob(s)"));
    // API clients: issued with a token shown once, listed, revoked.
    api_clients_are_issued_scoped_and_revoked(&env);
}

/// API clients: issued with a token shown once, listed, allowed to send records, revoked.
fn api_clients_are_issued_scoped_and_revoked(env: &[(&str, &str)]) {
    let out =
        tiaki(&["admin", "create-client", "--practice", "FZZ999-B", "--label", "PMS", "--org-name", "Kowhai"], env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).trim().starts_with("tiaki_"));
    let list = tiaki(&["admin", "list-clients"], env);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert_eq!(listed.lines().count(), 3, "the demo's two and this one: {listed}");
    // The clients made in one second list in id order: find each by its label.
    let line = |list: &str, label: &str| {
        list.lines().find(|l| l.split('\t').nth(1) == Some(label)).unwrap_or_default().to_owned()
    };
    let id = line(&listed, "PMS").split('\t').next().unwrap().to_owned();
    // Health records: the demo's practice system sends them; this one may once allowed; a
    // hospital's system never (and --records is for a practice's own system only).
    assert!(line(&listed, "Kōwhai PMS (demo)").contains("documents and health records"), "{listed}");
    assert!(line(&listed, "PMS").contains("\tdocuments\t"), "{listed}");
    assert!(tiaki(&["admin", "client-records", "--id", &id], env).status.success());
    assert!(
        String::from_utf8_lossy(&tiaki(&["admin", "list-clients"], env).stdout)
            .lines()
            .any(|l| l.split('\t').nth(1) == Some("PMS") && l.contains("health records"))
    );
    let hospital = line(&listed, "Whangārei Hospital discharges (demo)").split('\t').next().unwrap().to_owned();
    let out = tiaki(&["admin", "client-records", "--id", &hospital], env);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("practice's own system"), "{out:?}");
    let out =
        tiaki(&["admin", "create-client", "--org-id", "G00042-K", "--label", "H", "--org-name", "H", "--records"], env);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--practice"), "{out:?}");
    assert!(tiaki(&["admin", "revoke-client", "--id", &id], env).status.success());
    assert!(String::from_utf8_lossy(&tiaki(&["admin", "list-clients"], env).stdout).contains("revoked"));
}

/// Erasure means unreadable (review #7): after it, the patient's wrapped keys are in neither
/// the database file nor its write-ahead log.
fn erasure_leaves_no_key_behind(dir: &Path, d: &str) {
    let env = [("TIAKI_DATA_DIR", d)];
    let wrapped = sqlite(
        dir,
        "SELECT group_concat(hex(k.wrapped), ',') FROM patient_keys k JOIN patients p ON p.id = k.patient_id \
         WHERE p.nhi = 'ZZZ0016' AND k.wrapped IS NOT NULL",
    );
    let wrapped: Vec<Vec<u8>> = wrapped.split(',').filter(|h| !h.is_empty()).map(unhex).collect();
    assert!(!wrapped.is_empty() && wrapped.iter().all(|w| w.len() >= 32));
    let out = tiaki(&["keys", "erase-patient", "--nhi", "ZZZ0016", "--yes-destroy-their-documents"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key"), "it says when backups stop mattering");
    for file in ["tiaki.db", "tiaki.db-wal"] {
        let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
        for w in &wrapped {
            assert!(!bytes.windows(w.len()).any(|x| x == w.as_slice()), "an erased wrapped key is still in {file}");
        }
    }
}

/// Bytes from hexadecimal.
fn unhex(h: &str) -> Vec<u8> {
    (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect()
}

/// Every file under a folder with its content, sorted.
fn files_in(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn serves_https_directly_with_hsts() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed for this test");
    assert!(ok.success());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.0.join("data");
    let server = Server::start(&[
        ("TIAKI_DATA_DIR", data.to_str().unwrap()),
        ("TIAKI_LISTEN", &listen),
        ("TIAKI_TLS_CERT", cert.to_str().unwrap()),
        ("TIAKI_TLS_KEY", key.to_str().unwrap()),
    ]);
    let out = Command::new("curl")
        .args(["-sS", "-i", "--cacert"])
        .arg(&cert)
        .arg(format!("https://127.0.0.1:{port}/signin"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.to_lowercase().contains("strict-transport-security: max-age="));
    assert!(text.contains("__Host-tiaki_pre=") && text.contains("Secure"), "cookies are __Host- and Secure over HTTPS");
    assert!(server.terminate().success());
}

#[test]
fn the_same_binary_runs_on_postgresql() {
    let admin = std::env::var("TIAKI_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("tiaki_cli_{}", rand_suffix());
    let psql = |sql: &str| {
        Command::new("psql").args([admin.as_str(), "-qc", sql]).output().expect("psql is needed for this test")
    };
    assert!(psql(&format!("CREATE DATABASE {name}")).status.success(), "PostgreSQL must be running");
    let (base, _) = admin.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    let dir = TempDir::new();
    let d = dir.0.to_str().unwrap();
    let env = [("TIAKI_DATA_DIR", d), ("TIAKI_DATABASE_URL", url.as_str())];
    assert!(tiaki(&["migrate"], &env).status.success());
    let out = tiaki(&["demo"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.0.join("tiaki.db").exists(), "nothing went to SQLite");
    let count = Command::new("psql").args([url.as_str(), "-tAc", "SELECT COUNT(*) FROM patients"]).output().unwrap();
    // The three demo patients and the child one of them acts for.
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "4");
    // It serves from PostgreSQL: a demo patient signs in and opens their own record.
    let demo = String::from_utf8_lossy(&out.stderr).into_owned();
    let (email, password) = demo
        .lines()
        .find(|l| l.contains("(patient, NHI"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| w.contains('@'))?;
            Some((words[at].to_owned(), words[at + 1..].join(" ")))
        })
        .unwrap_or_else(|| panic!("demo printed a patient's sign-in: {demo}"));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server =
        Server::start(&[("TIAKI_DATA_DIR", d), ("TIAKI_DATABASE_URL", url.as_str()), ("TIAKI_LISTEN", &listen)]);
    let ready = http_get(port, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200") && ready.contains("database: ok"), "{ready}");
    let form = |s: &str| s.replace('@', "%40").replace(' ', "+");
    let signed_in = sign_in_over_http(port, &form(&email), &form(&password));
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    let home = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("a redirect home: {signed_in}"))
        .trim()
        .to_owned();
    assert!(home.starts_with("/patients/"), "{home}");
    let session = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: tiaki_session="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("a session cookie: {signed_in}"))
        .to_owned();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {home} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: tiaki_session={session}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("NHI number"), "{page}");
    let events = Command::new("psql")
        .args([
            url.as_str(),
            "-tAc",
            "SELECT COUNT(*) FROM audit_events WHERE action = 'read' AND object_type = 'patient'",
        ])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&events.stdout).trim(), "0", "the read is in PostgreSQL's access log");
    assert!(server.terminate().success());
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
}

#[test]
fn audit_verify_passes_on_a_real_log_and_fails_after_tampering() {
    let dir = TempDir::new();
    let d = dir.0.to_str().unwrap();
    assert!(tiaki(&["demo"], &[("TIAKI_DATA_DIR", d)]).status.success());
    let out = tiaki(&["audit", "checkpoint"], &[("TIAKI_DATA_DIR", d)]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("signed a checkpoint"), "{text}");
    assert_eq!(mode(&dir.0.join("audit-signing.key")), 0o600);
    let out = tiaki(&["audit", "verify"], &[("TIAKI_DATA_DIR", d)]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("The access log is intact"), "{text}");
    assert!(text.contains("--log-key"), "it says how to check against a key kept elsewhere");
    // The log's name is stored with it (issue 13, item 5): verify from a shell whose listen
    // address differs from the server's still finds it intact; a configured name that
    // disagrees is refused, saying what to set.
    let out = tiaki(&["audit", "verify"], &[("TIAKI_DATA_DIR", d), ("TIAKI_LISTEN", "127.0.0.1:9")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tiaki(&["audit", "verify"], &[("TIAKI_DATA_DIR", d), ("TIAKI_AUDIT_ORIGIN", "elsewhere.example/audit")]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("created with the origin") && text.contains("TIAKI_AUDIT_ORIGIN="));
    // Export is FHIR.
    let out = tiaki(&["audit", "export", "--from", "2000-01-01", "--to", "2100-01-01"], &[("TIAKI_DATA_DIR", d)]);
    let bundle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert!(bundle["total"].as_u64().unwrap() > 5);
    // Rewrite one event behind Tiaki's back, as an insider with database access could.
    let db = dir.0.join("tiaki.db");
    let py = format!(
        "import sqlite3; c = sqlite3.connect({:?}); c.execute(\"UPDATE audit_events SET actor_account = 'someone-else' WHERE seq = 3\"); c.commit()",
        db.display().to_string()
    );
    assert!(Command::new("python3").args(["-c", &py]).status().unwrap().success());
    let out = tiaki(&["audit", "verify"], &[("TIAKI_DATA_DIR", d)]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify must fail: {text}");
    assert!(text.contains("leaf 3") && text.contains("checkpoint at size"), "the first divergence is named: {text}");
}

/// Runs one statement with Python's sqlite3 on the data folder's database; a query's first
/// value is returned.
fn sqlite(dir: &Path, statement: &str) -> String {
    let db = dir.join("tiaki.db");
    let py = format!(
        "import sqlite3, sys\nc = sqlite3.connect({:?})\nrow = c.execute({statement:?}).fetchone()\nc.commit()\nsys.stdout.write(str(row[0]) if row else '')",
        db.display().to_string()
    );
    let out = Command::new("python3").args(["-c", &py]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Review #6: deleting the newest checkpoints (to rewrite what they covered) is caught by the
/// coverage rule, and by a checkpoint kept outside the database; a forged retention record is
/// caught by its signature.
#[test]
fn verify_catches_a_trimmed_or_rewritten_tail_and_a_forged_retention_record() {
    let tmp = TempDir::new();
    let (dir, d) = (tmp.0.as_path(), tmp.0.to_str().unwrap());
    let env = [("TIAKI_DATA_DIR", d), ("TIAKI_AUDIT_CHECKPOINT_SECONDS", "1")];
    assert!(tiaki(&["demo"], &env).status.success());
    assert!(tiaki(&["audit", "checkpoint"], &env).status.success());
    // More events (an export is recorded), and a newer checkpoint over them, kept outside.
    assert!(tiaki(&["audit", "export", "--from", "2000-01-01", "--to", "2000-01-02"], &env).status.success());
    assert!(tiaki(&["audit", "checkpoint"], &env).status.success());
    let kept = dir.join("kept-checkpoint.txt");
    std::fs::write(&kept, sqlite(dir, "SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1")).unwrap();
    let with_kept = ["audit", "verify", "--checkpoint", kept.to_str().unwrap()];
    let out = tiaki(&with_kept, &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // An insider deletes the newest checkpoint: a few intervals later, verify says so.
    sqlite(dir, "DELETE FROM audit_checkpoints WHERE size = (SELECT MAX(size) FROM audit_checkpoints)");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let out = tiaki(&["audit", "verify"], &env);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("not covered by any signed checkpoint"), "{text}");
    // Against the checkpoint kept outside, a rewritten tail cannot pass.
    sqlite(dir, "UPDATE audit_events SET actor_role = 'operator' WHERE seq = (SELECT MAX(seq) FROM audit_events)");
    let text = String::from_utf8_lossy(&tiaki(&with_kept, &env).stderr).into_owned();
    assert!(text.contains("do not produce the root signed in the checkpoint"), "{text}");
    // A file that is not this log's checkpoint is refused with a clear message.
    std::fs::write(&kept, "not a checkpoint").unwrap();
    let text = String::from_utf8_lossy(&tiaki(&with_kept, &env).stderr).into_owned();
    assert!(text.contains("--checkpoint: the checkpoint file is not a signed checkpoint note"), "{text}");
    // A forged retention record (events "removed after ten years" that never were).
    sqlite(dir, "INSERT INTO audit_pruned (singleton, below, cutoff_ms, pruned_at) VALUES (1, 0, 0, 0)");
    let text = String::from_utf8_lossy(&tiaki(&["audit", "verify"], &env).stderr).into_owned();
    assert!(text.contains("is not signed by this log's key: it was forged or altered"), "{text}");
}

/// Issue 13, item 7: a raw scan of everything the portal keeps on disk after `tiaki demo` (the
/// database and its write-ahead log, the blob folder, the mail folder) finds no document title,
/// author or file name, no document in the clear, and no code that still works.
#[test]
fn a_raw_scan_of_the_data_folder_finds_no_clinical_text_or_live_code() {
    let tmp = TempDir::new();
    let d = tmp.0.to_str().unwrap();
    assert!(tiaki(&["demo"], &[("TIAKI_DATA_DIR", d)]).status.success());
    let files = files_in(&tmp.0);
    assert!(
        files.iter().any(|(p, _)| p.ends_with("tiaki.db"))
            && files.iter().any(|(p, _)| p.starts_with(tmp.0.join("blobs")))
    );
    let needles: [&[u8]; 6] = [
        b"Respiratory clinic letter",
        b"Referral to physiotherapy",
        b"Peak flow chart",
        b"Dr Lena Fischer",
        b"pulmonary rehabilitation",
        b"community-acquired pneumonia",
    ];
    for (path, bytes) in &files {
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?} in the clear",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
        if path.starts_with(tmp.0.join("blobs")) {
            for signature in [&b"%PDF-"[..], &b"\x89PNG"[..]] {
                assert!(!bytes.starts_with(signature), "{} is a document in the clear", path.display());
            }
        }
    }
    // Codes: whatever code the files hold (the outbox keeps mail until it is sent) no longer works.
    let mut tokens = Vec::new();
    for (_, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        tokens.extend(text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-').filter_map(code_of));
    }
    assert!(!tokens.is_empty(), "the demo's mail holds codes (used ones)");
    for token in tokens {
        let token = format!("code:{}", token.replace('-', ""));
        let live = sqlite(
            &tmp.0,
            &format!(
                "SELECT COUNT(*) FROM single_use_tokens WHERE token_hash = X'{}' AND used_at IS NULL \
                 AND expires_at > CAST(strftime('%s','now') AS INTEGER)",
                sha256_hex(&token)
            ),
        );
        assert_eq!(live, "0", "a live code is on disk: {token}");
    }
}

/// A one-time code (`ABCD-EFGH-JKMN-PQRS`) when `text`, trimmed, is one.
fn code_of(text: &str) -> Option<String> {
    let t = text.trim();
    (t.len() == 19
        && t.char_indices()
            .all(|(i, c)| if i % 5 == 4 { c == '-' } else { c.is_ascii_digit() || c.is_ascii_uppercase() }))
    .then(|| t.to_owned())
}

/// SHA-256 of a token, in hexadecimal (what the portal stores instead of it).
fn sha256_hex(token: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", &format!("import hashlib; print(hashlib.sha256({token:?}.encode()).hexdigest(), end='')")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_audit_log_can_be_signed_by_a_key_in_a_pkcs11_token() {
    let dir = TempDir::new();
    let hsm = dir.0.join("hsm");
    std::fs::create_dir_all(hsm.join("tokens")).unwrap();
    let conf = hsm.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            hsm.join("tokens").display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "tiaki", "--so-pin", "12345678", "--pin", "1234"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util (apt-get install softhsm2; scripts/test does)");
    assert!(init.status.success());
    let data = dir.0.join("data");
    let env = [
        ("TIAKI_DATA_DIR", data.to_str().unwrap()),
        ("SOFTHSM2_CONF", conf.to_str().unwrap()),
        ("TIAKI_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
        ("TIAKI_PKCS11_TOKEN", "tiaki"),
        ("TIAKI_PKCS11_PIN", "1234"),
    ];
    assert!(tiaki(&["demo"], &env).status.success());
    let out = tiaki(&["audit", "checkpoint"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!data.join("audit-signing.key").exists(), "no key file when the token holds the key");
    let out = tiaki(&["audit", "verify"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The demo's documents are under patient keys wrapped by the token's master key: rotating a
    // patient's key unwraps through the token.
    assert!(!data.join("master.key").exists(), "no master key file when the token holds the master key");
    let out = tiaki(&["keys", "rotate-patient", "--nhi", "ZZZ0016"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tiaki(&["keys", "rotate-master"], &env);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("PKCS#11"));
    // A wrong PIN is a clear error, not a silent fallback to a key file.
    let mut wrong = env;
    wrong[4] = ("TIAKI_PKCS11_PIN", "9999");
    let out = tiaki(&["audit", "verify"], &wrong);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("PIN"), "{err}");
}

/// People leave: the console removes a member of staff (invited just before, as `nn@example.nz`),
/// and disables and enables an account; every bad input says which flag to fix.
fn people_leave_at_the_console(d: &str) {
    let env = [("TIAKI_DATA_DIR", d)];
    let remove = ["admin", "remove-staff", "--practice", "FZZ999-B", "--email", "nn@example.nz"];
    let out = tiaki(&remove, &env);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Removed from"));
    let err = String::from_utf8_lossy(&tiaki(&remove, &env).stderr).into_owned();
    assert!(err.contains("--email: That person is not on this practice's staff"), "{err}");
    let disable = |reason: &'static str| ["admin", "disable-account", "--email", "hemi@example.nz", "--reason", reason];
    let out = tiaki(&disable("no"), &env);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--reason"));
    assert!(tiaki(&disable("phone stolen"), &env).status.success());
    let out = tiaki(&disable("phone stolen"), &env);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already disabled"));
    assert!(tiaki(&["admin", "enable-account", "--email", "hemi@example.nz"], &env).status.success());
    let out = tiaki(&["admin", "enable-account", "--email", "hemi@example.nz"], &env);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not disabled"));
    let unenrol = ["admin", "unenrol", "--practice", "FZZ999-B", "--nhi", "ZZZ0016"];
    let out = tiaki(&unenrol, &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = tiaki(&unenrol, &env);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nhi: That patient is not enrolled at this practice"));
    let agreement = |verb: &'static str| ["admin", verb, "--practice", "FZZ999-B", "--org-id", "G00042-K"];
    assert!(tiaki(&agreement("agree-to-receive"), &env).status.success());
    let out = tiaki(&agreement("revoke-agreement"), &env);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no longer receives"));
    let out = tiaki(&agreement("revoke-agreement"), &env);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--org-id: This practice has no"));
}

/// `tiaki incident …` on the demo's data: bad indicators are explained and nothing is kept;
/// declared from the console's own events (the demo's set-up), the scope is printed and kept,
/// a notice campaign waits for what is being done and the Commissioner, then goes out as files
/// (no SMTP here); the reports and `verify` agree.
#[test]
fn the_incident_lead_declares_notifies_reports_and_verifies_from_the_console() {
    let dir = TempDir::new();
    let d = dir.0.to_str().unwrap();
    let env = [("TIAKI_DATA_DIR", d), ("TIAKI_SUPPORT_PHONE", "0800 824 254")];
    assert!(tiaki(&["demo"], &env).status.success());
    let bad = tiaki(&["incident", "declare", "--title", "T", "--description", "Too short", "--ip", "999.1.1.1"], &env);
    assert!(!bad.status.success());
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(why.contains("--title: Give the incident a short title"), "{why}");
    assert!(tiaki(&["incident", "list"], &env).stdout.is_empty(), "nothing was kept");
    let bad = tiaki(
        &[
            "incident",
            "declare",
            "--title",
            "Console drill",
            "--description",
            "A drill: everything the server's console did during the demo's set-up.",
            "--ip",
            "999.1.1.1",
        ],
        &env,
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an IP address or range"));
    // The demo's events were made at the console ("console" is their address and agent).
    let scope = tiaki(
        &[
            "incident",
            "scope",
            "--user-agent",
            "tiaki console",
            "--from",
            "2000-01-01 00:00",
            "--to",
            "2100-01-01 00:00",
        ],
        &env,
    );
    let text = String::from_utf8_lossy(&scope.stdout);
    assert!(scope.status.success() && text.contains("possibly affected") && text.contains("not kept"), "{text}");
    let out = tiaki(
        &[
            "incident",
            "declare",
            "--title",
            "Console drill",
            "--description",
            "A drill: everything the server's console did during the demo's set-up.",
            "--user-agent",
            "tiaki console",
            "--from",
            "2000-01-01 00:00",
            "--to",
            "2100-01-01 00:00",
        ],
        &env,
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Revision 1:") && err.contains("Computed from the access log's first"), "{err}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 36, "the id is printed: {id}");
    let early = tiaki(&["incident", "notify", &id], &env);
    assert!(!early.status.success() && String::from_utf8_lossy(&early.stderr).contains("Privacy Commissioner"));
    let upd = tiaki(
        &[
            "incident",
            "update",
            &id,
            "--steps",
            "A drill: nothing to do but check the notices.",
            "--commissioner-told",
            "2026-11-28 09:00",
        ],
        &env,
    );
    assert!(upd.status.success(), "{}", String::from_utf8_lossy(&upd.stderr));
    let sent = tiaki(&["incident", "notify", &id], &env);
    let err = String::from_utf8_lossy(&sent.stderr);
    assert!(sent.status.success() && err.contains("Started a campaign of"), "{err}");
    let mails: Vec<String> = std::fs::read_dir(dir.0.join("mail"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|m| m.contains("privacy breach"))
        .collect();
    assert!(!mails.is_empty() && mails.iter().all(|m| !m.contains("http") && m.contains("0800 824 254")));
    let again = tiaki(&["incident", "notify", &id], &env);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("nobody to write to"));
    let orgs = String::from_utf8_lossy(&tiaki(&["incident", "report", &id], &env).stdout).into_owned();
    let org = orgs.lines().next().and_then(|l| l.split('\t').next()).unwrap().to_owned();
    let csv = tiaki(&["incident", "report", &id, "--org", &org, "--csv"], &env);
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with("nhi,name,patient_class,"));
    let json = tiaki(&["incident", "report", &id, "--regulator", "--json"], &env);
    let reg: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(reg["notification"]["people_told"].as_u64().unwrap(), mails.len() as u64);
    let verify = tiaki(&["incident", "verify", &id], &env);
    let err = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && err.contains("All 1 revision(s) computed again from the log agree"), "{err}");
}
