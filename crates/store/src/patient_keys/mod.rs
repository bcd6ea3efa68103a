//! Patients' keys: each patient's versioned key, wrapped by a master key, made on first use
//! under the grant that stores a document for them, and rotated, re-wrapped or destroyed only
//! under the console's custody (`authz::console::key_custody`, `master_key_custody`).

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("sql.rs");
}

use crate::{DocumentKey, PatientKeyRow, RecordKeyRow, Result, StoreGrant};
use authz::{Grant, KeyCustody, MasterKeyCustody};
use domain::{BoxFuture, PatientId, UnixTime};

/// Whose key may be read or made: the patient of an upload or a push being stored, or of the
/// console's custody of their keys.
#[derive(Debug, Clone, Copy)]
pub enum KeyGrant<'a> {
    /// Storing a document for its patient.
    Storing(StoreGrant<'a>),
    /// The console's custody of the patient's keys.
    Custody(&'a Grant<KeyCustody>),
    /// Sending a patient's health records in (their records key is wrapped by it).
    Records(&'a Grant<authz::IngestRecords>),
    /// Sealing something of the patient's under their records key (a booking reason, a note).
    Sealing(crate::RecordKeyGrant<'a>),
}

impl KeyGrant<'_> {
    /// The patient whose key it is.
    #[must_use]
    pub fn patient(&self) -> Option<PatientId> {
        match self {
            Self::Storing(g) => g.patient(),
            Self::Custody(g) => g.patient(),
            Self::Records(g) => g.patient(),
            Self::Sealing(g) => g.patient(),
        }
    }
}

/// Patients' keys.
pub trait PatientKeyStore: Send + Sync {
    /// The newest version of a patient's key, if they have one.
    fn current_patient_key<'a>(&'a self, grant: KeyGrant<'a>) -> BoxFuture<'a, Result<Option<PatientKeyRow>>>;
    /// One version of a patient's key.
    fn patient_key<'a>(
        &'a self,
        grant: &'a Grant<KeyCustody>,
        version: i32,
    ) -> BoxFuture<'a, Result<Option<PatientKeyRow>>>;
    /// Stores a patient's key unless that version exists already; true if it was stored.
    fn insert_patient_key<'a>(
        &'a self,
        grant: KeyGrant<'a>,
        k: &'a PatientKeyRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    // --- keys (the console) ---
    /// Up to `limit` live patient keys wrapped by a master key other than `master_key_id`.
    fn keys_not_under<'a>(
        &'a self,
        grant: &'a Grant<MasterKeyCustody>,
        master_key_id: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<PatientKeyRow>>>;
    /// Replaces one patient key's wrapping, if it is still wrapped by `old_master`.
    fn rewrap_patient_key<'a>(
        &'a self,
        grant: &'a Grant<MasterKeyCustody>,
        key: &'a PatientKeyRow,
        old_master: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
    /// A patient's live documents' keys.
    fn document_keys<'a>(&'a self, grant: &'a Grant<KeyCustody>) -> BoxFuture<'a, Result<Vec<DocumentKey>>>;
    /// Installs a new patient key version, the documents' data keys and the records key
    /// re-wrapped under it, and destroys the old versions, in one transaction.
    fn rotate_patient_key<'a>(
        &'a self,
        grant: &'a Grant<KeyCustody>,
        new_key: &'a PatientKeyRow,
        rewrapped: &'a [DocumentKey],
        records: Option<&'a RecordKeyRow>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Destroys every version of a patient's key (erasure); returns how many were live.
    fn destroy_patient_keys<'a>(&'a self, grant: &'a Grant<KeyCustody>, now: UnixTime) -> BoxFuture<'a, Result<u64>>;
    /// After an erasure, removes what the engine keeps of the old values from its live files:
    /// `SQLite` (which zeroes deleted content, `secure_delete`) copies its write-ahead log into
    /// the database and empties it; `PostgreSQL` vacuums the keys' table so its old row versions
    /// go. (Copies in backups, and in `PostgreSQL`'s WAL archive, are made useless by retiring
    /// the master key instead: see ARCHITECTURE.md, "Erasure".)
    fn scrub_erased_keys(&self) -> BoxFuture<'_, Result<()>>;
}
