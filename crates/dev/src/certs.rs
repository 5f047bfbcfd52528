//! A development certificate authority and a server certificate for
//! `localhost`, made once per state directory (ACME cannot reach a laptop).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::DevError;

fn file(path: &Path) -> impl FnOnce(std::io::Error) -> DevError {
    let path = path.to_owned();
    move |source| DevError::CertificateFile { path, source }
}

/// (CA certificate PEM, server certificate path, server key path), created
/// in `root/tls` unless they are there already.
pub fn development_certificate(
    root: &Path,
    domain: &str,
) -> Result<(String, PathBuf, PathBuf), DevError> {
    let dir = root.join("tls");
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    if ca_path.exists() && cert_path.exists() && key_path.exists() {
        let ca = std::fs::read_to_string(&ca_path).map_err(file(&ca_path))?;
        return Ok((ca, cert_path, key_path));
    }
    std::fs::create_dir_all(&dir).map_err(file(&dir))?;

    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(DevError::Certificate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "TeIpsum development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(DevError::Certificate)?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(DevError::Certificate)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["localhost".to_owned(), domain.to_owned()])
        .map_err(DevError::Certificate)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(DevError::Certificate)?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(DevError::Certificate)?;

    std::fs::write(&ca_path, ca_cert.pem()).map_err(file(&ca_path))?;
    std::fs::write(&cert_path, cert.pem()).map_err(file(&cert_path))?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(file(&key_path))?;
    Ok((ca_cert.pem(), cert_path, key_path))
}
