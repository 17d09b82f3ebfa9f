//! Passkeys beside TOTP (DESIGN §10): the method choice at proof-up, registration with a
//! software authenticator, the passkey challenge, and the assertions that must be refused.
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64U;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

pub(crate) const LOGIN: &str = "iw@fabrikam.example";
const AAGUID: [u8; 16] =
    [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01];

/// A server whose public URL has a domain name (WebAuthn has no relying party on an IP
/// address): `http://localhost:{port}`, the port picked free beforehand.
pub(crate) async fn spawn_rp_app() -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    spawn_with(|c| {
        c.bind = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        c.public_url = Some(format!("http://localhost:{port}"));
    })
    .await
}

/// A software authenticator: one P-256 key, `none` attestation, user presence and verification.
pub(crate) struct SoftKey {
    key: EcdsaKeyPair,
    id: Vec<u8>,
    counter: u32,
    /// The user handle the registration options named (`publicKey.user.id`).
    user_handle: Option<String>,
}

fn cbor_head(major: u8, len: usize, out: &mut Vec<u8>) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | len as u8),
        24..=255 => out.extend([m | 24, len as u8]),
        _ => out.extend([m | 25, (len >> 8) as u8, len as u8]),
    }
}

fn cbor_text(s: &str, out: &mut Vec<u8>) {
    cbor_head(3, s.len(), out);
    out.extend(s.as_bytes());
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len(), out);
    out.extend(b);
}

impl SoftKey {
    pub(crate) fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let id: Vec<u8> = (0..16).map(|_| rand_byte()).collect();
        Self { key, id, counter: 0, user_handle: None }
    }

    fn client_data(kind: &str, options: &Value, origin: &str) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"].as_str().expect("challenge");
        serde_json::to_vec(&json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false}))
            .unwrap()
    }

    fn rp_hash(rp_id: &str) -> Vec<u8> {
        Sha256::digest(rp_id.as_bytes()).to_vec()
    }

    /// `navigator.credentials.create` for the options of `script#passkey-options`: the
    /// value of the hidden field `credential` (base64url of the credential JSON).
    pub(crate) fn register(&mut self, options: &str, origin: &str) -> String {
        let options: Value = serde_json::from_str(options).expect("options JSON");
        self.user_handle = options["publicKey"]["user"]["id"].as_str().map(str::to_owned);
        let rp_id = options["publicKey"]["rp"]["id"].as_str().expect("rp id");
        self.counter += 1;
        let public = self.key.public_key().as_ref().to_vec();
        assert_eq!(public.len(), 65, "uncompressed P-256 point");
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01];
        cose.push(0x21);
        cbor_bytes(&public[1..33], &mut cose);
        cose.push(0x22);
        cbor_bytes(&public[33..65], &mut cose);
        let mut auth_data = Self::rp_hash(rp_id);
        auth_data.push(0x45); // UP | UV | AT
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend(AAGUID);
        auth_data.extend((self.id.len() as u16).to_be_bytes());
        auth_data.extend(&self.id);
        auth_data.extend(&cose);
        let mut att = vec![0xa3];
        cbor_text("fmt", &mut att);
        cbor_text("none", &mut att);
        cbor_text("attStmt", &mut att);
        att.push(0xa0);
        cbor_text("authData", &mut att);
        cbor_bytes(&auth_data, &mut att);
        let cred = json!({
            "id": B64U.encode(&self.id),
            "rawId": B64U.encode(&self.id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": B64U.encode(&att),
                "clientDataJSON": B64U.encode(Self::client_data("webauthn.create", &options, origin)),
            },
        });
        B64U.encode(serde_json::to_vec(&cred).unwrap())
    }

    /// `navigator.credentials.get`: an assertion over the page's challenge, from `origin`.
    pub(crate) fn assert(&mut self, options: &str, origin: &str) -> String {
        let options: Value = serde_json::from_str(options).expect("options JSON");
        let rp_id = options["publicKey"]["rpId"].as_str().expect("rpId");
        self.counter += 1;
        self.assert_with_counter(&options, rp_id, origin, self.counter)
    }

    /// A key nobody registered, answering with `handle` (someone else's user handle).
    pub(crate) fn with_handle(handle: String) -> Self {
        Self { user_handle: Some(handle), ..Self::new() }
    }

    /// This key answering with another user handle.
    pub(crate) fn rehandled(self, handle: String) -> Self {
        Self { user_handle: Some(handle), ..self }
    }

    pub(crate) fn handle(&self) -> String {
        self.user_handle.clone().expect("registered first")
    }

    /// A passwordless assertion (discoverable credential): it carries the user handle.
    pub(crate) fn assert_discoverable(&mut self, options: &str, origin: &str) -> String {
        let options: Value = serde_json::from_str(options).expect("options JSON");
        let rp_id = options["publicKey"]["rpId"].as_str().expect("rpId");
        self.counter += 1;
        let plain = self.assert_with_counter(&options, rp_id, origin, self.counter);
        let mut cred: Value = serde_json::from_slice(&B64U.decode(plain).unwrap()).unwrap();
        cred["response"]["userHandle"] = json!(self.user_handle.clone().expect("registered first"));
        B64U.encode(serde_json::to_vec(&cred).unwrap())
    }

    pub(crate) fn assert_with_counter(&self, options: &Value, rp_id: &str, origin: &str, counter: u32) -> String {
        let mut auth_data = Self::rp_hash(rp_id);
        auth_data.push(0x05); // UP | UV
        auth_data.extend(counter.to_be_bytes());
        let client_data = Self::client_data("webauthn.get", options, origin);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let sig = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        let cred = json!({
            "id": B64U.encode(&self.id),
            "rawId": B64U.encode(&self.id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": B64U.encode(&auth_data),
                "clientDataJSON": B64U.encode(&client_data),
                "signature": B64U.encode(sig.as_ref()),
                "userHandle": null,
            },
        });
        B64U.encode(serde_json::to_vec(&cred).unwrap())
    }
}

