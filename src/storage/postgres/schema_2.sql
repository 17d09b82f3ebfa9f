-- Schema 2: a refresh token's row names its tenant and user, so a refresh reads the token,
-- its grant and its user in one statement. Rows written by schema 1 keep NULL here (their
-- user is read on its own); they are gone once their tokens expire or rotate.
ALTER TABLE refresh_tokens ADD COLUMN tenant_id text, ADD COLUMN user_id text COLLATE "C";
