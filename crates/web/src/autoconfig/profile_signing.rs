//! Signing Apple configuration profiles with the certificate the server serves, so that iOS
//! and macOS show the profile as "Verified" (Apple's Configuration Profile Reference: a signed
//! profile is a CMS SignedData with the property list as its content).
//!
//! The signature is a CMS SignedData (RFC 5652 §5) in DER: the profile as encapsulated
//! `id-data` content, the served chain as its certificates, one SignerInfo identified by the
//! leaf's issuer and serial number, with the signed attributes content-type, signing-time and
//! message-digest (RFC 5652 §5.3, §11). The bytes are signed by the served certificate's own
//! rustls signing key, so the private key never leaves rustls and a renewed certificate signs
//! the next download.
//!
//! A self-signed certificate (yubin's first-start default) signs nothing: a device cannot
//! verify it, and "Not Verified" is what an unsigned profile shows anyway.

use std::sync::Arc;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode, Tag};
use rustls::SignatureScheme;
use rustls::sign::CertifiedKey;
use sha2::Digest;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// The certificate the TLS listeners serve now (it changes on renewal or reload).
pub trait CurrentCertificate: Send + Sync {
    fn current(&self) -> Arc<CertifiedKey>;
}

// RFC 5652 §3, §5.3, §11.1–§11.3.
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
// RFC 5754 §2.2–§2.3 (digests), §3.2 (RSA), §3.3 (ECDSA).
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// Why a profile went out unsigned.
#[derive(Debug)]
pub enum SignError {
    /// The key is neither RSA nor ECDSA P-256/P-384 (the algorithms Apple's devices verify).
    UnsupportedKey,
    /// The certificate could not be parsed, or the structure not encoded.
    Der(der::Error),
    /// The key refused to sign.
    Sign(rustls::Error),
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::UnsupportedKey => f.write_str(
                "the certificate's key type cannot sign CMS here (RSA or ECDSA P-256/P-384 can)",
            ),
            SignError::Der(e) => write!(f, "DER: {e}"),
            SignError::Sign(e) => write!(f, "signing: {e}"),
        }
    }
}

impl From<der::Error> for SignError {
    fn from(e: der::Error) -> Self {
        SignError::Der(e)
    }
}

/// Whether the served leaf certificate is self-signed (its issuer is its subject), or has no
/// certificate at all: such a profile is served unsigned.
pub fn is_self_signed(key: &CertifiedKey) -> bool {
    let Some(leaf) = key.cert.first() else {
        return true;
    };
    match Certificate::from_der(leaf.as_ref()) {
        Ok(c) => c.tbs_certificate.issuer == c.tbs_certificate.subject,
        Err(_) => true,
    }
}

/// The scheme rustls signs with, and the CMS digest and signature algorithms that name it.
fn algorithms(
    key: &CertifiedKey,
) -> Option<(
    Box<dyn rustls::sign::Signer>,
    ObjectIdentifier,
    ObjectIdentifier,
)> {
    let offered = [
        SignatureScheme::RSA_PKCS1_SHA256,
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
    ];
    let signer = key.key.choose_scheme(&offered)?;
    let (digest, sig) = match signer.scheme() {
        SignatureScheme::RSA_PKCS1_SHA256 => (ID_SHA256, SHA256_WITH_RSA),
        SignatureScheme::ECDSA_NISTP256_SHA256 => (ID_SHA256, ECDSA_WITH_SHA256),
        SignatureScheme::ECDSA_NISTP384_SHA384 => (ID_SHA384, ECDSA_WITH_SHA384),
        _ => return None,
    };
    Some((signer, digest, sig))
}

