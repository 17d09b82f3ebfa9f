//! Who holds which MFA method, as an administrator sees it: `gatehouse users list
//! --with-methods` (the CLI as a process against the server) and the admin page's guest table.
use serde_json::Value;

use crate::guests::{accept, to_consent};
use crate::helpers::*;
use crate::passkey::{register_with_codes, spawn_rp_app, step_up};
use crate::process::BIN;

const SALLY: &str = "sally@contoso.example";
const SALLY_UPN: &str = "sally_contoso.example#EXT#@fabrikam.example";
const IW: &str = "iw@fabrikam.example";

/// The CLI against `app` with the demo's admin client, given on the command line.
async fn cli(app: &TestApp, args: &[&str]) -> String {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .args(["--server", &app.url, "--tenant", "fabrikam", "--client-id", &app.creds.admin.client_id])
        .args(["--client-secret", &app.creds.admin.client_secret, "--data-dir"])
        .arg(app.dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "gatehouse {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The cells of the table row whose first cell is `upn` (cells hold no spaces here).
fn row<'a>(table: &'a str, upn: &str) -> Option<Vec<&'a str>> {
    table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|cells| cells.first() == Some(&upn))
}

/// A guest redeems an invitation to Foo and, at Fabrikam's proof-up, chooses TOTP.
async fn guest_with_totp(app: &TestApp, email: &str) {
    let inv = app.invite(email, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), email, &app.password(email)).await;
    let page = browser.follow_any(accept(&browser, &consent).await).await;
    assert!(page.has("form#method-choice"), "{}", page.body);
    let page = browser.follow(browser.submit(&page.form("method-choice").set("method", "totp")).await).await;
    let secret = page.text("code#totp-secret").expect("TOTP proof-up");
    let code = totp_at(&secret, gatehouse::clock::Clock::now(&*app.clock));
    let shown = browser.submit(&page.form("totp-enroll").set("code", &code)).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
    assert_eq!(app.user("fabrikam", email).await.totp_methods.len(), 1);
}

/// A guest redeems an invitation to Foo and, at Fabrikam's proof-up, registers a passkey.
async fn guest_with_passkey(app: &TestApp, email: &str) {
    let inv = app.invite(email, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), email, &app.password(email)).await;
    let page = browser.follow_any(accept(&browser, &consent).await).await;
    register_with_codes(app, &browser, page).await;
    assert_eq!(app.user("fabrikam", email).await.passkeys.len(), 1);
}

