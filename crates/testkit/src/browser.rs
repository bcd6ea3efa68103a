//! Browsers and organisations' systems for tests: a `Browser` keeps cookies and the last page's CSRF
//! token and drives the real router; helpers make multipart bodies, PDFs, pushes and TOTP codes.

use crate::*;
use anyhow::{Result, anyhow};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use sqlx::Connection;
use std::collections::HashMap;
use std::net::SocketAddr;
use tower::ServiceExt;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A browser: keeps cookies, remembers the CSRF token of the last page it loaded.
#[derive(Clone)]
pub struct Browser {
    pub(crate) router: axum::Router,
    pub cookies: HashMap<String, String>,
    pub(crate) ip: SocketAddr,
    pub csrf: Option<String>,
    /// An API client's token, sent as `Authorization: Bearer` with every request.
    pub bearer: Option<String>,
}

/// What a download delivered: the bytes that arrived before the body ended or broke, and the
/// error that broke it, if one did (a stream that fails half-way is not a short document).
pub struct Download {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub stream_error: Option<String>,
}

impl Browser {
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply> {
        self.send_full(method, path, content_type, None, Body::from(body)).await
    }

    /// Sends a body that arrives as the test lets it (`Body::from_stream`): a slow upload.
    pub async fn send_body(&mut self, method: Method, path: &str, content_type: &str, body: Body) -> Result<Reply> {
        self.send_full(method, path, Some(content_type), None, body).await
    }

    pub async fn send_with_header(
        &mut self,
        method: Method,
        path: &str,
        name: &str,
        value: &str,
        body: Vec<u8>,
    ) -> Result<Reply> {
        self.send_full(method, path, Some("application/x-www-form-urlencoded"), Some((name, value)), Body::from(body))
            .await
    }

    async fn send_full(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        extra: Option<(&str, &str)>,
        body: Body,
    ) -> Result<Reply> {
        let (status, headers, bytes) = self.send_raw(method, path, content_type, extra, body).await?;
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(t) = extract_csrf(&body) {
            self.csrf = Some(t);
        }
        Ok(Reply { status, headers, body })
    }

    /// Posts a form (with this browser's CSRF token) and keeps the answer's bytes as they are:
    /// for downloads that a form starts (the record's export).
    pub async fn post_bytes(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let body = self.form_with_csrf(fields).await?;
        let (status, headers, bytes) = self
            .send_raw(Method::POST, path, Some("application/x-www-form-urlencoded"), None, Body::from(body))
            .await?;
        if let Some(t) = extract_csrf(&String::from_utf8_lossy(&bytes)) {
            self.csrf = Some(t);
        }
        Ok((status, headers, bytes.to_vec()))
    }

    async fn send_raw(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        extra: Option<(&str, &str)>,
        body: Body,
    ) -> Result<(StatusCode, HeaderMap, bytes::Bytes)> {
        let mut req = Request::builder().method(method).uri(path);
        // A real browser's User-Agent, unless the test sends its own.
        if !extra.is_some_and(|(k, _)| k.eq_ignore_ascii_case("user-agent")) {
            req = req.header(header::USER_AGENT, "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36");
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        if let Some(token) = &self.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if !self.cookies.is_empty() {
            let c: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        let mut req = req.body(body)?;
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let headers = res.headers().clone();
        for sc in headers.get_all(header::SET_COOKIE) {
            let sc = sc.to_str()?;
            let pair = sc.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || sc.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok((status, headers, bytes))
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply> {
        self.send(Method::GET, path, None, Vec::new()).await
    }

    /// Posts a form, adding this browser's CSRF token (loading `/signin` first if it has none).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Reply> {
        let body = self.form_with_csrf(fields).await?;
        self.send(Method::POST, path, Some("application/x-www-form-urlencoded"), body.into_bytes()).await
    }

    /// A form's body with this browser's CSRF token first (loading `/signin` first if it has none).
    async fn form_with_csrf(&mut self, fields: &[(&str, &str)]) -> Result<String> {
        if self.csrf.is_none() {
            self.get("/signin").await?;
        }
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        Ok(serde_urlencoded::to_string(&all)?)
    }

    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Reply> {
        let body = serde_urlencoded::to_string(fields)?;
        self.send(Method::POST, path, Some("application/x-www-form-urlencoded"), body.into_bytes()).await
    }

    /// Uploads a file from the documents page (multipart, with this browser's CSRF token).
    pub async fn upload(&mut self, path: &str, filename: &str, bytes: &[u8]) -> Result<Reply> {
        if self.csrf.is_none() {
            self.get("/signin").await?;
        }
        let csrf = self.csrf.clone().unwrap_or_default();
        let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("file", Some(filename), bytes)]);
        self.send(Method::POST, path, Some(&ct), body).await
    }

    /// Downloads raw bytes (bodies of binary documents are not text). A body that breaks off
    /// with an error is an error here; [`Browser::download`] shows what arrived before it.
    pub async fn get_bytes(&mut self, path: &str, range: Option<&str>) -> Result<(StatusCode, HeaderMap, Vec<u8>)> {
        let d = self.download(path, range).await?;
        if let Some(e) = d.stream_error {
            return Err(anyhow!("the body of {path} broke off after {} bytes: {e}", d.bytes.len()));
        }
        Ok((d.status, d.headers, d.bytes))
    }

    /// Downloads, keeping the bytes that arrived before any error in the body stream.
    pub async fn download(&mut self, path: &str, range: Option<&str>) -> Result<Download> {
        let mut req = Request::builder().method(Method::GET).uri(path);
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        if !self.cookies.is_empty() {
            let c: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        if let Some(token) = &self.bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let mut req = req.body(Body::empty())?;
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let headers = res.headers().clone();
        let mut body = res.into_body();
        let mut bytes = Vec::new();
        let mut stream_error = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(data) = f.data_ref() {
                        bytes.extend_from_slice(data);
                    }
                }
                Err(e) => {
                    stream_error = Some(e.to_string());
                    break;
                }
            }
        }
        Ok(Download { status, headers, bytes, stream_error })
    }

    pub async fn post_json(&mut self, path: &str, json: &str) -> Result<Reply> {
        self.send(Method::POST, path, Some("application/json"), json.as_bytes().to_vec()).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Result<Reply> {
        self.get("/signin").await?;
        let r = self.post("/signin", &[("email", email), ("password", password)]).await?;
        // Load the home page so the CSRF token is the session's.
        if r.status == StatusCode::SEE_OTHER {
            let home = r.location().to_owned();
            self.get(&home).await?;
        }
        Ok(r)
    }
}

