//! The person's identity newtypes: a source id that cannot be empty or oversized, and an
//! email address that is well-formed and compares case-insensitively. They parse rather
//! than validate, so later stages cannot hold a bad one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::event::{MAX_EMAIL_LEN, MAX_PERSON_ID_LEN};

// ---------------------------------------------------------------------------------------------
// PersonId

/// A person's immutable source id (HR employee id, IdP user id): the identity key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonId(String);

/// Why a person id is invalid. Messages have no subject so they read well after a field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PersonIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_PERSON_ID_LEN} bytes")]
    TooLong,
    // Ids are compared exactly; " E1" and "E1" silently becoming two people is worse than a 400.
    #[error("must not have leading or trailing whitespace")]
    SurroundingWhitespace,
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl PersonId {
    pub fn parse(text: impl Into<String>) -> Result<Self, PersonIdError> {
        let text = text.into();
        if text.is_empty() {
            return Err(PersonIdError::Empty);
        }
        if text.len() > MAX_PERSON_ID_LEN {
            return Err(PersonIdError::TooLong);
        }
        if text.trim() != text {
            return Err(PersonIdError::SurroundingWhitespace);
        }
        if text.chars().any(char::is_control) {
            return Err(PersonIdError::ControlCharacter);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonId {
    type Error = PersonIdError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

impl From<PersonId> for String {
    fn from(id: PersonId) -> Self {
        id.0
    }
}

impl FromStr for PersonId {
    type Err = PersonIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Email

/// An email address with a plausible shape. Equality and hashing use the lower-cased form
/// (providers and the Admin API treat addresses case-insensitively); the original spelling is
/// kept for display and for invites.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email {
    original: String,
    normalized: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_EMAIL_LEN} bytes")]
    TooLong,
    #[error(
        "is not an email address: must not contain whitespace, control characters or any of <>()[],;:\"\\"
    )]
    InvalidCharacter,
    #[error("is not an email address: needs exactly one '@'")]
    NotOneAt,
    #[error("is not an email address: empty or over-long part before '@'")]
    InvalidLocalPart,
    #[error("is not an email address: invalid domain")]
    InvalidDomain,
}

impl Email {
    pub fn parse(text: impl Into<String>) -> Result<Self, EmailError> {
        let original = text.into();
        if original.is_empty() {
            return Err(EmailError::Empty);
        }
        if original.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        // Quoted local parts and address literals are legal but never seen in HR data; a
        // display name ("Ada <ada@x>") pasted into the field is, and this catches it.
        if original
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
        {
            return Err(EmailError::InvalidCharacter);
        }
        let mut parts = original.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::NotOneAt);
        };
        if local.is_empty() || local.len() > 64 {
            return Err(EmailError::InvalidLocalPart);
        }
        if !is_valid_domain(domain) {
            return Err(EmailError::InvalidDomain);
        }
        let normalized = original.to_lowercase();
        Ok(Self {
            original,
            normalized,
        })
    }

    /// As the sender spelled it.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Lower-cased, for comparison and lookup.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// At least two dot-separated labels of letters, digits and inner hyphens (Unicode letters
/// allowed, for internationalized domains).
fn is_valid_domain(domain: &str) -> bool {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    domain.len() <= 253 && domain.contains('.') && domain.split('.').all(label_ok)
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}

impl Eq for Email {}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized.hash(state);
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.original).finish()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.original
    }
}

impl FromStr for Email {
    type Err = EmailError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}
