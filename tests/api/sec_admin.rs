//! Issue 11, invitations and Graph input: an invitation cannot take over an existing user
//! (#1), control characters in stored URLs and display fields (#15, #26), the invitation
//! throttle (#26), bare addresses only (#27, markup addresses), and a table of bad inputs.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::guests::{LANDING, accept};
use crate::helpers::*;

type Snapshot = Vec<(String, Vec<u8>, Vec<u8>)>;

async fn invite_body(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.graph(Method::POST, "invitations", Some(token), Some(body)).await
}

fn assert_graph_error(got: &(StatusCode, Value), status: StatusCode, code: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["error"]["code"].as_str(), Some(code), "{what}: {}", got.1);
    assert!(got.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {}", got.1);
}

/// The member signs in to test-rp and gets tokens whose `oid` is still theirs.
async fn member_still_signs_in(app: &TestApp, login: &str, oid: gatehouse::model::UserId) {
    let rp = app.rp("fabrikam");
    let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
    let claims = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["oid"], oid.to_string());
}

/// Signs the member in on `/fabrikam/invite`; returns the invite page.
async fn invite_page(app: &TestApp, browser: &Browser, login: &str) -> Page {
    let start = browser.follow(browser.get("/fabrikam/invite").await).await;
    let page = browser.follow(browser.submit(&start.form("identify").set("login", login)).await).await;
    let page = browser.follow(browser.submit(&page.form("password").set("password", &app.password(login))).await).await;
    assert!(page.has("form#invite"), "{}", page.body);
    page
}

// ---------- #1 ----------

#[tokio::test]
async fn invitation_cannot_overwrite_an_existing_member() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let login = "iw@fabrikam.example";
    let iw = app.user("fabrikam", login).await;
    let before = app.snapshot().await;
    let answer = invite_body(
        &app,
        &token,
        json!({
            "invitedUserEmailAddress": "eve@northwind.example",
            "inviteRedirectUrl": LANDING,
            "sendInvitationMessage": true,
            "invitedUser": {"id": iw.id},
        }),
    )
    .await;
    assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", "invitedUser.id of a member");
    assert_same(&before, &app.snapshot().await, "an invitation naming a member's object id");
    assert_eq!(app.user("fabrikam", login).await, iw, "the member is unchanged");
    assert!(app.state.store.user_by_login(&iw.tenant_id, "eve@northwind.example").await.unwrap().is_none());
    member_still_signs_in(&app, login, iw.id).await;

    // The store's create path itself refuses an existing id (whatever the caller checked).
    let before = app.snapshot().await;
    let clash = gatehouse::model::User {
        id: iw.id,
        tenant_id: iw.tenant_id,
        user_principal_name: "eve_northwind.example#EXT#@fabrikam.example".into(),
        mail: "eve@northwind.example".into(),
        display_name: "Eve".into(),
        ..Default::default()
    };
    assert!(matches!(app.state.store.insert_user(&clash).await, Err(gatehouse::storage::StoreError::Conflict(_))));
    // And a new id cannot take a name (UPN or mail) another user holds.
    let name_clash = gatehouse::model::User { id: gatehouse::model::UserId::new(), mail: login.into(), ..clash };
    assert!(matches!(app.state.store.insert_user(&name_clash).await, Err(gatehouse::storage::StoreError::Conflict(_))));
    assert_same(&before, &app.snapshot().await, "insert_user with a taken id or mail");
    member_still_signs_in(&app, login, iw.id).await;
}

