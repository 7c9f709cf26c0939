//! jsonwebtoken's RustCrypto provider with one change: an Ed25519 public key is decompressed once.
//! The stock EdDSA verifier rebuilds its `VerifyingKey` from the 32 key bytes on every token,
//! a field inversion and a square root (~4% of a refresh in `perf`). Here the parsed key is kept
//! per key bytes; the signature check itself is the same call (`Verifier::verify` of
//! ed25519-dalek), and every claim check stays in `jsonwebtoken::decode`.

use std::{
    collections::HashMap,
    sync::{LazyLock, RwLock},
};

use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
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
    (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
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
        let stock = (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(&Algorithm::EdDSA, &key).unwrap();
        for round in 0..2 {
            // The second round takes the kept key.
            let ours = new_verifier(&Algorithm::EdDSA, &key).unwrap();
            for (i, (message, signature)) in cases.iter().enumerate() {
                let expected = stock.verify(message, signature).is_ok();
                assert_eq!(
                    ours.verify(message, signature).is_ok(),
                    expected,
                    "round {round}, case {i}"
                );
                assert_eq!(expected, i == 0);
            }
        }
        assert!(PARSED.read().unwrap().contains_key(signing.verifying_key().as_bytes()));
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