fn algorithm(oid: ObjectIdentifier, null_parameters: bool) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        // RFC 4055 §5 / RFC 5754 §3.2: RSA with SHA-2 carries NULL parameters; ECDSA and the
        // digest identifiers here omit them (RFC 5754 §2, §3.3).
        parameters: null_parameters.then(|| Any::from(der::asn1::Null)),
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, der::Error> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// The profile (its property-list bytes) wrapped in a CMS SignedData signed by `key`, in DER
/// (what Apple's devices read as a `.mobileconfig`).
pub fn sign(profile: &[u8], key: &CertifiedKey) -> Result<Vec<u8>, SignError> {
    let (signer, digest_oid, sig_oid) = algorithms(key).ok_or(SignError::UnsupportedKey)?;
    let chain: Vec<Certificate> = key
        .cert
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()))
        .collect::<Result<_, _>>()?;
    let leaf = chain.first().ok_or(SignError::UnsupportedKey)?;
    let content_digest = if digest_oid == ID_SHA384 {
        sha2::Sha384::digest(profile).to_vec()
    } else {
        sha2::Sha256::digest(profile).to_vec()
    };
    // RFC 5652 §5.3: with signed attributes, content-type and message-digest are required;
    // signing-time (§11.3) tells the device when the profile was made.
    let signed_attrs: SetOfVec<Attribute> = SetOfVec::try_from(vec![
        attribute(ID_CONTENT_TYPE, Any::from(&ID_DATA))?,
        attribute(
            ID_SIGNING_TIME,
            Any::encode_from(&UtcTime::from_system_time(std::time::SystemTime::now())?)?,
        )?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(content_digest)?)?,
        )?,
    ])?;
    // RFC 5652 §5.4: the signature covers the DER of the attributes with their SET OF tag,
    // not the [0] IMPLICIT tag they carry inside SignerInfo.
    let signature = signer
        .sign(&signed_attrs.to_der()?)
        .map_err(SignError::Sign)?;
    let rsa = sig_oid == SHA256_WITH_RSA;
    let signer_info = SignerInfo {
        // RFC 5652 §5.3: version 1 with issuerAndSerialNumber.
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate.issuer.clone(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: algorithm(digest_oid, false),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(sig_oid, rsa),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let certificates = chain
        .into_iter()
        .map(CertificateChoices::Certificate)
        .collect::<Vec<_>>();
    let signed_data = SignedData {
        // RFC 5652 §5.1: version 1 (only X.509 certificates, id-data content, v1 SignerInfo).
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(digest_oid, false)])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: Some(Any::new(Tag::OctetString, profile)?),
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(certificates)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    let info = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    };
    Ok(info.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey, VerificationAlgorithm};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    /// A CA and a leaf it issued for mail.example.com, the leaf's key of `alg`.
    fn chain(alg: &'static rcgen::SignatureAlgorithm) -> (Arc<CertifiedKey>, Vec<u8>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate_for(alg).unwrap();
        let leaf_params =
            rcgen::CertificateParams::new(vec!["mail.example.com".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let key = CertifiedKey::from_der(
            vec![leaf.der().clone(), ca.der().clone()],
            PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
            &rustls::crypto::ring::default_provider(),
        )
        .unwrap();
        (Arc::new(key), leaf_key.public_key_raw().to_vec())
    }

    /// Parses what `sign` made and checks it as a verifier would: the content, the digest
    /// attribute, and the signature over the attributes with the leaf's public key.
    fn verify(
        der: &[u8],
        profile: &[u8],
        public_key: &[u8],
        alg: &'static dyn VerificationAlgorithm,
    ) {
        let info = ContentInfo::from_der(der).unwrap();
        assert_eq!(info.content_type, ID_SIGNED_DATA);
        let sd: SignedData = info.content.decode_as().unwrap();
        let content = sd.encap_content_info.econtent.unwrap();
        assert_eq!(content.value(), profile);
        assert_eq!(sd.certificates.unwrap().0.len(), 2, "leaf and CA");
        let si = sd.signer_infos.0.get(0).unwrap().clone();
        let attrs = si.signed_attrs.unwrap();
        let digest = attrs
            .iter()
            .find(|a| a.oid == ID_MESSAGE_DIGEST)
            .unwrap()
            .values
            .get(0)
            .unwrap()
            .decode_as::<OctetString>()
            .unwrap();
        assert_eq!(digest.as_bytes(), sha2::Sha256::digest(profile).as_slice());
        let key = UnparsedPublicKey::new(alg, public_key);
        key.verify(&attrs.to_der().unwrap(), si.signature.as_bytes())
            .expect("the signature verifies over the DER of the signed attributes");
        // Tampered attributes do not verify.
        let mut bad = attrs.to_der().unwrap();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(key.verify(&bad, si.signature.as_bytes()).is_err());
    }

    #[test]
    fn an_ecdsa_certificate_signs_a_verifiable_profile() {
        let (key, public) = chain(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert!(!is_self_signed(&key));
        let profile = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict/></plist>\n";
        let der = sign(profile, &key).unwrap();
        verify(&der, profile, &public, &ECDSA_P256_SHA256_ASN1);
    }

    #[test]
    fn a_self_signed_certificate_is_recognised() {
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mail.example.com".to_string()])
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        let key = CertifiedKey::from_der(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::try_from(key_pair.serialize_der()).unwrap(),
            &rustls::crypto::ring::default_provider(),
        )
        .unwrap();
        assert!(is_self_signed(&key));
    }
}
