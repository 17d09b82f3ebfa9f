//! MFA building blocks (DESIGN §2.4): TOTP enrolment and checking, recovery codes,
//! email one-time passcodes and failure lockouts. Pure functions: no storage, no I/O,
//! and time is always passed in as `now` (unix seconds).
pub mod passkey;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use qrcode::QrCode;
use qrcode::render::svg;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const TOTP_DIGITS: u8 = 6;
pub const TOTP_STEP: u64 = 30;
/// Steps accepted either side of the current one.
pub const TOTP_SKEW: u16 = 1;
/// 160-bit secrets, as RFC 4226 recommends.
pub const TOTP_SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
pub const EMAIL_OTP_TTL_SECS: i64 = 1800;
pub const EMAIL_OTP_MAX_ATTEMPTS: u32 = 5;
pub const MFA_MAX_FAILURES: usize = 5;
/// Failures older than this no longer count towards a lockout.
pub const MFA_FAILURE_WINDOW_SECS: i64 = 900;
pub const MFA_LOCK_SECS: i64 = 900;

/// Recovery code alphabet: lowercase base32-ish without 0/o, 1/i/l.
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A software OATH (TOTP) method as stored on a user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TotpMethod {
    pub id: String,
    /// The base32 seed sealed with the instance's `SealKey` (see `secrets::SealKey`).
    #[serde(rename = "secret_b32")]
    pub sealed_secret: String,
    pub created_at: i64,
    /// Last accepted time step; codes at or before it are replays.
    pub last_step: Option<u64>,
}

impl TotpMethod {
    /// A freshly enrolled method (its seed already sealed) with a random id and no accepted step yet.
    pub fn new(sealed_secret: String, now: i64) -> Self {
        Self { id: uuid::Uuid::new_v4().to_string(), sealed_secret, created_at: now, last_step: None }
    }
}

/// What the proof-up page shows. Not stored until one valid code confirms it.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Enrollment {
    pub secret_b32: String,
    pub otpauth_uri: String,
    /// `data:image/svg+xml;base64,...`; empty if the URI is too long for a QR code.
    pub qr_svg_data_uri: String,
}

// Manual so the secret never lands in logs.
impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment").field("secret_b32", &"REDACTED").finish_non_exhaustive()
    }
}

/// A new 160-bit secret with its otpauth URI and QR code (SHA-1, 6 digits, 30 s).
/// `issuer` is the tenant display name, `account` the user's UPN.
pub fn new_enrollment(issuer: &str, account: &str) -> Enrollment {
    let mut bytes = vec![0u8; TOTP_SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let secret_b32 = Secret::from(bytes).to_base32();
    let otpauth_uri = otpauth_uri(&secret_b32, issuer, account);
    let qr_svg_data_uri = qr_svg_data_uri(&otpauth_uri).unwrap_or_default();
    Enrollment { secret_b32, otpauth_uri, qr_svg_data_uri }
}

/// Key Uri Format: `otpauth://totp/{issuer}:{account}?secret=..&issuer=..&algorithm=SHA1&digits=6&period=30`.
/// Built by hand because totp-rs refuses `:` in names; here a `:` becomes a space
/// (a percent-encoded one would still be read as the label separator by some apps).
pub fn otpauth_uri(secret_b32: &str, issuer: &str, account: &str) -> String {
    let issuer = percent_encode(&label_part(issuer));
    let account = percent_encode(&label_part(account));
    let secret = normalise_secret(secret_b32);
    let params = format!("secret={secret}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP}");
    if issuer.is_empty() {
        format!("otpauth://totp/{account}?{params}")
    } else {
        format!("otpauth://totp/{issuer}:{account}?{params}&issuer={issuer}")
    }
}

/// Renders `text` as an SVG QR code in a base64 data URI; `None` if it does not fit.
pub fn qr_svg_data_uri(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let svg = code.render::<svg::Color>().min_dimensions(200, 200).quiet_zone(true).build();
    Some(format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// Store `step` as the method's `last_step`.
    Ok {
        step: u64,
    },
    Wrong,
    Replayed,
}

/// Accepts the code for steps now-1, now, now+1 (±1 step skew). A code whose step
/// is <= `last_step` is `Replayed` (not `Wrong`). Spaces in the input are ignored.
pub fn check_totp(secret_b32: &str, code: &str, now: i64, last_step: Option<u64>) -> TotpCheck {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != usize::from(TOTP_DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return TotpCheck::Wrong;
    }
    let (Some(totp), Ok(now)) = (build_totp(secret_b32), u64::try_from(now)) else {
        return TotpCheck::Wrong;
    };
    let current = now / TOTP_STEP;
    let skew = u64::from(TOTP_SKEW);
    let mut accepted = None;
    let mut replayed = false;
    for step in current.saturating_sub(skew)..=current.saturating_add(skew) {
        let expected = totp.generate(step.saturating_mul(TOTP_STEP)).to_string();
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            if last_step.is_some_and(|last| step <= last) {
                replayed = true;
            } else {
                // Keep the highest matching step: should one code match two steps,
                // recording the lower one would let it be replayed for the other.
                accepted = Some(step);
            }
        }
    }
    match (accepted, replayed) {
        (Some(step), _) => TotpCheck::Ok { step },
        (None, true) => TotpCheck::Replayed,
        (None, false) => TotpCheck::Wrong,
    }
}

/// The code for the step containing `unix`; `None` for a bad secret or negative time.
pub fn totp_code_at(secret_b32: &str, unix: i64) -> Option<String> {
    let unix = u64::try_from(unix).ok()?;
    Some(build_totp(secret_b32)?.generate(unix).to_string())
}

fn build_totp(secret_b32: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(normalise_secret(secret_b32)).ok()?;
    // `build` (not `build_noncompliant`) rejects secrets under 128 bits.
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS)
        .with_skew(TOTP_SKEW)
        .with_step_duration(TOTP_STEP)
        .with_secret(secret)
        .build()
        .ok()
}

