//! Conditional access: Validation (on write; evaluation never fails).
use super::*;

/// Checks a policy for combinations gatehouse (or Graph) rejects. All problems are reported,
/// joined by "; ". Unknown `builtInControls` values are already rejected when parsing.
pub fn validate(policy: &Policy) -> Result<(), String> {
    let mut errors: Vec<String> = Vec::new();
    let c = &policy.conditions;
    if policy.display_name.trim().is_empty() {
        errors.push("displayName is required".into());
    }

    let users = &c.users;
    if users.include_users.is_empty() && users.include_groups.is_empty() {
        errors.push("conditions.users.includeUsers is empty".into());
    }
    for (name, ids) in [("includeGroups", &users.include_groups), ("excludeGroups", &users.exclude_groups)] {
        for v in ids.iter().filter(|v| uuid::Uuid::parse_str(v).is_err()) {
            errors.push(format!("conditions.users.{name}: {v:?} is not a group object id"));
        }
    }
    for v in users.include_users.iter().chain(&users.exclude_users) {
        let keyword = [ALL, NONE, GUESTS].iter().any(|k| v.eq_ignore_ascii_case(k));
        if !keyword && uuid::Uuid::parse_str(v).is_err() {
            errors.push(format!("conditions.users: {v:?} is neither All, None, {GUESTS} nor a user object id"));
        }
    }
    keyword_rules(
        "conditions.users.includeUsers",
        "conditions.users.excludeUsers",
        &users.include_users,
        &users.exclude_users,
        &mut errors,
    );

    let apps = &c.applications;
    if apps.include_applications.is_empty() {
        errors.push("conditions.applications.includeApplications is empty".into());
    }
    if apps.include_applications.iter().chain(&apps.exclude_applications).any(|v| v.trim().is_empty()) {
        errors.push("conditions.applications: empty application id".into());
    }
    keyword_rules(
        "conditions.applications.includeApplications",
        "conditions.applications.excludeApplications",
        &apps.include_applications,
        &apps.exclude_applications,
        &mut errors,
    );

    if let Some(l) = &c.locations {
        if l.include_locations.is_empty() && !l.exclude_locations.is_empty() {
            errors.push("conditions.locations.includeLocations is required with excludeLocations".into());
        }
        if l.exclude_locations.iter().any(|v| v.eq_ignore_ascii_case(ALL)) {
            errors.push("conditions.locations.excludeLocations cannot contain All".into());
        }
        if l.include_locations.iter().chain(&l.exclude_locations).any(|v| v.trim().is_empty()) {
            errors.push("conditions.locations: empty location id".into());
        }
    }

    if let Some(d) = &c.devices {
        for v in d.include_devices.iter().filter(|v| !v.eq_ignore_ascii_case(ALL)) {
            errors.push(format!("conditions.devices.includeDevices: {v:?} is not supported (only All)"));
        }
        for v in
            d.exclude_devices.iter().filter(|v| ![COMPLIANT, DOMAIN_JOINED].iter().any(|k| v.eq_ignore_ascii_case(k)))
        {
            errors.push(format!("conditions.devices.excludeDevices: {v:?} is not supported (Compliant, DomainJoined)"));
        }
        if let Some(filter) = &d.device_filter {
            if !d.include_devices.is_empty() || !d.exclude_devices.is_empty() {
                errors.push(
                    "conditions.devices: deviceFilter cannot be combined with includeDevices/excludeDevices".into(),
                );
            }
            if let Err(e) = parse_rule(&filter.rule) {
                errors.push(format!("conditions.devices.deviceFilter.rule: {e}"));
            }
        }
    }

    for (name, levels) in [("signInRiskLevels", &c.sign_in_risk_levels), ("userRiskLevels", &c.user_risk_levels)] {
        if levels.iter().any(|l| matches!(l, RiskLevel::Hidden | RiskLevel::UnknownFutureValue)) {
            errors.push(format!("conditions.{name}: only none, low, medium and high can be configured"));
        }
    }

    let grants = policy.grant_controls.as_ref().map(|g| g.built_in_controls.as_slice()).unwrap_or_default();
    let strength = policy.grant_controls.as_ref().is_some_and(|g| g.authentication_strength.is_some());
    let terms = policy.grant_controls.as_ref().map(|g| g.terms_of_use.as_slice()).unwrap_or_default();
    for v in terms.iter().filter(|v| uuid::Uuid::parse_str(v).is_err()) {
        errors.push(format!("grantControls.termsOfUse: {v:?} is not an agreement id"));
    }
    let strength = strength || !terms.is_empty();
    if policy.grant_controls.is_some() && grants.is_empty() && !strength {
        errors.push("grantControls.builtInControls is empty".into());
    }
    if grants.contains(&Control::Block) && grants.len() > 1 {
        errors.push("grantControls: block cannot be combined with other controls".into());
    }
    let frequency =
        policy.session_controls.as_ref().and_then(|s| s.sign_in_frequency.as_ref()).filter(|f| f.is_enabled);
    if let Some(f) = frequency.filter(|f| f.frequency_interval == FrequencyInterval::TimeBased) {
        let range = match f.r#type {
            FrequencyType::Hours => 1..=23,
            FrequencyType::Days => 1..=365,
        };
        if !range.contains(&f.value) {
            errors.push(format!(
                "sessionControls.signInFrequency.value must be {}..={} {}",
                range.start(),
                range.end(),
                if f.r#type == FrequencyType::Hours { "hours" } else { "days" }
            ));
        }
    }
    let persistent = policy.session_controls.as_ref().and_then(|s| s.persistent_browser.as_ref());
    // Entra's rule: the SSO cookie is one for every application, so only a policy for all of them may set it.
    if persistent.is_some() && !apps.include_applications.iter().any(|a| a.eq_ignore_ascii_case(ALL)) {
        errors.push("sessionControls.persistentBrowser needs conditions.applications.includeApplications All".into());
    }
    if grants.is_empty() && !strength && frequency.is_none() && persistent.is_none() {
        errors.push(
            "a policy needs grantControls or an enabled session control (signInFrequency, persistentBrowser)".into(),
        );
    }

    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// `None` combined with other values is contradictory; excluding `All` excludes everyone.
