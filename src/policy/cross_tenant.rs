//! Cross-tenant access settings (DESIGN §13): Entra's `crossTenantAccessPolicy` default and
//! per-partner configuration, and the pure decisions on them. `inbound_decision` is the
//! resource tenant's say over a guest from a home tenant; `outbound_decision` is the home
//! tenant's say over its own user collaborating elsewhere. Both must allow.
//!
//! Inheritance is Graph's: a partner value that is null takes the default's; a default value
//! that is null is Entra's service default (everyone and every application allowed, no
//! inbound trust).
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The special user target: every user of the other tenant.
pub const ALL_USERS: &str = "AllUsers";
/// The special application target: every application.
pub const ALL_APPLICATIONS: &str = "AllApplications";

/// A tenant's cross-tenant access policy: its default and one entry per partner tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantPolicy {
    #[serde(default)]
    pub default: CrossTenantSettings,
    #[serde(default)]
    pub partners: Vec<PartnerSettings>,
}

/// Graph `crossTenantAccessPolicyConfigurationDefault` (the part gatehouse evaluates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantSettings {
    #[serde(default)]
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    #[serde(default)]
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    #[serde(default)]
    pub inbound_trust: Option<InboundTrustSettings>,
}

/// Graph `crossTenantAccessPolicyConfigurationPartner`: a null setting inherits the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerSettings {
    pub tenant_id: Uuid,
    #[serde(default)]
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    #[serde(default)]
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    #[serde(default)]
    pub inbound_trust: Option<InboundTrustSettings>,
}

/// Graph `crossTenantAccessPolicyB2BSetting`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct B2bSetting {
    #[serde(default)]
    pub users_and_groups: Option<Targets>,
    #[serde(default)]
    pub applications: Option<Targets>,
}

/// Graph `crossTenantAccessPolicyTargetConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Targets {
    pub access_type: AccessType,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccessType {
    Allowed,
    Blocked,
}

/// Graph `crossTenantAccessPolicyTarget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    pub target: String,
    pub target_type: TargetType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetType {
    User,
    Group,
    Application,
}

/// Graph `crossTenantAccessPolicyInboundTrust`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundTrustSettings {
    #[serde(default)]
    pub is_mfa_accepted: bool,
    #[serde(default)]
    pub is_compliant_device_accepted: bool,
    #[serde(default, rename = "isHybridAzureADJoinedDeviceAccepted", alias = "isHybridAzureAdJoinedDeviceAccepted")]
    pub is_hybrid_azure_ad_joined_device_accepted: bool,
}

/// Which way a setting looks: at guests coming in, or at the tenant's own users going out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Which setting decided a block: its owner (partner entry or default), direction and part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub partner: bool,
    pub direction: Direction,
    pub applications: bool,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let owner = if self.partner { "partner" } else { "default" };
        let direction = match self.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        };
        let part = if self.applications { "applications" } else { "users" };
        write!(f, "{owner} {direction} {part}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Blocked(Setting),
}

/// Who collaborates: the user at their home tenant (object id, groups) and the application
/// at the resource tenant (`None` while redeeming, before any application is used).
#[derive(Debug, Clone, Copy)]
pub struct Collaborator<'a> {
    pub user_id: Uuid,
    pub groups: &'a [Uuid],
    pub app_id: Option<&'a str>,
}

impl CrossTenantPolicy {
    pub fn partner(&self, tenant_id: Uuid) -> Option<&PartnerSettings> {
        self.partners.iter().find(|p| p.tenant_id == tenant_id)
    }

    /// The inbound trust that applies to guests from `home` (partner, else default, else none).
    pub fn trust_for(&self, home: Uuid) -> InboundTrustSettings {
        self.partner(home).and_then(|p| p.inbound_trust).or(self.default.inbound_trust).unwrap_or_default()
    }

    /// One part (users or applications) of one direction's setting, with where it came from.
    fn part(&self, other: Uuid, direction: Direction, applications: bool) -> (Option<&Targets>, Setting) {
        let partner = self.partner(other).and_then(|p| pick(side(&p.settings_view(), direction), applications));
        match partner {
            Some(t) => (Some(t), Setting { partner: true, direction, applications }),
            None => (
                pick(side(&self.default.view(), direction), applications),
                Setting { partner: false, direction, applications },
            ),
        }
    }

