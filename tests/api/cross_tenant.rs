//! Cross-tenant access settings (DESIGN §13): Graph `crossTenantAccessPolicy/default` and
//! `partners`, and what they do to invitations, redemptions, sign-ins, refreshes and the
//! inbound trust of a sibling tenant's compliant device.
use gatehouse::model::TenantId;
use gatehouse::policy::cross_tenant::{
    AccessType, B2bSetting, InboundTrustSettings, PartnerSettings, Target, TargetType, Targets,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::guests::{LANDING, accept, to_consent};
use crate::helpers::*;

const SALLY: &str = "sally@contoso.example";
const PARTNERS: &str = "policies/crossTenantAccessPolicy/partners";
const DEFAULT: &str = "policies/crossTenantAccessPolicy/default";

fn targets(access: AccessType, list: &[(&str, TargetType)]) -> Targets {
    Targets {
        access_type: access,
        targets: list.iter().map(|(t, ty)| Target { target: t.to_string(), target_type: *ty }).collect(),
    }
}

fn block_all_users() -> Option<B2bSetting> {
    Some(B2bSetting {
        users_and_groups: Some(targets(AccessType::Blocked, &[("AllUsers", TargetType::User)])),
        applications: None,
    })
}

/// Writes `owner`'s settings for `partner` straight to the store (Contoso has no admin client
/// in the demo; Fabrikam's go through Graph in the CRUD tests).
async fn set_partner(app: &TestApp, owner: &str, entry: PartnerSettings) {
    let mut t = app.state.store.tenant_by_slug(owner).await.unwrap().unwrap();
    t.cross_tenant.partners.retain(|p| p.tenant_id != entry.tenant_id);
    t.cross_tenant.partners.push(entry);
    app.state.store.put_tenant(&t).await.unwrap();
}

async fn partner_of(app: &TestApp, slug: &str) -> PartnerSettings {
    PartnerSettings { tenant_id: app.tenant_id(slug).await.0, ..Default::default() }
}

/// Sally redeems an invitation (to no app) in a browser of her own.
async fn redeem_sally(app: &TestApp) {
    let inv = app.invite(SALLY, LANDING, None).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), SALLY, &app.password(SALLY)).await;
    let done = accept(&browser, &consent).await;
    assert_eq!(done.location.as_deref(), Some(LANDING), "{}", done.body);
}

/// Opens `url` (an authorize request or a demo app's login) as sally: identifies at
/// Fabrikam, signs in at Contoso unless Contoso's SSO session answers, follows back.
async fn guest_sign_in(app: &TestApp, browser: &Browser, url: &str) -> Page {
    let page = browser.follow_any(browser.get(url).await).await;
    let page = if page.url.contains("/fabrikam/") && page.has("form#identify") {
        browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", SALLY)).await).await
    } else {
        page
    };
    if page.url.contains("/contoso/") && (page.has("form#identify") || page.has("form#home-login")) {
        browser.home_sign_in(page, SALLY, &app.password(SALLY)).await
    } else {
        page
    }
}

/// Sally's sign-in to Fabrikam's test-rp: the token response, or the page it stopped on.
async fn rp_sign_in(app: &TestApp, browser: &Browser) -> Result<Value, Page> {
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let back = guest_sign_in(app, browser, &start.url).await;
    let Some(code) = back.location.as_deref().and_then(|l| query_param(l, "code")) else { return Err(back) };
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    Ok(tokens)
}

fn assert_cross_tenant_blocked(page: &Page, names: &[&str]) {
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{} {}", page.url, page.body);
    assert_eq!(page.error_code().as_deref(), Some("cross_tenant_blocked"), "{}", page.body);
    for n in names {
        assert!(page.body.contains(n), "the page names {n}: {}", page.body);
    }
    assert!(!page.body.contains("setting)"), "no policy internals on the page: {}", page.body);
}

