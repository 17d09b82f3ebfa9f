//! The real binary as a process: restart on the same data dir, key rotation, CLI errors.
use std::path::Path;
use std::process::Stdio;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

pub struct Server {
    pub child: Child,
    pub url: String,
    pub creds: serde_json::Value,
}

/// The URL a started `gatehouse serve` prints in its listening line (within 30 s); its
/// stdout is drained afterwards so the child never blocks on a full pipe.
pub async fn listening_url(child: &mut tokio::process::Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("gatehouse listening on ") {
                return url.to_string();
            }
        }
        panic!("gatehouse exited before listening");
    })
    .await
    .expect("listening line within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    url
}

pub async fn start(data_dir: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("GATEHOUSE__ARGON2__MEMORY_KIB", "1024")
        .env("GATEHOUSE__ARGON2__ITERATIONS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("gatehouse starts");
    let url = listening_url(&mut child).await;
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("demo-credentials.json")).unwrap()).unwrap();
    assert_eq!(creds["url"], url.as_str());
    Server { child, url, creds }
}

impl Server {
    pub fn password(&self, login: &str) -> String {
        self.creds["users"].as_array().unwrap().iter().find(|u| u["login"] == login).unwrap()["password"]
            .as_str()
            .unwrap()
            .into()
    }
    pub fn rp(&self, tenant: &str) -> Rp {
        let secret =
            self.creds["clients"].as_array().unwrap().iter().find(|c| c["tenant"] == tenant).unwrap()["client_secret"]
                .as_str()
                .unwrap();
        Rp {
            base: self.url.clone(),
            tenant: tenant.into(),
            client_id: "test-rp".into(),
            secret: Some(secret.into()),
            redirect_uri: "http://127.0.0.1:9/callback".into(),
            http: plain_client(),
        }
    }
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
        self.child.wait().await.unwrap();
    }
    async fn kids(&self) -> Vec<String> {
        self.rp("fabrikam").jwks().await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect()
    }
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

#[tokio::test]
async fn restart_on_the_same_data_dir_keeps_keys_users_and_refresh_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let login = "iw@fabrikam.example";
    let password = server.password(login);
    let rp = server.rp("fabrikam");
    let (tokens, _) = rp.sign_in(&Browser::new(&server.url), login, &password, &[]).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let kids = server.kids().await;
    let first_url = server.url.clone();
    // kill -9: what the client was given must already be on disk.
    server.kill().await;

    let again = start(dir.path()).await;
    assert_eq!(again.password(login), password, "seeded once, credentials kept");
    assert_eq!(again.kids().await, kids, "same signing keys");
    let rp = again.rp("fabrikam");
    let old_issuer = format!("{}/fabrikam/v2.0", first_url);
    let old_id = rp.verify_from(tokens["id_token"].as_str().unwrap(), "JWT", &old_issuer).await;
    assert_eq!(old_id["aud"], "test-rp", "tokens from before the restart still verify against the JWKS");
    let (status, body) = rp.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "refresh token survives the restart: {body}");
    let (tokens2, _) = rp.sign_in(&Browser::new(&again.url), login, &password, &[]).await;
    assert!(tokens2["id_token"].is_string(), "users survive the restart");
    again.kill().await;
}

async fn cli(args: &[&str], data_dir: &Path) -> std::process::Output {
    Command::new(BIN).args(args).arg("--data-dir").arg(data_dir).output().await.unwrap()
}

#[tokio::test]
async fn key_rotation_publishes_at_once_and_signs_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let admin = server.creds["admin"].clone();
    let old_kids = server.kids().await;
    let first_url = server.url.clone();
    let app_token = |s: &Server| {
        let rp = Rp {
            client_id: admin["client_id"].as_str().unwrap().into(),
            secret: Some(admin["client_secret"].as_str().unwrap().into()),
            ..s.rp("fabrikam")
        };
        async move {
            let (status, body) = rp.token(&[("grant_type", "client_credentials")]).await;
            assert_eq!(status, StatusCode::OK);
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let before = app_token(&server).await;

    let busy = cli(&["keys", "rotate"], dir.path()).await;
    assert!(!busy.status.success(), "rotation refuses a data dir in use");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"), "{}", String::from_utf8_lossy(&busy.stderr));
    server.kill().await;

    let out = cli(&["keys", "rotate", "--grace-secs", "3600"], dir.path()).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = start(dir.path()).await;
    let kids = server.kids().await;
    assert_eq!(kids.len(), old_kids.len() + 1, "the new key is published at once");
    let during = app_token(&server).await;
    assert_eq!(kid_of(&during), kid_of(&before), "the old key signs during the grace period");
    server.kill().await;

    let out = cli(&["keys", "rotate", "--grace-secs", "0"], dir.path()).await;
    assert!(out.status.success());
    let server = start(dir.path()).await;
    let after = app_token(&server).await;
    assert!(!old_kids.contains(&kid_of(&after)), "a key past its grace period signs");
    let kids = server.kids().await;
    assert!(kids.contains(&kid_of(&before)), "the retired key stays until its tokens expire");
    let first_issuer = format!("{first_url}/fabrikam/v2.0");
    server.rp("fabrikam").verify_from(&before, "at+jwt", &first_issuer).await;
    server.kill().await;
    let listing = cli(&["keys", "list"], dir.path()).await;
    assert!(listing.status.success());
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.contains(&kid_of(&after)) && text.contains(&kid_of(&before)), "{text}");
}

#[tokio::test]
async fn unknown_configuration_keys_are_rejected_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gatehouse.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:0\"\nfavourite_colour = \"blue\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&file)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("favourite_colour"), "{err}");
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .env("GATEHOUSE__TOKENS__ACESS_TOKEN_SECS", "5")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("acess_token_secs"));
}

/// A database without a key-encryption key (or with a malformed one) is refused before
/// anything is opened, with a message that says what to do; nothing is written.
#[tokio::test]
async fn postgres_without_a_valid_key_encryption_key_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |kek: Option<&'static str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--database-url", "postgres://nobody@127.0.0.1:1/none"])
            .arg("--data-dir")
            .arg(&data)
            .env_remove("GATEHOUSE__KEY_ENCRYPTION_KEY");
        if let Some(k) = kek {
            cmd.env("GATEHOUSE__KEY_ENCRYPTION_KEY", k);
        }
        cmd.output()
    };
    let out = serve(None).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key_encryption_key is required with database_url"), "{err}");
    assert!(err.contains("head -c 32 /dev/urandom | base64"), "says how to make one: {err}");
    let out = serve(Some("c2hvcnQ=")).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exactly 32 bytes"), "{err}");
    assert!(!data.exists(), "nothing was created");
}
