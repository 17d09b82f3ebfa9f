//! Directory reads against one tenant of growing size: does a Graph page cost the same with
//! 1,000 guests as with 100,000? Prints one line per size and request (median and p90 of
//! `BENCH_SAMPLES` sequential requests over loopback). Run with `bench/directory`
//! (`cargo run --release --example directory_scale -- 1000 20000 100000`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use gatehouse::config::Config;
use gatehouse::model::{ExternalUserState, Identity, User, UserType};
use gatehouse::startup::Application;

fn guest(tenant: gatehouse::model::TenantId, i: usize, now: i64) -> User {
    let mail = format!("guest{i:06}@partner{}.example", i % 97);
    User {
        id: gatehouse::model::UserId::new(),
        tenant_id: tenant,
        user_principal_name: gatehouse::model::guest_upn(&mail, "fabrikam.example"),
        mail: mail.clone(),
        display_name: format!("Guest {i}"),
        user_type: UserType::Guest,
        account_enabled: true,
        creation_type: Some("Invitation".into()),
        // Every other guest has redeemed: they hold a seat.
        external_user_state: Some(if i.is_multiple_of(2) {
            ExternalUserState::Accepted
        } else {
            ExternalUserState::PendingAcceptance
        }),
        identities: vec![Identity {
            sign_in_type: "federated".into(),
            issuer: "https://partner.example".into(),
            issuer_assigned_id: format!("sub-{i}"),
        }],
        created_at: now,
        ..Default::default()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(client: &reqwest::Client, url: &str, token: &str, samples: usize) -> (f64, f64) {
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let resp = client.get(url).bearer_auth(token).send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        resp.bytes().await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.9))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number of guests")).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 20_000, 100_000] } else { sizes };
    let samples: usize = std::env::var("BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    println!("guests   request                                   p50 ms   p90 ms");
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path().to_path_buf());
        config.workers = 1;
        let app = Application::build(config, std::sync::Arc::new(gatehouse::clock::SystemClock)).await.unwrap();
        let state = app.state();
        let creds = app.demo_credentials().unwrap().clone();
        let base = app.url().to_string();
        tokio::spawn(app.run_until_stopped());
        let tenant = state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
        let now = state.now();
        let started = Instant::now();
        let mut probe = String::new();
        for i in 0..n {
            let g = guest(tenant.id, i, now);
            if i == n / 2 {
                probe = g.user_principal_name.clone();
            }
            state.store.insert_user(&g).await.unwrap();
        }
        state.store.flush().await.unwrap();
        eprintln!("seeded {n} guests in {:.1} s", started.elapsed().as_secs_f64());

        let client = reqwest::Client::new();
        let token: serde_json::Value = client
            .post(format!("{base}/fabrikam/oauth2/v2.0/token"))
            .basic_auth(&creds.admin.client_id, Some(&creds.admin.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().unwrap().to_string();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let graph = format!("{base}/graph/v1.0");
        let second_page = {
            let first: serde_json::Value = client
                .get(format!("{graph}/users?$top=100"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            first["@odata.nextLink"].as_str().unwrap().to_string()
        };
        let cases = [
            ("GET /users?$top=100", format!("{graph}/users?$top=100")),
            ("GET /users?$top=100 (next page)", second_page),
            (
                "GET /users?$filter=userType eq 'Guest'",
                format!("{graph}/users?$top=100&$filter={}", enc("userType eq 'Guest'")),
            ),
            (
                "GET /users?$filter=userPrincipalName eq",
                format!("{graph}/users?$filter={}", enc(&format!("userPrincipalName eq '{probe}'"))),
            ),
            ("GET /subscribedSkus", format!("{graph}/subscribedSkus")),
        ];
        for (name, url) in cases {
            let (p50, p90) = measure(&client, &url, &token, samples).await;
            println!("{n:>7}  {name:<40} {p50:>7.2}  {p90:>7.2}");
        }
    }
}
