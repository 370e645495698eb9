//! Turning a JSON value into a typed request with errors that name every field at fault, in
//! words a caller understands (no Rust type names such as `u32` or `struct RiskSignal`).
//!
//! serde stops at the first error. [`deserialize_all`] deserializes again after setting each
//! offending top-level member aside, so one answer lists every wrong-typed, unknown or missing
//! member instead of only the first.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A field that failed validation.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer-ish path of the field (`scopes[1]`, `name`).
    pub field: String,
    /// The rule it broke.
    pub message: String,
}

/// At most this many members are reported in one answer; the rest show up once these are fixed.
pub const MAX_REPORTED: usize = 20;

/// Deserializes the JSON object `value` into `T`. On failure, every top-level member with a wrong
/// type or shape and every unknown member is named (prefixed with `prefix`, e.g. `signals[3]`),
/// then the first required member that is missing. Anything but an object is refused as a whole
/// (serde would otherwise read an array as a struct's members by position).
pub fn deserialize_all<T: DeserializeOwned>(
    mut value: Value,
    prefix: &str,
) -> Result<T, Vec<FieldError>> {
    if !value.is_object() {
        return Err(vec![FieldError {
            field: if prefix.is_empty() { "body" } else { prefix }.to_owned(),
            message: "must be a JSON object".into(),
        }]);
    }
    let mut errors: Vec<FieldError> = Vec::new();
    let mut set_aside: BTreeSet<String> = BTreeSet::new();
    // Each round either succeeds, stops, or removes one member: bounded by the member count,
    // and by MAX_REPORTED so a body of many thousand bad members costs a few passes, not one
    // per member.
    let rounds = (value.as_object().map_or(0, serde_json::Map::len) + 1).min(MAX_REPORTED);
    for _ in 0..rounds {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) if errors.is_empty() => return Ok(v),
            Ok(_) => return Err(errors),
            Err(e) => e,
        };
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        // A member set aside and now reported missing: everything else deserialized.
        if let Some(missing) = between_backticks(&message, "missing field `")
            && set_aside.contains(missing)
        {
            return Err(errors);
        }
        // The path names the member at fault (an unknown member too); `.` is the body itself.
        let top = top_member(&path).map(str::to_owned);
        let field = match path.as_str() {
            "." if prefix.is_empty() => "body".to_owned(),
            "." => prefix.to_owned(),
            p => join(prefix, p),
        };
        errors.push(FieldError {
            field,
            message: humanize(&message),
        });
        let removed = match (top, value.as_object_mut()) {
            (Some(k), Some(obj)) => obj.remove(&k).map(|_| k),
            _ => None,
        };
        match removed {
            Some(k) => {
                set_aside.insert(k);
            }
            None => return Err(errors),
        }
    }
    Err(errors)
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// `scopes[1]` → `scopes`, `subject.user` → `subject`, `.` → none.
fn top_member(path: &str) -> Option<&str> {
    if path == "." {
        return None;
    }
    let end = path.find(['.', '[']).unwrap_or(path.len());
    Some(&path[..end]).filter(|s| !s.is_empty())
}

fn between_backticks<'a>(message: &'a str, after: &str) -> Option<&'a str> {
    let rest = &message[message.find(after)? + after.len()..];
    rest.find('`').map(|end| &rest[..end])
}

/// serde's message in a caller's words: JSON type names instead of Rust ones, no position, no
/// Rust type names.
pub fn humanize(message: &str) -> String {
    // serde_json appends the position ("at line 1 column 7"); the field is named already.
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(rest) = message.strip_prefix("data did not match any variant of untagged enum ") {
        return match rest.trim() {
            "ReasonInput" => {
                "must be text or an object of language tags to text, e.g. {\"en\": \"…\"}".into()
            }
            "TimestampInput" => {
                "must be RFC 3339 text (e.g. 2026-11-25T10:00:00Z) or UNIX seconds".into()
            }
            _ => "has an unsupported type or shape".into(),
        };
    }
    let mut out = message.to_owned();
    for (rust, json) in [
        ("expected u8", "expected a non-negative integer"),
        ("expected u16", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: object"),
        ("invalid type: unit value", "invalid type: null"),
        ("invalid type: floating point", "invalid type: number"),
        ("invalid type: integer", "invalid type: number"),
    ] {
        if let Some(at) = out.find(rust) {
            let end = at + rust.len();
            // Only whole words: `expected u32` but not `expected u320`.
            if out[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_ascii_alphanumeric())
            {
                out.replace_range(at..end, json);
            }
        }
    }
    for (marker, json) in [
        ("expected struct ", "expected an object"),
        ("expected enum ", "expected one of the documented values"),
        (
            "expected tuple struct ",
            "expected a value of the documented type",
        ),
    ] {
        if let Some(at) = out.find(marker) {
            let name_end = out[at + marker.len()..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(out.len(), |i| at + marker.len() + i);
            out.replace_range(at..name_end, json);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: Option<u32>,
        flag: Option<bool>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        x: f64,
    }

    /// The fields named, sorted (the order members are visited in depends on serde_json's
    /// `preserve_order`).
    fn fields(errors: &[FieldError]) -> Vec<&str> {
        let mut f: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        f.sort_unstable();
        f
    }

    #[test]
    fn a_body_of_many_bad_members_reports_a_bounded_number_in_bounded_passes() {
        let mut body = serde_json::Map::new();
        body.insert("name".into(), json!("ok"));
        for i in 0..5000 {
            body.insert(format!("bogus{i}"), json!(i));
        }
        let errs = deserialize_all::<Body>(Value::Object(body), "").expect_err("invalid");
        assert!(
            !errs.is_empty() && errs.len() <= MAX_REPORTED,
            "{}",
            errs.len()
        );
        assert!(
            errs.iter().all(|e| e.field.starts_with("bogus")),
            "{errs:?}"
        );
    }

    #[test]
    fn names_every_wrong_member() {
        let errs = deserialize_all::<Body>(json!({"name": 5, "count": "x", "flag": 1}), "")
            .expect_err("invalid");
        assert_eq!(fields(&errs), ["count", "flag", "name"], "{errs:?}");
        let count = errs.iter().find(|e| e.field == "count").expect("count");
        assert!(count.message.contains("non-negative integer"), "{errs:?}");
        assert!(!errs.iter().any(|e| e.message.contains("u32")), "{errs:?}");
    }

    #[test]
    fn unknown_and_missing_members_are_named_too() {
        let errs = deserialize_all::<Body>(json!({"bogus": 1, "count": -1}), "signals[2]")
            .expect_err("invalid");
        assert_eq!(
            fields(&errs),
            ["signals[2]", "signals[2].bogus", "signals[2].count"],
            "{errs:?}"
        );
        let whole = errs
            .iter()
            .find(|e| e.field == "signals[2]")
            .expect("missing");
        assert!(whole.message.contains("missing field `name`"), "{errs:?}");
    }

    #[test]
    fn nested_errors_keep_their_path_and_no_rust_names() {
        let errs =
            deserialize_all::<Body>(json!({"name": "a", "inner": []}), "").expect_err("invalid");
        assert_eq!(fields(&errs), ["inner"]);
        assert!(!errs[0].message.contains("Inner"), "{errs:?}");
        let errs = deserialize_all::<Body>(json!([1]), "").expect_err("invalid");
        assert_eq!(fields(&errs), ["body"]);
        assert_eq!(errs[0].message, "must be a JSON object");
    }

    #[test]
    fn valid_input_passes() {
        let b = deserialize_all::<Body>(json!({"name": "a", "count": 3}), "").expect("valid");
        assert_eq!(b.count, Some(3));
    }
}
