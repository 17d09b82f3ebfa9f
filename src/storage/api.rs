//! The storage traits: one per aggregate, combined as [`Storage`] and held as
//! `Arc<dyn Storage>`. Compound operations are single methods (`use_code`, `rotate_refresh`,
//! `redeem`, `open_signin`, seat taking); read-modify-write goes through a versioned read and
//! a conditional replace, so no closure crosses the trait. Every backend passes the contract
//! suite in tests/api/storage_contract.rs.
use uuid::Uuid;

use super::{
    CaRecords, Change, CodeUse, Item, Record, Redeemed, RefreshContext, RefreshRules, RefreshUse, Reserved, Result,
    SignInAdmission, Versioned,
};
use crate::model::*;
use crate::policy::{NamedLocation, Policy};

/// Tenants, users (by id, UPN, mail) and applications.
#[async_trait::async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<()>;
    async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>>;
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>>;
    /// The tenant on this instance that verified `domain`, if any.
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>>;
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    /// Writes a user, replacing the record with the same id (updates and tests). Creates
    /// go through [`Store::insert_user`], which refuses an existing id.
    async fn put_user(&self, user: &User) -> Result<()>;
    /// Creates a user; never replaces one. Fails with `Conflict` when the id, the UPN or
    /// the mail is already taken in the tenant, so no create path can overwrite a record.
    /// Of concurrent creates for one id, one UPN or one mail exactly one wins; a name left
    /// claimed by a create that crashed before writing its record can be created again.
    async fn insert_user(&self, user: &User) -> Result<()>;
    /// Read-modify-write of one user by compare-and-swap (the id, tenant, UPN and mail do not change),
    /// so concurrent MFA checks cannot both spend the same TOTP step or recovery code.
    /// The user with a version for [`DirectoryStore::replace_user`].
    async fn user_versioned(&self, tenant: &TenantId, id: &UserId) -> Result<Option<Versioned<User>>>;
    /// Replaces the user only if it is still at `old`'s version (compare-and-swap); `false`
    /// when another writer came first. A change of the id, the tenant, the UPN or the mail is
    /// refused with `Conflict` and nothing is written (the indexes are keyed by them). With a
    /// `seat_limit`, a change that makes the user take a Premium seat is refused with `NoSeat`
    /// (nothing written) when the tenant already holds that many: checked and counted in the
    /// same step, so the last seat has one winner.
    async fn replace_user(&self, old: &Versioned<User>, new: &User, seat_limit: Option<u32>) -> Result<bool>;
    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<User>>;
    /// Finds a user of the tenant by UPN or mail (case-insensitive).
    async fn user_by_login(&self, tenant: &TenantId, login: &str) -> Result<Option<User>>;
    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> Result<()>;
    async fn users(&self, tenant: &TenantId) -> Result<Vec<User>>;
    /// The user whose UPN is `upn` (case-insensitive), by index.
    async fn user_by_upn(&self, tenant: &TenantId, upn: &str) -> Result<Option<User>>;
    /// The user whose mail is `mail` (case-insensitive), by index.
    async fn user_by_mail(&self, tenant: &TenantId, mail: &str) -> Result<Option<User>>;
    /// Up to `limit` users of the tenant after the cursor `after` (a user id), in id order,
    /// optionally of one type; the cost follows the page, not the tenant. The cursor of the
    /// next page is the last id returned, `None` when there is nothing after it.
    async fn users_page(
        &self,
        tenant: &TenantId,
        user_type: Option<UserType>,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<(Vec<User>, Option<UserId>)>;
    /// Premium seats held in the tenant ([`User::holds_seat`]): a maintained counter.
    async fn seats_used(&self, tenant: &TenantId) -> Result<u32>;
    async fn put_app(&self, app: &Application) -> Result<()>;
    async fn app(&self, tenant: &TenantId, client_id: &str) -> Result<Option<Application>>;
    async fn apps(&self, tenant: &TenantId) -> Result<Vec<Application>>;
    /// Removes the application; `false` when there was none.
    async fn delete_app(&self, tenant: &TenantId, client_id: &str) -> Result<bool>;
}

