//! Authentication strengths (DESIGN §10): Entra's built-in `authenticationStrengthPolicy`
//! objects with Entra's ids, a tenant's custom ones, and which method combinations a
//! sign-in proved. The grant control `authenticationStrength` names one by id; `evaluate`
//! is satisfied when the sign-in's methods cover one of its allowed combinations.
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// One strength as Graph shows it (and as a tenant stores its custom ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationStrength {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// `builtIn` or `custom`.
    pub policy_type: String,
    /// What a sign-in satisfying it proves (Graph `requirementsSatisfied`).
    pub requirements_satisfied: String,
    /// Graph `authenticationMethodModes`, one combination per entry (`a,b` = a and b).
    pub allowed_combinations: Vec<String>,
    pub created_date_time: String,
    pub modified_date_time: String,
}

/// Graph's `authenticationMethodModes`. gatehouse proves `password`, `email` (a guest's
/// one-time passcode), `federatedSingleFactor` / `federatedMultiFactor` (a home sign-in),
/// `softwareOath` (TOTP) and `fido2` (a passkey); the others are Entra's and can be named in
/// a custom strength, but no sign-in here proves them.
pub const METHOD_MODES: [&str; 16] = [
    "password",
    "voice",
    "hardwareOath",
    "softwareOath",
    "sms",
    "fido2",
    "windowsHelloForBusiness",
    "microsoftAuthenticatorPush",
    "deviceBasedPush",
    "temporaryAccessPassOneTime",
    "temporaryAccessPassMultiUse",
    "email",
    "x509CertificateSingleFactor",
    "x509CertificateMultiFactor",
    "federatedSingleFactor",
    "federatedMultiFactor",
];

/// Modes that prove one factor only: a combination of these alone is not a strength.
const SINGLE_FACTOR: [&str; 7] =
    ["password", "voice", "sms", "email", "x509CertificateSingleFactor", "federatedSingleFactor", "hardwareOath"];

/// The second-factor methods a user can hold here, by mode.
pub const TOTP: &str = "softwareOath";
pub const PASSKEY: &str = "fido2";

/// Entra allows at most 15 custom strengths per tenant.
pub const MAX_CUSTOM: usize = 15;

/// When Entra's built-in strengths were defined (their Graph timestamps).
const BUILT_IN_AT: &str = "2021-12-01T00:00:00Z";

fn built(id: &str, name: &str, description: &str, combinations: &[&str]) -> AuthenticationStrength {
    AuthenticationStrength {
        id: id.into(),
        display_name: name.into(),
        description: description.into(),
        policy_type: "builtIn".into(),
        requirements_satisfied: "mfa".into(),
        allowed_combinations: combinations.iter().map(|c| (*c).to_owned()).collect(),
        created_date_time: BUILT_IN_AT.into(),
        modified_date_time: BUILT_IN_AT.into(),
    }
}

pub const MFA_ID: &str = "00000000-0000-0000-0000-000000000002";
pub const PASSWORDLESS_ID: &str = "00000000-0000-0000-0000-000000000003";
pub const PHISHING_RESISTANT_ID: &str = "00000000-0000-0000-0000-000000000004";

/// Multifactor authentication, Passwordless MFA and Phishing-resistant MFA, in that order.
pub static BUILT_IN: LazyLock<[AuthenticationStrength; 3]> = LazyLock::new(|| {
    [
        built(
            MFA_ID,
            "Multifactor authentication",
            "Combinations of methods that satisfy strong authentication, such as a password + an authenticator app",
            &[
                "windowsHelloForBusiness",
                "fido2",
                "x509CertificateMultiFactor",
                "deviceBasedPush",
                "temporaryAccessPassOneTime",
                "temporaryAccessPassMultiUse",
                "password,microsoftAuthenticatorPush",
                "password,softwareOath",
                "password,hardwareOath",
                "password,sms",
                "password,voice",
                "federatedMultiFactor",
                "federatedSingleFactor,microsoftAuthenticatorPush",
                "federatedSingleFactor,softwareOath",
                "federatedSingleFactor,hardwareOath",
                "federatedSingleFactor,sms",
                "federatedSingleFactor,voice",
            ],
        ),
        built(
            PASSWORDLESS_ID,
            "Passwordless MFA",
            "Passwordless methods that satisfy strong authentication, such as a passkey",
            &["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush"],
        ),
        built(
            PHISHING_RESISTANT_ID,
            "Phishing-resistant MFA",
            "Phishing-resistant, passwordless methods for the strongest authentication, such as a FIDO2 security key or passkey",
            &["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
        ),
    ]
});

/// The built-in strength with this id.
pub fn built_in(id: &str) -> Option<&'static AuthenticationStrength> {
    BUILT_IN.iter().find(|s| s.id.eq_ignore_ascii_case(id))
}

/// The strength with this id: built in, or one of the tenant's custom ones.
pub fn find<'a>(id: &str, custom: &'a [AuthenticationStrength]) -> Option<&'a AuthenticationStrength> {
    BUILT_IN.iter().chain(custom).find(|s| s.id.eq_ignore_ascii_case(id))
}

