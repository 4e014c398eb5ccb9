//! TLS to PostgreSQL: `sslmode=require` verifies the server against the system's trust store
//! plus `queue.tls_ca_file` (a managed database's CA bundle, or a self-signed server's cert).

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::queue::QueueError;

/// The connector for every connection of the queue. Without `sslmode=require` in the URL the
/// connection is plain TCP: `prefer` (libpq's default) is treated as `disable`, since an
/// opportunistic TLS session that cannot be verified would protect nothing.
pub(super) fn connector(
    config: &mut tokio_postgres::Config,
    ca_file: Option<&Path>,
) -> Result<MakeRustlsConnect, QueueError> {
    if config.get_ssl_mode() != SslMode::Require {
        config.ssl_mode(SslMode::Disable);
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| {
                QueueError::Tls(format!(
                    "cannot read queue.tls_ca_file {}: {error}",
                    path.display()
                ))
            })?;
        if certs.is_empty() {
            return Err(QueueError::Tls(format!(
                "queue.tls_ca_file {} holds no certificate",
                path.display()
            )));
        }
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(QueueError::Tls(format!(
                "queue.tls_ca_file {}: no usable certificate",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| QueueError::Tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(tls))
}
