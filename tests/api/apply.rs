//! `gatehouse apply -f` and `gatehouse export` as processes on a temp data dir (no `--demo`):
//! the example file round-trips, a second apply changes nothing, a changed file plans exactly
//! its changes, a dry run or a bad file writes nothing, and the applied tenant signs in.
use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::helpers::*;
use crate::process::BIN;

const EXAMPLE: &str = include_str!("../../examples/tenants.toml");
const ALICE_PASSWORD: &str = "alice-example-password-1";

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the binary with the example's secrets in the environment.
async fn gatehouse(args: &[&str], data_dir: &Path) -> Out {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE__ARGON2__MEMORY_KIB", "1024")
        .env("GATEHOUSE__ARGON2__ITERATIONS", "1")
        .env("NORTHWIND_CRM_SECRET", "crm-example-secret")
        .env("NORTHWIND_ALICE_PASSWORD", ALICE_PASSWORD)
        .env("NORTHWIND_BOB_PASSWORD", "bob-example-password-1")
        .output()
        .await
        .expect("gatehouse runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Writes `text` beside the data dir and applies it.
async fn apply(dir: &Path, text: &str, extra: &[&str]) -> Out {
    let file = dir.join(format!("apply-{}.toml", rand::random::<u32>()));
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["apply", "-f", file.to_str().unwrap()];
    args.extend(extra);
    gatehouse(&args, &dir.join("data")).await
}

async fn export(dir: &Path) -> String {
    let out = gatehouse(&["export"], &dir.join("data")).await;
    assert!(out.ok, "export: {}", out.stderr);
    out.stdout
}

/// Every record of the (stopped) store.
async fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let store = gatehouse::storage::open(&dir.join("data"), 8).unwrap();
    let records = store.snapshot().await.unwrap();
    drop(store);
    records
}

/// The `+ create` / `~ update` lines of a plan.
fn changes(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("+ ") || l.starts_with("~ ")).collect()
}

async fn applied_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = apply(dir.path(), EXAMPLE, &[]).await;
    assert!(out.ok, "the example applies: {}", out.stderr);
    assert!(out.stdout.contains("+ create tenant northwind"), "{}", out.stdout);
    dir
}

#[tokio::test]
async fn the_example_round_trips_through_export_and_a_second_apply_changes_nothing() {
    let a = applied_example().await;
    let exported = export(a.path()).await;
    assert!(exported.starts_with("# gatehouse export: no client secrets and no passwords"), "{exported}");
    let body: String = exported.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    for secret in ["crm-example-secret", ALICE_PASSWORD, "argon2", "secret", "password"] {
        assert!(!body.contains(secret), "export holds no {secret}: {exported}");
    }
    for name in ["northwind-spa", "northwind-crm", "alice@northwind.example", "Sales", "Head office", "Guests need MFA"]
    {
        assert!(exported.contains(name), "export names {name}: {exported}");
    }

    // The same file again: an all-unchanged plan, and not one byte of the store changes.
    let before = snapshot(a.path()).await;
    let again = apply(a.path(), EXAMPLE, &[]).await;
    assert!(again.ok, "{}", again.stderr);
    assert!(changes(&again.stdout).is_empty(), "{}", again.stdout);
    assert!(again.stdout.contains("plan: 0 to create, 0 to update, = 8 unchanged"), "{}", again.stdout);
    assert!(before == snapshot(a.path()).await, "a second apply changes nothing");

    // The export applied to a fresh store exports the same file, and applies to the first
    // store as a no-op.
    let b = tempfile::tempdir().unwrap();
    let out = apply(b.path(), &exported, &[]).await;
    assert!(out.ok, "the export applies: {}", out.stderr);
    assert_eq!(export(b.path()).await, exported);
    let out = apply(a.path(), &exported, &[]).await;
    assert!(out.ok && changes(&out.stdout).is_empty(), "{}{}", out.stdout, out.stderr);
    assert!(before == snapshot(a.path()).await);
}

#[tokio::test]
async fn a_changed_file_plans_exactly_its_changes_and_a_dry_run_writes_nothing() {
    let dir = applied_example().await;
    let changed = EXAMPLE
        .replace("display_name = \"Bob Berg\"", "display_name = \"Robert Berg\"")
        .replace("\"http://127.0.0.1/callback\"]", "\"http://127.0.0.1/callback\", \"https://m.northwind.example/cb\"]")
        .replace("cidrs = [\"198.51.100.0/24\"]", "cidrs = [\"198.51.100.0/24\", \"2001:db8::/48\"]")
        + "\n[[tenants.users]]\nupn = \"carol@northwind.example\"\ndisplay_name = \"Carol Chen\"\n";
    let before = snapshot(dir.path()).await;
    let dry = apply(dir.path(), &changed, &["--dry-run"]).await;
    assert!(dry.ok, "{}", dry.stderr);
    let expected = vec![
        "~ update user northwind/bob@northwind.example: display_name",
        "+ create user northwind/carol@northwind.example",
        "~ update app northwind/northwind-spa: redirect_uris",
        "~ update location northwind/Head office: cidrs",
    ];
    assert_eq!(changes(&dry.stdout), expected, "{}", dry.stdout);
    assert!(dry.stdout.contains("dry run: nothing written"), "{}", dry.stdout);
    assert!(before == snapshot(dir.path()).await, "a dry run writes nothing");

    let real = apply(dir.path(), &changed, &[]).await;
    assert!(real.ok, "{}", real.stderr);
    assert_eq!(changes(&real.stdout), expected);
    let exported = export(dir.path()).await;
    for shown in ["Robert Berg", "https://m.northwind.example/cb", "2001:db8::/48", "carol@northwind.example"] {
        assert!(exported.contains(shown), "{shown} after apply: {exported}");
    }
    let again = apply(dir.path(), &changed, &[]).await;
    assert!(changes(&again.stdout).is_empty(), "{}", again.stdout);

    // A dry run on a fresh data dir writes nothing either.
    let fresh = tempfile::tempdir().unwrap();
    let empty = snapshot(fresh.path()).await;
    let dry = apply(fresh.path(), EXAMPLE, &["--dry-run"]).await;
    assert!(dry.ok && dry.stdout.contains("+ create tenant northwind"), "{}{}", dry.stdout, dry.stderr);
    assert!(empty == snapshot(fresh.path()).await);
    assert!(!export(fresh.path()).await.contains("northwind"));
}

