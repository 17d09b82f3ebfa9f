//! The sign-in log, the outbox, signing keys, expiry sweeps, snapshot, export and import.
use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Statement, Transaction};
use uuid::Uuid;

use super::{Cached, PgResult, PgStore, pg_error, row, transact};
use crate::model::*;
use crate::storage::*;

/// Whether a log entry is a failure of an account nobody has (no user id): the entries a
/// tenant over its cap loses first (sled's `trim_signin_log` rule).
fn unknown_account(entry: &SignInLogEntry) -> bool {
    entry.user_id.is_none() && entry.status.error_code != 0
}

#[async_trait::async_trait]
impl api::AuditStore for PgStore {
    /// The entry's `seq` is the row's, from the `signin_log` bigserial (monotonic).
    async fn append_signin_log(&self, tenant: &TenantId, entry: &mut SignInLogEntry) -> Result<()> {
        let c = self.conn().await?;
        let inserted = c
            .q_one(
                "INSERT INTO signin_log (tenant_id, created_at, unknown_account, doc) VALUES ($1, $2, $3, $4) \
                 RETURNING seq",
                &[&tenant.to_string(), &entry.created_at, &unknown_account(entry), &row::enc(entry)?],
            )
            .await
            .map_err(pg_error)?;
        entry.seq = u64::try_from(inserted.get::<_, i64>(0)).unwrap_or(0);
        Ok(())
    }

