//! TLS for the PostgreSQL sink: libpq's `sslmode` and `sslrootcert`, spoken with rustls.
//!
//! - `disable`: plain TCP only.
//! - `prefer` (the default on loopback, see [`super::pg_auth`] for the defaults elsewhere and with a
//!   password; `allow` is treated the same): TLS if the server offers it, else plain.
//! - `require`: TLS; the certificate is not checked.
//! - `verify-ca`: TLS; the certificate must chain to `sslrootcert` (else the system's roots).
//! - `verify-full`: as `verify-ca`, and the certificate must name the host of the URL.
//!
//! As in libpq, naming an `sslrootcert` makes `prefer` and `require` verify the chain too. Without
//! one, `verify-*` trust the platform's roots (the Mozilla roots from `webpki-roots` where the
//! platform has none); `sslrootcert=system` says so explicitly. `~/.postgresql/root.crt` is not
//! read, and client certificates (`sslcert`, `sslkey`) are not supported.
//!
//! The `ClientConfig` is always built with the ring provider explicitly (as reqwest uses it),
//! never the process default: where both ring and aws-lc-rs are linked (the tests), rustls cannot
//! pick a default, and another crate may have installed one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS if the server offers it, else plain (`allow` is treated the same).
    Prefer,
    /// TLS, certificate not checked (unless `sslrootcert` is given).
    Require,
    /// TLS, certificate chain checked.
    VerifyCa,
    /// TLS, certificate chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// What tokio-postgres does at the protocol level (verification is the connector's job).
    pub(crate) fn driver_mode(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as D;
        match self {
            SslMode::Disable => D::Disable,
            SslMode::Prefer => D::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => D::Require,
        }
    }
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCert {
    /// A PEM file with one or more CA certificates.
    File(PathBuf),
    /// The platform's store (`sslrootcert=system`, or `verify-*` without `sslrootcert`).
    System,
}

/// The TLS part of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) mode: SslMode,
    /// `sslrootcert`, if given.
    pub(crate) root_cert: Option<RootCert>,
}

/// Query parameters this module handles; they are removed before tokio-postgres sees the URL.
const HANDLED: [&str; 2] = ["sslmode", "sslrootcert"];
/// libpq TLS parameters skysync does not implement: refused rather than ignored.
const REFUSED: [&str; 6] = ["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir", "sslcertmode"];

impl TlsSettings {
    /// Reads `sslmode` (`prefer` unless given; [`super::pg_auth`] then applies the defaults) and
    /// `sslrootcert` from a URL's query. The error is a
    /// sentence for `SinkError::InvalidSpec` and never contains the URL.
    pub(crate) fn from_url(url: &url::Url) -> Result<TlsSettings, String> {
        let mut settings = TlsSettings { mode: SslMode::Prefer, root_cert: None };
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" => {
                    settings.mode = SslMode::parse(&v).ok_or_else(|| {
                        format!(
                            "sslmode={v} is not a valid sslmode: use disable, prefer (the default), \
                             require, verify-ca or verify-full"
                        )
                    })?;
                }
                "sslrootcert" if v.is_empty() => {
                    return Err("sslrootcert is empty: give the path of a PEM file of CA certificates, \
                                or sslrootcert=system"
                        .into());
                }
                "sslrootcert" if v == "system" => settings.root_cert = Some(RootCert::System),
                "sslrootcert" => settings.root_cert = Some(RootCert::File(PathBuf::from(v.as_ref()))),
                k if REFUSED.contains(&k) => {
                    return Err(format!(
                        "{k} is not supported: skysync does not present client certificates \
                         (use password or SCRAM authentication over sslmode=verify-full)"
                    ));
                }
                _ => {}
            }
        }
        Ok(settings)
    }

    /// The rustls connector for these settings (also passed for `disable`, where it is never used).
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match (&self.root_cert, self.mode) {
            (_, SslMode::Disable) | (None, SslMode::Prefer | SslMode::Require) => None,
            (Some(RootCert::File(path)), _) => Some(load_pem_roots(path)?),
            (Some(RootCert::System), _) | (None, SslMode::VerifyCa | SslMode::VerifyFull) => Some(system_roots()),
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("setting up TLS: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            None => Arc::new(NoCertificateCheck { provider }),
            Some(roots) if self.mode == SslMode::VerifyFull => {
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("setting up TLS: {e}"))?
            }
            Some(roots) => Arc::new(ChainOnly { roots: Arc::new(roots), provider }),
        };
        let config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// Removes the parameters this module handles from a URL's query, textually (the rest of the URL
/// is passed to tokio-postgres exactly as written).
pub(crate) fn strip_handled_params(raw: &str) -> String {
    let Some((base, query)) = raw.split_once('?') else {
        return raw.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !pair.is_empty() && !HANDLED.contains(&key)
        })
        .collect();
    if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
}

fn load_pem_roots(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("sslrootcert {shown}: cannot read CA certificates from it: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "sslrootcert {shown} contains no PEM certificate (-----BEGIN CERTIFICATE-----): \
             give the CA certificate that issued the server's certificate"
        ));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert {shown}: certificate {} is not usable as a CA: {e}", i + 1))?;
    }
    Ok(roots)
}

/// The platform's trusted roots, or the Mozilla roots if the platform offers none.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "reading the platform's CA certificates");
    }
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        tracing::debug!("no platform CA certificates found: using the Mozilla roots (webpki-roots)");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// What to tell the operator about a failed TLS connection, from the rustls error in `e`'s chain.
pub(crate) fn hint(e: &(dyn std::error::Error + 'static), settings: &TlsSettings) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(c)) = tls {
            let trusted = match &settings.root_cert {
                Some(RootCert::File(p)) => format!("sslrootcert {}", p.display()),
                _ => "the system's trusted roots (set sslrootcert=/path/ca.pem for a private CA)".to_owned(),
            };
            return Some(match c {
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    "the server's certificate does not name the host in the URL: connect with a host \
                     name the certificate was issued for, or use sslmode=verify-ca to check only the CA"
                        .to_owned()
                }
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => {
                    "the server's certificate is outside its validity period (check the server's \
                     certificate and this machine's clock)"
                        .to_owned()
                }
                _ => format!(
                    "the server's certificate was not issued by a CA in {trusted}: point sslrootcert \
                     at the CA that issued it, or {} to encrypt without verifying",
                    match settings.mode {
                        SslMode::Prefer | SslMode::Require => "drop sslrootcert",
                        _ => "use sslmode=require without sslrootcert",
                    }
                ),
            });
        }
        cur = err.source();
    }
    None
}

/// `require`/`prefer` without `sslrootcert`: encrypt, trust any certificate (libpq does the same),
/// but still check the handshake signatures.
#[derive(Debug)]
struct NoCertificateCheck {
    provider: Arc<CryptoProvider>,
}

/// `verify-ca` (and `require` with `sslrootcert`): the chain must lead to a trusted root; the
/// host name is not checked.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider.signature_verification_algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    signature_checks!();
}