/// The newest sign-in log entry of `tenant` that failed with `cross_tenant_blocked`.
async fn blocked_entry(app: &TestApp, tenant: &str) -> gatehouse::model::SignInLogEntry {
    let id = app.tenant_id(tenant).await;
    let log = app.state.store.signin_log(&id, 100).await.unwrap();
    // Newest first.
    log.into_iter()
        .find(|e| e.status.error.as_deref() == Some("cross_tenant_blocked"))
        .expect("a cross_tenant_blocked sign-in log entry")
}

#[tokio::test]
async fn default_and_partner_settings_round_trip_in_graph_shapes() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let contoso = app.tenant_id("contoso").await.to_string();

    // Nothing configured: Entra's service default.
    let (status, d) = app.graph(Method::GET, DEFAULT, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["isServiceDefault"], true);
    assert_eq!(d["b2bCollaborationInbound"]["usersAndGroups"]["accessType"], "allowed");
    assert_eq!(d["b2bCollaborationInbound"]["usersAndGroups"]["targets"][0]["target"], "AllUsers");
    assert_eq!(d["b2bCollaborationOutbound"]["applications"]["targets"][0]["target"], "AllApplications");
    assert_eq!(d["inboundTrust"]["isMfaAccepted"], false);

    let (status, body) = app
        .graph(
            Method::PATCH,
            DEFAULT,
            Some(&token),
            Some(json!({
                "b2bCollaborationInbound": {"applications": {"accessType": "blocked",
                    "targets": [{"target": "foo", "targetType": "application"}]}},
                "inboundTrust": {"isMfaAccepted": true},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, d) = app.graph(Method::GET, DEFAULT, Some(&token), None).await;
    assert_eq!(d["isServiceDefault"], false);
    assert_eq!(d["b2bCollaborationInbound"]["applications"]["accessType"], "blocked");
    assert_eq!(d["b2bCollaborationInbound"]["usersAndGroups"]["targets"][0]["target"], "AllUsers");
    assert_eq!(d["inboundTrust"]["isMfaAccepted"], true);

    // A partner: every field, hybrid-joined trust included (supported now).
    let inbound = json!({"usersAndGroups": {"accessType": "allowed",
        "targets": [{"target": app.user("contoso", SALLY).await.id.to_string(), "targetType": "user"}]}});
    let (status, p) = app
        .graph(
            Method::POST,
            PARTNERS,
            Some(&token),
            Some(json!({
                "tenantId": contoso,
                "b2bCollaborationInbound": inbound,
                "inboundTrust": {"isCompliantDeviceAccepted": true, "isHybridAzureADJoinedDeviceAccepted": true},
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["tenantId"], contoso);
    assert_eq!(p["isServiceProvider"], false);
    assert_eq!(p["b2bCollaborationInbound"]["usersAndGroups"], inbound["usersAndGroups"]);
    assert_eq!(p["b2bCollaborationInbound"]["applications"], Value::Null, "null: the default's applications");
    assert_eq!(p["b2bCollaborationOutbound"], Value::Null, "null: inherits the default");
    assert_eq!(
        p["inboundTrust"],
        json!({"isMfaAccepted": false, "isCompliantDeviceAccepted": true, "isHybridAzureADJoinedDeviceAccepted": true})
    );
    let (status, got) = app.graph(Method::GET, &format!("{PARTNERS}/{contoso}"), Some(&token), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &p));
    let (_, list) = app.graph(Method::GET, PARTNERS, Some(&token), None).await;
    assert_eq!(list["value"], json!([p]));

    // null returns a setting to the default; absent fields stay.
    let (status, _) = app
        .graph(
            Method::PATCH,
            &format!("{PARTNERS}/{contoso}"),
            Some(&token),
            Some(json!({"b2bCollaborationInbound": null, "inboundTrust": {"isMfaAccepted": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.graph(Method::GET, &format!("{PARTNERS}/{contoso}"), Some(&token), None).await;
    assert_eq!(got["b2bCollaborationInbound"], Value::Null);
    assert_eq!(got["inboundTrust"]["isMfaAccepted"], true);
    assert_eq!(got["inboundTrust"]["isCompliantDeviceAccepted"], true);
    let stored = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    assert!(stored.cross_tenant.trust_for(app.tenant_id("contoso").await.0).is_hybrid_azure_ad_joined_device_accepted);

    let (status, _) = app.graph(Method::DELETE, &format!("{PARTNERS}/{contoso}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = app.graph(Method::GET, &format!("{PARTNERS}/{contoso}"), Some(&token), None).await;
    assert_graph_error(status, &err, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
}

#[tokio::test]
async fn bad_cross_tenant_settings_get_graph_errors_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let contoso = app.tenant_id("contoso").await.to_string();
    let fabrikam = app.tenant_id("fabrikam").await.to_string();
    let users = |access: &str, list: Value| json!({"usersAndGroups": {"accessType": access, "targets": list}});
    let apps = |access: &str, list: Value| json!({"applications": {"accessType": access, "targets": list}});
    let all_users = json!([{"target": "AllUsers", "targetType": "user"}]);
    let partner = |extra: Value| {
        let mut b = json!({"tenantId": contoso});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases: Vec<(&str, Method, String, Value, StatusCode, &str)> = vec![
        (
            "tenantId not a UUID",
            Method::POST,
            PARTNERS.into(),
            json!({"tenantId": "contoso"}),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "tenantId that is no tenant on this instance",
            Method::POST,
            PARTNERS.into(),
            json!({"tenantId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "the tenant as its own partner",
            Method::POST,
            PARTNERS.into(),
            json!({"tenantId": fabrikam}),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        ("tenantId missing", Method::POST, PARTNERS.into(), json!({}), StatusCode::BAD_REQUEST, "BadRequest"),
        (
            "accessType neither allowed nor blocked",
            Method::POST,
            PARTNERS.into(),
            partner(json!({"b2bCollaborationInbound": users("maybe", all_users.clone())})),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "unknown targetType",
            Method::POST,
            PARTNERS.into(),
            partner(
                json!({"b2bCollaborationInbound": users("allowed", json!([{"target": "AllUsers", "targetType": "robot"}]))}),
            ),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "AllUsers combined with other targets",
            Method::POST,
            PARTNERS.into(),
            partner(json!({"b2bCollaborationInbound": users("blocked", json!([
                {"target": "AllUsers", "targetType": "user"},
                {"target": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "targetType": "user"}]))})),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "no targets",
            Method::POST,
            PARTNERS.into(),
            partner(json!({"b2bCollaborationInbound": users("allowed", json!([]))})),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "a user target that is no object id",
            Method::POST,
            PARTNERS.into(),
            partner(
                json!({"b2bCollaborationInbound": users("allowed", json!([{"target": "sally", "targetType": "user"}]))}),
            ),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "an inbound application that is not Fabrikam's",
            Method::POST,
            PARTNERS.into(),
            partner(
                json!({"b2bCollaborationInbound": apps("blocked", json!([{"target": "no-such-app", "targetType": "application"}]))}),
            ),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "an outbound application that is not the partner's",
            Method::POST,
            PARTNERS.into(),
            partner(
                json!({"b2bCollaborationOutbound": apps("blocked", json!([{"target": "foo", "targetType": "application"}]))}),
            ),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "an application target among users",
            Method::POST,
            PARTNERS.into(),
            partner(
                json!({"b2bCollaborationInbound": users("allowed", json!([{"target": "foo", "targetType": "application"}]))}),
            ),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "an unknown field",
            Method::POST,
            PARTNERS.into(),
            partner(json!({"b2bDirectConnectInbound": {}})),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "isServiceProvider true",
            Method::POST,
            PARTNERS.into(),
            partner(json!({"isServiceProvider": true})),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "default with a tenantId",
            Method::PATCH,
            DEFAULT.into(),
            json!({"tenantId": contoso}),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "default: AllApplications combined",
            Method::PATCH,
            DEFAULT.into(),
            json!({"b2bCollaborationOutbound": apps("blocked", json!([
                {"target": "AllApplications", "targetType": "application"},
                {"target": "foo", "targetType": "application"}]))}),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            "PATCH of a partner not configured",
            Method::PATCH,
            format!("{PARTNERS}/{contoso}"),
            json!({"inboundTrust": {"isMfaAccepted": true}}),
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
        ),
    ];
    for (what, method, path, body, status, code) in cases {
        let before = app.snapshot().await;
        let (got, err) = app.graph(method, &path, Some(&token), Some(body)).await;
        assert_graph_error(got, &err, status, code);
        assert!(!err["error"]["message"].as_str().unwrap_or_default().is_empty(), "{what}: {err}");
        assert_same(&before, &app.snapshot().await, what);
    }
    // Two of the messages, as an admin reads them.
    let (_, err) = app
        .graph(Method::POST, PARTNERS, Some(&token), Some(json!({"tenantId": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"})))
        .await;
    assert!(err["error"]["message"].as_str().unwrap().contains("is not a tenant on this instance"), "{err}");
    let (_, err) = app
        .graph(
            Method::POST,
            PARTNERS,
            Some(&token),
            Some(partner(json!({"b2bCollaborationInbound": apps("blocked", json!([{"target": "no-such-app", "targetType": "application"}]))}))),
        )
        .await;
    assert!(err["error"]["message"].as_str().unwrap().contains("no-such-app"), "{err}");

    // A second POST of the same partner conflicts and changes nothing.
    let (status, _) = app.graph(Method::POST, PARTNERS, Some(&token), Some(json!({"tenantId": contoso}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = app.snapshot().await;
    let (status, err) = app.graph(Method::POST, PARTNERS, Some(&token), Some(json!({"tenantId": contoso}))).await;
    assert_graph_error(status, &err, StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue");
    assert_same(&before, &app.snapshot().await, "duplicate partner");
}

#[tokio::test]
async fn inviting_a_blocked_partners_address_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"invitedUserEmailAddress": SALLY, "inviteRedirectUrl": LANDING});

    // Fabrikam's inbound settings block every Contoso user.
    set_partner(
        &app,
        "fabrikam",
        PartnerSettings { b2b_collaboration_inbound: block_all_users(), ..partner_of(&app, "contoso").await },
    )
    .await;
    let before = app.snapshot().await;
    let (status, err) = app.graph(Method::POST, "invitations", Some(&token), Some(body.clone())).await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("block collaboration") && msg.contains("Contoso") && msg.contains("Fabrikam"), "{msg}");
    assert_same(&before, &app.snapshot().await, "a refused invitation stores nothing");

    // A list of allowed users may still admit the invited person: the invitation goes out.
    let sally_home = app.user("contoso", SALLY).await.id.to_string();
    let allowed = Some(B2bSetting {
        users_and_groups: Some(targets(AccessType::Allowed, &[(&sally_home, TargetType::User)])),
        applications: None,
    });
    set_partner(
        &app,
        "fabrikam",
        PartnerSettings { b2b_collaboration_inbound: allowed, ..partner_of(&app, "contoso").await },
    )
    .await;
    let (status, inv) = app.graph(Method::POST, "invitations", Some(&token), Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");

    // Contoso's outbound settings block its users from Fabrikam: refused too, naming Contoso's settings.
    set_partner(&app, "fabrikam", partner_of(&app, "contoso").await).await;
    set_partner(
        &app,
        "contoso",
        PartnerSettings { b2b_collaboration_outbound: block_all_users(), ..partner_of(&app, "fabrikam").await },
    )
    .await;
    let body = json!({"invitedUserEmailAddress": "bob@contoso.example", "inviteRedirectUrl": LANDING});
    let before = app.snapshot().await;
    let (status, err) = app.graph(Method::POST, "invitations", Some(&token), Some(body)).await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    assert!(err["error"]["message"].as_str().unwrap().starts_with("Contoso's cross-tenant access settings"), "{err}");
    assert_same(&before, &app.snapshot().await, "nothing stored");
}

#[tokio::test]
async fn redemption_blocked_by_inbound_settings_ends_on_cross_tenant_blocked_and_is_logged() {
    let app = spawn_app().await;
    let inv = app.invite(SALLY, LANDING, None).await;
    // The invitation went out before Fabrikam blocked Contoso.
    set_partner(
        &app,
        "fabrikam",
        PartnerSettings { b2b_collaboration_inbound: block_all_users(), ..partner_of(&app, "contoso").await },
    )
    .await;
    let browser = app.browser();
    let home = browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    let page = browser.home_sign_in(home, SALLY, &app.password(SALLY)).await;
    assert_cross_tenant_blocked(&page, &["Fabrikam", "Contoso"]);
    let guest = app.user("fabrikam", SALLY).await;
    assert_eq!(guest.external_user_state, Some(gatehouse::model::ExternalUserState::PendingAcceptance));
    assert!(guest.identities.is_empty(), "not redeemed");
    let entry = blocked_entry(&app, "fabrikam").await;
    assert_eq!(
        entry.status.failure_reason.as_deref(),
        Some(
            "cross-tenant access: Fabrikam inbound settings for Contoso block this user (partner inbound users setting)"
        )
    );
    assert_eq!(entry.status.error_code, 500213);
    assert_eq!(entry.user_id, Some(guest.id));

    // Unblocked, the same ticket still works.
    set_partner(&app, "fabrikam", partner_of(&app, "contoso").await).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), SALLY, &app.password(SALLY)).await;
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
}

#[tokio::test]
async fn a_redeemed_guest_is_stopped_once_inbound_blocks_and_her_refresh_token_is_refused() {
    let app = spawn_app().await;
    redeem_sally(&app).await;
    let browser = app.browser();
    let tokens = rp_sign_in(&app, &browser).await.unwrap_or_else(|p| panic!("allowed before the block: {}", p.body));
    let claims = app.rp("fabrikam").verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["idp"], app.issuer("contoso"));
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    let sally_home = app.user("contoso", SALLY).await.id.to_string();
    let blocked = Some(B2bSetting {
        users_and_groups: Some(targets(AccessType::Blocked, &[(&sally_home, TargetType::User)])),
        applications: None,
    });
    set_partner(
        &app,
        "fabrikam",
        PartnerSettings { b2b_collaboration_inbound: blocked, ..partner_of(&app, "contoso").await },
    )
    .await;
    // SSO at Fabrikam in the same browser, and a fresh browser: both stop.
    let page = rp_sign_in(&app, &browser).await.expect_err("blocked now");
    assert_cross_tenant_blocked(&page, &["Fabrikam", "Contoso"]);
    let page = rp_sign_in(&app, &app.browser()).await.expect_err("blocked now");
    assert_cross_tenant_blocked(&page, &["Fabrikam", "Contoso"]);
    assert!(blocked_entry(&app, "fabrikam").await.status.failure_reason.unwrap().contains("Fabrikam inbound settings"));

    let (status, body) = app.rp("fabrikam").refresh(&refresh).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // Not permanent: unblocked, the same refresh token works again.
    set_partner(&app, "fabrikam", partner_of(&app, "contoso").await).await;
    let (status, body) = app.rp("fabrikam").refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn contosos_outbound_settings_stop_sally_at_fabrikam() {
    let app = spawn_app().await;
    redeem_sally(&app).await;
    set_partner(
        &app,
        "contoso",
        PartnerSettings { b2b_collaboration_outbound: block_all_users(), ..partner_of(&app, "fabrikam").await },
    )
    .await;
    let page = rp_sign_in(&app, &app.browser()).await.expect_err("blocked by the home tenant");
    assert_cross_tenant_blocked(&page, &["Contoso", "Fabrikam"]);
    assert_eq!(
        blocked_entry(&app, "fabrikam").await.status.failure_reason.as_deref(),
        Some(
            "cross-tenant access: Contoso outbound settings for Fabrikam block this user (partner outbound users setting)"
        )
    );
    // Contoso's default (not a partner entry) decides the same way.
    set_partner(&app, "contoso", partner_of(&app, "fabrikam").await).await;
    let mut contoso = app.state.store.tenant_by_slug("contoso").await.unwrap().unwrap();
    contoso.cross_tenant.partners.clear();
    contoso.cross_tenant.default.b2b_collaboration_outbound = block_all_users();
    app.state.store.put_tenant(&contoso).await.unwrap();
    let page = rp_sign_in(&app, &app.browser()).await.expect_err("blocked by the home tenant's default");
    assert_cross_tenant_blocked(&page, &["Contoso"]);
    let why = blocked_entry(&app, "fabrikam").await.status.failure_reason.unwrap();
    assert!(why.contains("(default outbound users setting)"), "{why}");
}

#[tokio::test]
async fn an_application_targeted_block_stops_foo_and_lets_bar_through() {
    let app = spawn_app().await;
    redeem_sally(&app).await;
    let only_foo = Some(B2bSetting {
        users_and_groups: None,
        applications: Some(targets(AccessType::Blocked, &[("foo", TargetType::Application)])),
    });
    set_partner(
        &app,
        "fabrikam",
        PartnerSettings { b2b_collaboration_inbound: only_foo, ..partner_of(&app, "contoso").await },
    )
    .await;
    let browser = app.browser();
    let foo = guest_sign_in(&app, &browser, &format!("{}/demo/foo/login", app.url)).await;
    assert_cross_tenant_blocked(&foo, &["Fabrikam"]);
    assert_eq!(
        blocked_entry(&app, "fabrikam").await.status.failure_reason.as_deref(),
        Some(
            "cross-tenant access: Fabrikam inbound settings for Contoso block this application (partner inbound applications setting)"
        )
    );
    let bar = guest_sign_in(&app, &browser, &format!("{}/demo/bar/login", app.url)).await;
    assert_eq!(bar.status, StatusCode::OK, "{}", bar.body);
    assert_eq!(claims_table(&bar)["idp"], app.issuer("contoso"), "{}", bar.body);
}

#[tokio::test]
async fn a_compliant_contoso_device_passes_fabrikams_device_policy_only_with_inbound_trust() {
    let app = spawn_app().await;
    redeem_sally(&app).await;
    let fabrikam = app.tenant_id("fabrikam").await;
    let contoso: TenantId = app.tenant_id("contoso").await;
    // The demo's report-only device policy for guests is turned on.
    let mut p = app
        .state
        .store
        .policies(&fabrikam)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.display_name.contains("compliant device"))
        .unwrap();
    p.state = gatehouse::policy::PolicyState::Enabled;
    app.state.store.put_policy(&fabrikam, &p).await.unwrap();

    let browser = app.browser();
    let page = rp_sign_in(&app, &browser).await.expect_err("an unmanaged device is blocked");
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_ne!(page.error_code().as_deref(), Some("cross_tenant_blocked"));

    // Contoso marks sally's device (the one this browser registered there) compliant.
    let sally_home = app.user("contoso", SALLY).await.id;
    let devices = app.state.store.devices(&contoso).await.unwrap();
    let mut mine: Vec<_> = devices.into_iter().filter(|d| d.registered_owner == Some(sally_home)).collect();
    assert!(!mine.is_empty(), "sally's sign-ins at Contoso registered her devices there");
    for d in &mut mine {
        d.is_compliant = true;
        d.is_managed = true;
        app.state.store.put_device(&contoso, d).await.unwrap();
    }
    // Without inbound trust Fabrikam does not care what Contoso says.
    let page = rp_sign_in(&app, &browser).await.expect_err("no trust yet");
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);

    let trust = InboundTrustSettings { is_compliant_device_accepted: true, ..Default::default() };
    set_partner(&app, "fabrikam", PartnerSettings { inbound_trust: Some(trust), ..partner_of(&app, "contoso").await })
        .await;
    let tokens = rp_sign_in(&app, &browser).await.unwrap_or_else(|p| panic!("trusted home device: {}", p.body));
    let claims = app.rp("fabrikam").verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["idp"], app.issuer("contoso"));
    assert!(claims.get("xms_dev").is_none(), "the device claim is for the B2B client only");
    let log = app.state.store.signin_log(&fabrikam, 5).await.unwrap();
    let ok = log.into_iter().next().unwrap();
    assert_eq!(ok.status.error_code, 0, "{:?}", ok.status);
    let applied =
        ok.applied_conditional_access_policies.iter().find(|r| r.id == p.id).unwrap_or_else(|| panic!("{ok:?}"));
    assert_eq!(applied.result, gatehouse::policy::PolicyOutcome::Success);

    // A refresh keeps the vouched device while the trust holds.
    let (status, body) = app.rp("fabrikam").refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn group_targets_decide_by_the_home_users_groups_at_home() {
    let app = spawn_app().await;
    redeem_sally(&app).await;
    // A Contoso group, written at Contoso (its admin would use Graph groups there).
    let mut contoso = app.state.store.tenant_by_slug("contoso").await.unwrap().unwrap();
    let contractors = uuid::Uuid::new_v4();
    contoso.groups.push(gatehouse::model::Group {
        id: contractors,
        display_name: "Contractors".into(),
        description: None,
        mail_nickname: "contractors".into(),
        security_enabled: true,
        created_date_time: "2026-01-01T00:00:00Z".into(),
    });
    app.state.store.put_tenant(&contoso).await.unwrap();
    let group = contractors.to_string();
    // Fabrikam lets in only that Contoso group.
    let only_group = Some(B2bSetting {
        users_and_groups: Some(targets(AccessType::Allowed, &[(&group, TargetType::Group)])),
        applications: None,
    });
    set_partner(
        &app,
        "fabrikam",
        PartnerSettings { b2b_collaboration_inbound: only_group, ..partner_of(&app, "contoso").await },
    )
    .await;
    let page = rp_sign_in(&app, &app.browser()).await.expect_err("sally is not in Contractors");
    assert_cross_tenant_blocked(&page, &["Fabrikam", "Contoso"]);

    // At Contoso, sally joins Contractors: Fabrikam's inbound setting now lets her in.
    let mut sally = app.user("contoso", SALLY).await;
    sally.member_of.push(contractors);
    app.state.store.put_user(&sally).await.unwrap();
    if let Err(page) = rp_sign_in(&app, &app.browser()).await {
        panic!("a member of the allowed home group passes: {} {}", page.url, page.body);
    }

    // Contoso blocks its Contractors from collaborating with Fabrikam: the home decides too.
    let blocked_group = Some(B2bSetting {
        users_and_groups: Some(targets(AccessType::Blocked, &[(&group, TargetType::Group)])),
        applications: None,
    });
    set_partner(
        &app,
        "contoso",
        PartnerSettings { b2b_collaboration_outbound: blocked_group, ..partner_of(&app, "fabrikam").await },
    )
    .await;
    let page = rp_sign_in(&app, &app.browser()).await.expect_err("Contoso's outbound block of the group");
    assert_cross_tenant_blocked(&page, &["Contoso"]);
    let why = blocked_entry(&app, "fabrikam").await.status.failure_reason.unwrap();
    assert!(why.contains("Contoso outbound settings"), "{why}");
}
