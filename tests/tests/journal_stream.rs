//! `GET /api/journal/stream`: the journal as server-sent events, read over a
//! real socket: held entries first, then new ones as they are recorded;
//! filters; `Last-Event-ID` resumes; bad input is a 400; shutdown ends it.

use avs_sim::journal::{Face, Kind, Record};
use avs_sim_tests::{DEADLINE, TestSim};
use serde_json::Value;

/// One server-sent event: its `event`, `id` and `data` fields.
#[derive(Debug, Default)]
struct SseEvent {
    event: String,
    id: String,
    data: String,
}

/// Reads events off a streaming response, chunk by chunk.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    async fn open(sim: &TestSim, query: &str, last_event_id: Option<&str>) -> SseReader {
        let mut req = sim.http.get(sim.control(&format!("/api/journal/stream{query}")));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{query}");
        let ct = resp.headers()[http::header::CONTENT_TYPE].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent::default();
                for line in block.lines() {
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    match k {
                        "event" => ev.event = v.to_string(),
                        "id" => ev.id = v.to_string(),
                        "data" => ev.data.push_str(v),
                        _ => {}
                    }
                }
                if !ev.event.is_empty() || !ev.data.is_empty() {
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.resp.chunk())
                .await
                .expect("an event or the end within the deadline")
                .ok()??;
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next entry, checked to be a well-formed `entry` event.
    async fn entry(&mut self) -> Value {
        let ev = self.next().await.expect("the stream goes on");
        assert_eq!(ev.event, "entry", "{ev:?}");
        let entry: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(ev.id, entry["id"].to_string(), "id: is the entry id");
        entry
    }
}

fn record(sim: &TestSim, face: Face, device: &str, summary: &str) -> u64 {
    sim.handle
        .state
        .journal
        .record(Record::new(face, Kind::Request, summary).device(device))
}

#[tokio::test]
async fn held_entries_then_live_ones_filtered_by_device_and_face() {
    let sim = TestSim::start(|_| {}).await;
    let a = record(&sim, Face::Avs, "d1", "one");
    record(&sim, Face::Avs, "d2", "other device");
    let b = record(&sim, Face::Lwa, "d1", "two");

    let mut all = SseReader::open(&sim, "?device=d1", None).await;
    assert_eq!(all.entry().await["id"], a);
    let second = all.entry().await;
    assert_eq!(
        (second["id"].as_u64(), second["summary"].as_str()),
        (Some(b), Some("two"))
    );

    let mut avs = SseReader::open(&sim, "?device=d1&face=avs", None).await;
    assert_eq!(avs.entry().await["id"], a);

    // Recorded after both streams were open: each gets what matches it.
    let c = record(&sim, Face::Lwa, "d1", "live lwa");
    let d = record(&sim, Face::Avs, "d1", "live avs");
    assert_eq!(all.entry().await["id"], c);
    assert_eq!(all.entry().await["id"], d);
    let live = avs.entry().await;
    assert_eq!((live["id"].as_u64(), live["face"].as_str()), (Some(d), Some("avs")));
    sim.stop().await;
}

#[tokio::test]
async fn last_event_id_resumes_after_that_entry_and_wins_over_since() {
    let sim = TestSim::start(|_| {}).await;
    let ids: Vec<u64> = (0..5).map(|i| record(&sim, Face::Avs, "r", &format!("e{i}"))).collect();
    let mut resumed = SseReader::open(&sim, "?device=r&since=0", Some(&ids[2].to_string())).await;
    assert_eq!(resumed.entry().await["id"], ids[3]);
    assert_eq!(resumed.entry().await["id"], ids[4]);
    let mut since = SseReader::open(&sim, &format!("?device=r&since={}", ids[3]), None).await;
    assert_eq!(since.entry().await["id"], ids[4]);
    sim.stop().await;
}

#[tokio::test]
async fn tail_starts_with_the_newest_matching_entries_or_only_new_ones() {
    let sim = TestSim::start(|_| {}).await;
    let ids: Vec<u64> = (0..6).map(|i| record(&sim, Face::Avs, "t", &format!("e{i}"))).collect();
    record(&sim, Face::Avs, "other", "not mine");
    let mut tail = SseReader::open(&sim, "?device=t&tail=2", None).await;
    assert_eq!(tail.entry().await["id"], ids[4]);
    assert_eq!(tail.entry().await["id"], ids[5]);
    let mut fresh = SseReader::open(&sim, "?device=t&tail=0", None).await;
    let mut resumed = SseReader::open(&sim, "?device=t&tail=0", Some(&ids[3].to_string())).await;
    assert_eq!(resumed.entry().await["id"], ids[4], "Last-Event-ID wins over tail");
    let new = record(&sim, Face::Avs, "t", "new");
    assert_eq!(fresh.entry().await["id"], new, "tail=0 sends only what comes after");
    assert_eq!(tail.entry().await["id"], new);
    sim.stop().await;
}

