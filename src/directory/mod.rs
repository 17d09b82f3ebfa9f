//! Directory use cases above the records: inviting guests (and resetting redemption).
pub mod invite;
