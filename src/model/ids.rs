//! Ids that must not be swapped: a tenant's id is not a user's, and neither is an
//! application's client id. Each serializes exactly as the value it wraps, so stored records
//! and tokens read the same as before the types existed.
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::parse_str(s).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A tenant (directory).
    TenantId
);
uuid_id!(
    /// A user (member or guest) of one tenant.
    UserId
);

/// An application's client id (Graph `appId`): free text chosen at registration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppId(pub String);

impl AppId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for AppId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AppId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for AppId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl PartialEq<str> for AppId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for AppId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<AppId> for String {
    fn eq(&self, other: &AppId) -> bool {
        self == &other.0
    }
}

impl From<AppId> for String {
    fn from(id: AppId) -> String {
        id.0
    }
}

impl PartialEq<&str> for AppId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// An email address as the one parser ([`crate::model::normalize_email`]) accepted it: a
/// bare RFC 5321 addr-spec, lowercased. Only that parser makes one from outside input.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses an address from outside (a form, a Graph body): `None` when it is not a bare
    /// address.
    pub fn parse(s: &str) -> Option<Self> {
        super::normalize_email(s).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The domain part, after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl std::ops::Deref for Email {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_what_they_wrap() {
        let raw = Uuid::new_v4();
        assert_eq!(serde_json::to_string(&TenantId(raw)).unwrap(), serde_json::to_string(&raw).unwrap());
        let back: UserId = serde_json::from_str(&serde_json::to_string(&raw).unwrap()).unwrap();
        assert_eq!(back.0, raw);
        assert_eq!(serde_json::to_string(&AppId::from("test-rp")).unwrap(), "\"test-rp\"");
        assert_eq!(Email::parse(" Pat@Litware.Example ").unwrap().as_str(), "pat@litware.example");
        assert!(Email::parse("Pat <pat@litware.example>").is_none());
        assert_eq!(Email::parse("a@b.example").unwrap().domain(), "b.example");
    }
}
