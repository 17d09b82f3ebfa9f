//! Passkeys (WebAuthn / FIDO2, DESIGN §10) with `webauthn-rs`: the relying party of this
//! instance, the stored method, and decoding what the browser posts. No storage, no I/O;
//! the ceremony states live in the sign-in transaction (serialised here as JSON).
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// The passkeys one user may hold (Entra allows several; a bound keeps records small).
pub const MAX_PASSKEYS: usize = 10;

/// A passkey as stored on a user (Graph `fido2AuthenticationMethod`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PasskeyMethod {
    pub id: String,
    pub display_name: String,
    /// The authenticator model (all zeros when it does not say).
    pub aaguid: String,
    pub created_at: i64,
    /// The `webauthn_rs::prelude::Passkey` as JSON (it is not `PartialEq`, records are).
    pub credential: serde_json::Value,
}

impl PasskeyMethod {
    pub fn new(passkey: &Passkey, aaguid: String, now: i64) -> Option<Self> {
        Some(Self {
            id: uuid::Uuid::new_v4().to_string(),
            display_name: "Passkey".into(),
            aaguid,
            created_at: now,
            credential: serde_json::to_value(passkey).ok()?,
        })
    }

    pub fn passkey(&self) -> Option<Passkey> {
        serde_json::from_value(self.credential.clone()).ok()
    }

    /// Takes the new counter and backup state of an assertion of this passkey. Checked
    /// against the stored counter at the moment of writing (the ceremony state holds the
    /// one from when it started): a counter that did not grow means a cloned authenticator
    /// or a replay and is refused.
    pub fn update(&mut self, result: &AuthenticationResult) -> Update {
        let Some(mut pk) = self.passkey() else { return Update::OtherCredential };
        if pk.cred_id() != result.cred_id() {
            return Update::OtherCredential;
        }
        let stored = self.credential.pointer("/cred/counter").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let counter = u64::from(result.counter());
        if (counter > 0 || stored > 0) && counter <= stored {
            return Update::CounterRegressed;
        }
        if pk.update_credential(result).is_none() {
            return Update::OtherCredential;
        }
        match serde_json::to_value(&pk) {
            Ok(v) => {
                self.credential = v;
                Update::Updated
            }
            Err(_) => Update::OtherCredential,
        }
    }
}

/// What an assertion did to a stored passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Updated,
    OtherCredential,
    CounterRegressed,
}

/// Why a ceremony failed, for the log; the person sees one message.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need a public_url whose host is a domain name")]
    Unavailable,
    #[error("the posted credential is not a WebAuthn credential")]
    Malformed,
    #[error("ceremony state: {0}")]
    State(String),
    #[error("webauthn: {0}")]
    Webauthn(#[from] webauthn_rs::prelude::WebauthnError),
}

/// The relying party: RP id = the host of `public_url`, origin = its origin. `None` when
/// the host is not a domain (an IP address): WebAuthn has no relying party there.
pub fn relying_party(public_url: &str, rp_name: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let host = url.domain()?.to_string();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&host, &origin).ok()?.rp_name(rp_name).build().ok()
}

/// A registration ceremony: the options for the browser (JSON) and the state to keep (JSON).
pub fn start_registration(
    rp: &Webauthn,
    user_id: &uuid::Uuid,
    user_name: &str,
    display_name: &str,
    held: &[PasskeyMethod],
) -> Result<(String, String), PasskeyError> {
    let exclude: Vec<_> = held.iter().filter_map(|m| m.passkey()).map(|p| p.cred_id().clone()).collect();
    let (options, state): (CreationChallengeResponse, PasskeyRegistration) =
        rp.start_passkey_registration(Uuid::from_bytes(*user_id.as_bytes()), user_name, display_name, Some(exclude))?;
    // Asked to be discoverable, so a member can later sign in with it alone (the server's
    // checks do not depend on it; an authenticator that cannot still registers the key).
    let mut options = serde_json::to_value(&options).map_err(|e| PasskeyError::State(e.to_string()))?;
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
        sel.insert("residentKey".into(), "preferred".into());
    }
    Ok((to_json(&options)?, to_json(&state)?))
}

