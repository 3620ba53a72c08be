//! The simulator over HTTPS, for tests of private CAs and proxies: the same
//! API behind a certificate the test made.

use std::ops::Deref;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{serve_io, Simulator};

/// A [`Simulator`] that speaks HTTPS; everything else is the same.
pub struct TlsSimulator {
    inner: Simulator,
}

impl Deref for TlsSimulator {
    type Target = Simulator;

    fn deref(&self) -> &Simulator {
        &self.inner
    }
}

impl TlsSimulator {
    /// The base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.inner.addr)
    }
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1` that serves HTTPS with this
    /// certificate chain and key (PEM).
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> std::io::Result<TlsSimulator> {
        let acceptor = acceptor(cert_pem, key_pem)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let sim = Simulator::unstarted(listener.local_addr()?);
        let (state, cancel) = (sim.state.clone(), sim.cancel.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = cancel.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (acceptor, state, cancel) = (acceptor.clone(), state.clone(), cancel.clone());
                tokio::spawn(async move {
                    // A client that does not trust the certificate just goes away.
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve_io(tls, state, cancel).await;
                    }
                });
            }
        });
        Ok(TlsSimulator { inner: sim })
    }
}

fn acceptor(cert_pem: &str, key_pem: &str) -> std::io::Result<TlsAcceptor> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|_| invalid("no private key in the PEM given".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
