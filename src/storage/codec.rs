//! Record encoding: one version byte, then JSON (fields evolve with serde defaults).
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Result, StoreError};

const VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![VERSION];
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&VERSION, body)) => serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(e.to_string())),
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record version {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Acr, Amr, AuthRequest, Authentication, EMAIL_OTP_ISSUER, ResponseMode};

    /// An `Authentication` as stored when `amr` and `acr` were `Vec<String>` and `String`.
    const STRINGLY: &[u8] = b"\x01{\"user_id\":\"00000000-0000-0000-0000-000000000007\",\"auth_time\":1700000000,\
        \"amr\":[\"pwd\",\"fed\",\"otp\",\"mfa\"],\"acr\":\"2\",\"idp\":\"mail\",\"epoch\":3,\"device_id\":null}";

    #[test]
    fn amr_and_acr_records_keep_their_string_encoding() {
        let typed = Authentication {
            user_id: uuid::Uuid::from_u128(7).into(),
            auth_time: 1_700_000_000,
            amr: vec![Amr::Pwd, Amr::Fed, Amr::Otp, Amr::Mfa],
            acr: Acr::MultiFactor,
            idp: Some(EMAIL_OTP_ISSUER.into()),
            epoch: 3,
            mfa_time: None,
            device_id: None,
            home: None,
        };
        assert_eq!(decode::<Authentication>(STRINGLY).unwrap(), typed);
        assert_eq!(encode(&typed).unwrap(), STRINGLY);
        let single = String::from_utf8(STRINGLY.to_vec()).unwrap().replace("\"acr\":\"2\"", "\"acr\":\"1\"");
        assert_eq!(decode::<Authentication>(single.as_bytes()).unwrap().acr, Acr::SingleFactor);
    }

    #[test]
    fn acr_values_keep_their_string_encoding() {
        let request = AuthRequest {
            client_id: "c".into(),
            redirect_uri: "https://rp.example/cb".into(),
            response_mode: ResponseMode::Query,
            scope: vec!["openid".into()],
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: vec![],
            max_age: None,
            login_hint: None,
            acr_values: vec![Acr::MultiFactor, Acr::SingleFactor],
            replaces_session: None,
        };
        let stored = encode(&request).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&stored[1..]).unwrap();
        assert_eq!(json["acr_values"], serde_json::json!(["2", "1"]));
        assert_eq!(decode::<AuthRequest>(&stored).unwrap(), request);
    }

    #[test]
    fn users_stored_before_passkeys_decode_and_passkeys_round_trip() {
        let user = crate::model::User { display_name: "Ivan".into(), ..Default::default() };
        let mut json = serde_json::to_value(&user).unwrap();
        json.as_object_mut().unwrap().remove("passkeys");
        let mut old = vec![VERSION];
        old.extend(serde_json::to_vec(&json).unwrap());
        assert_eq!(decode::<crate::model::User>(&old).unwrap(), user);
        let with = crate::model::User {
            passkeys: vec![
                serde_json::from_value(serde_json::json!({
                    "id": "p1", "display_name": "Passkey", "aaguid": uuid::Uuid::nil().to_string(),
                    "created_at": 120, "credential": {"cred": {"counter": 3}},
                }))
                .unwrap(),
            ],
            ..user
        };
        assert_eq!(decode::<crate::model::User>(&encode(&with).unwrap()).unwrap(), with);
    }
}
