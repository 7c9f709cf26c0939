//! jsonwebtoken's RustCrypto provider with two changes, both in signature checks only (every
//! claim check stays in `jsonwebtoken::decode`):
//! - an Ed25519 public key is decompressed once. The stock EdDSA verifier rebuilds its
//!   `VerifyingKey` from the 32 key bytes on every token, a field inversion and a square root
//!   (~4% of a refresh in `perf`). Here the parsed key is kept per key bytes; the signature check
//!   itself is the same call (`Verifier::verify` of ed25519-dalek).
//! - RSA signatures (the providers' id_tokens: Apple, Google, Kakao's OIDC) are checked by
//!   AWS-LC, which the server already links for signing, instead of the `rsa` crate, whose
//!   big-number arithmetic was a third of the CPU of an Apple id_token login in `perf`.
//!   AWS-LC also refuses keys under 2048 bits (RFC 7518 3.3 requires at least that).

use std::{
    collections::HashMap,
    sync::{LazyLock, RwLock},
};

use aws_lc_rs::signature::{self as aws, RsaParameters};
use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind,
    crypto::{CryptoProvider, JwtVerifier, rust_crypto},
    errors::Result,
    signature::{self, Verifier},
};

/// Parsed keys kept: ours (a ring of a few) with room to spare; past it keys are parsed per call.
const MAX_PARSED_KEYS: usize = 64;

static PARSED: LazyLock<RwLock<HashMap<[u8; 32], VerifyingKey>>> = LazyLock::new(Default::default);

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    verifier_factory: new_verifier,
    ..rust_crypto::DEFAULT_PROVIDER.clone()
});

/// Makes this the process's jsonwebtoken provider; later calls (a second `App` in one test
/// process) find it installed.
pub fn install() {
    let _ = PROVIDER.install_default();
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *algorithm == Algorithm::EdDSA
        && key.family() == AlgorithmFamily::Ed
        && let Some(parsed) = parsed_ed25519(key)
    {
        return Ok(Box::new(Ed25519Verifier(parsed)));
    }
    if key.family() == AlgorithmFamily::Rsa
        && let Some(parameters) = rsa_parameters(*algorithm)
    {
        return Ok(Box::new(RsaVerifier {
            algorithm: *algorithm,
            parameters,
            key: key.clone(),
        }));
    }
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

/// AWS-LC's parameters for an RSA algorithm (as jsonwebtoken's own AWS-LC provider maps them).
fn rsa_parameters(algorithm: Algorithm) -> Option<&'static RsaParameters> {
    Some(match algorithm {
        Algorithm::RS256 => &aws::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &aws::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &aws::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &aws::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &aws::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &aws::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

struct RsaVerifier {
    algorithm: Algorithm,
    parameters: &'static RsaParameters,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let checked = match self.key.kind() {
            DecodingKeyKind::SecretOrDer(der) => {
                aws::UnparsedPublicKey::new(self.parameters, der).verify(message, signature)
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                aws::RsaPublicKeyComponents { n, e }.verify(self.parameters, message, signature)
            }
        };
        checked.map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// The parsed key, if the bytes are one; anything else goes to the stock verifier, which
/// reports it as it always did.
fn parsed_ed25519(key: &DecodingKey) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = key.as_bytes().get(..32)?.try_into().ok()?;
    if let Some(parsed) = PARSED.read().ok()?.get(&bytes) {
        return Some(*parsed);
    }
    let parsed = VerifyingKey::from_bytes(&bytes).ok()?;
    let mut cache = PARSED.write().ok()?;
    if cache.len() < MAX_PARSED_KEYS {
        cache.insert(bytes, parsed);
    }
    Some(parsed)
}

struct Ed25519Verifier(VerifyingKey);

impl Verifier<Vec<u8>> for Ed25519Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.0.verify(message, &Signature::from_slice(signature)?)
    }
}

