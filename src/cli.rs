//! The command line: `serve`, `keys rotate|list`.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Overrides};
use crate::directory::SigningAlg;
use crate::oidc::keys::KeyRing;
use crate::storage::Store;

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "OpenID Connect identity provider for guest (B2B) collaboration")]
struct Cli {
    /// TOML configuration file (GATEHOUSE__* environment variables and flags override it).
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Default)]
struct DirArgs {
    /// Data directory (sled store, demo credentials).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Directory of the signing keys (PEM).
    #[arg(long)]
    keys_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the identity provider.
    Serve {
        /// Seed and serve the demo tenants, users and applications.
        #[arg(long)]
        demo: bool,
        /// Address to listen on (127.0.0.1:0 picks a free port).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
        /// The URL people and relying parties use (default: the bound address).
        #[arg(long)]
        public_url: Option<String>,
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// Manage signing keys (run while the server is stopped).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a new key: published in JWKS at once, used for signing after the grace period.
    Rotate {
        #[arg(long, value_parser = ["ES256", "RS256"], default_value = "ES256")]
        alg: String,
        /// Seconds before the new key signs (default: tokens.key_rotation_grace_secs).
        #[arg(long)]
        grace_secs: Option<i64>,
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// List the keys and when they sign and retire.
    List {
        #[command(flatten)]
        dirs: DirArgs,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("gatehouse: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: Option<&std::path::Path>, o: Overrides) -> Result<Config, String> {
    Config::load(file, &o).map_err(|e| e.to_string())
}

fn execute(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { demo, bind, public_url, dirs } => {
            let o = Overrides { bind, data_dir: dirs.data_dir, keys_dir: dirs.keys_dir, public_url, demo };
            let config = load(cli.config.as_deref(), o)?;
            actix_web::rt::System::new().block_on(serve(config))
        }
        Command::Keys { action: KeysAction::Rotate { alg, grace_secs, dirs } } => {
            let config = load(
                cli.config.as_deref(),
                Overrides { data_dir: dirs.data_dir, keys_dir: dirs.keys_dir, ..Default::default() },
            )?;
            let store = Store::open(&config.data_dir).map_err(|e| e.to_string())?;
            let alg = if alg == "RS256" { SigningAlg::RS256 } else { SigningAlg::ES256 };
            let t = &config.tokens;
            let grace = grace_secs.unwrap_or(t.key_rotation_grace_secs).max(0);
            let max_life = t.access_token_secs.max(t.id_token_secs);
            let meta = KeyRing::rotate(&store, &config.keys_dir(), alg, SystemClock.now(), grace, max_life)
                .map_err(|e| e.to_string())?;
            println!(
                "new {} key {} published; it signs from {}",
                alg.as_str(),
                meta.kid,
                crate::clock::rfc3339(meta.activates_at)
            );
            Ok(())
        }
        Command::Keys { action: KeysAction::List { dirs } } => {
            let config = load(
                cli.config.as_deref(),
                Overrides { data_dir: dirs.data_dir, keys_dir: dirs.keys_dir, ..Default::default() },
            )?;
            let store = Store::open(&config.data_dir).map_err(|e| e.to_string())?;
            println!("{:<18} {:<6} {:<22} retires", "kid", "alg", "signs from");
            for m in store.key_metas().map_err(|e| e.to_string())? {
                let retires = m.retires_at.map(crate::clock::rfc3339).unwrap_or_else(|| "-".into());
                println!("{:<18} {:<6} {:<22} {retires}", m.kid, m.alg.as_str(), crate::clock::rfc3339(m.activates_at));
            }
            Ok(())
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    use std::io::Write;
    let data_dir = config.data_dir.clone();
    let app = crate::startup::Application::build(config, std::sync::Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    if let Some(creds) = app.demo_credentials() {
        let _ = writeln!(out, "demo tenants seeded; accounts (also on the home page):");
        for u in &creds.users {
            let _ = writeln!(out, "  {:<10} {:<28} {}", u.tenant, u.login, u.password);
        }
        let path = data_dir.join(crate::directory::demo::CREDENTIALS_FILE);
        let _ = writeln!(out, "demo credentials and the admin client: {}", path.display());
    }
    let _ = writeln!(out, "gatehouse listening on {}", app.url());
    let _ = out.flush();
    drop(out);
    tracing::info!(url = app.url(), "started");
    app.run_until_stopped().await.map_err(|e| e.to_string())
}
