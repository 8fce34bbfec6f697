//! `GET /api/journal/stream?device=&face=&since=&tail=`: the journal as
//! server-sent events, for the dashboard's live timeline (and `curl -N`).
//!
//! Each entry is one `event: entry` whose `data` is the entry's JSON and
//! whose `id` is the entry id, so a browser's `EventSource` resumes after
//! a reconnect by sending `Last-Event-ID` (which wins over `since` and
//! `tail`). `tail=N` starts with the newest N matching entries instead of
//! every entry the ring holds.
//!
//! Built on `journal.subscribe()` and `query`, not on a sleep loop: the
//! stream wakes when an entry is recorded. It is bounded: each wake reads
//! at most `BATCH` entries after the cursor, and the next batch is read
//! only when the client has taken the last one (the response body is
//! pulled by hyper as the socket drains), so a slow reader costs the
//! server at most one batch; entries the ring evicts meanwhile are simply
//! not sent. The stream ends when the simulator shuts down.

use super::ControlError;
use crate::journal::{Entry, Query};
use crate::state::State;
use axum::extract::{Query as AxQuery, State as AxState};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use http::HeaderMap;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Most entries read from the journal per wake (and so held per stream).
pub const BATCH: usize = 64;

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where one stream is: its filter, cursor, the batch being sent and what
/// wakes it.
struct Cursor {
    state: Arc<State>,
    query: Query,
    batch: VecDeque<Arc<Entry>>,
    latest: watch::Receiver<u64>,
}

/// The stream's route handler.
pub async fn stream(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    AxQuery(params): AxQuery<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ControlError> {
    let since = match headers.get("last-event-id") {
        Some(v) => Some(parse_id("Last-Event-ID", v.to_str().unwrap_or("?"))?),
        None => params.get("since").map(|v| parse_id("since", v)).transpose()?,
    };
    // An id beyond the newest entry was handed out by an earlier run of the
    // simulator (an EventSource reconnecting across a restart): this run's
    // ids start again at 1, so resume from the start, not from that id.
    let restarted = since.is_some_and(|s| s > state.journal.latest());
    let since = since.filter(|_| !restarted);
    let mut query = Query {
        device: params.get("device").filter(|d| !d.is_empty()).cloned(),
        face: super::face_param(params.get("face"))?,
        since,
        limit: Some(BATCH),
    };
    // `tail=N`: start with the newest N matching entries, not the whole
    // ring (a resuming client's Last-Event-ID still says where it was).
    if let Some(tail) = params.get("tail").map(|v| parse_id("tail", v)).transpose()?
        && (restarted || !headers.contains_key("last-event-id"))
    {
        let n = usize::try_from(tail).unwrap_or(usize::MAX);
        query.since = state.journal.tail_since(&query, n);
    }
    let cursor = Cursor {
        latest: state.journal.subscribe(),
        state,
        query,
        batch: VecDeque::new(),
    };
    let events = futures::stream::unfold(cursor, next);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// A non-negative integer, or 400 naming where it came from.
fn parse_id(name: &str, v: &str) -> Result<u64, ControlError> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| ControlError::BadRequest(format!("{name} must be a non-negative integer, got {v:?}")))
}

/// The next event: from the batch in hand, else the next batch, else wait
/// for a new entry or shutdown (then the stream ends).
async fn next(mut c: Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    loop {
        if let Some(entry) = c.batch.pop_front() {
            return Some((Ok(event(&entry)), c));
        }
        // Shutting down: end now rather than send what shutdown records.
        if c.state.shutdown.is_cancelled() {
            return None;
        }
        // Mark the current value seen before reading, so an entry recorded
        // after the read wakes the wait below. Every entry up to `seen` is
        // in the ring by now (ids are taken and stored under one lock).
        let seen = *c.latest.borrow_and_update();
        let found = c.state.journal.query(&c.query);
        let cursor = c.query.since.unwrap_or(0);
        let last = found.last().map_or(cursor, |e| e.id);
        // A short batch means everything up to `seen` was scanned: skip
        // the non-matching entries next time instead of filtering them again.
        let scanned = if found.len() < BATCH { last.max(seen) } else { last };
        c.query.since = Some(scanned.max(cursor));
        if !found.is_empty() {
            c.batch.extend(found);
            continue;
        }
        tokio::select! {
            changed = c.latest.changed() => changed.ok()?,
            _ = c.state.shutdown.cancelled() => return None,
        }
    }
}

/// One entry as an SSE event.
fn event(entry: &Entry) -> Event {
    let data = serde_json::to_string(entry).unwrap_or_else(|_| "{}".into());
    Event::default().event("entry").id(entry.id.to_string()).data(data)
}
