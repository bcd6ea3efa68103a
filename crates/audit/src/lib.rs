//! The tamper-evident log's pure parts: RFC 9162 Merkle hashing, proofs and their verification
//! ([`merkle`]), and C2SP signed notes — checkpoints and witness cosignatures ([`note`]).
//! Storage and the background jobs that feed these live in `store` and `app`.

pub mod event;
pub mod merkle;
pub mod note;
