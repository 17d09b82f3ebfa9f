//! Conditional access: test fixtures shared by the policy modules' unit tests: a member
//! and a guest, two named locations, and builders for policies and their conditions.
use std::net::IpAddr;

use super::*;

pub(crate) const ALICE: &str = "a11ce000-0000-4000-8000-000000000001"; // member
pub(crate) const SALLY: &str = "5a11e000-0000-4000-8000-000000000002"; // guest
pub(crate) const PARTNER: &str = "9a27e000-0000-4000-8000-000000000003"; // excluded guest
pub(crate) const PARTNER_NET: &str = "c0ffee00-0000-4000-8000-00000000000a";
pub(crate) const BRANCH: &str = "c0ffee00-0000-4000-8000-00000000000b";
pub(crate) const AUDITORS: &str = "6a0c0000-0000-4000-8000-0000000000a1"; // group
pub(crate) const STAFF: &str = "6a0c0000-0000-4000-8000-0000000000a2"; // group

pub(crate) fn locations() -> Vec<NamedLocation> {
    let range = |c: &str| IpRange { cidr_address: c.parse().unwrap() };
    vec![
        NamedLocation {
            id: PARTNER_NET.into(),
            display_name: "Partner network".into(),
            ip_ranges: vec![range("203.0.113.0/24"), range("2001:db8:1::/48")],
            is_trusted: true,
        },
        NamedLocation {
            id: BRANCH.into(),
            display_name: "Branch".into(),
            ip_ranges: vec![range("198.51.100.0/24"), range("2001:db8:2::/48")],
            is_trusted: false,
        },
    ]
}

pub(crate) fn member() -> SignInContext {
    SignInContext { user_id: ALICE.into(), app_id: "foo".into(), ..Default::default() }
}

pub(crate) fn guest() -> SignInContext {
    SignInContext { user_id: SALLY.into(), is_guest: true, app_id: "foo".into(), ..Default::default() }
}

pub(crate) fn with(ctx: SignInContext, f: impl FnOnce(&mut SignInContext)) -> SignInContext {
    let mut ctx = ctx;
    f(&mut ctx);
    ctx
}

pub(crate) fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Enabled, All users, All apps, grant AND [mfa]: applies ⇒ Failure for a sign-in without MFA.
pub(crate) fn base(id: &str) -> Policy {
    Policy {
        id: id.into(),
        display_name: format!("Policy {id}"),
        state: PolicyState::Enabled,
        conditions: Conditions {
            users: users(&[ALL], &[]),
            applications: ApplicationsCondition { include_applications: strs(&[ALL]), exclude_applications: vec![] },
            ..Default::default()
        },
        grant_controls: Some(GrantControls {
            operator: GrantOperator::And,
            built_in_controls: vec![Control::Mfa],
            authentication_strength: None,
            terms_of_use: vec![],
        }),
        session_controls: None,
    }
}

pub(crate) fn pol(f: impl FnOnce(&mut Policy)) -> Policy {
    let mut p = base("p1");
    f(&mut p);
    p
}

pub(crate) fn grant(op: GrantOperator, controls: &[Control]) -> Option<GrantControls> {
    Some(GrantControls {
        operator: op,
        built_in_controls: controls.to_vec(),
        authentication_strength: None,
        terms_of_use: vec![],
    })
}

pub(crate) fn users(include: &[&str], exclude: &[&str]) -> UsersCondition {
    UsersCondition { include_users: strs(include), exclude_users: strs(exclude), ..Default::default() }
}

/// A users condition of users and groups (include users, exclude users, include groups, exclude groups).
pub(crate) fn users_groups(
    include: &[&str],
    exclude: &[&str],
    include_groups: &[&str],
    exclude_groups: &[&str],
) -> UsersCondition {
    UsersCondition {
        include_users: strs(include),
        exclude_users: strs(exclude),
        include_groups: strs(include_groups),
        exclude_groups: strs(exclude_groups),
    }
}

pub(crate) fn by_groups(
    include: &[&str],
    exclude: &[&str],
    include_groups: &[&str],
    exclude_groups: &[&str],
) -> Policy {
    pol(|p| p.conditions.users = users_groups(include, exclude, include_groups, exclude_groups))
}

/// `ctx` as a member of `groups`.
pub(crate) fn in_groups(ctx: SignInContext, groups: &[&str]) -> SignInContext {
    with(ctx, |c| c.groups = strs(groups))
}

pub(crate) fn apps(include: &[&str], exclude: &[&str]) -> ApplicationsCondition {
    ApplicationsCondition { include_applications: strs(include), exclude_applications: strs(exclude) }
}

pub(crate) fn locs(include: &[&str], exclude: &[&str]) -> Option<LocationsCondition> {
    Some(LocationsCondition { include_locations: strs(include), exclude_locations: strs(exclude) })
}

pub(crate) fn devs(include: &[&str], exclude: &[&str], filter: Option<(FilterMode, &str)>) -> Option<DevicesCondition> {
    Some(DevicesCondition {
        include_devices: strs(include),
        exclude_devices: strs(exclude),
        device_filter: filter.map(|(mode, rule)| DeviceFilter { mode, rule: rule.into() }),
    })
}

pub(crate) fn by_users(include: &[&str], exclude: &[&str]) -> Policy {
    pol(|p| p.conditions.users = users(include, exclude))
}

pub(crate) fn by_apps(include: &[&str], exclude: &[&str]) -> Policy {
    pol(|p| p.conditions.applications = apps(include, exclude))
}

pub(crate) fn by_locs(include: &[&str], exclude: &[&str]) -> Policy {
    pol(|p| p.conditions.locations = locs(include, exclude))
}

pub(crate) fn by_devs(include: &[&str], exclude: &[&str], filter: Option<(FilterMode, &str)>) -> Policy {
    pol(|p| p.conditions.devices = devs(include, exclude, filter))
}

pub(crate) fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

pub(crate) fn eval(ctx: &SignInContext, policies: &[Policy]) -> Decision {
    evaluate(ctx, policies, &locations(), &[])
}
