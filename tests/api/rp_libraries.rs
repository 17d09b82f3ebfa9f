//! Relying-party libraries that gatehouse did not write, run against the real binary.
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn openid_client_from_npm_accepts_discovery_jwks_and_the_code_flow() {
    let dir = repo().join("tests/rp");
    assert!(
        dir.join("node_modules/openid-client").exists(),
        "openid-client is not installed: run `npm ci --prefix tests/rp` (.ci/run does)"
    );
    let out = tokio::process::Command::new("node")
        .args(["--test", "openid-client.test.mjs"])
        .current_dir(&dir)
        .env("GATEHOUSE_BIN", super::process::BIN)
        .output()
        .await
        .expect("node runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openid-client tests failed:\n{text}");
    assert!(text.contains("# fail 0"), "{text}");
}

#[tokio::test]
async fn authlib_from_pypi_accepts_discovery_jwks_and_the_code_flow() {
    let out = tokio::process::Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "authlib_test.py"])
        .current_dir(repo().join("tests/rp"))
        .env("GATEHOUSE_BIN", super::process::BIN)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .await
        .expect("python3 runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "authlib tests failed (install with `pip install -r tests/rp/requirements.txt`, .ci/run does):\n{text}"
    );
    assert!(text.contains(" passed"), "{text}");
}
