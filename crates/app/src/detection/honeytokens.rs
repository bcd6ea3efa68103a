//! Honeytokens: a canary patient no practice has enrolled (a real row, with a plausible name and
//! a Z-range NHI, where an insider browsing the database finds it), and document and record ids
//! (a document id named in `robots.txt`, where an enumerator looks). No legitimate path reaches
//! them — they are in no one's lists. Any access to one is a critical alert and suspends
//! whatever touched it. Canary documents are ids only: a row without a blob would be found by
//! every tool that walks the documents (sealing, verification, the sweeper).

use crate::{App, AppError};
use std::collections::HashSet;
use std::sync::RwLock;
use store::{AuditEvent, Canaries};

/// The canaries' ids, kept in memory so that checking an event costs a hash look-up.
#[derive(Debug, Default)]
pub struct Honeytokens {
    ids: RwLock<HashSet<String>>,
    listed: RwLock<Vec<(String, String)>>,
}

impl Honeytokens {
    /// Whether an event touches a canary: its object (or the patient of a `patient/version`
    /// key), or its patient.
    pub(crate) fn touches(&self, e: &AuditEvent) -> bool {
        let ids = self.ids.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ids.is_empty() {
            return false;
        }
        let object = e.object_id.split('/').next().unwrap_or_default();
        ids.contains(object) || e.patient.as_ref().is_some_and(|p| ids.contains(p))
    }

    fn load(&self, rows: Vec<(String, String)>) {
        *self.ids.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            rows.iter().map(|(id, _)| id.clone()).collect();
        *self.listed.write().unwrap_or_else(std::sync::PoisonError::into_inner) = rows;
    }

    /// The canaries: id and kind (`patient`, `document`, `health_record`).
    #[must_use]
    pub fn list(&self) -> Vec<(String, String)> {
        self.listed.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// A valid NHI number (old format, with its check digit) in the Z range HISO 10046 keeps for
/// testing: never a real person's, so no one who later joins Tiaki can collide with the canary.
fn random_nhi() -> Result<String, AppError> {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXY";
    loop {
        let r = crate::identity::credentials::random_bytes::<8>()?;
        let mut s: String = std::iter::once('Z')
            .chain(r[1..3].iter().map(|b| char::from(LETTERS[usize::from(*b) % LETTERS.len()])))
            .collect();
        for b in &r[3..6] {
            s.push(char::from(b'0' + b % 10));
        }
        for d in b'0'..=b'9' {
            let candidate = format!("{s}{}", char::from(d));
            if domain::Nhi::parse(&candidate).is_ok() {
                return Ok(candidate);
            }
        }
    }
}

impl App {
    /// Plants the canaries if no node has yet, and loads their ids (every node, at start).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn plant_honeytokens(&self) -> Result<(), AppError> {
        if self.store.honeytokens().await?.is_empty() {
            let nhi = random_nhi()?;
            let canaries = Canaries {
                account: domain::AccountId::random(),
                email: format!("{}@patients.invalid", nhi.to_lowercase()),
                patient: domain::PatientId::random(),
                nhi,
                name: "Mereana Tautahi".into(),
                date_of_birth: "1968-04-19".into(),
                documents: vec![domain::DocumentId::random(), domain::DocumentId::random()],
                records: vec![uuid::Uuid::new_v4(), uuid::Uuid::new_v4()],
                now: self.now(),
            };
            self.store.plant_canaries(&canaries).await?;
        }
        self.honeytokens.load(self.store.honeytokens().await?);
        Ok(())
    }

    /// The canaries' ids and kinds (for `robots.txt`, and the drills).
    #[must_use]
    pub fn honeytokens(&self) -> Vec<(String, String)> {
        self.honeytokens.list()
    }
}
