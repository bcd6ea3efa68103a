//! Looking back over an incident: its scope as kept, what moved between two revisions and why,
//! and every revision computed again from the log and checked against its signed checkpoint.

use super::{Incidents, Lead, Revision, scope};
use crate::AppError;
use domain::incidents::{Class, Indicators};
use domain::{ObjectKind, Verb};

/// One patient who moved between classes from one revision to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The patient.
    pub patient_id: String,
    /// Their class before.
    pub from: Class,
    /// Their class now.
    pub to: Class,
    /// Why: the event and indicator that put them where they are now, or, for someone no
    /// longer affected, what had put them there before.
    pub why: String,
}

/// What changed between two revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The earlier revision.
    pub from: i64,
    /// The later one.
    pub to: i64,
    /// Indicators added (as text).
    pub added: Vec<String>,
    /// Indicators removed.
    pub removed: Vec<String>,
    /// Who moved, and why.
    pub moved: Vec<Moved>,
}

/// The result of checking a revision again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Revisions checked.
    pub revisions: usize,
    /// What did not agree.
    pub problems: Vec<String>,
}

impl Incidents<'_> {
    /// A revision's patients (the latest's by default): (patient id, class, why).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident or revision.
    pub async fn scope_of(
        &self,
        lead: &Lead,
        id: &str,
        revision: Option<i64>,
    ) -> Result<Vec<(String, Class, String)>, AppError> {
        let n = match revision {
            Some(n) => n,
            None => self.latest(id).await?.number,
        };
        self.event(lead, ObjectKind::Incident, Verb::Read, id).await?;
        Ok(self
            .app
            .store
            .scope_patients(id, n)
            .await?
            .into_iter()
            .filter_map(|p| Class::parse(&p.class).map(|c| (p.patient_id, c, p.why)))
            .collect())
    }

    /// Who moved between two revisions, and why.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident or revision.
    pub async fn diff(&self, lead: &Lead, id: &str, from: i64, to: i64) -> Result<Diff, AppError> {
        let revisions: Vec<Revision> =
            self.app.store.revisions(id).await?.into_iter().map(Revision::from_row).collect::<Result<_, _>>()?;
        let find = |n: i64| revisions.iter().find(|r| r.number == n).ok_or(AppError::NotFound);
        let (a, b) = (find(from)?, find(to)?);
        self.event(lead, ObjectKind::Incident, Verb::Read, id).await?;
        let before: std::collections::BTreeMap<String, store::incidents::ScopePatient> =
            self.app.store.scope_patients(id, from).await?.into_iter().map(|p| (p.patient_id.clone(), p)).collect();
        let after: std::collections::BTreeMap<String, store::incidents::ScopePatient> =
            self.app.store.scope_patients(id, to).await?.into_iter().map(|p| (p.patient_id.clone(), p)).collect();
        let class = |p: Option<&store::incidents::ScopePatient>| {
            p.and_then(|p| Class::parse(&p.class)).unwrap_or(Class::NotAffected)
        };
        let mut moved = Vec::new();
        for patient in before.keys().chain(after.keys().filter(|k| !before.contains_key(*k))) {
            let (was, now) = (class(before.get(patient)), class(after.get(patient)));
            if was != now {
                let why = match after.get(patient) {
                    Some(p) => p.why.clone(),
                    None => format!(
                        "no indicator of revision {to} reaches them (before: {})",
                        before.get(patient).map_or("", |p| p.why.as_str())
                    ),
                };
                moved.push(Moved { patient_id: patient.clone(), from: was, to: now, why });
            }
        }
        let listed = |i: &Indicators| -> Vec<String> {
            let mut v: Vec<String> = i.accounts.iter().map(|x| format!("account {x}")).collect();
            v.extend(i.sessions.iter().map(|x| format!("session {x}")));
            v.extend(i.clients.iter().map(|x| format!("system {x}")));
            v.extend(i.ips.iter().map(|x| format!("IP {x}")));
            v.extend(i.user_agents.iter().map(|x| format!("user agent \"{x}\"")));
            v.extend(i.windows.iter().map(|w| format!("window {}–{}", w.from_ms, w.to_ms)));
            v.extend(i.modules.iter().map(|m| format!("module {m}")));
            v
        };
        let (la, lb) = (listed(&a.indicators), listed(&b.indicators));
        Ok(Diff {
            from,
            to,
            added: lb.iter().filter(|x| !la.contains(x)).cloned().collect(),
            removed: la.iter().filter(|x| !lb.contains(x)).cloned().collect(),
            moved,
        })
    }

    /// Computes every revision of an incident again from the log and checks it against what
    /// was kept, and each revision's checkpoint against the log's key.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident.
    pub async fn verify(
        &self,
        lead: &Lead,
        id: &str,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Verified, AppError> {
        let _incident = self.row(id).await?;
        let rows = self.app.store.revisions(id).await?;
        let key = self.app.access_log().vkey().and_then(|v| audit::note::Verifier::parse(&v).ok());
        let mut out = Verified::default();
        for (i, row) in rows.iter().enumerate() {
            progress(i, rows.len());
            let n = row.revision;
            let signed = audit::note::Note::parse(row.checkpoint.trim_start()).ok().and_then(|note| {
                let ok =
                    key.as_ref().is_some_and(|k| note.signatures.iter().any(|s| k.verify(&note.body, s).is_some()));
                audit::note::Checkpoint::parse_body(&note.body).ok().filter(|_| ok)
            });
            match signed {
                None => out.problems.push(format!("revision {n}: its checkpoint is not signed by this log's key")),
                Some(cp) => {
                    if i64::try_from(cp.size).ok() != Some(row.tree_size) || hex::encode(cp.root) != row.root {
                        out.problems.push(format!("revision {n}: its checkpoint is not of the size and root it names"));
                    }
                }
            }
            match self.app.store.checkpoint_at(u64::try_from(row.tree_size).unwrap_or(0)).await? {
                Some(c) if hex::encode(&c.root) == row.root => {}
                _ => out.problems.push(format!(
                    "revision {n}: the log's checkpoint at size {} is missing or has another root (run `tiaki audit verify`)",
                    row.tree_size
                )),
            }
            let revision = Revision::from_row(row.clone())?;
            let scope = scope::compute(
                &*self.app.store,
                &lead.grant,
                &revision.indicators,
                u64::try_from(row.tree_size).unwrap_or(0),
            )
            .await?;
            if scope.digest() != row.digest {
                out.problems.push(format!(
                    "revision {n}: computed again from the log it gives another scope ({} confirmed, {} possible; kept: \
                     {} and {})",
                    scope.count(Class::Confirmed),
                    scope.count(Class::Possible),
                    row.confirmed,
                    row.possible
                ));
            }
            let kept = self.app.store.scope_patients(id, n).await?;
            if kept != scope.patients {
                out.problems.push(format!("revision {n}: the patients kept are not the ones its digest names"));
            }
            out.revisions += 1;
        }
        progress(rows.len(), rows.len());
        self.event(lead, ObjectKind::Incident, Verb::Check, id).await?;
        Ok(out)
    }
}