pub(crate) fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    aws_lc_rs::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).unwrap();
    b[0]
}

/// The member signs in to test-rp with step-up (`acr_values=2`) up to the MFA page.
pub(crate) async fn step_up(app: &TestApp, browser: &Browser) -> (AuthStart, Page) {
    let start = app.rp("fabrikam").authorize_url(&[("acr_values", "2")]);
    let page = browser.sign_in(&start.url, LOGIN, &app.password(LOGIN)).await;
    (start, page)
}

pub(crate) fn options_of(page: &Page) -> String {
    page.text("script#passkey-options").unwrap_or_else(|| panic!("no passkey options in:\n{}", page.body))
}

pub(crate) async fn tokens_from(app: &TestApp, page: &Page, start: &AuthStart) -> Value {
    let location = page.location.as_deref().unwrap_or_else(|| panic!("redirect to the RP: {}", page.body));
    let code = query_param(location, "code").unwrap();
    let (status, tokens) = app.rp("fabrikam").exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

pub(crate) async fn answer(browser: &Browser, page: &Page, credential: &str) -> Page {
    assert!(page.has("form#passkey-challenge"), "expected the passkey challenge:\n{}", page.body);
    browser.follow(browser.submit(&page.form("passkey-challenge").set("credential", credential)).await).await
}

/// Proof-up with a passkey: the choice, the registration, the recovery codes, continue.
/// Returns the key and the page after "continue" (the redirect to the RP).
pub(crate) async fn register(app: &TestApp, browser: &Browser, page: Page) -> (SoftKey, Page) {
    let (key, _, next) = register_with_codes(app, browser, page).await;
    (key, next)
}

pub(crate) async fn register_with_codes(app: &TestApp, browser: &Browser, page: Page) -> (SoftKey, Vec<String>, Page) {
    assert!(page.has("form#method-choice"), "expected the method choice:\n{}", page.body);
    assert!(page.has("form#method-choice input[type=radio][name=method][value=totp]"));
    assert!(page.has("form#method-choice input[type=radio][name=method][value=passkey]"));
    assert!(page.has("form#method-choice input[type=hidden][name=csrf]"));
    let page = browser.follow(browser.submit(&page.form("method-choice").set("method", "passkey")).await).await;
    assert!(page.has("form#passkey-register input[type=hidden][name=credential]"), "{}", page.body);
    assert!(page.has("form#passkey-register input[type=hidden][name=csrf]"));
    assert!(page.has("form#passkey-register button#passkey-start"));
    assert!(page.has("script[src='/static/passkey.js']"));
    let mut key = SoftKey::new();
    let cred = key.register(&options_of(&page), &app.url);
    let shown = browser.submit(&page.form("passkey-register").set("credential", &cred)).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
    let li = scraper::Selector::parse("ul#recovery-codes li").unwrap();
    let codes: Vec<String> =
        shown.html().select(&li).map(|e| e.text().collect::<String>().trim().to_string()).collect();
    assert_eq!(codes.len(), 10);
    let next = browser.follow(browser.submit(&shown.form("continue")).await).await;
    (key, codes, next)
}

#[tokio::test]
async fn passkey_proof_up_then_passkey_challenge_gives_hwk_and_mfa() {
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (start, page) = step_up(&app, &browser).await;
    let (mut key, done) = register(&app, &browser, page).await;
    let rp = app.rp("fabrikam");
    let id = rp.verify(tokens_from(&app, &done, &start).await["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!((id["amr"].clone(), id["acr"].clone()), (json!(["pwd", "hwk", "user", "mfa"]), json!("2")));
    let user = app.user("fabrikam", LOGIN).await;
    assert!(user.totp_methods.is_empty());
    assert_eq!(user.passkeys.len(), 1);
    assert_eq!(user.passkeys[0].aaguid, uuid::Uuid::from_bytes(AAGUID).to_string());
    assert_eq!(user.recovery_code_hashes.len(), 10);

    // The next sign-in is challenged with the passkey (no choice: no TOTP held).
    let browser = app.browser();
    let (start, page) = step_up(&app, &browser).await;
    assert!(!page.has("form#method-choice") && !page.has("form#totp-challenge"), "{}", page.body);
    assert!(page.has("form#passkey-challenge button#passkey-start"));
    let done = answer(&browser, &page, &key.assert(&options_of(&page), &app.url)).await;
    let id = rp.verify(tokens_from(&app, &done, &start).await["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(id["amr"], json!(["pwd", "hwk", "user", "mfa"]));
    let after = app.user("fabrikam", LOGIN).await;
    assert_eq!(after.passkeys[0].credential.pointer("/cred/counter"), Some(&json!(2)), "the counter moved on");
}

#[tokio::test]
async fn passkey_pages_run_only_static_passkey_js() {
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    let page = browser.follow(browser.submit(&page.form("method-choice").set("method", "passkey")).await).await;
    let resp = browser.http.get(&page.url).send().await.unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    let script_src = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).unwrap();
    assert!(script_src.contains(&format!("{}/static/passkey.js", app.url)), "{csp}");
    assert!(!script_src.contains("'self'") && !script_src.contains("unsafe"), "{csp}");
    assert!(!page.body.contains(" onclick="), "no inline handlers");
    let js = browser.http.get(format!("{}/static/passkey.js", app.url)).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.text().await.unwrap().contains("navigator.credentials.create"));
    // Other pages keep the default policy (no script file).
    let other = browser.http.get(format!("{}/", app.url)).send().await.unwrap();
    assert!(!other.headers()["content-security-policy"].to_str().unwrap().contains("passkey.js"));
}

#[tokio::test]
async fn refused_assertions_change_nothing_and_issue_nothing() {
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (start, page) = step_up(&app, &browser).await;
    let (mut key, done) = register(&app, &browser, page).await;
    tokens_from(&app, &done, &start).await;
    let own = ["signins", "tenant_signin_log"];

    // A sign-in that succeeds with assertion `used`.
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    let used = key.assert(&options_of(&page), &app.url);
    let done = answer(&browser, &page, &used).await;
    assert_eq!(done.status, StatusCode::FOUND);

    let refused = |page: &Page, what: &str| {
        assert_eq!(page.status, StatusCode::OK, "{what}: {}", page.body);
        assert!(page.location.is_none(), "{what}: no redirect to the RP");
        assert!(page.has("form#passkey-challenge") && page.has("p.error"), "{what}: {}", page.body);
    };

    // Two sign-ins at once: X and Y.
    let (bx, by) = (app.browser(), app.browser());
    let (_, px) = step_up(&app, &bx).await;
    let (start_y, py) = step_up(&app, &by).await;
    let before = app.snapshot_except(&own).await;

    // Replay: the assertion already used, on a new transaction.
    let px = answer(&bx, &px, &used).await;
    refused(&px, "a replayed assertion");
    assert_same(&before, &app.snapshot_except(&own).await, "a replayed assertion");

    // An assertion made for Y's challenge, posted to X.
    let for_y = key.assert(&options_of(&py), &app.url);
    let px = answer(&bx, &px, &for_y).await;
    refused(&px, "another transaction's challenge");
    assert_same(&before, &app.snapshot_except(&own).await, "another transaction's challenge");

    // A credential the user does not hold.
    let px = answer(&bx, &px, &SoftKey::new().assert(&options_of(&px), &app.url)).await;
    refused(&px, "an unknown credential");
    assert_same(&before, &app.snapshot_except(&own).await, "an unknown credential");

    // The right key, but clientDataJSON names another origin.
    let px = answer(&bx, &px, &key.assert(&options_of(&px), "https://evil.example")).await;
    refused(&px, "a wrong origin");
    assert_same(&before, &app.snapshot_except(&own).await, "a wrong origin");

    // A counter that did not grow (a cloned authenticator).
    let options: Value = serde_json::from_str(&options_of(&px)).unwrap();
    let rp_id = options["publicKey"]["rpId"].as_str().unwrap().to_string();
    let px = answer(&bx, &px, &key.assert_with_counter(&options, &rp_id, &app.url, 1)).await;
    refused(&px, "a counter regression");
    assert_same(&before, &app.snapshot_except(&own).await, "a counter regression");

    // A challenge is single use: X's current one, once refused, is spent too.
    let for_x = key.assert(&options_of(&px), &app.url);
    let px2 = answer(&bx, &px, "not a credential").await;
    refused(&px2, "garbage");
    let px3 = answer(&bx, &px2, &for_x).await;
    refused(&px3, "an assertion for a spent challenge");
    assert_same(&before, &app.snapshot_except(&own).await, "a spent challenge");

    // Y still signs in with its own assertion; X with a fresh one.
    let done_y = answer(&by, &py, &for_y).await;
    tokens_from(&app, &done_y, &start_y).await;
    let done_x = answer(&bx, &px3, &key.assert(&options_of(&px3), &app.url)).await;
    assert_eq!(done_x.status, StatusCode::FOUND, "{}", done_x.body);
}

#[tokio::test]
async fn mfa_reset_removes_passkeys_and_the_next_sign_in_proofs_up_again() {
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    register(&app, &browser, page).await;
    let tenant = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    let user = app.user("fabrikam", LOGIN).await;
    gatehouse::directory::users::reset_method(&app.state.store, &tenant, &user, None).await.unwrap();
    let user = app.user("fabrikam", LOGIN).await;
    assert!(user.passkeys.is_empty() && user.recovery_code_hashes.is_empty());
    let (_, page) = step_up(&app, &app.browser()).await;
    assert!(page.has("form#method-choice"), "{}", page.body);
    // TOTP is still on offer, and still today's enrolment.
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    let page = browser.follow(browser.submit(&page.form("method-choice").set("method", "totp")).await).await;
    assert!(page.has("form#totp-enroll") && page.has("code#totp-secret"), "{}", page.body);
}

#[tokio::test]
async fn without_a_domain_name_proof_up_is_totp_as_before() {
    let app = spawn_app().await;
    let (_, page) = step_up(&app, &app.browser()).await;
    assert!(page.has("form#totp-enroll") && !page.has("form#method-choice"), "{}", page.body);
}

#[tokio::test]
async fn graph_lists_and_deletes_fido2_methods() {
    use reqwest::Method;
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    register(&app, &browser, page).await;
    let token = app.admin_token().await;
    let iw = app.user("fabrikam", LOGIN).await;
    let passkey_id = iw.passkeys[0].id.clone();
    let (status, body) =
        app.graph(Method::GET, &format!("users/{}/authentication/methods", iw.id), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fido2: Vec<&Value> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethod")
        .collect();
    assert_eq!(fido2.len(), 1, "{body}");
    assert_eq!(fido2[0]["id"], passkey_id.as_str());
    assert_eq!(fido2[0]["aaGuid"], uuid::Uuid::from_bytes(AAGUID).to_string());
    assert_eq!(fido2[0]["displayName"], "Passkey");
    assert!(fido2[0]["createdDateTime"].as_str().unwrap().ends_with('Z'));
    assert!(
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.passwordAuthenticationMethod")
    );

    let one = format!("users/{}/authentication/fido2Methods/{passkey_id}", iw.id);
    let (status, got) = app.graph(Method::GET, &one, Some(&token), None).await;
    assert_eq!((status, got["id"].clone()), (StatusCode::OK, json!(passkey_id)), "{got}");
    let unknown = format!("users/{}/authentication/fido2Methods/nope", iw.id);
    let (status, body) = app.graph(Method::GET, &unknown, Some(&token), None).await;
    assert_graph_error(status, &body, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let (status, body) = app.graph(Method::DELETE, &unknown, Some(&token), None).await;
    assert_graph_error(status, &body, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    assert_eq!(app.user("fabrikam", LOGIN).await.passkeys.len(), 1, "an unknown id removes nothing");

    let (status, _) = app.graph(Method::DELETE, &one, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let user = app.user("fabrikam", LOGIN).await;
    assert!(user.passkeys.is_empty() && user.recovery_code_hashes.is_empty());
    let (_, page) = step_up(&app, &app.browser()).await;
    assert!(page.has("form#method-choice"), "proof-up again: {}", page.body);
}

#[tokio::test]
async fn a_passkey_holder_may_answer_with_a_recovery_code_instead() {
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    let (_, codes, _) = register_with_codes(&app, &browser, page).await;
    let browser = app.browser();
    let (start, page) = step_up(&app, &browser).await;
    assert!(page.has("form#passkey-challenge button#use-recovery-code"), "{}", page.body);
    let form = page.form("passkey-challenge").set("use", "recovery-code");
    let page = browser.follow(browser.submit(&form).await).await;
    assert!(page.has("form#totp-challenge"), "{}", page.body);
    let done = browser.follow(browser.submit(&page.form("totp-challenge").set("code", &codes[0])).await).await;
    let tokens = tokens_from(&app, &done, &start).await;
    let id = app.rp("fabrikam").verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    let user = app.user("fabrikam", LOGIN).await;
    assert_eq!((user.recovery_code_hashes.len(), user.passkeys.len()), (9, 1), "the code is spent, the passkey kept");
}

#[tokio::test]
async fn a_user_with_a_passkey_and_totp_chooses_passkey_first() {
    let app = spawn_rp_app().await;
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    let (mut key, _) = register(&app, &browser, page).await;
    // The same user also has an authenticator app.
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let mut user = app.user("fabrikam", LOGIN).await;
    user.totp_methods = vec![gatehouse::mfa::TotpMethod::new(app.state.seal.seal(secret), 0)];
    app.state.store.put_user(&user).await.unwrap();

    let browser = app.browser();
    let (start, page) = step_up(&app, &browser).await;
    assert!(page.has("form#method-choice"), "{}", page.body);
    assert!(page.has("input[name=method][value=passkey][checked]"), "passkey first: {}", page.body);
    let page = browser.follow(browser.submit(&page.form("method-choice").set("method", "passkey")).await).await;
    let done = answer(&browser, &page, &key.assert(&options_of(&page), &app.url)).await;
    let id =
        app.rp("fabrikam").verify(tokens_from(&app, &done, &start).await["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(id["amr"], json!(["pwd", "hwk", "user", "mfa"]));

    let browser = app.browser();
    let (start, page) = step_up(&app, &browser).await;
    let page = browser.follow(browser.submit(&page.form("method-choice").set("method", "totp")).await).await;
    assert!(page.has("form#totp-challenge"), "{}", page.body);
    let code = totp_at(secret, gatehouse::clock::Clock::now(&*app.clock));
    let done = browser.follow(browser.submit(&page.form("totp-challenge").set("code", &code)).await).await;
    let id =
        app.rp("fabrikam").verify(tokens_from(&app, &done, &start).await["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn a_passkey_set_up_in_another_window_wins_over_a_later_totp_enrolment() {
    let app = spawn_rp_app().await;
    let (first, second) = (app.browser(), app.browser());
    let (_, page1) = step_up(&app, &first).await;
    let (_, page2) = step_up(&app, &second).await;
    let totp = second.follow(second.submit(&page2.form("method-choice").set("method", "totp")).await).await;
    let secret = totp.text("code#totp-secret").unwrap();
    register(&app, &first, page1).await;
    let code = totp_at(&secret, gatehouse::clock::Clock::now(&*app.clock));
    let page = second.submit(&totp.form("totp-enroll").set("code", &code)).await;
    assert!(page.has("form#passkey-challenge") && page.has("p.error"), "{}", page.body);
    let user = app.user("fabrikam", LOGIN).await;
    assert!(user.totp_methods.is_empty() && user.passkeys.len() == 1, "nothing added");
}

/// The seed's guest: sally redeems an invitation to Foo, signs in at Contoso (her home),
/// and at Fabrikam's proof-up chooses a passkey instead of TOTP. The method is held at the
/// resource tenant, nothing changes at home, and her next sign-in to Foo is challenged with
/// the passkey.
#[tokio::test]
async fn a_guest_chooses_a_passkey_at_the_resource_tenants_proof_up() {
    let app = spawn_rp_app().await;
    let sally = "sally@contoso.example";
    let pw = app.password(sally);
    let inv = app.invite(sally, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let browser = app.browser();
    let consent = crate::guests::to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), sally, &pw).await;
    // Redemption goes on as a sign-in to Foo, which requires MFA at Fabrikam.
    let page = browser.follow_any(crate::guests::accept(&browser, &consent).await).await;
    let (mut key, _, shown) = register_with_codes(&app, &browser, page).await;
    let shown = browser.follow_any(shown).await;
    let claims = claims_table(&shown);
    assert_eq!(claims["amr"], "fed hwk user mfa", "{}", shown.body);
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["idp"], app.issuer("contoso"));
    assert_eq!(app.user("fabrikam", sally).await.passkeys.len(), 1, "held at the resource tenant");
    assert!(app.user("contoso", sally).await.passkeys.is_empty(), "nothing changes at home");

    // The next sign-in to Foo: home sign-in at Contoso, then the passkey challenge at Fabrikam.
    let browser = app.browser();
    let page = browser.follow_any(browser.get(&format!("{}/demo/foo/login", app.url)).await).await;
    let home = browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", sally)).await).await;
    let page = browser.home_sign_in(home, sally, &pw).await;
    assert!(page.has("form#passkey-challenge"), "{}", page.body);
    let form = page.form("passkey-challenge").set("credential", &key.assert(&options_of(&page), &app.url));
    let shown = browser.follow_any(browser.post_abs(&page.url, &form).await).await;
    assert_eq!(claims_table(&shown)["amr"], "fed hwk user mfa", "{}", shown.body);
}
