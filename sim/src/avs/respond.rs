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
