//! A subscriber's side of SNS signatures, written from AWS's verification
//! guide and nothing of the simulator's: rebuild the string to sign from
//! the received body, take the public key from the certificate at
//! `SigningCertURL`, check that certificate chains to the CA the test
//! trusts, and verify SHA1withRSA (version 1) or SHA256withRSA (version 2).
//! Signature checks use ring, not the `rsa` crate the simulator signs with.

use base64::Engine;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;

/// The signed fields of each message type, in the order they are signed.
fn signed_fields(kind: &str) -> Result<&'static [&'static str], String> {
    match kind {
        "Notification" => Ok(&["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]),
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => Ok(&[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]),
        other => Err(format!("unknown Type {other:?}")),
    }
}

/// The string to sign of a received JSON body: `Name\nvalue\n` for each
/// signed field present (only `Subject` may be absent).
pub fn string_to_sign(body: &Value) -> Result<String, String> {
    let kind = body["Type"].as_str().ok_or("no Type")?;
    let mut s = String::new();
    for &name in signed_fields(kind)? {
        match body.get(name) {
            Some(Value::String(v)) => {
                s.push_str(name);
                s.push('\n');
                s.push_str(v);
                s.push('\n');
            }
            None if name == "Subject" => {}
            _ => return Err(format!("{kind} without a string {name}")),
        }
    }
    Ok(s)
}

fn der_of(pem: &str) -> Result<Vec<u8>, String> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|d| d.to_vec())
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

/// Check `cert_pem` was issued by `ca_pem` and is within its validity.
pub fn check_chain(cert_pem: &str, ca_pem: &str) -> Result<(), String> {
    let (cert_der, ca_der) = (der_of(cert_pem)?, der_of(ca_pem)?);
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).map_err(|e| format!("certificate: {e}"))?;
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).map_err(|e| format!("CA: {e}"))?;
    if cert.issuer() != ca.subject() {
        return Err(format!("issued by {}, not by {}", cert.issuer(), ca.subject()));
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| format!("not signed by the CA: {e}"))?;
    if !cert.validity().is_valid() {
        return Err("certificate outside its validity".into());
    }
    Ok(())
}

/// Verify a JSON body's `Signature` with the key of `cert_pem`.
pub fn verify_body(body: &str, cert_pem: &str) -> Result<(), String> {
    let body: Value = serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let text = string_to_sign(&body)?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(body["Signature"].as_str().ok_or("no Signature")?)
        .map_err(|e| format!("Signature is not base64: {e}"))?;
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match body["SignatureVersion"].as_str() {
        Some("1") => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Some("2") => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        other => return Err(format!("SignatureVersion {other:?}")),
    };
    let der = der_of(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| format!("certificate: {e}"))?;
    // ring takes an RSA key as the PKCS#1 RSAPublicKey inside the SPKI bit string.
    let key = &cert.public_key().subject_public_key.data;
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(text.as_bytes(), &signature)
        .map_err(|_| "signature does not verify".to_string())
}

/// A whole delivery as a subscriber receives it: the `x-amz-sns-*`
/// headers agree with the body, the certificate chains to `ca_pem`, and
/// the signature verifies. Raw deliveries are unsigned: only the headers
/// are checked.
pub fn verify_delivery(headers: &[(String, String)], body: &str, cert_pem: &str, ca_pem: &str) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if header("x-amz-sns-rawdelivery") == Some("true") {
        return match header("x-amz-sns-message-type") {
            Some("Notification") => Ok(()),
            other => Err(format!("raw delivery of {other:?}")),
        };
    }
    let json: Value = serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
    for (h, field) in [
        ("x-amz-sns-message-type", "Type"),
        ("x-amz-sns-message-id", "MessageId"),
        ("x-amz-sns-topic-arn", "TopicArn"),
    ] {
        if header(h) != json[field].as_str() {
            return Err(format!("header {h} {:?} but body {field} {}", header(h), json[field]));
        }
    }
    check_chain(cert_pem, ca_pem)?;
    verify_body(body, cert_pem)
}

/// Fetch `url` (an `https://127.0.0.1:<port>/...` SigningCertURL) over
/// TLS, trusting `ca`, as a subscriber would: (status, content type, body).
pub async fn fetch(url: &str, ca: &Path) -> anyhow::Result<(u16, String, String)> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow::anyhow!("{url}: not https"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority.parse()?;
    let mut client = crate::device::Device::tls(addr, ca, "").await?;
    let answer = client.call(http::Method::GET, path, None, bytes::Bytes::new()).await?;
    Ok((
        answer.status,
        answer.content_type().to_string(),
        String::from_utf8(answer.body.to_vec())?,
    ))
}

/// The python of the venv with boto3 that `.ci/run` makes (target/venv), or
/// `BOTO3_PYTHON` (not `AVS_SIM_*`: the simulator reads those as config).
/// Fails the calling test, saying how to make it, when it is missing.
pub fn boto3_python() -> std::path::PathBuf {
    let python = match std::env::var("BOTO3_PYTHON") {
        Ok(p) => p.into(),
        Err(_) => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/python"),
    };
    assert!(
        python.exists(),
        "boto3 interop needs a venv with boto3 at {} (made by .ci/run: python3 -m venv target/venv && \
         target/venv/bin/pip install boto3==1.40.55), or BOTO3_PYTHON naming its python",
        python.display()
    );
    python
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_sign_follows_the_guide() {
        let body = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "a\nb",
            "Timestamp": "ts", "Signature": "x", "SignatureVersion": "1",
        });
        assert_eq!(
            string_to_sign(&body).unwrap(),
            "Message\na\nb\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
        );
        let body = serde_json::json!({"Type": "SubscriptionConfirmation", "Message": "m"});
        assert!(string_to_sign(&body).unwrap_err().contains("MessageId"));
    }
}
