//! Sign-ins, sessions, codes, grants, refresh tokens (rotation with reuse detection and one retry), revoked ids.
#![allow(unused_variables, unused_imports)]
use uuid::Uuid;

use super::PgStore;
use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::*;

#[async_trait::async_trait]
impl api::TokenStore for PgStore {
    async fn open_signin(
        &self,
        id: &[u8; 32],
        signin: &SignIn,
        per_browser: usize,
        total: usize,
        now: i64,
    ) -> Result<SignInAdmission> {
        todo!()
    }

    async fn put_signin(&self, id: &[u8; 32], signin: &SignIn) -> Result<()> {
        todo!()
    }

    async fn signin(&self, id: &[u8; 32]) -> Result<Option<SignIn>> {
        todo!()
    }

    async fn signin_versioned(&self, id: &[u8; 32]) -> Result<Option<Versioned<SignIn>>> {
        todo!()
    }

    async fn replace_signin(&self, id: &[u8; 32], old: &Versioned<SignIn>, new: &SignIn) -> Result<bool> {
        todo!()
    }

    async fn delete_signin(&self, id: &[u8; 32]) -> Result<()> {
        todo!()
    }

    async fn rebind_signins(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<()> {
        todo!()
    }

    async fn signin_count(&self) -> usize {
        todo!()
    }

    async fn put_session(&self, id: &[u8; 32], session: &Session) -> Result<()> {
        todo!()
    }

    async fn session(&self, id: &[u8; 32]) -> Result<Option<Session>> {
        todo!()
    }

    async fn delete_session(&self, id: &[u8; 32]) -> Result<()> {
        todo!()
    }

    async fn put_code(&self, id: &[u8; 32], code: &AuthCode) -> Result<()> {
        todo!()
    }

    async fn use_code(
        &self,
        id: &[u8; 32],
        grant: &Grant,
        refresh: Option<(&[u8; 32], &RefreshToken)>,
    ) -> Result<CodeUse> {
        todo!()
    }

    async fn code(&self, id: &[u8; 32]) -> Result<Option<AuthCode>> {
        todo!()
    }

    async fn grant(&self, id: &Uuid) -> Result<Option<Grant>> {
        todo!()
    }

    async fn revoke_grant(&self, id: &Uuid) -> Result<()> {
        todo!()
    }

    async fn refresh_token(&self, id: &[u8; 32]) -> Result<Option<RefreshToken>> {
        todo!()
    }

    async fn rotate_refresh(&self, old: &[u8; 32], new: &[u8; 32], rules: &RefreshRules) -> Result<RefreshUse> {
        todo!()
    }

    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<()> {
        todo!()
    }

    async fn jti_revoked(&self, jti: &str) -> Result<bool> {
        todo!()
    }
}
