//! Which TLS certificates destinations may present, and what a TLS failure tells the user.
//!
//! Trusted: the Mozilla roots (webpki-roots) plus the operating system's store, or, when
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` are set, the certificates they name (as OpenSSL does):
//! a local CA made by mkcert or `next dev --experimental-https` is in one of those. With
//! `-insecure-tls` any certificate is accepted, for self-signed development certificates.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for deliveries.
pub fn client_config(insecure: bool) -> ClientConfig {
    // ok: the ring provider supports rustls' default protocol versions.
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(trusted_roots())
            .with_no_client_auth()
    }
}

fn trusted_roots() -> RootCertStore {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "could not load some system certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "trusted certificates from the system store");
    roots
}

/// A TLS failure described so a user can act on it; `None` when `e` is not about TLS.
pub fn explain(e: &(dyn std::error::Error + 'static), host: &str) -> Option<String> {
    find_tls(e).map(|tls| sentence(tls, host))
}

/// The rustls error somewhere in `e`'s chain. An `io::Error`'s `source()` skips the error it
/// wraps (it returns that error's source), and the connector nests them, so wrapped errors
/// are opened explicitly.
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        && let Some(tls) = find_tls(inner)
    {
        return Some(tls);
    }
    e.source().and_then(find_tls)
}

fn sentence(e: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let fix = "trust its CA in the system store or through SSL_CERT_FILE, or start the server with -insecure-tls to accept self-signed development certificates";
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "TLS: the certificate of {host} is signed by an unknown authority (self-signed or a local CA): {fix}"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            format!("TLS: the certificate of {host} has expired")
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!("TLS: the certificate of {host} is not valid for that name: {fix}")
        }
        rustls::Error::InvalidCertificate(C::Other(o))
            if o.to_string().contains("CaUsedAsEndEntity") =>
        {
            format!(
                "TLS: {host} presents a CA certificate as its own certificate: serve a certificate issued by that CA (mkcert does this), or start the server with -insecure-tls"
            )
        }
        rustls::Error::InvalidCertificate(other) => {
            format!("TLS: the certificate of {host} was rejected ({other:?}): {fix}")
        }
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// `-insecure-tls`: every certificate is accepted (signatures are still checked, so the
/// connection is encrypted; only who is on the other end is not verified).
#[derive(Debug)]
struct AcceptAnything;

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
