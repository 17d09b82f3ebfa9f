//! Cross-node cache invalidation: one connection per node `LISTEN`s on the changes channel;
//! every write of a tenant, a policy or a key `NOTIFY`s it in its transaction, so every
//! node (this one included) drops the caches it touches as the write commits. When the
//! connection drops, the node reconnects every second and then drops every cache, since
//! changes made meanwhile were not heard.
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use super::{CHANNEL, PgStore};
use crate::model::TenantId;
use crate::storage::Change;

pub(super) fn payload(change: &Change) -> String {
    match change {
        Change::Tenant(t) => format!("tenant:{t}"),
        Change::Policies(t) => format!("policies:{t}"),
        Change::Keys => "keys".into(),
        Change::Everything => "everything".into(),
    }
}

fn parse(payload: &str) -> Change {
    let tenant = |s: &str| s.parse::<uuid::Uuid>().ok().map(TenantId::from);
    match payload.split_once(':') {
        Some(("tenant", t)) => tenant(t).map(Change::Tenant),
        Some(("policies", t)) => tenant(t).map(Change::Policies),
        _ if payload == "keys" => Some(Change::Keys),
        _ => None,
    }
    .unwrap_or(Change::Everything)
}

pub(super) fn start(store: PgStore, config: tokio_postgres::Config, tls: tokio_postgres_rustls::MakeRustlsConnect) {
    tokio::spawn(async move {
        let mut first = true;
        loop {
            match config.connect(tls.clone()).await {
                Ok((client, mut connection)) => {
                    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    // The connection only moves while it is polled: LISTEN runs beside it.
                    let sql = format!("LISTEN {CHANNEL}");
                    let listen = client.batch_execute(&sql);
                    tokio::pin!(listen);
                    let mut listening = false;
                    loop {
                        tokio::select! {
                            done = &mut listen, if !listening => {
                                if done.is_err() { break }
                                listening = true;
                                if !first { store.on_change(&Change::Everything) }
                                first = false;
                            }
                            msg = messages.next() => match msg {
                                Some(Ok(AsyncMessage::Notification(n))) => store.on_change(&parse(n.payload())),
                                Some(Ok(_)) => {}
                                Some(Err(_)) | None => break,
                            },
                        }
                    }
                    tracing::warn!("database change listener lost its connection; reconnecting");
                }
                Err(e) => tracing::debug!(error = %e, "database change listener cannot connect"),
            }
            first = false;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let t = TenantId::from(uuid::Uuid::from_u128(9));
        for c in [Change::Tenant(t), Change::Policies(t), Change::Keys, Change::Everything] {
            assert_eq!(parse(&payload(&c)), c);
        }
        assert_eq!(parse("nonsense:1"), Change::Everything);
    }
}
