//! Remote bearer tokens (issue 15 groundwork): the verifier refuses every forged, foreign,
//! stale or mis-addressed token and fails closed when the issuer's keys cannot be had. Keys
//! are minted here with aws-lc-rs; the JWKS is served by wiremock on loopback.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PSS_SHA256, RsaKeyPair,
};
use ibkr_agent_gateway::adapters::inbound::mcp_http::jwks::{JwksCache, JwksConfig};
use ibkr_agent_gateway::adapters::inbound::mcp_http::token::{
    TokenError, TokenVerifier, VerifierConfig, hmac_hex,
};
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::tokens::{
    b64, jwk, now, rsa_key, serve_jwks, sign_rsa, signing_input, token_with,
};

const ISSUER: &str = "https://issuer.example";
const RESOURCE: &str = "https://gateway.example/mcp";
const OTHER_AUDIENCE: &str = "https://gateway.example/other";
const SUBJECT_KEY: &[u8] = b"subject-hash-key-for-tests-32byt";
const TOKEN_ID_KEY: &[u8] = b"token-id-hmac-key-for-tests-32by";

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": [RESOURCE], "sub": "user-1", "exp": now() + 600,
        "iat": now(), "jti": "token-1", "scope": "ibkr:accounts:read ibkr:orders:preview",
    })
}

fn jwks_config(server: &MockServer) -> JwksConfig {
    let mut config = JwksConfig::new(Url::parse(&format!("{}/jwks", server.uri())).unwrap());
    config.allow_insecure_loopback = true;
    config.max_body_bytes = 16 * 1024;
    config.timeout = Duration::from_secs(2);
    config
}

fn verifier(config: JwksConfig) -> TokenVerifier {
    let allowed: ScopeSet = [Scope::AccountsRead, Scope::PositionsRead]
        .into_iter()
        .collect();
    TokenVerifier::new(
        VerifierConfig {
            issuer: ISSUER.to_owned(),
            resource: RESOURCE.to_owned(),
            audiences: vec![OTHER_AUDIENCE.to_owned()],
            allowed_scopes: allowed,
            clock_skew_seconds: 60,
            token_id_secret: SecretBytes::new(TOKEN_ID_KEY.to_vec()),
            subject_hash_key: SecretBytes::new(SUBJECT_KEY.to_vec()),
        },
        JwksCache::new(config).unwrap(),
    )
    .unwrap()
}

/// One issuer key "a" in the JWKS, and a verifier reading it.
async fn issuer() -> (MockServer, RsaKeyPair, TokenVerifier) {
    let key = rsa_key();
    let server = serve_jwks(&[jwk(&key, "a")]).await;
    let verifier = verifier(jwks_config(&server));
    (server, key, verifier)
}

async fn refused(verifier: &TokenVerifier, token: &str) -> TokenError {
    let error = verifier.verify(token).await.unwrap_err();
    let shown = format!("{error} {error:?} {}", error.reason());
    for part in token.split('.').filter(|part| part.len() > 8) {
        assert!(!shown.contains(part), "the error echoes the token: {shown}");
    }
    error
}

#[tokio::test]
async fn a_valid_token_gives_the_subject_hash_and_the_allowed_scopes_only() {
    let (_server, key, verifier) = issuer().await;
    let principal = verifier
        .verify(&token_with(&key, "a", &claims()))
        .await
        .unwrap();
    assert_eq!(
        principal.subject_hash,
        hmac_hex(SUBJECT_KEY, "user-1").unwrap()
    );
    assert_eq!(
        principal.scopes.iter().collect::<Vec<_>>(),
        vec![Scope::AccountsRead],
        "ibkr:orders:preview is not in the allowed set and is dropped"
    );
    assert_eq!(
        principal.token_id_hmac.as_deref(),
        Some(hmac_hex(TOKEN_ID_KEY, "token-1").unwrap().as_str())
    );
    assert!(principal.expires_at.timestamp() > now());
    let shown = format!("{principal:?}");
    assert!(
        !shown.contains("user-1") && !shown.contains("token-1"),
        "{shown}"
    );
}

