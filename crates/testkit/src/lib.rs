//! Tiaki's test kit, shared by the web suite, the storage conformance suite and every
//! benchmark: a [`TestApp`] (the real application and router over a fresh database, blob store
//! and key provider, on a fake clock), a [`World`] of practices, staff, patients, an operator and
//! an organisation's system, [`Browser`]s that keep cookies and CSRF tokens, and [`db`] — a fresh
//! database per test, on `PostgreSQL` cloned from a migrated template.
// Test support: fixtures are built through the console and unwrap where a test would fail anyway.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::missing_errors_doc,
    clippy::missing_panics_doc,
    clippy::must_use_candidate,
    clippy::wildcard_imports,
    missing_docs
)]

pub mod appointments;
mod browser;
pub mod db;
pub mod normal_day;
mod portal;
pub mod records;
mod world;

pub use browser::*;
pub use portal::*;
pub use world::*;
