-- Schema 3: the mail delivery queue (src/mail): one row per message handed to SMTP.
-- `due_at` (Unix ms) is when a worker may claim the row: its next attempt, or the end of the
-- lease of a worker that stopped answering; NULL once the message is sent or has failed.
-- A claim locks due rows `FOR UPDATE SKIP LOCKED` and gives each a new `lease`, so two nodes
-- never claim the same attempt; an outcome is written only under the lease it was claimed with.
CREATE TABLE mail_queue (
    id         uuid PRIMARY KEY,
    seq        bigserial NOT NULL,
    tenant_id  text,
    created_at bigint NOT NULL,
    due_at     bigint,
    lease      uuid,
    doc        bytea NOT NULL
);
CREATE INDEX mail_queue_due ON mail_queue (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX mail_queue_tenant ON mail_queue (tenant_id, created_at, seq);