/// A `multipart/form-data` body: (name, filename, content) parts. Returns the content type.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("tiaki{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Pushes a document as an organisation's system.
pub async fn push(t: &TestApp, token: &str, meta: &str, bytes: &[u8]) -> Result<Reply> {
    let (ct, body) = multipart(&[("metadata", None, meta.as_bytes()), ("file", Some("letter.pdf"), bytes)]);
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/documents")
        .header(header::CONTENT_TYPE, ct)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))?;
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 1, 1, 1], 50000))));
    let res = t.router.clone().oneshot(req).await?;
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok(Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// A small PDF-looking document (the content check reads the magic bytes).
pub fn pdf(marker: &str, len: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    while v.len() < len {
        v.extend_from_slice(marker.as_bytes());
        v.push(b'\n');
    }
    v.truncate(len.max(9));
    v
}

pub fn push_meta(nhi: &str, source_id: &str) -> String {
    format!(
        r#"{{"nhi":"{nhi}","category":"discharge_summary","title":"Discharge summary","clinical_date":"2025-11-30","author":"Dr Hospital Person","source_document_id":"{source_id}"}}"#
    )
}

pub fn extract_csrf(body: &str) -> Option<String> {
    let i = body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(body[i..].split('"').next()?.to_owned())
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The authenticator key every fixture staff member and operator has (they must have one).
pub const FIXTURE_TOTP: &[u8; 20] = b"tiaki fixture secret";

/// The TOTP code for a key at a time.
pub fn totp_code(secret: &[u8], time: i64) -> String {
    let t = totp_rs::Builder::new().with_secret(secret.to_vec()).build().unwrap();
    t.generate(u64::try_from(time).unwrap()).to_string()
}

/// Sets up an authenticator through the pages, as a person would; returns its key.
pub async fn set_up_authenticator(b: &mut Browser, t: &TestApp) -> Result<Vec<u8>> {
    let setup = b.post("/account/security/totp", &[]).await?;
    let i = setup.body.find("id=\"totp-secret\">").ok_or_else(|| anyhow!("no key shown: {}", setup.body))?
        + "id=\"totp-secret\">".len();
    let text: String =
        setup.body[i..].split('<').next().unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
    let secret = totp_rs::Secret::try_from_base32(&text).map_err(|e| anyhow!("{e:?}"))?.as_ref().to_vec();
    let code = totp_code(&secret, app::domain::Clock::now(&t.clock));
    let done = b.post("/account/security/totp/confirm", &[("code", &code)]).await?;
    if done.status != StatusCode::OK || !done.body.contains("Save these now") {
        return Err(anyhow!("the authenticator was not turned on: {} {}", done.status, done.body));
    }
    Ok(secret)
}

/// Gives an account the fixture authenticator (as if it had been set up through the pages).
pub async fn fixture_totp(t: &TestApp, email: &str) -> Result<()> {
    let sql = "INSERT INTO totp_factors (account_id, secret, confirmed_at, last_step, created_at) \
               SELECT id, $1, 0, 0, 0 FROM accounts WHERE email = $2";
    let n = if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        sqlx::query(sql).bind(FIXTURE_TOTP.to_vec()).bind(email).execute(&mut c).await?.rows_affected()
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        sqlx::query(sql).bind(FIXTURE_TOTP.to_vec()).bind(email).execute(&mut c).await?.rows_affected()
    };
    if n != 1 {
        return Err(anyhow!("no account {email} for the fixture authenticator"));
    }
    Ok(())
}
