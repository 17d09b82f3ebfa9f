//! Moving a store between backends (`gatehouse store copy`): a store filled through the
//! traits is exported and imported into a fresh store of the other backend, twice (the
//! second import changes nothing), and every record reads back the same through the
//! traits; what the import must keep (ids, sequences, seat counts, sign-in age order)
//! still works afterwards. sled to sled always runs; sled to PostgreSQL and back when
//! `GATEHOUSE_TEST_DATABASE_URL` names a cluster.
use gatehouse::model::{
    Acr, Amr, Application, AuthCode, Authentication, ClientType, Consent, Device, ExternalUserState, FedState, Grant,
    Identity, Invitation, InvitationStatus, KeyMeta, OutboxMessage, Purpose, RefreshToken, Session, SignIn,
    SignInLogEntry, SigningAlg, Status, Step, StubAccount, Tenant, TenantId, Ticket, TicketState, User, UserId,
    UserType,
};
use gatehouse::policy::{NamedLocation, Policy};
use gatehouse::storage::{CodeUse, RefreshRules, RefreshUse, SignInAdmission, Store};
use uuid::Uuid;

use crate::storage_contract::backends;

const NOW: i64 = 1_700_000_000;
const LIFE: i64 = 3600;

fn id32() -> [u8; 32] {
    let mut id = [0; 32];
    id[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    id[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    id
}

fn auth(user: UserId) -> Authentication {
    Authentication {
        user_id: user,
        auth_time: NOW,
        amr: vec![Amr::Pwd, Amr::Mfa],
        acr: Acr::MultiFactor,
        idp: None,
        epoch: 2,
        device_id: Some("dev-1".into()),
        mfa_time: None,
        home: None,
    }
}

fn signin(tenant: TenantId, browser: [u8; 32], login: &str) -> SignIn {
    SignIn {
        tenant_id: tenant,
        browser,
        purpose: Purpose::Portal { return_to: "/".into(), replaces_session: None },
        step: Step::Identify,
        login: Some(login.into()),
        user_id: None,
        expires_at: NOW + LIFE,
        strengths: vec![],
        passwordless: None,
        persistent_browser: None,
    }
}

/// Everything `fill` stored, to compare against.
struct Filled {
    tenant: Tenant,
    member: User,
    guest: User,
    app: Application,
    invitation: Invitation,
    ticket: ([u8; 32], Ticket),
    stub: (String, StubAccount),
    fed_state: (String, FedState),
    /// Two sign-ins of one browser, oldest first.
    signins: [([u8; 32], SignIn); 2],
    session: ([u8; 32], Session),
    spent_code: ([u8; 32], AuthCode),
    fresh_code: ([u8; 32], AuthCode),
    grant: (Uuid, Grant),
    refresh: ([u8; 32], RefreshToken),
    jti: String,
    keys: Vec<KeyMeta>,
    sealed: (String, Vec<u8>),
    meta: (String, Vec<u8>),
    policy: Policy,
    location: NamedLocation,
    device: Device,
    consent: (UserId, String, Consent),
    /// Newest first, as `signin_log` lists them.
    log: Vec<SignInLogEntry>,
    /// Newest first, as `outbox` lists them.
    outbox: Vec<OutboxMessage>,
}

/// Fills `store` through the traits with one record (at least) of every kind.
async fn fill(store: &Store) -> Filled {
    let tid = TenantId::new();
    let tenant = Tenant {
        id: tid,
        slug: format!("t{}", &tid.to_string()[..8]),
        display_name: "Contoso".into(),
        initial_domain: "contoso.example".into(),
        domains: vec!["contoso.example".into(), "mail.contoso.example".into()],
        premium_seats: 5,
        members_can_invite: true,
        external_idps: vec![],
        cross_tenant: Default::default(),
        require_mfa: false,
        authentication_strengths: vec![],
        groups: vec![],
        agreements: vec![],
    };
    store.put_tenant(&tenant).await.unwrap();
    let member = User {
        id: UserId::new(),
        tenant_id: tid,
        user_principal_name: "Ada@contoso.example".into(),
        mail: "ada@mail.contoso.example".into(),
        display_name: "Ada".into(),
        account_enabled: true,
        per_user_mfa: true,
        created_at: NOW,
        session_epoch: 2,
        ..Default::default()
    };
    store.insert_user(&member).await.unwrap();
    let guest = User {
        id: UserId::new(),
        tenant_id: tid,
        user_type: UserType::Guest,
        user_principal_name: "sally_fabrikam.example#EXT#@contoso.example".into(),
        mail: "sally@fabrikam.example".into(),
        display_name: "Sally".into(),
        account_enabled: true,
        created_at: NOW,
        creation_type: Some("Invitation".into()),
        external_user_state: Some(ExternalUserState::PendingAcceptance),
        ..Default::default()
    };
    store.insert_user(&guest).await.unwrap();
    let app = Application {
        tenant_id: tid,
        client_id: "rp".into(),
        display_name: "RP".into(),
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        client_type: ClientType::Confidential,
        secret_hashes: vec!["00".repeat(32)],
        id_token_signed_response_alg: SigningAlg::ES256,
        app_roles: vec!["User.Invite.All".into()],
        assignment_required: false,
        home_page_url: None,
        first_party: false,
        group_membership_claims: None,
        registration: Default::default(),
    };
    store.put_app(&app).await.unwrap();

    let invitation = Invitation {
        id: Uuid::new_v4(),
        tenant_id: tid,
        invited_user_email_address: guest.mail.clone(),
        invited_user_display_name: guest.display_name.clone(),
        invited_user_id: guest.id,
        invite_redirect_url: "https://rp.example/".into(),
        app_id: Some("rp".into()),
        invited_by: "admin".into(),
        message: None,
        send_invitation_message: true,
        reset_redemption: false,
        status: InvitationStatus::PendingAcceptance,
        created_at: NOW,
    };
    store.put_invitation(&invitation).await.unwrap();
    let ticket_id = id32();
    let ticket = Ticket {
        tenant_id: tid,
        invitation_id: invitation.id,
        user_id: guest.id,
        expires_at: NOW + LIFE,
        state: TicketState::Active,
    };
    store.put_ticket(&ticket_id, &ticket).await.unwrap();
    let home = Identity {
        sign_in_type: "federated".into(),
        issuer: "https://fabrikam.example".into(),
        issuer_assigned_id: "sally".into(),
    };
    let gatehouse::storage::Redeemed::Done(guest) = store.redeem(&ticket_id, &home, NOW, 5).await.unwrap() else {
        panic!("the ticket redeems");
    };
    let guest = *guest;
    let invitation = store.invitation(&tid, &invitation.id).await.unwrap().unwrap();
    let ticket = store.ticket(&ticket_id).await.unwrap().unwrap();
    assert_eq!(ticket.state, TicketState::Redeemed);

    let stub = StubAccount {
        sub: "sub-1".into(),
        login: "sally@fabrikam.example".into(),
        display_name: "Sally".into(),
        password_hash: "$argon2id$stub".into(),
    };
    store.put_stub_account("fabrikam", &stub).await.unwrap();
    let fed_state = FedState { tx: "tx-1".into(), issuer: "https://fabrikam.example".into(), expires_at: NOW + 600 };
    store.put_fed_state("state-1", &fed_state).await.unwrap();

    let browser = id32();
    let signins = [(id32(), signin(tid, browser, "first")), (id32(), signin(tid, browser, "second"))];
    for (id, s) in &signins {
        store.put_signin(id, s).await.unwrap();
    }
    let session = Session { tenant_id: tid, sid: "sid-1".into(), auth: auth(member.id), expires_at: NOW + LIFE };
    let session_id = id32();
    store.put_session(&session_id, &session).await.unwrap();

    let grant_id = Uuid::new_v4();
    let code = |grant_id| AuthCode {
        tenant_id: tid,
        client_id: "rp".into(),
        redirect_uri: "https://rp.example/cb".into(),
        scope: vec!["openid".into(), "offline_access".into()],
        nonce: Some("n".into()),
        code_challenge: None,
        sid: "sid-1".into(),
        auth: auth(member.id),
        expires_at: NOW + 60,
        grant_id,
        used: false,
    };
    let grant = Grant {
        tenant_id: tid,
        client_id: "rp".into(),
        user_id: member.id,
        epoch: 2,
        created_at: NOW,
        expires_at: NOW + 10 * LIFE,
        revoked: false,
    };
    let refresh = RefreshToken {
        tenant_id: tid,
        client_id: "rp".into(),
        grant_id,
        scope: vec!["openid".into(), "offline_access".into()],
        sid: "sid-1".into(),
        auth: auth(member.id),
        issued_at: NOW,
        expires_at: NOW + LIFE,
        rotated: false,
        rotated_at_ms: 0,
        successor: None,
        retried: false,
    };
    let (spent_id, refresh_id, fresh_id) = (id32(), id32(), id32());
    store.put_code(&spent_id, &code(grant_id)).await.unwrap();
    let CodeUse::Redeemed(spent) = store.use_code(&spent_id, &grant, Some((&refresh_id, &refresh))).await.unwrap()
    else {
        panic!("the code redeems");
    };
    let fresh = code(Uuid::new_v4());
    store.put_code(&fresh_id, &fresh).await.unwrap();
    store.revoke_jti("jti-1", NOW + LIFE).await.unwrap();

    let keys = vec![
        KeyMeta {
            kid: "k1".into(),
            alg: SigningAlg::ES256,
            created_at: NOW,
            activates_at: NOW,
            retires_at: Some(NOW + LIFE),
        },
        KeyMeta { kid: "k2".into(), alg: SigningAlg::RS256, created_at: NOW, activates_at: NOW + 60, retires_at: None },
    ];
    store.put_key_meta(&keys[0]).await.unwrap();
    let sealed = vec![7u8; 48];
    store.put_key_sealed(&keys[1], &sealed).await.unwrap();
    let meta = ("instance_secret".to_string(), vec![1u8, 2, 3, 4]);
    store.put_meta_raw(&meta.0, &meta.1).await.unwrap();

    let policy: Policy = serde_json::from_value(serde_json::json!({
        "id": "p1",
        "displayName": "MFA for guests",
        "state": "enabled",
        "conditions": {
            "users": { "includeUsers": ["All"] },
            "applications": { "includeApplications": ["rp"] },
            "locations": { "includeLocations": ["All"], "excludeLocations": ["loc1"] }
        },
        "grantControls": { "builtInControls": ["mfa"] }
    }))
    .unwrap();
    store.put_policy(&tid, &policy).await.unwrap();
    let location: NamedLocation = serde_json::from_value(serde_json::json!({
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "id": "loc1",
        "displayName": "Office",
        "isTrusted": true,
        "ipRanges": [{ "@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24" }]
    }))
    .unwrap();
    store.put_named_location(&tid, &location).await.unwrap();
    let device = Device {
        id: "dev-1".into(),
        display_name: "Ada's laptop".into(),
        is_managed: true,
        is_compliant: true,
        trust_type: Some("AzureAd".into()),
        registered_owner: Some(member.id),
        created_at: NOW,
    };
    store.put_device(&tid, &device).await.unwrap();
    let consent = Consent { scopes: vec!["openid".into(), "profile".into()], granted_at: NOW };
    store.put_consent(&tid, &member.id, "rp", &consent).await.unwrap();

    let mut log = Vec::new();
    for (i, user) in [Some(member.id), None, Some(guest.id)].into_iter().enumerate() {
        let mut entry = SignInLogEntry {
            id: format!("log-{i}"),
            created_date_time: "2023-11-14T22:13:20Z".into(),
            created_at: NOW + i as i64,
            user_id: user,
            app_id: "rp".into(),
            status: Status { error_code: if user.is_none() { 50126 } else { 0 }, ..Default::default() },
            ..Default::default()
        };
        store.append_signin_log(&tid, &mut entry).await.unwrap();
        log.insert(0, entry);
    }
    let mut outbox = Vec::new();
    for i in 0..2 {
        let msg = OutboxMessage {
            id: 0,
            tenant_id: Some(tid),
            to: guest.mail.clone(),
            subject: format!("message {i}"),
            body: "hello".into(),
            redeem_url: Some("https://idp.example/redeem".into()),
            otp: None,
            created_at: NOW + i,
        };
        outbox.insert(0, store.push_outbox(msg).await.unwrap());
    }

    Filled {
        tenant,
        consent: (member.id, "rp".into(), consent),
        member,
        guest,
        app,
        invitation,
        ticket: (ticket_id, ticket),
        stub: ("fabrikam".into(), stub),
        fed_state: ("state-1".into(), fed_state),
        signins,
        session: (session_id, session),
        spent_code: (spent_id, *spent),
        fresh_code: (fresh_id, fresh),
        grant: (grant_id, grant),
        refresh: (refresh_id, refresh),
        jti: "jti-1".into(),
        keys,
        sealed: ("k2".into(), sealed),
        meta,
        policy,
        location,
        device,
        log,
        outbox,
    }
}

/// The sign-in log without the store's own sequence (sled does not return it).
fn without_seq(entries: Vec<SignInLogEntry>) -> Vec<SignInLogEntry> {
    entries.into_iter().map(|e| SignInLogEntry { seq: 0, ..e }).collect()
}

/// Every record of `f` reads back from `store` through the traits as it was stored.
async fn check(what: &str, store: &Store, f: &Filled) {
    let t = &f.tenant.id;
    assert_eq!(store.tenant(t).await.unwrap().as_ref(), Some(&f.tenant), "{what}: tenant");
    assert_eq!(store.tenant_by_slug(&f.tenant.slug).await.unwrap().as_ref(), Some(&f.tenant), "{what}: by slug");
    assert_eq!(store.tenant_by_domain("mail.contoso.example").await.unwrap().as_ref(), Some(&f.tenant), "{what}");
    assert_eq!(store.tenants().await.unwrap(), vec![f.tenant.clone()], "{what}: tenants");
    let mut users = vec![f.member.clone(), f.guest.clone()];
    users.sort_by_key(|u| u.id);
    assert_eq!(store.users(t).await.unwrap(), users, "{what}: users");
    for u in &users {
        for login in [&u.user_principal_name, &u.mail] {
            assert_eq!(store.user_by_login(t, login).await.unwrap().as_ref(), Some(u), "{what}: {login}");
        }
        assert_eq!(store.user_by_upn(t, &u.user_principal_name).await.unwrap().as_ref(), Some(u), "{what}");
        assert_eq!(store.user_by_mail(t, &u.mail).await.unwrap().as_ref(), Some(u), "{what}");
    }
    assert_eq!(store.seats_used(t).await.unwrap(), 2, "{what}: the MFA member and the redeemed guest");
    assert_eq!(store.app(t, "rp").await.unwrap().as_ref(), Some(&f.app), "{what}: app");
    assert_eq!(store.apps(t).await.unwrap(), vec![f.app.clone()], "{what}: apps");

    assert_eq!(store.invitation(t, &f.invitation.id).await.unwrap().as_ref(), Some(&f.invitation), "{what}");
    assert_eq!(store.ticket(&f.ticket.0).await.unwrap().as_ref(), Some(&f.ticket.1), "{what}: ticket");
    let (stub, acct) = &f.stub;
    assert_eq!(store.stub_account(stub, &acct.login).await.unwrap().as_ref(), Some(acct), "{what}: stub account");
    assert_eq!(store.fed_state(&f.fed_state.0).await.unwrap().as_ref(), Some(&f.fed_state.1), "{what}: fed state");

    for (id, s) in &f.signins {
        assert_eq!(store.signin(id).await.unwrap().as_ref(), Some(s), "{what}: sign-in");
    }
    assert_eq!(store.signin_count().await, 2, "{what}: sign-in count");
    assert_eq!(store.session(&f.session.0).await.unwrap().as_ref(), Some(&f.session.1), "{what}: session");
    assert_eq!(store.code(&f.spent_code.0).await.unwrap().as_ref(), Some(&f.spent_code.1), "{what}: spent code");
    assert_eq!(store.code(&f.fresh_code.0).await.unwrap().as_ref(), Some(&f.fresh_code.1), "{what}: fresh code");
    assert_eq!(store.grant(&f.grant.0).await.unwrap().as_ref(), Some(&f.grant.1), "{what}: grant");
    assert_eq!(store.refresh_token(&f.refresh.0).await.unwrap().as_ref(), Some(&f.refresh.1), "{what}: refresh");
    assert!(store.jti_revoked(&f.jti).await.unwrap(), "{what}: revoked jti");
    assert!(!store.jti_revoked("other").await.unwrap(), "{what}");

    assert_eq!(store.key_metas().await.unwrap(), f.keys, "{what}: key metadata");
    assert_eq!(store.key_sealed(&f.sealed.0).await.unwrap().as_ref(), Some(&f.sealed.1), "{what}: sealed key");
    assert_eq!(store.key_sealed("k1").await.unwrap(), None, "{what}: a key stored without its private part");
    assert_eq!(store.meta_raw(&f.meta.0).await.unwrap().as_ref(), Some(&f.meta.1), "{what}: meta");

    assert_eq!(store.policies(t).await.unwrap(), vec![f.policy.clone()], "{what}: policies");
    assert_eq!(store.policy(t, "p1").await.unwrap().as_ref(), Some(&f.policy), "{what}: policy");
    assert_eq!(store.named_locations(t).await.unwrap(), vec![f.location.clone()], "{what}: locations");
    assert_eq!(store.named_location(t, "loc1").await.unwrap().as_ref(), Some(&f.location), "{what}: location");
    let ca = store.ca_records(t).await.unwrap();
    let ca = (ca.policies.as_ref(), ca.locations.as_ref());
    assert_eq!(ca, (&vec![f.policy.clone()], &vec![f.location.clone()]), "{what}: the evaluation cache");
    assert_eq!(store.devices(t).await.unwrap(), vec![f.device.clone()], "{what}: devices");
    assert_eq!(store.device(t, "dev-1").await.unwrap().as_ref(), Some(&f.device), "{what}: device");
    let (user, client, consent) = &f.consent;
    assert_eq!(store.consent(t, user, client).await.unwrap().as_ref(), Some(consent), "{what}: consent");

    let log = without_seq(store.signin_log(t, 10).await.unwrap());
    assert_eq!(log, without_seq(f.log.clone()), "{what}: the sign-in log, newest first");
    assert_eq!(store.signin_log_len(t).await, 3, "{what}");
    assert_eq!(store.outbox(10).await.unwrap(), f.outbox, "{what}: the outbox with its ids, newest first");
    assert!(!store.is_empty().await.unwrap(), "{what}: not empty");
}

/// What the copy must keep for the target to carry on: new log entries and messages sort
/// after the imported ones, a browser's oldest sign-in is still its oldest, the refresh
/// token rotates and the spent code stays spent.
async fn carries_on(what: &str, store: &Store, f: &Filled) {
    let t = &f.tenant.id;
    let mut entry =
        SignInLogEntry { id: "after".into(), created_at: NOW + 10, app_id: "rp".into(), ..Default::default() };
    store.append_signin_log(t, &mut entry).await.unwrap();
    let newest = store.signin_log(t, 1).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["after"], "{what}: a new entry is newest");
    let msg = OutboxMessage { subject: "after".into(), ..f.outbox[0].clone() };
    let pushed = store.push_outbox(msg).await.unwrap();
    assert!(pushed.id > f.outbox[0].id, "{what}: a new message id follows the imported ones");
    assert_eq!(store.outbox(1).await.unwrap(), vec![pushed], "{what}: and lists first");

    let browser = f.signins[0].1.browser;
    let third = id32();
    let admitted = store.open_signin(&third, &signin(*t, browser, "third"), 2, 100, NOW).await.unwrap();
    assert_eq!(admitted, SignInAdmission::Stored, "{what}");
    assert_eq!(store.signin(&f.signins[0].0).await.unwrap(), None, "{what}: the oldest sign-in is evicted");
    assert!(store.signin(&f.signins[1].0).await.unwrap().is_some(), "{what}: the newer one kept");

    let rules =
        RefreshRules { now: NOW + 5, now_ms: (NOW + 5) * 1000, life_secs: LIFE, grace_secs: 0, retry_after_ms: 1000 };
    let rotated = store.rotate_refresh(&f.refresh.0, &id32(), &rules).await.unwrap();
    assert!(matches!(rotated, RefreshUse::Rotated(_)), "{what}: the copied refresh token rotates");
    let replay = store.use_code(&f.spent_code.0, &f.grant.1, None).await.unwrap();
    assert!(matches!(replay, CodeUse::Replayed), "{what}: the spent code stays spent");
    assert!(store.grant(&f.grant.0).await.unwrap().unwrap().revoked, "{what}: and its replay revokes the grant");
}

/// Copies `from` into `to` twice: the second import changes nothing.
async fn copy(what: &str, from: &Store, to: &Store) {
    assert!(to.is_empty().await.unwrap(), "{what}: a fresh target");
    let items = from.export().await.unwrap();
    to.import(&items).await.unwrap();
    let once = to.snapshot().await.unwrap();
    to.import(&items).await.unwrap();
    assert!(once == to.snapshot().await.unwrap(), "{what}: importing again changes nothing");
}

#[tokio::test]
async fn a_copied_store_reads_back_the_same_on_the_other_backend() {
    let mut pairs = Vec::new();
    let mut sleds = Vec::new();
    for _ in 0..3 {
        let mut all = backends().await.into_iter();
        sleds.push(all.next().unwrap());
        pairs.extend(all);
    }
    let (sled_from, sled_to, sled_back) = (&sleds[0], &sleds[1], &sleds[2]);
    let f = fill(&sled_from.1).await;
    check("sled before the copy", &sled_from.1, &f).await;
    copy("sled to sled", &sled_from.1, &sled_to.1).await;
    check("sled to sled", &sled_to.1, &f).await;
    carries_on("sled to sled", &sled_to.1, &f).await;

    let [(_, pg_to, _), (_, pg_from, _), ..] = pairs.as_slice() else {
        println!("storage_copy: PostgreSQL skipped (GATEHOUSE_TEST_DATABASE_URL is not set)");
        return;
    };
    copy("sled to postgres", &sled_from.1, pg_to).await;
    check("sled to postgres", pg_to, &f).await;
    carries_on("sled to postgres", pg_to, &f).await;

    let g = fill(pg_from).await;
    check("postgres before the copy", pg_from, &g).await;
    copy("postgres to sled", pg_from, &sled_back.1).await;
    check("postgres to sled", &sled_back.1, &g).await;
    carries_on("postgres to sled", &sled_back.1, &g).await;
}