    /// Both steps in one transaction: first every entry older than `before`, then, per tenant
    /// still over `keep`, its excess ranked unknown-account failures first, oldest first.
    async fn trim_signin_log(&self, before: i64, keep: usize) -> Result<usize> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let removed = transact!(self, tx => {
            let old = tx.exec("DELETE FROM signin_log WHERE created_at < $1", &[&before]).await?;
            let excess = tx
                .exec(
                    "WITH over AS (SELECT tenant_id, count(*) - $1 AS excess FROM signin_log \
                                   GROUP BY tenant_id HAVING count(*) > $1), \
                          ranked AS (SELECT l.tenant_id, l.seq, o.excess, row_number() OVER \
                                       (PARTITION BY l.tenant_id ORDER BY l.unknown_account DESC, l.seq) AS rank \
                                     FROM signin_log l JOIN over o USING (tenant_id)) \
                     DELETE FROM signin_log d USING ranked r \
                     WHERE d.tenant_id = r.tenant_id AND d.seq = r.seq AND r.rank <= r.excess",
                    &[&keep],
                )
                .await?;
            old + excess
        })?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    /// A database that does not answer counts as an empty log (the trait has no error here).
    async fn signin_log_len(&self, tenant: &TenantId) -> usize {
        let counted = async {
            let c = self.conn().await?;
            let r = c
                .q_one("SELECT count(*) FROM signin_log WHERE tenant_id = $1", &[&tenant.to_string()])
                .await
                .map_err(pg_error)?;
            Ok::<_, StoreError>(r.get::<_, i64>(0))
        };
        match counted.await {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the sign-in log");
                0
            }
        }
    }

    async fn signin_log(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SignInLogEntry>> {
        let c = self.conn().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c
            .q(
                "SELECT seq, doc FROM signin_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT $2",
                &[&tenant.to_string(), &limit],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(log_entry).collect()
    }
}

/// A sign-in log row as its entry, with the row's sequence.
fn log_entry(r: &tokio_postgres::Row) -> Result<SignInLogEntry> {
    let mut entry: SignInLogEntry = row::doc(r, "doc")?;
    entry.seq = u64::try_from(r.get::<_, i64>("seq")).unwrap_or(0);
    Ok(entry)
}

/// An outbox row as its message, with the row's id.
fn outbox_message(r: &tokio_postgres::Row) -> Result<OutboxMessage> {
    let mut msg: OutboxMessage = row::doc(r, "doc")?;
    msg.id = u64::try_from(r.get::<_, i64>("id")).unwrap_or(0);
    Ok(msg)
}

#[async_trait::async_trait]
impl api::OutboxStore for PgStore {
    /// The id comes from the `outbox` bigserial (taken first, so the stored record carries it).
    async fn push_outbox(&self, mut msg: OutboxMessage) -> Result<OutboxMessage> {
        let c = self.conn().await?;
        let next = c.q_one("SELECT nextval(pg_get_serial_sequence('outbox', 'id'))", &[]).await.map_err(pg_error)?;
        let id: i64 = next.get(0);
        msg.id = u64::try_from(id).unwrap_or(0);
        c.exec("INSERT INTO outbox (id, doc) VALUES ($1, $2)", &[&id, &row::enc(&msg)?]).await.map_err(pg_error)?;
        Ok(msg)
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>> {
        let c = self.conn().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c.q("SELECT id, doc FROM outbox ORDER BY id DESC LIMIT $1", &[&limit]).await.map_err(pg_error)?;
        rows.iter().map(outbox_message).collect()
    }
}

#[async_trait::async_trait]
impl api::KeyStore for PgStore {
    async fn key_metas(&self) -> Result<Vec<KeyMeta>> {
        let c = self.conn().await?;
        let rows = c.q("SELECT meta FROM signing_keys ORDER BY kid COLLATE \"C\"", &[]).await.map_err(pg_error)?;
        rows.iter().map(|r| row::doc(r, "meta")).collect()
    }

    /// Keeps the sealed private key the row already has.
    async fn put_key_meta(&self, meta: &KeyMeta) -> Result<()> {
        let doc = row::enc(meta)?;
        transact!(self, tx => {
            tx.exec(
                "INSERT INTO signing_keys (kid, meta) VALUES ($1, $2) \
                 ON CONFLICT (kid) DO UPDATE SET meta = excluded.meta",
                &[&meta.kid, &doc],
            )
            .await?;
            PgStore::notify(&tx, &Change::Keys).await?;
        })
    }

    async fn put_key_sealed(&self, meta: &KeyMeta, sealed: &[u8]) -> Result<()> {
        let doc = row::enc(meta)?;
        transact!(self, tx => {
            tx.exec(
                "INSERT INTO signing_keys (kid, meta, sealed) VALUES ($1, $2, $3) \
                 ON CONFLICT (kid) DO UPDATE SET meta = excluded.meta, sealed = excluded.sealed",
                &[&meta.kid, &doc, &sealed],
            )
            .await?;
            PgStore::notify(&tx, &Change::Keys).await?;
        })
    }

    async fn key_sealed(&self, kid: &str) -> Result<Option<Vec<u8>>> {
        let c = self.conn().await?;
        let found = c.q_opt("SELECT sealed FROM signing_keys WHERE kid = $1", &[&kid]).await.map_err(pg_error)?;
        Ok(found.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
    }

    async fn delete_key_meta(&self, kid: &str) -> Result<()> {
        transact!(self, tx => {
            tx.exec("DELETE FROM signing_keys WHERE kid = $1", &[&kid]).await?;
            PgStore::notify(&tx, &Change::Keys).await?;
        })
    }
}

/// What the sweep deletes by `expires_at`, one statement (and transaction) each.
const EXPIRED: &[&str] = &[
    "DELETE FROM signins WHERE expires_at < $1",
    "DELETE FROM sessions WHERE expires_at < $1",
    "DELETE FROM codes WHERE expires_at < $1",
    // A grant past its end is dead whatever its tokens say, and its end never moves.
    "DELETE FROM grants WHERE expires_at < $1",
    "DELETE FROM refresh_tokens WHERE expires_at < $1",
    "DELETE FROM revoked_jti WHERE expires_at < $1",
];

/// Every table in a snapshot: the name its records carry (sled's tree name, which tests
/// filter on), the table, and its key as text (the order of the records).
const SNAPSHOT: &[(&str, &str, &str)] = &[
    ("meta", "meta", "key"),
    ("keys", "signing_keys", "kid"),
    ("tenants", "tenants", "id"),
    ("seats", "seats", "tenant_id"),
    ("tenant_users", "users", "tenant_id || '/' || id"),
    ("tenant_apps", "apps", "tenant_id || '/' || client_id"),
    ("tenant_invitations", "invitations", "tenant_id || '/' || id::text"),
    ("tickets", "tickets", "encode(id, 'hex')"),
    ("stub_accounts", "stub_accounts", "stub || '/' || login"),
    ("fed_states", "fed_states", "state"),
    ("signins", "signins", "encode(id, 'hex')"),
    ("sessions", "sessions", "encode(id, 'hex')"),
    ("codes", "codes", "encode(id, 'hex')"),
    ("grants", "grants", "id::text"),
    ("refresh_tokens", "refresh_tokens", "encode(id, 'hex')"),
    ("revoked_jti", "revoked_jti", "jti"),
    ("tenant_policies", "policies", "tenant_id || '/' || id"),
    ("tenant_named_locations", "named_locations", "tenant_id || '/' || id"),
    ("tenant_devices", "devices", "tenant_id || '/' || id"),
    ("tenant_consents", "consents", "tenant_id || '/' || user_id || '/' || client_id"),
    ("tenant_signin_log", "signin_log", "tenant_id || '/' || lpad(seq::text, 20, '0')"),
    ("outbox", "outbox", "lpad(id::text, 20, '0')"),
    ("mail_queue", "mail_queue", "id::text"),
];

fn id32(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| StoreError::Corrupt(format!("{what}: a key of {} bytes", bytes.len())))
}

fn tenant_of(text: &str) -> Result<TenantId> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("tenant id {text:?}")))
}

