//! Claim checks and the key cache against a key-set server of the test's own.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use poem::{
    EndpointExt, Route, get, handler,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};
use serde_json::{Value, json};

use super::*;

struct Key {
    kid: String,
    signing: SigningKey,
}

impl Key {
    fn new(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
               "x": URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes())})
    }

    fn sign(&self, claims: &Value) -> String {
        let der = self.signing.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn access(user_id: Value) -> Value {
    json!({"token_type": "access", "exp": now() + 300, "iat": now(), "jti": "j1",
           "user_id": user_id, "sub": "7", "sid": "family-1", "auth_time": now() - 60})
}

/// A key-set server: what it publishes, whether it is down, how often it was asked.
#[derive(Clone, Default)]
struct KeySet {
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
}

#[handler]
fn jwks(Data(set): Data<&KeySet>) -> poem::Result<poem::web::Json<Value>> {
    set.fetches.fetch_add(1, Ordering::SeqCst);
    if set.down.load(Ordering::SeqCst) {
        return Err(poem::Error::from_status(poem::http::StatusCode::SERVICE_UNAVAILABLE));
    }
    Ok(poem::web::Json(json!({ "keys": *set.keys.lock().unwrap() })))
}

impl KeySet {
    async fn serve(&self) -> String {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let app = Route::new().at("/.well-known/jwks.json", get(jwks)).data(self.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        format!("http://127.0.0.1:{port}")
    }

    fn publish(&self, key: &Key) {
        self.keys.lock().unwrap().push(key.jwk());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn verifier(tweak: impl FnOnce(&mut VerifierConfig)) -> (Verifier, KeySet, Key) {
    let set = KeySet::default();
    let key = Key::new("k1");
    set.publish(&key);
    let mut config = VerifierConfig::new(&set.serve().await);
    tweak(&mut config);
    (Verifier::new(config), set, key)
}

#[tokio::test]
async fn an_access_token_verifies_with_user_id_as_integer_or_string() {
    let (verifier, _, key) = verifier(|_| {}).await;
    let claims = verifier.verify(&key.sign(&access(json!(7)))).await.unwrap();
    assert_eq!(claims.user_id, 7);
    assert_eq!(claims.sid.as_deref(), Some("family-1"));
    assert!(claims.auth_time.is_some());
    let claims = verifier.verify(&key.sign(&access(json!("7")))).await.unwrap();
    assert_eq!(claims.user_id, 7);
    assert!(matches!(
        verifier.verify(&key.sign(&access(json!("7x")))).await,
        Err(VerifyError::Invalid)
    ));
}

#[tokio::test]
async fn expired_refresh_and_tampered_tokens_are_refused() {
    let (verifier, _, key) = verifier(|_| {}).await;
    let mut expired = access(json!(7));
    expired["exp"] = json!(now() - 1);
    assert!(matches!(
        verifier.verify(&key.sign(&expired)).await,
        Err(VerifyError::Expired)
    ));
    let mut refresh = access(json!(7));
    refresh["token_type"] = json!("refresh");
    assert!(matches!(
        verifier.verify(&key.sign(&refresh)).await,
        Err(VerifyError::WrongType)
    ));
    let mut no_exp = access(json!(7));
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        verifier.verify(&key.sign(&no_exp)).await,
        Err(VerifyError::Invalid)
    ));
    let token = key.sign(&access(json!(7)));
    let (head, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&access(json!(1))).unwrap());
    let forged = format!("{head}.{forged_payload}.{sig}");
    assert!(matches!(verifier.verify(&forged).await, Err(VerifyError::Invalid)));
}

#[tokio::test]
async fn the_algorithm_is_never_the_tokens_choice() {
    let (verifier, _, key) = verifier(|_| {}).await;
    // HS256 signed with the public key as the secret (the classic confusion attack).
    let public = key.signing.verifying_key().to_bytes();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(&header, &access(json!(7)), &EncodingKey::from_secret(&public)).unwrap();
    assert!(matches!(verifier.verify(&hs).await, Err(VerifyError::Invalid)));
    // alg none, unsigned.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&access(json!(7))).unwrap());
    assert!(matches!(
        verifier.verify(&format!("{none_header}.{payload}.")).await,
        Err(VerifyError::Invalid)
    ));
    // No kid.
    let der = key.signing.to_pkcs8_der().unwrap();
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &access(json!(7)),
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    assert!(matches!(verifier.verify(&no_kid).await, Err(VerifyError::Invalid)));
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured() {
    let (verifier, _, key) = verifier(|c| {
        c.issuer = Some("https://auth.example.com".into());
        c.audience = Some("posts".into());
    })
    .await;
    let mut claims = access(json!(7));
    assert!(matches!(
        verifier.verify(&key.sign(&claims)).await,
        Err(VerifyError::Invalid)
    ));
    claims["iss"] = json!("https://auth.example.com");
    claims["aud"] = json!("other");
    assert!(matches!(
        verifier.verify(&key.sign(&claims)).await,
        Err(VerifyError::Invalid)
    ));
    claims["aud"] = json!("posts");
    assert!(verifier.verify(&key.sign(&claims)).await.is_ok());
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_key_set_at_most_once_an_interval() {
    let (verifier, set, key) = verifier(|_| {}).await;
    verifier.verify(&key.sign(&access(json!(7)))).await.unwrap();
    assert_eq!(set.fetches(), 1);
    let stranger = Key::new("forged");
    for _ in 0..5 {
        assert!(matches!(
            verifier.verify(&stranger.sign(&access(json!(7)))).await,
            Err(VerifyError::Invalid)
        ));
    }
    assert_eq!(
        set.fetches(),
        1,
        "a fetch was just made: unknown kids wait for the interval"
    );
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_on_its_first_token_after_the_interval() {
    let (verifier, set, key) = verifier(|c| c.refetch_interval = Duration::ZERO).await;
    verifier.verify(&key.sign(&access(json!(7)))).await.unwrap();
    let rotated = Key::new("k2");
    set.publish(&rotated);
    assert_eq!(
        verifier.verify(&rotated.sign(&access(json!(8)))).await.unwrap().user_id,
        8
    );
    assert_eq!(set.fetches(), 2);
}

#[tokio::test]
async fn a_key_set_outage_with_a_warm_cache_does_not_stop_verification() {
    let (verifier, set, key) = verifier(|c| {
        c.refetch_interval = Duration::ZERO;
        c.max_age = Duration::ZERO;
    })
    .await;
    verifier.verify(&key.sign(&access(json!(7)))).await.unwrap();
    set.down.store(true, Ordering::SeqCst);
    // Stale (max_age 0): a refetch is tried, fails, and the known key still verifies.
    verifier.verify(&key.sign(&access(json!(7)))).await.unwrap();
    assert!(set.fetches() >= 2);
}

#[tokio::test]
async fn with_no_key_and_no_key_set_the_answer_is_unavailable() {
    let set = KeySet::default();
    set.down.store(true, Ordering::SeqCst);
    let verifier = Verifier::new(VerifierConfig::new(&set.serve().await));
    let token = Key::new("k1").sign(&access(json!(7)));
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::KeysUnavailable)
    ));
}