pub(super) fn keyword_rules(
    include_name: &str,
    exclude_name: &str,
    include: &[String],
    exclude: &[String],
    errors: &mut Vec<String>,
) {
    if include.len() > 1 && include.iter().any(|v| v.eq_ignore_ascii_case(NONE)) {
        errors.push(format!("{include_name}: None cannot be combined with other values"));
    }
    if exclude.iter().any(|v| v.eq_ignore_ascii_case(ALL)) {
        errors.push(format!("{exclude_name} cannot contain All"));
    }
}

/// Checks that every named location id a policy references exists: a dangling id never
/// matches, which would silently narrow an include or widen an exclude.
pub fn validate_references(
    policy: &Policy,
    locations: &[NamedLocation],
    strengths: &[AuthenticationStrength],
) -> Result<(), String> {
    if let Some(r) = policy.grant_controls.as_ref().and_then(|g| g.authentication_strength.as_ref())
        && strength::find(&r.id, strengths).is_none()
    {
        return Err(format!("unknown authentication strength: {}", r.id));
    }
    let Some(l) = &policy.conditions.locations else { return Ok(()) };
    let missing: Vec<&str> = l
        .include_locations
        .iter()
        .chain(&l.exclude_locations)
        .map(String::as_str)
        .filter(|v| !v.eq_ignore_ascii_case(ALL) && !v.eq_ignore_ascii_case(ALL_TRUSTED))
        .filter(|v| !locations.iter().any(|n| n.id.eq_ignore_ascii_case(v)))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("unknown named location(s): {}", missing.join(", "))) }
}

