//! Serving the proxy API on a listener with a shutdown that never loses track of a request.
//!
//! `axum::serve` detaches each connection into its own task, so once its graceful shutdown
//! gives up, requests still running are out of reach and would finish — and try to record
//! their outcome — after the store's writer has been drained. Here every connection task
//! lives in a [`JoinSet`]: on shutdown the listener closes, open connections finish their
//! requests for up to the grace period, and whatever is still running then is aborted, which
//! drops its handler and lets it record itself as cancelled before the writer drains.
//!
//! [`serve_on_threads`] runs that same loop on threads of its own, each with a
//! single-threaded runtime accepting from the one socket, the way nginx runs a worker per
//! core: a connection, its requests, and the upstream connections they use then all live on
//! one thread, and a request is not handed between threads on its way through. Those
//! threads can also busy-poll (see [`crate::busy_poll`]).

use std::num::NonZeroUsize;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::busy_poll::{self, Watched};
use crate::proxy::Front;

/// Serves `app` until `stop` turns true, then shuts down gracefully within `grace`.
/// Returns true when requests had to be cut at the end of the grace period.
pub async fn serve(
    listener: TcpListener,
    app: Front,
    stop: watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    serve_connections(listener, app, stop, grace, false).await
}

/// [`serve`], with each connection's reads and writes counted as activity for the thread's
/// busy poller when `watched`.
async fn serve_connections(
    listener: TcpListener,
    app: Front,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    watched: bool,
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
                let service = app.clone();
                let mut shutdown = draining_rx.clone();
                connections.spawn(async move {
                    let builder = Builder::new(TokioExecutor::new());
                    let io = TokioIo::new(Watched::new(stream, watched));
                    let connection = builder.serve_connection_with_upgrades(io, service);
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

/// [`serve`] on `threads` threads, each running its own event loop and accepting from the
/// same socket (the kernel hands each connection to whichever thread asks first, so a busy
/// thread takes fewer). Each thread calls `prepare` before it takes its first connection,
/// and busy-polls for `busy_poll` after its connections' last I/O when that is set.
/// Returns true when any of them had to cut requests.
pub async fn serve_on_threads(
    listener: TcpListener,
    app: Front,
    stop: watch::Receiver<bool>,
    grace: Duration,
    threads: NonZeroUsize,
    busy_poll: Option<Duration>,
    prepare: impl Fn() + Clone + Send + 'static,
) -> bool {
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot hand the listener to the serving threads");
            return false;
        }
    };
    let mut running = Vec::with_capacity(threads.get());
    for index in 0..threads.get() {
        let started = listener.try_clone().and_then(|listener| {
            let (app, stop, prepare) = (app.clone(), stop.clone(), prepare.clone());
            let (done, finished) = oneshot::channel();
            std::thread::Builder::new().name(format!("llm-router-{index}")).spawn(move || {
                prepare();
                let _ = done.send(serve_here(listener, app, stop, grace, busy_poll));
            })?;
            Ok(finished)
        });
        match started {
            Ok(finished) => running.push(finished),
            Err(e) => tracing::error!(error = %e, "cannot start a serving thread"),
        }
    }
    if running.is_empty() {
        // No thread could be had: serve on the caller's runtime rather than not at all.
        return match TcpListener::from_std(listener) {
            Ok(listener) => serve(listener, app, stop, grace).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot serve the proxy API");
                false
            }
        };
    }
    let mut forced = false;
    for finished in running {
        // A thread that ended without saying (it panicked) may have left requests behind.
        forced |= finished.await.unwrap_or(true);
    }
    forced
}

/// One serving thread: a single-threaded runtime running [`serve`] until it returns.
fn serve_here(
    listener: std::net::TcpListener,
    app: Front,
    stop: watch::Receiver<bool>,
    grace: Duration,
    busy_poll: Option<Duration>,
) -> bool {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a serving thread's runtime");
            return false;
        }
    };
    runtime.block_on(async move {
        if let Some(window) = busy_poll {
            busy_poll::spawn_poller(window);
        }
        match TcpListener::from_std(listener) {
            Ok(listener) => {
                serve_connections(listener, app, stop, grace, busy_poll.is_some()).await
            }
            Err(e) => {
                tracing::error!(error = %e, "a serving thread cannot use the listener");
                false
            }
        }
    })
}
