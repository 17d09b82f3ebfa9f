//! The store with every operation timed (`STORE_DURATION{operation}`): a wrapper around any
//! backend, put in front of the store when metrics are on. Each method delegates to the same
//! method of the backend (defaulted ones too, so a backend's own fast path is kept) through
//! the one helper [`super::timed`].
use uuid::Uuid;

use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::api::*;
use crate::storage::{
    CaRecords, Change, CodeUse, Item, Record, Redeemed, RefreshContext, RefreshRules, RefreshUse, Reserved, Result,
    SignInAdmission, Store, Versioned,
};

/// Any store, timed.
pub struct Timed(pub Store);

impl Timed {
    /// `store`, with every operation timed.
    pub fn wrap(store: Store) -> Store {
        std::sync::Arc::new(Timed(store))
    }
}

/// `impl Trait for Timed`: each `name(args) -> Ret;` becomes an async method that awaits
/// the backend's `name(args)` under [`super::timed`]; `{ … }` adds items as they are.
macro_rules! timed_impl {
    ($trait:ident { $($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)* } $({ $($extra:tt)* })?) => {
        #[async_trait::async_trait]
        impl $trait for Timed {
        $(
            async fn $name(&self, $($arg: $ty),*) -> $ret {
                super::timed(stringify!($name), self.0.$name($($arg),*)).await
            }
        )*
        $($($extra)*)?
        }
    };
}

timed_impl! {
    DirectoryStore {
        put_tenant(tenant: &Tenant) -> Result<()>;
        tenant(id: &TenantId) -> Result<Option<Tenant>>;
        tenant_by_slug(slug: &str) -> Result<Option<Tenant>>;
        tenant_by_domain(domain: &str) -> Result<Option<Tenant>>;
        tenants() -> Result<Vec<Tenant>>;
        put_user(user: &User) -> Result<()>;
        insert_user(user: &User) -> Result<()>;
        user_versioned(tenant: &TenantId, id: &UserId) -> Result<Option<Versioned<User>>>;
        replace_user(old: &Versioned<User>, new: &User, seat_limit: Option<u32>) -> Result<bool>;
        user(tenant: &TenantId, id: &UserId) -> Result<Option<User>>;
        user_by_login(tenant: &TenantId, login: &str) -> Result<Option<User>>;
        delete_user(tenant: &TenantId, id: &UserId) -> Result<()>;
        users(tenant: &TenantId) -> Result<Vec<User>>;
        user_by_upn(tenant: &TenantId, upn: &str) -> Result<Option<User>>;
        user_by_mail(tenant: &TenantId, mail: &str) -> Result<Option<User>>;
        users_page(tenant: &TenantId, user_type: Option<UserType>, after: Option<&UserId>, limit: usize) -> Result<(Vec<User>, Option<UserId>)>;
        seats_used(tenant: &TenantId) -> Result<u32>;
        put_app(app: &Application) -> Result<()>;
        delete_app(tenant: &TenantId, client_id: &str) -> Result<bool>;
        app(tenant: &TenantId, client_id: &str) -> Result<Option<Application>>;
        apps(tenant: &TenantId) -> Result<Vec<Application>>;
    }
}

timed_impl! {
    GuestStore {
        put_invitation(inv: &Invitation) -> Result<()>;
        invitation(tenant: &TenantId, id: &Uuid) -> Result<Option<Invitation>>;
        put_ticket(id: &[u8; 32], t: &Ticket) -> Result<()>;
        ticket(id: &[u8; 32]) -> Result<Option<Ticket>>;
        void_tickets_of(tenant: &TenantId, user: &UserId) -> Result<()>;
        redeem(ticket: &[u8; 32], identity: &Identity, now: i64, seat_limit: u32) -> Result<Redeemed>;
        put_stub_account(stub: &str, acct: &StubAccount) -> Result<()>;
        stub_account(stub: &str, login: &str) -> Result<Option<StubAccount>>;
        put_fed_state(state: &str, record: &FedState) -> Result<()>;
        fed_state(state: &str) -> Result<Option<FedState>>;
        take_fed_state(state: &str) -> Result<Option<FedState>>;
        sweep_fed_states(now: i64) -> Result<usize>;
    }
}

