//! `tls_server_config` turned into a rustls server configuration.
//!
//! The keys mean what they mean in the exporter toolkit. Where rustls is
//! stricter than Go's TLS library the difference is spelled out: TLS 1.0 and
//! 1.1 do not exist here (a `min_version` below TLS12 counts as TLS12), only
//! the AEAD cipher suites of TLS 1.2 can be chosen (TLS 1.3 suites are not
//! configurable, as in Go), and the P-521 curve is not offered.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};
use rustls::{SignatureScheme, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use super::file::TlsSection;

/// What `tls_server_config` says, ready to serve, and the files it read.
pub struct TlsSetup {
    /// The rustls configuration of every new connection.
    pub config: Arc<ServerConfig>,
    /// The files whose change means the configuration must be built again.
    pub files: Vec<PathBuf>,
}

/// Whether the section turns TLS on: any certificate, key or client
/// authentication setting does, as in the toolkit.
pub fn enabled(t: &TlsSection) -> bool {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    set(&t.cert)
        || set(&t.cert_file)
        || set(&t.key_file)
        || t.key.as_ref().is_some_and(|k| !k.0.is_empty())
        || set(&t.client_ca_file)
        || set(&t.client_ca)
        || set(&t.client_auth_type)
}

/// Builds the server configuration; relative file names are read from
/// `dir`, the folder of the web configuration file.
pub fn build(t: &TlsSection, dir: &Path) -> Result<TlsSetup, String> {
    let mut files = Vec::new();
    let certs = load_certs(t, dir, &mut files)?;
    let key = load_key(t, dir, &mut files)?;
    let provider = Arc::new(provider(t)?);
    let versions = versions(t)?;
    let verifier = client_verifier(t, dir, &provider, &mut files)?;

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: the certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSetup {
        config: Arc::new(config),
        files,
    })
}

fn load_certs(
    t: &TlsSection,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let (what, certs) = match (&t.cert_file, &t.cert) {
        (Some(f), _) if !f.is_empty() => {
            let path = dir.join(f);
            files.push(path.clone());
            let certs = read_pem_certs(&path).map_err(|e| format!("cert_file {f:?}: {e}"))?;
            (format!("cert_file {f:?}"), certs)
        }
        (_, Some(text)) if !text.is_empty() => {
            let certs = CertificateDer::pem_slice_iter(text.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cert: {e}"))?;
            ("cert".to_string(), certs)
        }
        _ => return Err("tls_server_config: missing one of cert or cert_file".into()),
    };
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

fn load_key(
    t: &TlsSection,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<PrivateKeyDer<'static>, String> {
    match (&t.key_file, &t.key) {
        (Some(f), _) if !f.is_empty() => {
            let path = dir.join(f);
            files.push(path.clone());
            // The key's own error text never holds key material.
            PrivateKeyDer::from_pem_file(&path).map_err(|e| match e {
                rustls_pki_types::pem::Error::NoItemsFound => format!(
                    "key_file {f:?}: no private key in it (a PEM block such as BEGIN PRIVATE KEY; is it the certificate?)"
                ),
                e => format!("key_file {f:?}: {e}"),
            })
        }
        (_, Some(k)) if !k.0.is_empty() => PrivateKeyDer::from_pem_slice(k.0.as_bytes())
            .map_err(|_| "key: no PEM private key could be read".to_string()),
        _ => Err("tls_server_config: missing one of key or key_file".into()),
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))
}

/// The protocol versions from `min_version` and `max_version`.
fn versions(t: &TlsSection) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let rank = |key: &str, v: &Option<String>, default: u8| -> Result<u8, String> {
        match v.as_deref() {
            None | Some("") => Ok(default),
            Some("TLS10") => Ok(10),
            Some("TLS11") => Ok(11),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some(other) => Err(format!(
                "{key}: unknown TLS version {other:?} (expected TLS10, TLS11, TLS12 or TLS13)"
            )),
        }
    };
    let min = rank("min_version", &t.min_version, 12)?.max(12);
    let max = rank("max_version", &t.max_version, 13)?;
    if max < 12 {
        return Err("max_version: TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13".into());
    }
    if min > max {
        return Err("min_version: is above max_version".into());
    }
    let all = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)];
    Ok(all
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, p)| p)
        .collect())
}

/// The ring provider, narrowed to the configured cipher suites and curves.
fn provider(t: &TlsSection) -> Result<CryptoProvider, String> {
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let tls12: Vec<&str> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .filter_map(|s| s.suite().as_str())
            .collect();
        if let Some(bad) = names.iter().find(|n| !tls12.contains(&n.as_str())) {
            return Err(format!(
                "cipher_suites: {bad:?} is unknown or not offered (offered: {})",
                tls12.join(", ")
            ));
        }
        p.cipher_suites.retain(|s| {
            s.version() != &rustls::version::TLS12
                || s.suite()
                    .as_str()
                    .is_some_and(|n| names.iter().any(|x| x == n))
        });
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        p.kx_groups = curves(names, &p)?;
    }
    Ok(p)
}

