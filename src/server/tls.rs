//! TLS on the main listener (`server.ssl`): the certificate chain and private key, read from
//! PEM files, and the handshake, which offers HTTP/2 and HTTP/1.1 by ALPN.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::http1::MAX_HEAD;

/// How long a handshake may take when the listener has no `server.read-timeout`.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Why a certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file holds no usable certificate.
    #[error("{0}")]
    Certificate(String),
    /// The key file holds no usable private key.
    #[error("{0}")]
    Key(String),
    /// Both parse, and rustls refuses the pair (a key that does not match the certificate).
    #[error("{0}")]
    Pair(String),
}

/// The listener's TLS settings from the PEM text of a certificate chain (the server's
/// certificate first) and of its private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(certificate: &[u8], key: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(certificate)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate(
            "no `-----BEGIN CERTIFICATE-----` block found: the file must hold the server's certificate in PEM, then any intermediates".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        TlsError::Key(format!(
            "no private key found ({e}): the file must hold a `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block, unencrypted"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            TlsError::Pair(format!(
                "the certificate and key cannot be used together ({e}): the key must be the one the certificate (the first in its file) was issued for"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Where a TLS listener gets its settings for each new connection: the running config's, so
/// that a reload with a renewed certificate takes effect for the next handshake.
pub type Current = Arc<dyn Fn() -> Arc<ServerConfig> + Send + Sync>;

/// Runs the server side of a handshake on `stream`, bounded by `limit` (the listener's read
/// timeout) or 10 s. `None` when it fails or takes too long (logged at debug: clients that
/// give up are routine). A client that speaks plain HTTP to the TLS port is answered a 400
/// that says so, as nginx does, instead of having its connection dropped without a word.
pub(crate) async fn accept(
    config: Arc<ServerConfig>,
    mut stream: TcpStream,
    limit: Option<Duration>,
) -> Option<TlsStream<TcpStream>> {
    let handshake = async {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await.ok()? == 0 {
            // Closed without a byte: a port check.
            return None;
        }
        if first[0] != HANDSHAKE_RECORD {
            refuse_plain_http(&mut stream).await;
            return None;
        }
        tokio_rustls::TlsAcceptor::from(config)
            .accept(stream)
            .await
            .map_err(|e| tracing::debug!(error = %e, "TLS handshake failed"))
            .ok()
    };
    match tokio::time::timeout(limit.unwrap_or(HANDSHAKE), handshake).await {
        Ok(stream) => stream,
        Err(_) => {
            tracing::debug!("TLS handshake not done within the read timeout");
            None
        }
    }
}

/// The first byte of a TLS connection: a handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// The answer to plain HTTP on the TLS port.
const PLAIN_HTTP: &str = concat!(
    "HTTP/1.1 400 Bad Request\r\n",
    "content-type: application/json\r\n",
    "content-length: 92\r\n",
    "connection: close\r\n\r\n",
    r#"{"status":400,"error":"Bad Request","message":"this port serves HTTPS: use an https:// uri"}"#,
);

/// Reads the client's request head, up to [`MAX_HEAD`] (so that closing does not reset the
/// connection under the answer), answers [`PLAIN_HTTP`] and closes. The caller bounds the
/// time it takes.
async fn refuse_plain_http(stream: &mut TcpStream) {
    let mut request = Vec::with_capacity(1024);
    while request.len() < MAX_HEAD && memchr::memmem::find(&request, b"\r\n\r\n").is_none() {
        match stream.read_buf(&mut request).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    let _ = stream.write_all(PLAIN_HTTP.as_bytes()).await;
    let _ = stream.shutdown().await;
    tracing::debug!("plain HTTP on the TLS port: answered 400");
}

/// Whether the client chose HTTP/2 by ALPN.
pub(crate) fn is_h2(stream: &TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(b"h2")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_answer_is_framed_by_its_length() {
        let (head, body) = PLAIN_HTTP.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 400);
    }

    #[test]
    fn certificate_and_key_errors_say_which_file() {
        let cert = include_bytes!("../../tests/e2e/certs/localhost-1.crt");
        let key = include_bytes!("../../tests/e2e/certs/localhost-1.key");
        let other_key = include_bytes!("../../tests/e2e/certs/localhost-2.key");
        let config = server_config(cert, key).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(matches!(
            server_config(key, key),
            Err(TlsError::Certificate(_))
        ));
        assert!(matches!(server_config(cert, cert), Err(TlsError::Key(_))));
        assert!(matches!(
            server_config(cert, other_key),
            Err(TlsError::Pair(_))
        ));
    }
}
