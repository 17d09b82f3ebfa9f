//! The tenant's own pages for signed-in people: the admin page and the invite page.
pub mod admin;
pub mod invite;