#[tokio::test]
async fn invitation_cannot_move_another_guest_to_a_new_address() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let pat = app.invite("pat@northwind.example", LANDING, None).await;
    let pat_id = pat["invitedUser"]["id"].as_str().unwrap().to_string();
    let pat_user = app.user("fabrikam", "pat@northwind.example").await;
    let before = app.snapshot().await;
    let answer = invite_body(
        &app,
        &token,
        json!({
            "invitedUserEmailAddress": "eve@northwind.example",
            "inviteRedirectUrl": LANDING,
            "resetRedemption": true,
            "invitedUser": {"id": pat_id},
        }),
    )
    .await;
    assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", "invitedUser.id of another guest");
    assert_same(&before, &app.snapshot().await, "an invitation naming another guest's object id");
    assert_eq!(app.user("fabrikam", "pat@northwind.example").await, pat_user);
    // The right pair still works: the guest's own id with the guest's own address.
    let (status, again) = invite_body(
        &app,
        &token,
        json!({"invitedUserEmailAddress": "pat@northwind.example", "inviteRedirectUrl": LANDING,
               "invitedUser": {"id": pat_id}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["invitedUser"]["id"], pat_id.as_str());
}

// ---------- #7 (the epoch half) ----------

#[tokio::test]
async fn reset_redemption_raises_the_guest_session_epoch() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    app.invite("pat@northwind.example", LANDING, None).await;
    let before = app.user("fabrikam", "pat@northwind.example").await;
    let (status, body) = invite_body(
        &app,
        &token,
        json!({"invitedUserEmailAddress": "pat@northwind.example", "inviteRedirectUrl": LANDING, "resetRedemption": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after = app.user("fabrikam", "pat@northwind.example").await;
    assert_eq!(after.session_epoch, before.session_epoch + 1, "credentials of the old identity end");
    assert_eq!(after.id, before.id);
}

// ---------- #15 ----------

#[tokio::test]
async fn invitation_redirect_with_line_breaks_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for redirect in [
        "http://127.0.0.1:9/landing\r\nSet-Cookie: gh_s=planted",
        "http://127.0.0.1:9/land\ning",
        "http://127.0.0.1:9/landing\t",
        "http://127.0.0.1:9/landing\u{0}",
    ] {
        let before = app.snapshot().await;
        let answer = invite_body(
            &app,
            &token,
            json!({"invitedUserEmailAddress": "pat@northwind.example", "inviteRedirectUrl": redirect,
                   "sendInvitationMessage": true}),
        )
        .await;
        assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", &format!("{redirect:?}"));
        assert_same(&before, &app.snapshot().await, format!("inviteRedirectUrl {redirect:?}"));
    }
    // What is stored is the normal form, always sendable as a Location header.
    let inv = app.invite("pat@northwind.example", "http://127.0.0.1:9/caf\u{e9} menu?x=\u{fc}", None).await;
    assert_eq!(inv["inviteRedirectUrl"], "http://127.0.0.1:9/caf%C3%A9%20menu?x=%C3%BC");
}

#[tokio::test]
async fn consent_keeps_the_ticket_when_the_redirect_cannot_be_built() {
    let app = spawn_app().await;
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    // An invitation stored before redirects were checked (raw CR/LF).
    let tid = app.tenant_id("fabrikam").await;
    let inv_id: uuid::Uuid = inv["id"].as_str().unwrap().parse().unwrap();
    let mut stored = app.state.store.invitation(&tid, &inv_id).await.unwrap().unwrap();
    stored.invite_redirect_url = format!("{LANDING}\r\nSet-Cookie: gh_s=planted");
    app.state.store.put_invitation(&stored).await.unwrap();

    let browser = app.browser();
    let page = browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    let page = browser.send_email_code(page).await;
    let code = app.latest_otp(email).await;
    let consent =
        browser.follow_any(browser.post_abs(&page.url, &page.form("email-otp").set("code", &code)).await).await;
    assert!(consent.has("form#consent"), "{}", consent.body);
    // The sign-in transaction may stay as it is; nothing else (ticket, guest, invitation) may change.
    let before = app.snapshot_except(&["signins"]).await;
    let refused = accept(&browser, &consent).await;
    assert_eq!(
        (refused.status, refused.error_code().as_deref()),
        (StatusCode::BAD_REQUEST, Some("invite_redirect_invalid")),
        "{}",
        refused.body
    );
    assert!(refused.location.is_none());
    assert_same(&before, &app.snapshot_except(&["signins"]).await, "a consent whose redirect cannot be built");
    assert_eq!(
        app.user("fabrikam", email).await.external_user_state,
        Some(gatehouse::model::ExternalUserState::PendingAcceptance)
    );

    // Once the invitation is repaired, the same ticket is accepted.
    stored.invite_redirect_url = LANDING.into();
    app.state.store.put_invitation(&stored).await.unwrap();
    let done = accept(&browser, &consent).await;
    assert_eq!((done.status, done.location.as_deref()), (StatusCode::SEE_OTHER, Some(LANDING)), "{}", done.body);
    assert_eq!(
        app.user("fabrikam", email).await.external_user_state,
        Some(gatehouse::model::ExternalUserState::Accepted)
    );
}

// ---------- #26 ----------

#[tokio::test]
async fn display_fields_with_line_breaks_are_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let forged = "Sally\r\n\r\nAccept the invitation: http://evil.example/redeem";
    let before = app.snapshot().await;
    let answer = invite_body(
        &app,
        &token,
        json!({"invitedUserEmailAddress": "sally@contoso.example", "inviteRedirectUrl": LANDING,
               "sendInvitationMessage": true, "invitedUserDisplayName": forged}),
    )
    .await;
    assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", "invitedUserDisplayName with CR/LF");
    let answer = invite_body(
        &app,
        &token,
        json!({"invitedUserEmailAddress": "sally@contoso.example", "inviteRedirectUrl": LANDING,
               "sendInvitationMessage": true, "invitedUserMessageInfo": {"customizedMessageBody": forged}}),
    )
    .await;
    assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", "customizedMessageBody with CR/LF");
    assert_same(&before, &app.snapshot().await, "invitations with forged email lines (no guest, no email)");

    // The member's displayName (the `name` claim) cannot take a line break either.
    let iw = app.user("fabrikam", "iw@fabrikam.example").await;
    let answer =
        app.graph(Method::PATCH, &format!("users/{}", iw.id), Some(&token), Some(json!({"displayName": forged}))).await;
    assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", "PATCH displayName with CR/LF");
    assert_same(&before, &app.snapshot().await, "PATCH displayName with CR/LF");

    // The invite page applies the same rule and says so on the form.
    let browser = app.browser();
    let page = invite_page(&app, &browser, "iw@fabrikam.example").await;
    let before = app.snapshot().await;
    let refused = browser
        .submit(
            &page.form("invite").set("email", "sally@contoso.example").set("display_name", forged).set("app", "foo"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.has("form#invite"));
    assert!(refused.text("p.error").is_some_and(|e| e.contains("control characters")), "{}", refused.body);
    assert_same(&before, &app.snapshot().await, "the invite page with a forged display name");
}

#[tokio::test]
async fn invitations_are_throttled_per_inviter() {
    let app = spawn_with(|c| c.rate_limit.invitations_per_minute = 3).await;
    let token = app.admin_token().await;
    let body = |n: usize| json!({"invitedUserEmailAddress": format!("guest{n}@northwind.example"), "inviteRedirectUrl": LANDING});
    for n in 0..3 {
        let (status, json) = invite_body(&app, &token, body(n)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
    let before = app.snapshot().await;
    let resp = plain_client()
        .post(format!("{}/graph/v1.0/invitations", app.url))
        .bearer_auth(&token)
        .json(&body(3))
        .send()
        .await
        .unwrap();
    let retry: i64 = resp.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let answer = (resp.status(), resp.json::<Value>().await.unwrap());
    assert_graph_error(&answer, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "the fourth invitation in a minute");
    assert_same(&before, &app.snapshot().await, "a throttled invitation");

    // Another inviter (a member on the invite page) has a throttle of their own, and the same rule.
    let browser = app.browser();
    let page = invite_page(&app, &browser, "iw@fabrikam.example").await;
    for n in 10..13 {
        let sent = browser
            .submit(&page.form("invite").set("email", &format!("guest{n}@northwind.example")).set("app", "foo"))
            .await;
        assert!(sent.has("a#redeem-link"), "{}", sent.body);
    }
    let before = app.snapshot().await;
    let limited =
        browser.submit(&page.form("invite").set("email", "guest13@northwind.example").set("app", "foo")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.body);
    assert!(limited.has("form#invite") && limited.text("p.error").is_some());
    assert_same(&before, &app.snapshot().await, "a throttled invitation on the invite page");

    // A minute later the first inviter may invite again.
    app.clock.advance(60);
    let (status, json) = invite_body(&app, &token, body(3)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
}

// ---------- #27 and markup ----------

#[tokio::test]
async fn invited_address_must_be_a_bare_address() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for email in [
        "<sally@contoso.example>",
        "x<iw@fabrikam.example>",
        "Sally Contoso <sally@contoso.example>",
        "\"Sally\" <sally@contoso.example>",
        "sally@contoso.example (Sally)",
    ] {
        let before = app.snapshot().await;
        let answer = invite_body(
            &app,
            &token,
            json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": LANDING, "sendInvitationMessage": true}),
        )
        .await;
        assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", email);
        assert_same(&before, &app.snapshot().await, format!("invitedUserEmailAddress {email:?}"));
    }
    // The member behind the own-domain address is untouched.
    let iw = app.user("fabrikam", "iw@fabrikam.example").await;
    member_still_signs_in(&app, "iw@fabrikam.example", iw.id).await;
}

#[tokio::test]
async fn markup_is_not_an_email_address() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let before = app.snapshot().await;
    let answer = invite_body(
        &app,
        &token,
        json!({"invitedUserEmailAddress": "<svg/onload=alert(3)>@x.example", "inviteRedirectUrl": LANDING,
               "sendInvitationMessage": true}),
    )
    .await;
    assert_graph_error(&answer, StatusCode::BAD_REQUEST, "BadRequest", "<svg/onload=alert(3)>@x.example");
    assert_same(&before, &app.snapshot().await, "an invitation to a markup address");
}

// ---------- the bad-input table ----------

struct Row {
    name: String,
    method: Method,
    path: String,
    body: Value,
    status: StatusCode,
    code: &'static str,
}

fn row(name: impl Into<String>, method: Method, path: impl Into<String>, body: Value) -> Row {
    Row { name: name.into(), method, path: path.into(), body, status: StatusCode::BAD_REQUEST, code: "BadRequest" }
}

fn diff(before: &Snapshot, after: &Snapshot) -> Option<String> {
    if before == after {
        return None;
    }
    let show = |r: &(String, Vec<u8>, Vec<u8>)| format!("{}:{}", r.0, String::from_utf8_lossy(&r.1));
    let gone: Vec<String> = before.iter().filter(|r| !after.contains(r)).map(show).collect();
    let new: Vec<String> = after.iter().filter(|r| !before.contains(r)).map(show).collect();
    Some(format!("the store changed: removed or changed {gone:?}; added or changed {new:?}"))
}

#[tokio::test]
async fn invitation_and_display_field_bad_input_table() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let tid = app.tenant_id("fabrikam").await;
    let iw = app.user("fabrikam", "iw@fabrikam.example").await.id;
    let admin = app.user("fabrikam", "admin@fabrikam.example").await.id;
    let pat =
        app.invite("pat@northwind.example", LANDING, None).await["invitedUser"]["id"].as_str().unwrap().to_string();
    let policy = app.state.store.policies(&tid).await.unwrap().into_iter().next().unwrap().id;
    let location = app.state.store.named_locations(&tid).await.unwrap().into_iter().next().unwrap().id;
    let device = {
        // iw's first sign-in registers a device.
        app.rp("fabrikam")
            .sign_in(&app.browser(), "iw@fabrikam.example", &app.password("iw@fabrikam.example"), &[])
            .await;
        app.state.store.devices(&tid).await.unwrap().into_iter().next().expect("a registered device").id
    };

    let valid = json!({"invitedUserEmailAddress": "new@northwind.example", "inviteRedirectUrl": LANDING,
                       "sendInvitationMessage": true});
    let inv = |name: &str, k: &str, v: Value| {
        let mut b = valid.clone();
        b[k] = v;
        row(format!("invitation: {name}"), Method::POST, "invitations", b)
    };
    let policy_body = |name: Value| {
        json!({"displayName": name, "state": "enabled",
               "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
               "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})
    };
    let location_body = |name: Value| json!({"displayName": name, "ipRanges": [{"cidrAddress": "198.51.100.0/24"}], "isTrusted": false});
    let policies = "identity/conditionalAccess/policies";
    let locations = "identity/conditionalAccess/namedLocations";
    let controls = [
        ("CR/LF", "a\r\nb"),
        ("LF", "a\nb"),
        ("tab", "a\tb"),
        ("NUL", "a\u{0}b"),
        ("DEL", "a\u{7f}b"),
        ("NEL (C1)", "a\u{85}b"),
        ("line separator", "a\u{2028}b"),
        ("right-to-left override", "evil\u{202e}moc.elgoog"),
    ];

    let mut rows = vec![
        // ---- invitation ids ----
        inv("invitedUser.id unknown", "invitedUser", json!({"id": uuid::Uuid::new_v4()})),
        inv("invitedUser.id of another guest", "invitedUser", json!({"id": pat})),
        inv("invitedUser.id of a member", "invitedUser", json!({"id": iw})),
        inv("invitedUser.id of the Global Administrator", "invitedUser", json!({"id": admin})),
        inv("invitedUser.id malformed", "invitedUser", json!({"id": "not-a-uuid"})),
        inv("invitedUser.id a number", "invitedUser", json!({"id": 42})),
        inv("invitedUser.id the nil UUID", "invitedUser", json!({"id": uuid::Uuid::nil()})),
        inv("invitedUser with an unknown field", "invitedUser", json!({"id": iw, "mail": "x@y.example"})),
        // ---- addresses ----
        inv("address in angle brackets", "invitedUserEmailAddress", "<sally@contoso.example>".into()),
        inv("address with a display name", "invitedUserEmailAddress", "Sally <sally@contoso.example>".into()),
        inv("own domain hidden in display syntax", "invitedUserEmailAddress", "x<iw@fabrikam.example>".into()),
        inv("quoted local part", "invitedUserEmailAddress", "\"sally\"@contoso.example".into()),
        inv("comment", "invitedUserEmailAddress", "sally@contoso.example (Sally)".into()),
        inv("markup local part", "invitedUserEmailAddress", "<svg/onload=alert(3)>@x.example".into()),
        inv("markup domain", "invitedUserEmailAddress", "x@<img src=x onerror=alert(1)>.example".into()),
        inv("quote in the local part", "invitedUserEmailAddress", "a\"onmouseover=x@x.example".into()),
        inv("IP literal", "invitedUserEmailAddress", "sally@[127.0.0.1]".into()),
        inv("trailing LF", "invitedUserEmailAddress", "new@northwind.example\n".into()),
        inv("two addresses", "invitedUserEmailAddress", "a@northwind.example, b@northwind.example".into()),
        inv("non-ASCII local part", "invitedUserEmailAddress", "s\u{e4}lly@contoso.example".into()),
        inv("#EXT# in the local part", "invitedUserEmailAddress", "a#EXT#@northwind.example".into()),
        inv("local part over 64", "invitedUserEmailAddress", format!("{}@northwind.example", "a".repeat(65)).into()),
        inv("address over 254", "invitedUserEmailAddress", format!("a@{}.example", "b.".repeat(130)).into()),
        // ---- the redirect URL ----
        inv("redirect over 2048", "inviteRedirectUrl", format!("{LANDING}?x={}", "a".repeat(2048)).into()),
        inv("redirect javascript:", "inviteRedirectUrl", "javascript:alert(1)".into()),
        // ---- over-long display values ----
        inv("display name over 256", "invitedUserDisplayName", "n".repeat(257).into()),
        inv("message over 2000", "invitedUserMessageInfo", json!({"customizedMessageBody": "m".repeat(2001)})),
        row(
            "PATCH user: displayName over 256",
            Method::PATCH,
            format!("users/{iw}"),
            json!({"displayName": "n".repeat(257)}),
        ),
        row("POST policy: displayName over 256", Method::POST, policies, policy_body("n".repeat(257).into())),
        row(
            "POST named location: displayName over 256",
            Method::POST,
            locations,
            location_body("n".repeat(257).into()),
        ),
        row(
            "PATCH device: displayName over 256",
            Method::PATCH,
            format!("devices/{device}"),
            json!({"displayName": "n".repeat(257)}),
        ),
    ];
    // ---- control characters in every stored URL and display field ----
    for (what, bad) in controls {
        let text = |s: &str| format!("{s} ({what})");
        rows.push(inv(&text("redirect URL"), "inviteRedirectUrl", format!("{LANDING}/{bad}").into()));
        rows.push(inv(&text("invitedUserDisplayName"), "invitedUserDisplayName", bad.into()));
        rows.push(inv(&text("customizedMessageBody"), "invitedUserMessageInfo", json!({"customizedMessageBody": bad})));
        rows.push(inv(&text("address"), "invitedUserEmailAddress", format!("new{bad}@northwind.example").into()));
        rows.push(row(
            text("PATCH user displayName"),
            Method::PATCH,
            format!("users/{iw}"),
            json!({"displayName": bad}),
        ));
        rows.push(row(
            text("PATCH guest displayName"),
            Method::PATCH,
            format!("users/{pat}"),
            json!({"displayName": bad}),
        ));
        rows.push(row(text("POST policy displayName"), Method::POST, policies, policy_body(bad.into())));
        rows.push(row(
            text("PATCH policy displayName"),
            Method::PATCH,
            format!("{policies}/{policy}"),
            json!({"displayName": bad}),
        ));
        rows.push(row(text("POST named location displayName"), Method::POST, locations, location_body(bad.into())));
        rows.push(row(
            text("PATCH named location displayName"),
            Method::PATCH,
            format!("{locations}/{location}"),
            json!({"displayName": bad}),
        ));
        rows.push(row(
            text("PATCH device displayName"),
            Method::PATCH,
            format!("devices/{device}"),
            json!({"displayName": bad}),
        ));
    }

    // Every attempt counts against the inviter's throttle (100 a minute): the table stays under it.
    assert!(rows.iter().filter(|r| r.path == "invitations").count() < 99);
    let mut failures = Vec::new();
    for r in &rows {
        let before = app.snapshot().await;
        let (status, body) = app.graph(r.method.clone(), &r.path, Some(&token), Some(r.body.clone())).await;
        let mut problems = Vec::new();
        if status != r.status || body["error"]["code"].as_str() != Some(r.code) || !body["error"]["message"].is_string()
        {
            problems.push(format!("answered {status} {body}, expected {} {}", r.status, r.code));
        }
        problems.extend(diff(&before, &app.snapshot().await));
        if !problems.is_empty() {
            failures.push(format!("{}: {}", r.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
}