impl JwtVerifier for Ed25519Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    /// The kept key answers as the stock verifier does: a good signature, one by another key, a
    /// changed message, a signature of the wrong length.
    #[test]
    fn parsed_keys_verify_as_the_stock_verifier_does() {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let key = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        let message = b"header.claims".as_slice();
        let cases: [(&[u8], Vec<u8>); 4] = [
            (message, signing.sign(message).to_bytes().to_vec()),
            (message, other.sign(message).to_bytes().to_vec()),
            (b"header.other", signing.sign(message).to_bytes().to_vec()),
            (message, vec![0; 10]),
        ];
        // The second round takes the kept key.
        for _round in 0..2 {
            answers_as_the_stock_verifier(Algorithm::EdDSA, &key, &cases);
        }
        assert!(PARSED.read().unwrap().contains_key(signing.verifying_key().as_bytes()));
    }

    /// AWS-LC's RSA checks answer as the stock (RustCrypto) ones do, for PKCS#1 v1.5 and PSS,
    /// with the key as a JWKS gives it (n, e) and as DER: a good signature, one by another key,
    /// a changed message, a signature of the wrong length, and the other padding's signature.
    #[test]
    fn rsa_signatures_are_checked_as_the_stock_verifier_does() {
        use aws_lc_rs::{
            rand::SystemRandom,
            rsa::KeySize,
            signature::{KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair},
        };
        let signing = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let other = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let sign = |pair: &RsaKeyPair, padding: &'static dyn RsaEncoding, message: &[u8]| {
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &SystemRandom::new(), message, &mut signature)
                .unwrap();
            signature
        };
        let der = signing.public_key().as_ref();
        let (n, e) = pkcs1_components(der);
        let keys = [
            DecodingKey::from_rsa_raw_components(n, e),
            DecodingKey::from_rsa_der(der),
        ];
        let message = b"header.claims".as_slice();
        for (algorithm, padding, wrong) in [
            (
                Algorithm::RS256,
                &RSA_PKCS1_SHA256 as &'static dyn RsaEncoding,
                &RSA_PSS_SHA256 as &'static dyn RsaEncoding,
            ),
            (Algorithm::PS256, &RSA_PSS_SHA256, &RSA_PKCS1_SHA256),
        ] {
            let cases: [(&[u8], Vec<u8>); 5] = [
                (message, sign(&signing, padding, message)),
                (message, sign(&other, padding, message)),
                (b"header.other", sign(&signing, padding, message)),
                (message, vec![0; 10]),
                (message, sign(&signing, wrong, message)),
            ];
            for key in &keys {
                answers_as_the_stock_verifier(algorithm, key, &cases);
            }
        }
        // An RSA key never verifies another family's algorithm.
        assert!(new_verifier(&Algorithm::ES256, &keys[0]).is_err());
    }

    /// Our verifier of `algorithm` answers every case as jsonwebtoken's stock one does, and only
    /// the first case is a good signature.
    fn answers_as_the_stock_verifier(algorithm: Algorithm, key: &DecodingKey, cases: &[(&[u8], Vec<u8>)]) {
        let stock = (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&algorithm, key).unwrap();
        let ours = new_verifier(&algorithm, key).unwrap();
        assert_eq!(ours.algorithm(), algorithm);
        for (i, (message, signature)) in cases.iter().enumerate() {
            let expected = stock.verify(message, signature).is_ok();
            assert_eq!(
                ours.verify(message, signature).is_ok(),
                expected,
                "{algorithm:?}, case {i}"
            );
            assert_eq!(expected, i == 0, "{algorithm:?}, case {i}");
        }
    }

    /// n and e of a PKCS#1 `RSAPublicKey` (SEQUENCE { INTEGER n, INTEGER e }), as a JWKS gives them.
    fn pkcs1_components(der: &[u8]) -> (&[u8], &[u8]) {
        // One DER element at `at`: (its content, where the next one starts).
        fn element(der: &[u8], at: usize) -> (&[u8], usize) {
            let (mut len, mut start) = (usize::from(der[at + 1]), at + 2);
            if len > 0x80 {
                let octets = len - 0x80;
                len = der[start..start + octets]
                    .iter()
                    .fold(0, |n, b| n << 8 | usize::from(*b));
                start += octets;
            }
            (&der[start..start + len], start + len)
        }
        let (sequence, _) = element(der, 0);
        let (n, next) = element(sequence, 0);
        let (e, _) = element(sequence, next);
        (n.strip_prefix(&[0]).unwrap_or(n), e)
    }

    /// Other algorithms and keys that are no Ed25519 point go to the stock provider unchanged.
    #[test]
    fn everything_else_is_the_stock_provider() {
        let hmac = DecodingKey::from_secret(b"secret");
        assert_eq!(
            new_verifier(&Algorithm::HS256, &hmac).unwrap().algorithm(),
            Algorithm::HS256
        );
        assert!(new_verifier(&Algorithm::EdDSA, &hmac).is_err());
    }
}