    fn decide(&self, other: Uuid, direction: Direction, who: &Collaborator<'_>) -> Verdict {
        let (users, setting) = self.part(other, direction, false);
        if let Some(t) = users
            && !t.admits(|target| match target.target_type {
                TargetType::User => target.target == ALL_USERS || same_id(&target.target, who.user_id),
                // The caller passes the home user's groups (their `member_of` at the home tenant).
                TargetType::Group => who.groups.iter().any(|g| same_id(&target.target, *g)),
                TargetType::Application => false,
            })
        {
            return Verdict::Blocked(setting);
        }
        let (apps, setting) = self.part(other, direction, true);
        if let Some(t) = apps {
            let admitted = match who.app_id {
                Some(app) => {
                    t.admits(|target| target.target == ALL_APPLICATIONS || target.target.eq_ignore_ascii_case(app))
                }
                // No application yet (redemption): only "no application at all" blocks.
                None => !t.blocks_all(ALL_APPLICATIONS),
            };
            if !admitted {
                return Verdict::Blocked(setting);
            }
        }
        Verdict::Allowed
    }

    /// The resource tenant's inbound settings for a guest whose home is `home`.
    pub fn inbound_decision(&self, home: Uuid, who: &Collaborator<'_>) -> Verdict {
        self.decide(home, Direction::Inbound, who)
    }

    /// The home tenant's outbound settings for its user collaborating at `resource`.
    pub fn outbound_decision(&self, resource: Uuid, who: &Collaborator<'_>) -> Verdict {
        self.decide(resource, Direction::Outbound, who)
    }

    /// Whether every user of `other` is refused in `direction` whoever they are (an invitation
    /// cannot know the user yet: a list of allowed users may still admit them).
    pub fn blocks_everyone(&self, other: Uuid, direction: Direction) -> Option<Setting> {
        for applications in [false, true] {
            let (t, setting) = self.part(other, direction, applications);
            let all = if applications { ALL_APPLICATIONS } else { ALL_USERS };
            if t.is_some_and(|t| t.blocks_all(all)) {
                return Some(setting);
            }
        }
        None
    }
}

/// The two B2B settings of a default or partner entry.
struct View<'a> {
    inbound: Option<&'a B2bSetting>,
    outbound: Option<&'a B2bSetting>,
}

impl CrossTenantSettings {
    fn view(&self) -> View<'_> {
        View { inbound: self.b2b_collaboration_inbound.as_ref(), outbound: self.b2b_collaboration_outbound.as_ref() }
    }
}

impl PartnerSettings {
    fn settings_view(&self) -> View<'_> {
        View { inbound: self.b2b_collaboration_inbound.as_ref(), outbound: self.b2b_collaboration_outbound.as_ref() }
    }
}

fn side<'a>(v: &View<'a>, direction: Direction) -> Option<&'a B2bSetting> {
    match direction {
        Direction::Inbound => v.inbound,
        Direction::Outbound => v.outbound,
    }
}

fn pick(b: Option<&B2bSetting>, applications: bool) -> Option<&Targets> {
    b.and_then(|b| if applications { b.applications.as_ref() } else { b.users_and_groups.as_ref() })
}

fn same_id(target: &str, id: Uuid) -> bool {
    Uuid::parse_str(target).is_ok_and(|t| t == id)
}

impl Targets {
    /// Allowed with targets: only those; blocked with targets: all but those.
    fn admits(&self, matches: impl Fn(&Target) -> bool) -> bool {
        let hit = self.targets.iter().any(matches);
        match self.access_type {
            AccessType::Allowed => hit,
            AccessType::Blocked => !hit,
        }
    }

    fn blocks_all(&self, all: &str) -> bool {
        self.access_type == AccessType::Blocked && self.targets.iter().any(|t| t.target == all)
    }
}

/// Why a setting is refused (the Graph 400 message).
pub fn validate_setting(s: &B2bSetting, what: &str) -> Result<(), String> {
    if let Some(t) = &s.users_and_groups {
        validate_targets(t, &format!("{what}.usersAndGroups"), ALL_USERS, &[TargetType::User, TargetType::Group])?;
    }
    if let Some(t) = &s.applications {
        validate_targets(t, &format!("{what}.applications"), ALL_APPLICATIONS, &[TargetType::Application])?;
    }
    Ok(())
}

/// Most targets per list (Graph allows a few thousand; this bounds what a sign-in scans).
pub const MAX_TARGETS: usize = 200;

