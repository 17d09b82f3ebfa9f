//! Guests: invitation → redemption through each kind of home IdP → tokens; the ticket and
//! OTP error cases; concurrency.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

pub const LANDING: &str = "http://127.0.0.1:9/landing";

/// Redeems a ticket up to the consent page: `home` signs in at the home IdP.
pub async fn to_consent(browser: &Browser, redeem_url: &str, login: &str, password: &str) -> Page {
    let home = browser.follow_any(browser.get(redeem_url).await).await;
    let back = browser.home_sign_in(home, login, password).await;
    assert!(back.has("form#consent"), "expected the consent page, got {} {}:\n{}", back.status, back.url, back.body);
    back
}

/// Accepts; returns the redirect to inviteRedirectUrl.
pub async fn accept(browser: &Browser, consent: &Page) -> Page {
    browser.post_abs(&consent.url, &consent.form("consent").set("decision", "accept")).await
}

/// Signs the (already redeemed, SSO'd) guest in to test-rp and returns verified ID token claims.
async fn guest_tokens(app: &TestApp, browser: &Browser) -> Value {
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let page = browser.follow_any(browser.get(&start.url).await).await;
    let loc = page.location.clone().unwrap_or_else(|| panic!("expected a redirect to the RP: {}", page.body));
    let code = query_param(&loc, "code").expect("code");
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await
}

async fn assert_guest_claims(app: &TestApp, claims: &Value, email: &str, idp: &str, amr: &str) {
    let user = app.user("fabrikam", email).await;
    assert_eq!(claims["acct"], 1);
    assert_eq!(claims["idp"], idp);
    assert_eq!(claims["amr"], json!([amr]));
    assert_eq!(claims["acr"], "1");
    assert_eq!(claims["email"], email);
    assert_eq!(claims["upn"], user.user_principal_name);
    assert!(user.user_principal_name.contains("#EXT#@fabrikam.example"));
    assert_eq!(claims["oid"], user.id.to_string(), "the object id is the resource tenant's guest");
    assert_eq!(claims["tid"], app.tenant_id("fabrikam").await.to_string());
}

#[tokio::test]
async fn invitation_creates_the_guest_at_once_with_graph_shapes() {
    let app = spawn_app().await;
    let inv = app.invite("sally@contoso.example", LANDING, Some("foo")).await;
    assert_eq!(inv["status"], "PendingAcceptance");
    assert_eq!(inv["invitedUserEmailAddress"], "sally@contoso.example");
    assert!(inv["inviteRedeemUrl"].as_str().unwrap().starts_with(&format!("{}/redeem?ticket=", app.url)));
    let user = app.user("fabrikam", "sally@contoso.example").await;
    assert_eq!(inv["invitedUser"]["id"], user.id.to_string());
    assert_eq!(user.user_principal_name, "sally_contoso.example#EXT#@fabrikam.example");
    assert_eq!(user.creation_type.as_deref(), Some("Invitation"));
    assert_eq!(user.external_user_state, Some(gatehouse::model::ExternalUserState::PendingAcceptance));
    assert!(
        app.state
            .store
            .outbox(10)
            .await
            .unwrap()
            .iter()
            .any(|m| m.to == "sally@contoso.example" && m.redeem_url.as_deref() == inv["inviteRedeemUrl"].as_str())
    );
    // The ticket is stored hashed: apart from the demo's mailbox, its clear text is nowhere in the store.
    let ticket = query_param(inv["inviteRedeemUrl"].as_str().unwrap(), "ticket").unwrap();
    assert!(!app.snapshot().await.iter().filter(|(tree, _, _)| tree != "outbox").any(|(_, k, v)| contains(
        k,
        ticket.as_bytes()
    ) || contains(
        v,
        ticket.as_bytes()
    )));
    // Inviting again returns the same user.
    let again = app.invite("Sally@Contoso.example", LANDING, None).await;
    assert_eq!(again["invitedUser"]["id"], inv["invitedUser"]["id"]);
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn partner_tenant_guest_redeems_and_signs_in_with_federated_claims() {
    let app = spawn_app().await;
    let inv = app.invite("sally@contoso.example", LANDING, Some("foo")).await;
    let browser = app.browser();
    let consent = to_consent(
        &browser,
        inv["inviteRedeemUrl"].as_str().unwrap(),
        "sally@contoso.example",
        &app.password("sally@contoso.example"),
    )
    .await;
    assert!(consent.body.contains("Fabrikam"));
    let done = accept(&browser, &consent).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location.as_deref(), Some(LANDING), "ends at inviteRedirectUrl");
    let user = app.user("fabrikam", "sally@contoso.example").await;
    assert_eq!(user.external_user_state, Some(gatehouse::model::ExternalUserState::Accepted));
    assert_eq!(user.identities[0].issuer, app.issuer("contoso"));
    let claims = guest_tokens(&app, &browser).await;
    assert_guest_claims(&app, &claims, "sally@contoso.example", &app.issuer("contoso"), "fed").await;

    // Later, in a new browser: identify with the email → sent to contoso again.
    let later = app.browser();
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let page = later.follow_any(later.get(&start.url).await).await;
    let home = later
        .follow_any(later.post_abs(&page.url, &page.form("identify").set("login", "sally@contoso.example")).await)
        .await;
    assert!(home.url.contains("/contoso/"), "guest sent to the recorded home IdP: {}", home.url);
    let back = later.home_sign_in(home, "sally@contoso.example", &app.password("sally@contoso.example")).await;
    let code = query_param(back.location.as_deref().expect("to the RP"), "code").unwrap();
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK);
    let claims = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["amr"], json!(["fed"]));
}