/// Checks that every agreement a policy's `termsOfUse` names is one of the tenant's (`known`):
/// a dangling id could never be accepted, which would lock everyone out.
pub fn validate_terms_references(policy: &Policy, known: &[uuid::Uuid]) -> Result<(), String> {
    let terms = policy.grant_controls.as_ref().map(|g| g.terms_of_use.as_slice()).unwrap_or_default();
    let missing: Vec<&str> = terms
        .iter()
        .map(String::as_str)
        .filter(|v| !uuid::Uuid::parse_str(v).is_ok_and(|id| known.contains(&id)))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("unknown agreement(s) in termsOfUse: {}", missing.join(", "))) }
}

/// Checks that every group a policy names is one of the tenant's (`known`): a dangling id
/// never matches, which would silently narrow an include or widen an exclude.
pub fn validate_group_references(policy: &Policy, known: &[uuid::Uuid]) -> Result<(), String> {
    let u = &policy.conditions.users;
    let missing: Vec<&str> = u
        .include_groups
        .iter()
        .chain(&u.exclude_groups)
        .map(String::as_str)
        .filter(|v| !uuid::Uuid::parse_str(v).is_ok_and(|id| known.contains(&id)))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("unknown group(s): {}", missing.join(", "))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testkit::*;

    #[test]
    fn validation() {
        use Control::{Block, Mfa};
        let freq = |value: u32, r#type: FrequencyType| {
            Some(SessionControls {
                sign_in_frequency: Some(SignInFrequency::time_based(value, r#type)),
                persistent_browser: None,
            })
        };
        let valid = vec![
            ("base", base("p1")),
            ("ids and keywords", by_users(&[GUESTS, ALICE], &[PARTNER])),
            ("None alone (draft)", by_users(&[NONE], &[])),
            ("block alone", pol(|p| p.grant_controls = grant(GrantOperator::And, &[Block]))),
            (
                "device filter",
                pol(|p| {
                    p.conditions.devices = devs(&[], &[], Some((FilterMode::Include, "device.isManaged -eq True")))
                }),
            ),
            ("device states", by_devs(&[ALL], &[COMPLIANT, DOMAIN_JOINED], None)),
            (
                "session only",
                pol(|p| {
                    p.grant_controls = None;
                    p.session_controls = freq(23, FrequencyType::Hours);
                }),
            ),
            ("365 days", pol(|p| p.session_controls = freq(365, FrequencyType::Days))),
            ("groups only", by_groups(&[], &[], &[AUDITORS], &[])),
            ("users and groups", by_groups(&[GUESTS], &[PARTNER], &[AUDITORS], &[STAFF])),
            ("exclude group only beside All", by_groups(&[ALL], &[], &[], &[AUDITORS])),
        ];
        for (name, p) in valid {
            assert_eq!(validate(&p), Ok(()), "case: {name}");
        }

        let invalid = vec![
            ("no display name", pol(|p| p.display_name = " ".into()), "displayName is required"),
            ("empty includeUsers", by_users(&[], &[]), "includeUsers is empty"),
            ("empty includeApplications", by_apps(&[], &[]), "includeApplications is empty"),
            (
                "both empty",
                pol(|p| {
                    p.conditions.users = users(&[], &[]);
                    p.conditions.applications = apps(&[], &[]);
                }),
                "includeUsers is empty; conditions.applications.includeApplications is empty",
            ),
            ("user that is not an id", by_users(&["sally@contoso.example"], &[]), "neither All"),
            (
                "group that is not an id",
                by_groups(&[], &[], &["Partner auditors"], &[]),
                "includeGroups: \"Partner auditors\" is not a group object id",
            ),
            (
                "excluded group keyword",
                by_groups(&[ALL], &[], &[], &[ALL]),
                "excludeGroups: \"All\" is not a group object id",
            ),
            ("exclude groups only", by_groups(&[], &[], &[], &[AUDITORS]), "includeUsers is empty"),
            ("None with others", by_users(&[NONE, ALICE], &[]), "None cannot be combined"),
            ("exclude All users", by_users(&[ALL], &[ALL]), "excludeUsers cannot contain All"),
            ("exclude All apps", by_apps(&[ALL], &[ALL]), "excludeApplications cannot contain All"),
            ("empty app id", by_apps(&[""], &[]), "empty application id"),
            ("exclude-only locations", by_locs(&[], &[BRANCH]), "includeLocations is required"),
            ("exclude All locations", by_locs(&[ALL], &[ALL]), "excludeLocations cannot contain All"),
            ("include device state", by_devs(&[COMPLIANT], &[], None), "includeDevices"),
            ("exclude device state", by_devs(&[ALL], &["Rooted"], None), "excludeDevices"),
            (
                "bad device rule",
                pol(|p| {
                    p.conditions.devices = devs(&[], &[], Some((FilterMode::Include, "device.isCompliant -eq Yes")))
                }),
                "deviceFilter.rule: device.isCompliant compares with True or False",
            ),
            (
                "filter with states",
                pol(|p| {
                    p.conditions.devices = devs(&[ALL], &[], Some((FilterMode::Include, "device.isManaged -eq True")))
                }),
                "cannot be combined",
            ),
            ("hidden risk", pol(|p| p.conditions.sign_in_risk_levels = vec![RiskLevel::Hidden]), "signInRiskLevels"),
            (
                "future risk",
                pol(|p| p.conditions.user_risk_levels = vec![RiskLevel::UnknownFutureValue]),
                "userRiskLevels",
            ),
            ("empty grant", pol(|p| p.grant_controls = grant(GrantOperator::Or, &[])), "builtInControls is empty"),
            (
                "block with mfa",
                pol(|p| p.grant_controls = grant(GrantOperator::Or, &[Block, Mfa])),
                "block cannot be combined",
            ),
            ("no controls at all", pol(|p| p.grant_controls = None), "needs grantControls or"),
            ("0 hours", pol(|p| p.session_controls = freq(0, FrequencyType::Hours)), "must be 1..=23 hours"),
            ("24 hours", pol(|p| p.session_controls = freq(24, FrequencyType::Hours)), "must be 1..=23 hours"),
            ("366 days", pol(|p| p.session_controls = freq(366, FrequencyType::Days)), "must be 1..=365 days"),
        ];
        for (name, p, expected) in invalid {
            let err = validate(&p).unwrap_err();
            assert!(err.contains(expected), "case {name}: {err}");
        }

        let dangling = by_locs(&[BRANCH, "gone"], &[ALL_TRUSTED, "lost"]);
        assert_eq!(
            validate_references(&dangling, &locations(), &[]),
            Err("unknown named location(s): gone, lost".into())
        );
        assert_eq!(validate_references(&base("p1"), &[], &[]), Ok(()));
        let strong = |id: &str| {
            pol(|p| {
                p.grant_controls = Some(GrantControls {
                    operator: GrantOperator::And,
                    built_in_controls: vec![],
                    authentication_strength: Some(StrengthRef { id: id.into() }),
                    terms_of_use: vec![],
                })
            })
        };
        assert_eq!(validate_references(&strong(strength::PHISHING_RESISTANT_ID), &[], &[]), Ok(()));
        let known = [uuid::Uuid::parse_str(AUDITORS).unwrap()];
        let upper = AUDITORS.to_ascii_uppercase();
        assert_eq!(validate_group_references(&by_groups(&[], &[], &[&upper], &[]), &known), Ok(()));
        assert_eq!(validate_group_references(&base("p1"), &[]), Ok(()));
        assert_eq!(
            validate_group_references(&by_groups(&[ALL], &[], &[AUDITORS], &[STAFF]), &known),
            Err(format!("unknown group(s): {STAFF}"))
        );
        assert_eq!(validate_references(&strong("gone"), &[], &[]), Err("unknown authentication strength: gone".into()));
    }
}