#[tokio::test]
async fn users_list_with_methods_names_each_users_totp_and_passkey() {
    let app = spawn_rp_app().await;
    // iw (member) registers a passkey at step-up; sally (guest) enrols TOTP at proof-up.
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    register_with_codes(&app, &browser, page).await;
    guest_with_totp(&app, SALLY).await;

    let table = cli(&app, &["users", "list", "--with-methods"]).await;
    let header = table.lines().next().unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(header, ["UserPrincipalName", "UserType", "State", "Methods", "MfaMethods"], "{table}");
    assert_eq!(row(&table, IW), Some(vec![IW, "Member", "-", "Fido2", "passkey"]), "{table}");
    assert_eq!(row(&table, SALLY_UPN), Some(vec![SALLY_UPN, "Guest", "Accepted", "SoftwareOath", "totp"]), "{table}");
    assert_eq!(row(&table, "admin@fabrikam.example"), None, "only users holding a method:\n{table}");

    // Without the flag: the listing as before, every user, no kinds column.
    let plain = cli(&app, &["users", "list"]).await;
    let header = plain.lines().next().unwrap().split_whitespace().collect::<Vec<_>>();
    assert_eq!(header, ["UserPrincipalName", "UserType", "State", "Methods"], "{plain}");
    assert_eq!(row(&plain, IW), Some(vec![IW, "Member", "-", "Fido2"]), "{plain}");
    assert_eq!(row(&plain, "admin@fabrikam.example").map(|r| r.len()), Some(3), "no methods, no cell:\n{plain}");

    // The same user with both kinds.
    let mut iw = app.user("fabrikam", IW).await;
    iw.totp_methods = vec![gatehouse::mfa::TotpMethod::new(app.state.seal.seal("JBSWY3DPEHPK3PXP"), 0)];
    app.state.store.put_user(&iw).await.unwrap();
    let table = cli(&app, &["users", "list", "--with-methods"]).await;
    assert_eq!(row(&table, IW).and_then(|r| r.last().copied()), Some("totp+passkey"), "{table}");

    // --json: each listed user with its MFA methods as Graph returns them (no password).
    let listed: Value = serde_json::from_str(&cli(&app, &["users", "list", "--with-methods", "--json"]).await).unwrap();
    let of = |upn: &str| {
        let user = listed.as_array().unwrap().iter().find(|u| u["userPrincipalName"] == upn);
        let methods = user.unwrap_or_else(|| panic!("{upn} in {listed}"))["mfaMethods"].as_array().unwrap().clone();
        methods.iter().map(|m| m["@odata.type"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        of(IW),
        ["#microsoft.graph.softwareOathAuthenticationMethod", "#microsoft.graph.fido2AuthenticationMethod"]
    );
    assert_eq!(of(SALLY_UPN), ["#microsoft.graph.softwareOathAuthenticationMethod"]);
    let passkey = &listed.as_array().unwrap().iter().find(|u| u["userPrincipalName"] == IW).unwrap()["mfaMethods"][1];
    assert_eq!(passkey["id"], app.user("fabrikam", IW).await.passkeys[0].id.as_str());
    assert_eq!(passkey["displayName"], "Passkey");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test]
async fn admin_page_lists_each_guests_methods_in_words() {
    let app = spawn_rp_app().await;
    guest_with_passkey(&app, SALLY).await;
    guest_with_totp(&app, "admin@contoso.example").await;
    app.invite("pat@northwind.example", crate::guests::LANDING, None).await;

    let browser = app.browser();
    let login = browser.follow(browser.get("/fabrikam/admin").await).await;
    let admin = "admin@fabrikam.example";
    let p = browser.follow(browser.submit(&login.form("identify").set("login", admin)).await).await;
    let page = browser.follow(browser.submit(&p.form("password").set("password", &app.password(admin))).await).await;
    assert!(page.has("main#admin"), "{}", page.body);
    assert!(page.text("section#guests table caption").is_some_and(|c| c.contains("MFA methods")), "{}", page.body);
    let headers: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("section#guests thead th[scope=col]").unwrap())
        .map(|th| th.text().collect())
        .collect();
    assert!(headers.iter().any(|h| h == "MFA methods"), "{headers:?}");

    let cell = |page: &Page, upn: &str, css: &str| {
        let id = row_id(page, upn);
        page.text(&format!("section#guests tr[data-user='{id}'] {css}")).map(|t| t.trim().to_string())
    };
    assert_eq!(cell(&page, SALLY_UPN, "th[scope=row]").as_deref(), Some(SALLY_UPN));
    assert_eq!(cell(&page, SALLY_UPN, "td.methods").as_deref(), Some("Passkey"));
    assert_eq!(
        cell(&page, "admin_contoso.example#EXT#@fabrikam.example", "td.methods").as_deref(),
        Some("Authenticator app")
    );
    assert_eq!(cell(&page, "pat_northwind.example#EXT#@fabrikam.example", "td.methods").as_deref(), Some("None"));

    // A passkey with a name of its own is shown by that name; each method gets its words.
    let mut sally = app.user("fabrikam", SALLY).await;
    sally.passkeys[0].display_name = "YubiKey <5>".into();
    sally.totp_methods = vec![gatehouse::mfa::TotpMethod::new(app.state.seal.seal("JBSWY3DPEHPK3PXP"), 0)];
    app.state.store.put_user(&sally).await.unwrap();
    let page = browser.get("/fabrikam/admin").await;
    assert_eq!(
        cell(&page, SALLY_UPN, "td.methods").as_deref(),
        Some("Authenticator app, Passkey “YubiKey <5>”"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("YubiKey <5>"), "the name is escaped");
}

/// The `data-user` id of the guest table's row showing `upn`.
fn row_id(page: &Page, upn: &str) -> String {
    let rows = scraper::Selector::parse("section#guests tbody tr").unwrap();
    let html = page.html();
    let row = html
        .select(&rows)
        .find(|r| r.text().any(|t| t.trim() == upn))
        .unwrap_or_else(|| panic!("a row for {upn}:\n{}", page.body));
    row.value().attr("data-user").unwrap().to_string()
}

#[tokio::test]
async fn cli_mfa_reset_removes_a_real_passkey_and_totp_and_the_next_sign_in_proofs_up_again() {
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    register_with_codes(&app, &browser, page).await;
    let mut user = app.user("fabrikam", IW).await;
    user.totp_methods = vec![gatehouse::mfa::TotpMethod::new(app.state.seal.seal("JBSWY3DPEHPK3PXP"), 0)];
    app.state.store.put_user(&user).await.unwrap();
    assert!(row(&cli(&app, &["users", "list", "--with-methods"]).await, IW).unwrap().contains(&"totp+passkey"));

    let out = cli(&app, &["mfa", "reset", "--upn", IW]).await;
    assert!(out.contains(IW), "{out}");
    let user = app.user("fabrikam", IW).await;
    assert!(user.passkeys.is_empty() && user.totp_methods.is_empty() && user.recovery_code_hashes.is_empty());
    assert!(row(&cli(&app, &["users", "list", "--with-methods"]).await, IW).is_none(), "no method left");
    let (_, page) = step_up(&app, &app.browser()).await;
    assert!(page.has("form#method-choice"), "proof-up again: {}", page.body);
}