fn user_of(text: &str) -> Result<UserId> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("user id {text:?}")))
}

/// Runs one statement of an import, prepared once per import.
async fn run(
    tx: &Transaction<'_>,
    prepared: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
    params: &[&(dyn ToSql + Sync)],
) -> PgResult<()> {
    let statement = match prepared.get(sql) {
        Some(s) => s.clone(),
        None => {
            let s = tx.prepare(sql).await?;
            prepared.insert(sql, s.clone());
            s
        }
    };
    tx.execute(&statement, params).await?;
    Ok(())
}

/// Writes one item (an upsert by its key, which keeps rows that did not change untouched).
async fn import_item(
    tx: &Transaction<'_>,
    prepared: &mut HashMap<&'static str, Statement>,
    item: &Item,
) -> PgResult<()> {
    match item {
        Item::Meta(key, value) => {
            let sql = "INSERT INTO meta (key, value) VALUES ($1, $2) \
                       ON CONFLICT (key) DO UPDATE SET value = excluded.value";
            run(tx, prepared, sql, &[key, value]).await
        }
        Item::Key(meta, sealed) => {
            let sql = "INSERT INTO signing_keys (kid, meta, sealed) VALUES ($1, $2, $3) ON CONFLICT (kid) \
                       DO UPDATE SET meta = excluded.meta, sealed = coalesce(excluded.sealed, signing_keys.sealed)";
            run(tx, prepared, sql, &[&meta.kid, &row::enc(meta)?, sealed]).await
        }
        Item::Tenant(t) => {
            let domains: Vec<String> = t.domains.iter().map(|d| d.to_ascii_lowercase()).collect();
            let sql = "INSERT INTO tenants (id, slug, domains, doc) VALUES ($1, $2, $3, $4) ON CONFLICT (id) \
                       DO UPDATE SET slug = excluded.slug, domains = excluded.domains, doc = excluded.doc";
            run(tx, prepared, sql, &[&t.id.to_string(), &t.slug, &domains, &row::enc(t)?]).await
        }
        Item::User(u) => {
            let mail = Some(u.mail.to_ascii_lowercase()).filter(|m| !m.is_empty());
            let sql = "INSERT INTO users (tenant_id, id, upn, mail, user_type, holds_seat, doc) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, id) DO UPDATE SET \
                       upn = excluded.upn, mail = excluded.mail, user_type = excluded.user_type, \
                       holds_seat = excluded.holds_seat, doc = excluded.doc, version = users.version + 1 \
                       WHERE users.doc IS DISTINCT FROM excluded.doc";
            let upn = u.user_principal_name.to_ascii_lowercase();
            let params: [&(dyn ToSql + Sync); 7] = [
                &u.tenant_id.to_string(),
                &u.id.to_string(),
                &upn,
                &mail,
                &u.user_type.as_str(),
                &u.holds_seat(),
                &row::enc(u)?,
            ];
            run(tx, prepared, sql, &params).await
        }
        Item::App(a) => {
            let sql = "INSERT INTO apps (tenant_id, client_id, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (tenant_id, client_id) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[&a.tenant_id.to_string(), &a.client_id.as_str(), &row::enc(a)?]).await
        }
        Item::Invitation(inv) => {
            let sql = "INSERT INTO invitations (tenant_id, id, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[&inv.tenant_id.to_string(), &inv.id, &row::enc(inv)?]).await
        }
        Item::Ticket(id, t) => {
            let sql = "INSERT INTO tickets (id, tenant_id, user_id, doc) VALUES ($1, $2, $3, $4) ON CONFLICT (id) \
                       DO UPDATE SET tenant_id = excluded.tenant_id, user_id = excluded.user_id, doc = excluded.doc";
            run(tx, prepared, sql, &[&id.as_slice(), &t.tenant_id.to_string(), &t.user_id.to_string(), &row::enc(t)?])
                .await
        }
        Item::StubAccount(stub, acct) => {
            let sql = "INSERT INTO stub_accounts (stub, login, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (stub, login) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[stub, &acct.login, &row::enc(acct)?]).await
        }
        Item::FedState(state, f) => {
            let sql = "INSERT INTO fed_states (state, expires_at, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (state) DO UPDATE SET expires_at = excluded.expires_at, doc = excluded.doc";
            run(tx, prepared, sql, &[state, &f.expires_at, &row::enc(f)?]).await
        }
        Item::SignIn(id, s) => {
            // A new row takes the next `seq`: items come oldest first, so each browser's
            // sign-ins keep their age order (what eviction goes by).
            let sql = "INSERT INTO signins (id, browser, expires_at, doc) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (id) DO UPDATE SET browser = excluded.browser, expires_at = excluded.expires_at, \
                       doc = excluded.doc, version = signins.version + 1 \
                       WHERE signins.doc IS DISTINCT FROM excluded.doc";
            run(tx, prepared, sql, &[&id.as_slice(), &s.browser.as_slice(), &s.expires_at, &row::enc(s)?]).await
        }
        Item::Session(id, s) => {
            let sql = "INSERT INTO sessions (id, expires_at, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, doc = excluded.doc";
            run(tx, prepared, sql, &[&id.as_slice(), &s.expires_at, &row::enc(s)?]).await
        }
        Item::Code(id, c) => {
            let sql = "INSERT INTO codes (id, grant_id, used, expires_at, doc) VALUES ($1, $2, $3, $4, $5) \
                       ON CONFLICT (id) DO UPDATE SET grant_id = excluded.grant_id, used = excluded.used, \
                       expires_at = excluded.expires_at, doc = excluded.doc";
            run(tx, prepared, sql, &[&id.as_slice(), &c.grant_id, &c.used, &c.expires_at, &row::enc(c)?]).await
        }
        Item::Grant(id, g) => {
            let sql = "INSERT INTO grants (id, revoked, expires_at, doc) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (id) DO UPDATE SET revoked = excluded.revoked, expires_at = excluded.expires_at, \
                       doc = excluded.doc";
            run(tx, prepared, sql, &[id, &g.revoked, &g.expires_at, &row::enc(g)?]).await
        }
        Item::Refresh(id, rt) => {
            let sql = "INSERT INTO refresh_tokens (id, grant_id, rotated, expires_at, doc, tenant_id, user_id) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET grant_id = excluded.grant_id, \
                       rotated = excluded.rotated, expires_at = excluded.expires_at, doc = excluded.doc, \
                       tenant_id = excluded.tenant_id, user_id = excluded.user_id";
            let (tenant, user) = (rt.tenant_id.to_string(), rt.auth.user_id.to_string());
            let doc = row::enc(rt)?;
            run(tx, prepared, sql, &[&id.as_slice(), &rt.grant_id, &rt.rotated, &rt.expires_at, &doc, &tenant, &user])
                .await
        }
        Item::RevokedJti(jti, exp) => {
            let sql = "INSERT INTO revoked_jti (jti, expires_at) VALUES ($1, $2) \
                       ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at";
            run(tx, prepared, sql, &[jti, exp]).await
        }
        Item::Policy(t, p) => {
            let sql = "INSERT INTO policies (tenant_id, id, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[&t.to_string(), &p.id, &row::enc(p)?]).await
        }
        Item::NamedLocation(t, l) => {
            let sql = "INSERT INTO named_locations (tenant_id, id, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[&t.to_string(), &l.id, &row::enc(l)?]).await
        }
        Item::Device(t, d) => {
            let sql = "INSERT INTO devices (tenant_id, id, doc) VALUES ($1, $2, $3) \
                       ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[&t.to_string(), &d.id, &row::enc(d)?]).await
        }
        Item::Consent(t, user, client_id, c) => {
            let sql = "INSERT INTO consents (tenant_id, user_id, client_id, doc) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (tenant_id, user_id, client_id) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[&t.to_string(), &user.to_string(), client_id, &row::enc(c)?]).await
        }
        Item::SignInLog(t, entry) => {
            let seq = i64::try_from(entry.seq)
                .map_err(|_| StoreError::Corrupt(format!("sign-in log sequence {}", entry.seq)))?;
            let sql = "INSERT INTO signin_log (tenant_id, seq, created_at, unknown_account, doc) \
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, seq) DO UPDATE SET \
                       created_at = excluded.created_at, unknown_account = excluded.unknown_account, doc = excluded.doc";
            let params: [&(dyn ToSql + Sync); 5] =
                [&t.to_string(), &seq, &entry.created_at, &unknown_account(entry), &row::enc(entry)?];
            run(tx, prepared, sql, &params).await
        }
        Item::Outbox(msg) => {
            let id = i64::try_from(msg.id).map_err(|_| StoreError::Corrupt(format!("outbox id {}", msg.id)))?;
            let sql = "INSERT INTO outbox (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc";
            run(tx, prepared, sql, &[&id, &row::enc(msg)?]).await
        }
    }
}

