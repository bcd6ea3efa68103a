//! Each patient's impact status (the banner): from each open incident's latest revision, what
//! the notice says too.

use super::{Incidents, describe};
use crate::AppError;
use crate::caller::Caller;
use domain::incidents::Class;
use store::incidents::IncidentRow;

/// What a patient's banner says of one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impact {
    /// The incident.
    pub incident_id: String,
    /// Its title.
    pub title: String,
    /// When it was found.
    pub discovered_at: i64,
    /// The revision this comes from.
    pub revision: i64,
    /// The patient's class.
    pub class: Class,
    /// What of theirs was reached (affected only), as the notice lists it.
    pub items: Vec<String>,
    /// What is being done.
    pub steps_taken: String,
}

impl Incidents<'_> {
    /// A patient's impact status for each open incident (the banner), from each one's latest
    /// revision.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient.
    pub async fn impact(&self, caller: &Caller, patient: domain::PatientId) -> Result<Vec<Impact>, AppError> {
        let grant = self.app.decide::<authz::ViewImpact>(caller, patient).await?;
        let mut out = Vec::new();
        for (incident, revision, mine) in self.app.store.impacts(&grant).await? {
            if incident.closed_at.is_some() {
                continue;
            }
            let class = mine.as_ref().and_then(|p| Class::parse(&p.class)).unwrap_or(Class::NotAffected);
            out.push(self.impact_of(incident, revision, class, &patient.to_string()).await?);
        }
        Ok(out)
    }

    /// What one patient is told of one incident at one revision: the banner, the notice and the
    /// public check all say this.
    pub(crate) async fn impact_of(
        &self,
        incident: IncidentRow,
        revision: i64,
        class: Class,
        patient: &str,
    ) -> Result<Impact, AppError> {
        let items = if class == Class::Confirmed {
            self.app
                .store
                .scope_objects(&incident.id, revision, Some(patient))
                .await?
                .iter()
                .filter(|o| o.class == "confirmed")
                .map(describe)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Impact {
            incident_id: incident.id,
            title: incident.title,
            discovered_at: incident.discovered_at,
            revision,
            class,
            items,
            steps_taken: incident.steps_taken,
        })
    }
}
