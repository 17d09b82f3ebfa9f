//! The command line: `serve`, `keys rotate|list`.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Overrides};
use crate::keys::KeyRing;
use crate::model::SigningAlg;

mod guests;

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
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

enum AdminOp {
    Users(UsersAction),
    Groups(GroupsAction),
    Mfa(MfaAction),
    Invite { email: String, redirect: String, app: Option<String>, display_name: Option<String>, send: bool },
    Redemption(RedemptionAction),
    Policy(PolicyAction),
    Idp(IdpAction),
    Whatif { user: String, app: String, ip: Option<std::net::IpAddr>, device: Option<String>, methods: Vec<String> },
    Signins { user: Option<String>, app: Option<String>, top: usize },
    Guests(GuestsAction),
}

fn admin_command(config: Option<&std::path::Path>, conn: ConnArgs, op: AdminOp) -> Result<(), String> {
    let file = match &conn.credentials {
        Some(f) => f.clone(),
        None => {
            let cfg = load(config, Overrides { data_dir: conn.data_dir.clone(), ..Default::default() })?;
            cfg.data_dir.join(crate::demo::seed::CREDENTIALS_FILE)
        }
    };
    let creds = crate::admin::client::Credentials {
        server: conn.server.clone(),
        tenant: conn.tenant.clone(),
        client_id: conn.client_id.clone(),
        client_secret: conn.client_secret.clone(),
    }
    .with_file(&file)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let c = crate::admin::client::connect(&creds).await?;
        let out = run_admin(&c, op, conn.json).await?;
        println!("{}", out.trim_end());
        Ok(())
    })
}

/// How a value prints in a table: its JSON form, strings unquoted, `null` as `-` (an enum by
/// its wire name, so tables and `--json` agree).
fn s(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(x)) => x,
        Ok(serde_json::Value::Null) => "-".into(),
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// `--json` output: through `serde_json::Value`, so the keys print sorted as they always have.
fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v).and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or_default()
}

/// What `mfa reset --json` prints.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Removed<'a> {
    user_principal_name: &'a str,
    removed: &'a [String],
}

/// What `users list --with-methods --json` prints: the Graph user and its MFA methods.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct UserWithMethods {
    #[serde(flatten)]
    user: crate::admin::wire::User,
    mfa_methods: Vec<crate::admin::wire::AuthenticationMethod>,
}

/// The kinds of MFA methods held, for a table cell: `totp`, `passkey`, `totp+passkey` or `-`.
fn mfa_kinds(methods: &[crate::admin::wire::AuthenticationMethod]) -> String {
    use crate::admin::wire::AuthenticationMethod;
    let totp = methods.iter().any(|m| matches!(m, AuthenticationMethod::SoftwareOath(_)));
    let passkey = methods.iter().any(|m| matches!(m, AuthenticationMethod::Fido2(_)));
    match (totp, passkey) {
        (true, true) => "totp+passkey",
        (true, false) => "totp",
        (false, true) => "passkey",
        (false, false) => "-",
    }
    .into()
}