/// An EventSource reconnecting across a restart sends an id from the old
/// run, beyond this run's newest entry: the stream starts over (with `tail`
/// when asked) instead of waiting for ids this run has not reached.
#[tokio::test]
async fn a_last_event_id_from_an_earlier_run_starts_over() {
    let sim = TestSim::start(|_| {}).await;
    let ids: Vec<u64> = (0..3).map(|i| record(&sim, Face::Avs, "s", &format!("e{i}"))).collect();
    let stale = (ids[2] + 1_000).to_string();
    let mut all = SseReader::open(&sim, "?device=s", Some(&stale)).await;
    assert_eq!(all.entry().await["id"], ids[0]);
    let mut tail = SseReader::open(&sim, "?device=s&tail=1", Some(&stale)).await;
    assert_eq!(tail.entry().await["id"], ids[2], "tail applies after a restart");
    let new = record(&sim, Face::Avs, "s", "new");
    assert_eq!(tail.entry().await["id"], new);
    sim.stop().await;
}

/// More entries than one batch arrive whole and in order.
#[tokio::test]
async fn a_backlog_larger_than_a_batch_arrives_whole_and_in_order() {
    let sim = TestSim::start(|_| {}).await;
    let ids: Vec<u64> = (0..300)
        .map(|i| record(&sim, Face::Avs, "many", &format!("e{i}")))
        .collect();
    // Interleaved entries of another device are skipped, not sent.
    let mut stream = SseReader::open(&sim, "?device=many", None).await;
    for (i, id) in ids.iter().enumerate() {
        if i % 50 == 0 {
            record(&sim, Face::Avs, "noise", "not mine");
        }
        let e = stream.entry().await;
        assert_eq!(e["id"], *id, "entry {i}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn bad_face_since_or_last_event_id_is_a_400() {
    let sim = TestSim::start(|_| {}).await;
    for (query, header, needle) in [
        ("?face=nose", None, "unknown face"),
        ("?since=-1", None, "since"),
        ("?since=lots", None, "since"),
        ("?tail=-3", None, "tail"),
        ("", Some("x1"), "Last-Event-ID"),
    ] {
        let mut req = sim.http.get(sim.control(&format!("/api/journal/stream{query}")));
        if let Some(h) = header {
            req = req.header("last-event-id", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 400, "{query} {header:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(needle), "{body}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn shutdown_ends_an_open_stream() {
    let sim = TestSim::start(|_| {}).await;
    let id = record(&sim, Face::Avs, "s", "held");
    let mut stream = SseReader::open(&sim, "?device=s", None).await;
    assert_eq!(stream.entry().await["id"], id);
    tokio::time::timeout(DEADLINE, sim.stop())
        .await
        .expect("the simulator stops with a stream open");
    assert!(stream.next().await.is_none(), "the stream ended");
}

/// A client that opens the stream and never reads: the server writes only
/// what the socket takes (batches of 64, no queue of its own), so recording
/// goes on, other readers get live entries, and shutdown still ends it.
#[tokio::test]
async fn a_reader_that_never_reads_holds_up_nobody() {
    use tokio::io::AsyncWriteExt;
    let sim = TestSim::start(|_| {}).await;
    let addr = sim
        .control("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(format!("GET /api/journal/stream HTTP/1.1\r\nhost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // ~12 MB of entries: far more than the socket buffers hold.
    let filler = "x".repeat(4096);
    for i in 0..3000 {
        sim.handle.state.journal.record(
            Record::new(Face::Avs, Kind::Request, format!("bulk {i}"))
                .device("bulk")
                .body(serde_json::json!({ "filler": filler })),
        );
    }
    let mut live = SseReader::open(&sim, "?device=live&tail=0", None).await;
    let id = record(&sim, Face::Avs, "live", "after the flood");
    assert_eq!(live.entry().await["id"], id);
    let health = sim.http.get(sim.control("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    tokio::time::timeout(DEADLINE * 3, sim.stop())
        .await
        .expect("shutdown ends the stalled stream too");
    drop(stalled);
}