/// Checks the posted registration against the kept state: the new passkey and its AAGUID.
pub fn finish_registration(rp: &Webauthn, posted: &str, state: &str) -> Result<(Passkey, String), PasskeyError> {
    let reg: RegisterPublicKeyCredential = decode_credential(posted).ok_or(PasskeyError::Malformed)?;
    let state: PasskeyRegistration = from_json(state)?;
    let passkey = rp.finish_passkey_registration(&reg, &state)?;
    let aaguid = aaguid_of(reg.response.attestation_object.as_ref()).unwrap_or_default();
    Ok((passkey, aaguid.to_string()))
}

/// An authentication ceremony for the passkeys held: options (JSON) and state (JSON).
pub fn start_authentication(rp: &Webauthn, held: &[PasskeyMethod]) -> Result<(String, String), PasskeyError> {
    let creds: Vec<Passkey> = held.iter().filter_map(|m| m.passkey()).collect();
    let (options, state): (RequestChallengeResponse, PasskeyAuthentication) =
        rp.start_passkey_authentication(&creds)?;
    Ok((to_json(&options)?, to_json(&state)?))
}

/// Checks the posted assertion against the kept state (challenge, origin, RP id, allowed
/// credentials, signature, counter).
pub fn finish_authentication(rp: &Webauthn, posted: &str, state: &str) -> Result<AuthenticationResult, PasskeyError> {
    let cred: PublicKeyCredential = decode_credential(posted).ok_or(PasskeyError::Malformed)?;
    let state: PasskeyAuthentication = from_json(state)?;
    Ok(rp.finish_passkey_authentication(&cred, &state)?)
}

/// A passwordless ceremony (discoverable credential: no account named first): options for
/// the browser (a button, not autofill) and the state to keep (JSON).
pub fn start_passwordless(rp: &Webauthn) -> Result<(String, String), PasskeyError> {
    let (mut options, state): (RequestChallengeResponse, DiscoverableAuthentication) =
        rp.start_discoverable_authentication()?;
    options.mediation = None;
    Ok((to_json(&options)?, to_json(&state)?))
}

/// The posted passwordless assertion and whose it says it is: the user id (the user handle
/// given at registration) and the credential id.
pub fn passwordless_claim(
    rp: &Webauthn,
    posted: &str,
) -> Result<(PublicKeyCredential, uuid::Uuid, Vec<u8>), PasskeyError> {
    let cred: PublicKeyCredential = decode_credential(posted).ok_or(PasskeyError::Malformed)?;
    let (user, cred_id) = rp.identify_discoverable_authentication(&cred)?;
    let (user, cred_id) = (uuid::Uuid::from_bytes(*user.as_bytes()), cred_id.to_vec());
    Ok((cred, user, cred_id))
}

/// Checks a passwordless assertion against the kept state and the one passkey it names.
pub fn finish_passwordless(
    rp: &Webauthn,
    cred: &PublicKeyCredential,
    state: &str,
    method: &PasskeyMethod,
) -> Result<AuthenticationResult, PasskeyError> {
    let state: DiscoverableAuthentication = from_json(state)?;
    let key = method.passkey().ok_or_else(|| PasskeyError::State("stored passkey".into()))?;
    Ok(rp.finish_discoverable_authentication(cred, state, &[DiscoverableKey::from(&key)])?)
}

impl PasskeyMethod {
    /// Whether this is the credential with id `cred_id`.
    pub fn has_id(&self, cred_id: &[u8]) -> bool {
        self.passkey().is_some_and(|p| p.cred_id().as_ref() == cred_id)
    }
}

fn to_json(v: &impl Serialize) -> Result<String, PasskeyError> {
    serde_json::to_string(v).map_err(|e| PasskeyError::State(e.to_string()))
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(s).map_err(|e| PasskeyError::State(e.to_string()))
}

