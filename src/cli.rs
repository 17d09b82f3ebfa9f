//! The command line: `serve`, `keys rotate|list`, `tenant create|list|add-domain`, and the
//! admin-API commands (`cli/admin.rs`).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Overrides};
use crate::keys::KeyRing;
use crate::model::SigningAlg;

mod admin;
mod apply;
mod guests;
mod tenant;

use admin::{AdminOp, admin_command};

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
    /// PostgreSQL instead of the data dir's embedded store (`postgres://…`; also
    /// GATEHOUSE__DATABASE_URL). Needs `key_encryption_key`.
    #[arg(long)]
    database_url: Option<String>,
}

impl DirArgs {
    fn overrides(self) -> Overrides {
        Overrides {
            data_dir: self.data_dir,
            keys_dir: self.keys_dir,
            database_url: self.database_url.map(crate::secrets::Secret::new),
            ..Default::default()
        }
    }
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
    /// Apply the database schema migrations this binary has (PostgreSQL; `serve` also does).
    Migrate {
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// Move a store between backends.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Manage signing keys (with the embedded store: while the server is stopped; with
    /// PostgreSQL: any time, every node picks the change up within seconds).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Tenants and their verified domains (on the store, offline: with the embedded store
    /// while the server is stopped).
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// Create or update tenants, apps, members, groups, named locations and policies from a
    /// TOML file (offline; a plan first, all checked before any write).
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Print the plan and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// Write the store in the `apply` format to stdout (no secrets, no password hashes).
    Export {
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// Users of the tenant (like Get-MsolUser).
    Users {
        #[command(subcommand)]
        action: UsersAction,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Security groups (list, add a member).
    Groups {
        #[command(subcommand)]
        action: GroupsAction,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// MFA methods (like Reset-MsolStrongAuthenticationMethodByUpn).
    Mfa {
        #[command(subcommand)]
        action: MfaAction,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Invite a guest (POST /graph/v1.0/invitations).
    Invite {
        /// The guest's email address.
        #[arg(long)]
        email: String,
        /// Where the guest lands after redemption.
        #[arg(long)]
        redirect: String,
        /// The application the guest is invited to.
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Email the invitation (to the outbox, and SMTP when configured).
        #[arg(long)]
        send: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Reset a guest's redemption: a new ticket, the old one void.
    Redemption {
        #[command(subcommand)]
        action: RedemptionAction,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Conditional access policies.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// External identity providers: a partner's own OpenID Connect provider (DESIGN §16).
    Idp {
        #[command(subcommand)]
        action: IdpAction,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// What If: which policies apply to a sign-in, and what they require.
    Whatif {
        /// User object id or UPN.
        #[arg(long)]
        user: String,
        /// Application (client) id.
        #[arg(long)]
        app: String,
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        #[arg(long)]
        device: Option<String>,
        /// Methods already proven, e.g. --methods pwd,mfa
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Guest lifecycle (DESIGN §14).
    Guests {
        #[command(subcommand)]
        action: GuestsAction,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// The sign-in log, newest first.
    Signins {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        app: Option<String>,
        #[arg(long, default_value_t = 20)]
        top: usize,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// How the CLI reaches a running server (defaults: the demo's admin credential).
#[derive(clap::Args, Clone, Default)]
struct ConnArgs {
    /// Server URL (default: from the credentials file).
    #[arg(long, global = true, env = "GATEHOUSE_SERVER")]
    server: Option<String>,
    #[arg(long, global = true, env = "GATEHOUSE_TENANT")]
    tenant: Option<String>,
    #[arg(long, global = true, env = "GATEHOUSE_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(long, global = true, env = "GATEHOUSE_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Credentials file (default: {data_dir}/demo-credentials.json).
    #[arg(long, global = true)]
    credentials: Option<PathBuf>,
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum UsersAction {
    /// List users: UPN, type, state, MFA methods.
    List {
        /// Only guests (userType eq 'Guest').
        #[arg(long)]
        guests: bool,
        /// Only users with strong authentication methods, with a column of their kinds
        /// (`totp`, `passkey`, `totp+passkey`) read from each user's authentication methods.
        #[arg(long)]
        with_methods: bool,
    },
}

#[derive(Subcommand)]
enum GuestsAction {
    /// Guests with no sign-in (interactive or not), redemption or invitation for N days;
    /// a dry run that changes nothing unless --disable or --delete.
    Inactive {
        /// Days without activity (at least 1).
        #[arg(long, value_parser = guests::parse_days)]
        days: u32,
        /// Disable them (accountEnabled: false; their sessions and tokens end).
        #[arg(long, conflicts_with = "delete")]
        disable: bool,
        /// Delete them.
        #[arg(long)]
        delete: bool,
    },
}

#[derive(Subcommand)]
enum GroupsAction {
    /// List groups: id, name, member count.
    List,
    /// Add a user (member or guest) to a group.
    AddMember {
        /// The group's object id or displayName.
        #[arg(long)]
        group: String,
        /// The user's UPN (a guest's `…#EXT#@…` UPN or mail) or object id.
        #[arg(long)]
        upn: String,
    },
}

#[derive(Subcommand)]
enum MfaAction {
    /// Remove the user's MFA methods: the next sign-in proofs up again.
    Reset {
        #[arg(long)]
        upn: String,
    },
}

#[derive(Subcommand)]
enum RedemptionAction {
    Reset {
        #[arg(long)]
        email: String,
        #[arg(long)]
        redirect: String,
    },
}

#[derive(Subcommand)]
enum PolicyAction {
    List,
    /// Create or update policies from a JSON file (one policy or an array; matched by id or displayName).
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum IdpAction {
    /// Federate with a partner's provider for its email domains (its discovery is checked first).
    Add {
        #[arg(long)]
        name: String,
        /// The provider's discovery document (…/.well-known/openid-configuration).
        #[arg(long)]
        metadata_url: String,
        /// The client id the partner registered for us (`--client-id` is the admin credential's).
        #[arg(long)]
        partner_client_id: String,
        /// The environment variable holding the client secret (never given on the command line).
        #[arg(long)]
        client_secret_env: String,
        /// An email domain of the partner (repeat for more).
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
        /// Scopes to ask (default `openid profile email`).
        #[arg(long)]
        scope: Option<String>,
    },
    List,
    Remove {
        id: String,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Copy everything of an embedded store (stopped) into PostgreSQL: tenants, users,
    /// apps, policies, sessions, refresh tokens, the sign-in log, and the keys (sealed
    /// under key_encryption_key). Running it again changes nothing; a target that already
    /// holds data is refused unless --force.
    Copy {
        /// The data dir of the embedded store.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL URL.
        #[arg(long)]
        to: String,
        /// Where the embedded store's signing keys and seal key are (default: as `serve`).
        #[arg(long)]
        keys_dir: Option<PathBuf>,
        /// Copy into a database that already holds data (records with the same keys are replaced).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum TenantAction {
    /// Create a tenant; optionally its admin client and first admin member, so that the
    /// admin API (Graph) can be used at once.
    Create {
        /// Display name (e.g. "Fabrikam").
        #[arg(long)]
        name: String,
        /// URL path of the tenant (default: from the name, e.g. `fabrikam`); never changes.
        #[arg(long)]
        slug: Option<String>,
        /// A domain the tenant verified (repeat for more); the first is the initial domain.
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
        /// Premium seats (MFA, conditional access, redeemed guests).
        #[arg(long, default_value_t = 25)]
        seats: u32,
        /// Register the admin client `gatehouse-admin` with the secret held by this environment
        /// variable (never given on the command line; at least 32 characters).
        #[arg(long)]
        client_secret_env: Option<String>,
        /// Create this member as a Global Administrator (with --admin-password-env).
        #[arg(long, requires = "admin_password_env")]
        admin_upn: Option<String>,
        /// The environment variable holding the admin member's password.
        #[arg(long, requires = "admin_upn")]
        admin_password_env: Option<String>,
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// List the tenants: slug, id, name, domains, seats.
    List {
        #[command(flatten)]
        dirs: DirArgs,
    },
    /// Add a domain the tenant's admin verified.
    AddDomain {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        domain: String,
        #[command(flatten)]
        dirs: DirArgs,
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
    // `serve` logs as its configuration says (`log_format`), once it is loaded.
    if !matches!(cli.command, Command::Serve { .. }) {
        crate::telemetry::init_logs(crate::config::LogFormat::Text);
    }
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("gatehouse: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one storage future to completion for a command that has no server running.
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    Ok(rt.block_on(f))
}

fn load(file: Option<&std::path::Path>, o: Overrides) -> Result<Config, String> {
    Config::load(file, &o).map_err(|e| e.to_string())
}

fn execute(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { demo, bind, public_url, dirs } => {
            let o = Overrides { bind, public_url, demo, ..dirs.overrides() };
            let config = load(cli.config.as_deref(), o)?;
            crate::telemetry::init_logs(config.log_format);
            actix_web::rt::System::new().block_on(serve(config))
        }
        Command::Keys { action: KeysAction::Rotate { alg, grace_secs, dirs } } => {
            let config = load(cli.config.as_deref(), dirs.overrides())?;
            let alg = if alg == "RS256" { SigningAlg::RS256 } else { SigningAlg::ES256 };
            let t = &config.tokens;
            let grace = grace_secs.unwrap_or(t.key_rotation_grace_secs).max(0);
            let max_life = t.access_token_secs.max(t.id_token_secs);
            let vault = crate::keys::KeyVault::from_config(&config).map_err(|e| e.to_string())?;
            let meta = block_on(async {
                let store = crate::storage::open_configured(&config).await.map_err(|e| e.to_string())?;
                KeyRing::rotate(&store, &vault, alg, SystemClock.now(), grace, max_life)
                    .await
                    .map_err(|e| e.to_string())
            })??;
            let signs_from = crate::clock::rfc3339(meta.activates_at);
            tracing::info!(kid = %meta.kid, alg = alg.as_str(), %signs_from, "signing key rotated");
            println!(
                "new {} key {} published; it signs from {}",
                alg.as_str(),
                meta.kid,
                crate::clock::rfc3339(meta.activates_at)
            );
            Ok(())
        }
        Command::Migrate { dirs } => {
            let config = load(cli.config.as_deref(), dirs.overrides())?;
            let Some(url) = &config.database_url else {
                return Err("migrate needs database_url (--database-url or GATEHOUSE__DATABASE_URL)".into());
            };
            let options = crate::storage::postgres_options(&config, url);
            let version = block_on(async {
                let store = crate::storage::postgres::PgStore::open(options).await.map_err(|e| e.to_string())?;
                store.migrate().await.map_err(|e| e.to_string())
            })??;
            println!("database schema at version {version}");
            Ok(())
        }
        Command::Store { action: StoreAction::Copy { from, to, keys_dir, force } } => {
            let o = Overrides {
                data_dir: Some(from),
                keys_dir,
                database_url: Some(crate::secrets::Secret::new(to)),
                ..Default::default()
            };
            let config = load(cli.config.as_deref(), o)?;
            let copied = block_on(copy_store(&config, force))??;
            println!("copied {copied} records to PostgreSQL");
            Ok(())
        }
        Command::Tenant { action } => {
            let out = match action {
                TenantAction::Create {
                    name,
                    slug,
                    domains,
                    seats,
                    client_secret_env,
                    admin_upn,
                    admin_password_env,
                    dirs,
                } => {
                    let config = load(cli.config.as_deref(), dirs.overrides())?;
                    let n = tenant::NewTenant {
                        name,
                        slug,
                        domains,
                        seats,
                        client_secret_env,
                        admin_upn,
                        admin_password_env,
                    };
                    block_on(tenant::create(&config, n, SystemClock.now()))??
                }
                TenantAction::List { dirs } => {
                    let config = load(cli.config.as_deref(), dirs.overrides())?;
                    block_on(tenant::list(&config))??
                }
                TenantAction::AddDomain { tenant: slug, domain, dirs } => {
                    let config = load(cli.config.as_deref(), dirs.overrides())?;
                    block_on(tenant::add_domain(&config, &slug, &domain))??
                }
            };
            println!("{}", out.trim_end());
            Ok(())
        }
        Command::Apply { file, dry_run, dirs } => {
            apply::apply(&load(cli.config.as_deref(), dirs.overrides())?, &file, dry_run)
        }
        Command::Export { tenant, dirs } => {
            apply::export(&load(cli.config.as_deref(), dirs.overrides())?, tenant.as_deref())
        }
        Command::Users { action, conn } => admin_command(cli.config.as_deref(), conn, AdminOp::Users(action)),
        Command::Groups { action, conn } => admin_command(cli.config.as_deref(), conn, AdminOp::Groups(action)),
        Command::Mfa { action, conn } => admin_command(cli.config.as_deref(), conn, AdminOp::Mfa(action)),
        Command::Invite { email, redirect, app, display_name, send, conn } => {
            admin_command(cli.config.as_deref(), conn, AdminOp::Invite { email, redirect, app, display_name, send })
        }
        Command::Redemption { action, conn } => admin_command(cli.config.as_deref(), conn, AdminOp::Redemption(action)),
        Command::Policy { action, conn } => admin_command(cli.config.as_deref(), conn, AdminOp::Policy(action)),
        Command::Idp { action, conn } => admin_command(cli.config.as_deref(), conn, AdminOp::Idp(action)),
        Command::Whatif { user, app, ip, device, methods, conn } => {
            admin_command(cli.config.as_deref(), conn, AdminOp::Whatif { user, app, ip, device, methods })
        }
        Command::Signins { user, app, top, conn } => {
            admin_command(cli.config.as_deref(), conn, AdminOp::Signins { user, app, top })
        }
        Command::Guests { action, conn } => admin_command(cli.config.as_deref(), conn, AdminOp::Guests(action)),
        Command::Keys { action: KeysAction::List { dirs } } => {
            let config = load(cli.config.as_deref(), dirs.overrides())?;
            let metas = block_on(async {
                let store = crate::storage::open_configured(&config).await.map_err(|e| e.to_string())?;
                store.key_metas().await.map_err(|e| e.to_string())
            })??;
            println!("{:<18} {:<6} {:<22} retires", "kid", "alg", "signs from");
            for m in metas {
                let retires = m.retires_at.map(crate::clock::rfc3339).unwrap_or_else(|| "-".into());
                println!("{:<18} {:<6} {:<22} {retires}", m.kid, m.alg.as_str(), crate::clock::rfc3339(m.activates_at));
            }
            Ok(())
        }
    }
}

/// `gatehouse store copy`: the embedded store of `config.data_dir` into `config.database_url`.
async fn copy_store(config: &Config, force: bool) -> Result<usize, String> {
    use crate::storage::Item;
    let kek = match crate::keys::KeyVault::from_config(config).map_err(|e| e.to_string())? {
        crate::keys::KeyVault::Sealed(kek) => kek,
        crate::keys::KeyVault::Files(_) => return Err("store copy needs a PostgreSQL target".into()),
    };
    let url = config.database_url.as_ref().ok_or("store copy needs --to")?;
    let source = crate::storage::open(&config.data_dir, config.cache_mib).map_err(|e| e.to_string())?;
    let target = crate::storage::postgres::PgStore::open(crate::storage::postgres_options(config, url))
        .await
        .map_err(|e| e.to_string())?;
    let target: crate::storage::Store = std::sync::Arc::new(target);
    if !force && !target.is_empty().await.map_err(|e| e.to_string())? {
        return Err("the target database already holds data: pass --force to copy into it anyway".into());
    }
    let keys_dir = config.keys_dir();
    let mut items = source.export().await.map_err(|e| e.to_string())?;
    // Private keys and the TOTP seal key live in files beside the embedded store: on the
    // database they are sealed under the key-encryption key.
    for item in &mut items {
        if let Item::Key(meta, sealed @ None) = item {
            *sealed = Some(crate::keys::KeyVault::seal_file(&kek, &keys_dir, meta).map_err(|e| e.to_string())?);
        }
    }
    let seal_path = keys_dir.join("seal.key");
    match std::fs::read(&seal_path) {
        Ok(bytes) => {
            let sealed = kek.seal("seal_key_sealed", &bytes)?;
            items.push(Item::Meta("seal_key_sealed".into(), sealed));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", seal_path.display())),
    }
    // The demo's credentials, for nodes on the database that did not seed it.
    if let Ok(bytes) = std::fs::read(config.data_dir.join(crate::demo::seed::CREDENTIALS_FILE)) {
        let name = crate::demo::seed::SEALED_CREDENTIALS;
        items.push(Item::Meta(name.into(), kek.seal(name, &bytes)?));
    }
    target.import(&items).await.map_err(|e| e.to_string())?;
    Ok(items.len())
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
        let path = data_dir.join(crate::demo::seed::CREDENTIALS_FILE);
        let _ = writeln!(out, "demo credentials and the admin client: {}", path.display());
    }
    let _ = writeln!(out, "gatehouse listening on {}", app.url());
    let _ = out.flush();
    drop(out);
    tracing::info!(url = app.url(), "started");
    app.run_until_signal().await.map_err(|e| e.to_string())
}
