//! `state.sqlite`'s connection and the queue in front of it. Every statement runs on the blocking
//! pool: calls that arrive while the connection is busy wait in the queue, and one blocking task
//! takes every waiting call at once (one hop to the pool for the lot, not one each). Reads run as
//! they are; transactions are written together in one `BEGIN IMMEDIATE … COMMIT` (group commit),
//! each inside its own SAVEPOINT, so a failed condition rolls back only that transaction's writes,
//! and their callers are answered after the COMMIT. The outcome is exactly that of running the
//! transactions one after another in queue order, with one commit (one WAL append) for the group.

use super::Statements;
use crate::components::state::{
    Concurrency, StoreError, StoreResult, TxOperation, expiry_seconds, parse_etag,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The most calls taken from the queue at once; later ones wait for the next round.
const MAX_GROUP: usize = 256;

/// A read: runs on the connection and sends its own answer.
type Read = Box<dyn FnOnce(&mut Connection, &Statements) + Send>;

/// A transaction waiting for the writer, and where its outcome goes.
struct Write {
    ops: Vec<TxOperation>,
    answer: oneshot::Sender<StoreResult<()>>,
}

enum Call {
    Read(Read),
    Write(Write),
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Call>,
    /// A blocking task is draining the queue; new calls only join it.
    draining: bool,
}

/// One SQLite connection, its statements and the queue of calls waiting for it.
pub(super) struct ConnectionQueue {
    conn: Mutex<Connection>,
    sql: Statements,
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for ConnectionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionQueue")
            .field("table", &self.sql.table)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn stopped() -> StoreError {
    StoreError::backend("the SQLite connection's worker stopped")
}

impl ConnectionQueue {
    pub(super) fn new(conn: Connection, sql: Statements) -> Self {
        ConnectionQueue {
            conn: Mutex::new(conn),
            sql,
            queue: Mutex::default(),
        }
    }

    /// Runs `read` on the connection.
    pub(super) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&mut Connection, &Statements) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (answer, outcome) = oneshot::channel();
        self.submit(Call::Read(Box::new(move |conn, sql| {
            let _ = answer.send(read(conn, sql)); // the caller may have gone away
        })));
        outcome.await.map_err(|_| stopped())?
    }

    /// Writes `ops` as one transaction, in the next group.
    pub(super) async fn transact(self: &Arc<Self>, ops: Vec<TxOperation>) -> StoreResult<()> {
        let (answer, outcome) = oneshot::channel();
        self.submit(Call::Write(Write { ops, answer }));
        outcome.await.map_err(|_| stopped())?
    }

    /// Queues `call`; starts a worker on the blocking pool when none is draining the queue.
    fn submit(self: &Arc<Self>, call: Call) {
        let start = {
            let mut queue = lock(&self.queue);
            queue.waiting.push(call);
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.drain());
        }
    }

    /// Runs the waiting calls until the queue is empty: the reads of a round in order, then its
    /// transactions as one group.
    fn drain(&self) {
        let _reset = ResetOnPanic(self);
        loop {
            let round: Vec<Call> = {
                let mut queue = lock(&self.queue);
                if queue.waiting.is_empty() {
                    queue.draining = false;
                    return;
                }
                let take = queue.waiting.len().min(MAX_GROUP);
                queue.waiting.drain(..take).collect()
            };
            let mut conn = lock(&self.conn);
            let (mut ops, mut answers) = (Vec::new(), Vec::new());
            for call in round {
                match call {
                    Call::Read(read) => read(&mut conn, &self.sql),
                    Call::Write(w) => {
                        ops.push(w.ops);
                        answers.push(w.answer);
                    }
                }
            }
            if ops.is_empty() {
                continue;
            }
            let outcomes = write_group(&mut conn, &self.sql, &ops);
            drop(conn);
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(outcome); // the caller may have gone away
            }
        }
    }

    /// The connection itself, for tests that drive [`write_group`].
    #[cfg(test)]
    pub(super) fn lock_for_test(&self) -> (MutexGuard<'_, Connection>, &Statements) {
        (lock(&self.conn), &self.sql)
    }
}

/// Should a worker panic, the next call starts a new one, and the waiting calls fail (their
/// answers are dropped) instead of waiting forever.
struct ResetOnPanic<'a>(&'a ConnectionQueue);