async fn run_admin(c: &crate::admin::client::Connection, op: AdminOp, json: bool) -> Result<String, String> {
    use crate::admin::client::table;
    use crate::admin::wire::{self, AuthenticationMethod, Collection};
    match op {
        AdminOp::Guests(GuestsAction::Inactive { days, disable, delete }) => {
            let act = match (disable, delete) {
                (true, _) => guests::Act::Disable,
                (false, true) => guests::Act::Delete,
                (false, false) => guests::Act::DryRun,
            };
            guests::inactive(c, days, act, SystemClock.now(), json).await
        }
        AdminOp::Users(UsersAction::List { guests, with_methods }) => {
            let path = if guests { format!("users?$filter={}", enc("userType eq 'Guest'")) } else { "users".into() };
            let mut users: Vec<wire::User> = c.list(&path).await?;
            let row = |u: &wire::User| {
                let methods: Vec<String> = u.strong_authentication_methods.iter().map(|m| s(&m.method_type)).collect();
                vec![s(&u.user_principal_name), s(&u.user_type), s(&u.external_user_state), methods.join(",")]
            };
            let headers = ["UserPrincipalName", "UserType", "State", "Methods"];
            if !with_methods {
                if json {
                    return Ok(pretty(&users));
                }
                return Ok(table(&headers, &users.iter().map(row).collect::<Vec<_>>()));
            }
            users.retain(|u| !u.strong_authentication_methods.is_empty());
            // One request per listed user: the methods themselves, not the summary on the user.
            let mut listed = Vec::with_capacity(users.len());
            for user in users {
                let methods: Collection<AuthenticationMethod> =
                    c.get(&format!("users/{}/authentication/methods", user.id)).await?;
                let mfa_methods =
                    methods.value.into_iter().filter(|m| !matches!(m, AuthenticationMethod::Password(_))).collect();
                listed.push(UserWithMethods { user, mfa_methods });
            }
            if json {
                return Ok(pretty(&listed));
            }
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|l| {
                    let mut r = row(&l.user);
                    r.push(mfa_kinds(&l.mfa_methods));
                    r
                })
                .collect();
            Ok(table(&[&headers[..], &["MfaMethods"]].concat(), &rows))
        }
        AdminOp::Groups(GroupsAction::List) => {
            let groups: Vec<wire::Group> = c.list("groups").await?;
            let mut rows = Vec::with_capacity(groups.len());
            for g in &groups {
                let members: Vec<serde_json::Value> = c.list(&format!("groups/{}/members", g.id)).await?;
                rows.push(vec![s(&g.id), s(&g.display_name), members.len().to_string()]);
            }
            if json {
                return Ok(pretty(&groups));
            }
            Ok(table(&["Id", "DisplayName", "Members"], &rows))
        }
        AdminOp::Groups(GroupsAction::AddMember { group, upn }) => {
            let groups: Vec<wire::Group> = c.list("groups").await?;
            let g = groups
                .iter()
                .find(|g| g.id.to_string().eq_ignore_ascii_case(&group))
                .or_else(|| groups.iter().find(|g| g.display_name.eq_ignore_ascii_case(&group)))
                .ok_or_else(|| format!("no group {group:?}"))?;
            let user: wire::User = c.get(&format!("users/{}", enc(&upn))).await?;
            let body = wire::ObjectRef { odata_id: format!("{}/graph/v1.0/directoryObjects/{}", c.base, user.id) };
            c.post_no_content(&format!("groups/{}/members/$ref", g.id), &body).await?;
            Ok(format!("added {} to {}", user.user_principal_name, g.display_name))
        }
        AdminOp::Mfa(MfaAction::Reset { upn }) => {
            let methods: Collection<AuthenticationMethod> =
                c.get(&format!("users/{}/authentication/softwareOathMethods", enc(&upn))).await?;
            let mut ids: Vec<String> = methods.value.iter().map(|m| m.id().to_string()).collect();
            for id in &ids {
                c.delete(&format!("users/{}/authentication/softwareOathMethods/{id}", enc(&upn))).await?;
            }
            // Passkeys too: the next MFA sign-in proofs up again.
            let passkeys: Collection<AuthenticationMethod> =
                c.get(&format!("users/{}/authentication/fido2Methods", enc(&upn))).await?;
            for m in &passkeys.value {
                c.delete(&format!("users/{}/authentication/fido2Methods/{}", enc(&upn), m.id())).await?;
                ids.push(m.id().to_string());
            }
            Ok(if json {
                pretty(&Removed { user_principal_name: &upn, removed: &ids })
            } else {
                format!("removed {} method(s) of {upn}; the next MFA sign-in proofs up again", ids.len())
            })
        }
        AdminOp::Invite { email, redirect, app, display_name, send } => {
            let body = wire::InvitationRequest {
                invited_user_email_address: Some(email),
                invite_redirect_url: Some(redirect),
                send_invitation_message: send,
                app_id: app,
                invited_user_display_name: display_name,
                ..Default::default()
            };
            let inv: wire::Invitation = c.post("invitations", &body).await?;
            Ok(if json {
                pretty(&inv)
            } else {
                format!(
                    "invited {} ({})\nredeem: {}",
                    inv.invited_user_email_address, inv.invited_user.user_principal_name, inv.invite_redeem_url
                )
            })
        }
        AdminOp::Redemption(RedemptionAction::Reset { email, redirect }) => {
            let body = wire::InvitationRequest {
                invited_user_email_address: Some(email.clone()),
                invite_redirect_url: Some(redirect),
                reset_redemption: true,
                send_invitation_message: true,
                ..Default::default()
            };
            let inv: wire::Invitation = c.post("invitations", &body).await?;
            Ok(if json {
                pretty(&inv)
            } else {
                format!("redemption reset for {email}; new link: {}", inv.invite_redeem_url)
            })
        }
        AdminOp::Policy(PolicyAction::List) => {
            let ps: Vec<wire::Policy> = c.list("identity/conditionalAccess/policies").await?;
            if json {
                return Ok(pretty(&ps));
            }
            let rows: Vec<Vec<String>> = ps
                .iter()
                .map(|p| {
                    let controls: Vec<String> =
                        p.grant_controls.iter().flat_map(|g| g.built_in_controls.iter().map(s)).collect();
                    vec![s(&p.id), s(&p.display_name), s(&p.state), controls.join(",")]
                })
                .collect();
            Ok(table(&["Id", "DisplayName", "State", "Grant"], &rows))
        }
        AdminOp::Policy(PolicyAction::Apply { file }) => {
            use serde_json::Value;
            // The file holds merge patches (any part of a policy), so it stays JSON here.
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let items = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            let existing: Vec<wire::Policy> = c.list("identity/conditionalAccess/policies").await?;
            let mut lines = Vec::new();
            for mut p in items {
                let named = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
                let (id, display_name) = (named("id"), named("displayName"));
                let found = existing.iter().find(|e| {
                    id.as_deref() == Some(e.id.as_str()) || display_name.as_deref() == Some(e.display_name.as_str())
                });
                if let Value::Object(m) = &mut p {
                    m.remove("id");
                }
                match found {
                    Some(e) => {
                        c.patch(&format!("identity/conditionalAccess/policies/{}", e.id), &p).await?;
                        lines.push(format!("updated {} {}", e.id, e.display_name));
                    }
                    None => {
                        let created: wire::Policy = c.post("identity/conditionalAccess/policies", &p).await?;
                        lines.push(format!("created {} {}", created.id, created.display_name));
                    }
                }
            }
            Ok(lines.join("\n"))
        }
        AdminOp::Whatif { user, app, ip, device, methods } => {
            let (user_id, user_principal_name) =
                if user.contains('@') { (None, Some(user)) } else { (Some(user), None) };
            let body = wire::WhatIfRequest {
                user_id,
                user_principal_name,
                app_id: app,
                ip_address: ip,
                device_id: device,
                authentication_methods: methods,
                ..Default::default()
            };
            let r: wire::WhatIfResult = c.post("identity/conditionalAccess/evaluate", &body).await?;
            if json {
                return Ok(pretty(&r));
            }
            let rows: Vec<Vec<String>> = r
                .applied_conditional_access_policies
                .iter()
                .map(|p| {
                    let g: Vec<String> = p.enforced_grant_controls.iter().map(s).collect();
                    vec![s(&p.display_name), s(&p.result), g.join(",")]
                })
                .collect();
            Ok(format!("outcome: {}\n{}", s(&r.outcome), table(&["Policy", "Result", "Grant"], &rows)))
        }
        AdminOp::Idp(action) => idp_command(c, action, json).await,
        AdminOp::Signins { user, app, top } => {
            let mut filters = Vec::new();
            if let Some(u) = user {
                filters.push(format!("userPrincipalName eq '{}'", u.replace('\'', "''")));
            }
            if let Some(a) = app {
                filters.push(format!("appId eq '{}'", a.replace('\'', "''")));
            }
            let mut path = format!("auditLogs/signIns?$top={top}");
            if !filters.is_empty() {
                path.push_str(&format!("&$filter={}", enc(&filters.join(" and "))));
            }
            let page: Collection<wire::SignIn> = c.get(&path).await?;
            let entries = page.value;
            if json {
                return Ok(pretty(&entries));
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let result = if e.status.error_code == 0 { "success".to_string() } else { s(&e.status.error) };
                    vec![
                        s(&e.created_date_time),
                        s(&e.user_principal_name),
                        s(&e.app_id),
                        s(&e.ip_address),
                        result,
                        e.amr.join(","),
                        s(&e.conditional_access_status),
                    ]
                })
                .collect();
            Ok(table(&["Time", "User", "App", "IP", "Result", "AMR", "CA"], &rows))
        }
    }
}

