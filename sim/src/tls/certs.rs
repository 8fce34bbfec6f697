//! The local CA and the server certificate, generated with rcgen.
//!
//! The CA is made once and reused on every later start, so a device trusts
//! `ca.pem` once. The server leaf is re-issued whenever the host list it
//! was made for changes (recorded beside it in `server.hosts`); that never
//! breaks trust because the CA stays the same.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Host names every server certificate carries: loopback, the AVS hosts of
/// all three regions (current gateway and legacy names), LWA and the
/// Capabilities API host (reference avs.md §1, §9, §10).
pub const DEFAULT_HOSTS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "alexa.na.gateway.devices.a2z.com",
    "alexa.eu.gateway.devices.a2z.com",
    "alexa.fe.gateway.devices.a2z.com",
    "avs-alexa-na.amazon.com",
    "avs-alexa-eu.amazon.com",
    "avs-alexa-fe.amazon.com",
    "api.amazon.com",
    "api.amazonalexa.com",
];

/// Why certificates could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}: not a usable PEM file: {1}")]
    Pem(PathBuf, String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// The files in a certs directory.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    hosts: PathBuf,
}

impl CertPaths {
    pub fn in_dir(dir: &Path) -> CertPaths {
        CertPaths {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            hosts: dir.join("server.hosts"),
        }
    }
}

/// A deliberately broken server certificate, for listeners that test how a
/// device handles TLS failures (signed by the same CA, so only the defect
/// named is wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertKind {
    #[default]
    Valid,
    /// Issued for `wrong-host.invalid` only.
    WrongHost,
    /// Expired yesterday.
    Expired,
}

/// The cert and key files of a broken variant, generated on first use.
pub fn variant(paths: &CertPaths, kind: CertKind) -> Result<(PathBuf, PathBuf), CertError> {
    let name = match kind {
        CertKind::Valid => return Ok((paths.server_cert.clone(), paths.server_key.clone())),
        CertKind::WrongHost => "wrong-host",
        CertKind::Expired => "expired",
    };
    let dir = paths.ca_cert.parent().unwrap_or(Path::new("."));
    let (cert_path, key_path) = (
        dir.join(format!("server-{name}.pem")),
        dir.join(format!("server-{name}.key")),
    );
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let issuer = load_ca(paths)?;
    let key = KeyPair::generate()?;
    let hosts = if kind == CertKind::WrongHost {
        vec!["wrong-host.invalid".to_string()]
    } else {
        host_list(&[])
    };
    let mut params = CertificateParams::new(hosts)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("avs-sim ({name})"));
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = crate::clock::wall();
    (params.not_before, params.not_after) = match kind {
        CertKind::Expired => (now - time::Duration::days(30), now - time::Duration::days(1)),
        _ => (now - time::Duration::days(1), now + time::Duration::days(825)),
    };
    let cert = params.signed_by(&key, &issuer)?;
    write(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    Ok((cert_path, key_path))
}

/// Make sure `dir` holds a CA and a server leaf for the default hosts plus
/// `extra_hosts`, generating what is missing or out of date.
pub fn ensure_certs(dir: &Path, extra_hosts: &[String]) -> Result<CertPaths, CertError> {
    std::fs::create_dir_all(dir).map_err(|e| CertError::Io(dir.into(), e))?;
    let paths = CertPaths::in_dir(dir);
    let issuer = if paths.ca_cert.exists() && paths.ca_key.exists() {
        load_ca(&paths)?
    } else {
        make_ca(&paths)?
    };
    let hosts = host_list(extra_hosts);
    let recorded = std::fs::read_to_string(&paths.hosts).unwrap_or_default();
    if recorded != hosts.join("\n") || !paths.server_cert.exists() || !paths.server_key.exists() {
        make_leaf(&paths, &hosts, &issuer)?;
    }
    Ok(paths)
}

fn host_list(extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect();
    for h in extra {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    hosts
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs cannot fail");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "avs-sim local CA");
    params.distinguished_name.push(DnType::OrganizationName, "avs-sim");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = crate::clock::wall();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

fn make_ca(paths: &CertPaths) -> Result<Issuer<'static, KeyPair>, CertError> {
    let key = KeyPair::generate()?;
    let params = ca_params();
    let cert = params.self_signed(&key)?;
    write(&paths.ca_cert, cert.pem().as_bytes(), 0o644)?;
    write(&paths.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
    Ok(Issuer::new(params, key))
}

fn load_ca(paths: &CertPaths) -> Result<Issuer<'static, KeyPair>, CertError> {
    let key_pem = std::fs::read_to_string(&paths.ca_key).map_err(|e| CertError::Io(paths.ca_key.clone(), e))?;
    let cert_pem = std::fs::read_to_string(&paths.ca_cert).map_err(|e| CertError::Io(paths.ca_cert.clone(), e))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| CertError::Pem(paths.ca_key.clone(), e.to_string()))?;
    Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| CertError::Pem(paths.ca_cert.clone(), e.to_string()))
}

fn make_leaf(paths: &CertPaths, hosts: &[String], issuer: &Issuer<'_, KeyPair>) -> Result<(), CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, "avs-sim");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = crate::clock::wall();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(825);
    let cert = params.signed_by(&key, issuer)?;
    write(&paths.server_cert, cert.pem().as_bytes(), 0o644)?;
    write(&paths.server_key, key.serialize_pem().as_bytes(), 0o600)?;
    write(&paths.hosts, hosts.join("\n").as_bytes(), 0o644)
}

/// Write a key or certificate file with `mode` (the SNS signing key uses it too).
pub(crate) fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), CertError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CertError::Io(path.into(), e))?;
    file.write_all(data).map_err(|e| CertError::Io(path.into(), e))?;
    // `mode` only applies to new files; make it hold for old ones too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| CertError::Io(path.into(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses_the_ca() {
        let dir = std::env::temp_dir().join(format!("avs-sim-certs-{}", uuid::Uuid::new_v4()));
        let paths = ensure_certs(&dir, &[]).unwrap();
        let ca1 = std::fs::read(&paths.ca_cert).unwrap();
        let leaf1 = std::fs::read(&paths.server_cert).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&paths.ca_key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        ensure_certs(&dir, &[]).unwrap();
        assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), ca1, "CA reused");
        assert_eq!(std::fs::read(&paths.server_cert).unwrap(), leaf1, "leaf reused");
        ensure_certs(&dir, &["device.test".into()]).unwrap();
        assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), ca1, "CA kept when hosts change");
        assert_ne!(std::fs::read(&paths.server_cert).unwrap(), leaf1, "leaf re-issued");
        assert!(crate::tls::server_config(&paths).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