/// The key exchange groups named in `curve_preferences`, in that order.
fn curves(
    names: &[String],
    p: &CryptoProvider,
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, String> {
    use rustls::NamedGroup;
    let mut out = Vec::new();
    for name in names {
        let group = match name.as_str() {
            "X25519" => NamedGroup::X25519,
            "CurveP256" => NamedGroup::secp256r1,
            "CurveP384" => NamedGroup::secp384r1,
            // Offered by Go, not by rustls: skipped, as long as one is left.
            "CurveP521" => continue,
            other => return Err(format!("curve_preferences: unknown curve {other:?}")),
        };
        out.extend(p.kx_groups.iter().copied().filter(|g| g.name() == group));
    }
    if out.is_empty() {
        return Err("curve_preferences: none of these curves is offered (X25519, CurveP256 and CurveP384 are)".into());
    }
    Ok(out)
}

/// How client certificates are asked for and checked.
fn client_verifier(
    t: &TlsSection,
    dir: &Path,
    provider: &Arc<CryptoProvider>,
    files: &mut Vec<PathBuf>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    if t.client_allowed_sans
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err("client_allowed_sans: is not supported by this exporter yet; check client certificates with client_ca_file instead".into());
    }
    let kind = t.client_auth_type.as_deref().unwrap_or("");
    let roots = client_roots(t, dir, files)?;
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let verified = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, String> {
        let roots = roots
            .clone()
            .ok_or_else(|| format!("client_auth_type: {kind} needs client_ca_file or client_ca"))?;
        let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| format!("client_ca_file: {e}"))
    };
    let verifier = match kind {
        "" | "NoClientCert" => {
            if roots.is_some() {
                return Err("client_ca_file: client CAs are configured without a client_auth_type".into());
            }
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
        "RequestClientCert" => any(false),
        "RequireAnyClientCert" | "RequireClientCert" => any(true),
        "VerifyClientCertIfGiven" => verified(true)?,
        "RequireAndVerifyClientCert" => verified(false)?,
        other => return Err(format!("client_auth_type: invalid value {other:?} (expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)")),
    };
    Ok(verifier)
}

/// The client CA certificates, from `client_ca_file` or `client_ca`.
fn client_roots(
    t: &TlsSection,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Arc<RootCertStore>>, String> {
    let (what, certs) = match (&t.client_ca_file, &t.client_ca) {
        (Some(f), _) if !f.is_empty() => {
            let path = dir.join(f);
            files.push(path.clone());
            let certs = read_pem_certs(&path).map_err(|e| format!("client_ca_file {f:?}: {e}"))?;
            (format!("client_ca_file {f:?}"), certs)
        }
        (_, Some(text)) if !text.is_empty() => {
            let certs = CertificateDer::pem_slice_iter(text.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client_ca: {e}"))?;
            ("client_ca".to_string(), certs)
        }
        _ => return Ok(None),
    };
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{what}: no usable CA certificate found"));
    }
    Ok(Some(Arc::new(store)))
}

/// Asks for a client certificate and takes any, checking only that the
/// client holds its key: `RequestClientCert` and `RequireAnyClientCert`.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> TlsSection {
        super::super::file::parse(yaml)
            .unwrap()
            .tls_server_config
            .unwrap()
    }

    /// A certificate given as the key is named as the likely mistake.
    #[test]
    fn a_key_file_without_a_key_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.cert.pem()).unwrap();
        let t = section("tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n");
        let e = load_key(&t, dir.path(), &mut Vec::new()).unwrap_err();
        assert_eq!(
            e,
            "key_file \"server.pem\": no private key in it (a PEM block such as BEGIN PRIVATE KEY; is it the certificate?)"
        );
    }

    #[test]
    fn versions_follow_min_and_max() {
        let v = versions(&section("tls_server_config:\n  min_version: TLS13\n")).unwrap();
        assert_eq!(v.len(), 1);
        let v = versions(&section("tls_server_config:\n  min_version: TLS10\n")).unwrap();
        assert_eq!(v.len(), 2);
        let e = versions(&section("tls_server_config:\n  max_version: TLS11\n")).unwrap_err();
        assert_eq!(
            e,
            "max_version: TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13"
        );
        let e = versions(&section("tls_server_config:\n  min_version: SSL3\n")).unwrap_err();
        assert!(
            e.starts_with("min_version: unknown TLS version \"SSL3\""),
            "{e}"
        );
    }

    #[test]
    fn cipher_suites_and_curves_narrow_the_provider() {
        let s = section("tls_server_config:\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [CurveP521, X25519]\n");
        let p = provider(&s).unwrap();
        let tls12 = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .count();
        assert_eq!(tls12, 1);
        assert_eq!(p.kx_groups.len(), 1);
        let s = section("tls_server_config:\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n");
        let e = provider(&s).unwrap_err();
        assert!(
            e.starts_with("cipher_suites: \"TLS_RSA_WITH_RC4_128_SHA\" is unknown"),
            "{e}"
        );
    }

    #[test]
    fn missing_cert_or_key_is_named() {
        let dir = Path::new(".");
        let e = build(&section("tls_server_config:\n  key_file: k\n"), dir)
            .err()
            .unwrap();
        assert_eq!(e, "tls_server_config: missing one of cert or cert_file");
        assert!(enabled(&section(
            "tls_server_config:\n  client_auth_type: NoClientCert\n"
        )));
        assert!(!enabled(&section(
            "tls_server_config:\n  min_version: TLS12\n"
        )));
    }
}
