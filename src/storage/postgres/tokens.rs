//! Sign-ins, sessions, codes, grants, refresh tokens (rotation with reuse detection and one
//! retry), revoked ids. Every id here that derives from a bearer secret is its SHA-256.
//!
//! Each single-winner step (code use, rotation, a sign-in open under its caps) is one
//! transaction whose row locks decide: a conditional `UPDATE … WHERE NOT used`, or the
//! presented token's row taken `FOR UPDATE` before anything is read from it. The helpers
//! below take the transaction, so an early `return` leaves the helper, not `transact!`.
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::{Cached, PgResult, PgStore, pg_error, row, transact};
use crate::model::{AuthCode, Grant, RefreshToken, Session, SignIn};
use crate::storage::{
    CodeUse, RefreshContext, RefreshRules, RefreshUse, Result, SignInAdmission, StoreError, Versioned, api,
};

/// The first key of the advisory locks that serialise the sign-in opens of one browser
/// (the second is taken from the browser digest). Two-key advisory locks never collide
/// with the one-key locks of migrations and `hold_lock`.
const BROWSER_LOCK: i32 = 0x6768_7362; // "ghsb"

/// A count or limit as the database's `bigint`.
fn big(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The second advisory lock key of a browser: browsers that share it merely wait for each
/// other.
fn browser_lock_key(browser: &[u8; 32]) -> i32 {
    i32::from_be_bytes([browser[0], browser[1], browser[2], browser[3]])
}

/// The opaque version of a sign-in row: its `version` column, 8 bytes big-endian.
fn version_bytes(version: i64) -> Vec<u8> {
    version.to_be_bytes().to_vec()
}

fn version_of(bytes: &[u8]) -> Result<i64> {
    <[u8; 8]>::try_from(bytes)
        .map(i64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("a sign-in version that this store did not give out".into()))
}

#[async_trait::async_trait]
impl api::TokenStore for PgStore {
    /// One transaction under the browser's advisory lock, so the per-browser cap is exact
    /// across nodes: of two opens for one browser the second sees the first's row. The total
    /// is a flood guard, counted by a query bounded by the total itself (`LIMIT`), so an open
    /// costs at most `total` index entries and nothing when the instance is far below it; a
    /// single counter row would be exact but make every sign-in on every node wait for one
    /// row. Opens from different browsers at the same instant may each see the last free
    /// place, so the total can be passed by at most the number of opens in flight (bounded
    /// by the nodes' pools), which is what a flood guard needs.
    async fn open_signin(
        &self,
        id: &[u8; 32],
        signin: &SignIn,
        per_browser: usize,
        total: usize,
        now: i64,
    ) -> Result<SignInAdmission> {
        let doc = row::enc(signin)?;
        transact!(self, tx => open_signin_in(&tx, id, signin, &doc, per_browser.max(1), total, now).await?)
    }

    async fn put_signin(&self, id: &[u8; 32], signin: &SignIn) -> Result<()> {
        let doc = row::enc(signin)?;
        let c = self.conn().await?;
        c.exec(UPSERT_SIGNIN, &[&id.as_slice(), &signin.browser.as_slice(), &signin.expires_at, &doc])
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn signin(&self, id: &[u8; 32]) -> Result<Option<SignIn>> {
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM signins WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn signin_versioned(&self, id: &[u8; 32]) -> Result<Option<Versioned<SignIn>>> {
        let c = self.conn().await?;
        let found =
            c.q_opt("SELECT doc, version FROM signins WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        found
            .map(|r| Ok(Versioned { value: row::doc(&r, "doc")?, version: version_bytes(r.get("version")) }))
            .transpose()
    }

    async fn replace_signin(&self, id: &[u8; 32], old: &Versioned<SignIn>, new: &SignIn) -> Result<bool> {
        let version = version_of(&old.version)?;
        let doc = row::enc(new)?;
        let c = self.conn().await?;
        let changed = c
            .exec(
                // An unchanged record keeps its version (a no-op write changes nothing, as on sled).
                "UPDATE signins SET browser = $4, expires_at = $5, \
                 version = version + CASE WHEN doc = $3 THEN 0 ELSE 1 END, doc = $3 \
                 WHERE id = $1 AND version = $2",
                &[&id.as_slice(), &version, &doc, &new.browser.as_slice(), &new.expires_at],
            )
            .await
            .map_err(pg_error)?;
        Ok(changed == 1)
    }

    async fn delete_signin(&self, id: &[u8; 32]) -> Result<()> {
        let c = self.conn().await?;
        c.exec("DELETE FROM signins WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        Ok(())
    }

    /// Under both browsers' locks (in key order), so no open of either runs in between.
    async fn rebind_signins(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<()> {
        transact!(self, tx => rebind_in(&tx, old, new).await?)
    }

    /// Counted by the database (every node's sign-ins); 0 when it does not answer, which
    /// is logged.
    async fn signin_count(&self) -> usize {
        let counted = async {
            let c = self.conn().await?;
            let r = c.q_one("SELECT count(*) FROM signins", &[]).await.map_err(pg_error)?;
            Ok::<i64, StoreError>(r.get(0))
        };
        match counted.await {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "sign-ins could not be counted");
                0
            }
        }
    }

    async fn put_session(&self, id: &[u8; 32], session: &Session) -> Result<()> {
        let doc = row::enc(session)?;
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO sessions (id, expires_at, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, doc = excluded.doc",
            &[&id.as_slice(), &session.expires_at, &doc],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn session(&self, id: &[u8; 32]) -> Result<Option<Session>> {
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM sessions WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn delete_session(&self, id: &[u8; 32]) -> Result<()> {
        let c = self.conn().await?;
        c.exec("DELETE FROM sessions WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        Ok(())
    }

    async fn put_code(&self, id: &[u8; 32], code: &AuthCode) -> Result<()> {
        let doc = row::enc(code)?;
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO codes (id, grant_id, used, expires_at, doc) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET grant_id = excluded.grant_id, used = excluded.used, \
             expires_at = excluded.expires_at, doc = excluded.doc",
            &[&id.as_slice(), &code.grant_id, &code.used, &code.expires_at, &doc],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    /// One transaction: `UPDATE codes SET used = true WHERE … AND NOT used` decides between
    /// concurrent uses (the others wait for the winner's commit and then match no row), and
    /// the grant and first refresh token commit with it or not at all.
    async fn use_code(
        &self,
        id: &[u8; 32],
        grant: &Grant,
        refresh: Option<(&[u8; 32], &RefreshToken)>,
    ) -> Result<CodeUse> {
        transact!(self, tx => use_code_in(&tx, id, grant, refresh).await?)
    }

    async fn code(&self, id: &[u8; 32]) -> Result<Option<AuthCode>> {
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM codes WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn grant(&self, id: &Uuid) -> Result<Option<Grant>> {
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM grants WHERE id = $1", &[id]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn revoke_grant(&self, id: &Uuid) -> Result<()> {
        transact!(self, tx => revoke_grant_in(&tx, id).await?)
    }

    async fn refresh_token(&self, id: &[u8; 32]) -> Result<Option<RefreshToken>> {
        let c = self.conn().await?;
        let found =
            c.q_opt("SELECT doc FROM refresh_tokens WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    /// One statement: the token, its grant and its user. A token stored before its row
    /// named its user (schema 1) leaves the user to the caller.
    async fn refresh_context(&self, id: &[u8; 32]) -> Result<Option<RefreshContext>> {
        let c = self.conn().await?;
        let found = c
            .q_opt(
                // Subqueries, not joins: each is one primary-key lookup, whatever the planner
                // thinks of the tables' sizes (a join may hash a whole table of users).
                "SELECT r.doc, r.user_id IS NOT NULL AS keyed, \
                   (SELECT g.doc FROM grants g WHERE g.id = r.grant_id) AS grant_doc, \
                   (SELECT u.doc FROM users u WHERE u.tenant_id = r.tenant_id AND u.id = r.user_id) AS user_doc \
                 FROM refresh_tokens r WHERE r.id = $1",
                &[&id.as_slice()],
            )
            .await
            .map_err(pg_error)?;
        let Some(found) = found else { return Ok(None) };
        let token: RefreshToken = row::doc(&found, "doc")?;
        let grant = row::doc_opt(&found, "grant_doc")?;
        let user = if found.get::<_, bool>("keyed") { Some(row::doc_opt(&found, "user_doc")?) } else { None };
        Ok(Some(RefreshContext { token, grant, user }))
    }

    /// One transaction that takes the presented token's row `FOR UPDATE` first: concurrent
    /// presentations of one token run one after the other, each seeing what the one before
    /// it committed, so exactly one rotates.
    async fn rotate_refresh(&self, old: &[u8; 32], new: &[u8; 32], rules: &RefreshRules) -> Result<RefreshUse> {
        transact!(self, tx => rotate_in(&tx, old, new, rules).await?)
    }

    /// The common case in one statement, with no transaction around it: `seen` unrotated,
    /// its family live. The update takes the row only while it is still unrotated, so of
    /// concurrent presentations exactly one rotates here and the others find nothing to
    /// update and go through [`Self::rotate_refresh`], which sees the rotation and decides
    /// (reuse, or a retry). The family is checked as in the transaction, read and not locked.
    async fn rotate_refresh_seen(
        &self,
        old: &[u8; 32],
        seen: &RefreshToken,
        new: &[u8; 32],
        rules: &RefreshRules,
    ) -> Result<RefreshUse> {
        if seen.rotated || seen.expires_at < rules.now {
            return self.rotate_refresh(old, new, rules).await;
        }
        let next = successor_of(seen, rules);
        let spent = RefreshToken { rotated: true, rotated_at_ms: rules.now_ms, successor: Some(*new), ..seen.clone() };
        let rotation = super::batch::Rotation {
            old: *old,
            spent_doc: row::enc(&spent)?,
            grant_id: seen.grant_id,
            now: rules.now,
            new: *new,
            next_expires: next.expires_at,
            next_doc: row::enc(&next)?,
            tenant_id: next.tenant_id.to_string(),
            user_id: next.auth.user_id.to_string(),
        };
        let rotated = match self.thread_local()? {
            Some(local) => local.rotations.rotate(rotation).await?,
            None => super::batch::execute(&self.conn().await?, &[&rotation]).await?.contains(new),
        };
        if rotated {
            return Ok(RefreshUse::Rotated(Box::new(next)));
        }
        self.rotate_refresh(old, new, rules).await
    }

    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<()> {
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO revoked_jti (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at",
            &[&jti, &exp],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    /// One statement, each part a primary-key lookup.
    async fn access_context(
        &self,
        jti: &str,
        grant: &Uuid,
        tenant: &crate::model::TenantId,
        user: &crate::model::UserId,
    ) -> Result<(bool, Option<Grant>, Option<Option<crate::model::User>>)> {
        let c = self.conn().await?;
        let r = c
            .q_one(
                "SELECT EXISTS (SELECT 1 FROM revoked_jti WHERE jti = $1) AS revoked, \
                   (SELECT doc FROM grants WHERE id = $2) AS grant_doc, \
                   (SELECT doc FROM users WHERE tenant_id = $3 AND id = $4) AS user_doc",
                &[&jti, grant, &tenant.to_string(), &user.to_string()],
            )
            .await
            .map_err(pg_error)?;
        Ok((r.get("revoked"), row::doc_opt(&r, "grant_doc")?, Some(row::doc_opt(&r, "user_doc")?)))
    }

    async fn jti_revoked(&self, jti: &str) -> Result<bool> {
        let c = self.conn().await?;
        let r = c.q_one("SELECT EXISTS (SELECT 1 FROM revoked_jti WHERE jti = $1)", &[&jti]).await.map_err(pg_error)?;
        Ok(r.get(0))
    }
}

/// Creates or advances a sign-in: a new one gets the next `seq` (its place in its browser's
/// age order), an existing one keeps it.
const UPSERT_SIGNIN: &str = "INSERT INTO signins (id, browser, expires_at, doc) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (id) DO UPDATE SET browser = excluded.browser, expires_at = excluded.expires_at, \
     doc = excluded.doc, version = signins.version + 1";

/// Waits for the sign-in lock of `browser` until the transaction ends.
async fn lock_browser(tx: &Transaction<'_>, browser: &[u8; 32]) -> PgResult<()> {
    tx.exec("SELECT pg_advisory_xact_lock($1, $2)", &[&BROWSER_LOCK, &browser_lock_key(browser)]).await?;
    Ok(())
}

/// The browser's oldest sign-ins that must go for one more to fit its cap.
async fn browser_excess(tx: &Transaction<'_>, browser: &[u8; 32], per_browser: usize) -> PgResult<Vec<Vec<u8>>> {
    let mine = tx.q("SELECT id FROM signins WHERE browser = $1 ORDER BY seq", &[&browser.as_slice()]).await?;
    let excess = (mine.len() + 1).saturating_sub(per_browser);
    Ok(mine.iter().take(excess).map(|r| r.get::<_, Vec<u8>>(0)).collect())
}

/// Whether the instance holds `total` sign-ins even after `evicting` of them go: counts at
/// most `total + evicting` rows.
async fn full(tx: &Transaction<'_>, total: usize, evicting: usize) -> PgResult<bool> {
    let bound = big(total.saturating_add(evicting));
    let r = tx.q_one("SELECT count(*) FROM (SELECT 1 FROM signins LIMIT $1) AS bounded", &[&bound]).await?;
    let held = usize::try_from(r.get::<_, i64>(0)).unwrap_or(usize::MAX);
    Ok(held.saturating_sub(evicting) >= total)
}

async fn open_signin_in(
    tx: &Transaction<'_>,
    id: &[u8; 32],
    signin: &SignIn,
    doc: &[u8],
    per_browser: usize,
    total: usize,
    now: i64,
) -> PgResult<SignInAdmission> {
    lock_browser(tx, &signin.browser).await?;
    // Decided before anything changes: the browser's oldest over its cap go to make room for
    // this one, so they count as room for the total; Full changes nothing.
    let mut evict = browser_excess(tx, &signin.browser, per_browser).await?;
    if full(tx, total, evict.len()).await? {
        // Expired sign-ins are no one's: removing them before refusing is never wrong, and
        // the expiry index keeps it cheap when there are none.
        let swept = tx.exec("DELETE FROM signins WHERE expires_at < $1", &[&now]).await?;
        if swept > 0 {
            evict = browser_excess(tx, &signin.browser, per_browser).await?;
        }
        if swept == 0 || full(tx, total, evict.len()).await? {
            return Ok(SignInAdmission::Full);
        }
    }
    if !evict.is_empty() {
        tx.exec("DELETE FROM signins WHERE id = ANY($1)", &[&evict]).await?;
    }
    tx.exec(UPSERT_SIGNIN, &[&id.as_slice(), &signin.browser.as_slice(), &signin.expires_at, &doc]).await?;
    Ok(SignInAdmission::Stored)
}

async fn rebind_in(tx: &Transaction<'_>, old: &[u8; 32], new: &[u8; 32]) -> PgResult<()> {
    let (first, second) = if browser_lock_key(old) <= browser_lock_key(new) { (old, new) } else { (new, old) };
    lock_browser(tx, first).await?;
    lock_browser(tx, second).await?;
    let rows = tx.q("SELECT id, doc FROM signins WHERE browser = $1 FOR UPDATE", &[&old.as_slice()]).await?;
    for r in rows {
        let id: Vec<u8> = r.get("id");
        let mut signin: SignIn = row::doc(&r, "doc")?;
        signin.browser = *new;
        tx.exec(
            "UPDATE signins SET browser = $2, doc = $3, version = version + 1 WHERE id = $1",
            &[&id, &new.as_slice(), &row::enc(&signin)?],
        )
        .await?;
    }
    Ok(())
}

async fn use_code_in(
    tx: &Transaction<'_>,
    id: &[u8; 32],
    grant: &Grant,
    refresh: Option<(&[u8; 32], &RefreshToken)>,
) -> PgResult<CodeUse> {
    let spent =
        tx.q_opt("UPDATE codes SET used = true WHERE id = $1 AND NOT used RETURNING doc", &[&id.as_slice()]).await?;
    let Some(spent) = spent else {
        let code = tx.q_opt("SELECT grant_id FROM codes WHERE id = $1", &[&id.as_slice()]).await?;
        let Some(code) = code else { return Ok(CodeUse::Unknown) };
        revoke_grant_in(tx, &code.get("grant_id")).await?;
        return Ok(CodeUse::Replayed);
    };
    let mut code: AuthCode = row::doc(&spent, "doc")?;
    code.used = true;
    tx.exec("UPDATE codes SET doc = $2 WHERE id = $1", &[&id.as_slice(), &row::enc(&code)?]).await?;
    tx.exec(
        "INSERT INTO grants (id, revoked, expires_at, doc) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET revoked = excluded.revoked, expires_at = excluded.expires_at, doc = excluded.doc",
        &[&code.grant_id, &grant.revoked, &grant.expires_at, &row::enc(grant)?],
    )
    .await?;
    if let Some((rid, rt)) = refresh {
        put_refresh(tx, rid, rt).await?;
    }
    Ok(CodeUse::Redeemed(Box::new(code)))
}

/// Marks the grant revoked, in its column and in its record alike (no-op without one).
async fn revoke_grant_in(tx: &Transaction<'_>, id: &Uuid) -> PgResult<()> {
    let Some(found) = tx.q_opt("SELECT doc FROM grants WHERE id = $1 FOR UPDATE", &[id]).await? else {
        return Ok(());
    };
    let mut grant: Grant = row::doc(&found, "doc")?;
    if !grant.revoked {
        grant.revoked = true;
        tx.exec("UPDATE grants SET revoked = true, doc = $2 WHERE id = $1", &[id, &row::enc(&grant)?]).await?;
    }
    Ok(())
}

/// Writes a refresh token, replacing one with the same id.
async fn put_refresh(tx: &Transaction<'_>, id: &[u8; 32], rt: &RefreshToken) -> PgResult<()> {
    tx.exec(
        "INSERT INTO refresh_tokens (id, grant_id, rotated, expires_at, doc, tenant_id, user_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET grant_id = excluded.grant_id, rotated = excluded.rotated, \
         expires_at = excluded.expires_at, doc = excluded.doc, tenant_id = excluded.tenant_id, \
         user_id = excluded.user_id",
        &[
            &id.as_slice(),
            &rt.grant_id,
            &rt.rotated,
            &rt.expires_at,
            &row::enc(rt)?,
            &rt.tenant_id.to_string(),
            &rt.auth.user_id.to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// The refresh token `id` with its row locked until the transaction ends.
async fn lock_refresh(tx: &Transaction<'_>, id: &[u8; 32]) -> PgResult<Option<RefreshToken>> {
    let found = tx.q_opt("SELECT doc FROM refresh_tokens WHERE id = $1 FOR UPDATE", &[&id.as_slice()]).await?;
    Ok(found.map(|r| row::doc(&r, "doc")).transpose()?)
}

async fn rotate_in(tx: &Transaction<'_>, old: &[u8; 32], new: &[u8; 32], rules: &RefreshRules) -> PgResult<RefreshUse> {
    let now = rules.now;
    let Some(mut rt) = lock_refresh(tx, old).await? else { return Ok(RefreshUse::Unknown) };
    // The grant is read, not locked: a revocation racing this rotation leaves a successor
    // that is refused at its first use, and not locking it keeps the lock order one way
    // (token, then successor) whatever the family does at the same time.
    let found = tx.q_opt("SELECT doc FROM grants WHERE id = $1", &[&rt.grant_id]).await?;
    let Some(found) = found else { return Ok(RefreshUse::Unknown) };
    let grant: Grant = row::doc(&found, "doc")?;
    let family_live = !grant.revoked && grant.expires_at >= now;
    if rt.rotated {
        // A retry needs a live family (a dead one is refused as reuse, as before the rule).
        // The successor is locked too: its own rotation either committed before (then it is
        // rotated, and this is reuse) or waits and then finds it gone (Unknown).
        if family_live
            && retry_window_open(&rt, rules)
            && let Some(unused) = rt.successor
            && lock_refresh(tx, &unused).await?.is_some_and(|s| !s.rotated)
        {
            tx.exec("DELETE FROM refresh_tokens WHERE id = $1", &[&unused.as_slice()]).await?;
            let next = successor_of(&rt, rules);
            put_refresh(tx, new, &next).await?;
            rt.successor = Some(*new);
            rt.retried = true;
            put_refresh(tx, old, &rt).await?;
            return Ok(RefreshUse::Retried(Box::new(next)));
        }
        revoke_grant_in(tx, &rt.grant_id).await?;
        return Ok(RefreshUse::Reused);
    }
    if !family_live || rt.expires_at < now {
        return Ok(RefreshUse::Revoked);
    }
    let next = successor_of(&rt, rules);
    put_refresh(tx, new, &next).await?;
    rt.rotated = true;
    rt.rotated_at_ms = rules.now_ms;
    rt.successor = Some(*new);
    put_refresh(tx, old, &rt).await?;
    Ok(RefreshUse::Rotated(Box::new(next)))
}

/// What a fresh successor of `rt` is, whether by rotation or by retry.
fn successor_of(rt: &RefreshToken, rules: &RefreshRules) -> RefreshToken {
    RefreshToken {
        issued_at: rules.now,
        expires_at: rules.now + rules.life_secs,
        rotated: false,
        rotated_at_ms: 0,
        successor: None,
        retried: false,
        ..rt.clone()
    }
}

/// Whether a rotated token presented now may be a retry ([`RefreshRules`]): the window is
/// open, it was not presented at once with its rotation, and its one retry is unspent.
fn retry_window_open(rt: &RefreshToken, rules: &RefreshRules) -> bool {
    let since = rules.now_ms - rt.rotated_at_ms;
    rules.grace_secs > 0
        && !rt.retried
        && since <= rules.grace_secs.saturating_mul(1000)
        && since >= rules.retry_after_ms
}