/// The hidden field `credential`: the browser's JSON, as is or base64url-encoded.
pub fn decode_credential<T: DeserializeOwned>(posted: &str) -> Option<T> {
    let posted = posted.trim();
    if posted.starts_with('{') {
        return serde_json::from_str(posted).ok();
    }
    let bytes = URL_SAFE_NO_PAD.decode(posted.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The AAGUID in the attested credential data of an attestation object (CBOR map with
/// `authData`): rpIdHash (32) | flags (1) | counter (4) | AAGUID (16) | ...
pub fn aaguid_of(attestation_object: &[u8]) -> Option<uuid::Uuid> {
    let auth_data = cbor_map_bytes(attestation_object, "authData")?;
    let flags = *auth_data.get(32)?;
    if flags & 0x40 == 0 {
        return None;
    }
    let bytes: [u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    Some(uuid::Uuid::from_bytes(bytes))
}

/// The byte string under text key `key` in a top-level CBOR map (definite lengths only).
fn cbor_map_bytes<'a>(data: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let (major, entries, mut pos) = cbor_head(data, 0)?;
    if major != 5 {
        return None;
    }
    for _ in 0..entries {
        let (kmajor, klen, kstart) = cbor_head(data, pos)?;
        let klen = usize::try_from(klen).ok()?;
        let kend = kstart.checked_add(klen)?;
        let is_key = kmajor == 3 && data.get(kstart..kend)? == key.as_bytes();
        let vstart = if kmajor == 3 { kend } else { cbor_skip(data, pos)? };
        if is_key {
            let (vmajor, vlen, vbody) = cbor_head(data, vstart)?;
            let vend = vbody.checked_add(usize::try_from(vlen).ok()?)?;
            return (vmajor == 2).then(|| data.get(vbody..vend)).flatten();
        }
        pos = cbor_skip(data, vstart)?;
    }
    None
}

/// Major type, argument and the position after the head of the item at `pos`.
fn cbor_head(data: &[u8], pos: usize) -> Option<(u8, u64, usize)> {
    let first = *data.get(pos)?;
    let (major, info) = (first >> 5, first & 0x1f);
    let n = match info {
        0..=23 => return Some((major, u64::from(info), pos + 1)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let bytes = data.get(pos + 1..pos + 1 + n)?;
    let arg = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    Some((major, arg, pos + 1 + n))
}

/// The position after the item at `pos`.
fn cbor_skip(data: &[u8], pos: usize) -> Option<usize> {
    let (major, arg, body) = cbor_head(data, pos)?;
    match major {
        0 | 1 | 7 => Some(body),
        2 | 3 => body.checked_add(usize::try_from(arg).ok()?).filter(|end| *end <= data.len()),
        4 => (0..arg).try_fold(body, |p, _| cbor_skip(data, p)),
        5 => (0..arg).try_fold(body, |p, _| cbor_skip(data, cbor_skip(data, p)?)),
        6 => cbor_skip(data, body),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relying_party_needs_a_domain() {
        assert!(relying_party("http://127.0.0.1:8080", "x").is_none());
        assert!(relying_party("https://id.example.com", "x").is_some());
        assert!(relying_party("http://localhost:8080", "x").is_some());
    }

    #[test]
    fn aaguid_is_read_from_the_attestation_object() {
        let mut auth_data = vec![0u8; 32];
        auth_data.push(0x45); // UP, UV, AT
        auth_data.extend([0, 0, 0, 1]);
        auth_data.extend([7u8; 16]);
        let mut obj = vec![0xa3, 0x63];
        obj.extend(b"fmt");
        obj.extend([0x64]);
        obj.extend(b"none");
        obj.extend([0x67]);
        obj.extend(b"attStmt");
        obj.extend([0xa0, 0x68]);
        obj.extend(b"authData");
        obj.extend([0x58, u8::try_from(auth_data.len()).unwrap()]);
        obj.extend(&auth_data);
        assert_eq!(aaguid_of(&obj), Some(uuid::Uuid::from_bytes([7u8; 16])));
        assert_eq!(aaguid_of(&obj[..obj.len() - 3]), None);
    }
}
