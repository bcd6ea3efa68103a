//! Organisations' systems: authenticating their API clients by bearer token, and what operators
//! see of them.

use super::Documents;
use super::sha256;
use crate::audit::Caller;
use crate::{App, AppError};
use authz::Platform;
use domain::{ClientId, PatientId};
use store::ApiClientRow;

impl App {
    pub(crate) async fn console_patient(&self, nhi: &str) -> Result<PatientId, AppError> {
        let nhi = domain::Nhi::parse(nhi).map_err(|e| AppError::field("nhi", e.to_string()))?;
        self.store.patient_by_nhi(nhi.as_str()).await?.ok_or(AppError::NotFound)
    }

    pub(crate) fn client_token(id: ClientId) -> Result<(String, Vec<u8>), AppError> {
        use base64::Engine;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(crate::identity::credentials::random_bytes::<32>()?);
        let id = id.as_uuid().simple().to_string();
        Ok((format!("tiaki_{id}_{secret}"), sha256(secret.as_bytes())))
    }
}

impl Documents<'_> {
    /// Who an API client's bearer token belongs to (`None` for a wrong, revoked or unknown one).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn authenticate_client(&self, token: &str) -> Result<Option<authz::Principal>, AppError> {
        let Some((id, secret)) = token.strip_prefix("tiaki_").and_then(|t| t.split_once('_')) else {
            return Ok(None);
        };
        let Ok(id) = id.parse::<ClientId>() else { return Ok(None) };
        let Some(row) = self.app.store.api_client(id).await? else { return Ok(None) };
        let ok =
            aws_lc_rs::constant_time::verify_slices_are_equal(&sha256(secret.as_bytes()), &row.secret_hash).is_ok();
        // A suspended system (a detector, or an operator at the security console) is refused
        // like a revoked one until it is resumed.
        if !ok || row.revoked_at.is_some() || row.suspended_at.is_some() {
            metrics::counter!("tiaki_api_client_auth_failures_total").increment(1);
            return Ok(None);
        }
        Ok(Some(authz::Principal::Client {
            client: row.id,
            org_id: row.org_id,
            practice: row.practice,
            scopes: row.scopes,
        }))
    }

    /// Operators see which organisations' systems can push documents.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator.
    pub async fn clients(&self, caller: &Caller) -> Result<Vec<ApiClientRow>, AppError> {
        let grant = self.app.authorize::<authz::ManageApiClients>(caller, Platform).await?;
        Ok(self.app.store.api_clients(&grant.implied()).await?)
    }
}
