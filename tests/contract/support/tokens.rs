//! Bearer tokens minted locally: RSA keys from aws-lc-rs, their JWKs, RS256 (or other)
//! signatures, and a JWKS served by wiremock on loopback. Shared by the token verifier's
//! tests and the HTTP server's.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Base64url without padding, as JWTs are written.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh RSA-2048 key pair.
pub(crate) fn rsa_key() -> RsaKeyPair {
    RsaKeyPair::generate(KeySize::Rsa2048).unwrap()
}

/// The public JWK of `key` under `kid`.
pub(crate) fn jwk(key: &RsaKeyPair, kid: &str) -> Value {
    let public = key.public_key();
    json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    })
}

/// The wall clock in seconds, as the verifier reads it.
pub(crate) fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// `base64url(header).base64url(claims)`.
pub(crate) fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// Signs `input` with `key` under `padding` (PKCS#1 v1.5 or PSS).
pub(crate) fn sign_rsa(key: &RsaKeyPair, padding: &'static RsaPadding, input: &str) -> Vec<u8> {
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        padding,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    signature
}

/// An RSA signature padding.
pub(crate) type RsaPadding = dyn aws_lc_rs::signature::RsaEncoding;

/// An RS256 JWT over `claims`, signed by `key` and naming `kid`.
pub(crate) fn token_with(key: &RsaKeyPair, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let input = signing_input(&header, claims);
    let signature = sign_rsa(key, &RSA_PKCS1_SHA256, &input);
    format!("{input}.{}", b64(&signature))
}

/// A JWKS with `keys` at `/jwks` on a loopback wiremock server.
pub(crate) async fn serve_jwks(keys: &[Value]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("cache-control", "public, max-age=300")
                .set_body_json(json!({ "keys": keys })),
        )
        .mount(&server)
        .await;
    server
}