#[tokio::test]
async fn demo_walk_ends_at_bar_showing_guest_claims() {
    let app = spawn_app().await;
    let bar_login = format!("{}/demo/bar/login", app.url);
    let inv = app.invite("sally@contoso.example", &bar_login, Some("bar")).await;
    let browser = app.browser();
    let consent = to_consent(
        &browser,
        inv["inviteRedeemUrl"].as_str().unwrap(),
        "sally@contoso.example",
        &app.password("sally@contoso.example"),
    )
    .await;
    let shown = browser.follow_any(accept(&browser, &consent).await).await;
    assert!(shown.has("table#claims"), "{}", shown.body);
    assert!(shown.body.contains("sally_contoso.example#EXT#@fabrikam.example"));
}

#[tokio::test]
async fn social_and_consumer_stub_guests_redeem_through_real_oidc() {
    let app = spawn_app().await;
    for (email, stub) in [("gsamoogle@gmail.example", "social"), ("alex@outlook.example", "msa")] {
        app.invite(email, LANDING, Some("bar")).await;
        let inv_url =
            app.state.store.outbox(10).await.unwrap().into_iter().find(|m| m.to == email).unwrap().redeem_url.unwrap();
        let browser = app.browser();
        let home = browser.follow_any(browser.get(&inv_url).await).await;
        assert!(home.url.contains(&format!("/stub/{stub}/authorize")), "{}", home.url);
        assert!(home.has("form#home-login"));
        let consent = browser.home_sign_in(home, email, &app.password(email)).await;
        assert!(consent.has("form#consent"), "{}", consent.body);
        assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
        let claims = guest_tokens(&app, &browser).await;
        assert_guest_claims(&app, &claims, email, &format!("{}/stub/{stub}", app.url), "fed").await;
    }
}

#[tokio::test]
async fn email_otp_guest_redeems_with_a_code_from_the_outbox() {
    let app = spawn_app().await;
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    let browser = app.browser();
    let page = browser
        .send_email_code(browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await)
        .await;
    assert!(page.has("form#email-otp"), "{}", page.body);
    let code = app.latest_otp(email).await;
    assert_eq!(code.len(), 8);
    let consent =
        browser.follow_any(browser.post_abs(&page.url, &page.form("email-otp").set("code", &code)).await).await;
    assert!(consent.has("form#consent"), "{}", consent.body);
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
    let claims = guest_tokens(&app, &browser).await;
    assert_guest_claims(&app, &claims, email, "mail", "otp").await;
}

