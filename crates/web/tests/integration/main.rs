//! The web integration suite: the real router over a real store (`SQLite` by default,
//! `PostgreSQL` with `TIAKI_TEST_DATABASE=postgres`).
// Fixtures are built through the console shortcuts that the web crate itself may not use.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    clippy::disallowed_methods,
    missing_docs
)]

mod appointments;
mod audit;
mod bad_input;
mod detection;
mod documents;
mod enrolment;
mod flows;
mod incidents;
mod layers;
mod mail;
mod matrix;
mod messages;
mod mfa;
mod openapi;
mod people_leave;
mod prescriptions;
mod proxies;
mod records;
mod secrets;
mod stuffing;
mod support;
