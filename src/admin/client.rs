//! The CLI's client of a running server's admin API, like `Connect-MsolService`: it gets an
//! app token with the client credential, then calls `/graph/v1.0`.
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{Collection, ErrorBody};
use crate::oidc::wire::TokenResponse;

pub struct Connection {
    pub base: String,
    http: reqwest::Client,
    token: String,
}

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub server: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl Credentials {
    /// Fills what is missing from `demo-credentials.json` (written by `serve --demo`). A secret
    /// is only sent to a server named with it: a secret the user gave (flag or environment)
    /// needs a server the user gave; a secret from the file goes to the file's server unless the
    /// user named one. The tenant is never guessed: given, or the file's.
    pub fn with_file(mut self, file: &Path) -> Result<Self, String> {
        if self.client_secret.is_some() {
            if self.server.is_none() {
                return Err(
                    "a client secret was given (--client-secret or GATEHOUSE_CLIENT_SECRET) without a server: \
                     pass --server (or GATEHOUSE_SERVER); it is not sent to the server named in a credentials file"
                        .into(),
                );
            }
            if self.client_id.is_none() {
                return Err("a client secret was given without --client-id (or GATEHOUSE_CLIENT_ID)".into());
            }
            if self.tenant.is_none() {
                return Err("pass --tenant (or GATEHOUSE_TENANT): the tenant of the admin client".into());
            }
            return Ok(self);
        }
        let bytes = std::fs::read(file).map_err(|e| {
            format!("no admin credential given and {} could not be read ({e}); pass --server, --tenant, --client-id and --client-secret", file.display())
        })?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
        let get = |p: &str| v.pointer(p).and_then(Value::as_str).map(String::from);
        self.server = self.server.or(get("/url"));
        self.tenant = self.tenant.or(get("/admin/tenant"));
        self.client_id = self.client_id.or(get("/admin/client_id"));
        self.client_secret = get("/admin/client_secret");
        if self.tenant.is_none() {
            return Err(format!("{} names no admin tenant; pass --tenant (or GATEHOUSE_TENANT)", file.display()));
        }
        Ok(self)
    }
}

pub async fn connect(c: &Credentials) -> Result<Connection, String> {
    let base = c.server.clone().ok_or("no --server")?.trim_end_matches('/').to_string();
    let tenant = c.tenant.clone().ok_or("no --tenant")?;
    let id = c.client_id.clone().ok_or("no --client-id")?;
    let secret = c.client_secret.clone().ok_or("no --client-secret")?;
    let http = crate::secrets::http_client_builder()?
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = http
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", &format!("{base}/graph/.default"))])
        .send()
        .await
        .map_err(|e| format!("cannot reach {base}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    match serde_json::from_str::<TokenResponse>(&text) {
        Ok(t) => Ok(Connection { base, http, token: t.access_token }),
        Err(_) => {
            let body: Value = serde_json::from_str(&text).map_err(|_| "error decoding response body".to_string())?;
            Err(format!("sign-in refused ({status}): {body}"))
        }
    }
}

impl Connection {
    /// Sends a request; the body of a success, or the Graph error as `status code: message`.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> Result<String, String> {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}/graph/v1.0/{path}", self.base) };
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            return Ok(text);
        }
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(ErrorBody { error }) => (error.code, error.message),
            Err(_) => ("error".to_string(), String::new()),
        };
        Err(format!("{status} {code}: {message}"))
    }

    /// Sends `body` (if any) and reads the answer as `T` (`()` for an empty answer).
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, String> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|e| e.to_string())?;
        let text = self.send(method, path, body).await?;
        serde_json::from_str(if text.is_empty() { "null" } else { &text })
            .map_err(|e| format!("unexpected answer from {path}: {e}"))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        self.call(reqwest::Method::GET, path, None::<&()>).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, String> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// POSTs `body` to an action that answers 204 No Content (e.g. a `$ref`).
    pub async fn post_no_content(&self, path: &str, body: &impl Serialize) -> Result<(), String> {
        self.send(reqwest::Method::POST, path, Some(serde_json::to_vec(body).map_err(|e| e.to_string())?)).await?;
        Ok(())
    }

    pub async fn patch(&self, path: &str, body: &impl Serialize) -> Result<(), String> {
        self.send(reqwest::Method::PATCH, path, Some(serde_json::to_vec(body).map_err(|e| e.to_string())?)).await?;
        Ok(())
    }

    pub async fn delete(&self, path: &str) -> Result<(), String> {
        self.send(reqwest::Method::DELETE, path, None).await?;
        Ok(())
    }

    /// GETs a collection, following `@odata.nextLink`.
    pub async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let page: Collection<T> = self.get(&p).await?;
            out.extend(page.value);
            next = page.next_link;
        }
        Ok(out)
    }
}

/// Prints rows as an aligned text table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}
