//! Group commit: callers that need their writes on disk before they answer wait for one
//! shared `fsync` instead of each doing their own. A dedicated thread flushes whenever
//! someone is waiting; every caller whose write finished before it asked is covered by
//! the next flush to start.
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;

struct Shared {
    /// Tickets handed out so far.
    requested: Mutex<u64>,
    wake: Condvar,
    /// The highest ticket whose flush has completed (or failed, with the error text).
    done: watch::Sender<(u64, Option<String>)>,
}

#[derive(Clone)]
pub struct Flusher(Arc<Shared>);

impl Flusher {
    pub fn start(db: sled::Db) -> Self {
        let (done, _) = watch::channel((0, None));
        let shared = Arc::new(Shared { requested: Mutex::new(0), wake: Condvar::new(), done });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("gatehouse-flush".into())
            .spawn(move || {
                let mut flushed = 0u64;
                loop {
                    let target = {
                        let mut req = worker.requested.lock().unwrap_or_else(|p| p.into_inner());
                        while *req <= flushed {
                            req = worker.wake.wait(req).unwrap_or_else(|p| p.into_inner());
                        }
                        *req
                    };
                    let error = db.flush().err().map(|e| e.to_string());
                    flushed = target;
                    worker.done.send_replace((target, error));
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the flush thread"));
        Self(shared)
    }

    /// Resolves once everything written before this call is on disk.
    pub async fn flush(&self) -> Result<(), String> {
        let mut rx = self.0.done.subscribe();
        let ticket = {
            let mut req = self.0.requested.lock().unwrap_or_else(|p| p.into_inner());
            *req += 1;
            *req
        };
        self.0.wake.notify_one();
        loop {
            {
                let (done, error) = &*rx.borrow_and_update();
                if *done >= ticket {
                    return match error {
                        Some(e) => Err(e.clone()),
                        None => Ok(()),
                    };
                }
            }
            rx.changed().await.map_err(|e| e.to_string())?;
        }
    }
}
