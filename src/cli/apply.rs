//! `gatehouse apply -f FILE.toml` and `gatehouse export`: tenants, applications, members,
//! groups, named locations and conditional access policies as a file (DESIGN §15), offline
//! against the store. The whole file is checked and every record built before the first
//! write; a file with any error writes nothing.
use std::path::Path;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;

mod export;
mod format;
mod plan;

pub fn apply(config: &Config, file: &Path, dry_run: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let parsed = format::parse(&text).map_err(|e| format!("{}: {e}; nothing was written", file.display()))?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    super::block_on(async {
        let store = crate::storage::open_configured(config).await.map_err(|e| e.to_string())?;
        let ctx = plan::Ctx { store: &store, argon2: &config.argon2, now: SystemClock.now(), base: &base };
        let plan = plan::plan(&ctx, &parsed).await.map_err(|e| format!("{e}; nothing was written"))?;
        for line in &plan.lines {
            println!("{line}");
        }
        println!("{}", plan.summary());
        if dry_run {
            println!("dry run: nothing written");
            return Ok(());
        }
        if plan.writes.is_empty() {
            println!("nothing to change");
            return Ok(());
        }
        plan::write(&store, plan.writes).await?;
        println!("applied");
        Ok(())
    })?
}

pub fn export(config: &Config, tenant: Option<&str>) -> Result<(), String> {
    let text = super::block_on(async {
        let store = crate::storage::open_configured(config).await.map_err(|e| e.to_string())?;
        export::export(&store, tenant).await
    })??;
    print!("{text}");
    Ok(())
}
