//! Builds the application: binds (port 0 picks a free port), opens the store, loads keys,
//! seeds the demo, and returns a server ready to run.
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};

use crate::app::AppState;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::demo::seed::{self, DemoCredentials};
use crate::keys::{KeyError, KeyRing};
use crate::password;
use crate::secrets::{new_token, random_bytes};
use crate::storage::Limiter;
use crate::storage::StoreError;
use crate::web::csp::content_security_policy;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {0}: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("demo: {0}")]
    Demo(#[from] seed::DemoError),
    #[error("{0}")]
    Other(String),
}

pub struct Application {
    url: String,
    port: u16,
    server: actix_web::dev::Server,
    state: web::Data<AppState>,
    stubs: web::Data<crate::demo::stub_idp::StubState>,
    demo: Option<DemoCredentials>,
    /// The `/metrics` listener's port and server, when `metrics_bind` is set.
    metrics: Option<(u16, actix_web::dev::ServerHandle)>,
    /// The public listening socket (a second handle on it): a shutdown stops it listening
    /// before the server drains. Dropped once the server has stopped.
    listening: TcpListener,
    /// Set at shutdown: every response from then on closes its connection.
    draining: Arc<AtomicBool>,
}

/// From a shutdown signal to the server's drain: connections in use get one more answer,
/// with `Connection: close`, so their clients do not send another request on a connection
/// the drain then closes; new connections are refused meanwhile.
const DRAIN: std::time::Duration = std::time::Duration::from_millis(1000);

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
}

static DEFAULT_CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| content_security_policy(Some("'self'")));
static SIGNIN_CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| content_security_policy(None));

/// Paths whose pages carry forms that end in a redirect to a destination only the sign-in
/// transaction knows (the relying party, the guest's home IdP, an invitation's landing page;
/// a stub home's login form ends, through the federation callback, at the relying party):
/// no `form-action` there, until those pages name their destinations.
fn is_signin_path(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    let second = parts.next().unwrap_or_default();
    first == "stub" || (first == "federation" && second == "callback") || second == "login"
}

/// Sets the CSP on every response that does not carry its own: `form-action 'self'`,
/// except on the sign-in pages (see [`is_signin_path`]).
fn with_csp<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: actix_web::dev::Service<
            actix_web::dev::ServiceRequest,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
{
    use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
    let signin = is_signin_path(req.path());
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        if !res.headers().contains_key(CONTENT_SECURITY_POLICY) {
            let csp: &str = if signin { &SIGNIN_CSP } else { &DEFAULT_CSP };
            if let Ok(v) = HeaderValue::from_str(csp) {
                res.headers_mut().insert(CONTENT_SECURITY_POLICY, v);
            }
        }
        Ok(res)
    }
}

/// The key that seals TOTP seeds: a file beside the signing keys, or, with a key-encryption
/// key, in the store sealed under it (so every node of a shared database has the same one;
/// the first node to start creates it).
async fn seal_key(
    store: &crate::storage::Store,
    config: &Config,
    kek: Option<&crate::secrets::Kek>,
) -> Result<crate::secrets::SealKey, StartupError> {
    let Some(kek) = kek else {
        return crate::secrets::SealKey::load_or_create(&config.keys_dir().join("seal.key"))
            .map_err(|e| StartupError::Other(format!("seal key: {e}")));
    };
    const NAME: &str = "seal_key_sealed";
    let fresh = kek.seal(NAME, &random_bytes::<32>()).map_err(StartupError::Other)?;
    let sealed = store.meta_or_insert_raw(NAME, &fresh).await?;
    let bytes: [u8; 32] = kek
        .open(NAME, &sealed)
        .map_err(|e| StartupError::Other(format!("seal key: {e}")))?
        .try_into()
        .map_err(|_| StartupError::Other("seal key: not 32 bytes".into()))?;
    crate::secrets::SealKey::new(&bytes).map_err(StartupError::Other)
}

impl Application {
    pub async fn build(config: Config, clock: SharedClock) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(config.bind).map_err(|e| StartupError::Bind(config.bind, e))?;
        let addr = listener.local_addr().map_err(|e| StartupError::Bind(config.bind, e))?;
        let port = addr.port();
        let listening = listener.try_clone().map_err(|e| StartupError::Bind(config.bind, e))?;
        // Both listeners first: an address in use changes nothing.
        let metrics_listener = match config.metrics_bind {
            Some(bind) => Some(TcpListener::bind(bind).map_err(|e| StartupError::Bind(bind, e))?),
            None => None,
        };
        let url =
            config.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string();

