//! Writing answers on raw HTTP/2 streams (the paths `h2` drives directly).

use crate::avs::exception::AvsError;
use bytes::Bytes;
use h2::server::SendResponse;
use http::{Response, StatusCode};

/// A response head with the headers AVS puts on every answer.
pub fn head(status: StatusCode, content_type: Option<&str>) -> Response<()> {
    let mut builder = Response::builder()
        .status(status)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().simple().to_string());
    if let Some(ct) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, ct);
    }
    builder.body(()).expect("static headers are valid")
}

/// Send the exception document for `err` and end the stream.
pub fn error(respond: &mut SendResponse<Bytes>, err: &AvsError) -> Result<(), h2::Error> {
    let mut stream = respond.send_response(head(err.status(), Some("application/json")), false)?;
    stream.send_data(err.body(), true)
}

/// Send a bodiless status (204) and end the stream.
pub fn empty(respond: &mut SendResponse<Bytes>, status: StatusCode) -> Result<(), h2::Error> {
    respond.send_response(head(status, None), true).map(|_| ())
}

/// Ask the client to stop sending a request body whose answer already went
/// out whole (RFC 9113 §8.1: RST_STREAM NO_ERROR after a complete response),
/// instead of reading the rest of it.
///
/// The flush comes first because a reset drops the frames still queued on
/// its stream: without it the client could get the RST_STREAM in place of
/// the answer. `flush_barrier` waits until a PING sent after the answer has
/// come back, so the answer has reached the socket.
pub async fn stop_upload(conn: &crate::avs::connection::Connection, respond: &mut SendResponse<Bytes>) {
    conn.flush_barrier().await;
    respond.send_reset(h2::Reason::NO_ERROR);
}