#[tokio::test]
async fn scopes_may_come_as_an_scp_array_and_unknown_ones_are_dropped() {
    let (_server, key, verifier) = issuer().await;
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove("scope");
    claims["scp"] = json!(["ibkr:positions:read", "admin", "ibkr:accounts:read"]);
    let principal = verifier
        .verify(&token_with(&key, "a", &claims))
        .await
        .unwrap();
    assert_eq!(
        principal.scopes.iter().collect::<Vec<_>>(),
        vec![Scope::AccountsRead, Scope::PositionsRead]
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (_server, _key, verifier) = issuer().await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": "a"});
    let token = format!("{}.", signing_input(&header, &claims()));
    let error = refused(&verifier, &token).await;
    assert_eq!(error.code().as_str(), "AUTH_TOKEN_INVALID");
}

#[tokio::test]
async fn hs256_keyed_with_the_rsa_public_key_is_refused() {
    let (_server, key, verifier) = issuer().await;
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "a"});
    let input = signing_input(&header, &claims());
    let public = key.public_key().as_ref().to_vec();
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public);
    let tag = aws_lc_rs::hmac::sign(&hmac_key, input.as_bytes());
    let token = format!("{input}.{}", b64(tag.as_ref()));
    assert_eq!(
        refused(&verifier, &token).await,
        TokenError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn ps256_is_refused() {
    let (_server, key, verifier) = issuer().await;
    let header = json!({"alg": "PS256", "typ": "JWT", "kid": "a"});
    let input = signing_input(&header, &claims());
    let token = format!("{input}.{}", b64(&sign_rsa(&key, &RSA_PSS_SHA256, &input)));
    assert_eq!(
        refused(&verifier, &token).await,
        TokenError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn es256_is_refused() {
    let (_server, _key, verifier) = issuer().await;
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "a"});
    let input = signing_input(&header, &claims());
    let signature = ec.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    let token = format!("{input}.{}", b64(signature.as_ref()));
    assert_eq!(
        refused(&verifier, &token).await,
        TokenError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn time_bounds_are_enforced_beyond_the_skew() {
    let (_server, key, verifier) = issuer().await;
    let mut expired = claims();
    expired["exp"] = json!(now() - 120);
    assert_eq!(
        refused(&verifier, &token_with(&key, "a", &expired)).await,
        TokenError::Expired
    );
    let mut early = claims();
    early["nbf"] = json!(now() + 120);
    assert_eq!(
        refused(&verifier, &token_with(&key, "a", &early)).await,
        TokenError::NotYetValid
    );
    let mut within_skew = claims();
    within_skew["nbf"] = json!(now() + 20);
    assert!(
        verifier
            .verify(&token_with(&key, "a", &within_skew))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let (_server, key, verifier) = issuer().await;
    let mut wrong_issuer = claims();
    wrong_issuer["iss"] = json!("https://evil.example");
    assert_eq!(
        refused(&verifier, &token_with(&key, "a", &wrong_issuer)).await,
        TokenError::WrongIssuer
    );
    let mut wrong_audience = claims();
    wrong_audience["aud"] = json!(["https://evil.example/mcp"]);
    assert_eq!(
        refused(&verifier, &token_with(&key, "a", &wrong_audience)).await,
        TokenError::WrongAudience
    );
    let mut accepted_but_not_this_resource = claims();
    accepted_but_not_this_resource["aud"] = json!(OTHER_AUDIENCE);
    assert_eq!(
        refused(
            &verifier,
            &token_with(&key, "a", &accepted_but_not_this_resource)
        )
        .await,
        TokenError::WrongAudience
    );
}

#[tokio::test]
async fn aud_and_sub_are_required() {
    let (_server, key, verifier) = issuer().await;
    for claim in ["aud", "sub", "exp", "iss"] {
        let mut missing = claims();
        missing.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            refused(&verifier, &token_with(&key, "a", &missing)).await,
            TokenError::MissingClaim,
            "{claim}"
        );
    }
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let (_server, key, verifier) = issuer().await;
    assert_eq!(
        refused(&verifier, &token_with(&key, "nope", &claims())).await,
        TokenError::UnknownKey
    );
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_a_known_kid_is_refused() {
    let key_a = rsa_key();
    let key_b = rsa_key();
    let server = serve_jwks(&[jwk(&key_a, "a"), jwk(&key_b, "b")]).await;
    let verifier = verifier(jwks_config(&server));
    assert_eq!(
        refused(&verifier, &token_with(&key_b, "a", &claims())).await,
        TokenError::BadSignature
    );
    assert!(
        verifier
            .verify(&token_with(&key_b, "b", &claims()))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let (_server, key, verifier) = issuer().await;
    let token = token_with(&key, "a", &claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = claims();
    forged["scope"] = json!("ibkr:accounts:read ibkr:positions:read");
    parts[1] = b64(forged.to_string().as_bytes());
    assert_eq!(
        refused(&verifier, &parts.join(".")).await,
        TokenError::BadSignature
    );
}

#[tokio::test]
async fn an_unreachable_jwks_fails_closed() {
    // wiremock pools its servers, so a dropped one may still answer; take a port nobody holds.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = JwksConfig::new(Url::parse(&format!("http://127.0.0.1:{port}/jwks")).unwrap());
    config.allow_insecure_loopback = true;
    config.timeout = Duration::from_secs(2);
    let verifier = verifier(config);
    let key = rsa_key();
    let error = refused(&verifier, &token_with(&key, "a", &claims())).await;
    assert_eq!(error, TokenError::KeysUnavailable);
    assert_eq!(error.code().as_str(), "AUTH_JWKS_UNAVAILABLE");
}

#[tokio::test]
async fn a_jwks_that_redirects_is_not_followed() {
    let key = rsa_key();
    let server = MockServer::start().await;
    Mock::given(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/real", server.uri())),
        )
        .mount(&server)
        .await;
    Mock::given(path("/real"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [jwk(&key, "a")]})))
        .expect(0)
        .mount(&server)
        .await;
    let verifier = verifier(jwks_config(&server));
    assert_eq!(
        refused(&verifier, &token_with(&key, "a", &claims())).await,
        TokenError::KeysUnavailable
    );
}

#[tokio::test]
async fn a_jwks_over_the_size_cap_is_refused() {
    let key = rsa_key();
    let server = MockServer::start().await;
    let padding = "x".repeat(20 * 1024);
    Mock::given(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"keys": [jwk(&key, "a")], "padding": padding})),
        )
        .mount(&server)
        .await;
    let verifier = verifier(jwks_config(&server));
    assert_eq!(
        refused(&verifier, &token_with(&key, "a", &claims())).await,
        TokenError::KeysUnavailable
    );
}

#[tokio::test]
async fn concurrent_verifications_with_an_unknown_kid_share_one_fetch() {
    let key_a = rsa_key();
    let key_b = rsa_key();
    let server = MockServer::start().await;
    Mock::given(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [jwk(&key_a, "a")]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(200))
                .set_body_json(json!({"keys": [jwk(&key_a, "a"), jwk(&key_b, "b")]})),
        )
        .mount(&server)
        .await;
    let mut config = jwks_config(&server);
    config.min_refresh_interval = Duration::ZERO;
    let verifier = Arc::new(verifier(config));
    verifier
        .verify(&token_with(&key_a, "a", &claims()))
        .await
        .unwrap();
    assert_eq!(verifier.jwks().fetch_count(), 1);

    let token = token_with(&key_b, "b", &claims());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let verifier = Arc::clone(&verifier);
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(
        verifier.jwks().fetch_count(),
        2,
        "one refresh for all eight"
    );
}

