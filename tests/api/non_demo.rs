//! The real binary without `--demo` (every other test runs the demo): it starts on a new data
//! dir and answers health checks, but seeds nothing, writes no demo credentials, serves no
//! outbox, stub IdPs or demo apps, and shows no demo passwords — also on a data dir a demo once
//! seeded.
use std::path::Path;
use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;
use crate::process::BIN;

pub struct Plain {
    child: Child,
    pub url: String,
}

/// `gatehouse serve` (no `--demo`) on `data_dir`, port 0; returns once it prints its URL.
pub async fn start_plain(data_dir: &Path) -> Plain {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("GATEHOUSE__DEMO")
        .env_remove("GATEHOUSE__STUBS")
        .env_remove("GATEHOUSE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("gatehouse starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("gatehouse listening on ") {
                return url.to_string();
            }
            printed.push(line);
        }
        panic!("gatehouse exited before listening");
    })
    .await
    .expect("listening line within 30 s");
    assert!(printed.iter().all(|l| !l.contains("demo")), "no demo output without --demo: {printed:?}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Plain { child, url }
}

impl Plain {
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = plain_client().get(format!("{}{path}", self.url)).send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
        self.child.wait().await.unwrap();
    }

    /// What a demo serves, none of which may be served here; `passwords` must not appear on `/`.
    pub async fn assert_no_demo(&self, passwords: &[String]) {
        let (status, body) = self.get("/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        let (status, body) = self.get("/health/live").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"status":"UP"}"#));
        let (status, body) = self.get("/health/ready").await;
        let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ready, serde_json::json!({"status": "UP", "checks": [{"name": "store", "status": "UP"}]}));
        let (status, home) = self.get("/").await;
        assert_eq!(status, StatusCode::OK);
        let page = Page { status, location: None, body: home.clone(), url: self.url.clone() };
        assert!(!page.has("section#demo-users") && !page.has("section#demo-apps"), "{home}");
        for p in passwords {
            assert!(!home.contains(p.as_str()), "a demo password is on the home page");
        }
        let (status, _) = self.get("/outbox").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the outbox is a demo page");
        for stub in ["social", "msa"] {
            let (status, _) = self.get(&format!("/stub/{stub}/.well-known/openid-configuration")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "the {stub} stub is off without --demo");
        }
        let (status, _) = self.get("/demo/foo").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "no demo relying party");
    }
}

#[tokio::test]
async fn without_demo_a_new_data_dir_starts_empty_and_serves_no_demo_surface() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_plain(dir.path()).await;
    server.assert_no_demo(&[]).await;
    assert!(!dir.path().join("demo-credentials.json").exists(), "no demo credentials are written");

    // No tenant was seeded: discovery answers the unknown-tenant error page, and the token
    // endpoint an OAuth error, never a document or a token.
    let (status, body) = server.get("/fabrikam/v2.0/.well-known/openid-configuration").await;
    let page = Page { status, location: None, body, url: server.url.clone() };
    assert_eq!((page.status, page.error_code().as_deref()), (StatusCode::NOT_FOUND, Some("unknown_tenant")));
    let resp = plain_client()
        .post(format!("{}/fabrikam/oauth2/v2.0/token", server.url))
        .form(&[("grant_type", "client_credentials"), ("client_id", "gatehouse-admin"), ("client_secret", "x")])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(body["error_description"].as_str().unwrap().contains("unknown tenant"), "{body}");
    server.kill().await;
}

#[tokio::test]
async fn without_demo_a_data_dir_a_demo_seeded_shows_no_demo_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let demo = crate::process::start(dir.path()).await;
    let passwords: Vec<String> =
        demo.creds["users"].as_array().unwrap().iter().map(|u| u["password"].as_str().unwrap().to_string()).collect();
    assert!(!passwords.is_empty());
    let (status, home) = {
        let resp = plain_client().get(&demo.url).send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    assert!(status == StatusCode::OK && home.contains(&passwords[0]), "the demo shows its passwords (control)");
    demo.kill().await;

    let server = start_plain(dir.path()).await;
    server.assert_no_demo(&passwords).await;
    // The tenants stay (they are real data now), with their discovery documents.
    let (status, doc) = server.get("/fabrikam/v2.0/.well-known/openid-configuration").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    server.kill().await;
}
