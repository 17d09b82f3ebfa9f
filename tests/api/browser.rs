//! The browser end-to-end stories (tests/e2e): headless Debian Chromium driven by
//! playwright-core clicks through the real pages of the real binary.
use std::path::Path;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "run `.ci/run`, or `apt-get install -y chromium && npm ci --prefix tests/e2e`";

#[tokio::test]
async fn browser_end_to_end_stories() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in tests/e2e/node_modules: {INSTALL}"
    );
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing (Debian's chromium package): {INSTALL}");
    let run = tokio::process::Command::new("node")
        .arg("--test")
        .current_dir(&dir)
        .env("GATEHOUSE_BIN", super::process::BIN)
        .kill_on_drop(true)
        .output();
    // The whole run took 146 s on an idle 2-core machine (the seven passkey stories, each on
    // a server of its own, about 80 s of it), plus the cross-tenant story (~20 s) and the
    // terms story (~75 s, 60 of them waiting out the re-accept period); the bound leaves room
    // for a loaded machine.
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the browser stories finish within 600 s")
        .expect("node runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser stories failed (screenshots and HTML in tests/e2e/artifacts/):\n{text}");
    assert!(text.contains("# fail 0"), "{text}");
}
