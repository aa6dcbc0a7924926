//! Duplicate object keys: refused, never read last-wins.
//!
//! `serde_json` keeps the last of two equal keys, so `{"type":"person.hired",...,
//! "type":"person.departed"}` was journaled as a departure while another reader (the
//! sender's own logs, a proxy, a SIEM) may see a hire. A body that says two things is
//! refused with 400 instead, for every source kind and SCIM.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first key that occurs twice in one object, with its JSON pointer. `None` for a body
/// without duplicates, or one that is not JSON at all (the parser refuses that itself).
pub fn json_duplicate_key(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Checked>(body) {
        Ok(_) => None,
        Err(e) => {
            let text = e.to_string();
            text.strip_prefix(MARKER)
                .map(|rest| rest.split(" at line ").next().unwrap_or(rest).to_owned())
        }
    }
}

const MARKER: &str = "duplicate key: ";

/// Walks any JSON value, failing on the first object with a repeated key.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        // Every body on the ingest path goes through here: keys are borrowed from the body
        // unless they hold escapes, and the few keys of a typical object are compared in a
        // list; a set takes over only for a large object.
        let mut seen: Vec<Key<'de>> = Vec::new();
        let mut set: Option<HashSet<Key<'de>>> = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let repeated = match &mut set {
                Some(set) => set.contains(&key),
                None => seen.contains(&key),
            };
            if repeated {
                let shown: String = key.0.chars().take(64).collect();
                return Err(de::Error::custom(format!("{MARKER}{shown:?}")));
            }
            match &mut set {
                Some(set) => {
                    set.insert(key);
                }
                None if seen.len() >= LIST_MAX => {
                    let mut all: HashSet<Key<'de>> = seen.drain(..).collect();
                    all.insert(key);
                    set = Some(all);
                }
                None => seen.push(key),
            }
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// Keys compared in a list up to this many per object.
const LIST_MAX: usize = 16;

/// An object key, decoded: borrowed from the body when it has no escapes.
#[derive(PartialEq, Eq, Hash)]
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::json_duplicate_key;

    #[test]
    fn duplicates_are_found_at_any_depth() {
        assert_eq!(
            json_duplicate_key(
                br#"{"type":"person.hired","person":{"id":"E1"},"type":"person.departed"}"#
            ),
            Some("\"type\"".to_owned())
        );
        assert_eq!(
            json_duplicate_key(br#"{"a":[{"x":1,"y":2,"x":3}]}"#),
            Some("\"x\"".to_owned())
        );
        // Escapes are compared decoded: "\u0074ype" is "type".
        assert_eq!(
            json_duplicate_key(br#"{"type":1,"\u0074ype":2}"#),
            Some("\"type\"".to_owned())
        );
        assert_eq!(json_duplicate_key(br#"{"a":{"x":1},"b":{"x":1}}"#), None);
        assert_eq!(json_duplicate_key(br#"[1,"two",null,{"k":true}]"#), None);
        assert_eq!(json_duplicate_key(b"not json"), None);
        // Past the list's size the set takes over, and still finds a repeat of an early key.
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let body = format!("{{{}}}", many.join(","));
        assert_eq!(json_duplicate_key(body.as_bytes()), None);
        for repeat in ["k3", "k20", "k39"] {
            let body = format!("{{{},\"{repeat}\":0}}", many.join(","));
            assert_eq!(
                json_duplicate_key(body.as_bytes()),
                Some(format!("\"{repeat}\"")),
                "{repeat}"
            );
        }
    }
}
