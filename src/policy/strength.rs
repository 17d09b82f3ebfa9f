//! Authentication strengths (DESIGN §10): Entra's built-in `authenticationStrengthPolicy`
//! objects, with Entra's ids and the method combinations each allows. Read-only data here;
//! the grant control `authenticationStrength` is not yet evaluated, so policies naming it are
//! still refused (`wire::GrantControlsIn`) rather than silently meaning less.
use serde::Serialize;

/// One strength as Graph shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationStrength {
    pub id: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    /// `builtIn` (these) or `custom`.
    pub policy_type: &'static str,
    /// What a sign-in satisfying it proves (Graph `requirementsSatisfied`).
    pub requirements_satisfied: &'static str,
    /// Graph `authenticationMethodModes`, one combination per entry (`a,b` = a and b).
    pub allowed_combinations: &'static [&'static str],
    pub created_date_time: &'static str,
    pub modified_date_time: &'static str,
}

/// When Entra's built-in strengths were defined (their Graph timestamps).
const BUILT_IN_AT: &str = "2021-12-01T00:00:00Z";

/// Multifactor authentication, Passwordless MFA and Phishing-resistant MFA, in that order.
pub const BUILT_IN: [AuthenticationStrength; 3] = [
    AuthenticationStrength {
        id: "00000000-0000-0000-0000-000000000002",
        display_name: "Multifactor authentication",
        description: "Combinations of methods that satisfy strong authentication, such as a password + an authenticator app",
        policy_type: "builtIn",
        requirements_satisfied: "mfa",
        allowed_combinations: &[
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
        created_date_time: BUILT_IN_AT,
        modified_date_time: BUILT_IN_AT,
    },
    AuthenticationStrength {
        id: "00000000-0000-0000-0000-000000000003",
        display_name: "Passwordless MFA",
        description: "Passwordless methods that satisfy strong authentication, such as a passkey",
        policy_type: "builtIn",
        requirements_satisfied: "mfa",
        allowed_combinations: &["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush"],
        created_date_time: BUILT_IN_AT,
        modified_date_time: BUILT_IN_AT,
    },
    AuthenticationStrength {
        id: "00000000-0000-0000-0000-000000000004",
        display_name: "Phishing-resistant MFA",
        description: "Phishing-resistant, passwordless methods for the strongest authentication, such as a FIDO2 security key or passkey",
        policy_type: "builtIn",
        requirements_satisfied: "mfa",
        allowed_combinations: &["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
        created_date_time: BUILT_IN_AT,
        modified_date_time: BUILT_IN_AT,
    },
];

/// The built-in strength with this id.
pub fn built_in(id: &str) -> Option<&'static AuthenticationStrength> {
    BUILT_IN.iter().find(|s| s.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_strengths_nest_from_mfa_to_phishing_resistant() {
        let [mfa, passwordless, phishing] = &BUILT_IN;
        assert!(phishing.allowed_combinations.iter().all(|c| passwordless.allowed_combinations.contains(c)));
        assert!(passwordless.allowed_combinations.iter().all(|c| mfa.allowed_combinations.contains(c)));
        assert!(phishing.allowed_combinations.contains(&"fido2"));
        assert!(!phishing.allowed_combinations.contains(&"password,softwareOath"));
        assert_eq!(
            built_in("00000000-0000-0000-0000-000000000004").map(|s| s.display_name),
            Some(phishing.display_name)
        );
        assert!(built_in("00000000-0000-0000-0000-000000000001").is_none());
    }
}
