//! Directory use cases above the records: inviting guests (and resetting redemption),
//! resetting a user's MFA methods.
pub mod invite;
pub mod users;
