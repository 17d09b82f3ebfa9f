//! Groups (DESIGN §11): Graph CRUD, members by `$ref`, `memberOf`, conditional access by
//! group (`includeGroups` / `excludeGroups`), the `groups` claim, the demo's "Partner
//! auditors" and the admin page.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const IW: &str = "iw@fabrikam.example";
const ADMIN: &str = "admin@fabrikam.example";

async fn create_group(app: &TestApp, token: &str, name: &str) -> Value {
    let (status, body) = app
        .graph(
            Method::POST,
            "groups",
            Some(token),
            Some(json!({
                "displayName": name, "mailNickname": name.to_ascii_lowercase().replace(' ', "-"),
                "mailEnabled": false, "securityEnabled": true, "groupTypes": [],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn member_ref(app: &TestApp, id: impl std::fmt::Display) -> Value {
    json!({ "@odata.id": format!("{}/graph/v1.0/directoryObjects/{id}", app.url) })
}

async fn add_member(app: &TestApp, token: &str, group: &str, body: Value) {
    let (status, out) = app.graph(Method::POST, &format!("groups/{group}/members/$ref"), Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{out}");
}

async fn member_upns(app: &TestApp, token: &str, group: &str) -> Vec<String> {
    let (status, body) = app.graph(Method::GET, &format!("groups/{group}/members"), Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut upns: Vec<String> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["@odata.type"], "#microsoft.graph.user", "{m}");
            m["userPrincipalName"].as_str().unwrap().to_string()
        })
        .collect();
    upns.sort();
    upns
}

async fn member_of(app: &TestApp, token: &str, user: &str) -> Vec<String> {
    let (status, body) = app.graph(Method::GET, &format!("users/{user}/memberOf"), Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert_eq!(g["@odata.type"], "#microsoft.graph.group", "{g}");
            g["displayName"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The id of the demo's "Partner auditors" group, read through Graph.
async fn auditors_id(app: &TestApp, token: &str) -> String {
    let (status, body) =
        app.graph(Method::GET, "groups?$filter=displayName%20eq%20'Partner%20auditors'", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
    body["value"][0]["id"].as_str().unwrap().to_string()
}

async fn create_policy(app: &TestApp, token: &str, policy: Value) -> Value {
    let (status, body) =
        app.graph(Method::POST, "identity/conditionalAccess/policies", Some(token), Some(policy)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A sign-in of `login` at test-rp: `Ok(tokens)` or `Err(data-error)` of the page it ended on.
async fn rp_sign_in(app: &TestApp, login: &str) -> Result<Value, (StatusCode, Option<String>)> {
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let start = rp.authorize_url(&[]);
    let done = browser.sign_in(&start.url, login, &app.password(login)).await;
    let Some(code) = done.location.as_deref().and_then(|l| query_param(l, "code")) else {
        return Err((done.status, done.error_code()));
    };
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    Ok(tokens)
}

async fn what_if(app: &TestApp, token: &str, upn: &str) -> Value {
    let (status, body) = app
        .graph(
            Method::POST,
            "identity/conditionalAccess/evaluate",
            Some(token),
            Some(json!({ "userPrincipalName": upn, "appId": "test-rp", "authenticationMethods": ["pwd"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn groups_crud_round_trip() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let created = create_group(&app, &token, "Contoso project").await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["@odata.type"], "#microsoft.graph.group");
    assert_eq!(created["displayName"], "Contoso project");
    assert_eq!(created["mailNickname"], "contoso-project");
    assert_eq!((&created["securityEnabled"], &created["mailEnabled"]), (&json!(true), &json!(false)));
    assert_eq!(created["groupTypes"], json!([]));
    assert!(created["createdDateTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");

    let (status, list) = app.graph(Method::GET, "groups", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> =
        list["value"].as_array().unwrap().iter().map(|g| g["displayName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Partner auditors", "Contoso project"], "the demo's group, then the new one");
    let (status, got) = app.graph(Method::GET, &format!("groups/{id}"), Some(&token), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &created));

    let (status, body) = app
        .graph(
            Method::PATCH,
            &format!("groups/{id}"),
            Some(&token),
            Some(json!({ "displayName": "Contoso project team", "description": "People on the project" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, got) = app.graph(Method::GET, &format!("groups/{id}"), Some(&token), None).await;
    assert_eq!(
        (got["displayName"].as_str(), got["description"].as_str()),
        (Some("Contoso project team"), Some("People on the project"))
    );
    assert_eq!(got["mailNickname"], "contoso-project", "unchanged");
    let (status, _) =
        app.graph(Method::PATCH, &format!("groups/{id}"), Some(&token), Some(json!({ "description": null }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.graph(Method::GET, &format!("groups/{id}"), Some(&token), None).await;
    assert_eq!(got["description"], Value::Null);

    let (status, _) = app.graph(Method::DELETE, &format!("groups/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.graph(Method::GET, &format!("groups/{id}"), Some(&token), None).await;
    assert_graph_error(status, &body, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let (_, list) = app.graph(Method::GET, "groups", Some(&token), None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn members_and_guests_are_added_listed_and_removed() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let group = create_group(&app, &token, "Reviewers").await;
    let gid = group["id"].as_str().unwrap();
    let pat = "pat@northwind.example";
    let inv = app.invite(pat, crate::guests::LANDING, None).await;
    let guest_id = inv["invitedUser"]["id"].as_str().unwrap().to_string();
    let guest_upn = inv["invitedUser"]["userPrincipalName"].as_str().unwrap().to_string();
    let iw = app.user("fabrikam", IW).await;

    // The directoryObjects form, and the users form of @odata.id.
    add_member(&app, &token, gid, member_ref(&app, iw.id)).await;
    add_member(&app, &token, gid, json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{guest_id}") }))
        .await;
    let mut expected = vec![IW.to_string(), guest_upn.clone()];
    expected.sort();
    assert_eq!(member_upns(&app, &token, gid).await, expected);
    assert_eq!(member_of(&app, &token, &iw.id.to_string()).await, ["Reviewers"]);
    assert_eq!(member_of(&app, &token, &guest_id).await, ["Reviewers"], "guests can be members");
    assert_eq!(member_of(&app, &token, IW).await, ["Reviewers"], "memberOf by UPN too");
    assert!(member_of(&app, &token, ADMIN).await.is_empty());
    assert_eq!(app.user("fabrikam", IW).await.member_of.len(), 1, "membership is on the user");

    let (status, body) =
        app.graph(Method::DELETE, &format!("groups/{gid}/members/{guest_id}/$ref"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(member_upns(&app, &token, gid).await, [IW]);
    assert!(member_of(&app, &token, &guest_id).await.is_empty());

    // Deleting the group takes it off its members.
    let (status, _) = app.graph(Method::DELETE, &format!("groups/{gid}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app.user("fabrikam", IW).await.member_of.is_empty());
    assert!(member_of(&app, &token, IW).await.is_empty());
}

/// A request with a raw body (for bodies that are not JSON).
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Value) {
    let resp = plain_client()
        .request(method, format!("{}/graph/v1.0/{path}", app.url))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn bad_group_input_is_refused_with_its_graph_error_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let group = create_group(&app, &token, "Reviewers").await;
    let gid = group["id"].as_str().unwrap().to_string();
    let auditors = auditors_id(&app, &token).await;
    let iw = app.user("fabrikam", IW).await;
    add_member(&app, &token, &gid, member_ref(&app, iw.id)).await;
    let admin = app.user("fabrikam", ADMIN).await;
    let foreign = app.user("contoso", "sally@contoso.example").await;
    let unknown = uuid::Uuid::new_v4();
    let policy = |users: Value| {
        json!({
            "displayName": "By group", "state": "enabled",
            "conditions": { "users": users, "applications": { "includeApplications": ["All"] } },
            "grantControls": { "operator": "OR", "builtInControls": ["block"] },
        })
    };
    let members = format!("groups/{gid}/members/$ref");
    let bad: Vec<(&str, Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            "unknown user",
            Method::POST,
            members.clone(),
            Some(member_ref(&app, unknown)),
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "another tenant's user",
            Method::POST,
            members.clone(),
            Some(member_ref(&app, foreign.id)),
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "the group itself (cyclic)",
            Method::POST,
            members.clone(),
            Some(member_ref(&app, &gid)),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
        ),
        (
            "another group (nested)",
            Method::POST,
            members.clone(),
            Some(member_ref(&app, &auditors)),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
        ),
        (
            "already a member",
            Method::POST,
            members.clone(),
            Some(member_ref(&app, iw.id)),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
        ),
        (
            "not an object id",
            Method::POST,
            members.clone(),
            Some(json!({ "@odata.id": "https://graph.microsoft.com/v1.0/users/iw@fabrikam.example" })),
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
        ),
        (
            "no @odata.id",
            Method::POST,
            members.clone(),
            Some(json!({ "id": iw.id })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "@odata.id not a string",
            Method::POST,
            members.clone(),
            Some(json!({ "@odata.id": 7 })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "a list of refs",
            Method::POST,
            members.clone(),
            Some(json!([member_ref(&app, admin.id)])),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "unknown group, add",
            Method::POST,
            format!("groups/{unknown}/members/$ref"),
            Some(member_ref(&app, admin.id)),
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "group id not a uuid",
            Method::GET,
            "groups/reviewers".into(),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "unknown group, get",
            Method::GET,
            format!("groups/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "unknown group, members",
            Method::GET,
            format!("groups/{unknown}/members"),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "unknown group, patch",
            Method::PATCH,
            format!("groups/{unknown}"),
            Some(json!({ "displayName": "x" })),
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "unknown group, delete",
            Method::DELETE,
            format!("groups/{unknown}"),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "remove a non-member",
            Method::DELETE,
            format!("groups/{gid}/members/{}/$ref", admin.id),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "remove an unknown user",
            Method::DELETE,
            format!("groups/{gid}/members/{unknown}/$ref"),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "remove by a non-id",
            Method::DELETE,
            format!("groups/{gid}/members/iw/$ref"),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "memberOf of an unknown user",
            Method::GET,
            format!("users/{unknown}/memberOf"),
            None,
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
        (
            "duplicate displayName (names are unique)",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "partner AUDITORS", "mailNickname": "pa2" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "rename onto another group's name",
            Method::PATCH,
            format!("groups/{gid}"),
            Some(json!({ "displayName": "Partner auditors" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "no displayName",
            Method::POST,
            "groups".into(),
            Some(json!({ "mailNickname": "x" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "no mailNickname",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "X" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "mailNickname with a space",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "X", "mailNickname": "a b" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "displayName with a line break",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "X\nY", "mailNickname": "x" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "mail-enabled",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "X", "mailNickname": "x", "mailEnabled": true })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "not a security group",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "X", "mailNickname": "x", "securityEnabled": false })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "Microsoft 365 group",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "X", "mailNickname": "x", "groupTypes": ["Unified"] })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "dynamic membership",
            Method::POST,
            "groups".into(),
            Some(json!({ "displayName": "X", "mailNickname": "x", "membershipRule": "user.department -eq \"x\"" })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "members bound on create",
            Method::POST,
            "groups".into(),
            Some(
                json!({ "displayName": "X", "mailNickname": "x", "members@odata.bind": [member_ref(&app, iw.id)["@odata.id"]] }),
            ),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "patch to mail-enabled",
            Method::PATCH,
            format!("groups/{gid}"),
            Some(json!({ "mailEnabled": true })),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "policy naming an unknown group",
            Method::POST,
            "identity/conditionalAccess/policies".into(),
            Some(policy(json!({ "includeGroups": [unknown] }))),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "policy excluding an unknown group",
            Method::POST,
            "identity/conditionalAccess/policies".into(),
            Some(policy(json!({ "includeUsers": ["All"], "excludeGroups": [unknown] }))),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "policy naming a group by name",
            Method::POST,
            "identity/conditionalAccess/policies".into(),
            Some(policy(json!({ "includeGroups": ["Partner auditors"] }))),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "delete a group a policy names",
            Method::DELETE,
            format!("groups/{auditors}"),
            None,
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
    ];
    for (name, method, path, body, status, code) in bad {
        let before = app.snapshot().await;
        let (got, out) = app.graph(method, &path, Some(&token), body).await;
        assert_graph_error(got, &out, status, code);
        if name == "delete a group a policy names" {
            let message = out["error"]["message"].as_str().unwrap();
            assert!(message.contains("Guests need a compliant device (report-only)"), "names the policy: {message}");
        }
        if name == "another group (nested)" || name == "the group itself (cyclic)" {
            assert!(out["error"]["message"].as_str().unwrap().contains("Nested groups are not supported"), "{out}");
        }
        assert_same(&before, &app.snapshot().await, name);
    }
    for (name, ct, body) in [("not JSON", "application/json", "{"), ("not a JSON body", "text/plain", "x")] {
        let before = app.snapshot().await;
        let (got, out) = raw(&app, Method::POST, &members, &token, ct, body).await;
        assert!(got == StatusCode::BAD_REQUEST || got == StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {got} {out}");
        assert!(out["error"]["code"].is_string(), "{name}: {out}");
        assert_same(&before, &app.snapshot().await, name);
    }
    let before = app.snapshot().await;
    let (got, out) = app.graph(Method::POST, &members, None, Some(member_ref(&app, admin.id))).await;
    assert_graph_error(got, &out, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    assert_same(&before, &app.snapshot().await, "no token");
    assert_eq!(member_upns(&app, &token, &gid).await, [IW], "nothing was added");
}

#[tokio::test]
async fn a_group_policy_applies_to_its_members_and_not_to_others() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let group = create_group(&app, &token, "Blocked contractors").await;
    let gid = group["id"].as_str().unwrap().to_string();
    let iw = app.user("fabrikam", IW).await;
    add_member(&app, &token, &gid, member_ref(&app, iw.id)).await;
    let created = create_policy(
        &app,
        &token,
        json!({
            "displayName": "Block contractors on test-rp", "state": "enabled",
            "conditions": {
                "users": { "includeUsers": [], "includeGroups": [gid] },
                "applications": { "includeApplications": ["test-rp"] },
            },
            "grantControls": { "operator": "OR", "builtInControls": ["block"] },
        }),
    )
    .await;
    assert_eq!(created["conditions"]["users"]["includeGroups"], json!([gid]));
    assert_eq!(created["conditions"]["users"]["excludeGroups"], json!([]), "Graph shows empty lists");
    let (_, got) = app
        .graph(
            Method::GET,
            &format!("identity/conditionalAccess/policies/{}", created["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got, created, "the policy reads back as written");

    assert_eq!(rp_sign_in(&app, IW).await.err(), Some((StatusCode::FORBIDDEN, Some("access_blocked".into()))));
    let tid = app.tenant_id("fabrikam").await;
    let log = app.state.store.signin_log(&tid, 1).await.unwrap().remove(0);
    assert_eq!(log.status.error.as_deref(), Some("access_blocked"));
    let applied =
        log.applied_conditional_access_policies.iter().find(|r| r.display_name == "Block contractors on test-rp");
    assert_eq!(applied.map(|r| r.result), Some(gatehouse::policy::PolicyOutcome::Failure), "{log:?}");
    assert!(rp_sign_in(&app, ADMIN).await.is_ok(), "not a member: not blocked");

    // What If knows the groups of the user it looks up.
    let w = what_if(&app, &token, IW).await;
    assert_eq!(w["outcome"], "block", "{w}");
    assert_eq!(w["context"]["groups"], json!([gid]));
    assert_eq!(what_if(&app, &token, ADMIN).await["outcome"], "allow");

    // Out of the group, out of the policy.
    let (status, _) =
        app.graph(Method::DELETE, &format!("groups/{gid}/members/{}/$ref", iw.id), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(rp_sign_in(&app, IW).await.is_ok());
    assert_eq!(what_if(&app, &token, IW).await["outcome"], "allow");
}

#[tokio::test]
async fn exclude_groups_beats_include_all() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let auditors = auditors_id(&app, &token).await;
    let iw = app.user("fabrikam", IW).await;
    add_member(&app, &token, &auditors, member_ref(&app, iw.id)).await;
    create_policy(
        &app,
        &token,
        json!({
            "displayName": "Block everyone but auditors on test-rp", "state": "enabled",
            "conditions": {
                "users": { "includeUsers": ["All"], "excludeGroups": [auditors] },
                "applications": { "includeApplications": ["test-rp"] },
            },
            "grantControls": { "operator": "OR", "builtInControls": ["block"] },
        }),
    )
    .await;
    assert!(rp_sign_in(&app, IW).await.is_ok(), "the excluded group's member passes");
    assert_eq!(rp_sign_in(&app, ADMIN).await.err(), Some((StatusCode::FORBIDDEN, Some("access_blocked".into()))));
    let w = what_if(&app, &token, IW).await;
    let result = w["appliedConditionalAccessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["displayName"] == "Block everyone but auditors on test-rp")
        .cloned()
        .unwrap();
    assert_eq!((result["result"].as_str(), w["outcome"].as_str()), (Some("notApplied"), Some("allow")), "{w}");
}

#[tokio::test]
async fn the_demo_device_policy_excludes_partner_auditors_and_what_if_sees_it() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let auditors = auditors_id(&app, &token).await;
    let (_, policies) = app.graph(Method::GET, "identity/conditionalAccess/policies", Some(&token), None).await;
    let device = policies["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == "Guests need a compliant device (report-only)")
        .cloned()
        .unwrap();
    assert_eq!(device["state"], "enabledForReportingButNotEnforced");
    assert_eq!(device["conditions"]["users"]["excludeGroups"], json!([auditors]));
    assert!(member_upns(&app, &token, &auditors).await.is_empty(), "the demo starts with no members");

    // A guest on an unmanaged device: the report-only policy would fail, until the guest is
    // in "Partner auditors".
    let pat = "pat@northwind.example";
    let inv = app.invite(pat, crate::guests::LANDING, None).await;
    let upn = inv["invitedUser"]["userPrincipalName"].as_str().unwrap().to_string();
    let result = |w: &Value| {
        w["appliedConditionalAccessPolicies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["displayName"] == "Guests need a compliant device (report-only)")
            .map(|r| r["result"].as_str().unwrap().to_string())
    };
    assert_eq!(result(&what_if(&app, &token, &upn).await).as_deref(), Some("reportOnlyFailure"));
    add_member(&app, &token, &auditors, member_ref(&app, inv["invitedUser"]["id"].as_str().unwrap())).await;
    assert_eq!(result(&what_if(&app, &token, &upn).await).as_deref(), Some("reportOnlyNotApplied"));
}

#[tokio::test]
async fn the_groups_claim_is_in_tokens_of_apps_that_ask_for_it_only() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let auditors = auditors_id(&app, &token).await;
    let other = create_group(&app, &token, "Reviewers").await["id"].as_str().unwrap().to_string();
    let iw = app.user("fabrikam", IW).await;
    add_member(&app, &token, &auditors, member_ref(&app, iw.id)).await;
    add_member(&app, &token, &other, member_ref(&app, iw.id)).await;
    let rp = app.rp("fabrikam");

    // test-rp does not ask: no groups claim in either token.
    let tokens = rp_sign_in(&app, IW).await.unwrap();
    let id = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    let access = rp.verify(tokens["access_token"].as_str().unwrap(), "at+jwt").await;
    assert!(id.get("groups").is_none() && access.get("groups").is_none(), "{id} {access}");

    // Applications show what they ask for; the demo's Bar asks for security groups.
    let (_, apps) = app.graph(Method::GET, "applications", Some(&token), None).await;
    let asks = |client: &str| {
        apps["value"].as_array().unwrap().iter().find(|a| a["appId"] == client).unwrap()["groupMembershipClaims"]
            .clone()
    };
    assert_eq!((asks("bar"), asks("test-rp")), (json!("SecurityGroup"), Value::Null));

    // test-rp now asks: both tokens carry the ids of the user's groups.
    let tid = app.tenant_id("fabrikam").await;
    let mut test_rp = app.state.store.app(&tid, "test-rp").await.unwrap().unwrap();
    test_rp.group_membership_claims = Some("SecurityGroup".into());
    app.state.store.put_app(&test_rp).await.unwrap();
    let tokens = rp_sign_in(&app, IW).await.unwrap();
    let id = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    let access = rp.verify(tokens["access_token"].as_str().unwrap(), "at+jwt").await;
    let mut expected = vec![auditors.clone(), other.clone()];
    expected.sort();
    for claims in [&id, &access] {
        let mut got: Vec<String> =
            claims["groups"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().to_string()).collect();
        got.sort();
        assert_eq!(got, expected, "{claims}");
    }
    // A user in no group gets no claim.
    let tokens = rp_sign_in(&app, ADMIN).await.unwrap();
    assert!(rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await.get("groups").is_none());

    // The demo app Bar shows the claim among the validated ones.
    let browser = app.browser();
    let page = browser.follow_any(browser.get(&format!("{}/demo/bar/login", app.url)).await).await;
    let page = browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", IW)).await).await;
    let shown = browser
        .follow_any(browser.post_abs(&page.url, &page.form("password").set("password", &app.password(IW))).await)
        .await;
    let claims = claims_table(&shown);
    let mut shown_groups: Vec<&str> = claims["groups"].split(' ').collect();
    shown_groups.sort();
    assert_eq!(shown_groups, expected, "{claims:?}");
}

#[tokio::test]
async fn the_admin_page_lists_groups_with_their_members() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let auditors = auditors_id(&app, &token).await;
    let iw = app.user("fabrikam", IW).await;
    add_member(&app, &token, &auditors, member_ref(&app, iw.id)).await;
    create_group(&app, &token, "Reviewers").await;

    let browser = app.browser();
    let login = browser.follow(browser.get("/fabrikam/admin").await).await;
    let p = browser.follow(browser.submit(&login.form("identify").set("login", ADMIN)).await).await;
    let page = browser.follow(browser.submit(&p.form("password").set("password", &app.password(ADMIN))).await).await;
    assert!(page.has("table#groups caption"), "{}", page.body);
    let headers: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("table#groups thead th[scope=col]").unwrap())
        .map(|h| h.text().collect())
        .collect();
    assert_eq!(headers, ["Group", "Members", "Member user principal names"]);
    let row = |id: &str, css: &str| page.text(&format!("table#groups tr[data-group=\"{id}\"] {css}"));
    assert_eq!(row(&auditors, "th").as_deref(), Some("Partner auditors"));
    assert_eq!(row(&auditors, "td.count").as_deref(), Some("1"));
    assert_eq!(row(&auditors, "td.members").as_deref(), Some(IW));
    assert!(page.body.contains("Reviewers"));
}