/// After an import: every bigserial past the largest value imported (never backwards), and
/// the seat counts recounted from the users.
const AFTER_IMPORT: &str = "
    SELECT setval(pg_get_serial_sequence('outbox', 'id'),
        greatest(nextval(pg_get_serial_sequence('outbox', 'id')), (SELECT coalesce(max(id), 0) + 1 FROM outbox)), false);
    SELECT setval(pg_get_serial_sequence('signin_log', 'seq'),
        greatest(nextval(pg_get_serial_sequence('signin_log', 'seq')),
                 (SELECT coalesce(max(seq), 0) + 1 FROM signin_log)), false);
    SELECT setval(pg_get_serial_sequence('signins', 'seq'),
        greatest(nextval(pg_get_serial_sequence('signins', 'seq')), (SELECT coalesce(max(seq), 0) + 1 FROM signins)),
        false);
    INSERT INTO seats (tenant_id, used) SELECT tenant_id, count(*) FROM users WHERE holds_seat GROUP BY tenant_id
        ON CONFLICT (tenant_id) DO UPDATE SET used = excluded.used WHERE seats.used <> excluded.used;
    UPDATE seats SET used = 0 WHERE used <> 0
        AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = seats.tenant_id AND u.holds_seat);
";

/// The session advisory lock the sweeping node holds.
const SWEEP_LOCK: i64 = 0x0067_6873_7770;

