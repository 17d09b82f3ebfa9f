-- gatehouse schema version 1 (DESIGN §8). Every record's `doc` is the same versioned JSON
-- the embedded store keeps (storage::codec); the other columns are what the database must
-- index or decide on: keys, uniqueness, single-winner states, expiry.
-- Bearer secrets (tickets, codes, refresh tokens, sessions, sign-ins) are keyed by their
-- SHA-256 digest, never stored in the clear.

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    slug       text NOT NULL UNIQUE,
    -- verified domains, lower case
    domains    text[] NOT NULL DEFAULT '{}',
    doc        bytea NOT NULL
);
CREATE INDEX tenants_domains ON tenants USING gin (domains);

-- Premium seats held per tenant (User::holds_seat), kept in the same transaction as every
-- user write; the conditional upsert that takes a seat decides the last one. Its own table
-- rather than a tenants column: users (and their seats) do not need a tenant row.
CREATE TABLE seats (
    tenant_id text PRIMARY KEY,
    used      integer NOT NULL CHECK (used >= 0)
);

CREATE TABLE users (
    tenant_id  text NOT NULL,
    -- byte order (as sled's keys), so a page in id order follows the primary key
    id         text COLLATE "C" NOT NULL,
    -- lower case; the unique indexes decide concurrent creates
    upn        text NOT NULL,
    mail       text,
    user_type  text NOT NULL,
    holds_seat boolean NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    doc        bytea NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_upn ON users (tenant_id, upn);
CREATE UNIQUE INDEX users_mail ON users (tenant_id, mail) WHERE mail IS NOT NULL;
CREATE INDEX users_type ON users (tenant_id, user_type, id);

CREATE TABLE apps (
    tenant_id text NOT NULL,
    client_id text NOT NULL,
    doc       bytea NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE invitations (
    tenant_id text NOT NULL,
    id        uuid NOT NULL,
    doc       bytea NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE tickets (
    id        bytea PRIMARY KEY,
    tenant_id text NOT NULL,
    user_id   text NOT NULL,
    doc       bytea NOT NULL
);
CREATE INDEX tickets_user ON tickets (tenant_id, user_id);

CREATE TABLE stub_accounts (
    stub  text NOT NULL,
    login text NOT NULL,
    doc   bytea NOT NULL,
    PRIMARY KEY (stub, login)
);

CREATE TABLE fed_states (
    state      text PRIMARY KEY,
    expires_at bigint NOT NULL,
    doc        bytea NOT NULL
);
CREATE INDEX fed_states_expiry ON fed_states (expires_at);

CREATE TABLE signins (
    id         bytea PRIMARY KEY,
    browser    bytea NOT NULL,
    seq        bigserial NOT NULL,
    expires_at bigint NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    doc        bytea NOT NULL
);
CREATE INDEX signins_browser ON signins (browser, seq);
CREATE INDEX signins_expiry ON signins (expires_at);

CREATE TABLE sessions (
    id         bytea PRIMARY KEY,
    expires_at bigint NOT NULL,
    doc        bytea NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE codes (
    id         bytea PRIMARY KEY,
    grant_id   uuid NOT NULL,
    used       boolean NOT NULL DEFAULT false,
    expires_at bigint NOT NULL,
    doc        bytea NOT NULL
);
CREATE INDEX codes_expiry ON codes (expires_at);

CREATE TABLE grants (
    id         uuid PRIMARY KEY,
    revoked    boolean NOT NULL DEFAULT false,
    expires_at bigint NOT NULL,
    doc        bytea NOT NULL
);
CREATE INDEX grants_expiry ON grants (expires_at);

CREATE TABLE refresh_tokens (
    id         bytea PRIMARY KEY,
    grant_id   uuid NOT NULL,
    rotated    boolean NOT NULL DEFAULT false,
    expires_at bigint NOT NULL,
    doc        bytea NOT NULL
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE revoked_jti (
    jti        text PRIMARY KEY,
    expires_at bigint NOT NULL
);

CREATE TABLE signing_keys (
    kid    text PRIMARY KEY,
    meta   bytea NOT NULL,
    -- the private key (PKCS#8 DER) sealed with AES-256-GCM under key_encryption_key
    sealed bytea
);

CREATE TABLE policies (
    tenant_id text NOT NULL,
    id        text NOT NULL,
    doc       bytea NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE named_locations (
    tenant_id text NOT NULL,
    id        text NOT NULL,
    doc       bytea NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE devices (
    tenant_id text NOT NULL,
    id        text NOT NULL,
    doc       bytea NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE consents (
    tenant_id text NOT NULL,
    user_id   text NOT NULL,
    client_id text NOT NULL,
    doc       bytea NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id)
);

CREATE TABLE signin_log (
    tenant_id       text NOT NULL,
    seq             bigserial NOT NULL,
    created_at      bigint NOT NULL,
    -- a failure of an unknown account (trimmed first when a tenant is over its cap)
    unknown_account boolean NOT NULL,
    doc             bytea NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX signin_log_time ON signin_log (created_at);

CREATE TABLE outbox (
    id  bigserial PRIMARY KEY,
    doc bytea NOT NULL
);

-- Failure and rate counters (lockouts, sends): one row per key, holding the times of its
-- events in the window. One `INSERT … ON CONFLICT DO UPDATE` checks and counts under the
-- row's lock, so concurrent attempts on any nodes queue on it and never pass the limit.
-- `expires_at` is the last event plus its window (the sweep drops rows past it); `taken`
-- is what the last reservation decided, read back by its RETURNING.
CREATE TABLE counters (
    key        text PRIMARY KEY,
    events     bigint[] NOT NULL,
    expires_at bigint NOT NULL,
    taken      boolean NOT NULL
);
CREATE INDEX counters_expires ON counters (expires_at);
