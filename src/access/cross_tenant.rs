//! Cross-tenant access settings at sign-in (DESIGN §13): for a guest whose home is a tenant
//! on this instance, the resource tenant's inbound settings and the home tenant's outbound
//! settings must both allow the collaboration; the resource's inbound trust may accept the
//! home's device. The decisions themselves are pure (`policy::cross_tenant`).
use crate::app::AppState;
use crate::model::{Authentication, HomeSignIn, Tenant};
use crate::policy::SignInContext;
use crate::policy::cross_tenant::{Collaborator, Direction, Setting, Verdict};
use crate::storage::StoreError;

/// A collaboration the settings refuse: which organisations, and which setting decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub resource: String,
    pub home: String,
    pub setting: Setting,
}

impl Blocked {
    /// For the sign-in log: who decided and with which setting.
    pub fn reason(&self) -> String {
        let (owner, other) = match self.setting.direction {
            Direction::Inbound => (&self.resource, &self.home),
            Direction::Outbound => (&self.home, &self.resource),
        };
        let direction = match self.setting.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        };
        let what = if self.setting.applications { "this application" } else { "this user" };
        format!("cross-tenant access: {owner} {direction} settings for {other} block {what} ({} setting)", self.setting)
    }

    /// For the person: the organisations, no policy internals.
    pub fn message(&self) -> String {
        match self.setting.direction {
            Direction::Inbound => format!(
                "{} does not allow collaboration with {} for this account or application. If you think you should have access, ask {}'s administrator.",
                self.resource, self.home, self.resource
            ),
            Direction::Outbound => format!(
                "{} does not allow its users to collaborate with {} for this account or application. Ask your administrator at {}.",
                self.home, self.resource, self.home
            ),
        }
    }
}

/// Inbound (the resource's) and outbound (the home's) settings for this collaboration.
/// `app_id` is `None` while redeeming. A home tenant that is gone decides nothing.
pub async fn check(
    state: &AppState,
    resource: &Tenant,
    home: &HomeSignIn,
    app_id: Option<&str>,
) -> Result<Option<Blocked>, StoreError> {
    let home_tenant = state.store.tenant(&home.tenant_id).await?;
    // Group targets name the home tenant's groups: the home user's memberships there.
    let groups = match &home_tenant {
        Some(t) => state.store.user(&t.id, &home.user_id).await?.map(|u| u.member_of).unwrap_or_default(),
        None => vec![],
    };
    Ok(decide(resource, home_tenant.as_ref(), home, &groups, app_id))
}

/// [`check`] with the home tenant already read.
pub fn decide(
    resource: &Tenant,
    home_tenant: Option<&Tenant>,
    home: &HomeSignIn,
    groups: &[uuid::Uuid],
    app_id: Option<&str>,
) -> Option<Blocked> {
    let who = Collaborator { user_id: home.user_id.0, groups, app_id };
    let home_name = home_tenant.map_or_else(|| home.tenant_id.to_string(), |t| t.display_name.clone());
    let blocked = |setting| Blocked { resource: resource.display_name.clone(), home: home_name.clone(), setting };
    if let Verdict::Blocked(s) = resource.cross_tenant.inbound_decision(home.tenant_id.0, &who) {
        return Some(blocked(s));
    }
    if let Some(t) = home_tenant
        && let Verdict::Blocked(s) = t.cross_tenant.outbound_decision(resource.id.0, &who)
    {
        return Some(blocked(s));
    }
    None
}

/// Whether the settings refuse every user of `other`'s tenant before anyone is known (an
/// invitation): `resource`'s inbound, then the home's outbound.
pub fn blocks_invitation(resource: &Tenant, home: &Tenant) -> Option<Blocked> {
    let blocked =
        |setting| Blocked { resource: resource.display_name.clone(), home: home.display_name.clone(), setting };
    if let Some(s) = resource.cross_tenant.blocks_everyone(home.id.0, Direction::Inbound) {
        return Some(blocked(s));
    }
    home.cross_tenant.blocks_everyone(resource.id.0, Direction::Outbound).map(blocked)
}

/// The resource's inbound trust vouches for the home device (`xms_dev`): a compliant device
/// when `isCompliantDeviceAccepted`, a hybrid-joined one (`trustType` ServerAD) when
/// `isHybridAzureADJoinedDeviceAccepted`.
pub fn vouch(resource: &Tenant, auth: &Authentication, mut ctx: SignInContext) -> SignInContext {
    let Some(home) = &auth.home else { return ctx };
    let Some(device) = &home.device else { return ctx };
    let trust = resource.cross_tenant.trust_for(home.tenant_id.0);
    if trust.is_compliant_device_accepted && device.is_compliant {
        ctx.satisfied.compliant_device = true;
    }
    let hybrid = device.trust_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("ServerAD"));
    if trust.is_hybrid_azure_ad_joined_device_accepted && hybrid {
        ctx.satisfied.domain_joined_device = true;
    }
    ctx
}
