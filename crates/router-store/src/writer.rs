//! The batching writer: the request path hands records to a bounded queue and moves on; one
//! task writes them in batches, one transaction per batch. A routed request may be handed
//! over as its decision ([`RoutedRequest`](crate::RoutedRequest)): the task writes the
//! features and the ranking out as JSON, so the request's own thread does not.
//!
//! Nothing accepted is lost quietly. A batch that fails with a transient error (a lost
//! connection, a locked SQLite file) is retried with exponential backoff. A batch that fails
//! for a reason retrying cannot fix (one bad record) is split, so that only the bad records
//! are dropped. Whatever is finally dropped is logged and counted in [`WriterMetrics`].
//! [`WriterTask::shutdown`] closes the queue and drains everything already accepted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use crate::error::StoreError;
use crate::record::Record;
use crate::store::Store;

/// How the writer batches and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Records the queue holds before [`Writer::send`] waits (and [`Writer::try_send`]
    /// refuses).
    pub capacity: usize,
    /// Records written per transaction, at most.
    pub max_batch: usize,
    /// How long the first record of a batch waits for others to join it.
    pub max_delay: Duration,
    pub retry: RetryPolicy,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            capacity: 10_000,
            max_batch: 500,
            max_delay: Duration::from_millis(100),
            retry: RetryPolicy::default(),
        }
    }
}

/// Exponential backoff for batches that fail with transient errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first, before the batch is given up.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // About 25 s of retrying in all: enough to ride out a database restart.
        RetryPolicy {
            max_retries: 8,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterMetrics {
    /// Records taken into the queue.
    pub accepted: u64,
    /// Records committed to the database.
    pub written: u64,
    /// Transactions committed.
    pub batches: u64,
    /// Failed writes that were tried again.
    pub retries: u64,
    /// Batches in which at least one record was given up.
    pub failed_batches: u64,
    /// Records given up (each one logged).
    pub dropped: u64,
    /// Records waiting in the queue now.
    pub queue_depth: u64,
}

/// What the writer did over its life, returned by [`WriterTask::shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterReport {
    pub accepted: u64,
    pub written: u64,
    pub batches: u64,
    pub retries: u64,
    pub failed_batches: u64,
    pub dropped: u64,
}

/// The writer no longer takes records (it has been shut down). Holds the record back.
#[derive(Debug, thiserror::Error)]
#[error("the store writer is shut down")]
pub struct Closed(pub Record);

/// Why [`Writer::try_send`] did not take a record. Holds the record back.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    #[error("the store writer's queue is full")]
    Full(Record),
    #[error("the store writer is shut down")]
    Closed(Record),
}