/// `gatehouse idp add|list|remove`, through `identity/identityProviders`.
async fn idp_command(c: &crate::admin::client::Connection, action: IdpAction, json: bool) -> Result<String, String> {
    use crate::admin::client::table;
    use crate::admin::identity_providers::{IdentityProvider, IdentityProviderIn, ODATA_TYPE};
    const PATH: &str = "identity/identityProviders";
    match action {
        IdpAction::Add { name, metadata_url, partner_client_id, client_secret_env, domains, scope } => {
            let secret = std::env::var(&client_secret_env)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the environment variable {client_secret_env} holds no client secret"))?;
            let body = IdentityProviderIn {
                odata_type: Some(ODATA_TYPE.into()),
                display_name: Some(name),
                client_id: Some(partner_client_id),
                client_secret: Some(secret),
                metadata_url: Some(metadata_url),
                scope,
                domains: Some(domains),
                ..Default::default()
            };
            let idp: IdentityProvider = c.post(PATH, &body).await?;
            Ok(if json {
                pretty(&idp)
            } else {
                format!("added {} ({}): issuer {}", idp.display_name, idp.id, idp.issuer)
            })
        }
        IdpAction::List => {
            let idps: Vec<IdentityProvider> = c.list(PATH).await?;
            if json {
                return Ok(pretty(&idps));
            }
            let rows: Vec<Vec<String>> = idps
                .iter()
                .map(|i| vec![i.id.clone(), i.display_name.clone(), i.issuer.clone(), i.domains.join(",")])
                .collect();
            Ok(table(&["Id", "DisplayName", "Issuer", "Domains"], &rows))
        }
        IdpAction::Remove { id } => {
            c.delete(&format!("{PATH}/{}", enc(&id))).await?;
            Ok(if json { pretty(&serde_json::json!({ "removed": id })) } else { format!("removed {id}") })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mfa_kinds;
    use crate::admin::wire::AuthenticationMethod;

    #[test]
    fn mfa_kinds_name_each_kind_once_totp_first() {
        let totp = AuthenticationMethod::software_oath("t".into(), "1970-01-01T00:00:00Z".into());
        let key = |id: &str| AuthenticationMethod::fido2(id.into(), "Key".into(), "0".into(), "x".into());
        assert_eq!(mfa_kinds(&[]), "-");
        assert_eq!(mfa_kinds(&[AuthenticationMethod::password()]), "-");
        assert_eq!(mfa_kinds(std::slice::from_ref(&totp)), "totp");
        assert_eq!(mfa_kinds(&[key("a"), key("b")]), "passkey");
        assert_eq!(mfa_kinds(&[key("a"), totp]), "totp+passkey");
    }
}