timed_impl! {
    TokenStore {
        open_signin(id: &[u8; 32], signin: &SignIn, per_browser: usize, total: usize, now: i64) -> Result<SignInAdmission>;
        put_signin(id: &[u8; 32], signin: &SignIn) -> Result<()>;
        signin(id: &[u8; 32]) -> Result<Option<SignIn>>;
        signin_versioned(id: &[u8; 32]) -> Result<Option<Versioned<SignIn>>>;
        replace_signin(id: &[u8; 32], old: &Versioned<SignIn>, new: &SignIn) -> Result<bool>;
        delete_signin(id: &[u8; 32]) -> Result<()>;
        rebind_signins(old: &[u8; 32], new: &[u8; 32]) -> Result<()>;
        signin_count() -> usize;
        put_session(id: &[u8; 32], session: &Session) -> Result<()>;
        session(id: &[u8; 32]) -> Result<Option<Session>>;
        delete_session(id: &[u8; 32]) -> Result<()>;
        put_code(id: &[u8; 32], code: &AuthCode) -> Result<()>;
        use_code(id: &[u8; 32], grant: &Grant, refresh: Option<(&[u8; 32], &RefreshToken)>) -> Result<CodeUse>;
        code(id: &[u8; 32]) -> Result<Option<AuthCode>>;
        grant(id: &Uuid) -> Result<Option<Grant>>;
        revoke_grant(id: &Uuid) -> Result<()>;
        refresh_token(id: &[u8; 32]) -> Result<Option<RefreshToken>>;
        refresh_context(id: &[u8; 32]) -> Result<Option<RefreshContext>>;
        rotate_refresh(old: &[u8; 32], new: &[u8; 32], rules: &RefreshRules) -> Result<RefreshUse>;
        rotate_refresh_seen(old: &[u8; 32], seen: &RefreshToken, new: &[u8; 32], rules: &RefreshRules) -> Result<RefreshUse>;
        revoke_jti(jti: &str, exp: i64) -> Result<()>;
        jti_revoked(jti: &str) -> Result<bool>;
        access_context(jti: &str, grant: &Uuid, tenant: &TenantId, user: &UserId) -> Result<(bool, Option<Grant>, Option<Option<User>>)>;
    }
}

timed_impl! {
    PolicyStore {
        ca_records(tenant: &TenantId) -> Result<CaRecords>;
        policies(tenant: &TenantId) -> Result<Vec<Policy>>;
        put_policy(tenant: &TenantId, p: &Policy) -> Result<()>;
        policy(tenant: &TenantId, id: &str) -> Result<Option<Policy>>;
        delete_policy(tenant: &TenantId, id: &str) -> Result<bool>;
        named_locations(tenant: &TenantId) -> Result<Vec<NamedLocation>>;
        put_named_location(tenant: &TenantId, l: &NamedLocation) -> Result<()>;
        named_location(tenant: &TenantId, id: &str) -> Result<Option<NamedLocation>>;
        delete_named_location(tenant: &TenantId, id: &str) -> Result<bool>;
        devices(tenant: &TenantId) -> Result<Vec<Device>>;
        device(tenant: &TenantId, id: &str) -> Result<Option<Device>>;
        put_device(tenant: &TenantId, d: &Device) -> Result<()>;
        consent(tenant: &TenantId, user: &UserId, client_id: &str) -> Result<Option<Consent>>;
        put_consent(tenant: &TenantId, user: &UserId, client_id: &str, c: &Consent) -> Result<()>;
    }
}

timed_impl! {
    AuditStore {
        append_signin_log(tenant: &TenantId, entry: &mut SignInLogEntry) -> Result<()>;
        trim_signin_log(before: i64, keep: usize) -> Result<usize>;
        signin_log_len(tenant: &TenantId) -> usize;
        signin_log(tenant: &TenantId, limit: usize) -> Result<Vec<SignInLogEntry>>;
    }
}

timed_impl! {
    OutboxStore {
        push_outbox(msg: OutboxMessage) -> Result<OutboxMessage>;
        outbox(limit: usize) -> Result<Vec<OutboxMessage>>;
    }
}

timed_impl! {
    MailQueueStore {
        enqueue_mail(job: &crate::model::mail::MailJob) -> Result<crate::model::mail::MailJob>;
        claim_mail(now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<crate::model::mail::MailJob>>;
        finish_mail(lease: &Uuid, job: &crate::model::mail::MailJob) -> Result<bool>;
        mail_job(id: &Uuid) -> Result<Option<crate::model::mail::MailJob>>;
        mail_jobs(tenant: &TenantId, limit: usize) -> Result<Vec<crate::model::mail::MailJob>>;
        trim_mail(before: i64) -> Result<usize>;
    }
}

timed_impl! {
    KeyStore {
        key_metas() -> Result<Vec<KeyMeta>>;
        put_key_meta(meta: &KeyMeta) -> Result<()>;
        put_key_sealed(meta: &KeyMeta, sealed: &[u8]) -> Result<()>;
        key_sealed(kid: &str) -> Result<Option<Vec<u8>>>;
        delete_key_meta(kid: &str) -> Result<()>;
    }
}

timed_impl! {
    CounterStore {
        reserve(key: &str, limit: u32, window: i64, now: i64) -> Result<Reserved>;
        release(key: &str, at: i64) -> Result<()>;
        record(key: &str, window: i64, now: i64) -> Result<()>;
        count(key: &str, window: i64, now: i64) -> Result<usize>;
        retry_after(key: &str, limit: u32, window: i64, now: i64) -> Result<Option<i64>>;
        clear(key: &str) -> Result<()>;
    }
}

timed_impl! {
    Maintenance {
        flush() -> Result<()>;
        sweep(now: i64) -> Result<usize>;
        meta_raw(key: &str) -> Result<Option<Vec<u8>>>;
        put_meta_raw(key: &str, value: &[u8]) -> Result<()>;
        meta_or_insert_raw(key: &str, value: &[u8]) -> Result<Vec<u8>>;
        snapshot() -> Result<Vec<Record>>;
        export() -> Result<Vec<Item>>;
        import(items: &[Item]) -> Result<()>;
        is_empty() -> Result<bool>;
        ping() -> Result<()>;
        hold_lock(name: &str) -> Result<Box<dyn Send + Sync>>;
    }
        {
        fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.0.changes()
        }
    }
}