/// Invitations, redemption tickets (keyed by digest) and their redemption, stub IdP accounts, pending federation states.
#[async_trait::async_trait]
pub trait GuestStore: Send + Sync {
    async fn put_invitation(&self, inv: &Invitation) -> Result<()>;
    async fn invitation(&self, tenant: &TenantId, id: &Uuid) -> Result<Option<Invitation>>;
    async fn put_ticket(&self, id: &[u8; 32], t: &Ticket) -> Result<()>;
    async fn ticket(&self, id: &[u8; 32]) -> Result<Option<Ticket>>;
    /// Voids every active ticket of a guest (reset redemption).
    async fn void_tickets_of(&self, tenant: &TenantId, user: &UserId) -> Result<()>;
    /// The ticket is consumed, the guest becomes Accepted with the home identity, and the
    /// invitation is Completed. Redemptions run one at a time, so of concurrent calls exactly
    /// one wins. The ticket is written last: a crash before it leaves the ticket usable again.
    /// Redeems a ticket in one step: the guest is Accepted with `identity`, the invitation
    /// completed, the ticket spent. A guest who takes a seat by this gets one only while
    /// fewer than `seat_limit` are held (`Redeemed::NoSeat`): of two redemptions racing for
    /// the last seat exactly one wins.
    async fn redeem(&self, ticket: &[u8; 32], identity: &Identity, now: i64, seat_limit: u32) -> Result<Redeemed>;
    async fn put_stub_account(&self, stub: &str, acct: &StubAccount) -> Result<()>;
    async fn stub_account(&self, stub: &str, login: &str) -> Result<Option<StubAccount>>;
    /// Maps the `state` sent to a home IdP back to the sign-in that sent it and to that home.
    async fn put_fed_state(&self, state: &str, record: &FedState) -> Result<()>;
    /// Reads without consuming: a callback is checked (issuer, binding) before its state is spent.
    /// An unreadable record (from before states were bound to their home) is no state.
    async fn fed_state(&self, state: &str) -> Result<Option<FedState>>;
    /// Single use: the state is removed as it is read; of concurrent callers one gets it.
    async fn take_fed_state(&self, state: &str) -> Result<Option<FedState>>;
    /// Removes expired federation states (and unreadable ones, which can never be used).
    async fn sweep_fed_states(&self, now: i64) -> Result<usize>;
}

