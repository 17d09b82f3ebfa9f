//! Configuration, layered: defaults -> TOML file -> `GATEHOUSE__*` environment -> CLI flags.
//! Unknown keys anywhere are rejected with the name of the key.
use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The URL people and relying parties use; defaults to the bound address.
    #[serde(default)]
    pub public_url: Option<String>,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// Where signing keys live as PEM files; defaults to `keys` beside the default
    /// data dir, or `{data_dir}/keys` when a data dir is given.
    #[serde(default)]
    pub keys_dir: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` header is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Seed the demo tenants once and serve the demo pages.
    #[serde(default)]
    pub demo: bool,
    /// HTTP worker threads; 0 = one per core.
    #[serde(default)]
    pub workers: usize,
    /// The store's page cache in MiB (records beyond it are read from disk).
    #[serde(default = "default_cache_mib")]
    pub cache_mib: u64,
    /// Seconds a client has to send a request's head, and (separately) its whole body.
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// Serve the built-in stub home IdPs (`social`, `msa`) outside demo mode too.
    #[serde(default)]
    pub stubs: bool,
    /// Deliver email over SMTP too (every message always goes to the outbox).
    #[serde(default)]
    pub smtp: Option<Smtp>,
    pub tokens: TokenLifetimes,
    pub argon2: Argon2Params,
    pub rate_limit: RateLimit,
    /// Bounds on the sign-in transactions anonymous requests can open.
    #[serde(default)]
    pub signins: SignInLimits,
    /// `postgres://…`: store everything in PostgreSQL (any number of nodes share it);
    /// without it, the embedded store in `data_dir`. TLS when the URL asks (`sslmode=require`).
    #[serde(default)]
    pub database_url: Option<crate::secrets::Secret>,
    /// Base64 of 32 random bytes: seals the private signing keys and the TOTP seal key in
    /// the database (AES-256-GCM). Required with `database_url`.
    #[serde(default)]
    pub key_encryption_key: Option<crate::secrets::Secret>,
    #[serde(default)]
    pub database: DatabaseSettings,
    /// Outbound federation to external identity providers (DESIGN §16).
    #[serde(default)]
    pub federation: FederationSettings,
    /// Where `/metrics` (Prometheus text format) is served, on a listener of its own; off
    /// when unset, so it is never on the public port unless asked.
    #[serde(default)]
    pub metrics_bind: Option<SocketAddr>,
    /// `text` (default) or `json`: one JSON object a line, with the request's id.
    #[serde(default)]
    pub log_format: LogFormat,
    /// On SIGTERM or SIGINT: how long in-flight requests may take to finish once the
    /// listeners are closed; past it their connections are dropped.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
}

/// How the process logs: human-readable text (default) or one JSON object a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_shutdown_timeout_secs() -> u64 {
    30
}

/// Outbound federation to external identity providers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationSettings {
    /// Hosts (`host` or `host:port`) an external provider may be reached at over plain
    /// http or on a loopback/private address (the request forgery guard lets them pass).
    pub allow_insecure_hosts: Vec<String>,
}

/// The PostgreSQL connection pool of one node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connections per node.
    pub pool_size: usize,
    /// The bound on getting a connection, connecting and any one statement: past it a
    /// request is answered 503.
    pub timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { pool_size: 16, timeout_ms: 5000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<crate::secrets::Secret>,
    /// STARTTLS (on by default); off only for a local relay.
    #[serde(default = "default_true")]
    pub starttls: bool,
    /// The wait before the first retry of a failed delivery; each later wait doubles.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Delivery attempts before a message is marked failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The bound on one delivery attempt's connection and each of its SMTP commands.
    #[serde(default = "default_smtp_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for Smtp {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: default_smtp_port(),
            from: String::new(),
            username: None,
            password: None,
            starttls: true,
            retry_base_ms: default_retry_base_ms(),
            max_attempts: default_max_attempts(),
            timeout_secs: default_smtp_timeout_secs(),
        }
    }
}

fn default_retry_base_ms() -> u64 {
    60_000
}

fn default_max_attempts() -> u32 {
    8
}

fn default_smtp_timeout_secs() -> u64 {
    30
}

fn default_cache_mib() -> u64 {
    8
}

fn default_body_timeout_secs() -> u64 {
    10
}

fn default_smtp_port() -> u16 {
    587
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLifetimes {
    pub access_token_secs: i64,
    pub id_token_secs: i64,
    pub refresh_token_secs: i64,
    pub refresh_family_max_secs: i64,
    pub code_secs: i64,
    pub session_secs: i64,
    pub signin_secs: i64,
    pub key_rotation_grace_secs: i64,
    /// How long after a rotation the previous refresh token may come back once as a retry
    /// of a lost answer (Okta, Auth0 and Hydra do the same); 0 turns retries off.
    #[serde(default = "default_refresh_reuse_grace_secs")]
    pub refresh_reuse_grace_secs: i64,
}

fn default_refresh_reuse_grace_secs() -> i64 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Failed passwords per account (or per client IP) within the window before lockout.
    pub password_failures: u32,
    pub window_secs: i64,
    /// Password checks running or waiting for an argon2 thread at once; beyond it the
    /// password page answers 429 at once. `None`: five per core (one running, four waiting).
    #[serde(default)]
    pub password_queue: Option<usize>,
    /// Invitations one inviter (user or app) may send per minute, per tenant.
    #[serde(default = "default_invitations_per_minute")]
    pub invitations_per_minute: u32,
}

