//! The HMAC machinery every vendor scheme reduces to (inbound-sources §6.3): read a header,
//! strip a prefix, decode hex or base64, MAC some ordered concatenation of literal text,
//! timestamp, id and the raw body with SHA-256 or SHA-512, compare in constant time against
//! each active secret, and check a timestamp window where the scheme has one.
//!
//! Keys are held as keyed HMAC state, never as text, and `Debug` output is redacted.
//!
//! This is the one keyring and the one timestamp-window check of the crate: Standard Webhooks
//! (`standard_webhooks.rs`) and every vendor and generic style verify through [`KeyRing`] and
//! [`window`], so constant-time comparison and the tolerance arithmetic live in one place.

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::error::AuthError;

/// Secrets a source may have active at once: the current one and the one being rotated in.
pub const MAX_ACTIVE_SECRETS: usize = 2;
/// Shortest shared secret accepted, in bytes. Vendors generate far longer ones; below this
/// is a configuration mistake.
pub const MIN_SECRET_BYTES: usize = 8;

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    #[serde(alias = "sha-256", alias = "SHA-256", alias = "SHA256")]
    #[serde(rename = "sha256")]
    Sha256,
    #[serde(alias = "sha-512", alias = "SHA-512", alias = "SHA512")]
    #[serde(rename = "sha512")]
    Sha512,
}

impl Algorithm {
    /// Length of a tag, in bytes.
    pub fn tag_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "HMAC-SHA256",
            Self::Sha512 => "HMAC-SHA512",
        }
    }
}

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Hexadecimal, either case.
    Hex,
    /// Standard base64; padding optional.
    Base64,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Self::Hex => "hex",
            Self::Base64 => "base64",
        }
    }

    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Self::Hex => hex::decode(text).ok(),
            Self::Base64 => STANDARD_PAD_INDIFFERENT.decode(text).ok(),
        }
    }

    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Hex => hex::encode(bytes),
            Self::Base64 => STANDARD.encode(bytes),
        }
    }
}

/// How a configured secret string becomes key bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEncoding {
    /// The secret's UTF-8 bytes as they are (BambooHR, HiBob, Gusto, GitHub, Stripe).
    #[default]
    Raw,
    /// Base64-decoded (a `whsec_` prefix is stripped first).
    Base64,
    /// Hex-decoded.
    Hex,
}

/// Why a secret cannot be used. Never contains any part of the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the secret is shorter than {MIN_SECRET_BYTES} bytes")]
    TooShort,
    #[error("the secret is not valid {0}")]
    NotDecodable(&'static str),
    #[error("a source needs 1 to {MAX_ACTIVE_SECRETS} active secrets, got {0}")]
    Count(usize),
}

