//! Plain records: what the store keeps and every layer above passes around. No I/O.
pub mod directory;
pub mod guests;
pub mod ids;
pub mod mail;
pub mod oidc;
pub mod outbox;
pub mod signin_log;

pub use directory::*;
pub use guests::*;
pub use ids::*;
pub use mail::*;
pub use oidc::*;
pub use outbox::*;
pub use signin_log::*;
