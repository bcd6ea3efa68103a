//! A patient's record page, for the patient and the staff of their practices.

use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::Auth;
use crate::extract::PageId;
use crate::views::{Nav, PatientPage, render};
use app::domain::PatientId;
use axum::extract::State;

pub(crate) async fn patient_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
) -> PageResult {
    let (row, practices) =
        state.app.practices().view_patient(&ctx.caller_as(&who), patient).await.map_err(WebError::page)?;
    Ok(render(&PatientPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        own: who.patient == Some(patient),
        // Staff see the links their role opens (the policy's own lists), no dead ends.
        can_list_documents: who.staff.is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::LIST_DOCUMENTS)),
        can_view_access: who
            .staff
            .is_none_or(|(_, r)| app::capabilities::may(r, app::capabilities::VIEW_ACCESS_HISTORY)),
        patient: row,
        practices,
    }))
}
