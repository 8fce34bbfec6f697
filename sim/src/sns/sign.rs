//! The key SNS messages are signed with, and its certificate (reference
//! sns.md §4–5).
//!
//! SNS signs with RSA (PKCS#1 v1.5 over SHA-1 for SignatureVersion 1,
//! SHA-256 for 2) and publishes the public key as an X.509 certificate at
//! `SigningCertURL`. ring (behind rcgen) cannot generate RSA keys nor sign
//! with SHA-1, so the `rsa` crate makes the key and signs; rcgen, which
//! can take an RSA key from PKCS#8 DER, issues its certificate from the
//! simulator's CA, so a subscriber that trusts `ca.pem` can check the chain.
//!
//! Key and certificate are kept in the certs directory
//! (`sns-signing.key`, `sns-signing.pem`) and reused on later starts, so
//! messages a subscriber stored keep verifying after a restart; the
//! certificate is re-issued (same key) when the CA it was issued by is no
//! longer the one in `ca.pem` (recorded in `sns-signing.ca`).

use crate::state::State;
use crate::tls::certs::{CertError, write};
use axum::Router;
use axum::extract::{Path as UrlPath, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use http::{StatusCode, header};
use rcgen::{CertificateParams, DnType, Issuer, KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// RSA modulus size: what SNS's own certificates use, and ring's minimum
/// for loading an RSA key.
pub const KEY_BITS: usize = 2048;

/// The path prefix of the certificate's URL, as AWS names its files.
pub const FILE_PREFIX: &str = "SimpleNotificationService-";

/// The signing key and its certificate.
pub struct Signer {
    key: RsaPrivateKey,
    /// The same key loaded into ring, which signs SHA256withRSA (version 2)
    /// several times faster than the `rsa` crate: RSA was ~84% of the CPU
    /// of a delivery (perf, bench/RESULTS.md). ring cannot sign SHA-1, so
    /// version 1 stays with `key`.
    fast: Option<ring::rsa::KeyPair>,
    cert_pem: String,
    /// 32 lowercase hex digits naming the certificate (the first half of
    /// the SHA-256 of its DER): stable for as long as the certificate is.
    id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The files a signer lives in.
struct Files {
    key: PathBuf,
    cert: PathBuf,
    ca_record: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            key: dir.join("sns-signing.key"),
            cert: dir.join("sns-signing.pem"),
            ca_record: dir.join("sns-signing.ca"),
        }
    }
}

impl Signer {
    /// Load the signer kept in `dir`, or make it (the CA too, when `dir`
    /// has none yet: `extra_hosts` are the server certificate's, as in
    /// `tls::ensure_certs`).
    pub fn load_or_make(dir: &Path, extra_hosts: &[String]) -> Result<Signer, CertError> {
        let paths = crate::tls::ensure_certs(dir, extra_hosts)?;
        let files = Files::in_dir(dir);
        let ca_pem = read(&paths.ca_cert)?;
        let ca_record = hex::encode(sha2::Sha256::digest(ca_pem.as_bytes()));
        let key = match std::fs::read_to_string(&files.key) {
            Ok(pem) => {
                RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| CertError::Pem(files.key.clone(), e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = generate()?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| CertError::Pem(files.key.clone(), e.to_string()))?;
                write(&files.key, pem.as_bytes(), 0o600)?;
                // A new key makes any old certificate wrong.
                let _ = std::fs::remove_file(&files.cert);
                key
            }
            Err(e) => return Err(CertError::Io(files.key.clone(), e)),
        };
        let recorded = std::fs::read_to_string(&files.ca_record).unwrap_or_default();
        let cert_pem = match std::fs::read_to_string(&files.cert) {
            Ok(pem) if recorded == ca_record => pem,
            _ => {
                let issuer = load_ca(&paths.ca_cert, &paths.ca_key, &ca_pem)?;
                let pem = issue(&key, Some(&issuer))?;
                write(&files.cert, pem.as_bytes(), 0o644)?;
                write(&files.ca_record, ca_record.as_bytes(), 0o644)?;
                pem
            }
        };
        Signer::new(key, cert_pem).map_err(|e| CertError::Pem(files.cert.clone(), e))
    }

    /// A signer kept only in memory with a self-signed certificate: the
    /// fallback when the certs directory cannot be used (signatures still
    /// verify against the served certificate; its chain does not).
    pub fn ephemeral() -> Result<Signer, CertError> {
        let key = generate()?;
        let pem = issue(&key, None)?;
        Signer::new(key, pem).map_err(CertError::Tls)
    }

    fn new(key: RsaPrivateKey, cert_pem: String) -> Result<Signer, String> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| e.to_string())?;
        let id = hex::encode(&sha2::Sha256::digest(der.as_ref())[..16]);
        let fast = key
            .to_pkcs8_der()
            .ok()
            .and_then(|doc| ring::rsa::KeyPair::from_pkcs8(doc.as_bytes()).ok());
        Ok(Signer {
            key,
            fast,
            cert_pem,
            id,
        })
    }

    /// The 32 hex digits in the certificate's file name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `SimpleNotificationService-<id>.pem`.
    pub fn file_name(&self) -> String {
        format!("{FILE_PREFIX}{}.pem", self.id)
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The base64 `Signature` of `string_to_sign`: SHA256withRSA for
    /// version `"2"`, SHA1withRSA otherwise.
    pub fn sign(&self, version: &str, string_to_sign: &[u8]) -> String {
        if let (Some(fast), "2") = (&self.fast, version) {
            let mut out = vec![0u8; fast.public().modulus_len()];
            let rng = ring::rand::SystemRandom::new();
            if fast
                .sign(&ring::signature::RSA_PKCS1_SHA256, &rng, string_to_sign, &mut out)
                .is_ok()
            {
                return base64::engine::general_purpose::STANDARD.encode(out);
            }
        }
        let signed = if version == "2" {
            self.key.sign(
                Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(string_to_sign),
            )
        } else {
            self.key
                .sign(Pkcs1v15Sign::new::<sha1::Sha1>(), &sha1::Sha1::digest(string_to_sign))
        };
        // PKCS#1 v1.5 signing fails only for a digest longer than the
        // modulus allows, which a 2048-bit key and SHA-256 cannot reach.
        base64::engine::general_purpose::STANDARD.encode(signed.unwrap_or_default())
    }
}

