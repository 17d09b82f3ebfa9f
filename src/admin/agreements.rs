//! Terms of use (DESIGN §12): Graph `identityGovernance/termsOfUse/agreements` and their
//! `acceptances`. The agreements live on the tenant record (conditional access reads them
//! with it), each user's acceptances on the user. The terms are text: an agreement's file
//! is base64 of UTF-8 text (Entra takes a PDF; gatehouse shows the text on the sign-in page).
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::odata::Query;
use super::users::{READ, WRITE};
use super::{Caller, GraphError, json_body};
use crate::clock::rfc3339;
use crate::model::{Agreement, DISPLAY_NAME_MAX, Tenant, UserId, display_text};
use crate::web::Data;

/// Agreements a tenant may hold, and the longest text: they travel with the tenant record.
pub const MAX_AGREEMENTS: usize = 10;
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// The shortest and longest re-acceptance period.
const MIN_REACCEPT_SECS: i64 = 60;
const MAX_REACCEPT_SECS: i64 = 3650 * 86_400;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgreementIn {
    #[serde(default, rename = "@odata.type")]
    odata_type: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    is_viewing_before_acceptance_required: Option<bool>,
    #[serde(default)]
    is_per_device_acceptance_required: Option<bool>,
    /// `null` clears it (accepted once, for ever).
    #[serde(default, deserialize_with = "some_or_null")]
    user_reaccept_required_frequency: Option<Option<String>>,
    #[serde(default)]
    terms_expiration: Option<serde_json::Value>,
    #[serde(default)]
    files: Option<Vec<AgreementFileIn>>,
}

fn some_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AgreementFileIn {
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    is_default: Option<bool>,
    #[serde(default)]
    file_data: Option<FileData>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileData {
    data: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AgreementOut {
    id: Uuid,
    display_name: String,
    is_viewing_before_acceptance_required: bool,
    is_per_device_acceptance_required: bool,
    user_reaccept_required_frequency: Option<String>,
    terms_expiration: Option<()>,
    created_date_time: String,
    files: Vec<AgreementFileOut>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AgreementFileOut {
    id: Uuid,
    file_name: String,
    language: String,
    is_default: bool,
    file_data: FileData,
}

/// Graph `agreementAcceptance`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct AcceptanceOut {
    id: String,
    agreement_id: Uuid,
    user_id: UserId,
    user_display_name: String,
    user_principal_name: String,
    user_email: String,
    state: &'static str,
    recorded_date_time: String,
    expiration_date_time: Option<String>,
}

fn graph_agreement(a: &Agreement) -> AgreementOut {
    AgreementOut {
        id: a.id,
        display_name: a.display_name.clone(),
        is_viewing_before_acceptance_required: a.is_viewing_before_acceptance_required,
        is_per_device_acceptance_required: false,
        user_reaccept_required_frequency: a.user_reaccept_required_frequency.clone(),
        terms_expiration: None,
        created_date_time: rfc3339(a.created_at),
        files: vec![AgreementFileOut {
            // One file per agreement: its id is the agreement's.
            id: a.id,
            file_name: a.file_name.clone(),
            language: a.language.clone(),
            is_default: true,
            file_data: FileData { data: STANDARD.encode(a.text.as_bytes()) },
        }],
    }
}

/// An ISO 8601 duration of weeks, days, hours, minutes and seconds (`P90D`, `P1W`,
/// `PT12H`, `P1DT6H`) in seconds. Years and months are refused: their length varies.
pub fn duration_secs(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an ISO 8601 duration of weeks, days, hours, minutes or seconds (e.g. P90D)");
    let rest = s.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let mut total: i64 = 0;
    let mut parts = 0;
    let mut add = |text: &str, units: &[(char, i64)]| -> Result<(), String> {
        let mut number = String::new();
        let mut order = 0;
        for c in text.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let pos = units.iter().position(|(u, _)| *u == c).ok_or_else(|| {
                if c == 'Y' || c == 'M' && units[0].0 == 'W' {
                    format!("{s:?}: years and months are not supported; use weeks or days (e.g. P90D)")
                } else {
                    bad()
                }
            })?;
            if number.is_empty() || number.len() > 9 || pos < order {
                return Err(bad());
            }
            order = pos + 1;
            total = total.saturating_add(number.parse::<i64>().map_err(|_| bad())?.saturating_mul(units[pos].1));
            number.clear();
            parts += 1;
        }
        if number.is_empty() { Ok(()) } else { Err(bad()) }
    };
    add(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(t) = time {
        add(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    if parts == 0 {
        return Err(bad());
    }
    Ok(total)
}

fn check_frequency(f: Option<&str>) -> Result<(Option<String>, Option<i64>), GraphError> {
    let Some(f) = f else { return Ok((None, None)) };
    let secs =
        duration_secs(f.trim()).map_err(|e| GraphError::bad_request(format!("userReacceptRequiredFrequency: {e}.")))?;
    if !(MIN_REACCEPT_SECS..=MAX_REACCEPT_SECS).contains(&secs) {
        return Err(GraphError::bad_request(
            "userReacceptRequiredFrequency must be between one minute (PT1M) and 3650 days (P3650D).",
        ));
    }
    Ok((Some(f.trim().to_string()), Some(secs)))
}

/// The one default file: its text (base64 of UTF-8), file name and language.
fn check_files(files: &[AgreementFileIn]) -> Result<(String, String, String), GraphError> {
    let [file] = files else {
        return Err(GraphError::bad_request("files must hold exactly one file (the default, in one language)."));
    };
    if file.is_default == Some(false) {
        return Err(GraphError::bad_request("files[0].isDefault must be true."));
    }
    let data = file.file_data.as_ref().ok_or_else(|| GraphError::bad_request("files[0].fileData.data is required."))?;
    let bytes = STANDARD
        .decode(data.data.trim())
        .map_err(|_| GraphError::bad_request("files[0].fileData.data must be base64."))?;
    if bytes.len() > MAX_TEXT_BYTES {
        return Err(GraphError::bad_request(format!("The terms are at most {MAX_TEXT_BYTES} bytes.")));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        GraphError::bad_request("files[0].fileData.data must be UTF-8 text (PDF files are not supported).")
    })?;
    if text.trim().is_empty() || text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(GraphError::bad_request("The terms must be non-empty text without control characters."));
    }
    let name = file.file_name.as_deref().or(file.display_name.as_deref()).unwrap_or("terms.txt");
    let name = display_text("files[0].fileName", name, DISPLAY_NAME_MAX)
        .map_err(|e| GraphError::bad_request(format!("{e}.")))?;
    let language = file.language.as_deref().unwrap_or("en");
    if language.is_empty() || language.len() > 35 || !language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(GraphError::bad_request("files[0].language must be a language tag such as en or en-GB."));
    }
    Ok((text.replace("\r\n", "\n"), name, language.to_string()))
}

/// What this instance has: one acceptance per user (not per device), no expiry of the terms.
fn check_supported(b: &AgreementIn) -> Result<(), GraphError> {
    if b.odata_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("#microsoft.graph.agreement")) {
        return Err(GraphError::bad_request("@odata.type must be #microsoft.graph.agreement."));
    }
    if b.is_per_device_acceptance_required == Some(true) {
        return Err(GraphError::bad_request("isPerDeviceAcceptanceRequired is not supported: it must be false."));
    }
    if b.terms_expiration.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(GraphError::bad_request("termsExpiration is not supported: use userReacceptRequiredFrequency."));
    }
    Ok(())
}