#[tokio::test]
async fn unknown_kid_refreshes_are_rate_limited() {
    let (server, key, verifier) = issuer().await;
    verifier
        .verify(&token_with(&key, "a", &claims()))
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            refused(&verifier, &token_with(&key, "other", &claims())).await,
            TokenError::UnknownKey
        );
    }
    // The keys were fetched moments ago, inside the default 30 s interval: no refetch at all.
    assert_eq!(verifier.jwks().fetch_count(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_slow_refresh_does_not_hold_up_tokens_whose_key_is_cached() {
    let key_a = rsa_key();
    let server = MockServer::start().await;
    Mock::given(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": [jwk(&key_a, "a")]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(1500))
                .set_body_json(json!({"keys": [jwk(&key_a, "a")]})),
        )
        .mount(&server)
        .await;
    let mut config = jwks_config(&server);
    config.min_refresh_interval = Duration::ZERO;
    let verifier = Arc::new(verifier(config));
    let known = token_with(&key_a, "a", &claims());
    verifier.verify(&known).await.unwrap();

    let slow = {
        let verifier = Arc::clone(&verifier);
        let unknown = token_with(&key_a, "b", &claims());
        tokio::spawn(async move { verifier.verify(&unknown).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let quick = tokio::time::timeout(Duration::from_millis(700), verifier.verify(&known)).await;
    assert!(
        matches!(quick, Ok(Ok(_))),
        "the cached key waited on the refresh"
    );
    assert_eq!(slow.await.unwrap().unwrap_err(), TokenError::UnknownKey);
}
