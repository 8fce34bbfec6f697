//! Writing a stream's body no faster than the peer's flow-control window.
//!
//! `h2::SendStream::send_data` accepts any amount and buffers what the
//! peer's window does not let out yet, without limit: a client that opens a
//! stream and never reads it makes the server hold every byte written to
//! it. An `Outbox` keeps the bytes of the message being written and hands h2
//! only what the stream has been granted (`reserve_capacity`, then
//! `capacity`), in chunks no larger than the grant; the rest waits here
//! until `poll_capacity` says more was granted. h2 then never holds more
//! than the window, and the memory a slow reader costs is what the caller
//! queued (for the downchannel, the device's bounded directive queue).
//!
//! Each piece may carry a note (a journal record) that is handed back once
//! the piece has been given to h2 in full, so "written" means written.

use bytes::Bytes;
use h2::SendStream;
use std::collections::VecDeque;
use std::task::{Context, Poll};

/// The most capacity asked for at once: below h2's `u32` window arithmetic,
/// above its default per-stream send buffer (400 KiB), so it never limits.
const MAX_RESERVE: usize = 1024 * 1024;

/// Bytes waiting for window on one stream.
pub struct Outbox<T> {
    pieces: VecDeque<(Bytes, Option<T>)>,
    waiting: usize,
}

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Outbox {
            pieces: VecDeque::new(),
            waiting: 0,
        }
    }
}

/// What happened on the stream while waiting for window.
pub enum StreamEvent {
    /// The peer granted more window (or the grant changed).
    Capacity,
    /// The peer reset the stream, with this code.
    Reset(h2::Reason),
    /// The stream or connection failed, or the stream can no longer send.
    Closed(String),
}

impl<T> Outbox<T> {
    /// Queue `bytes`; `note` comes back from `write` once they all left.
    pub fn push(&mut self, bytes: Bytes, note: Option<T>) {
        self.waiting = self.waiting.saturating_add(bytes.len());
        self.pieces.push_back((bytes, note));
    }

    /// Whether everything queued has been handed to h2.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Bytes still waiting for window.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Hand h2 as much as the stream's granted window allows. Returns the
    /// bytes written; notes of pieces that left in full go to `done`.
    pub fn write(&mut self, send: &mut SendStream<Bytes>, done: &mut Vec<T>) -> Result<usize, h2::Error> {
        let mut written = 0;
        while let Some((front, _)) = self.pieces.front_mut() {
            if !front.is_empty() {
                send.reserve_capacity(self.waiting.min(MAX_RESERVE));
                let granted = send.capacity();
                if granted == 0 {
                    return Ok(written);
                }
                let chunk = front.split_to(granted.min(front.len()));
                self.waiting = self.waiting.saturating_sub(chunk.len());
                written += chunk.len();
                send.send_data(chunk, false)?;
                if !front.is_empty() {
                    continue;
                }
            }
            if let Some((_, Some(note))) = self.pieces.pop_front() {
                done.push(note);
            }
        }
        // Give back whatever was granted beyond what we wrote, for other streams.
        send.reserve_capacity(0);
        Ok(written)
    }

    /// Hand h2 everything still waiting, window or not: for a last message
    /// before the stream ends (bounded by one message), never in steady state.
    pub fn write_all(&mut self, send: &mut SendStream<Bytes>, done: &mut Vec<T>) -> Result<(), h2::Error> {
        while let Some((bytes, note)) = self.pieces.pop_front() {
            self.waiting = self.waiting.saturating_sub(bytes.len());
            if !bytes.is_empty() {
                send.send_data(bytes, false)?;
            }
            done.extend(note);
        }
        Ok(())
    }
}

/// Wait for a reset of the stream or, when `want_capacity`, for more window.
/// One future for both because both need the stream mutably; cancel-safe (h2
/// keeps the state, a dropped poll loses nothing).
pub fn poll_event(send: &mut SendStream<Bytes>, want_capacity: bool, cx: &mut Context<'_>) -> Poll<StreamEvent> {
    if let Poll::Ready(reset) = send.poll_reset(cx) {
        return Poll::Ready(match reset {
            Ok(reason) => StreamEvent::Reset(reason),
            Err(e) => StreamEvent::Closed(format!("stream error: {e}")),
        });
    }
    if want_capacity {
        match send.poll_capacity(cx) {
            Poll::Ready(Some(Ok(_))) => return Poll::Ready(StreamEvent::Capacity),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(StreamEvent::Closed(format!("stream error: {e}"))),
            Poll::Ready(None) => return Poll::Ready(StreamEvent::Closed("the stream can no longer send".into())),
            Poll::Pending => {}
        }
    }
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::poll_fn;

    /// A server stream to a client whose stream window is `window` bytes.
    async fn pair(window: u32) -> (SendStream<Bytes>, h2::RecvStream, tokio::task::JoinHandle<()>) {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(async move {
            let mut conn = h2::server::handshake(server_io).await.unwrap();
            let (_req, mut respond) = conn.accept().await.unwrap().unwrap();
            let send = respond.send_response(http::Response::new(()), false).unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            send
        });
        let (client, conn) = h2::client::Builder::new()
            .initial_window_size(window)
            .handshake::<_, Bytes>(client_io)
            .await
            .unwrap();
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.unwrap();
        let (resp, _) = client
            .send_request(http::Request::get("http://x/").body(()).unwrap(), true)
            .unwrap();
        let send = server.await.unwrap();
        let body = resp.await.unwrap().into_body();
        (send, body, driver)
    }

    #[tokio::test]
    async fn hands_h2_no_more_than_the_window_and_notes_whole_pieces() {
        let (mut send, mut body, _driver) = pair(1000).await;
        let mut out = Outbox::default();
        out.push(Bytes::from(vec![b'a'; 1500]), Some("first"));
        out.push(Bytes::from(vec![b'b'; 2500]), Some("second"));
        let mut done = Vec::new();
        let first = out.write(&mut send, &mut done).unwrap();
        assert_eq!(first, 1000, "only the window is handed over");
        assert_eq!(out.waiting(), 3000);
        assert!(done.is_empty());
        let mut received = Vec::new();
        while received.len() < 4000 {
            // The reader takes what arrived and gives the window back...
            let chunk = body.data().await.unwrap().unwrap();
            body.flow_control().release_capacity(chunk.len()).unwrap();
            received.extend_from_slice(&chunk);
            // ...and the writer goes on only when h2 says more was granted.
            while !out.is_empty() && received.len() + out.waiting() == 4000 {
                match poll_fn(|cx| poll_event(&mut send, true, cx)).await {
                    StreamEvent::Capacity => {
                        out.write(&mut send, &mut done).unwrap();
                    }
                    _ => panic!("stream ended"),
                }
            }
        }
        assert_eq!(done, vec!["first", "second"]);
        assert_eq!(&received[..1500], &[b'a'; 1500][..]);
        assert_eq!(&received[1500..], &[b'b'; 2500][..]);
    }

    #[tokio::test]
    async fn a_reset_by_the_reader_ends_the_wait() {
        let (mut send, body, _driver) = pair(10).await;
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"more than ten bytes"), None::<()>);
        out.write(&mut send, &mut Vec::new()).unwrap();
        drop(body); // the client cancels the stream (RST_STREAM CANCEL)
        match poll_fn(|cx| poll_event(&mut send, true, cx)).await {
            StreamEvent::Reset(r) => assert_eq!(r, h2::Reason::CANCEL),
            StreamEvent::Closed(_) => {}
            StreamEvent::Capacity => panic!("no window after the reset"),
        }
    }
}