/// Base32 as typed or stored: uppercase, no spaces, no padding.
fn normalise_secret(secret_b32: &str) -> String {
    secret_b32.chars().filter(|c| !c.is_whitespace() && *c != '=').map(|c| c.to_ascii_uppercase()).collect()
}

/// A label part may not contain `:`; collapse it (and runs of whitespace) to one space.
fn label_part(s: &str) -> String {
    s.split(|c: char| c == ':' || c.is_whitespace()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// RFC 3986: everything but unreserved characters is percent-encoded (UTF-8 bytes).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            push_hex(&mut out, b, true);
        }
    }
    out
}

/// Appends `b` as two hex digits.
fn push_hex(out: &mut String, b: u8, upper: bool) {
    for nibble in [b >> 4, b & 0x0f] {
        let c = char::from_digit(u32::from(nibble), 16).unwrap_or('0');
        out.push(if upper { c.to_ascii_uppercase() } else { c });
    }
}

/// 10 recovery codes, shown once, formatted `xxxx-xxxx`; returns (plain codes, sha256 hex hashes).
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    let mut rng = rand::rng();
    let mut codes: Vec<String> = Vec::with_capacity(RECOVERY_CODES);
    while codes.len() < RECOVERY_CODES {
        let mut code = String::with_capacity(9);
        for i in 0..8 {
            if i == 4 {
                code.push('-');
            }
            let idx = rng.random_range(0..RECOVERY_ALPHABET.len());
            code.push(char::from(RECOVERY_ALPHABET.get(idx).copied().unwrap_or(b'x')));
        }
        // Collisions are astronomically rare, but distinctness is cheap to guarantee.
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let hashes = codes.iter().map(|c| hash_code(c)).collect();
    (codes, hashes)
}

/// The index of the hash `input` matches. Compares against every hash so timing
/// does not reveal which one matched; the caller removes it (single use).
pub fn match_recovery_code(input: &str, hashes: &[String]) -> Option<usize> {
    if normalise_code(input).is_empty() {
        return None;
    }
    let candidate = hash_code(input);
    let mut found = Choice::from(0);
    let mut index = 0u64;
    for (i, hash) in hashes.iter().enumerate() {
        let hit = candidate.as_bytes().ct_eq(hash.as_bytes());
        index.conditional_assign(&(i as u64), hit & !found);
        found |= hit;
    }
    if bool::from(found) { usize::try_from(index).ok() } else { None }
}

/// Email one-time passcode: 8 random digits (leading zeros allowed).
pub fn new_email_otp() -> String {
    format!("{:08}", rand::rng().random_range(0..100_000_000u32))
}

/// SHA-256 hex of the normalised code. A fast digest because the codes are random
/// and only ever guessed online, under the lockout.
pub fn hash_code(code: &str) -> String {
    let d = digest::digest(&digest::SHA256, normalise_code(code).as_bytes());
    let mut hex = String::with_capacity(64);
    for &b in d.as_ref() {
        push_hex(&mut hex, b, false);
    }
    hex
}