fn generate() -> Result<RsaPrivateKey, CertError> {
    RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .map_err(|e| CertError::Tls(format!("RSA key generation: {e}")))
}

/// A certificate for `key`, issued by `issuer` (self-signed without one),
/// named as SNS's are.
fn issue(key: &RsaPrivateKey, issuer: Option<&Issuer<'_, KeyPair>>) -> Result<String, CertError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| CertError::Tls(format!("RSA key encoding: {e}")))?;
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
    let subject = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_RSA_SHA256)?;
    let mut params = CertificateParams::new(vec!["sns.amazonaws.com".to_string()])?;
    params.distinguished_name.push(DnType::CommonName, "sns.amazonaws.com");
    params.distinguished_name.push(DnType::OrganizationName, "avs-sim");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = issuer.is_some();
    let now = crate::clock::wall();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = match issuer {
        Some(issuer) => params.signed_by(&subject, issuer)?,
        None => params.self_signed(&subject)?,
    };
    Ok(cert.pem())
}

fn load_ca(cert: &Path, key: &Path, cert_pem: &str) -> Result<Issuer<'static, KeyPair>, CertError> {
    let key_pem = read(key)?;
    let key_pair = KeyPair::from_pem(&key_pem).map_err(|e| CertError::Pem(key.into(), e.to_string()))?;
    Issuer::from_ca_cert_pem(cert_pem, key_pair).map_err(|e| CertError::Pem(cert.into(), e.to_string()))
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|e| CertError::Io(path.into(), e))
}

/// This simulator's signer: loaded or made on first use from
/// `[certs] dir` (RSA key generation takes a moment, and most runs never
/// use SNS), then kept for the simulator's life. `None` only when no key
/// could be made at all (no OS randomness), which is logged.
pub fn signer(state: &State) -> Option<Arc<Signer>> {
    state
        .sns
        .signer_cell()
        .get_or_init(|| {
            let certs = &state.config.certs;
            Signer::load_or_make(&certs.dir, &certs.extra_hosts)
                .or_else(|e| {
                    tracing::error!(
                        "SNS signing key in {}: {e}; signing with a key kept in memory only",
                        certs.dir.display()
                    );
                    Signer::ephemeral()
                })
                .map(Arc::new)
                .map_err(|e| tracing::error!("SNS signing key: {e}; messages go out unsigned"))
                .ok()
        })
        .clone()
}

/// `GET /SimpleNotificationService-<id>.pem` on the public listeners.
pub fn router() -> Router<Arc<State>> {
    Router::new().route(&format!("/{FILE_PREFIX}{{file}}"), get(certificate))
}

async fn certificate(AxState(state): AxState<Arc<State>>, UrlPath(file): UrlPath<String>) -> Response {
    let signer = tokio::task::spawn_blocking(move || signer(&state)).await;
    match signer {
        Ok(Some(s)) if file == format!("{}.pem", s.id) => {
            ([(header::CONTENT_TYPE, "application/x-pem-file")], s.cert_pem.clone()).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no certificate {FILE_PREFIX}{file}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn kept_in_the_certs_dir_reused_and_issued_by_the_ca() {
        let dir = std::env::temp_dir().join(format!("avs-sim-sns-sign-{}", uuid::Uuid::new_v4()));
        let a = Signer::load_or_make(&dir, &[]).unwrap();
        assert_eq!(a.id().len(), 32);
        assert!(a.id().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a.file_name(), format!("SimpleNotificationService-{}.pem", a.id()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("sns-signing.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the key is private");

        let b = Signer::load_or_make(&dir, &[]).unwrap();
        assert_eq!(b.id(), a.id(), "a restart keeps the certificate");
        assert_eq!(b.sign("2", b"x"), a.sign("2", b"x"), "and the key");

        // The certificate is for the RSA key and chains to ca.pem.
        let ca_der = pem_der(&std::fs::read_to_string(dir.join("ca.pem")).unwrap());
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let der = pem_der(a.cert_pem());
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.verify_signature(Some(ca.public_key())).expect("issued by the CA");
        assert!(matches!(
            cert.public_key().parsed().unwrap(),
            x509_parser::public_key::PublicKey::RSA(_)
        ));

        // A new CA: same key, certificate re-issued by it.
        for f in ["ca.pem", "ca.key"] {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        let c = Signer::load_or_make(&dir, &[]).unwrap();
        assert_ne!(c.id(), a.id(), "re-issued");
        assert_eq!(c.sign("1", b"x"), a.sign("1", b"x"), "same key");
        let ca_der = pem_der(&std::fs::read_to_string(dir.join("ca.pem")).unwrap());
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let der = pem_der(c.cert_pem());
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.verify_signature(Some(ca.public_key()))
            .expect("issued by the new CA");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_broken_key_file_is_named() {
        let dir = std::env::temp_dir().join(format!("avs-sim-sns-sign-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sns-signing.key"), "not a key").unwrap();
        let e = Signer::load_or_make(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("sns-signing.key"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
