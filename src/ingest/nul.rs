//! The one character the journal cannot hold.
//!
//! PostgreSQL's `text` and `jsonb` refuse U+0000, so a delivery carrying it would fail its
//! commit on every retry and be answered 503 forever. It is refused up front instead, with a
//! 400 that says why, on both journal backends alike.

/// Whether a JSON document contains U+0000 in any string or key.
///
/// Valid JSON can carry U+0000 only as the escape `\u0000` (raw control bytes are not allowed
/// in strings, and backslashes occur only inside strings), so a scan of the escapes is exact;
/// for a body that is not valid JSON the answer does not matter, the parser refuses it.
pub fn json_contains_nul(body: &[u8]) -> bool {
    let mut i = 0;
    while let Some(offset) = body[i..].iter().position(|&b| b == b'\\') {
        let at = i + offset;
        match body.get(at + 1) {
            Some(b'u') => {
                if body.get(at + 2..at + 6) == Some(b"0000".as_slice()) {
                    return true;
                }
                i = at + 2;
            }
            // Any other escape is two bytes; `\\` must not make the next backslash look
            // escaped.
            Some(_) => i = at + 2,
            None => return false,
        }
        if i >= body.len() {
            return false;
        }
    }
    body.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::json_contains_nul;
    use serde_json::Value;

    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }

    #[test]
    fn finds_the_escape_anywhere_and_only_the_escape() {
        assert!(json_contains_nul(br#"{"a":"x\u0000y"}"#));
        assert!(json_contains_nul(br#"{"a\u0000":1}"#));
        assert!(json_contains_nul(br#"{"a":"\\\u0000"}"#));
        assert!(json_contains_nul(b"{\"a\":\"\0\"}"));
        // An escaped backslash followed by the letters u0000 is six ordinary characters.
        assert!(!json_contains_nul(br#"{"a":"\\u0000"}"#));
        assert!(json_contains_nul(br#"{"a":"\u0001\u00000"}"#));
        assert!(!json_contains_nul(br#"{"a":"\u0010","b":"\n\"\\"}"#));
        assert!(!json_contains_nul(br#"{"a":"\"#));
        assert!(!json_contains_nul(b""));
    }

    #[test]
    fn agrees_with_the_parser() {
        for body in [
            r#"{"a":"x\u0000y"}"#,
            r#"{"a":"\\u0000"}"#,
            r#"{"a":["\\\\\u0000"]}"#,
            r#"{"k\\":"\u00001"}"#,
            r#"{"a":"\u0100"}"#,
        ] {
            let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            assert_eq!(
                json_contains_nul(body.as_bytes()),
                has_nul(&value),
                "{body}"
            );
        }
    }
}
