//! Request parameters as the protocol sees them: each name at most once (RFC 6749 §3.1),
//! empty values treated as absent.
use std::collections::HashMap;

/// Why parameters could not be read; each layer words it for its own callers (an OAuth
/// error on the protocol, an error page in the browser).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body must be application/x-www-form-urlencoded")]
    NotForm,
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("request parameters too large")]
    TooLarge,
    #[error("parameter {0} is repeated")]
    Repeated(String),
    #[error("{0} is required")]
    Missing(String),
}

#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

pub const MAX_PARAMS_BYTES: usize = 16 * 1024;

impl Params {
    pub fn parse(encoded: &str) -> Result<Self, FormError> {
        if encoded.len() > MAX_PARAMS_BYTES {
            return Err(FormError::TooLarge);
        }
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if v.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(FormError::Repeated(k.to_string()));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &str) -> Result<&str, FormError> {
        self.get(name).ok_or_else(|| FormError::Missing(name.to_string()))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name).map(|s| s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_rejected() {
        assert!(Params::parse("a=1&a=2").is_err());
        let p = Params::parse("a=1&b=&c=x+y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.list("c"), vec!["x", "y"]);
    }
}