/// Sign-in transactions, SSO sessions, codes, grants, refresh tokens, revoked token ids.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// Opens a new sign-in transaction within the bounds: at most `per_browser` for its
    /// browser (the browser's oldest are evicted, as Keycloak does with its tab limit) and at
    /// most `total` on the instance. The browser's own evictions count as room for the total;
    /// when there is still none, nothing is stored or evicted and `Full` is answered.
    async fn open_signin(
        &self,
        id: &[u8; 32],
        signin: &SignIn,
        per_browser: usize,
        total: usize,
        now: i64,
    ) -> Result<SignInAdmission>;
    /// Stores (creates or advances) a sign-in transaction.
    async fn put_signin(&self, id: &[u8; 32], signin: &SignIn) -> Result<()>;
    async fn signin(&self, id: &[u8; 32]) -> Result<Option<SignIn>>;
    /// Read-modify-write of a sign-in by compare-and-swap: one winner per change, so
    /// concurrent attempts on its counters are all counted.
    /// The sign-in with a version for [`TokenStore::replace_signin`].
    async fn signin_versioned(&self, id: &[u8; 32]) -> Result<Option<Versioned<SignIn>>>;
    /// Replaces the sign-in only if it is still at `old`'s version; `false` when another
    /// writer came first.
    async fn replace_signin(&self, id: &[u8; 32], old: &Versioned<SignIn>, new: &SignIn) -> Result<bool>;
    async fn delete_signin(&self, id: &[u8; 32]) -> Result<()>;
    /// Moves every sign-in of browser `old` to browser `new` (the browser cookie was renewed).
    async fn rebind_signins(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<()>;
    /// How many sign-in transactions are stored.
    async fn signin_count(&self) -> usize;
    async fn put_session(&self, id: &[u8; 32], session: &Session) -> Result<()>;
    async fn session(&self, id: &[u8; 32]) -> Result<Option<Session>>;
    async fn delete_session(&self, id: &[u8; 32]) -> Result<()>;
    async fn put_code(&self, id: &[u8; 32], code: &AuthCode) -> Result<()>;
    /// Spends a code. On first use stores the grant and the first refresh token of its
    /// family; on a replay revokes that grant. The grant and token are written before the
    /// code is marked used (by compare-and-swap, which decides between concurrent uses): a
    /// crash in between leaves the code unspent and the token unknown to anyone.
    async fn use_code(
        &self,
        id: &[u8; 32],
        grant: &Grant,
        refresh: Option<(&[u8; 32], &RefreshToken)>,
    ) -> Result<CodeUse>;
    async fn code(&self, id: &[u8; 32]) -> Result<Option<AuthCode>>;
    async fn grant(&self, id: &Uuid) -> Result<Option<Grant>>;
    async fn revoke_grant(&self, id: &Uuid) -> Result<()>;
    async fn refresh_token(&self, id: &[u8; 32]) -> Result<Option<RefreshToken>>;
    /// The refresh token `id` with its grant and, where the store can read it in the same
    /// step, its user: what a refresh is decided on.
    async fn refresh_context(&self, id: &[u8; 32]) -> Result<Option<RefreshContext>> {
        let Some(token) = self.refresh_token(id).await? else { return Ok(None) };
        let grant = self.grant(&token.grant_id).await?;
        Ok(Some(RefreshContext { token, grant, user: None }))
    }
    /// Rotates `old` to `new` (living `rules.life_secs`) in one step that decides between
    /// concurrent uses. A rotated token presented again revokes the whole grant (reuse),
    /// except for one retry ([`RefreshRules`]): the same token once more within the grace
    /// window, at least `retry_after_ms` after its rotation and before its successor was used
    /// is a client that lost the answer; it gets `Retried` with `new` as the successor and
    /// the unused successor is retired. A crash at any point leaves either the old state or
    /// the new one.
    async fn rotate_refresh(&self, old: &[u8; 32], new: &[u8; 32], rules: &RefreshRules) -> Result<RefreshUse>;
    /// [`Self::rotate_refresh`] for a caller that has just read `old` as `seen`. A store may
    /// decide the common case with it in one step (an unrotated token of a live family,
    /// rotated only if it is still unrotated); every other case, and a `seen` that is no
    /// longer current, is decided exactly as by `rotate_refresh`.
    async fn rotate_refresh_seen(
        &self,
        old: &[u8; 32],
        seen: &RefreshToken,
        new: &[u8; 32],
        rules: &RefreshRules,
    ) -> Result<RefreshUse> {
        let _ = seen;
        self.rotate_refresh(old, new, rules).await
    }
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<()>;
    async fn jti_revoked(&self, jti: &str) -> Result<bool>;
    /// What a user's access token is checked against on every call, read together where the
    /// store can: whether its id is revoked, its grant, and (`Some` when read in the same
    /// step) its user.
    async fn access_context(
        &self,
        jti: &str,
        grant: &Uuid,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<(bool, Option<Grant>, Option<Option<User>>)> {
        let _ = (tenant, user);
        Ok((self.jti_revoked(jti).await?, self.grant(grant).await?, None))
    }
}

/// Conditional access policies, named locations, registered devices, consents.
#[async_trait::async_trait]
pub trait PolicyStore: Send + Sync {
    /// The tenant's policies and named locations for evaluation, from the shared cache.
    async fn ca_records(&self, tenant: &TenantId) -> Result<CaRecords>;
    async fn policies(&self, tenant: &TenantId) -> Result<Vec<Policy>>;
    async fn put_policy(&self, tenant: &TenantId, p: &Policy) -> Result<()>;
    async fn policy(&self, tenant: &TenantId, id: &str) -> Result<Option<Policy>>;
    async fn delete_policy(&self, tenant: &TenantId, id: &str) -> Result<bool>;
    async fn named_locations(&self, tenant: &TenantId) -> Result<Vec<NamedLocation>>;
    async fn put_named_location(&self, tenant: &TenantId, l: &NamedLocation) -> Result<()>;
    async fn named_location(&self, tenant: &TenantId, id: &str) -> Result<Option<NamedLocation>>;
    async fn delete_named_location(&self, tenant: &TenantId, id: &str) -> Result<bool>;
    async fn devices(&self, tenant: &TenantId) -> Result<Vec<Device>>;
    async fn device(&self, tenant: &TenantId, id: &str) -> Result<Option<Device>>;
    async fn put_device(&self, tenant: &TenantId, d: &Device) -> Result<()>;
    /// What `user` consented to share with the application `client_id` (OIDC Core §11).
    async fn consent(&self, tenant: &TenantId, user: &UserId, client_id: &str) -> Result<Option<Consent>>;
    async fn put_consent(&self, tenant: &TenantId, user: &UserId, client_id: &str, c: &Consent) -> Result<()>;
}

/// The sign-in log, per tenant, in order.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends to the sign-in log (ordered by a monotonic id).
    async fn append_signin_log(&self, tenant: &TenantId, entry: &mut SignInLogEntry) -> Result<()>;
    /// Retention: drops entries older than `before` (the primary rule); then, only for a
    /// tenant over `keep` entries (a disk-space last resort), failures of unknown accounts
    /// go first, oldest first, and only then the tenant's oldest other entries — so a
    /// flood of anonymous failures cannot push out the history of real sign-ins.
    async fn trim_signin_log(&self, before: i64, keep: usize) -> Result<usize>;
    /// Entries of `tenant` in the log.
    async fn signin_log_len(&self, tenant: &TenantId) -> usize;
    /// Newest first.
    async fn signin_log(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SignInLogEntry>>;
}

/// Mail sent (the demo outbox and the record of every message).
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync {
    async fn push_outbox(&self, mut msg: OutboxMessage) -> Result<OutboxMessage>;
    /// Newest first.
    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>>;
}

/// The mail delivery queue (`MailJob`): persisted, so a restart loses no queued message,
/// and claimed under a lease, so of several workers (on any nodes) exactly one sends each
/// attempt.
#[async_trait::async_trait]
pub trait MailQueueStore: Send + Sync {
    /// Adds a new job with the next `seq` (the order of enqueueing) and returns it as stored;
    /// an existing id is a `Conflict`, nothing written.
    async fn enqueue_mail(&self, job: &MailJob) -> Result<MailJob>;
    /// Claims up to `limit` jobs due at `now_ms` (oldest due first), each in one step that
    /// decides between concurrent claimers: the winner gets it as `MailJob::claimed` with a
    /// fresh lease of `lease_ms`, every other claimer does not get it.
    async fn claim_mail(&self, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<MailJob>>;
    /// Writes `job`, the outcome of the attempt claimed under `lease`: only while the stored
    /// job is still sending under that lease (`false`, nothing written, when it was lost to
    /// another claimer after it lapsed).
    async fn finish_mail(&self, lease: &Uuid, job: &MailJob) -> Result<bool>;
    async fn mail_job(&self, id: &Uuid) -> Result<Option<MailJob>>;
    /// The tenant's jobs, newest first (by `created_at`, then `seq`), at most `limit`.
    async fn mail_jobs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<MailJob>>;
    /// Retention: removes sent and failed jobs written before `before` (Unix seconds).
    async fn trim_mail(&self, before: i64) -> Result<usize>;
}

/// Signing keys: metadata, and (on a shared database) the private key sealed under the
/// key-encryption key. The embedded store keeps private keys in files (`keys.rs`) and
/// answers `None` for them.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    async fn key_metas(&self) -> Result<Vec<KeyMeta>>;
    async fn put_key_meta(&self, meta: &KeyMeta) -> Result<()>;
    /// Stores a new key's metadata with its sealed private key (one write).
    async fn put_key_sealed(&self, meta: &KeyMeta, sealed: &[u8]) -> Result<()>;
    /// The sealed private key of `kid`, when the store holds it.
    async fn key_sealed(&self, kid: &str) -> Result<Option<Vec<u8>>>;
    async fn delete_key_meta(&self, kid: &str) -> Result<()>;
}

/// Failure and rate counters (lockouts, sends) in a sliding window, shared by every node of
/// the store, so a limit holds across nodes and cannot be raced past.
#[async_trait::async_trait]
pub trait CounterStore: Send + Sync {
    /// Checks and counts one attempt in one step: concurrent callers cannot all pass the
    /// check before any is counted.
    async fn reserve(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Reserved>;
    /// Gives back one attempt reserved at `at` (it did not count as a failure).
    async fn release(&self, key: &str, at: i64) -> Result<()>;
    /// Counts one event without a check.
    async fn record(&self, key: &str, window: i64, now: i64) -> Result<()>;
    /// Events of `key` in the window.
    async fn count(&self, key: &str, window: i64, now: i64) -> Result<usize>;
    /// `Some(seconds until a slot frees)` when `key` has `limit` events in the window.
    async fn retry_after(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Option<i64>>;
    /// Forgets every event of `key`.
    async fn clear(&self, key: &str) -> Result<()>;
}

/// What every backend also does: durability, expiry, instance metadata, inspection.
#[async_trait::async_trait]
pub trait Maintenance: Send + Sync {
    /// Waits until everything written so far is durable.
    async fn flush(&self) -> Result<()>;
    /// Removes expired sign-ins, sessions, codes, grants (past their `expires_at`), refresh
    /// tokens, federation states, revoked token ids and sign-in log entries past retention.
    async fn sweep(&self, now: i64) -> Result<usize>;
    /// An instance-wide value (serialized record) by name.
    async fn meta_raw(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn put_meta_raw(&self, key: &str, value: &[u8]) -> Result<()>;
    /// Returns the existing value under `key`, or stores `value` and returns it (one winner).
    async fn meta_or_insert_raw(&self, key: &str, value: &[u8]) -> Result<Vec<u8>>;
    /// Every record of every relation, in order: lets tests assert that a rejected request
    /// changed nothing.
    async fn snapshot(&self) -> Result<Vec<Record>>;
    /// Every record, typed (for `gatehouse store copy`): what [`Maintenance::import`] of
    /// another backend takes.
    async fn export(&self) -> Result<Vec<Item>>;
    /// Writes every item, replacing what has the same key: running it twice changes nothing.
    async fn import(&self, items: &[Item]) -> Result<()>;
    /// Whether the store holds no tenant and no key (a fresh target for `store copy`).
    async fn is_empty(&self) -> Result<bool>;
    /// Whether the store answers now (readiness), within a bounded time.
    async fn ping(&self) -> Result<()>;
    /// Changes that invalidate caches (tenants, policies, keys), from this node and, on a
    /// shared database, from every other node within a second.
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change>;
    /// Waits for the instance-wide lock `name` (across every node of the store) and holds it
    /// until the returned guard is dropped: demo seeding runs once when nodes start together.
    async fn hold_lock(&self, name: &str) -> Result<Box<dyn Send + Sync>>;
}

/// The whole store: what `Store` (`Arc<dyn Storage>`) offers.
pub trait Storage:
    DirectoryStore
    + GuestStore
    + TokenStore
    + PolicyStore
    + AuditStore
    + OutboxStore
    + MailQueueStore
    + KeyStore
    + CounterStore
    + Maintenance
{
}

impl<T> Storage for T where
    T: DirectoryStore
        + GuestStore
        + TokenStore
        + PolicyStore
        + AuditStore
        + OutboxStore
        + MailQueueStore
        + KeyStore
        + CounterStore
        + Maintenance
{
}
