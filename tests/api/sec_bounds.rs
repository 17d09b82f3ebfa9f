//! Resource bounds and files (issue 11, findings 23 and 29): the store is private to the
//! server's user, and a request body that trickles in is cut off.
use std::os::unix::fs::PermissionsExt;

use gatehouse::clock::Clock;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_dir_and_every_store_file_are_private_to_the_server() {
    let app = spawn_app().await;
    let data = app.state.config.data_dir.clone();
    assert_eq!(mode(&data), 0o700, "data dir {}", data.display());
    let mut files = 0;
    let mut stack = vec![data.join("db")];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            files += 1;
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    assert!(files > 0, "the store has files");
    // A data dir that exists with loose permissions is tightened at start.
    let loose = tempfile::tempdir().unwrap();
    std::fs::set_permissions(loose.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = gatehouse::storage::open(loose.path(), 1).unwrap();
    drop(store);
    assert_eq!(mode(loose.path()), 0o700);
}

#[tokio::test]
async fn totp_seeds_are_sealed_in_the_store_with_a_key_kept_outside_it() {
    let app = spawn_app().await;
    let browser = app.browser();
    let rp = app.rp("fabrikam");
    let iw = app.user("fabrikam", "iw@fabrikam.example").await;
    gatehouse::storage::modify_user(&app.state.store, &iw.tenant_id, &iw.id, |u| u.per_user_mfa = true).await.unwrap();
    let start = rp.authorize_url(&[]);
    let page = browser.sign_in(&start.url, "iw@fabrikam.example", &app.password("iw@fabrikam.example")).await;
    let secret = page.text("code#totp-secret").expect("proof-up shows the seed");
    let contains =
        async |needle: &[u8]| app.snapshot().await.iter().any(|(_, _, v)| v.windows(needle.len()).any(|w| w == needle));
    assert!(!contains(secret.as_bytes()).await, "the pending seed is sealed in the sign-in transaction");
    let form = page.form("totp-enroll").set("code", &totp_at(&secret, app.clock.now()));
    let shown = browser.post_abs(&page.url, &form).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
    assert!(!contains(secret.as_bytes()).await, "the enrolled seed is sealed on the user");
    let key = app.state.config.keys_dir().join("seal.key");
    assert_eq!(mode(&key), 0o600, "{}", key.display());
    assert!(!key.starts_with(app.state.config.data_dir.join("db")), "the key is not in the store");
    // The sealed seed still works: the next sign-in's challenge takes a code from it.
    app.clock.advance(30);
    let again = app.browser();
    let challenge =
        again.sign_in(&rp.authorize_url(&[]).url, "iw@fabrikam.example", &app.password("iw@fabrikam.example")).await;
    let done = again
        .post_abs(&challenge.url, &challenge.form("totp-challenge").set("code", &totp_at(&secret, app.clock.now())))
        .await;
    assert!(done.location.as_deref().is_some_and(|l| l.contains("code=")), "{}", done.body);
}

#[tokio::test]
async fn a_request_body_that_trickles_in_is_cut_off_at_the_deadline() {
    let app = spawn_with(|c| c.body_timeout_secs = 1).await;
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /fabrikam/oauth2/v2.0/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ng"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // Keep trickling one byte a little more often than the deadline, as the attack does;
    // the server must answer (or close) long before the 100 bytes could arrive.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed = false;
    for _ in 0..20 {
        match tokio::time::timeout(std::time::Duration::from_millis(300), conn.read(&mut buf)).await {
            Ok(Ok(0)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => {
                if conn.write_all(b"r").await.is_err() {
                    closed = true;
                    break;
                }
            }
        }
        if !answer.is_empty() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(closed || text.starts_with("HTTP/1.1 4"), "the slow body was not cut off: {text:?}");
    assert!(!text.contains("access_token"), "{text}");
}
