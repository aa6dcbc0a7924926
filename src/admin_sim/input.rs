//! Request input as the real API validates it: JSON bodies checked field by field (missing,
//! wrong type, unknown enum value, extra field) and query strings that accept both the
//! bracket (`roles[]=x`) and repeated (`roles=x`) array forms (§1.4).

use serde_json::{Map, Value};

use super::error::{SimError, SimResult};

/// A parsed JSON object body.
#[derive(Debug, Default)]
pub(super) struct Body(Map<String, Value>);

impl Body {
    /// Parses raw bytes; an empty body reads as `{}` (archive and an empty API-key update
    /// carry none).
    pub(super) fn parse(bytes: &[u8]) -> SimResult<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(SimError::invalid("Request body must be a JSON object.")),
            Err(err) => Err(SimError::invalid(format!(
                "Request body is not valid JSON: {err}"
            ))),
        }
    }

    /// Rejects fields the endpoint does not define, as the real API does.
    pub(super) fn only(&self, allowed: &[&str]) -> SimResult<()> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(extra) => Err(SimError::invalid(format!(
                "{extra}: Extra inputs are not permitted"
            ))),
            None => Ok(()),
        }
    }

    pub(super) fn required_str(&self, field: &str) -> SimResult<&str> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(SimError::invalid(format!("{field}: Field required"))),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(SimError::invalid(format!(
                "{field}: Input should be a valid string"
            ))),
        }
    }

    /// Absent or null → `None`.
    pub(super) fn optional_str(&self, field: &str) -> SimResult<Option<&str>> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(SimError::invalid(format!(
                "{field}: Input should be a valid string"
            ))),
        }
    }

    pub(super) fn required_enum<'a>(&'a self, field: &str, allowed: &[&str]) -> SimResult<&'a str> {
        let value = self.required_str(field)?;
        check_enum(field, value, allowed)?;
        Ok(value)
    }

    pub(super) fn optional_object(&self, field: &str) -> SimResult<Option<&Map<String, Value>>> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(SimError::invalid(format!(
                "{field}: Input should be a valid dictionary"
            ))),
        }
    }

    pub(super) fn optional_string_array(&self, field: &str) -> SimResult<Option<Vec<String>>> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(SimError::invalid(format!(
                        "{field}.{i}: Input should be a valid string"
                    ))),
                })
                .collect::<SimResult<Vec<_>>>()
                .map(Some),
            Some(_) => Err(SimError::invalid(format!(
                "{field}: Input should be a valid list"
            ))),
        }
    }
}

pub(super) fn check_enum(field: &str, value: &str, allowed: &[&str]) -> SimResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(SimError::invalid(format!(
            "{field}: Input should be {}; got '{value}'",
            allowed
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// Decoded query parameters in order.
#[derive(Debug, Default, Clone)]
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// Last value of a scalar parameter.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of an array parameter, in either `name[]=` or repeated `name=` form.
    pub(super) fn all(&self, name: &str) -> Vec<&str> {
        let bracket = format!("{name}[]");
        self.0
            .iter()
            .filter(|(k, _)| k == name || *k == bracket)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(super) fn bool(&self, name: &str) -> SimResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(other) => Err(SimError::invalid(format!(
                "{name}: Input should be a valid boolean, unable to interpret input '{other}'"
            ))),
        }
    }
}

/// `limit` / `after_id` / `before_id` (§3).
#[derive(Debug, Clone)]
pub(super) struct PageParams {
    pub limit: usize,
    pub after_id: Option<String>,
    pub before_id: Option<String>,
}

impl PageParams {
    pub(super) fn parse(query: &Query, reject_both: bool) -> SimResult<Self> {
        let limit = match query.get("limit") {
            None => 20,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=1000).contains(&n) => usize::try_from(n).unwrap_or(20),
                Ok(_) => {
                    return Err(SimError::invalid(
                        "limit: Input should be greater than or equal to 1 and less than or equal to 1000",
                    ));
                }
                Err(_) => {
                    return Err(SimError::invalid(format!(
                        "limit: Input should be a valid integer, unable to parse string as an integer: '{raw}'"
                    )));
                }
            },
        };
        let after_id = query
            .get("after_id")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let before_id = query
            .get("before_id")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if reject_both && after_id.is_some() && before_id.is_some() {
            return Err(SimError::invalid(
                "Only one of before_id and after_id may be provided.",
            ));
        }
        Ok(Self {
            limit,
            after_id,
            before_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_params_in_both_forms() {
        let q = Query::parse(Some("roles[]=user&roles=developer&beta=true"));
        assert_eq!(q.all("roles"), vec!["user", "developer"]);
    }

    #[test]
    fn limit_bounds() {
        let ok = PageParams::parse(&Query::parse(Some("limit=1000")), true);
        assert!(ok.is_ok());
        for bad in ["limit=0", "limit=1001", "limit=abc", "limit=1.5"] {
            assert!(
                PageParams::parse(&Query::parse(Some(bad)), true).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn body_rejects_non_objects_and_bad_json() {
        assert!(Body::parse(b"[1]").is_err());
        assert!(Body::parse(b"{\"a\":").is_err());
        assert!(Body::parse(b"").is_ok());
    }
}
