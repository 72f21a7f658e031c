//! `wss://` for the stand-in: a fresh self-signed certificate for `localhost` (rcgen) served
//! with rustls on the ring provider.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// The host name the certificate is for (and the TLS server's URL uses).
pub(crate) const HOST: &str = "localhost";

/// A generated certificate and the acceptor serving it.
pub(crate) struct TlsIdentity {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub acceptor: TlsAcceptor,
}

/// A new self-signed certificate for [`HOST`] (ECDSA P-256) and a rustls server with it.
pub(crate) fn self_signed() -> io::Result<TlsIdentity> {
    let generated = rcgen::generate_simple_self_signed(vec![HOST.to_string()])
        .map_err(|e| io::Error::other(format!("soniox-mock: cannot make a certificate: {e}")))?;
    let cert_der = generated.cert.der().to_vec();
    let cert_pem = generated.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![CertificateDer::from(cert_der.clone())], key)
        })
        .map_err(|e| io::Error::other(format!("soniox-mock: TLS set-up failed: {e}")))?;
    Ok(TlsIdentity {
        cert_der,
        cert_pem,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}