#[tokio::test]
async fn external_oidc_provider_guest_redeems_via_a_second_gatehouse() {
    let app = spawn_app().await;
    let partner = spawn_app().await;
    // The partner (another gatehouse instance) knows pat@litware.example and registers us as a client.
    let ptid = partner.tenant_id("fabrikam").await;
    let hash = gatehouse::password::hash("Litware-pass-1", &partner.state.config.argon2).unwrap();
    partner
        .state
        .store
        .put_user(&gatehouse::model::User {
            id: gatehouse::model::UserId::new(),
            tenant_id: ptid,
            user_principal_name: "pat@litware.example".into(),
            mail: "pat@litware.example".into(),
            display_name: "Pat Litware".into(),
            account_enabled: true,
            password_hash: Some(hash),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut client = partner.state.store.app(&ptid, "test-rp").await.unwrap().unwrap();
    client.client_id = "resource-fabrikam".into();
    client.redirect_uris = vec![format!("{}/federation/callback", app.url)];
    client.secret_hashes = vec![gatehouse::secrets::digest_hex("partner-secret-123")];
    partner.state.store.put_app(&client).await.unwrap();
    let mut fabrikam = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    fabrikam.external_idps.push(gatehouse::model::ExternalIdp {
        id: "litware".into(),
        display_name: "Litware".into(),
        issuer: partner.issuer("fabrikam"),
        client_id: "resource-fabrikam".into(),
        client_secret: gatehouse::secrets::Secret::new("partner-secret-123"),
        domains: vec!["litware.example".into()],
        metadata_url: String::new(),
        scope: gatehouse::model::DEFAULT_IDP_SCOPE.into(),
    });
    app.state.store.put_tenant(&fabrikam).await.unwrap();

    let inv = app.invite("pat@litware.example", LANDING, None).await;
    let browser = app.browser();
    let home = browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    assert!(home.url.starts_with(&partner.url), "sent to the external provider: {}", home.url);
    let consent = browser.home_sign_in(home, "pat@litware.example", "Litware-pass-1").await;
    assert!(consent.has("form#consent"), "{}", consent.body);
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
    let claims = guest_tokens(&app, &browser).await;
    assert_guest_claims(&app, &claims, "pat@litware.example", &partner.issuer("fabrikam"), "fed").await;
}

#[tokio::test]
async fn replayed_expired_and_voided_tickets_get_their_own_page_and_change_nothing() {
    let app = spawn_app().await;
    let inv = app.invite("pat@northwind.example", LANDING, None).await;
    let url = inv["inviteRedeemUrl"].as_str().unwrap().to_string();

    // Reset redemption: a new ticket, the old one is void.
    let token = app.admin_token().await;
    let (status, reset) = app
        .graph(Method::POST, "invitations", Some(&token), Some(json!({
            "invitedUserEmailAddress": "pat@northwind.example", "inviteRedirectUrl": LANDING, "resetRedemption": true })))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(reset["invitedUser"]["id"], inv["invitedUser"]["id"]);
    let before = app.snapshot().await;
    let voided = app.browser().get(&url).await;
    assert_eq!((voided.status, voided.error_code().as_deref()), (StatusCode::GONE, Some("ticket_voided")));
    let unknown = app.browser().get(&format!("{}/redeem?ticket=nope", app.url)).await;
    assert_eq!((unknown.status, unknown.error_code().as_deref()), (StatusCode::NOT_FOUND, Some("ticket_unknown")));
    assert_same(&before, &app.snapshot().await, "");

    // Redeem the new ticket, then replay it.
    let new_url = reset["inviteRedeemUrl"].as_str().unwrap().to_string();
    let browser = app.browser();
    let page = browser.send_email_code(browser.follow_any(browser.get(&new_url).await).await).await;
    let code = app.latest_otp("pat@northwind.example").await;
    let consent =
        browser.follow_any(browser.post_abs(&page.url, &page.form("email-otp").set("code", &code)).await).await;
    accept(&browser, &consent).await;
    let before = app.snapshot().await;
    let replay = app.browser().get(&new_url).await;
    assert_eq!((replay.status, replay.error_code().as_deref()), (StatusCode::GONE, Some("ticket_redeemed")));
    assert_same(&before, &app.snapshot().await, "");

    // Expiry.
    let inv2 = app.invite("lee@northwind.example", LANDING, None).await;
    app.clock.advance(30 * 86400 + 1);
    let before = app.snapshot().await;
    let expired = app.browser().get(inv2["inviteRedeemUrl"].as_str().unwrap()).await;
    assert_eq!((expired.status, expired.error_code().as_deref()), (StatusCode::GONE, Some("ticket_expired")));
    assert_same(&before, &app.snapshot().await, "");
}

#[tokio::test]
async fn signing_in_at_home_as_another_account_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let contoso = app.tenant_id("contoso").await;
    let hash = gatehouse::password::hash("Other-pass-1", &app.state.config.argon2).unwrap();
    app.state
        .store
        .put_user(&gatehouse::model::User {
            id: gatehouse::model::UserId::new(),
            tenant_id: contoso,
            user_principal_name: "bob@contoso.example".into(),
            mail: "bob@contoso.example".into(),
            display_name: "Bob".into(),
            account_enabled: true,
            password_hash: Some(hash),
            ..Default::default()
        })
        .await
        .unwrap();
    let inv = app.invite("sally@contoso.example", LANDING, None).await;
    // Bob's sign-in at his home tenant is real (same server): it writes Contoso's session, code,
    // grant, transaction, device, log and his last sign-in (users), and the redemption keeps its
    // own sign-in transaction (signins). The other trees of those are compared apart: no
    // Fabrikam record changed.
    let home_trees = ["sessions", "codes", "grants", "signins", "tenant_devices", "tenant_signin_log", "tenant_users"];
    let before_all = app.snapshot().await;
    let before = app.snapshot_except(&home_trees).await;
    let browser = app.browser();
    let home = browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    let back = browser.home_sign_in(home, "bob@contoso.example", "Other-pass-1").await;
    assert_eq!((back.status, back.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("wrong_account")));
    assert!(back.body.contains("bob@contoso.example") && back.body.contains("sally@contoso.example"));
    assert_same(&before, &app.snapshot_except(&home_trees).await, "a wrong home account changes nothing at Fabrikam");
    let fabrikam = app.tenant_id("fabrikam").await;
    let (as_text, as_bytes) = (fabrikam.to_string(), fabrikam.as_bytes().to_vec());
    for (tree, key, value) in app.snapshot().await.into_iter().filter(|r| !before_all.contains(r) && r.0 != "signins") {
        let text = String::from_utf8_lossy(&value);
        let fabrikams = key.starts_with(&as_bytes) || text.contains(&as_text);
        assert!(!fabrikams, "a Fabrikam record changed in {tree}: {text}");
    }
    // The ticket is still good for the right account.
    let browser = app.browser();
    to_consent(
        &browser,
        inv["inviteRedeemUrl"].as_str().unwrap(),
        "sally@contoso.example",
        &app.password("sally@contoso.example"),
    )
    .await;
}

#[tokio::test]
async fn wrong_expired_and_exhausted_email_codes_are_refused() {
    let app = spawn_app().await;
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    let browser = app.browser();
    let page = browser
        .send_email_code(browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await)
        .await;
    let form = page.form("email-otp");
    // Wrong codes are counted on the sign-in transaction (the signins tree); nothing else changes.
    let before = app.snapshot_except(&["signins"]).await;
    for _ in 0..5 {
        let p = browser.post_abs(&page.url, &form.clone().set("code", "00000000")).await;
        assert!(p.has("form#email-otp") && p.text("p.error").unwrap().contains("not right"), "{}", p.body);
    }
    let right = app.latest_otp(email).await;
    let exhausted = browser.post_abs(&page.url, &form.clone().set("code", &right)).await;
    assert!(
        exhausted.text("p.error").unwrap().contains("Send a new code"),
        "after 5 wrong codes the right one no longer works"
    );
    assert_same(&before, &app.snapshot_except(&["signins"]).await, "wrong codes change nothing but the counter");

    // A new code works again, but not once it is older than 30 minutes.
    app.clock.advance(31);
    let resent = browser.follow_any(browser.post_abs(&page.url, &exhausted.form("email-otp-resend")).await).await;
    assert!(resent.has("form#email-otp"));
    let fresh = app.latest_otp(email).await;
    assert_ne!(fresh, right);
    app.clock.advance(1801);
    let before = app.snapshot_except(&["signins"]).await;
    let late = browser.post_abs(&page.url, &resent.form("email-otp").set("code", &fresh)).await;
    assert!(late.text("p.error").unwrap().contains("expired"));
    assert_same(&before, &app.snapshot_except(&["signins"]).await, "an expired code changes nothing");
    assert_eq!(
        app.user("fabrikam", email).await.external_user_state,
        Some(gatehouse::model::ExternalUserState::PendingAcceptance)
    );
}

#[tokio::test]
async fn declining_changes_nothing() {
    let app = spawn_app().await;
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    let browser = app.browser();
    let page = browser
        .send_email_code(browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await)
        .await;
    let consent = browser
        .follow_any(
            browser.post_abs(&page.url, &page.form("email-otp").set("code", &app.latest_otp(email).await)).await,
        )
        .await;
    // Declining ends the sign-in transaction (the signins tree); nothing else may change.
    let before = app.snapshot_except(&["signins"]).await;
    let declined = browser.post_abs(&consent.url, &consent.form("consent").set("decision", "decline")).await;
    assert!(declined.has("main#declined"));
    assert_same(&before, &app.snapshot_except(&["signins"]).await, "declining changes nothing");
}

#[tokio::test]
async fn concurrent_redemptions_of_one_ticket_succeed_exactly_once() {
    let app = spawn_app().await;
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    let url = inv["inviteRedeemUrl"].as_str().unwrap().to_string();
    let mut ready = Vec::new();
    for _ in 0..8 {
        let browser = app.browser();
        let page = browser.send_email_code(browser.follow_any(browser.get(&url).await).await).await;
        let consent = browser
            .follow_any(
                browser.post_abs(&page.url, &page.form("email-otp").set("code", &app.latest_otp(email).await)).await,
            )
            .await;
        assert!(consent.has("form#consent"));
        ready.push((browser, consent));
    }
    let results = futures_util::future::join_all(ready.iter().map(|(b, c)| accept(b, c))).await;
    let ok = results.iter().filter(|p| p.status == StatusCode::SEE_OTHER).count();
    let redeemed = results.iter().filter(|p| p.error_code().as_deref() == Some("ticket_redeemed")).count();
    assert_eq!((ok, redeemed), (1, 7), "exactly one redemption wins");
}

#[tokio::test]
async fn a_pending_guest_is_told_to_redeem_first() {
    let app = spawn_app().await;
    app.invite("sally@contoso.example", LANDING, None).await;
    let browser = app.browser();
    let page = browser.follow(browser.get(&app.rp("fabrikam").authorize_url(&[]).url).await).await;
    let resp = browser.submit(&page.form("identify").set("login", "sally@contoso.example")).await;
    assert_eq!((resp.status, resp.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("invitation_pending")));
}

#[tokio::test]
async fn invalid_invitations_get_graph_errors_and_store_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let cases = [
        json!({"invitedUserEmailAddress": "not-an-email", "inviteRedirectUrl": LANDING}),
        json!({"invitedUserEmailAddress": "a@b.example"}),
        json!({"inviteRedirectUrl": LANDING}),
        json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": "javascript:alert(1)"}),
        json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": "ftp://files.example/"}),
        json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": "/relative"}),
        json!({"invitedUserEmailAddress": "x@fabrikam.example", "inviteRedirectUrl": LANDING}),
        json!({"invitedUserEmailAddress": "iw@fabrikam.example", "inviteRedirectUrl": LANDING}),
        json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": LANDING, "appId": "no-such-app"}),
        json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": LANDING, "invitedUserType": "Member"}),
        json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": LANDING, "bogusField": 1}),
        json!({"invitedUserEmailAddress": 5, "inviteRedirectUrl": LANDING}),
    ];
    for body in cases {
        let before = app.snapshot().await;
        let (status, err) = app.graph(Method::POST, "invitations", Some(&token), Some(body.clone())).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, format!("nothing stored for {body}"));
    }
    let rp = app.rp("fabrikam");
    let (tokens, _) = rp
        .sign_in(
            &app.browser(),
            "iw@fabrikam.example",
            &app.password("iw@fabrikam.example"),
            &[("scope", "openid User.Invite.All")],
        )
        .await;
    let contoso = app.rp("contoso");
    let (_, cc) = contoso.token(&[("grant_type", "client_credentials")]).await;
    let before = app.snapshot().await;
    let body = json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": LANDING});
    let (status, err) = app.graph(Method::POST, "invitations", None, Some(body.clone())).await;
    assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    let (status, err) = app.graph(Method::POST, "invitations", Some("garbage"), Some(body.clone())).await;
    assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    // A member's token without an admin or inviter role is refused.
    let (status, err) =
        app.graph(Method::POST, "invitations", tokens["access_token"].as_str(), Some(body.clone())).await;
    assert_graph_error(status, &err, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    // A foreign tenant's app token: contoso's test-rp has no roles.
    let (status, err) = app.graph(Method::POST, "invitations", cc["access_token"].as_str(), Some(body)).await;
    assert_graph_error(status, &err, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_same(&before, &app.snapshot().await, "");
}

#[tokio::test]
async fn information_worker_invites_on_the_invite_page() {
    let app = spawn_app().await;
    let browser = app.browser();
    let start = browser.follow(browser.get("/fabrikam/invite").await).await;
    assert!(start.has("form#identify"), "the invite page asks the member to sign in first");
    let login = "iw@fabrikam.example";
    let page = browser.follow(browser.submit(&start.form("identify").set("login", login)).await).await;
    let page = browser.follow(browser.submit(&page.form("password").set("password", &app.password(login))).await).await;
    assert!(page.has("form#invite"), "{}", page.body);
    let bad = browser.submit(&page.form("invite").set("email", "nope").set("app", "foo")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text("p.error").is_some());
    let sent = browser
        .submit(
            &page
                .form("invite")
                .set("email", "sally@contoso.example")
                .set("display_name", "Sally")
                .set("app", "foo")
                .set("message", "Welcome"),
        )
        .await;
    let link = sent.attr("a#redeem-link", "href").expect("redeem link shown");
    let outbox = browser.get("/outbox").await;
    assert!(outbox.has("article.message a.redeem-link"));
    assert_eq!(outbox.attr("article.message a.redeem-link", "href").as_deref(), Some(link.as_str()));
    assert!(link.starts_with(&format!("{}/redeem?ticket=", app.url)));
    let csrfless =
        browser.post("/fabrikam/invite", &[("email".into(), "x@y.example".into()), ("app".into(), "foo".into())]).await;
    assert_eq!(csrfless.error_code().as_deref(), Some("csrf"));
}

#[tokio::test]
async fn email_codes_to_one_address_are_rate_limited() {
    let app = spawn_app().await;
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    let url = inv["inviteRedeemUrl"].as_str().unwrap().to_string();
    for _ in 0..10 {
        let b = app.browser();
        assert!(b.send_email_code(b.follow_any(b.get(&url).await).await).await.has("form#email-otp"));
    }
    let b = app.browser();
    let limited = b.send_email_code(b.follow_any(b.get(&url).await).await).await;
    assert_eq!(
        (limited.status, limited.error_code().as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, Some("otp_rate_limited"))
    );
    app.clock.advance(3601);
    let b = app.browser();
    assert!(b.send_email_code(b.follow_any(b.get(&url).await).await).await.has("form#email-otp"));
}

/// A minimal SMTP server on loopback that records one message.
async fn fake_smtp() -> (u16, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"220 fake ESMTP\r\n").await.unwrap();
        let mut data = String::new();
        let mut in_data = false;
        while let Ok(Some(line)) =
            tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line()).await.unwrap_or(Ok(None))
        {
            if in_data {
                if line == "." {
                    in_data = false;
                    w.write_all(b"250 queued\r\n").await.unwrap();
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                w.write_all(b"250 fake\r\n").await.unwrap();
            } else if upper.starts_with("DATA") {
                in_data = true;
                w.write_all(b"354 go\r\n").await.unwrap();
            } else if upper.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                w.write_all(b"250 ok\r\n").await.unwrap();
            }
        }
        let _ = tx.send(data);
    });
    (port, rx)
}

