//! The invitation and one-time-code messages: a plain-text body and an HTML body with the
//! same words and the same link or code. Everything put into the HTML is escaped (tenant
//! names, display names and the inviter's message are anyone's text).
use super::Outgoing;
use crate::model::{Invitation, MailAddress, MailKind, Tenant};

/// Escapes text for HTML element content and (double-quoted) attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family: sans-serif; line-height: 1.5\">\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// The invitation mail of `inv`, from the tenant, answered to the inviter when known.
pub fn invitation(tenant: &Tenant, inv: &Invitation, redeem_url: &str, inviter: Option<MailAddress>) -> Outgoing {
    let subject = format!("You're invited to {}", tenant.display_name);
    let app = inv.app_id.as_deref().map(|a| format!(" in {a}")).unwrap_or_default();
    let mut text =
        format!("{} has invited you, {}, to collaborate{app}.\n", tenant.display_name, inv.invited_user_display_name);
    let mut html = format!(
        "<p>{} has invited you, {}, to collaborate{}.</p>\n",
        escape(&tenant.display_name),
        escape(&inv.invited_user_display_name),
        escape(&app)
    );
    if let Some(m) = &inv.message {
        text.push_str(&format!("\nMessage: {m}\n"));
        let lines: Vec<String> = m.lines().map(escape).collect();
        html.push_str(&format!("<p>Message:</p>\n<blockquote id=\"message\">{}</blockquote>\n", lines.join("<br>\n")));
    }
    text.push_str(&format!("\nAccept the invitation: {redeem_url}\n"));
    html.push_str(&format!(
        "<p><a id=\"redeem-link\" href=\"{0}\">Accept the invitation</a></p>\n\
         <p>Or open this address in your browser: {0}</p>\n",
        escape(redeem_url)
    ));
    Outgoing {
        tenant_id: Some(tenant.id),
        kind: MailKind::Invitation,
        from_name: Some(tenant.display_name.clone()),
        reply_to: inviter,
        to: inv.invited_user_email_address.clone(),
        html: html_page(&subject, &html),
        subject,
        text,
        redeem_url: Some(redeem_url.to_string()),
        otp: None,
    }
}

/// The email one-time passcode mail for a sign-in at `tenant`.
pub fn one_time_code(tenant: &Tenant, to: &str, code: &str) -> Outgoing {
    let subject = format!("{} verification code", tenant.display_name);
    let text = format!(
        "Your {} verification code is {code}.\n\nIt is valid for 30 minutes and works once. If you did not try to sign in, ignore this email.",
        tenant.display_name
    );
    let html = format!(
        "<p>Your {} verification code is <strong id=\"otp\">{}</strong>.</p>\n\
         <p>It is valid for 30 minutes and works once. If you did not try to sign in, ignore this email.</p>\n",
        escape(&tenant.display_name),
        escape(code)
    );
    Outgoing {
        tenant_id: Some(tenant.id),
        kind: MailKind::OneTimeCode,
        from_name: Some(tenant.display_name.clone()),
        reply_to: None,
        to: to.to_string(),
        html: html_page(&subject, &html),
        subject,
        text,
        redeem_url: None,
        otp: Some(code.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(escape(r#"<b a="1" b='2'>&amp;</b>"#), "&lt;b a=&quot;1&quot; b=&#39;2&#39;&gt;&amp;amp;&lt;/b&gt;");
    }
}