fn name_of(tenant: &Tenant, name: Option<&str>, except: Option<Uuid>) -> Result<Option<String>, GraphError> {
    let Some(name) = name else { return Ok(None) };
    let name =
        display_text("displayName", name, DISPLAY_NAME_MAX).map_err(|e| GraphError::bad_request(format!("{e}.")))?;
    if tenant.agreements.iter().any(|a| a.display_name.eq_ignore_ascii_case(&name) && Some(a.id) != except) {
        return Err(GraphError::bad_request("An agreement with this displayName exists."));
    }
    Ok(Some(name))
}

fn find<'a>(tenant: &'a Tenant, key: &str) -> Result<&'a Agreement, GraphError> {
    Uuid::parse_str(key)
        .ok()
        .and_then(|id| tenant.agreements.iter().find(|a| a.id == id))
        .ok_or_else(|| GraphError::not_found(format!("Agreement '{key}' does not exist.")))
}

/// `GET /identityGovernance/termsOfUse/agreements`.
pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["displayName", "id"])?;
    let base = format!("{}/graph/v1.0/identityGovernance/termsOfUse/agreements", state.public_url);
    let context = format!("{}/graph/v1.0/$metadata#identityGovernance/termsOfUse/agreements", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(caller.tenant.agreements.iter().map(graph_agreement), &base, &context)?))
}

/// `GET …/agreements/{id}`.
pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    Ok(HttpResponse::Ok().json(graph_agreement(find(&caller.tenant, &path)?)))
}

/// `POST …/agreements`: `displayName` and `files` are required.
pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: AgreementIn = json_body(&req, &body)?;
    check_supported(&b)?;
    if b.id.is_some() {
        return Err(GraphError::bad_request("id is assigned by the server."));
    }
    let mut tenant = caller.tenant;
    let name = name_of(&tenant, b.display_name.as_deref(), None)?
        .ok_or_else(|| GraphError::bad_request("displayName is required."))?;
    let (text, file_name, language) =
        check_files(b.files.as_deref().ok_or_else(|| GraphError::bad_request("files is required."))?)?;
    let (frequency, secs) = check_frequency(b.user_reaccept_required_frequency.flatten().as_deref())?;
    if tenant.agreements.len() >= MAX_AGREEMENTS {
        return Err(GraphError::bad_request(format!("A tenant has at most {MAX_AGREEMENTS} agreements.")));
    }
    let agreement = Agreement {
        id: Uuid::new_v4(),
        display_name: name,
        text,
        file_name,
        language,
        is_viewing_before_acceptance_required: b.is_viewing_before_acceptance_required.unwrap_or(false),
        user_reaccept_required_frequency: frequency,
        reaccept_secs: secs,
        created_at: state.now(),
    };
    tenant.agreements.push(agreement.clone());
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %tenant.slug, agreement = %agreement.id, "terms of use created");
    Ok(HttpResponse::Created().json(graph_agreement(&agreement)))
}