/// Constant-time check of `input` against a stored `hash_code` hash.
pub fn code_matches(input: &str, hash: &str) -> bool {
    !normalise_code(input).is_empty() && bool::from(hash_code(input).as_bytes().ct_eq(hash.as_bytes()))
}

/// Trim, lowercase, drop whitespace and dashes: users retype codes loosely.
fn normalise_code(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}

/// Failure bookkeeping for lockouts (5 wrong codes in 15 minutes lock for 15 minutes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lockout {
    /// Times of recent failures, pruned to the window on each new failure.
    pub failures: Vec<i64>,
    pub locked_until: Option<i64>,
}

impl Lockout {
    pub fn is_locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Records a failure at `now`; returns true if this failure starts a lock.
    /// While already locked nothing is recorded (callers should not check codes then),
    /// so a lock is never extended by further attempts.
    pub fn record_failure(&mut self, now: i64, max: usize, window: i64, lock_for: i64) -> bool {
        if self.is_locked(now) {
            return false;
        }
        self.locked_until = None;
        let cutoff = now.saturating_sub(window);
        self.failures.retain(|&t| t > cutoff);
        self.failures.push(now);
        if self.failures.len() >= max.max(1) {
            self.failures.clear();
            self.locked_until = Some(now.saturating_add(lock_for));
            return true;
        }
        false
    }

