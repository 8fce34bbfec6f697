//! TLS for the AVS listeners: a generated CA, a server leaf, and the rustls
//! server config with ALPN `h2` and `http/1.1`.

pub mod certs;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

pub use certs::{CertKind, CertPaths, ensure_certs};

/// The rustls provider the simulator uses everywhere (ring: pure Rust and C
/// without a cmake step, so the image builds fast).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config for the leaf in `paths`, offering `h2` then `http/1.1`.
pub fn server_config(paths: &CertPaths) -> Result<Arc<ServerConfig>, certs::CertError> {
    config_for(&paths.server_cert, &paths.server_key)
}

/// A server config for a (possibly broken) certificate variant.
pub fn server_config_of(paths: &CertPaths, kind: certs::CertKind) -> Result<Arc<ServerConfig>, certs::CertError> {
    let (cert, key) = certs::variant(paths, kind)?;
    config_for(&cert, &key)
}

fn config_for(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<ServerConfig>, certs::CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| certs::CertError::Pem(cert.to_path_buf(), e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| certs::CertError::Pem(key.to_path_buf(), e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| certs::CertError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| certs::CertError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
