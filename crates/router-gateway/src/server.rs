//! Starting and stopping the gateway: open the store, start the writer, bind the listeners,
//! serve; on shutdown stop accepting, let in-flight requests finish up to the grace period,
//! then drain the writer so that every accepted record reaches the database.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use router_store::{Store, StoreError, WriterOptions, WriterReport, WriterTask, spawn_writer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use router_core::Knowledge;

use crate::app::{BuildError, Gateway, KNOWLEDGE_STATE};
use crate::config::Config;
use crate::dashboard::{Credentials, CredentialsError, Dashboard};
use crate::proxy;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("dashboard credentials: {0}")]
    Dashboard(#[from] CredentialsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What a shutdown did.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    /// In-flight requests were still running at the end of the grace period and were cut.
    pub forced: bool,
    pub writer: WriterReport,
}

/// A running gateway.
pub struct Running {
    pub gateway: Gateway,
    pub proxy_addr: SocketAddr,
    /// Where the admin dashboard listens; `None` when `dashboard.enabled = false`.
    pub dashboard_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<ShutdownReport>,
}

impl Running {
    /// The proxy's base URL, e.g. `http://127.0.0.1:3100`.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    /// The dashboard's URL, e.g. `http://127.0.0.1:3200/dashboard`.
    pub fn dashboard_url(&self) -> Option<String> {
        self.dashboard_addr.map(|addr| format!("http://{addr}{}", crate::dashboard::BASE))
    }

    /// Stops the gateway and waits until everything accepted is recorded.
    pub async fn shutdown(self) -> ShutdownReport {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Waits for the gateway to stop (after [`Running::shutdown`] or a signal given to
    /// [`start`]).
    pub async fn wait(self) -> ShutdownReport {
        match self.task.await {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(error = %e, "the server task ended abnormally");
                ShutdownReport { forced: true, writer: WriterReport::default() }
            }
        }
    }
}

/// A gateway opened inside another program: the store open, its writer running, the learned
/// state loaded and saved on an interval — but no listener. Mount [`Embedded::proxy_api`]
/// and [`Embedded::routing_api`] into your own axum app, and [`Embedded::close`] it on
/// shutdown so every record is written.
pub struct Embedded {
    pub gateway: Gateway,
    writer_task: WriterTask,
    saver: JoinHandle<()>,
    syncer: JoinHandle<()>,
    trimmer: JoinHandle<()>,
}

impl Embedded {
    /// The proxy API (`/v1/chat/completions`, `/v1/messages`, `/api/chat`, `/health`,
    /// `/models`, `/metrics`) with the routing API merged in.
    pub fn proxy_api(&self) -> Router {
        proxy::router(self.gateway.clone())
    }

    /// Only the routing API (`/api/routing/{analyze,feedback,stats}`).
    pub fn routing_api(&self) -> Router {
        crate::routing_api(self.gateway.clone())
    }

    /// Saves what was learned and drains the writer. Call it after your server has stopped
    /// taking requests.
    pub async fn close(self) -> WriterReport {
        self.saver.abort();
        self.syncer.abort();
        self.trimmer.abort();
        if let Err(e) = self.gateway.sync_replicas().await {
            tracing::warn!(error = %e, "could not share the last of the learned state with other replicas");
        }
        if let Err(e) = self.gateway.save_knowledge().await {
            tracing::error!(error = %e, "could not save the learned state at shutdown");
        }
        let store = self.gateway.store.clone();
        drop(self.gateway);
        let report = self.writer_task.shutdown().await;
        store.close().await;
        tracing::info!(written = report.written, dropped = report.dropped, "store drained");
        report
    }
}

/// Opens the store (migrating it), starts its writer, builds the gateway and loads what an
/// earlier run learned — everything but the listeners.
pub async fn open(config: Config) -> Result<Embedded, StartError> {
    let store = Store::connect(&config.store.url).await?;
    store.migrate().await?;
    let (writer, writer_task) = spawn_writer(
        store.clone(),
        WriterOptions {
            capacity: config.store.queue_capacity,
            max_batch: config.store.batch_size,
            max_delay: config.store.flush_interval,
            ..WriterOptions::default()
        },
    );
    let save_interval = config.routing.save_interval;
    let gateway = Gateway::new(config, store, writer)?;
    load_knowledge(&gateway).await?;
    gateway.skip_existing_deltas().await?;
    gateway.spawn_judge_probe();
    // Learned state is saved on an interval, so a crash loses at most that much learning.
    let saver = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(save_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = gateway.save_knowledge().await {
                    tracing::warn!(error = %e, "could not save the learned state");
                }
            }
        })
    };
    // What replicas sharing this store learn reaches the others on a short interval.
    let syncer = {
        let gateway = gateway.clone();
        let interval = gateway.config.routing.sync_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = gateway.sync_replicas().await {
                    tracing::warn!(error = %e, "could not share the learned state with other replicas");
                }
            }
        })
    };
    let trimmer = crate::trim::spawn(gateway.clone());
    Ok(Embedded { gateway, writer_task, saver, syncer, trimmer })
}