impl AuthenticationStrength {
    /// The first allowed combination the proven `modes` cover, if any.
    pub fn satisfied_by(&self, modes: &[String]) -> Option<&str> {
        self.allowed_combinations.iter().map(String::as_str).find(|c| combination_met(c, modes, None))
    }

    /// Whether adding the second-factor `method` (a mode) to `modes` would satisfy it.
    pub fn satisfiable_with(&self, modes: &[String], method: &str) -> bool {
        self.allowed_combinations.iter().any(|c| combination_met(c, modes, Some(method)))
    }

    /// Whether an interactive second factor held here (TOTP or a passkey) could satisfy it.
    pub fn reachable(&self, modes: &[String]) -> bool {
        self.satisfiable_with(modes, TOTP) || self.satisfiable_with(modes, PASSKEY)
    }
}

fn combination_met(combination: &str, modes: &[String], extra: Option<&str>) -> bool {
    combination.split(',').map(str::trim).all(|m| extra == Some(m) || modes.iter().any(|p| p == m))
}

/// Checks the combinations of a custom strength: known modes, one or two per combination,
/// no repeats, and never a single factor alone (a strength is multifactor). Returns them
/// normalised (no spaces).
pub fn validate_combinations(combinations: &[String]) -> Result<Vec<String>, String> {
    if combinations.is_empty() {
        return Err("allowedCombinations must name at least one combination".into());
    }
    let mut out: Vec<String> = Vec::new();
    for c in combinations {
        let modes: Vec<&str> = c.split(',').map(str::trim).collect();
        if let Some(m) = modes.iter().find(|m| !METHOD_MODES.contains(m)) {
            return Err(format!("allowedCombinations: {m:?} is not an authentication method mode"));
        }
        if modes.len() > 2 || (modes.len() == 2 && modes[0] == modes[1]) {
            return Err(format!("allowedCombinations: {c:?} must be one method or two different ones"));
        }
        if modes.iter().all(|m| SINGLE_FACTOR.contains(m)) && modes.len() == 1 {
            return Err(format!("allowedCombinations: {c:?} is a single factor, not a strength"));
        }
        let normal = modes.join(",");
        if out.contains(&normal) {
            return Err(format!("allowedCombinations: {c:?} is listed twice"));
        }
        out.push(normal);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(m: &[&str]) -> Vec<String> {
        m.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn built_in_strengths_nest_from_mfa_to_phishing_resistant() {
        let [mfa, passwordless, phishing] = &*BUILT_IN;
        assert!(phishing.allowed_combinations.iter().all(|c| passwordless.allowed_combinations.contains(c)));
        assert!(passwordless.allowed_combinations.iter().all(|c| mfa.allowed_combinations.contains(c)));
        assert!(phishing.allowed_combinations.iter().any(|c| c == "fido2"));
        assert!(!phishing.allowed_combinations.iter().any(|c| c == "password,softwareOath"));
        assert_eq!(built_in(PHISHING_RESISTANT_ID).map(|s| s.display_name.as_str()), Some("Phishing-resistant MFA"));
        assert!(built_in("00000000-0000-0000-0000-000000000001").is_none());
    }

    #[test]
    fn a_sign_in_satisfies_a_strength_by_covering_one_combination() {
        let mfa = built_in(MFA_ID).unwrap();
        let phishing = built_in(PHISHING_RESISTANT_ID).unwrap();
        let totp = modes(&["password", "softwareOath"]);
        let passkey = modes(&["password", "fido2"]);
        let passwordless = modes(&["fido2"]);
        let guest_totp = modes(&["federatedSingleFactor", "softwareOath"]);
        assert_eq!(mfa.satisfied_by(&totp), Some("password,softwareOath"));
        assert_eq!(mfa.satisfied_by(&guest_totp), Some("federatedSingleFactor,softwareOath"));
        assert_eq!(mfa.satisfied_by(&passkey), Some("fido2"));
        assert_eq!(phishing.satisfied_by(&totp), None, "TOTP is not phishing resistant");
        assert_eq!(phishing.satisfied_by(&passwordless), Some("fido2"));
        assert_eq!(mfa.satisfied_by(&modes(&["password"])), None);
        assert!(phishing.satisfiable_with(&totp, PASSKEY) && !phishing.satisfiable_with(&totp, TOTP));
        assert!(mfa.reachable(&modes(&["email"])), "a passkey satisfies MFA alone");
    }

    #[test]
    fn custom_combinations_are_checked() {
        let ok = validate_combinations(&modes(&["password, softwareOath", "fido2"])).unwrap();
        assert_eq!(ok, modes(&["password,softwareOath", "fido2"]));
        for (bad, why) in [
            (vec![], "at least one"),
            (vec!["password,carrierPigeon"], "not an authentication method mode"),
            (vec!["password"], "single factor"),
            (vec!["fido2,fido2"], "two different"),
            (vec!["password,sms,voice"], "two different"),
            (vec!["fido2", "fido2"], "listed twice"),
        ] {
            let err = validate_combinations(&modes(&bad)).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
