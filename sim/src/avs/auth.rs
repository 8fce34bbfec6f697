//! Bearer-token authorization for AVS requests.

use crate::avs::devices::Device;
use crate::avs::exception::AvsError;
use crate::lwa::tokens::bearer;
use crate::state::State;
use std::sync::Arc;

/// The device a request's `authorization: Bearer` token identifies.
pub fn device(state: &State, headers: &http::HeaderMap) -> Result<Arc<Device>, AvsError> {
    let token = bearer(headers, false).unwrap_or("");
    let id = state
        .tokens
        .authenticate(token)
        .map_err(|e| AvsError::Unauthorized(e.to_string()))?;
    Ok(state.devices.get_or_create(&id))
}
