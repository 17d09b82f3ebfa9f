//! Graceful shutdown (DESIGN §15): SIGTERM during a bounded load of the real binary — no
//! request cut (each gets its whole answer, or its connection is refused before anything is
//! sent), exit status 0, and what was written before is there after a restart.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::logs::start_logged;

const CLIENTS: usize = 4;
const PER_CLIENT: usize = 50;

/// How one request ended.
#[derive(Debug)]
enum End {
    /// Status and the whole body arrived.
    Complete(StatusCode),
    /// The connection was refused: nothing was sent.
    Refused,
    /// Anything else: an answer cut short, or a connection dropped after the request went out.
    Cut(String),
}

async fn one(http: &reqwest::Client, url: &str, i: usize) -> End {
    // Two reads, alternately (discovery reads the tenant from the store).
    let req = if i.is_multiple_of(2) {
        http.get(format!("{url}/fabrikam/discovery/v2.0/keys"))
    } else {
        http.get(format!("{url}/fabrikam/v2.0/.well-known/openid-configuration"))
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return End::Refused,
        Err(e) => return End::Cut(format!("request {i}: {e:?}")),
    };
    let status = resp.status();
    let declared = resp.content_length();
    match resp.bytes().await {
        Ok(body) if declared.is_none_or(|n| n == body.len() as u64) && !body.is_empty() => End::Complete(status),
        Ok(body) => End::Cut(format!("request {i}: {} of {declared:?} bytes", body.len())),
        Err(e) => End::Cut(format!("request {i}: body: {e:?}")),
    }
}

#[tokio::test]
async fn sigterm_under_load_cuts_no_request_exits_zero_and_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_logged(dir.path(), &[]).await;
    let token = server.admin_token().await;
    let body = json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Written before SIGTERM",
        "isTrusted": false, "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "192.0.2.0/24"}]});
    let (status, loc) =
        server.graph(Method::POST, "identity/conditionalAccess/namedLocations", &token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{loc}");
    let loc_id = loc["id"].as_str().unwrap().to_string();

    // CLIENTS clients, each sending PER_CLIENT requests one after another; SIGTERM goes out
    // once a quarter of them are answered, while the rest are still to come or in flight.
    let done = Arc::new(AtomicUsize::new(0));
    let quarter = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, done, quarter) = (server.url.clone(), done.clone(), quarter.clone());
        tasks.push(tokio::spawn(async move {
            let http = gatehouse::secrets::http_client_builder()
                .unwrap()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let mut ends = Vec::with_capacity(PER_CLIENT);
            for i in 0..PER_CLIENT {
                ends.push(one(&http, &url, i).await);
                if done.fetch_add(1, Ordering::SeqCst) + 1 == CLIENTS * PER_CLIENT / 4 {
                    quarter.notify_one();
                }
            }
            ends
        }));
    }
    quarter.notified().await;
    let exit = server.terminate().await;
    let mut ends = Vec::new();
    for t in tasks {
        ends.extend(t.await.unwrap());
    }

    assert_eq!(ends.len(), CLIENTS * PER_CLIENT);
    let cut: Vec<&String> = ends.iter().filter_map(|e| if let End::Cut(why) = e { Some(why) } else { None }).collect();
    assert!(cut.is_empty(), "requests cut by the shutdown: {cut:?}");
    let complete = ends.iter().filter(|e| matches!(e, End::Complete(_))).count();
    let refused = ends.iter().filter(|e| matches!(e, End::Refused)).count();
    assert!(complete >= CLIENTS * PER_CLIENT / 4, "the requests before SIGTERM were answered: {complete}");
    assert_eq!(complete + refused, CLIENTS * PER_CLIENT);
    for e in &ends {
        if let End::Complete(status) = e {
            assert_eq!(*status, StatusCode::OK, "a request answered during the shutdown is answered in full");
        }
    }
    assert_eq!(exit.code(), Some(0), "a graceful shutdown exits 0");
    let log = server.lines().join("\n");
    assert!(log.contains("SIGTERM") && log.contains("stopped"), "the shutdown is logged:\n{log}");
    let after = gatehouse::secrets::http_client_builder()
        .unwrap()
        .build()
        .unwrap()
        .get(format!("{}/health/live", server.url))
        .send()
        .await;
    assert!(after.is_err_and(|e| e.is_connect()), "nothing listens after the exit");

    // The same data dir again: the change made before SIGTERM is there.
    let again = start_logged(dir.path(), &[]).await;
    let token = again.admin_token().await;
    let path = format!("identity/conditionalAccess/namedLocations/{loc_id}");
    let (status, kept) = again.graph(Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(kept["displayName"], "Written before SIGTERM");
}

#[tokio::test]
async fn sigint_is_graceful_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_logged(dir.path(), &[]).await;
    let ok = gatehouse::secrets::http_client_builder()
        .unwrap()
        .build()
        .unwrap()
        .get(format!("{}/health/live", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let pid = server.child.id().unwrap().to_string();
    assert!(tokio::process::Command::new("kill").args(["-INT", &pid]).status().await.unwrap().success());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(60), server.child.wait()).await.unwrap().unwrap();
    assert_eq!(exit.code(), Some(0), "SIGINT shuts down as SIGTERM does");
    let log = server.lines().join("\n");
    assert!(log.contains("SIGINT") && log.contains("stopped"), "{log}");
}
