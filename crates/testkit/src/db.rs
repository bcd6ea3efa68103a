//! A fresh database for each test (or benchmark): an `SQLite` file in its own folder, or a
//! `PostgreSQL` database cloned from a template migrated once per set of migrations (faster than
//! migrating each, and every clone starts identical). Dropped when the test ends.

use anyhow::{Context, Result, anyhow};
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which engine: `TIAKI_TEST_DATABASE` (`sqlite`, the default, or `postgres`).
#[must_use]
pub fn backend() -> String {
    std::env::var("TIAKI_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into())
}

/// The server's administrative URL: `TIAKI_TEST_POSTGRES_URL`, or the local default.
#[must_use]
pub fn pg_admin_url() -> String {
    std::env::var("TIAKI_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, migrated database; dropped (for `PostgreSQL`) when this goes.
pub struct Database {
    /// Its connection URL.
    pub url: String,
    cleanup: Option<(String, String)>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Database {
    /// The engine `TIAKI_TEST_DATABASE` names; an `SQLite` file goes in `dir`.
    ///
    /// # Errors
    /// When the database cannot be made or migrated.
    pub async fn fresh(dir: &Path) -> Result<Self> {
        if backend() == "postgres" { Self::postgres(&pg_admin_url()).await } else { Self::sqlite(dir).await }
    }

    /// A migrated `SQLite` database in `dir`.
    ///
    /// # Errors
    /// When it cannot be made or migrated.
    pub async fn sqlite(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let url = format!("sqlite://{}/tiaki.db", dir.display());
        store::connect(&url).await?.migrate().await?;
        Ok(Self { url, cleanup: None })
    }

    /// A `PostgreSQL` database cloned from the migrated template on the server at `admin`.
    ///
    /// # Errors
    /// When the server is unreachable (the message says how to point at one).
    pub async fn postgres(admin: &str) -> Result<Self> {
        let template = ensure_template(admin).await?;
        let name = format!("tiaki_t_{}", uuid::Uuid::new_v4().simple());
        let mut c = admin_connection(admin).await?;
        // Cloning needs the template to have no other sessions; a test that just made it may
        // still be closing its pool, so try a few times.
        let mut tries = 0;
        loop {
            let made = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {template}")))
                .execute(&mut c)
                .await;
            match made {
                Ok(_) => break,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e).context("cloning the test template database"),
            }
        }
        let (base, _) = admin.rsplit_once('/').ok_or_else(|| anyhow!("TIAKI_TEST_POSTGRES_URL has no database"))?;
        Ok(Self { url: format!("{base}/{name}"), cleanup: Some((admin.to_owned(), name)) })
    }

    /// Connects to it.
    ///
    /// # Errors
    /// When it cannot be reached.
    pub async fn store(&self) -> Result<Arc<dyn store::Store>> {
        Ok(store::connect(&self.url).await?)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.cleanup.take() {
            // Best effort, off the test's runtime: a leftover test database is harmless.
            let done = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            });
            let _ = done.join();
        }
    }
}

async fn admin_connection(admin: &str) -> Result<sqlx::PgConnection> {
    sqlx::PgConnection::connect(admin)
        .await
        .map_err(|e| anyhow!("PostgreSQL is not reachable at {admin} ({e}); start it or set TIAKI_TEST_POSTGRES_URL"))
}

/// The name of the template for the current migrations (their versions and checksums), made
/// once under an advisory lock so that tests starting together make it once.
async fn ensure_template(admin: &str) -> Result<String> {
    let migrator = sqlx::migrate!("../store/migrations/postgres");
    let mut fingerprint = Vec::new();
    for m in migrator.iter() {
        fingerprint.extend_from_slice(&m.version.to_be_bytes());
        fingerprint.extend_from_slice(&m.checksum);
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &fingerprint);
    let name = format!("tiaki_template_{}", hex::encode(&digest.as_ref()[..8]));
    let mut c = admin_connection(admin).await?;
    sqlx::query("SELECT pg_advisory_lock(748201)").execute(&mut c).await?;
    let result = make_template(admin, &mut c, &name).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(748201)").execute(&mut c).await;
    result.map(|()| name)
}

async fn make_template(admin: &str, c: &mut sqlx::PgConnection, name: &str) -> Result<()> {
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1").bind(name).fetch_optional(&mut *c).await?;
    if exists.is_some() {
        return Ok(());
    }
    // Built under another name and renamed when complete, so a half-made template is never used.
    let building = format!("{name}_building");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)")))
        .execute(&mut *c)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}"))).execute(&mut *c).await?;
    let (base, _) = admin.rsplit_once('/').ok_or_else(|| anyhow!("TIAKI_TEST_POSTGRES_URL has no database"))?;
    {
        let store = store::connect(&format!("{base}/{building}")).await?;
        store.migrate().await?;
    }
    // The migrated pool's connections must be gone before the rename.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{building}' AND pid <> pg_backend_pid()"
    )))
    .execute(&mut *c)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER DATABASE {building} RENAME TO {name}"))).execute(&mut *c).await?;
    Ok(())
}

/// A folder of its own under the system's temporary folder, removed when this goes.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty folder named after `tag`.
    ///
    /// # Errors
    /// When it cannot be made.
    pub fn new(tag: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("tiaki-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