impl TrySendError {
    pub fn into_record(self) -> Record {
        match self {
            TrySendError::Full(record) | TrySendError::Closed(record) => record,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    failed_batches: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn report(&self) -> WriterReport {
        WriterReport {
            accepted: self.accepted.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// The handle the gateway writes through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<Record>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Queues a record, waiting (asynchronously) for room if the queue is full. Fails only
    /// once the writer is shut down.
    pub async fn send(&self, record: impl Into<Record>) -> Result<(), Closed> {
        self.queue.send(record.into()).await.map_err(|error| Closed(error.0))?;
        Counters::add(&self.counters.accepted, 1);
        Ok(())
    }

    /// Queues a record if there is room right now.
    pub fn try_send(&self, record: impl Into<Record>) -> Result<(), TrySendError> {
        self.queue.try_send(record.into()).map_err(|error| match error {
            mpsc::error::TrySendError::Full(record) => TrySendError::Full(record),
            mpsc::error::TrySendError::Closed(record) => TrySendError::Closed(record),
        })?;
        Counters::add(&self.counters.accepted, 1);
        Ok(())
    }

    pub fn metrics(&self) -> WriterMetrics {
        let report = self.counters.report();
        WriterMetrics {
            accepted: report.accepted,
            written: report.written,
            batches: report.batches,
            retries: report.retries,
            failed_batches: report.failed_batches,
            dropped: report.dropped,
            queue_depth: (self.queue.max_capacity() - self.queue.capacity()) as u64,
        }
    }
}

/// The writer's task. Dropping it leaves the task running until every [`Writer`] is gone;
/// [`shutdown`](WriterTask::shutdown) stops it deliberately.
#[derive(Debug)]
pub struct WriterTask {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl WriterTask {
    /// Stops taking records, writes everything already taken (retrying as usual), and
    /// returns what the writer did. Sends made after this starts fail with [`Closed`].
    pub async fn shutdown(self) -> WriterReport {
        // An error means the task has already finished, which is what is being asked for.
        let _ = self.stop.send(());
        if let Err(error) = self.handle.await {
            tracing::error!(%error, "the store writer task ended abnormally");
        }
        self.counters.report()
    }
}

/// Starts the batching writer as a task on the current Tokio runtime (call it from within
/// one). Hand the [`Writer`] to the request path; keep the [`WriterTask`] for shutdown.
pub fn spawn_writer(store: Store, options: WriterOptions) -> (Writer, WriterTask) {
    let (queue, receiver) = mpsc::channel(options.capacity.max(1));
    let (stop, stop_signal) = oneshot::channel();
    let counters = Arc::new(Counters::default());
    let batcher = Batcher { store, options, counters: counters.clone() };
    let handle = tokio::spawn(batcher.run(receiver, stop_signal));
    (Writer { queue, counters: counters.clone() }, WriterTask { stop, handle, counters })
}

struct Batcher {
    store: Store,
    options: WriterOptions,
    counters: Arc<Counters>,
}

/// Whether the task still listens for the stop signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Listening,
    /// Stop was asked for (the queue is closed and draining), or the `WriterTask` was
    /// dropped (the task runs on until the senders are gone).
    Done,
}

impl Batcher {
    async fn run(self, mut queue: mpsc::Receiver<Record>, mut stop_signal: oneshot::Receiver<()>) {
        let max_batch = self.options.max_batch.max(1);
        let mut stop = Stop::Listening;
        let mut batch = Vec::with_capacity(max_batch);
        let mut rows = Vec::with_capacity(max_batch);
        loop {
            // Wait for the first record of a batch.
            tokio::select! {
                received = queue.recv_many(&mut batch, max_batch) => {
                    if received == 0 {
                        // Closed and empty: everything accepted has been written.
                        break;
                    }
                }
                signal = &mut stop_signal, if stop == Stop::Listening => {
                    stop = Stop::Done;
                    if signal.is_ok() {
                        queue.close();
                    }
                    continue;
                }
            }
            // Give others up to `max_delay` to join it. The task sleeps through the delay
            // instead of waking for every record that arrives (two per request, thousands a
            // second under load, each a task wake-up on the request path's threads), and
            // looks at the queue a few times on the way, so a batch that fills up waits a
            // quarter of the delay at most.
            let deadline = Instant::now() + self.options.max_delay;
            let step = (self.options.max_delay / 4).max(Duration::from_millis(1));
            // A closed queue is draining for shutdown: write at once.
            while !queue.is_closed() && batch.len() + queue.len() < max_batch {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                tokio::select! {
                    () = sleep_until((now + step).min(deadline)) => {}
                    signal = &mut stop_signal, if stop == Stop::Listening => {
                        stop = Stop::Done;
                        if signal.is_ok() {
                            // Draining: no point waiting out the delay any more.
                            queue.close();
                        }
                        break;
                    }
                }
            }
            // Take what has arrived, without waiting for more.
            while batch.len() < max_batch {
                match queue.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            rows.extend(batch.drain(..).filter_map(|record| self.row(record)));
            self.flush(&rows).await;
            rows.clear();
        }
    }

    /// The row a record is written as: requests handed over as decisions are written out
    /// here, on the writer's thread rather than the request's. One whose decision cannot be
    /// written as JSON is dropped, and counted.
    fn row(&self, record: Record) -> Option<Record> {
        match record.into_row() {
            Ok(row) => Some(row),
            Err(error) => {
                tracing::error!(%error, "dropping a request record: its decision cannot be written as JSON");
                Counters::add(&self.counters.failed_batches, 1);
                Counters::add(&self.counters.dropped, 1);
                None
            }
        }
    }

    /// Writes one batch, splitting it if one of its records cannot be written.
    async fn flush(&self, batch: &[Record]) {
        let error = match self.write_with_retry(batch).await {
            Ok(()) => {
                self.committed(batch.len());
                return;
            }
            Err(error) => error,
        };
        if error.is_transient() || batch.len() == 1 {
            tracing::error!(
                %error,
                records = batch.len(),
                first = %batch.first().map(Record::summary).unwrap_or_default(),
                "giving up on router records"
            );
            Counters::add(&self.counters.failed_batches, 1);
            Counters::add(&self.counters.dropped, batch.len());
            return;
        }
        // Something in the batch is wrong; write the records one by one so only that is lost.
        tracing::warn!(%error, records = batch.len(), "batch refused; writing its records singly");
        let mut dropped = 0;
        for record in batch {
            match self.write_with_retry(std::slice::from_ref(record)).await {
                Ok(()) => self.committed(1),
                Err(error) => {
                    tracing::error!(%error, record = %record.summary(), "dropping a router record");
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            Counters::add(&self.counters.failed_batches, 1);
            Counters::add(&self.counters.dropped, dropped);
        }
    }

    fn committed(&self, records: usize) {
        Counters::add(&self.counters.written, records);
        Counters::add(&self.counters.batches, 1);
    }

    async fn write_with_retry(&self, records: &[Record]) -> Result<(), StoreError> {
        let policy = &self.options.retry;
        let mut backoff = policy.initial_backoff;
        let mut retries = 0;
        loop {
            match self.store.write_batch(records).await {
                Ok(()) => return Ok(()),
                Err(error) if error.is_transient() && retries < policy.max_retries => {
                    retries += 1;
                    Counters::add(&self.counters.retries, 1);
                    tracing::warn!(
                        %error,
                        retry = retries,
                        backoff_ms = backoff.as_millis() as u64,
                        "writing router records failed; retrying"
                    );
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(policy.max_backoff);
                }
                Err(error) => return Err(error),
            }
        }
    }
}
