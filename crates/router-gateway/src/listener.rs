//! Serving the proxy API on a listener with a shutdown that never loses track of a request.
//!
//! `axum::serve` detaches each connection into its own task, so once its graceful shutdown
//! gives up, requests still running are out of reach and would finish — and try to record
//! their outcome — after the store's writer has been drained. Here every connection task
//! lives in a [`JoinSet`]: on shutdown the listener closes, open connections finish their
//! requests for up to the grace period, and whatever is still running then is aborted, which
//! drops its handler and lets it record itself as cancelled before the writer drains.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Serves `app` until `stop` turns true, then shuts down gracefully within `grace`.
/// Returns true when requests had to be cut at the end of the grace period.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    let mut connections = JoinSet::new();
    let (draining, draining_rx) = watch::channel(false);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let mut shutdown = draining_rx.clone();
                connections.spawn(async move {
                    let builder = Builder::new(TokioExecutor::new());
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = async { let _ = shutdown.wait_for(|d| *d).await; } => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            // Reap finished connections as they go, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
    }
    drop(listener);
    let _ = draining.send(true);
    let drained =
        tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} })
            .await;
    if drained.is_ok() {
        return false;
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    true
}
