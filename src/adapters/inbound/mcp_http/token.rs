//! Bearer-token verification: an RS256 JWT from the configured issuer becomes a
//! [`VerifiedPrincipal`], or a [`TokenError`].
//!
//! Only RS256 is accepted, with the key chosen by the header's `kid` from the [`JwksCache`].
//! The claims `exp`, `iss`, `aud` and `sub` are required; `aud` must name this server's resource
//! and only accepted audiences are allowed; `nbf` is honoured; the clock-skew leeway is at most
//! 300 s. Scopes come from `scope` (space-separated) or `scp` (array) and are cut down to the
//! allowed set; unknown scopes are dropped. The raw token is never kept, logged or put in an
//! error: the principal carries a keyed hash of the subject and an HMAC of the `jti`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use sha2::Sha256;
use thiserror::Error;

use super::jwks::{JwksCache, JwksError};
use crate::domain::audit::Actor;
use crate::domain::error_code::ErrorCode;
use crate::domain::scope::{Scope, ScopeSet};
use crate::domain::secret::SecretBytes;

/// The largest clock-skew leeway, in seconds.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 300;

/// Why a token was refused. Neither the message nor [`TokenError::reason`] echoes any part of
/// the token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a JWT, or a header or claim that does not parse.
    #[error("the token is malformed")]
    Malformed,
    /// The header names an algorithm other than RS256 (including `none`).
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// The header has no `kid`.
    #[error("the token names no key id")]
    MissingKeyId,
    /// No signing key has the token's `kid`.
    #[error("the token's key id is unknown")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not name this resource, or names no accepted audience.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A required claim (`exp`, `iss`, `aud` or `sub`) is missing.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// The signing keys could not be had; the token is refused (fail closed).
    #[error("the signing keys are unavailable")]
    KeysUnavailable,
}

impl TokenError {
    /// The stable code: [`ErrorCode::AuthJwksUnavailable`] when the keys could not be had,
    /// else [`ErrorCode::AuthTokenInvalid`].
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::KeysUnavailable => ErrorCode::AuthJwksUnavailable,
            _ => ErrorCode::AuthTokenInvalid,
        }
    }

    /// A stable, token-free reason for audit records and challenges.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::MissingKeyId => "missing_kid",
            Self::UnknownKey => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim => "missing_claim",
            Self::KeysUnavailable => "jwks_unavailable",
        }
    }
}

/// What the verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The exact `iss` accepted.
    pub issuer: String,
    /// This server's canonical URI; `aud` must include it.
    pub resource: String,
    /// The accepted audiences (the resource is always accepted).
    pub audiences: Vec<String>,
    /// The scopes a remote token may grant; anything else in the token is dropped.
    pub allowed_scopes: ScopeSet,
    /// The leeway for `exp` and `nbf`, in seconds; capped at [`MAX_CLOCK_SKEW_SECONDS`].
    pub clock_skew_seconds: u64,
    /// The key for the `jti` HMAC.
    pub token_id_secret: SecretBytes,
    /// The key for the subject's audit hash (the audit key, as for account ids).
    pub subject_hash_key: SecretBytes,
}

/// A caller proven by a verified token. Holds no raw token, subject or token id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPrincipal {
    /// HMAC-SHA256 of `sub` under the subject-hash key, in hex.
    pub subject_hash: String,
    /// The token's scopes cut down to the allowed set.
    pub scopes: ScopeSet,
    /// HMAC-SHA256 of `jti` under the token-id secret, in hex, when the token has a `jti`.
    pub token_id_hmac: Option<String>,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl VerifiedPrincipal {
    /// The audit actor for this principal (never the operator).
    pub fn actor(&self) -> Actor {
        Actor::RemoteSubject {
            subject_hash: self.subject_hash.clone(),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
    #[serde(default)]
    jti: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(one) => one == wanted,
            Self::Many(many) => many.iter().any(|one| one == wanted),
        }
    }
}

