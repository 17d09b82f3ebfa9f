//! `gatehouse guests inactive --days N [--disable | --delete]` (DESIGN §14): the guests with
//! nothing for N days (no sign-in, interactive or not, no redemption, no invitation), read
//! through the admin API like `users list`; a dry run unless told to act.
use crate::admin::client::{Connection, table};
use crate::admin::wire::{SignInActivity, UserPatch};
use crate::model::{ExternalUserState, UserId};

/// What `--days` accepts: a whole number of days, at least one (a guest invited a second
/// ago must never qualify), at most a century.
pub fn parse_days(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=36_500).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of days from 1 to 36500")),
    }
}

/// What the command does to the guests it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    DryRun,
    Disable,
    Delete,
}

/// The guest properties the command selects (`$select`), so it asks for no more.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Guest {
    id: UserId,
    user_principal_name: String,
    account_enabled: bool,
    external_user_state: Option<ExternalUserState>,
    external_user_state_change_date_time: Option<String>,
    created_date_time: String,
    #[serde(default)]
    sign_in_activity: Option<SignInActivity>,
}

const SELECT: &str = "id,userPrincipalName,accountEnabled,externalUserState,externalUserStateChangeDateTime,\
createdDateTime,signInActivity";

fn unix(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp())
}

impl Guest {
    /// The later of the two sign-in times; `None`: never signed in (since it was recorded).
    fn last_sign_in(&self) -> Option<i64> {
        let a = self.sign_in_activity.as_ref();
        let times = a
            .into_iter()
            .flat_map(|a| [&a.last_sign_in_date_time, &a.last_non_interactive_sign_in_date_time].into_iter().flatten());
        times.filter_map(|t| unix(t)).max()
    }

    /// The last thing that happened to the guest: a sign-in, the redemption (or its reset),
    /// or the invitation. A guest redeemed before sign-ins were recorded counts from the
    /// redemption, so an upgrade does not make every guest look inactive.
    fn last_activity(&self) -> Option<i64> {
        let state = self.external_user_state_change_date_time.as_deref().and_then(unix);
        [self.last_sign_in(), state, unix(&self.created_date_time)].into_iter().flatten().max()
    }
}

/// One row of the answer (`--json` prints these).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: UserId,
    user_principal_name: String,
    external_user_state: Option<ExternalUserState>,
    account_enabled: bool,
    last_sign_in_date_time: Option<String>,
    last_activity_date_time: Option<String>,
    action: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    cutoff_date_time: String,
    dry_run: bool,
    guests: Vec<Row>,
}

/// Lists (and with `act`, disables or deletes) the guests with no activity since `now -
/// days`. `now` is the local clock: the server's times are compared with it.
pub async fn inactive(c: &Connection, days: u32, act: Act, now: i64, json: bool) -> Result<String, String> {
    let cutoff = now - i64::from(days) * 86_400;
    let filter = url::form_urlencoded::byte_serialize(b"userType eq 'Guest'").collect::<String>();
    let guests: Vec<Guest> = c.list(&format!("users?$filter={filter}&$select={SELECT}")).await?;
    let inactive: Vec<Guest> = guests.into_iter().filter(|g| g.last_activity().is_none_or(|t| t < cutoff)).collect();
    let mut rows = Vec::with_capacity(inactive.len());
    for g in inactive {
        let action = match act {
            Act::DryRun => "none",
            Act::Disable if !g.account_enabled => "already disabled",
            Act::Disable => {
                let patch = UserPatch { account_enabled: Some(false), ..Default::default() };
                c.patch(&format!("users/{}", g.id), &patch).await.map_err(|e| partial(e, &rows))?;
                "disabled"
            }
            Act::Delete => {
                c.delete(&format!("users/{}", g.id)).await.map_err(|e| partial(e, &rows))?;
                "deleted"
            }
        };
        rows.push(Row {
            id: g.id,
            user_principal_name: g.user_principal_name.clone(),
            external_user_state: g.external_user_state,
            account_enabled: g.account_enabled && action != "disabled",
            last_sign_in_date_time: g.last_sign_in().map(crate::clock::rfc3339),
            last_activity_date_time: g.last_activity().map(crate::clock::rfc3339),
            action,
        });
    }
    let answer = Answer { cutoff_date_time: crate::clock::rfc3339(cutoff), dry_run: act == Act::DryRun, guests: rows };
    if json {
        return Ok(super::admin::pretty(&answer));
    }
    let cells: Vec<Vec<String>> = answer
        .guests
        .iter()
        .map(|r| {
            vec![
                r.user_principal_name.clone(),
                super::admin::s(&r.external_user_state),
                r.account_enabled.to_string(),
                r.last_sign_in_date_time.clone().unwrap_or_else(|| "never".into()),
                r.last_activity_date_time.clone().unwrap_or_else(|| "-".into()),
                r.action.to_string(),
            ]
        })
        .collect();
    let n = answer.guests.len();
    let summary = match act {
        Act::DryRun => "dry run: nothing changed; pass --disable or --delete".to_string(),
        Act::Disable => {
            format!("disabled {} guest(s)", answer.guests.iter().filter(|r| r.action == "disabled").count())
        }
        Act::Delete => format!("deleted {n} guest(s)"),
    };
    let head = format!("{n} guest(s) without activity since {}", answer.cutoff_date_time);
    let headers = ["UserPrincipalName", "State", "Enabled", "LastSignIn", "LastActivity", "Action"];
    Ok(format!("{head}\n{}{summary}", table(&headers, &cells)))
}

/// An error part-way through: what was already done is said with it.
fn partial(e: String, done: &[Row]) -> String {
    let acted = done.iter().filter(|r| r.action == "disabled" || r.action == "deleted").count();
    format!("{e} (after acting on {acted} guest(s))")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(created: &str, state_change: Option<&str>, last: Option<&str>, refresh: Option<&str>) -> Guest {
        Guest {
            id: UserId::new(),
            user_principal_name: "g".into(),
            account_enabled: true,
            external_user_state: Some(ExternalUserState::Accepted),
            external_user_state_change_date_time: state_change.map(str::to_owned),
            created_date_time: created.into(),
            sign_in_activity: Some(SignInActivity {
                last_sign_in_date_time: last.map(str::to_owned),
                last_non_interactive_sign_in_date_time: refresh.map(str::to_owned),
            }),
        }
    }

    #[test]
    fn the_last_activity_is_the_latest_of_sign_ins_redemption_and_invitation() {
        let t = |s: &str| unix(s).unwrap();
        let (jan, feb, mar) = ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z");
        assert_eq!(guest(jan, None, None, None).last_activity(), Some(t(jan)), "invited, never anything else");
        assert_eq!(guest(jan, Some(feb), None, None).last_activity(), Some(t(feb)), "redeemed");
        assert_eq!(guest(jan, Some(feb), Some(mar), None).last_activity(), Some(t(mar)), "signed in");
        assert_eq!(guest(jan, Some(feb), Some(feb), Some(mar)).last_activity(), Some(t(mar)), "refreshed later");
        assert_eq!(guest(jan, None, Some(mar), Some(feb)).last_sign_in(), Some(t(mar)));
        assert_eq!(guest(jan, Some(mar), None, None).last_sign_in(), None, "never signed in");
    }

    #[test]
    fn days_are_one_or_more() {
        assert_eq!(parse_days("30"), Ok(30));
        for bad in ["0", "-1", "x", "", "36501", "1.5"] {
            assert!(parse_days(bad).is_err(), "{bad}");
        }
    }
}
