//! Standard Webhooks (and Svix) signatures: `docs/spec/inbound-sources.md` §1.
//!
//! The signed content is `webhook-id` + `.` + `webhook-timestamp` (the string exactly as sent) +
//! `.` + the raw body bytes; `v1` is base64(HMAC-SHA256(key, content)). A source holds up to
//! [`MAX_ACTIVE_SECRETS`] secrets so a sender can rotate without downtime, and the verifier
//! reports which one matched so the journal can record the `key_id`.
//!
//! Nothing here reads the wall clock: callers pass `now` from the injected clock.
//!
//! One concept, signing and verifying Standard Webhooks messages (about 540 lines); the rest
//! of the file is its unit tests, which include the specification's test vectors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use chrono::{DateTime, Utc};
use secrecy::zeroize::Zeroizing;

use super::signing::{Algorithm, HmacKey, KeyRing, WindowError, window};

/// Prefix of the textual form of a symmetric Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Shortest key accepted. The spec generates 24–64 random bytes; below 128 bits is a
/// configuration mistake rather than a real secret.
pub const MIN_SECRET_BYTES: usize = 16;
/// Secrets a source may have active at once: the current one and the one being rotated in.
pub use super::signing::MAX_ACTIVE_SECRETS;
/// Timestamp tolerance used by every reference library, in both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// Longest message id accepted; it becomes part of a dedupe key stored in the journal.
pub const MAX_MESSAGE_ID_LEN: usize = 256;

/// Header names of the standard spelling.
pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// Header names of the Svix spelling (same semantics).
pub const SVIX_ID: &str = "svix-id";
pub const SVIX_TIMESTAMP: &str = "svix-timestamp";
pub const SVIX_SIGNATURE: &str = "svix-signature";

/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

// ---------------------------------------------------------------------------------------------
// Secrets

/// One symmetric signing key. Holds only the keyed HMAC state (never the text it was parsed
/// from), and its `Debug` output is redacted so it can sit inside logged config structs.
#[derive(Clone)]
pub struct WebhookSecret {
    key: HmacKey,
}

