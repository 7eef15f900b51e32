//! Certificates for the TLS tests, made at test time with rcgen (ECDSA
//! P-256, which both rustls and Java speak): a CA, and leaf certificates it
//! signs for a broker or a client, written as PEM files.

use std::path::PathBuf;

use harness::broker::TlsFiles;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A directory of PEM files, removed on drop.
pub struct CertDir(PathBuf);

impl CertDir {
    /// A fresh directory named after the test.
    pub fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kafka-pure-certs-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        Self(dir)
    }

    fn write(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, pem).expect("write a PEM file");
        path
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority; `pem` is its certificate, the file a client's
/// `ssl.ca.location` or a broker's truststore names.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    name: String,
    pub pem: PathBuf,
}

/// Which end a leaf certificate is for (its extended key usage).
#[derive(Clone, Copy)]
pub enum Role {
    Broker,
    Client,
}

impl Ca {
    pub fn new(dir: &CertDir, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("kafka-pure test CA {name}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap())
            .expect("self-sign a CA");
        let pem = dir.write(&format!("{name}-ca.pem"), &issuer.pem());
        Self {
            issuer,
            name: name.to_owned(),
            pem,
        }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses), signed
    /// by this CA: chain and key files.
    pub fn issue(&self, dir: &CertDir, role: Role, names: &[&str]) -> TlsFiles {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match role {
            Role::Broker => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).expect("sign a leaf");
        let stem = format!(
            "{}-{}",
            self.name,
            match role {
                Role::Broker => "broker",
                Role::Client => "client",
            }
        );
        TlsFiles {
            cert: dir.write(&format!("{stem}.pem"), &cert.pem()),
            key: dir.write(&format!("{stem}.key"), &key.serialize_pem()),
            client_ca: None,
        }
    }
}