/// A key refused for an HMAC: empty keys are never used, so no hash can be computed under a
/// key anyone can guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the {0} is empty")]
pub struct EmptyKeyError(pub &'static str);

/// An HMAC-SHA256 key checked to be non-empty, prepared once.
#[derive(Clone)]
pub struct HmacKey(Hmac<Sha256>);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

impl HmacKey {
    /// Prepares `key`, named `what` in the error.
    ///
    /// # Errors
    /// [`EmptyKeyError`] for an empty key.
    pub fn new(key: &[u8], what: &'static str) -> Result<Self, EmptyKeyError> {
        if key.is_empty() {
            return Err(EmptyKeyError(what));
        }
        <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .map(Self)
            .map_err(|_| EmptyKeyError(what))
    }

    /// HMAC-SHA256 of `message`, lower-case hex.
    pub fn hex(&self, message: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(message.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Verifies bearer tokens against one issuer's keys.
#[derive(Debug)]
pub struct TokenVerifier {
    config: VerifierConfig,
    jwks: JwksCache,
    validation: Validation,
    subject_key: HmacKey,
    token_id_key: HmacKey,
}

impl TokenVerifier {
    /// Builds the verifier; the leeway is capped at [`MAX_CLOCK_SKEW_SECONDS`].
    ///
    /// # Errors
    /// [`EmptyKeyError`] when the token-id secret or the subject-hash key is empty.
    pub fn new(config: VerifierConfig, jwks: JwksCache) -> Result<Self, EmptyKeyError> {
        let subject_key = HmacKey::new(config.subject_hash_key.expose(), "subject-hash key")?;
        let token_id_key = HmacKey::new(config.token_id_secret.expose(), "token-id secret")?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // A configured issuer is parsed as a URL, which writes a bare origin with a trailing
        // `/`; an issuer's `iss` may be written either way, and both name the same origin.
        let mut issuers = vec![config.issuer.clone()];
        if let Some(bare) = config.issuer.strip_suffix('/')
            && !bare.ends_with('/')
            && url::Url::parse(&config.issuer).is_ok_and(|url| url.path() == "/")
        {
            issuers.push(bare.to_owned());
        }
        validation.set_issuer(&issuers);
        let mut audiences = config.audiences.clone();
        audiences.push(config.resource.clone());
        validation.set_audience(&audiences);
        validation.leeway = config.clock_skew_seconds.min(MAX_CLOCK_SKEW_SECONDS);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        Ok(Self {
            config,
            jwks,
            validation,
            subject_key,
            token_id_key,
        })
    }

    /// What the verifier accepts.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The key cache (for its fetch count).
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Verifies `token` (the bearer value, without `Bearer `).
    ///
    /// # Errors
    /// A [`TokenError`] naming why, never the token.
    pub async fn verify(&self, token: &str) -> Result<VerifiedPrincipal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| map_error(error.kind()))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let key = self.jwks.key(&kid).await.map_err(|error| match error {
            JwksError::UnknownKey => TokenError::UnknownKey,
            _ => TokenError::KeysUnavailable,
        })?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation)
            .map_err(|error| map_error(error.kind()))?;
        let claims = data.claims;
        // The validation already required these; checked again so a library change cannot
        // let a token without them through.
        let (Some(subject), Some(exp), Some(audience)) = (claims.sub, claims.exp, claims.aud)
        else {
            return Err(TokenError::MissingClaim);
        };
        if !audience.contains(&self.config.resource) {
            return Err(TokenError::WrongAudience);
        }
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or(TokenError::Malformed)?;
        let granted: Vec<String> = match (claims.scope, claims.scp) {
            (Some(scope), _) => scope.split_ascii_whitespace().map(str::to_owned).collect(),
            (None, Some(scp)) => scp,
            (None, None) => Vec::new(),
        };
        let scopes: ScopeSet = granted
            .iter()
            .filter_map(|raw| Scope::parse(raw).ok())
            .filter(|scope| self.config.allowed_scopes.contains(*scope))
            .collect();
        Ok(VerifiedPrincipal {
            subject_hash: self.subject_key.hex(&subject),
            scopes,
            token_id_hmac: claims.jti.map(|jti| self.token_id_key.hex(&jti)),
            expires_at,
        })
    }
}

/// HMAC-SHA256 of `message` under `key`, lower-case hex.
///
/// # Errors
/// [`EmptyKeyError`] for an empty key (there is no fallback key).
pub fn hmac_hex(key: &[u8], message: &str) -> Result<String, EmptyKeyError> {
    HmacKey::new(key, "HMAC key").map(|key| key.hex(message))
}

fn map_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => TokenError::AlgorithmNotAllowed,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => TokenError::MissingClaim,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_fixed_text() {
        assert_eq!(TokenError::Expired.reason(), "expired");
        assert_eq!(
            TokenError::KeysUnavailable.code().as_str(),
            "AUTH_JWKS_UNAVAILABLE"
        );
        assert_eq!(
            TokenError::BadSignature.code().as_str(),
            "AUTH_TOKEN_INVALID"
        );
    }

    #[test]
    fn hmac_is_keyed() {
        assert_ne!(hmac_hex(b"one", "jti-1"), hmac_hex(b"two", "jti-1"));
        assert_eq!(hmac_hex(b"one", "jti-1").map(|hex| hex.len()), Ok(64));
    }

    #[test]
    fn an_empty_key_is_refused_not_replaced() {
        assert_eq!(hmac_hex(b"", "jti-1"), Err(EmptyKeyError("HMAC key")));
        assert!(HmacKey::new(b"", "token-id secret").is_err());
    }
}