    /// After a successful check (or an admin reset).
    pub fn clear(&mut self) {
        self.failures.clear();
        self.locked_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B SHA-1 secret "12345678901234567890", base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const UPN: &str = "sally_contoso.example#EXT#@fabrikam.example";

    fn step_of(t: i64) -> u64 {
        t as u64 / TOTP_STEP
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        assert_eq!(Secret::from(b"12345678901234567890".to_vec()).to_base32(), RFC_SECRET);
        for (t, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(totp_code_at(RFC_SECRET, t).as_deref(), Some(code), "T={t}");
            assert_eq!(check_totp(RFC_SECRET, code, t, None), TotpCheck::Ok { step: step_of(t) });
        }
    }

    #[test]
    fn secret_input_is_lenient() {
        let lower = RFC_SECRET.to_lowercase();
        assert_eq!(totp_code_at(&lower, 59).as_deref(), Some("287082"));
        assert_eq!(totp_code_at("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ", 59).as_deref(), Some("287082"));
    }

    #[test]
    fn bad_secret_or_time() {
        assert_eq!(totp_code_at("not base32!", 59), None);
        // 80 bits: below the RFC minimum of 128.
        assert_eq!(totp_code_at("GEZDGNBVGY3TQOJQ", 59), None);
        assert_eq!(totp_code_at(RFC_SECRET, -1), None);
        assert_eq!(check_totp("GEZDGNBVGY3TQOJQ", "287082", 59, None), TotpCheck::Wrong);
        assert_eq!(check_totp(RFC_SECRET, "287082", -5, None), TotpCheck::Wrong);
    }

    #[test]
    fn skew_one_step_each_way() {
        let t = 1_700_000_015;
        let step = step_of(t);
        for delta in [-1i64, 0, 1] {
            let code = totp_code_at(RFC_SECRET, t + delta * 30).unwrap();
            assert_eq!(check_totp(RFC_SECRET, &code, t, None), TotpCheck::Ok { step: (step as i64 + delta) as u64 });
        }
        for delta in [-2i64, 2] {
            let code = totp_code_at(RFC_SECRET, t + delta * 30).unwrap();
            assert_eq!(check_totp(RFC_SECRET, &code, t, None), TotpCheck::Wrong, "delta={delta}");
        }
    }

    #[test]
    fn replays_are_reported() {
        let t = 1_700_000_015;
        let code = totp_code_at(RFC_SECRET, t).unwrap();
        let TotpCheck::Ok { step } = check_totp(RFC_SECRET, &code, t, None) else { panic!("first use") };
        // Same code again, same or next step.
        assert_eq!(check_totp(RFC_SECRET, &code, t, Some(step)), TotpCheck::Replayed);
        assert_eq!(check_totp(RFC_SECRET, &code, t + 30, Some(step)), TotpCheck::Replayed);
        // An older step's code, still inside the skew window.
        let older = totp_code_at(RFC_SECRET, t - 30).unwrap();
        assert_eq!(check_totp(RFC_SECRET, &older, t, Some(step)), TotpCheck::Replayed);
        // The next step's code is fresh.
        let next = totp_code_at(RFC_SECRET, t + 30).unwrap();
        assert_eq!(check_totp(RFC_SECRET, &next, t + 30, Some(step)), TotpCheck::Ok { step: step + 1 });
    }

    #[test]
    fn wrong_and_malformed_codes() {
        let t = 1_700_000_015;
        let good = totp_code_at(RFC_SECRET, t).unwrap();
        let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert_eq!(check_totp(RFC_SECRET, &wrong, t, None), TotpCheck::Wrong);
        for bad in ["", "12345", "1234567", "12a456", "abcdef", "+12345", "-12345", "１２３４５６"] {
            assert_eq!(check_totp(RFC_SECRET, bad, t, None), TotpCheck::Wrong, "{bad:?}");
        }
        // Grouped as authenticator apps show it.
        let spaced = format!(" {} {} ", &good[..3], &good[3..]);
        assert_eq!(check_totp(RFC_SECRET, &spaced, t, None), TotpCheck::Ok { step: step_of(t) });
    }

    #[test]
    fn enrollment_round_trip() {
        let e = new_enrollment("Fabrikam", UPN);
        let decoded = Secret::try_from_base32(&e.secret_b32).unwrap();
        assert_eq!(decoded.as_bytes().len(), 20);
        assert_ne!(new_enrollment("Fabrikam", UPN).secret_b32, e.secret_b32);
        assert!(e.qr_svg_data_uri.starts_with("data:image/svg+xml;base64,"));
        let svg = STANDARD.decode(e.qr_svg_data_uri.trim_start_matches("data:image/svg+xml;base64,")).unwrap();
        assert!(String::from_utf8(svg).unwrap().contains("<svg"));
        assert!(!format!("{e:?}").contains(&e.secret_b32));
        // The enrolled secret works with our own checker.
        let t = 1_700_000_000;
        let code = totp_code_at(&e.secret_b32, t).unwrap();
        assert_eq!(check_totp(&e.secret_b32, &code, t, None), TotpCheck::Ok { step: step_of(t) });
    }

    #[test]
    fn otpauth_uri_encodes_issuer_and_upn() {
        let uri = otpauth_uri(RFC_SECRET, "Fabrikam Inc", UPN);
        assert_eq!(
            uri,
            "otpauth://totp/Fabrikam%20Inc:sally_contoso.example%23EXT%23%40fabrikam.example\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30&issuer=Fabrikam%20Inc"
        );
        // An independent parser reads back the same parameters.
        let parsed = Totp::from_url(&uri).unwrap();
        assert_eq!(parsed.account_name(), UPN);
        assert_eq!(parsed.issuer(), Some("Fabrikam Inc"));
        assert_eq!(parsed.digits(), 6);
        assert_eq!(parsed.step(), 30);
        assert_eq!(parsed.algorithm(), Algorithm::SHA1);
        assert_eq!(parsed.generate(59).to_string(), "287082");
    }

    #[test]
    fn qr_too_long_is_empty_not_a_panic() {
        assert_eq!(qr_svg_data_uri(&"x".repeat(5000)), None);
        let e = new_enrollment(&"Very Long Tenant ".repeat(200), UPN);
        assert!(e.qr_svg_data_uri.is_empty());
        assert!(!e.secret_b32.is_empty());
    }

    #[test]
    fn otpauth_uri_odd_names() {
        let uri = otpauth_uri(&RFC_SECRET.to_lowercase(), "Contoso: R&D / Ünïcode", "a:b@x.example");
        let parsed = Totp::from_url(&uri).unwrap();
        assert_eq!(parsed.issuer(), Some("Contoso R&D / Ünïcode"));
        assert_eq!(parsed.account_name(), "a b@x.example");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"));
        // No issuer: no prefix, no parameter.
        let uri = otpauth_uri(RFC_SECRET, "  ", UPN);
        assert!(uri.starts_with("otpauth://totp/sally_contoso.example%23EXT%23%40fabrikam.example?"));
        assert!(!uri.contains("issuer="));
    }

    #[test]
    fn recovery_codes() {
        let (codes, hashes) = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(hashes.len(), RECOVERY_CODES);
        let mut distinct = codes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 9);
            assert_eq!(code.as_bytes()[4], b'-');
            assert!(code.bytes().filter(|&b| b != b'-').all(|b| RECOVERY_ALPHABET.contains(&b)), "{code}");
        }
        // Each code matches exactly its own hash; the caller then removes it.
        let mut remaining = hashes.clone();
        for code in &codes {
            let i = match_recovery_code(code, &remaining).unwrap();
            assert_eq!(remaining[i], hash_code(code));
            remaining.remove(i);
            assert_eq!(match_recovery_code(code, &remaining), None, "single use");
        }
        assert!(remaining.is_empty());
    }

    #[test]
    fn recovery_code_normalisation() {
        let (codes, hashes) = new_recovery_codes();
        let code = &codes[3];
        let bare = code.replace('-', "");
        for input in [
            code.to_uppercase(),
            format!("  {code}  "),
            bare.clone(),
            format!("{} {}", &bare[..4], &bare[4..]),
            format!("{}--{}", &bare[..2].to_uppercase(), &bare[2..]),
        ] {
            assert_eq!(match_recovery_code(&input, &hashes), Some(3), "{input:?}");
        }
        for input in ["", "  ", "----", "aaaa-aaaa", &bare[..7]] {
            assert_eq!(match_recovery_code(input, &hashes), None, "{input:?}");
        }
        assert_eq!(match_recovery_code(code, &[]), None);
    }

    #[test]
    fn email_otp() {
        for _ in 0..200 {
            let otp = new_email_otp();
            assert_eq!(otp.len(), 8);
            assert!(otp.bytes().all(|b| b.is_ascii_digit()));
        }
        let otp = "01234567";
        let hash = hash_code(otp);
        assert_eq!(hash.len(), 64);
        assert!(code_matches(" 0123 4567 ", &hash));
        assert!(code_matches("0123-4567", &hash));
        assert!(!code_matches("01234568", &hash));
        assert!(!code_matches("1234567", &hash));
        assert!(!code_matches("", &hash_code("")));
        // Known SHA-256 of "abc".
        assert_eq!(hash_code("ABC"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn lockout_after_five_in_window() {
        let mut l = Lockout::default();
        let t = 1_000_000;
        for i in 0..4 {
            assert!(!l.record_failure(t + i * 60, MFA_MAX_FAILURES, MFA_FAILURE_WINDOW_SECS, MFA_LOCK_SECS));
            assert!(!l.is_locked(t + i * 60));
        }
        assert!(l.record_failure(t + 240, MFA_MAX_FAILURES, MFA_FAILURE_WINDOW_SECS, MFA_LOCK_SECS));
        assert!(l.is_locked(t + 240));
        assert!(l.is_locked(t + 240 + MFA_LOCK_SECS - 1));
        // Attempts while locked neither count nor extend the lock.
        assert!(!l.record_failure(t + 300, MFA_MAX_FAILURES, MFA_FAILURE_WINDOW_SECS, MFA_LOCK_SECS));
        assert_eq!(l.locked_until, Some(t + 240 + MFA_LOCK_SECS));
        assert!(!l.is_locked(t + 240 + MFA_LOCK_SECS));
        // After the lock the count starts afresh.
        let after = t + 240 + MFA_LOCK_SECS;
        assert!(!l.record_failure(after, MFA_MAX_FAILURES, MFA_FAILURE_WINDOW_SECS, MFA_LOCK_SECS));
        assert_eq!(l.failures, vec![after]);
        assert_eq!(l.locked_until, None);
    }

    #[test]
    fn no_lockout_when_spread_beyond_window() {
        let mut l = Lockout::default();
        let t = 1_000_000;
        // Five failures spanning 1000 s > 900 s: at most four are ever in the window.
        for i in 0..5 {
            assert!(!l.record_failure(t + i * 250, MFA_MAX_FAILURES, MFA_FAILURE_WINDOW_SECS, MFA_LOCK_SECS));
        }
        assert!(!l.is_locked(t + 1000));
        assert_eq!(l.failures.len(), 4);
        // Exactly at the window edge the oldest no longer counts.
        let mut l = Lockout::default();
        for i in 0..4 {
            l.record_failure(t + i, 5, 900, 900);
        }
        assert!(!l.record_failure(t + 900, 5, 900, 900));
        assert_eq!(l.failures, vec![t + 1, t + 2, t + 3, t + 900]);
        assert!(l.record_failure(t + 900, 5, 900, 900));
    }

    #[test]
    fn lockout_clear_and_serde() {
        let mut l = Lockout::default();
        for i in 0..5 {
            l.record_failure(i, 5, 900, 900);
        }
        assert!(l.is_locked(10));
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Lockout>(&json).unwrap(), l);
        l.clear();
        assert!(!l.is_locked(10));
        assert_eq!(l, Lockout::default());
    }

    #[test]
    fn totp_method_record() {
        let a = TotpMethod::new(RFC_SECRET.to_string(), 42);
        let b = TotpMethod::new(RFC_SECRET.to_string(), 42);
        assert_ne!(a.id, b.id);
        assert_eq!(a.created_at, 42);
        assert_eq!(a.last_step, None);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<TotpMethod>(&json).unwrap(), a);
    }
}