#[tokio::test]
async fn a_bad_file_changes_nothing_and_names_the_path() {
    let dir = applied_example().await;
    let bad_policy = EXAMPLE.replace("Guests need MFA", "Guests need a teleporter").to_string()
        + "\n[[tenants.policies]]\ndisplayName = \"Broken\"\nstate = \"enabled\"\n\
           conditions.users.includeUsers = [\"All\"]\nconditions.applications.includeApplications = [\"All\"]\n\
           grantControls.operator = \"OR\"\ngrantControls.builtInControls = [\"teleport\"]\n";
    let cases = [
        (bad_policy, "tenants[0].policies[1].grantControls.builtInControls[0]: unknown variant `teleport`"),
        (
            EXAMPLE.replace("redirect_uris = [\"https://crm", "redirect_uri = [\"https://crm"),
            "tenants[0].apps[1].redirect_uri: unknown key, did you mean redirect_uris?",
        ),
        (
            EXAMPLE.replace("secret_env = \"NORTHWIND_CRM_SECRET\"", "secret = \"inline\""),
            "tenants[0].apps[1].secret: secrets are never inline",
        ),
        (
            EXAMPLE.replace("password_env = \"NORTHWIND_BOB_PASSWORD\"", "password = \"inline\""),
            "tenants[0].users[1].password: passwords are never inline",
        ),
        (
            EXAMPLE.replace("secret_env = \"NORTHWIND_CRM_SECRET\"", "secret_env = \"NO_SUCH_VARIABLE_SET\""),
            "tenants[0].apps[1]: environment variable NO_SUCH_VARIABLE_SET is not set",
        ),
        (
            EXAMPLE.replace("members = [\"alice", "members = [\"nobody@northwind.example\", \"alice"),
            "tenants[0].groups[0].members[0]: nobody@northwind.example is not a member",
        ),
        (
            EXAMPLE.replace(
                "conditions.users.includeUsers = [\"GuestsOrExternalUsers\"]",
                "conditions.users.includeGroups = [\"Nope\"]",
            ),
            "tenants[0].policies[0].conditions.users.includeGroups[0]: unknown \"Nope\"",
        ),
        (
            EXAMPLE.replace("cidrs = [\"198.51.100.0/24\"]", "cidrs = [\"198.51.100.0/33\"]"),
            "tenants[0].locations[0].cidrs[0]",
        ),
        (
            EXAMPLE.replace("grantControls.operator", "grantControl.operator"),
            "tenants[0].policies[0].grantControl: unknown key, did you mean grantControls?",
        ),
    ];
    let before = snapshot(dir.path()).await;
    let exported = export(dir.path()).await;
    for (text, path) in cases {
        let out = apply(dir.path(), &text, &[]).await;
        assert!(!out.ok, "refused: {path}: {}", out.stdout);
        assert!(out.stderr.contains(path), "error names {path}: {}", out.stderr);
        assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
        assert!(before == snapshot(dir.path()).await, "{path}: the store is unchanged");
    }
    assert_eq!(export(dir.path()).await, exported);
}

#[tokio::test]
async fn after_apply_the_served_public_client_signs_the_member_in_with_pkce() {
    let dir = applied_example().await;
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("GATEHOUSE__DEMO")
        .env_remove("GATEHOUSE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("gatehouse starts");
    let url = crate::process::listening_url(&mut child).await;
    let rp = Rp {
        base: url.clone(),
        tenant: "northwind".into(),
        client_id: "northwind-spa".into(),
        secret: None,
        redirect_uri: "http://127.0.0.1:9/callback".into(),
        http: plain_client(),
    };
    let browser = Browser::new(&url);
    let start = rp.authorize_url(&[("scope", "openid profile email")]);
    let mut page = browser.sign_in(&start.url, "alice@northwind.example", ALICE_PASSWORD).await;
    // Not a first-party app: the member consents once.
    if page.has("form#consent") {
        page = browser.submit(&page.form("consent").set("decision", "accept")).await;
    }
    let location = page.location.expect("redirect to the app");
    assert!(location.starts_with("http://127.0.0.1:9/callback?"), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some(start.state.as_str()));
    let (status, tokens) = rp.exchange(&query_param(&location, "code").expect("code"), &start.verifier).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{tokens}");
    let claims = rp.verify(tokens["id_token"].as_str().expect("id_token"), "JWT").await;
    assert_eq!(claims["aud"], "northwind-spa");
    assert_eq!(claims["nonce"], start.nonce.as_str());
    assert_eq!(claims["preferred_username"], "alice@northwind.example");
    child.kill().await.unwrap();
    child.wait().await.unwrap();
}