        let mut store = crate::storage::open_configured(&config).await?;
        // With metrics on, every store operation is timed (before anything else uses it).
        let prometheus = match &metrics_listener {
            Some(_) => Some(crate::telemetry::recorder().map_err(StartupError::Other)?),
            None => None,
        };
        if prometheus.is_some() {
            store = crate::telemetry::store::Timed::wrap(store);
        }
        // On a database the data dir holds only demo-credentials.json: made here (0700), as
        // the embedded store makes its own.
        if config.demo {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&config.data_dir)
                .map_err(|e| StartupError::Other(format!("{}: {e}", config.data_dir.display())))?;
        }
        let now = clock.now();
        let vault = crate::keys::KeyVault::from_config(&config)?;
        let kek = match &vault {
            crate::keys::KeyVault::Sealed(kek) => Some(kek.clone()),
            crate::keys::KeyVault::Files(_) => None,
        };
        let keys = KeyRing::load_or_create(&store, vault, now).await?;
        // The instance secret and the TOTP seal key are the same on every node of a store.
        let instance_secret: [u8; 32] =
            crate::storage::meta_or_insert(&store, "instance_secret", random_bytes::<32>()).await?;
        let seal = seal_key(&store, &config, kek.as_deref()).await?;
        let dummy_hash = password::hash(&new_token(), &config.argon2).map_err(StartupError::Other)?;
        let demo = if config.demo {
            let creds =
                seed::apply(&store, &config.data_dir, &url, &instance_secret, &config.argon2, now, kek.as_deref());
            Some(creds.await?)
        } else {
            None
        };
        crate::federation::ensure_b2b_clients(&store, &url, &instance_secret).await?;
        // https to partners' providers: rustls on aws-lc-rs with the system's roots.
        let http = crate::secrets::http_client_builder()
            .map_err(StartupError::Other)?
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| StartupError::Other(e.to_string()))?;
        let workers = config.worker_threads();
        let state = web::Data::new(AppState {
            public_url: url.clone(),
            limiter: Limiter::new(
                store.clone(),
                "pwd",
                config.rate_limit.password_failures,
                config.rate_limit.window_secs,
            ),
            ip_limiter: Limiter::new(
                store.clone(),
                "pwd_ip",
                config.rate_limit.password_failures * 10,
                config.rate_limit.window_secs,
            ),
            invite_limiter: Limiter::new(store.clone(), "invite", config.rate_limit.invitations_per_minute, 60),
            otp_send_limiter: Limiter::new(store.clone(), "otp_send", crate::signin::OTP_SENDS_PER_IP, 3600),
            otp_address_limiter: Limiter::new(store.clone(), "otp_address", crate::signin::OTP_SENDS_PER_ADDRESS, 3600),
            sso_limiter: Limiter::new(store.clone(), "sso", crate::signin::SSO_REUSES_PER_MINUTE, 60),
            passwords: password::Checker::new(
                config.rate_limit.password_queue.unwrap_or_else(|| 5 * password::threads()),
            ),
            config,
            store,
            keys,
            clock,
            instance_secret,
            seal,
            dummy_hash,
            http,
            discovery_cache: Default::default(),
            token_log_seen: Default::default(),
        });

        let shared = state.clone();
        // Features keep their own state beside the shared one.
        let demo_rp = web::Data::new(crate::demo::rp::DemoRp::default());
        let stubs = web::Data::new(crate::demo::stub_idp::StubState::default());
        let stubs_handle = stubs.clone();
        // Home IdPs' discovery documents and JWKS, reused for a few minutes.
        let homes = web::Data::new(crate::federation::MetadataCache::default());
        let body_secs = state.config.body_timeout_secs;
        let trusted = state.config.trusted_proxies.clone();
        let shutdown_secs = state.config.shutdown_timeout_secs;
        let draining = Arc::new(AtomicBool::new(false));
        let drain_flag = draining.clone();
        let server = HttpServer::new(move || {
            let trusted = trusted.clone();
            let draining = drain_flag.clone();
            App::new()
                .app_data(shared.clone())
                .app_data(demo_rp.clone())
                .app_data(stubs.clone())
                .app_data(homes.clone())
                .app_data(web::PayloadConfig::new(64 * 1024))
                .wrap(security_headers())
                .wrap_fn(move |mut req, srv| {
                    crate::web::net::BodyDeadline::apply(&mut req, body_secs);
                    actix_web::dev::Service::call(srv, req)
                })
                .wrap_fn(with_csp)
                .wrap_fn(move |req, srv| crate::telemetry::http::observe(req, srv, &trusted, &draining))
                .configure(crate::routes::configure)
        })
        .client_request_timeout(std::time::Duration::from_secs(body_secs))
        .workers(workers)
        // Signals are handled by `run_until_signal` (graceful on SIGINT too, then a flush).
        .disable_signals()
        .shutdown_timeout(shutdown_secs)
        .listen(listener)
        .map_err(|e| StartupError::Bind(addr, e))?
        .run();
        let metrics = match (metrics_listener, prometheus) {
            (Some(listener), Some(handle)) => Some(metrics_server(listener, handle)?),
            _ => None,
        };

        // Keys and discovery documents follow changes made on any node of the store.
        let watcher = state.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let mut changes = watcher.store.changes();
            loop {
                let change = match changes.recv().await {
                    Ok(c) => c,
                    Err(RecvError::Lagged(_)) => crate::storage::Change::Everything,
                    Err(RecvError::Closed) => break,
                };
                use crate::storage::Change;
                if matches!(change, Change::Keys | Change::Everything)
                    && let Err(e) = watcher.keys.reload(&watcher.store, watcher.now()).await
                {
                    tracing::warn!(error = %e, "signing keys not reloaded; the previous set stays");
                }
                if matches!(change, Change::Tenant(_) | Change::Keys | Change::Everything) {
                    watcher.discovery_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                }
            }
        });

        // Queued mail goes out from here, never from a request (src/mail/worker.rs).
        crate::mail::worker::spawn(state.clone().into_inner());

        let sweeper = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
            loop {
                tick.tick().await;
                let s = sweeper.clone();
                // sled's sweep walks whole trees: off the async threads.
                let handle = tokio::runtime::Handle::current();
                let _ = tokio::task::spawn_blocking(move || handle.block_on(s.store.sweep(s.now()))).await;
            }
        });
        Ok(Self { url, port, server, state, stubs: stubs_handle, demo, metrics, listening, draining })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn demo_credentials(&self) -> Option<&DemoCredentials> {
        self.demo.as_ref()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The stub home IdPs' pending requests and counters (for tests).
    pub fn stubs(&self) -> web::Data<crate::demo::stub_idp::StubState> {
        self.stubs.clone()
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The port `/metrics` is served on, when `metrics_bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until the server is stopped (its handle), then stops the metrics listener and
    /// flushes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        drop(self.listening);
        if let Some((_, metrics)) = &self.metrics {
            metrics.stop(false).await;
        }
        if let Err(e) = self.state.store.flush().await {
            tracing::error!(error = %e, "the store could not be flushed at shutdown");
            return Err(std::io::Error::other(e.to_string()));
        }
        tracing::info!("stopped");
        served
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: the listener stops at once
    /// (new connections are refused), connections in use are answered for [`DRAIN`] with
    /// `Connection: close`, then requests in flight get `shutdown_timeout_secs` to finish, and
    /// the store is flushed before this returns. A second signal stops at once.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let handle = self.server.handle();
        let listening = self.listening.try_clone()?;
        let draining = self.draining.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down: new connections refused, requests in flight finish");
            draining.store(true, Ordering::SeqCst);
            // Shut down for reading, a listening socket stops listening: connects are refused.
            if let Err(e) = socket2::SockRef::from(&listening).shutdown(std::net::Shutdown::Read) {
                tracing::warn!(error = %e, "the listener could not be closed ahead of the drain");
            }
            drop(listening);
            let graceful = async {
                tokio::time::sleep(DRAIN).await;
                handle.stop(true).await;
            };
            tokio::select! {
                _ = graceful => {}
                _ = term.recv() => handle.stop(false).await,
                _ = int.recv() => handle.stop(false).await,
            }
        });
        self.run_until_stopped().await
    }
}

/// The `/metrics` listener: its own server with one worker, so the public port never
/// serves it.
fn metrics_server(
    listener: TcpListener,
    handle: metrics_exporter_prometheus::PrometheusHandle,
) -> Result<(u16, actix_web::dev::ServerHandle), StartupError> {
    let bind = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?;
    let port = listener.local_addr().map_err(|e| StartupError::Bind(bind, e))?.port();
    let upkeep = handle.clone();
    // Histograms are folded in on every scrape; upkeep bounds their memory between scrapes.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let data = web::Data::new(handle);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(crate::routes::configure_metrics))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .map_err(|e| StartupError::Bind(bind, e))?
        .run();
    let server_handle = server.handle();
    tokio::spawn(server);
    tracing::info!(port, "metrics served at /metrics");
    Ok((port, server_handle))
}