fn default_invitations_per_minute() -> u32 {
    100
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInLimits {
    /// Live sign-in transactions per browser; a new one evicts the browser's oldest.
    pub per_browser: usize,
    /// Stored sign-in transactions on the instance; past it new sign-ins are refused (503).
    pub total: usize,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self { per_browser: 20, total: 100_000 }
    }
}

pub const DEFAULT_DATA_DIR: &str = "data";

impl Default for Config {
    fn default() -> Self {
        Self {
            public_url: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            keys_dir: None,
            trusted_proxies: Vec::new(),
            demo: false,
            workers: 0,
            cache_mib: default_cache_mib(),
            body_timeout_secs: default_body_timeout_secs(),
            stubs: false,
            smtp: None,
            tokens: TokenLifetimes {
                access_token_secs: 3600,
                id_token_secs: 3600,
                refresh_token_secs: 14 * 86400,
                refresh_family_max_secs: 90 * 86400,
                code_secs: 60,
                session_secs: 12 * 3600,
                signin_secs: 15 * 60,
                key_rotation_grace_secs: 86400,
                refresh_reuse_grace_secs: default_refresh_reuse_grace_secs(),
            },
            // OWASP's argon2id minimum (19 MiB, t=2, p=1).
            argon2: Argon2Params { memory_kib: 19456, iterations: 2, parallelism: 1 },
            rate_limit: RateLimit {
                password_failures: 5,
                window_secs: 900,
                password_queue: None,
                invitations_per_minute: default_invitations_per_minute(),
            },
            signins: SignInLimits::default(),
            database_url: None,
            key_encryption_key: None,
            database: DatabaseSettings::default(),
            federation: FederationSettings::default(),
            metrics_bind: None,
            log_format: LogFormat::Text,
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
        }
    }
}

/// CLI flags that override everything else; `None` means "not given".
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub demo: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<crate::secrets::Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// The HTTP worker threads this configuration runs (`workers`, or one per core).
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        }
    }

    pub fn load(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!("config file {} not found", path.display())));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(Env::prefixed("GATEHOUSE__").split("__")).merge(Serialized::defaults(overrides));
        let config: Config = fig.extract().map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            ConfigError::Invalid(msgs.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid(format!("public_url {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::Invalid("public_url must be http or https".into()));
            }
        }
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_secs", t.access_token_secs),
            ("tokens.id_token_secs", t.id_token_secs),
            ("tokens.refresh_token_secs", t.refresh_token_secs),
            ("tokens.refresh_family_max_secs", t.refresh_family_max_secs),
            ("tokens.code_secs", t.code_secs),
            ("tokens.session_secs", t.session_secs),
            ("tokens.signin_secs", t.signin_secs),
        ] {
            if v <= 0 {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        if let Some(smtp) = &self.smtp {
            smtp.from
                .parse::<lettre::message::Mailbox>()
                .map_err(|e| ConfigError::Invalid(format!("smtp.from {:?} is not an address: {e}", smtp.from)))?;
            for (name, v) in [
                ("smtp.retry_base_ms", smtp.retry_base_ms),
                ("smtp.max_attempts", u64::from(smtp.max_attempts)),
                ("smtp.timeout_secs", smtp.timeout_secs),
            ] {
                if v == 0 {
                    return Err(ConfigError::Invalid(format!("{name} must be positive")));
                }
            }
        }
        if self.tokens.refresh_reuse_grace_secs < 0 {
            return Err(ConfigError::Invalid("tokens.refresh_reuse_grace_secs must not be negative".into()));
        }
        if let Some(url) = &self.database_url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid("database_url must be a postgres:// URL".into()));
            }
            match &self.key_encryption_key {
                None => {
                    return Err(ConfigError::Invalid(
                        "key_encryption_key is required with database_url: it seals the signing keys in the \
                         database. Make one with `head -c 32 /dev/urandom | base64` and set \
                         GATEHOUSE__KEY_ENCRYPTION_KEY (the same on every node)"
                            .into(),
                    ));
                }
                Some(k) => {
                    crate::secrets::Kek::parse(k.expose()).map_err(ConfigError::Invalid)?;
                }
            }
        }
        if self.argon2.memory_kib < 8 * self.argon2.parallelism.max(1) || self.argon2.iterations == 0 {
            return Err(ConfigError::Invalid("argon2 parameters are too small".into()));
        }
        Ok(())
    }

    pub fn keys_dir(&self) -> PathBuf {
        match &self.keys_dir {
            Some(dir) => dir.clone(),
            None if self.data_dir == std::path::Path::new(DEFAULT_DATA_DIR) => PathBuf::from("keys"),
            None => self.data_dir.join("keys"),
        }
    }

    /// Settings for tests and benchmarks: cheap argon2, given directories.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            demo: true,
            workers: 2,
            argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
            ..Self::default()
        }
    }
}