#[tokio::test]
async fn invitations_are_delivered_over_smtp_when_configured() {
    let (port, rx) = fake_smtp().await;
    let app = spawn_with(|c| {
        c.smtp = Some(gatehouse::config::Smtp {
            host: "127.0.0.1".into(),
            port,
            from: "gatehouse@fabrikam.example".into(),
            username: None,
            password: None,
            starttls: false,
            ..Default::default()
        })
    })
    .await;
    let inv = app.invite("sally@contoso.example", LANDING, None).await;
    let data = tokio::time::timeout(std::time::Duration::from_secs(10), rx).await.expect("delivered in time").unwrap();
    let ticket = query_param(inv["inviteRedeemUrl"].as_str().unwrap(), "ticket").unwrap();
    assert!(data.contains("To: sally@contoso.example"), "{data}");
    // Long lines arrive quoted-printable: undo the soft line breaks.
    let body = data.replace("=\n", "");
    assert!(body.contains(&ticket), "the email carries the redeem link:\n{data}");
}

#[tokio::test]
async fn an_uninvited_outside_address_is_told_to_ask_for_an_invitation() {
    let app = spawn_app().await;
    let browser = app.browser();
    let page = browser.follow(browser.get(&app.rp("fabrikam").authorize_url(&[]).url).await).await;
    let before = app.snapshot().await;
    let resp = browser.submit(&page.form("identify").set("login", "stranger@elsewhere.example")).await;
    assert_eq!((resp.status, resp.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("not_invited")));
    assert!(resp.body.contains("invite you"));
    assert_same(&before, &app.snapshot().await, "");
    // Unknown addresses in the tenant's own domain still get the password step (no enumeration).
    let page = browser.follow(browser.get(&app.rp("fabrikam").authorize_url(&[]).url).await).await;
    let next =
        browser.follow(browser.submit(&page.form("identify").set("login", "nobody@fabrikam.example")).await).await;
    assert!(next.has("form#password"));
}