#[derive(Clone)]
enum KeyState {
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// One HMAC key.
#[derive(Clone)]
pub struct HmacKey(KeyState);

impl HmacKey {
    pub fn new(algorithm: Algorithm, key: &[u8]) -> Result<Self, KeyError> {
        if key.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort);
        }
        // HMAC takes keys of any length; these cannot fail.
        let state = match algorithm {
            Algorithm::Sha256 => KeyState::Sha256(
                Hmac::<Sha256>::new_from_slice(key).map_err(|_| KeyError::TooShort)?,
            ),
            Algorithm::Sha512 => KeyState::Sha512(
                Hmac::<Sha512>::new_from_slice(key).map_err(|_| KeyError::TooShort)?,
            ),
        };
        Ok(Self(state))
    }

    /// The tag over the concatenation of `parts`.
    pub fn sign(&self, parts: &[&[u8]]) -> Vec<u8> {
        match &self.0 {
            KeyState::Sha256(mac) => {
                let mut mac = mac.clone();
                for p in parts {
                    mac.update(p);
                }
                mac.finalize().into_bytes().to_vec()
            }
            KeyState::Sha512(mac) => {
                let mut mac = mac.clone();
                for p in parts {
                    mac.update(p);
                }
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Whether `tag` is the tag over `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        match &self.0 {
            KeyState::Sha256(mac) => {
                let mut mac = mac.clone();
                for p in parts {
                    mac.update(p);
                }
                mac.verify_slice(tag).is_ok()
            }
            KeyState::Sha512(mac) => {
                let mut mac = mac.clone();
                for p in parts {
                    mac.update(p);
                }
                mac.verify_slice(tag).is_ok()
            }
        }
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// A source's active HMAC keys (current first), all for one algorithm.
#[derive(Clone)]
pub struct KeyRing {
    algorithm: Algorithm,
    keys: Vec<HmacKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("algorithm", &self.algorithm)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl KeyRing {
    /// A ring over keys already made (Standard Webhooks parses its own `whsec_` secrets).
    pub fn from_keys(algorithm: Algorithm, keys: Vec<HmacKey>) -> Result<Self, KeyError> {
        if keys.is_empty() || keys.len() > MAX_ACTIVE_SECRETS {
            return Err(KeyError::Count(keys.len()));
        }
        Ok(Self { algorithm, keys })
    }

    /// Keys from configured secrets. `Err` carries the index of the secret at fault.
    pub fn new(
        algorithm: Algorithm,
        secrets: &[SecretString],
        encoding: KeyEncoding,
    ) -> Result<Self, (usize, KeyError)> {
        if secrets.is_empty() || secrets.len() > MAX_ACTIVE_SECRETS {
            return Err((0, KeyError::Count(secrets.len())));
        }
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let bytes = key_bytes(s.expose_secret(), encoding).map_err(|e| (i, e))?;
                HmacKey::new(algorithm, &bytes).map_err(|e| (i, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { algorithm, keys })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The index of the first key for which any candidate tag matches the MAC over `parts`.
    /// Every comparison is constant time; which key or candidate matched is not secret.
    pub fn find<T: AsRef<[u8]>>(&self, parts: &[&[u8]], candidates: &[T]) -> Option<usize> {
        self.keys
            .iter()
            .position(|key| candidates.iter().any(|tag| key.verify(parts, tag.as_ref())))
    }

    /// Signs with the key at `index` (tests and the `sign` helpers).
    pub fn sign(&self, index: usize, parts: &[&[u8]]) -> Option<Vec<u8>> {
        self.keys.get(index).map(|k| k.sign(parts))
    }
}

fn key_bytes(secret: &str, encoding: KeyEncoding) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let secret = secret.trim();
    let bytes = match encoding {
        KeyEncoding::Raw => secret.as_bytes().to_vec(),
        KeyEncoding::Base64 => STANDARD_PAD_INDIFFERENT
            .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
            .map_err(|_| KeyError::NotDecodable("base64"))?,
        KeyEncoding::Hex => hex::decode(secret).map_err(|_| KeyError::NotDecodable("hex"))?,
    };
    Ok(Zeroizing::new(bytes))
}

/// Compares a presented static secret (Okta's header) with the configured ones in constant
/// time: both sides are hashed first, so neither length nor content leaks through timing.
pub fn matching_static_secret(presented: &str, secrets: &[SecretString]) -> Option<usize> {
    let presented = Sha256::digest(presented.as_bytes());
    secrets.iter().position(|s| {
        let expected = Sha256::digest(s.expose_secret().as_bytes());
        bool::from(presented.as_slice().ct_eq(expected.as_slice()))
    })
}

// ---------------------------------------------------------------------------------------------
// Headers

/// A header's value as text. `None` when absent; more than one value is refused (an
/// ambiguous signature header is never guessed at).
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::DuplicateHeader(name.to_owned()));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| AuthError::HeaderNotText(name.to_owned()))
}

/// A header that must be present.
pub fn required_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, AuthError> {
    header(headers, name)?.ok_or_else(|| AuthError::MissingHeader(name.to_owned()))
}

/// Decodes one signature: strips `prefix`, decodes, checks the length for `algorithm`.
pub fn decode_signature(
    header_name: &str,
    value: &str,
    prefix: Option<&str>,
    encoding: Encoding,
    algorithm: Algorithm,
) -> Result<Vec<u8>, AuthError> {
    let value = value.trim();
    let body = match prefix {
        Some(p) if !p.is_empty() => {
            value
                .strip_prefix(p)
                .ok_or_else(|| AuthError::WrongPrefix {
                    header: header_name.to_owned(),
                    prefix: p.to_owned(),
                })?
        }
        _ => value,
    };
    let tag = encoding
        .decode(body)
        .ok_or_else(|| AuthError::BadEncoding {
            header: header_name.to_owned(),
            encoding: encoding.name(),
        })?;
    if tag.len() != algorithm.tag_len() {
        return Err(AuthError::WrongLength {
            header: header_name.to_owned(),
            algorithm: algorithm.name(),
            len: tag.len(),
            expected: algorithm.tag_len(),
        });
    }
    Ok(tag)
}

/// Parses a Unix-seconds timestamp (digits only) and checks it against `now` ± `tolerance`.
/// Call it after the signature has matched, so a stale-timestamp error always describes an
/// authentic delivery.
pub fn parse_timestamp(header_name: &str, text: &str) -> Result<i64, AuthError> {
    let invalid = || AuthError::InvalidTimestamp {
        header: header_name.to_owned(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    text.parse().map_err(|_| invalid())
}

/// A timestamp outside the tolerance window, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowError {
    TooOld {
        age_secs: i64,
        tolerance_secs: i64,
    },
    InFuture {
        ahead_secs: i64,
        tolerance_secs: i64,
    },
}

/// The one timestamp-window check: `timestamp` (Unix seconds) within `now` ± `tolerance`,
/// whole seconds on both sides as the reference libraries do. Saturating, so absurd
/// timestamps neither overflow nor pass.
pub fn window(timestamp: i64, now: DateTime<Utc>, tolerance: Duration) -> Result<(), WindowError> {
    let tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let now = now.timestamp();
    let age_secs = now.saturating_sub(timestamp);
    if age_secs > tolerance_secs {
        return Err(WindowError::TooOld {
            age_secs,
            tolerance_secs,
        });
    }
    let ahead_secs = timestamp.saturating_sub(now);
    if ahead_secs > tolerance_secs {
        return Err(WindowError::InFuture {
            ahead_secs,
            tolerance_secs,
        });
    }
    Ok(())
}

/// [`window`] as a vendor/generic authentication error.
pub fn check_window(
    timestamp: i64,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), AuthError> {
    window(timestamp, now, tolerance).map_err(|e| match e {
        WindowError::TooOld {
            age_secs,
            tolerance_secs,
        } => AuthError::TimestampTooOld {
            age_secs,
            tolerance_secs,
        },
        WindowError::InFuture {
            ahead_secs,
            tolerance_secs,
        } => AuthError::TimestampInFuture {
            ahead_secs,
            tolerance_secs,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(alg: Algorithm, secrets: &[&str]) -> KeyRing {
        let secrets: Vec<SecretString> = secrets
            .iter()
            .map(|s| SecretString::from((*s).to_owned()))
            .collect();
        KeyRing::new(alg, &secrets, KeyEncoding::Raw).expect("ring")
    }

    #[test]
    fn github_documented_vector() {
        // inbound-sources §6.1 (GitHub's own example).
        let r = ring(Algorithm::Sha256, &["It's a Secret to Everybody"]);
        let tag = r.sign(0, &[b"Hello, World!"]).expect("key");
        assert_eq!(
            hex::encode(tag),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn bamboohr_vector_body_then_timestamp() {
        // inbound-sources §5.1 (Fusebit connector test vector).
        let r = ring(Algorithm::Sha256, &["123b929362d51613054f71e5e5d4bf2c"]);
        let body: &[u8] = br#"{"employees":[{"changedFields":["First name"],"fields":{"Employee #":{"value":"300"},"First name":{"value":"Tefi"},"Last name":{"value":"Adams"}},"id":"5"}]}"#;
        let tag = decode_signature(
            "x",
            "56491dd9c2b352bc5f4fc627159aae20ddff9c8cb19f239a6de6771dc5310bac",
            None,
            Encoding::Hex,
            Algorithm::Sha256,
        )
        .expect("decodes");
        assert_eq!(
            r.find(&[body, b"1658248023"], std::slice::from_ref(&tag)),
            Some(0)
        );
        // The other order (a common mistake in third-party guides) does not verify.
        assert_eq!(r.find(&[b"1658248023", b".", body], &[tag]), None);
    }

    #[test]
    fn second_key_reports_its_index() {
        let r = ring(Algorithm::Sha512, &["first-secret", "second-secret"]);
        let tag = ring(Algorithm::Sha512, &["second-secret"])
            .sign(0, &[b"body"])
            .expect("key");
        assert_eq!(r.find(&[b"body"], &[tag]), Some(1));
        assert_eq!(
            (r.len(), r.is_empty(), r.algorithm()),
            (2, false, Algorithm::Sha512)
        );
        assert_eq!(ring(Algorithm::Sha256, &["only-secret"]).len(), 1);
    }

    /// One value as text, or nothing; two values or bytes that are not text are refused,
    /// never guessed at.
    #[test]
    fn headers_are_read_once_and_as_text() {
        use axum::http::HeaderValue;
        let mut h = HeaderMap::new();
        h.insert("x-sig", HeaderValue::from_static("sha256=abc"));
        h.insert(
            "x-bin",
            HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes"),
        );
        h.append("x-two", HeaderValue::from_static("a"));
        h.append("x-two", HeaderValue::from_static("b"));
        assert_eq!(header(&h, "x-sig"), Ok(Some("sha256=abc")));
        assert_eq!(header(&h, "x-none"), Ok(None));
        assert_eq!(
            header(&h, "x-two"),
            Err(AuthError::DuplicateHeader("x-two".to_owned()))
        );
        assert_eq!(
            header(&h, "x-bin"),
            Err(AuthError::HeaderNotText("x-bin".to_owned()))
        );
        assert_eq!(required_header(&h, "x-sig"), Ok("sha256=abc"));
        assert_eq!(
            required_header(&h, "x-none"),
            Err(AuthError::MissingHeader("x-none".to_owned()))
        );
    }

    /// Keys never reach a log line: the ring shows its algorithm and how many keys it has.
    #[test]
    fn debug_output_hides_the_keys() {
        let r = ring(Algorithm::Sha256, &["first-secret", "second-secret"]);
        let shown = format!("{r:?}");
        assert_eq!(shown, "KeyRing { algorithm: Sha256, keys: 2 }");
        let key = HmacKey::new(Algorithm::Sha256, b"first-secret").expect("key");
        assert_eq!(format!("{key:?}"), "HmacKey(<redacted>)");
    }

    /// What the `sign` helpers write (HiBob's base64, Gusto's hex) is what `decode` reads.
    #[test]
    fn encodings_write_what_they_read() {
        assert_eq!(Encoding::Hex.encode(&[0xab, 0x01]), "ab01");
        assert_eq!(Encoding::Base64.encode(b"hi"), "aGk=");
        let tag: Vec<u8> = (0..32).collect();
        for encoding in [Encoding::Hex, Encoding::Base64] {
            assert_eq!(
                encoding.decode(&encoding.encode(&tag)),
                Some(tag.clone()),
                "{}",
                encoding.name()
            );
        }
    }

    #[test]
    fn signature_decoding_errors() {
        let good = "a".repeat(64);
        assert!(decode_signature("h", &good, None, Encoding::Hex, Algorithm::Sha256).is_ok());
        assert!(matches!(
            decode_signature("h", &good[..62], None, Encoding::Hex, Algorithm::Sha256),
            Err(AuthError::WrongLength {
                len: 31,
                algorithm: "HMAC-SHA256",
                ..
            })
        ));
        assert!(matches!(
            decode_signature("h", &good[..63], None, Encoding::Hex, Algorithm::Sha256),
            Err(AuthError::BadEncoding {
                encoding: "hex",
                ..
            })
        ));
        // The error names the encoding and algorithm the source is configured with.
        assert!(matches!(
            decode_signature("h", "not*base64", None, Encoding::Base64, Algorithm::Sha512),
            Err(AuthError::BadEncoding {
                encoding: "base64",
                ..
            })
        ));
        assert!(matches!(
            decode_signature("h", "AAAA", None, Encoding::Base64, Algorithm::Sha512),
            Err(AuthError::WrongLength {
                len: 3,
                algorithm: "HMAC-SHA512",
                ..
            })
        ));
        assert!(matches!(
            decode_signature(
                "h",
                &good,
                Some("sha256="),
                Encoding::Hex,
                Algorithm::Sha256
            ),
            Err(AuthError::WrongPrefix { .. })
        ));
        // A SHA-256 tag where SHA-512 is expected: the wrong algorithm shows as a length.
        assert!(matches!(
            decode_signature("h", &good, None, Encoding::Hex, Algorithm::Sha512),
            Err(AuthError::WrongLength { expected: 64, .. })
        ));
    }

    #[test]
    fn short_or_undecodable_secrets_are_refused() {
        let short = [SecretString::from("short".to_owned())];
        assert!(matches!(
            KeyRing::new(Algorithm::Sha256, &short, KeyEncoding::Raw),
            Err((0, KeyError::TooShort))
        ));
        let bad = [SecretString::from("not hex at all".to_owned())];
        assert!(matches!(
            KeyRing::new(Algorithm::Sha256, &bad, KeyEncoding::Hex),
            Err((0, KeyError::NotDecodable("hex")))
        ));
        assert!(matches!(
            KeyRing::new(Algorithm::Sha256, &[], KeyEncoding::Raw),
            Err((0, KeyError::Count(0)))
        ));
        let debug = format!("{:?}", ring(Algorithm::Sha256, &["a-secret-value"]));
        assert!(!debug.contains("a-secret-value"), "{debug}");
    }

    #[test]
    fn static_secret_comparison() {
        let secrets = [
            SecretString::from("Bearer current".to_owned()),
            SecretString::from("Bearer previous".to_owned()),
        ];
        assert_eq!(matching_static_secret("Bearer current", &secrets), Some(0));
        assert_eq!(matching_static_secret("Bearer previous", &secrets), Some(1));
        assert_eq!(matching_static_secret("Bearer curren", &secrets), None);
        assert_eq!(matching_static_secret("", &secrets), None);
    }

    #[test]
    fn timestamp_window() {
        let now = DateTime::from_timestamp(1_000_000, 0).expect("time");
        let tol = Duration::from_secs(300);
        assert!(check_window(1_000_000 - 300, now, tol).is_ok());
        assert!(matches!(
            check_window(1_000_000 - 301, now, tol),
            Err(AuthError::TimestampTooOld { .. })
        ));
        assert!(matches!(
            check_window(1_000_000 + 301, now, tol),
            Err(AuthError::TimestampInFuture { .. })
        ));
        assert!(parse_timestamp("t", "-5").is_err());
        assert!(parse_timestamp("t", "").is_err());
        assert!(parse_timestamp("t", "99999999999999999999").is_err());
    }
}
