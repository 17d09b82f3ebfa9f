//! Graph directory reads that must not grow with the tenant: `/users` pages by cursor
//! (`$skiptoken` = the last id), `userPrincipalName eq` / `mail eq` are index lookups, and
//! `subscribedSkus` reads a maintained seat counter. Black-box over HTTP, with the tenant
//! filled through the store.
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

const GUESTS: usize = 250;

async fn fill(app: &TestApp) -> Vec<gatehouse::model::User> {
    let tid = app.tenant_id("fabrikam").await;
    let now = app.state.now();
    let mut out = Vec::new();
    for i in 0..GUESTS {
        let mail = format!("paged{i:03}@partner.example");
        let g = gatehouse::model::User {
            id: gatehouse::model::UserId::new(),
            tenant_id: tid,
            user_principal_name: gatehouse::model::guest_upn(&mail, "fabrikam.example"),
            mail,
            display_name: format!("Paged {i}"),
            user_type: gatehouse::model::UserType::Guest,
            account_enabled: true,
            external_user_state: Some(if i % 3 == 0 {
                gatehouse::model::ExternalUserState::Accepted
            } else {
                gatehouse::model::ExternalUserState::PendingAcceptance
            }),
            created_at: now,
            ..Default::default()
        };
        app.state.store.insert_user(&g).await.unwrap();
        out.push(g);
    }
    out
}

/// Follows `@odata.nextLink` from `first`; returns every page.
async fn walk(app: &TestApp, token: &str, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let (status, mut page) = app.graph(Method::GET, first, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    loop {
        let next = page["@odata.nextLink"].as_str().map(String::from);
        pages.push(page);
        let Some(next) = next else { break };
        assert!(pages.len() < 100, "paging must end");
        page = plain_client().get(next).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    }
    pages
}

fn ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn users_page_by_cursor_and_each_user_comes_once() {
    let app = spawn_app().await;
    fill(&app).await;
    let token = app.admin_token().await;
    let everyone = app.state.store.users(&app.tenant_id("fabrikam").await).await.unwrap();
    let pages = walk(&app, &token, "users?$top=100").await;
    assert!(pages.iter().all(|p| p["value"].as_array().unwrap().len() <= 100));
    assert_eq!(pages.len(), everyone.len().div_ceil(100), "full pages, then the rest");
    let mut seen = ids(&pages);
    assert_eq!(seen.len(), everyone.len(), "every user once");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), everyone.len(), "no user twice");
    let skiptoken = pages[0]["@odata.nextLink"].as_str().unwrap();
    let last_of_first = pages[0]["value"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap();
    assert!(skiptoken.contains(&format!("%24skiptoken={last_of_first}")), "{skiptoken}");

    // A filter is applied across pages: every guest once, pages of the asked size.
    let guests = everyone.iter().filter(|u| u.is_guest()).count();
    let filter = url::form_urlencoded::byte_serialize(b"userType eq 'Guest'").collect::<String>();
    let pages = walk(&app, &token, &format!("users?$top=37&$filter={filter}&$select=userType")).await;
    let got = ids(&pages);
    assert_eq!(got.len(), guests);
    assert!(pages.iter().all(|p| p["value"].as_array().unwrap().iter().all(|u| u["userType"] == "Guest")));
    assert!(pages[..pages.len() - 1].iter().all(|p| p["value"].as_array().unwrap().len() == 37));
    assert!(pages.last().unwrap()["@odata.nextLink"].is_null());
}

#[tokio::test]
async fn upn_and_mail_filters_find_one_user_by_index() {
    let app = spawn_app().await;
    let guests = fill(&app).await;
    let token = app.admin_token().await;
    let probe = &guests[GUESTS / 2];
    let q =
        |f: String| format!("users?$filter={}", url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>());
    for filter in [
        format!("userPrincipalName eq '{}'", probe.user_principal_name.to_uppercase()),
        format!("mail eq '{}'", probe.mail),
        format!("mail eq '{}' and userType eq 'Guest'", probe.mail),
    ] {
        let (status, body) = app.graph(Method::GET, &q(filter.clone()), Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let found = body["value"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{filter}: {body}");
        assert_eq!(found[0]["id"], probe.id.to_string());
        assert!(body["@odata.nextLink"].is_null());
    }
    // The other clauses still apply to what the index found.
    let (_, body) = app
        .graph(Method::GET, &q(format!("mail eq '{}' and userType eq 'Member'", probe.mail)), Some(&token), None)
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "{body}");
    let (_, body) =
        app.graph(Method::GET, &q("userPrincipalName eq 'nobody@nowhere.example'".into()), Some(&token), None).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "{body}");
}

#[tokio::test]
async fn a_bad_skiptoken_is_a_graph_error() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let before = app.snapshot_without_log().await;
    for bad in ["users?$skiptoken=12", "users?$skiptoken=not-an-id", "users?$skiptoken="] {
        let (status, body) = app.graph(Method::GET, bad, Some(&token), None).await;
        assert_graph_error(status, &body, StatusCode::BAD_REQUEST, "BadRequest");
    }
    assert_same(&before, &app.snapshot_without_log().await, "a refused query changes nothing");
}

#[tokio::test]
async fn subscribed_skus_counts_the_seats_held() {
    let app = spawn_app().await;
    let guests = fill(&app).await;
    let token = app.admin_token().await;
    let tid = app.tenant_id("fabrikam").await;
    let held = app.state.store.users(&tid).await.unwrap().iter().filter(|u| u.holds_seat()).count();
    assert!(held >= guests.iter().filter(|g| g.holds_seat()).count());
    let (status, body) = app.graph(Method::GET, "subscribedSkus", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"][0]["consumedUnits"], held, "{body}");
    // Deleting a seat holder gives the seat back.
    let holder = guests.iter().find(|g| g.holds_seat()).unwrap();
    app.state.store.delete_user(&tid, &holder.id).await.unwrap();
    let (_, body) = app.graph(Method::GET, "subscribedSkus", Some(&token), None).await;
    assert_eq!(body["value"][0]["consumedUnits"], held - 1, "{body}");
}