fn validate_targets(t: &Targets, what: &str, all: &str, types: &[TargetType]) -> Result<(), String> {
    if t.targets.is_empty() {
        return Err(format!("{what}.targets must name at least one target ({all} for everyone)."));
    }
    if t.targets.len() > MAX_TARGETS {
        return Err(format!("{what}.targets holds more than {MAX_TARGETS} targets."));
    }
    for target in &t.targets {
        if !types.contains(&target.target_type) {
            return Err(format!("{what}: targetType {:?} is not allowed here.", target.target_type));
        }
        let special = target.target == all;
        if special && t.targets.len() > 1 {
            return Err(format!("{what}: {all} cannot be combined with other targets."));
        }
        if special && target.target_type == TargetType::Group {
            return Err(format!("{what}: {all} is a user target, not a group."));
        }
        let is_id = Uuid::parse_str(&target.target).is_ok();
        if !special && target.target_type != TargetType::Application && !is_id {
            return Err(format!("{what}: target {:?} is neither {all} nor an object id.", target.target));
        }
        if target.target.is_empty() || target.target.len() > 256 {
            return Err(format!("{what}: a target must be 1 to 256 characters."));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(access: AccessType, list: &[(&str, TargetType)]) -> Targets {
        Targets {
            access_type: access,
            targets: list.iter().map(|(t, ty)| Target { target: t.to_string(), target_type: *ty }).collect(),
        }
    }

    fn setting(users: Option<Targets>, apps: Option<Targets>) -> Option<B2bSetting> {
        Some(B2bSetting { users_and_groups: users, applications: apps })
    }

    const HOME: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);
    const SALLY: Uuid = Uuid::from_u128(10);
    const BOB: Uuid = Uuid::from_u128(11);
    const SALES: Uuid = Uuid::from_u128(20);

    fn who<'a>(user: Uuid, groups: &'a [Uuid], app: Option<&'a str>) -> Collaborator<'a> {
        Collaborator { user_id: user, groups, app_id: app }
    }

    #[test]
    fn inbound_decisions_follow_partner_then_default_then_service_default() {
        use AccessType::{Allowed, Blocked};
        use TargetType::{Application, Group, User};
        let sally = SALLY.to_string();
        let sales = SALES.to_string();
        let partner = |inbound| CrossTenantPolicy {
            default: CrossTenantSettings::default(),
            partners: vec![PartnerSettings {
                tenant_id: HOME,
                b2b_collaboration_inbound: inbound,
                ..Default::default()
            }],
        };
        let default = |inbound| CrossTenantPolicy {
            default: CrossTenantSettings { b2b_collaboration_inbound: inbound, ..Default::default() },
            partners: vec![],
        };
        let pu = Setting { partner: true, direction: Direction::Inbound, applications: false };
        let pa = Setting { partner: true, direction: Direction::Inbound, applications: true };
        let du = Setting { partner: false, direction: Direction::Inbound, applications: false };
        let da = Setting { partner: false, direction: Direction::Inbound, applications: true };
        let block_all_users = setting(Some(targets(Blocked, &[(ALL_USERS, User)])), None);
        let cases: Vec<(&str, CrossTenantPolicy, Collaborator<'_>, Verdict)> = vec![
            (
                "nothing configured: Entra's default allows",
                CrossTenantPolicy::default(),
                who(SALLY, &[], Some("foo")),
                Verdict::Allowed,
            ),
            (
                "partner blocks all users",
                partner(block_all_users.clone()),
                who(SALLY, &[], Some("foo")),
                Verdict::Blocked(pu),
            ),
            (
                "default blocks all users",
                default(block_all_users.clone()),
                who(SALLY, &[], Some("foo")),
                Verdict::Blocked(du),
            ),
            (
                "a partner entry with null inbound inherits the default",
                CrossTenantPolicy {
                    default: CrossTenantSettings {
                        b2b_collaboration_inbound: block_all_users.clone(),
                        ..Default::default()
                    },
                    partners: vec![PartnerSettings { tenant_id: HOME, ..Default::default() }],
                },
                who(SALLY, &[], Some("foo")),
                Verdict::Blocked(du),
            ),
            (
                "the partner's allow wins over the default's block",
                CrossTenantPolicy {
                    default: CrossTenantSettings {
                        b2b_collaboration_inbound: block_all_users.clone(),
                        ..Default::default()
                    },
                    partners: vec![PartnerSettings {
                        tenant_id: HOME,
                        b2b_collaboration_inbound: setting(Some(targets(Allowed, &[(ALL_USERS, User)])), None),
                        ..Default::default()
                    }],
                },
                who(SALLY, &[], Some("foo")),
                Verdict::Allowed,
            ),
            (
                "allowed list: sally is on it",
                partner(setting(Some(targets(Allowed, &[(&sally, User)])), None)),
                who(SALLY, &[], Some("foo")),
                Verdict::Allowed,
            ),
            (
                "allowed list: bob is not",
                partner(setting(Some(targets(Allowed, &[(&sally, User)])), None)),
                who(BOB, &[], Some("foo")),
                Verdict::Blocked(pu),
            ),
            (
                "blocked list: sally is on it",
                partner(setting(Some(targets(Blocked, &[(&sally, User)])), None)),
                who(SALLY, &[], Some("foo")),
                Verdict::Blocked(pu),
            ),
            (
                "blocked list: bob is not",
                partner(setting(Some(targets(Blocked, &[(&sally, User)])), None)),
                who(BOB, &[], Some("foo")),
                Verdict::Allowed,
            ),
            (
                "allowed group: a member",
                partner(setting(Some(targets(Allowed, &[(&sales, Group)])), None)),
                who(BOB, &[SALES], Some("foo")),
                Verdict::Allowed,
            ),
            (
                "allowed group: no groups",
                partner(setting(Some(targets(Allowed, &[(&sales, Group)])), None)),
                who(BOB, &[], Some("foo")),
                Verdict::Blocked(pu),
            ),
            (
                "blocked group: a member",
                partner(setting(Some(targets(Blocked, &[(&sales, Group)])), None)),
                who(BOB, &[SALES], Some("foo")),
                Verdict::Blocked(pu),
            ),
            (
                "apps: only Foo blocked, Foo",
                partner(setting(None, Some(targets(Blocked, &[("foo", Application)])))),
                who(SALLY, &[], Some("foo")),
                Verdict::Blocked(pa),
            ),
            (
                "apps: only Foo blocked, Bar",
                partner(setting(None, Some(targets(Blocked, &[("foo", Application)])))),
                who(SALLY, &[], Some("bar")),
                Verdict::Allowed,
            ),
            (
                "apps: only Foo allowed, Bar",
                partner(setting(None, Some(targets(Allowed, &[("foo", Application)])))),
                who(SALLY, &[], Some("bar")),
                Verdict::Blocked(pa),
            ),
            (
                "apps: only Foo allowed, redemption (no app yet)",
                partner(setting(None, Some(targets(Allowed, &[("foo", Application)])))),
                who(SALLY, &[], None),
                Verdict::Allowed,
            ),
            (
                "apps: all blocked, redemption",
                partner(setting(None, Some(targets(Blocked, &[(ALL_APPLICATIONS, Application)])))),
                who(SALLY, &[], None),
                Verdict::Blocked(pa),
            ),
            (
                "apps: default blocks all",
                default(setting(None, Some(targets(Blocked, &[(ALL_APPLICATIONS, Application)])))),
                who(SALLY, &[], Some("bar")),
                Verdict::Blocked(da),
            ),
            (
                "users allowed but apps blocked: both must allow",
                partner(setting(
                    Some(targets(Allowed, &[(ALL_USERS, User)])),
                    Some(targets(Blocked, &[("foo", Application)])),
                )),
                who(SALLY, &[], Some("foo")),
                Verdict::Blocked(pa),
            ),
            (
                "partner sets users only: applications come from the default",
                CrossTenantPolicy {
                    default: CrossTenantSettings {
                        b2b_collaboration_inbound: setting(None, Some(targets(Blocked, &[("foo", Application)]))),
                        ..Default::default()
                    },
                    partners: vec![PartnerSettings {
                        tenant_id: HOME,
                        b2b_collaboration_inbound: setting(Some(targets(Allowed, &[(ALL_USERS, User)])), None),
                        ..Default::default()
                    }],
                },
                who(SALLY, &[], Some("foo")),
                Verdict::Blocked(da),
            ),
        ];
        for (name, policy, who, want) in cases {
            assert_eq!(policy.inbound_decision(HOME, &who), want, "{name}");
        }
        // The partner entry is per tenant: another home sees the (empty) default.
        assert_eq!(partner(block_all_users).inbound_decision(OTHER, &who(SALLY, &[], Some("foo"))), Verdict::Allowed);
    }

    #[test]
    fn outbound_decisions_read_the_outbound_side_only() {
        use AccessType::Blocked;
        use TargetType::{Application, User};
        let policy = CrossTenantPolicy {
            default: CrossTenantSettings {
                b2b_collaboration_inbound: setting(Some(targets(Blocked, &[(ALL_USERS, User)])), None),
                ..Default::default()
            },
            partners: vec![PartnerSettings {
                tenant_id: OTHER,
                b2b_collaboration_outbound: setting(None, Some(targets(Blocked, &[("foo", Application)]))),
                ..Default::default()
            }],
        };
        let po = Setting { partner: true, direction: Direction::Outbound, applications: true };
        assert_eq!(policy.outbound_decision(OTHER, &who(SALLY, &[], Some("foo"))), Verdict::Blocked(po));
        assert_eq!(policy.outbound_decision(OTHER, &who(SALLY, &[], Some("bar"))), Verdict::Allowed);
        assert_eq!(policy.outbound_decision(HOME, &who(SALLY, &[], Some("foo"))), Verdict::Allowed);
        assert_eq!(po.to_string(), "partner outbound applications");
    }

    #[test]
    fn only_a_block_of_everyone_refuses_an_invitation() {
        use AccessType::{Allowed, Blocked};
        use TargetType::{Application, User};
        let sally = SALLY.to_string();
        let with = |inbound| CrossTenantPolicy {
            default: CrossTenantSettings::default(),
            partners: vec![PartnerSettings {
                tenant_id: HOME,
                b2b_collaboration_inbound: inbound,
                ..Default::default()
            }],
        };
        let cases = [
            (setting(Some(targets(Blocked, &[(ALL_USERS, User)])), None), true),
            (setting(None, Some(targets(Blocked, &[(ALL_APPLICATIONS, Application)]))), true),
            (setting(Some(targets(Allowed, &[(&sally, User)])), None), false),
            (setting(Some(targets(Blocked, &[(&sally, User)])), None), false),
            (setting(None, Some(targets(Blocked, &[("foo", Application)]))), false),
            (None, false),
        ];
        for (inbound, refused) in cases {
            let p = with(inbound.clone());
            assert_eq!(p.blocks_everyone(HOME, Direction::Inbound).is_some(), refused, "{inbound:?}");
            assert!(p.blocks_everyone(HOME, Direction::Outbound).is_none());
        }
    }

    #[test]
    fn trust_comes_from_the_partner_else_the_default() {
        let mfa = InboundTrustSettings { is_mfa_accepted: true, ..Default::default() };
        let device = InboundTrustSettings { is_compliant_device_accepted: true, ..Default::default() };
        let mut p = CrossTenantPolicy::default();
        assert_eq!(p.trust_for(HOME), InboundTrustSettings::default());
        p.default.inbound_trust = Some(mfa);
        assert_eq!(p.trust_for(HOME), mfa);
        p.partners.push(PartnerSettings { tenant_id: HOME, inbound_trust: Some(device), ..Default::default() });
        assert_eq!(p.trust_for(HOME), device);
        assert_eq!(p.trust_for(OTHER), mfa);
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        use AccessType::Allowed;
        use TargetType::{Application, Group, User};
        let id = SALLY.to_string();
        let bad = [
            setting(Some(targets(Allowed, &[])), None),
            setting(Some(targets(Allowed, &[(ALL_USERS, User), (&id, User)])), None),
            setting(Some(targets(Allowed, &[("foo", Application)])), None),
            setting(Some(targets(Allowed, &[("sally", User)])), None),
            setting(Some(targets(Allowed, &[(ALL_USERS, Group)])), None),
            setting(None, Some(targets(Allowed, &[(&id, User)]))),
            setting(None, Some(targets(Allowed, &[(ALL_APPLICATIONS, Application), ("foo", Application)]))),
        ];
        for s in bad {
            let s = s.unwrap_or_default();
            assert!(validate_setting(&s, "b2bCollaborationInbound").is_err(), "{s:?}");
        }
        let good = setting(Some(targets(Allowed, &[(&id, User)])), Some(targets(Allowed, &[("foo", Application)])));
        assert_eq!(validate_setting(&good.unwrap_or_default(), "b2bCollaborationInbound"), Ok(()));
    }
}
