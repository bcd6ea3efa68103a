//! Honeytokens: a canary patient no practice has enrolled, their documents (hospital letters,
//! by their titles) and record ids. No legitimate path reaches them — they are in no one's
//! lists — and their ids are planted where an enumerator or an insider browsing the database
//! would find them: the `patients` and `documents` tables, and `robots.txt`. Any access to one
//! is a critical alert and suspends whatever touched it.

use crate::{App, AppError};
use std::collections::HashSet;
use std::sync::RwLock;
use store::{AuditEvent, Canaries, CanaryDocument};

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
            let random = crate::identity::credentials::random_bytes::<32>()?;
            let nhi = random_nhi()?;
            let canaries = Canaries {
                account: domain::AccountId::random(),
                email: format!("{}@patients.invalid", nhi.to_lowercase()),
                patient: domain::PatientId::random(),
                nhi,
                name: "Mereana Tautahi".into(),
                date_of_birth: "1968-04-19".into(),
                documents: vec![
                    CanaryDocument {
                        id: domain::DocumentId::random(),
                        title: "Discharge summary - Whangarei Hospital".into(),
                        category: "discharge_summary".into(),
                        clinical_date: "2025-11-03".into(),
                        org_id: "G00134-F".into(),
                        org_name: "Te Whatu Ora Te Tai Tokerau".into(),
                        wrapped_key: random[..16].to_vec(),
                    },
                    CanaryDocument {
                        id: domain::DocumentId::random(),
                        title: "Cardiology clinic letter".into(),
                        category: "clinic_letter".into(),
                        clinical_date: "2025-09-22".into(),
                        org_id: "G00134-F".into(),
                        org_name: "Te Whatu Ora Te Tai Tokerau".into(),
                        wrapped_key: random[16..].to_vec(),
                    },
                ],
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
