//! Content-Security-Policy values of pages.
use base64::Engine;

/// The inline script of the form_post page, allowed by hash in the CSP.
pub const FORM_POST_SCRIPT: &str = r#"document.getElementById("form-post").submit();"#;

/// The Content-Security-Policy of a page; `form_action` lists where its forms may go.
/// Chrome and WebKit check `form-action` against every redirect that follows a submission
/// too (w3c/webappsec-csp#8), so a page whose form ends in a redirect to a relying party
/// must name that destination (or, with `None`, carry no `form-action` at all).
pub fn content_security_policy(form_action: Option<&str>) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(crate::secrets::sha256(FORM_POST_SCRIPT.as_bytes()));
    let mut csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Some(f) = form_action {
        csp.push_str("; form-action ");
        csp.push_str(f);
    }
    csp
}

/// The CSP of the passkey pages (sign-in pages: no `form-action`): the form_post hash and
/// exactly the file `script_url` (`{public_url}/static/passkey.js`), nothing inline.
pub fn passkey_page(script_url: &str) -> String {
    let base = content_security_policy(None);
    base.replacen("script-src ", &format!("script-src {script_url} "), 1)
}

/// The CSP source that admits form submissions (and redirects) to `uri`: its origin, or
/// its scheme for a URI without a host (a native app's private-use scheme).
pub fn form_action_source(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    if u.host().is_some() { Some(u.origin().ascii_serialization()) } else { Some(format!("{}:", u.scheme())) }
}