/// `PATCH …/agreements/{id}`: `displayName`, `isViewingBeforeAcceptanceRequired`,
/// `userReacceptRequiredFrequency`. The terms themselves do not change: acceptances were
/// given to that text (a new text is a new agreement, as a new file version is in Entra).
pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let id = find(&caller.tenant, &path)?.id;
    let b: AgreementIn = json_body(&req, &body)?;
    check_supported(&b)?;
    if b.id.as_deref().is_some_and(|v| v != id.to_string()) {
        return Err(GraphError::bad_request("id cannot change."));
    }
    if b.files.is_some() {
        return Err(GraphError::bad_request(
            "files cannot change: users accepted that text. Create a new agreement for new terms.",
        ));
    }
    let mut tenant = caller.tenant;
    let name = name_of(&tenant, b.display_name.as_deref(), Some(id))?;
    let frequency = b.user_reaccept_required_frequency.map(|f| check_frequency(f.as_deref())).transpose()?;
    let a =
        tenant.agreements.iter_mut().find(|a| a.id == id).ok_or_else(|| GraphError::not_found("No such agreement."))?;
    if let Some(n) = name {
        a.display_name = n;
    }
    if let Some(v) = b.is_viewing_before_acceptance_required {
        a.is_viewing_before_acceptance_required = v;
    }
    if let Some((f, secs)) = frequency {
        a.user_reaccept_required_frequency = f;
        a.reaccept_secs = secs;
    }
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE …/agreements/{id}`: refused while a conditional access policy requires it.
pub async fn delete(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let id = find(&caller.tenant, &path)?.id.to_string();
    let naming: Vec<String> = state
        .store
        .policies(&caller.tenant.id)
        .await?
        .into_iter()
        .filter(|p| p.grant_controls.as_ref().is_some_and(|g| g.terms_of_use.contains(&id)))
        .map(|p| p.display_name)
        .collect();
    if !naming.is_empty() {
        return Err(GraphError::bad_request(format!(
            "The agreement is required by conditional access policy {}; change the policy first.",
            naming.join(", ")
        )));
    }
    let mut tenant = caller.tenant;
    tenant.agreements.retain(|a| a.id.to_string() != id);
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %tenant.slug, agreement = %id, "terms of use deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `GET …/agreements/{id}/acceptances`: each user's latest acceptance, with when it expires.
pub async fn acceptances(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["userId", "userPrincipalName", "state"])?;
    let agreement = find(&caller.tenant, &path)?.clone();
    let accepted = crate::directory::users::users_where(&state.store, &caller.tenant, |u| {
        u.agreement_acceptances.iter().any(|a| a.agreement_id == agreement.id)
    })
    .await?;
    let mut out = Vec::new();
    for u in accepted {
        let Some(a) = u.agreement_acceptances.iter().find(|a| a.agreement_id == agreement.id) else { continue };
        out.push(AcceptanceOut {
            id: format!("{}_{}", agreement.id, u.id),
            agreement_id: agreement.id,
            user_id: u.id,
            user_display_name: u.display_name.clone(),
            user_principal_name: u.user_principal_name.clone(),
            user_email: u.mail.clone(),
            state: "accepted",
            recorded_date_time: rfc3339(a.accepted_at),
            expiration_date_time: agreement.reaccept_secs.map(|s| rfc3339(a.accepted_at + s)),
        });
    }
    let base = format!(
        "{}/graph/v1.0/identityGovernance/termsOfUse/agreements/{}/acceptances",
        state.public_url, agreement.id
    );
    let context = format!("{}/graph/v1.0/$metadata#agreementAcceptances", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(out, &base, &context)?))
}

#[cfg(test)]
mod tests {
    use super::duration_secs;

    #[test]
    fn iso_8601_durations() {
        for (s, secs) in [
            ("P90D", 90 * 86_400),
            ("P1W", 7 * 86_400),
            ("PT12H", 12 * 3600),
            ("P1DT6H", 86_400 + 6 * 3600),
            ("PT1M", 60),
            ("PT90S", 90),
            ("P2W3D", 17 * 86_400),
        ] {
            assert_eq!(duration_secs(s), Ok(secs), "{s}");
        }
        for s in ["", "P", "PT", "90D", "P1Y", "P1M", "P1DT", "PD", "P1H", "PT1D", "P1D1W", "P-1D", "P1.5D", "p1d"] {
            assert!(duration_secs(s).is_err(), "{s} must be refused");
        }
        assert!(duration_secs("P1M").unwrap_err().contains("months"));
    }
}