impl Drop for ResetOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut queue = lock(&self.0.queue);
            queue.waiting.clear();
            queue.draining = false;
        }
    }
}

/// Writes `group` under one COMMIT, each transaction in its own SAVEPOINT; one outcome each.
/// When the group itself fails (BEGIN, a SAVEPOINT, COMMIT), every transaction fails with it.
pub(super) fn write_group(
    conn: &mut Connection,
    sql: &Statements,
    group: &[Vec<TxOperation>],
) -> Vec<StoreResult<()>> {
    let now = super::now_millis();
    let failed_group = |e: &dyn std::fmt::Display| {
        group
            .iter()
            .map(|_| Err(StoreError::backend(e)))
            .collect::<Vec<_>>()
    };
    // IMMEDIATE takes the write lock up front, so two processes sharing the file cannot both
    // read an etag and then both write.
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed_group(&e),
    };
    let mut outcomes = Vec::with_capacity(group.len());
    for ops in group {
        let mut savepoint = match tx.savepoint() {
            Ok(sp) => sp,
            Err(e) => return failed_group(&e),
        };
        let outcome = run_one(&savepoint, sql, ops, now);
        let closed = match outcome {
            Ok(()) => savepoint.commit(),
            Err(_) => savepoint.rollback().and_then(|()| savepoint.commit()),
        };
        if let Err(e) = closed {
            return failed_group(&e); // dropping `tx` rolls the whole group back
        }
        outcomes.push(outcome);
    }
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => failed_group(&e),
    }
}

/// One logical transaction: every condition is checked against the state before it, then all
/// operations apply.
fn run_one(conn: &Connection, sql: &Statements, ops: &[TxOperation], now: i64) -> StoreResult<()> {
    for op in ops {
        check(conn, sql, op, now)?;
    }
    for op in ops {
        apply(conn, sql, op, now)?;
    }
    Ok(())
}

fn current_etag(
    conn: &Connection,
    sql: &Statements,
    key: &str,
    now: i64,
) -> StoreResult<Option<i64>> {
    conn.prepare_cached(&sql.select_etag)
        .and_then(|mut stmt| {
            stmt.query_row(params![key, now], |row| row.get(0))
                .optional()
        })
        .map_err(StoreError::backend)
}

/// Checks one operation's etag / first-write condition against the current row.
fn check(conn: &Connection, sql: &Statements, op: &TxOperation, now: i64) -> StoreResult<()> {
    let (key, etag, first_write) = match op {
        TxOperation::Upsert(r) => (&r.key, &r.etag, r.concurrency == Concurrency::FirstWrite),
        TxOperation::Delete(r) => (&r.key, &r.etag, false),
        TxOperation::Check(r) => {
            let current = current_etag(conn, sql, &r.key, now)?;
            return match current == Some(parse_etag(&r.etag)?) {
                true => Ok(()),
                false => Err(StoreError::EtagMismatch(format!("key {}", r.key))),
            };
        }
    };
    if etag.is_none() && !first_write {
        return Ok(()); // an unconditional write reads nothing
    }
    let current = current_etag(conn, sql, key, now)?;
    match etag {
        Some(etag) if current != Some(parse_etag(etag)?) => {
            Err(StoreError::EtagMismatch(format!("key {key}")))
        }
        None if first_write && current.is_some() => Err(StoreError::EtagMismatch(format!(
            "key {key} already exists"
        ))),
        _ => Ok(()),
    }
}

fn apply(conn: &Connection, sql: &Statements, op: &TxOperation, now: i64) -> StoreResult<()> {
    let written = match op {
        TxOperation::Upsert(r) => {
            let expire_at =
                expiry_seconds(r.ttl).map(|s| now.saturating_add(s.saturating_mul(1000)));
            conn.prepare_cached(&sql.upsert).and_then(|mut stmt| {
                stmt.execute(params![
                    r.key,
                    r.value.as_ref(),
                    super::new_etag(),
                    expire_at
                ])
            })
        }
        TxOperation::Delete(r) => conn
            .prepare_cached(&sql.delete)
            .and_then(|mut stmt| stmt.execute(params![r.key])),
        TxOperation::Check(_) => Ok(0),
    };
    written.map(|_| ()).map_err(StoreError::backend)
}