/// Why a secret could not be parsed. Messages never contain any part of the secret (not even
/// the offending base64 symbol, which `base64::DecodeError` would print).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("webhook secret is empty")]
    Empty,
    #[error("webhook secret must start with \"{SECRET_PREFIX}\"")]
    MissingPrefix,
    #[error("webhook secret is not valid standard base64 after the \"{SECRET_PREFIX}\" prefix")]
    InvalidBase64,
    #[error("webhook secret is too short: {len} bytes, at least {MIN_SECRET_BYTES} required")]
    TooShort { len: usize },
    #[error("webhook secret cannot be used as an HMAC-SHA256 key")]
    Unusable,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`. Surrounding whitespace is ignored (secrets read from files
    /// usually end in a newline); padding may be omitted, as the Python library allows.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SecretError::Empty);
        }
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        if encoded.is_empty() {
            return Err(SecretError::Empty);
        }
        // Zeroizing: the decoded key must not linger in freed memory.
        let key = Zeroizing::new(
            STANDARD_PAD_INDIFFERENT
                .decode(encoded)
                .map_err(|_| SecretError::InvalidBase64)?,
        );
        Self::from_key_bytes(&key)
    }

    fn from_key_bytes(key: &[u8]) -> Result<Self, SecretError> {
        if key.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { len: key.len() });
        }
        // The shared keyring's key type (its own minimum is lower than ours).
        let key = HmacKey::new(Algorithm::Sha256, key).map_err(|_| SecretError::Unusable)?;
        Ok(Self { key })
    }

    /// HMAC-SHA256 over `id.timestamp.body`.
    fn tag(&self, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        self.key.sign(&signed_parts(id, timestamp, body))
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

// ---------------------------------------------------------------------------------------------
// Message id

/// A `webhook-id`: the sender's delivery id, stable across retries, hence our dedupe key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageIdError {
    #[error("message id is empty")]
    Empty,
    #[error("message id is longer than {MAX_MESSAGE_ID_LEN} bytes")]
    TooLong,
    // '.' separates the fields of the signed content, so an id containing one is ambiguous.
    #[error("message id contains '.'")]
    ContainsDot,
    #[error("message id contains a control character")]
    ControlCharacter,
}

impl MessageId {
    pub fn parse(text: &str) -> Result<Self, MessageIdError> {
        if text.is_empty() {
            return Err(MessageIdError::Empty);
        }
        if text.len() > MAX_MESSAGE_ID_LEN {
            return Err(MessageIdError::TooLong);
        }
        if text.contains('.') {
            return Err(MessageIdError::ContainsDot);
        }
        if text.chars().any(char::is_control) {
            return Err(MessageIdError::ControlCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MessageId {
    type Err = MessageIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Headers

/// Which spelling of the headers a delivery used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderFamily {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Webhook,
    /// `svix-id`, `svix-timestamp`, `svix-signature`.
    Svix,
}

impl HeaderFamily {
    pub fn id_header(self) -> &'static str {
        match self {
            Self::Webhook => WEBHOOK_ID,
            Self::Svix => SVIX_ID,
        }
    }

    pub fn timestamp_header(self) -> &'static str {
        match self {
            Self::Webhook => WEBHOOK_TIMESTAMP,
            Self::Svix => SVIX_TIMESTAMP,
        }
    }

    pub fn signature_header(self) -> &'static str {
        match self {
            Self::Webhook => WEBHOOK_SIGNATURE,
            Self::Svix => SVIX_SIGNATURE,
        }
    }
}

/// The three signature headers of one delivery, as sent (not yet checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    pub family: HeaderFamily,
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

impl<'a> WebhookHeaders<'a> {
    /// Headers in the standard (`webhook-*`) spelling.
    pub fn new(id: &'a str, timestamp: &'a str, signature: &'a str) -> Self {
        Self {
            family: HeaderFamily::Webhook,
            id,
            timestamp,
            signature,
        }
    }

    /// Reads the headers through `lookup`, which is given lower-case header names and returns
    /// the raw value bytes (e.g. `|n| map.get(n).map(HeaderValue::as_bytes)`), keeping this
    /// module free of any HTTP library.
    ///
    /// The family is chosen by which id header is present (`webhook-id` first), and all three
    /// headers must then come from that family: mixing spellings is not a real sender.
    pub fn from_lookup<F>(lookup: F) -> Result<Self, VerifyError>
    where
        F: Fn(&str) -> Option<&'a [u8]>,
    {
        let family = if lookup(WEBHOOK_ID).is_some() {
            HeaderFamily::Webhook
        } else if lookup(SVIX_ID).is_some() {
            HeaderFamily::Svix
        } else {
            return Err(VerifyError::MissingHeader { header: WEBHOOK_ID });
        };
        let get = |header: &'static str| -> Result<&'a str, VerifyError> {
            let raw = lookup(header).ok_or(VerifyError::MissingHeader { header })?;
            std::str::from_utf8(raw).map_err(|_| VerifyError::HeaderNotText { header })
        };
        Ok(Self {
            family,
            id: get(family.id_header())?,
            timestamp: get(family.timestamp_header())?,
            signature: get(family.signature_header())?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Verification

/// A delivery whose signature matched and whose timestamp is within tolerance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The sender's delivery id (dedupe key within the source).
    pub message_id: MessageId,
    /// When the sender made this delivery attempt (changes on each retry).
    pub timestamp: DateTime<Utc>,
    /// Index into the verifier's secret list of the secret that matched (the journal's `key_id`).
    pub key_index: usize,
    pub header_family: HeaderFamily,
}

/// Why a `webhook-signature` header could not be parsed. Positions are 1-based entries of the
/// space-separated list; signature values are never included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFormatError {
    #[error("signature header is empty")]
    Empty,
    #[error("signature entry {position} is not of the form \"<version>,<signature>\"")]
    MissingVersion { position: usize },
    #[error("signature entry {position} has an empty signature")]
    EmptySignature { position: usize },
    #[error("v1 signature entry {position} is not valid standard base64")]
    InvalidBase64 { position: usize },
    #[error("v1 signature entry {position} is {len} bytes long, expected {TAG_LEN}")]
    WrongLength { position: usize, len: usize },
}

/// Why a delivery was rejected. All variants are authentication failures (HTTP 401). Messages
/// are safe for operator logs: they name headers and numbers, never secrets, signatures or the
/// body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {header}")]
    MissingHeader { header: &'static str },
    #[error("header {header} is not valid text")]
    HeaderNotText { header: &'static str },
    #[error("invalid webhook id: {0}")]
    InvalidMessageId(#[from] MessageIdError),
    #[error("webhook timestamp is not an integer number of seconds")]
    InvalidTimestamp,
    #[error("malformed signature header: {0}")]
    MalformedSignature(#[from] SignatureFormatError),
    #[error("signature header has no v1 signature (only unsupported versions)")]
    NoSupportedSignature,
    #[error("no signature matches any active secret")]
    NoMatchingSignature,
    #[error("webhook timestamp too old: {age_secs} s before now, tolerance {tolerance_secs} s")]
    TimestampTooOld { age_secs: i64, tolerance_secs: i64 },
    #[error(
        "webhook timestamp too far in the future: {ahead_secs} s after now, tolerance {tolerance_secs} s"
    )]
    TimestampInFuture {
        ahead_secs: i64,
        tolerance_secs: i64,
    },
}

impl VerifyError {
    /// Stable machine-readable name, for the journal's signature result and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader { .. } => "missing_header",
            Self::HeaderNotText { .. } => "header_not_text",
            Self::InvalidMessageId(_) => "invalid_message_id",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::MalformedSignature(_) => "malformed_signature",
            Self::NoSupportedSignature => "no_supported_signature",
            Self::NoMatchingSignature => "signature_mismatch",
            Self::TimestampTooOld { .. } => "timestamp_too_old",
            Self::TimestampInFuture { .. } => "timestamp_in_future",
        }
    }
}

/// A source's secret list is empty or too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifierConfigError {
    #[error("a Standard Webhooks source needs at least one secret")]
    NoSecrets,
    #[error("at most {MAX_ACTIVE_SECRETS} secrets may be active at once, got {count}")]
    TooManySecrets { count: usize },
}

/// The signed content, `id.timestamp.body`, as the parts the keyring MACs in order.
fn signed_parts<'a>(id: &'a str, timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 5] {
    [id.as_bytes(), b".", timestamp.as_bytes(), b".", body]
}

/// Verifies deliveries for one source, through the crate's one HMAC keyring.
#[derive(Clone)]
pub struct Verifier {
    ring: KeyRing,
    tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.ring.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// `secrets` in configuration order; [`Verified::key_index`] refers to this order.
    pub fn new(secrets: Vec<WebhookSecret>) -> Result<Self, VerifierConfigError> {
        let count = secrets.len();
        let keys = secrets.into_iter().map(|s| s.key).collect();
        let ring = KeyRing::from_keys(Algorithm::Sha256, keys).map_err(|_| match count {
            0 => VerifierConfigError::NoSecrets,
            count => VerifierConfigError::TooManySecrets { count },
        })?;
        Ok(Self {
            ring,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Replaces the ±tolerance applied to `webhook-timestamp`. Only whole seconds count, as the
    /// timestamp itself is in whole seconds.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Checks a delivery: header syntax, then the signature over the raw `body`, then the
    /// timestamp against `now`.
    ///
    /// The signature is checked before the timestamp so that a stale-timestamp error always
    /// describes an authentic delivery (a replay or clock skew), never forged junk.
    pub fn verify(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Verified, VerifyError> {
        let message_id = MessageId::parse(headers.id)?;
        let timestamp = parse_timestamp(headers.timestamp)?;
        let (candidates, malformed) = parse_v1_signatures(headers.signature)?;
        if candidates.is_empty() {
            // Nothing usable: say what was wrong with the entries, if anything was.
            return Err(malformed.map_or(VerifyError::NoSupportedSignature, VerifyError::from));
        }

        // Constant time per comparison (the keyring's); which entry or key matched is not
        // secret.
        let key_index = self
            .ring
            .find(
                &signed_parts(headers.id, headers.timestamp, body),
                &candidates,
            )
            .ok_or(VerifyError::NoMatchingSignature)?;

        self.check_timestamp(timestamp, now)?;
        let timestamp =
            DateTime::from_timestamp(timestamp, 0).ok_or(VerifyError::InvalidTimestamp)?;
        Ok(Verified {
            message_id,
            timestamp,
            key_index,
            header_family: headers.family,
        })
    }

    fn check_timestamp(&self, timestamp: i64, now: DateTime<Utc>) -> Result<(), VerifyError> {
        window(timestamp, now, self.tolerance).map_err(|e| match e {
            WindowError::TooOld {
                age_secs,
                tolerance_secs,
            } => VerifyError::TimestampTooOld {
                age_secs,
                tolerance_secs,
            },
            WindowError::InFuture {
                ahead_secs,
                tolerance_secs,
            } => VerifyError::TimestampInFuture {
                ahead_secs,
                tolerance_secs,
            },
        })
    }
}

/// Decimal digits only: the reference libraries' `i64` parse would also take a sign, which no
/// sender emits and which would only widen what we accept.
fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    text.parse().map_err(|_| VerifyError::InvalidTimestamp)
}

/// Parses the space-separated `<version>,<signature>` list and returns the decoded `v1` tags,
/// with the first malformed entry's fault. Each entry is split on its first comma; unknown
/// versions (e.g. `v1a`) are skipped unread. A malformed entry is skipped too, as the spec's
/// "accept if any supported signature matches" asks: it cannot match, and it must not veto
/// a valid entry beside it (a sender mid-migration, a proxy appending its own).
type Parsed = (Vec<[u8; TAG_LEN]>, Option<SignatureFormatError>);

fn parse_v1_signatures(header: &str) -> Result<Parsed, SignatureFormatError> {
    let mut tags = Vec::new();
    let mut malformed = None;
    let mut entries = 0;
    // Empty items (doubled or surrounding spaces) are tolerated; they carry nothing.
    for entry in header.split(' ').filter(|entry| !entry.is_empty()) {
        entries += 1;
        match parse_entry(entry, entries) {
            Ok(Some(tag)) => tags.push(tag),
            Ok(None) => {}
            Err(fault) => {
                malformed.get_or_insert(fault);
            }
        }
    }
    if entries == 0 {
        return Err(SignatureFormatError::Empty);
    }
    Ok((tags, malformed))
}

/// One `<version>,<signature>` entry: its `v1` tag, `None` for another version.
fn parse_entry(
    entry: &str,
    position: usize,
) -> Result<Option<[u8; TAG_LEN]>, SignatureFormatError> {
    let (version, signature) = entry
        .split_once(',')
        .filter(|(version, _)| !version.is_empty())
        .ok_or(SignatureFormatError::MissingVersion { position })?;
    if signature.is_empty() {
        return Err(SignatureFormatError::EmptySignature { position });
    }
    if version != "v1" {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(signature)
        .map_err(|_| SignatureFormatError::InvalidBase64 { position })?;
    let tag = <[u8; TAG_LEN]>::try_from(decoded.as_slice()).map_err(|_| {
        SignatureFormatError::WrongLength {
            position,
            len: decoded.len(),
        }
    })?;
    Ok(Some(tag))
}

/// Signs a message as a Standard Webhooks sender would: returns `v1,<base64>`, the value for
/// `webhook-signature` (join several with a space to sign with more than one secret).
pub fn sign(secret: &WebhookSecret, id: &MessageId, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.tag(id.as_str(), &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    // §1.7 test vector (official Rust library unit test).
    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TS: &str = "1649367553";
    const VECTOR_TS_SECS: i64 = 1_649_367_553;
    const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    // A second, unrelated secret (24 bytes) for rotation tests.
    const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn secret(text: &str) -> WebhookSecret {
        WebhookSecret::parse(text).expect("test secret parses")
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("valid test time")
    }

    fn verifier(secrets: &[&str]) -> Verifier {
        Verifier::new(secrets.iter().map(|s| secret(s)).collect()).expect("valid verifier")
    }

    fn vector_headers(signature: &str) -> WebhookHeaders<'_> {
        WebhookHeaders::new(VECTOR_ID, VECTOR_TS, signature)
    }

    /// Signs `body` at `ts` with the vector's id and secret, and verifies it at `now`.
    fn sign_and_verify(ts: i64, now: i64) -> Result<Verified, VerifyError> {
        let id = MessageId::parse(VECTOR_ID).expect("id");
        let signature = sign(&secret(VECTOR_SECRET), &id, ts, VECTOR_BODY);
        let ts = ts.to_string();
        let headers = WebhookHeaders::new(VECTOR_ID, &ts, &signature);
        verifier(&[VECTOR_SECRET]).verify(&headers, VECTOR_BODY, at(now))
    }

    #[test]
    fn official_test_vector_verifies() {
        let verified = verifier(&[VECTOR_SECRET])
            .verify(&vector_headers(VECTOR_SIG), VECTOR_BODY, at(VECTOR_TS_SECS))
            .expect("vector verifies");
        assert_eq!(verified.message_id.as_str(), VECTOR_ID);
        assert_eq!(verified.timestamp, at(VECTOR_TS_SECS));
        assert_eq!(verified.key_index, 0);
        assert_eq!(verified.header_family, HeaderFamily::Webhook);
    }

    #[test]
    fn sign_reproduces_the_official_vector() {
        let id = MessageId::parse(VECTOR_ID).expect("id");
        assert_eq!(
            sign(&secret(VECTOR_SECRET), &id, VECTOR_TS_SECS, VECTOR_BODY),
            VECTOR_SIG
        );
    }

    #[test]
    fn secret_without_padding_is_accepted() {
        // 24 bytes encode without padding; use a 16-byte key whose encoding needs "==".
        let padded = format!("whsec_{}", STANDARD.encode([7u8; 16]));
        assert!(padded.ends_with("=="));
        let unpadded = padded.trim_end_matches('=');
        let id = MessageId::parse("msg_1").expect("id");
        assert_eq!(
            sign(&secret(&padded), &id, 1, b"x"),
            sign(&secret(unpadded), &id, 1, b"x")
        );
    }

    #[test]
    fn secret_parse_errors() {
        assert_eq!(WebhookSecret::parse("").err(), Some(SecretError::Empty));
        assert_eq!(WebhookSecret::parse("  \n").err(), Some(SecretError::Empty));
        assert_eq!(
            WebhookSecret::parse("whsec_").err(),
            Some(SecretError::Empty)
        );
        assert_eq!(
            WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").err(),
            Some(SecretError::MissingPrefix)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not*base64!").err(),
            Some(SecretError::InvalidBase64)
        );
        // URL-safe alphabet is not the standard one.
        assert_eq!(
            WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV-b5sSYspob7oD").err(),
            Some(SecretError::InvalidBase64)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ=").err(),
            Some(SecretError::TooShort { len: 5 })
        );
        // A trailing newline from a secret file is fine.
        assert!(WebhookSecret::parse(&format!("{VECTOR_SECRET}\n")).is_ok());
    }

    #[test]
    fn secret_errors_and_debug_never_show_the_secret() {
        let bad = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7o*";
        let err = WebhookSecret::parse(bad).expect_err("invalid");
        let message = err.to_string();
        assert!(!message.contains("C2FVsBQ"), "{message}");
        assert!(!message.contains('*'), "{message}");
        let debug = format!("{:?}", secret(VECTOR_SECRET));
        assert_eq!(debug, "WebhookSecret(<redacted>)");
        let debug = format!("{:?}", verifier(&[VECTOR_SECRET]));
        assert!(!debug.contains("C2FVsBQ"), "{debug}");
    }

    #[test]
    fn either_rotation_secret_passes_and_reports_its_index() {
        let id = MessageId::parse("msg_rotate").expect("id");
        let body = br#"{"type":"person.hired"}"#;
        let new_sig = sign(&secret(OTHER_SECRET), &id, 1000, body);
        let old_sig = sign(&secret(VECTOR_SECRET), &id, 1000, body);
        let v = verifier(&[VECTOR_SECRET, OTHER_SECRET]);
        for (signature, index) in [(&old_sig, 0), (&new_sig, 1)] {
            let headers = WebhookHeaders::new("msg_rotate", "1000", signature);
            let verified = v.verify(&headers, body, at(1000)).expect("verifies");
            assert_eq!(verified.key_index, index);
        }
    }

    #[test]
    fn multi_signature_header_accepts_any_matching_entry() {
        let wrong = sign(
            &secret(OTHER_SECRET),
            &MessageId::parse(VECTOR_ID).expect("id"),
            VECTOR_TS_SECS,
            VECTOR_BODY,
        );
        // Only the second v1 entry is valid; a v1a entry is skipped without being decoded.
        let header = format!(
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== {wrong} {VECTOR_SIG}"
        );
        let verified = verifier(&[VECTOR_SECRET])
            .verify(&vector_headers(&header), VECTOR_BODY, at(VECTOR_TS_SECS))
            .expect("second entry matches");
        assert_eq!(verified.key_index, 0);
        // Rotation as a sender does it: both signatures, receiver holds only the new key.
        let verified = verifier(&[OTHER_SECRET])
            .verify(&vector_headers(&header), VECTOR_BODY, at(VECTOR_TS_SECS))
            .expect("first entry matches");
        assert_eq!(verified.key_index, 0);
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let result = verifier(&[OTHER_SECRET]).verify(
            &vector_headers(VECTOR_SIG),
            VECTOR_BODY,
            at(VECTOR_TS_SECS),
        );
        assert_eq!(result, Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn any_changed_byte_is_rejected() {
        let v = verifier(&[VECTOR_SECRET]);
        let mut body = VECTOR_BODY.to_vec();
        body[10] ^= 0x01;
        assert_eq!(
            v.verify(&vector_headers(VECTOR_SIG), &body, at(VECTOR_TS_SECS)),
            Err(VerifyError::NoMatchingSignature)
        );
        // A stray trailing newline breaks it too: we sign raw bytes, never re-serialized JSON.
        let mut body = VECTOR_BODY.to_vec();
        body.push(b'\n');
        assert_eq!(
            v.verify(&vector_headers(VECTOR_SIG), &body, at(VECTOR_TS_SECS)),
            Err(VerifyError::NoMatchingSignature)
        );
        // The id and timestamp are covered as well.
        let headers = WebhookHeaders::new("msg_27UH4WbU6Z5A5EzD8u03UvzRbpK", VECTOR_TS, VECTOR_SIG);
        assert_eq!(
            v.verify(&headers, VECTOR_BODY, at(VECTOR_TS_SECS)),
            Err(VerifyError::NoMatchingSignature)
        );
        let headers = WebhookHeaders::new(VECTOR_ID, "1649367554", VECTOR_SIG);
        assert_eq!(
            v.verify(&headers, VECTOR_BODY, at(VECTOR_TS_SECS)),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn malformed_signature_entries() {
        let v = verifier(&[VECTOR_SECRET]);
        let check =
            |header: &str| v.verify(&vector_headers(header), VECTOR_BODY, at(VECTOR_TS_SECS));
        use SignatureFormatError as F;
        // Truncated: padding dropped (not base64), or whole quads dropped (too short).
        assert_eq!(
            check("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw"),
            Err(F::InvalidBase64 { position: 1 }.into())
        );
        assert_eq!(
            check("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3"),
            Err(F::WrongLength {
                position: 1,
                len: 30
            }
            .into())
        );
        assert_eq!(
            check("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6h*enDe+bTa3Kkw="),
            Err(F::InvalidBase64 { position: 1 }.into())
        );
        assert_eq!(check(""), Err(F::Empty.into()));
        assert_eq!(check("   "), Err(F::Empty.into()));
        assert_eq!(
            check("tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
            Err(F::MissingVersion { position: 1 }.into())
        );
        // A malformed entry beside a valid one is skipped, in any position.
        assert!(check(&format!("{VECTOR_SIG} ,abc")).is_ok());
        assert!(check(&format!("garbage {VECTOR_SIG}")).is_ok());
        assert!(check(&format!("v1,!!x {VECTOR_SIG} v1,AAAA")).is_ok());
        // Beside a wrong one, it is a mismatch; alone, its fault is reported.
        assert_eq!(
            check("v1,AAAA v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            check("garbage v1,!!"),
            Err(F::MissingVersion { position: 1 }.into())
        );
        assert_eq!(check("v1,"), Err(F::EmptySignature { position: 1 }.into()));
        // Only versions we do not support: nothing to check.
        assert_eq!(
            check("v1a,abcd v2,efgh"),
            Err(VerifyError::NoSupportedSignature)
        );
        // Split on the first comma only: the rest is the signature, which is then not base64.
        assert_eq!(
            check("v1,abc,def"),
            Err(F::InvalidBase64 { position: 1 }.into())
        );
        // Extra spaces are harmless.
        assert!(check(&format!("  {VECTOR_SIG}  ")).is_ok());
    }

    #[test]
    fn timestamp_tolerance_boundaries() {
        let ts = VECTOR_TS_SECS;
        assert!(sign_and_verify(ts, ts + 300).is_ok());
        assert_eq!(
            sign_and_verify(ts, ts + 301),
            Err(VerifyError::TimestampTooOld {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert!(sign_and_verify(ts, ts - 300).is_ok());
        assert_eq!(
            sign_and_verify(ts, ts - 301),
            Err(VerifyError::TimestampInFuture {
                ahead_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn sub_second_now_counts_whole_seconds() {
        let v = verifier(&[VECTOR_SECRET]);
        let now = at(VECTOR_TS_SECS + 300) + chrono::Duration::milliseconds(999);
        assert!(
            v.verify(&vector_headers(VECTOR_SIG), VECTOR_BODY, now)
                .is_ok()
        );
    }

    #[test]
    fn tolerance_is_configurable() {
        let v = verifier(&[VECTOR_SECRET]).with_tolerance(Duration::from_secs(60));
        assert_eq!(v.tolerance(), Duration::from_secs(60));
        let headers = vector_headers(VECTOR_SIG);
        assert!(
            v.verify(&headers, VECTOR_BODY, at(VECTOR_TS_SECS + 60))
                .is_ok()
        );
        assert!(matches!(
            v.verify(&headers, VECTOR_BODY, at(VECTOR_TS_SECS + 61)),
            Err(VerifyError::TimestampTooOld { .. })
        ));
        // Absurd timestamps neither overflow nor pass.
        let huge = Verifier::new(vec![secret(VECTOR_SECRET)])
            .expect("verifier")
            .with_tolerance(Duration::MAX);
        assert!(huge.check_timestamp(i64::MAX, at(0)).is_ok());
        assert!(matches!(
            v.check_timestamp(i64::MAX, at(0)),
            Err(VerifyError::TimestampInFuture { .. })
        ));
        assert!(matches!(
            v.check_timestamp(0, at(VECTOR_TS_SECS)),
            Err(VerifyError::TimestampTooOld { .. })
        ));
    }

    #[test]
    fn forged_signature_with_stale_timestamp_reports_the_signature() {
        let result = verifier(&[OTHER_SECRET]).verify(
            &vector_headers(VECTOR_SIG),
            VECTOR_BODY,
            at(VECTOR_TS_SECS + 10_000),
        );
        assert_eq!(result, Err(VerifyError::NoMatchingSignature));
    }

    #[test]
    fn invalid_timestamps() {
        let v = verifier(&[VECTOR_SECRET]);
        for ts in [
            "",
            "abc",
            "1649367553.5",
            "-1649367553",
            "+1649367553",
            " 1649367553",
            "99999999999999999999",
        ] {
            let headers = WebhookHeaders::new(VECTOR_ID, ts, VECTOR_SIG);
            assert_eq!(
                v.verify(&headers, VECTOR_BODY, at(VECTOR_TS_SECS)),
                Err(VerifyError::InvalidTimestamp),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn invalid_message_ids() {
        let v = verifier(&[VECTOR_SECRET]);
        let longest = "m".repeat(MAX_MESSAGE_ID_LEN);
        assert_eq!(
            MessageId::parse(&longest).map(|id| id.as_str().len()),
            Ok(MAX_MESSAGE_ID_LEN)
        );
        let long = "m".repeat(MAX_MESSAGE_ID_LEN + 1);
        for (id, expected) in [
            ("msg.1", MessageIdError::ContainsDot),
            ("", MessageIdError::Empty),
            ("msg\u{7}", MessageIdError::ControlCharacter),
            (long.as_str(), MessageIdError::TooLong),
        ] {
            let headers = WebhookHeaders::new(id, VECTOR_TS, VECTOR_SIG);
            assert_eq!(
                v.verify(&headers, VECTOR_BODY, at(VECTOR_TS_SECS)),
                Err(VerifyError::InvalidMessageId(expected))
            );
        }
    }

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_bytes())
        }
    }

    #[test]
    fn headers_from_lookup_standard_and_svix() {
        let standard = [
            (WEBHOOK_ID, VECTOR_ID),
            (WEBHOOK_TIMESTAMP, VECTOR_TS),
            (WEBHOOK_SIGNATURE, VECTOR_SIG),
        ];
        let headers = WebhookHeaders::from_lookup(lookup(&standard)).expect("headers");
        assert_eq!(headers, vector_headers(VECTOR_SIG));

        let svix = [
            (SVIX_ID, VECTOR_ID),
            (SVIX_TIMESTAMP, VECTOR_TS),
            (SVIX_SIGNATURE, VECTOR_SIG),
        ];
        let headers = WebhookHeaders::from_lookup(lookup(&svix)).expect("headers");
        assert_eq!(headers.family, HeaderFamily::Svix);
        let verified = verifier(&[VECTOR_SECRET])
            .verify(&headers, VECTOR_BODY, at(VECTOR_TS_SECS))
            .expect("svix spelling verifies");
        assert_eq!(verified.header_family, HeaderFamily::Svix);
    }

    #[test]
    fn each_missing_header_is_named() {
        let all = [
            (WEBHOOK_ID, VECTOR_ID),
            (WEBHOOK_TIMESTAMP, VECTOR_TS),
            (WEBHOOK_SIGNATURE, VECTOR_SIG),
        ];
        for skip in 0..all.len() {
            let pairs: Vec<_> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, pair)| *pair)
                .collect();
            assert_eq!(
                WebhookHeaders::from_lookup(lookup(&pairs)),
                Err(VerifyError::MissingHeader {
                    header: all[skip].0
                })
            );
        }
        // Svix family: the missing header is named in the svix spelling.
        let svix = [(SVIX_ID, VECTOR_ID), (SVIX_SIGNATURE, VECTOR_SIG)];
        assert_eq!(
            WebhookHeaders::from_lookup(lookup(&svix)),
            Err(VerifyError::MissingHeader {
                header: SVIX_TIMESTAMP
            })
        );
        // Spellings are not mixed: webhook-id selects the webhook-* family.
        let mixed = [
            (WEBHOOK_ID, VECTOR_ID),
            (SVIX_TIMESTAMP, VECTOR_TS),
            (SVIX_SIGNATURE, VECTOR_SIG),
        ];
        assert_eq!(
            WebhookHeaders::from_lookup(lookup(&mixed)),
            Err(VerifyError::MissingHeader {
                header: WEBHOOK_TIMESTAMP
            })
        );
    }

    #[test]
    fn non_utf8_header_is_reported() {
        let raw: &[u8] = b"\xff\xfe";
        let headers = WebhookHeaders::from_lookup(|name| match name {
            WEBHOOK_ID => Some(raw),
            WEBHOOK_TIMESTAMP => Some(VECTOR_TS.as_bytes()),
            WEBHOOK_SIGNATURE => Some(VECTOR_SIG.as_bytes()),
            _ => None,
        });
        assert_eq!(
            headers,
            Err(VerifyError::HeaderNotText { header: WEBHOOK_ID })
        );
    }

    #[test]
    fn verifier_secret_count_limits() {
        assert_eq!(
            Verifier::new(Vec::new()).err(),
            Some(VerifierConfigError::NoSecrets)
        );
        let three = vec![
            secret(VECTOR_SECRET),
            secret(OTHER_SECRET),
            secret(VECTOR_SECRET),
        ];
        assert_eq!(
            Verifier::new(three).err(),
            Some(VerifierConfigError::TooManySecrets { count: 3 })
        );
    }

    #[test]
    fn error_messages_never_contain_signatures() {
        let v = verifier(&[OTHER_SECRET]);
        let errors = [
            v.verify(&vector_headers(VECTOR_SIG), VECTOR_BODY, at(VECTOR_TS_SECS)),
            v.verify(
                &vector_headers("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3"),
                VECTOR_BODY,
                at(VECTOR_TS_SECS),
            ),
        ];
        for err in errors {
            let message = err.expect_err("rejected").to_string();
            assert!(!message.contains("tZ1I4"), "{message}");
        }
        assert_eq!(
            VerifyError::NoMatchingSignature.to_string(),
            "no signature matches any active secret"
        );
        assert_eq!(
            VerifyError::NoMatchingSignature.code(),
            "signature_mismatch"
        );
    }

    #[test]
    fn a_message_id_prints_as_sent() {
        let id = MessageId::parse(VECTOR_ID).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.to_string(), VECTOR_ID);
    }
}