impl PgStore {
    /// Removes expired rows (see `SledStore::sweep` for what goes and what stays: tickets
    /// are kept), federation states by the guest store's own sweep, and the sign-in log
    /// past its retention.
    pub(super) async fn sweep_expired(&self, now: i64) -> Result<usize> {
        // One node sweeps at a time: the one that gets the sweep lock; the others skip.
        let holder = self.conn().await?;
        let got = holder.q_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK]).await.map_err(pg_error)?;
        if !got.get::<_, bool>(0) {
            return Ok(0);
        }
        let swept = self.sweep_all(now).await;
        holder.exec("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK]).await.map_err(pg_error)?;
        swept
    }

    async fn sweep_all(&self, now: i64) -> Result<usize> {
        let mut removed = 0u64;
        for sql in EXPIRED {
            removed += transact!(self, tx => tx.exec(sql, &[&now]).await?)?;
        }
        let mut removed = usize::try_from(removed).unwrap_or(usize::MAX);
        removed += api::GuestStore::sweep_fed_states(self, now).await?;
        removed += api::AuditStore::trim_signin_log(self, now - LOG_RETENTION_SECS, LOG_MAX_ENTRIES_PER_TENANT).await?;
        removed += self.sweep_counters(now).await?;
        Ok(removed)
    }

    /// Every row of every table but the counters (sled keeps those outside its trees), in
    /// key order, from one consistent read: (table, key as text, the row as JSON).
    pub(super) async fn snapshot_rows(&self) -> Result<Vec<Record>> {
        let mut c = self.conn().await?;
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let mut out = Vec::new();
        for (name, table, key) in SNAPSHOT {
            let sql = format!(
                "SELECT k, v FROM (SELECT ({key})::text AS k, row_to_json(t)::text AS v FROM {table} t) r \
                 ORDER BY k COLLATE \"C\""
            );
            for r in tx.query(&sql, &[]).await.map_err(pg_error)? {
                let (k, v): (String, String) = (r.get(0), r.get(1));
                out.push((name.to_string(), k.into_bytes(), v.into_bytes()));
            }
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }

    /// Every record as an item, from one consistent read; sign-ins, the sign-in log and the
    /// outbox oldest first (an import keeps their order).
    pub(super) async fn export_items(&self) -> Result<Vec<Item>> {
        let mut c = self.conn().await?;
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let q = |sql: &'static str| {
            let tx = &tx;
            async move { tx.query(sql, &[]).await.map_err(pg_error) }
        };
        let mut out = Vec::new();
        for r in q("SELECT key, value FROM meta ORDER BY key COLLATE \"C\"").await? {
            out.push(Item::Meta(r.get(0), r.get(1)));
        }
        for r in q("SELECT meta, sealed FROM signing_keys ORDER BY kid COLLATE \"C\"").await? {
            out.push(Item::Key(Box::new(row::doc(&r, "meta")?), r.get("sealed")));
        }
        for r in q("SELECT doc FROM tenants ORDER BY id COLLATE \"C\"").await? {
            out.push(Item::Tenant(Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT doc FROM users ORDER BY tenant_id COLLATE \"C\", id").await? {
            out.push(Item::User(Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT doc FROM apps ORDER BY tenant_id COLLATE \"C\", client_id COLLATE \"C\"").await? {
            out.push(Item::App(Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT doc FROM invitations ORDER BY tenant_id COLLATE \"C\", id").await? {
            out.push(Item::Invitation(Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT id, doc FROM tickets ORDER BY id").await? {
            out.push(Item::Ticket(id32(r.get("id"), "tickets")?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT stub, doc FROM stub_accounts ORDER BY stub COLLATE \"C\", login COLLATE \"C\"").await? {
            out.push(Item::StubAccount(r.get("stub"), Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT state, doc FROM fed_states ORDER BY state COLLATE \"C\"").await? {
            // An unreadable state can never be used (GuestStore::fed_state): nothing to copy.
            if let Ok(f) = row::doc(&r, "doc") {
                out.push(Item::FedState(r.get("state"), Box::new(f)));
            }
        }
        for r in q("SELECT id, doc FROM signins ORDER BY seq").await? {
            out.push(Item::SignIn(id32(r.get("id"), "signins")?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT id, doc FROM sessions ORDER BY id").await? {
            out.push(Item::Session(id32(r.get("id"), "sessions")?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT id, doc FROM codes ORDER BY id").await? {
            out.push(Item::Code(id32(r.get("id"), "codes")?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT id, doc FROM grants ORDER BY id").await? {
            out.push(Item::Grant(r.get::<_, Uuid>("id"), Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT id, doc FROM refresh_tokens ORDER BY id").await? {
            out.push(Item::Refresh(id32(r.get("id"), "refresh_tokens")?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT jti, expires_at FROM revoked_jti ORDER BY jti COLLATE \"C\"").await? {
            out.push(Item::RevokedJti(r.get(0), r.get(1)));
        }
        for r in q("SELECT tenant_id, doc FROM policies ORDER BY tenant_id COLLATE \"C\", id COLLATE \"C\"").await? {
            out.push(Item::Policy(tenant_of(r.get("tenant_id"))?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in
            q("SELECT tenant_id, doc FROM named_locations ORDER BY tenant_id COLLATE \"C\", id COLLATE \"C\"").await?
        {
            out.push(Item::NamedLocation(tenant_of(r.get("tenant_id"))?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT tenant_id, doc FROM devices ORDER BY tenant_id COLLATE \"C\", id COLLATE \"C\"").await? {
            out.push(Item::Device(tenant_of(r.get("tenant_id"))?, Box::new(row::doc(&r, "doc")?)));
        }
        for r in q("SELECT tenant_id, user_id, client_id, doc FROM consents \
                    ORDER BY tenant_id COLLATE \"C\", user_id COLLATE \"C\", client_id COLLATE \"C\"")
        .await?
        {
            out.push(Item::Consent(
                tenant_of(r.get("tenant_id"))?,
                user_of(r.get("user_id"))?,
                r.get("client_id"),
                Box::new(row::doc(&r, "doc")?),
            ));
        }
        for r in q("SELECT tenant_id, seq, doc FROM signin_log ORDER BY seq").await? {
            out.push(Item::SignInLog(tenant_of(r.get("tenant_id"))?, Box::new(log_entry(&r)?)));
        }
        for r in q("SELECT id, doc FROM outbox ORDER BY id").await? {
            out.push(Item::Outbox(Box::new(outbox_message(&r)?)));
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }

    /// Writes every item in one transaction (all or nothing), keeping the ids and sequences
    /// they carry; then moves the bigserials past them, recounts the seats and tells every
    /// node to drop its caches. Running it twice changes no row.
    pub(super) async fn import_items(&self, items: &[Item]) -> Result<()> {
        transact!(self, tx => {
            let mut prepared = HashMap::new();
            for item in items {
                import_item(&tx, &mut prepared, item).await?;
            }
            tx.batch_execute(AFTER_IMPORT).await?;
            PgStore::notify(&tx, &Change::Everything).await?;
        })?;
        self.ca_cache.clear();
        self.dir_cache.clear();
        Ok(())
    }
}