/// Loads what an earlier run learned, if the store has it.
async fn load_knowledge(gateway: &Gateway) -> Result<(), StartError> {
    let Some(saved) = gateway.store.get_state(KNOWLEDGE_STATE).await? else {
        return Ok(());
    };
    match serde_json::from_str::<Knowledge>(&saved.value) {
        Ok(knowledge) => {
            gateway.restore_knowledge(knowledge)?;
            tracing::info!("learned state restored from the store");
        }
        // A state from an incompatible version is not worth refusing to start over: the
        // router relearns, and says so.
        Err(e) => {
            tracing::warn!(error = %e, "the saved learned state could not be read; starting afresh")
        }
    }
    Ok(())
}

/// Opens the store (migrating it) and starts serving. The gateway stops when `signal`
/// resolves or [`Running::shutdown`] is called. The dashboard admits the operator named by
/// `ADMIN_USERNAME` / `ADMIN_PASSWORD` (or `ADMIN_PASSWORD_HASH`) in the environment; see
/// [`start_with_credentials`] to choose them instead.
pub async fn start(
    config: Config,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let credentials = if config.dashboard.enabled { Credentials::from_env()? } else { None };
    start_with_credentials(config, credentials, signal).await
}

/// [`start`], with the dashboard's credentials given (`None`: the dashboard only says how to
/// set a password).
pub async fn start_with_credentials(
    config: Config,
    credentials: Option<Credentials>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let listen = config.server.listen;
    let grace = config.server.shutdown_grace;
    let threads = config.server.threads;
    let busy_poll = config.server.busy_poll;
    let embedded = open(config).await?;
    let gateway = embedded.gateway.clone();
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind { addr: listen, source })?;
    let proxy_addr =
        listener.local_addr().map_err(|source| StartError::Bind { addr: listen, source })?;
    let dashboard_listener = match gateway.config.dashboard.enabled {
        true => {
            let addr = gateway.config.dashboard.listen;
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let local =
                listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
            Some((listener, local))
        }
        false => None,
    };
    let dashboard_addr = dashboard_listener.as_ref().map(|(_, addr)| *addr);

    let (stop, stopped) = watch::channel(false);
    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        signal.await;
        let _ = stop_on_signal.send(true);
    });

    // The dashboard stops taking connections with the proxy; its requests are short and
    // never hold up the shutdown.
    let dashboard = dashboard_listener.map(|(listener, addr)| {
        if credentials.is_none() {
            tracing::warn!(%addr, "the dashboard has no password: set ADMIN_PASSWORD (or ADMIN_PASSWORD_HASH); until then it shows only how to");
        }
        let app = Dashboard::new(gateway.clone(), credentials).router();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the dashboard server failed");
            }
        })
    });
    let app = crate::proxy::Front::new(gateway.clone());
    let prepare = {
        let gateway = gateway.clone();
        move || gateway.prepare_thread()
    };
    let task = tokio::spawn(async move {
        let forced = match threads {
            Some(threads) => {
                crate::listener::serve_on_threads(
                    listener, app, stopped, grace, threads, busy_poll, prepare,
                )
                .await
            }
            None => crate::listener::serve(listener, app, stopped, grace).await,
        };
        if forced {
            tracing::warn!(
                "grace period over: the requests still running were cut and recorded as cancelled"
            );
        }
        if let Some(dashboard) = dashboard {
            dashboard.abort();
        }
        let writer = embedded.close().await;
        ShutdownReport { forced, writer }
    });
    let dashboard_at = dashboard_addr.map_or_else(|| "off".to_string(), |a| a.to_string());
    tracing::info!(proxy = %proxy_addr, dashboard = %dashboard_at, "llm-router listening");
    Ok(Running { gateway, proxy_addr, dashboard_addr, stop, task })
}
