//! Subject identifiers (RFC 9493) and the complex subject Okta reads (`user`, `device`).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::validation::FieldError;

/// One RFC 9493 subject identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectId {
    /// `{"format":"email","email":…}` (the email is kept as given; compared lower-cased).
    Email(String),
    /// `{"format":"iss_sub","iss":…,"sub":…}`.
    IssSub {
        /// Issuer.
        iss: String,
        /// Subject.
        sub: String,
    },
    /// `{"format":"opaque","id":…}`.
    Opaque(String),
    /// `{"format":"phone_number","phone_number":"+1…"}`.
    PhoneNumber(String),
    /// `{"format":"account","uri":"acct:…"}`.
    Account(String),
    /// `{"format":"uri","uri":…}`.
    Uri(String),
    /// `{"format":"did","url":"did:…"}`.
    Did(String),
}

const MAX_LEN: usize = 512;

fn member(obj: &Map<String, Value>, path: &str, name: &str) -> Result<String, FieldError> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_LEN => Ok(s.clone()),
        Some(Value::String(s)) if s.len() > MAX_LEN => Err(fe(
            &format!("{path}.{name}"),
            format!("must be at most {MAX_LEN} characters"),
        )),
        Some(Value::String(_)) => Err(fe(&format!("{path}.{name}"), "must not be empty")),
        Some(_) => Err(fe(&format!("{path}.{name}"), "must be a string")),
        None => Err(fe(&format!("{path}.{name}"), "is required for this format")),
    }
}

fn fe(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl SubjectId {
    /// Parses and validates one identifier at `path` (for error messages).
    pub fn parse(value: &Value, path: &str) -> Result<Self, FieldError> {
        let Some(obj) = value.as_object() else {
            return Err(fe(
                path,
                "must be an object with a `format` member (RFC 9493)",
            ));
        };
        let format = match obj.get("format") {
            Some(Value::String(f)) => f.as_str(),
            Some(_) => return Err(fe(&format!("{path}.format"), "must be a string")),
            None => {
                return Err(fe(
                    &format!("{path}.format"),
                    "is required (RFC 9493 subject identifier)",
                ));
            }
        };
        let allowed: &[&str] = match format {
            "email" => &["email"],
            "iss_sub" => &["iss", "sub"],
            "opaque" => &["id"],
            "phone_number" => &["phone_number"],
            "account" | "uri" => &["uri"],
            "did" => &["url"],
            other => {
                return Err(fe(
                    &format!("{path}.format"),
                    format!(
                        "unsupported format '{other}'; use email, iss_sub, opaque, phone_number, account, uri or did"
                    ),
                ));
            }
        };
        if let Some(extra) = obj
            .keys()
            .find(|k| *k != "format" && !allowed.contains(&k.as_str()))
        {
            return Err(fe(
                &format!("{path}.{extra}"),
                format!("is not a member of the '{format}' format (RFC 9493)"),
            ));
        }
        let id = match format {
            "email" => {
                let email = member(obj, path, "email")?;
                if !email_address::EmailAddress::is_valid(&email)
                    || email.contains(char::is_whitespace)
                {
                    return Err(fe(&format!("{path}.email"), "is not a valid email address"));
                }
                SubjectId::Email(email)
            }
            "iss_sub" => SubjectId::IssSub {
                iss: member(obj, path, "iss")?,
                sub: member(obj, path, "sub")?,
            },
            "opaque" => SubjectId::Opaque(member(obj, path, "id")?),
            "phone_number" => {
                let p = member(obj, path, "phone_number")?;
                let digits = p.strip_prefix('+').unwrap_or_default();
                if digits.is_empty()
                    || digits.len() > 15
                    || !digits.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(fe(
                        &format!("{path}.phone_number"),
                        "must be E.164: '+' then up to 15 digits, no spaces",
                    ));
                }
                SubjectId::PhoneNumber(p)
            }
            "account" => {
                let u = member(obj, path, "uri")?;
                if !u.starts_with("acct:") || !u.contains('@') {
                    return Err(fe(
                        &format!("{path}.uri"),
                        "must be an acct: URI (RFC 7565)",
                    ));
                }
                SubjectId::Account(u)
            }
            "uri" => {
                let u = member(obj, path, "uri")?;
                if url::Url::parse(&u).is_err() {
                    return Err(fe(&format!("{path}.uri"), "must be an absolute URI"));
                }
                SubjectId::Uri(u)
            }
            _ => {
                let u = member(obj, path, "url")?;
                if !u.starts_with("did:") {
                    return Err(fe(&format!("{path}.url"), "must be a did: URL"));
                }
                SubjectId::Did(u)
            }
        };
        Ok(id)
    }

    /// The RFC 9493 JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            SubjectId::Email(e) => serde_json::json!({"format": "email", "email": e}),
            SubjectId::IssSub { iss, sub } => {
                serde_json::json!({"format": "iss_sub", "iss": iss, "sub": sub})
            }
            SubjectId::Opaque(id) => serde_json::json!({"format": "opaque", "id": id}),
            SubjectId::PhoneNumber(p) => {
                serde_json::json!({"format": "phone_number", "phone_number": p})
            }
            SubjectId::Account(u) => serde_json::json!({"format": "account", "uri": u}),
            SubjectId::Uri(u) => serde_json::json!({"format": "uri", "uri": u}),
            SubjectId::Did(u) => serde_json::json!({"format": "did", "url": u}),
        }
    }

    /// A canonical string for state and ordering keys (emails lower-cased).
    pub fn canonical(&self) -> String {
        match self {
            SubjectId::Email(e) => format!("email:{}", e.to_lowercase()),
            SubjectId::IssSub { iss, sub } => format!("iss_sub:{iss}|{sub}"),
            SubjectId::Opaque(id) => format!("opaque:{id}"),
            SubjectId::PhoneNumber(p) => format!("phone_number:{p}"),
            SubjectId::Account(u) => format!("account:{}", u.to_lowercase()),
            SubjectId::Uri(u) => format!("uri:{u}"),
            SubjectId::Did(u) => format!("did:{u}"),
        }
    }
}

/// The subject of an event for Okta: a user, a device, or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    /// The user (Okta matches it to a user by email).
    pub user: Option<SubjectId>,
    /// The device.
    pub device: Option<SubjectId>,
}

impl Subject {
    /// Parses the request's `subject`: either one RFC 9493 identifier (taken as the user) or an
    /// SSF complex subject `{"user": {…}, "device": {…}}` (a `"format": "complex"` member is allowed).
    pub fn parse(value: &Value, path: &str) -> Result<Self, FieldError> {
        let Some(obj) = value.as_object() else {
            return Err(fe(
                path,
                "must be an object: an RFC 9493 identifier or {\"user\": …, \"device\": …}",
            ));
        };
        let complex = obj.contains_key("user")
            || obj.contains_key("device")
            || obj.get("format").and_then(Value::as_str) == Some("complex");
        if !complex {
            return Ok(Subject {
                user: Some(SubjectId::parse(value, path)?),
                device: None,
            });
        }
        if let Some(extra) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "user" | "device" | "format"))
        {
            return Err(fe(
                &format!("{path}.{extra}"),
                "is not supported; a complex subject for Okta has `user` and/or `device`",
            ));
        }
        if let Some(f) = obj.get("format")
            && f.as_str() != Some("complex")
        {
            return Err(fe(
                &format!("{path}.format"),
                "must be \"complex\" when `user`/`device` are given",
            ));
        }
        let user = obj
            .get("user")
            .map(|v| SubjectId::parse(v, &format!("{path}.user")))
            .transpose()?;
        let device = obj
            .get("device")
            .map(|v| SubjectId::parse(v, &format!("{path}.device")))
            .transpose()?;
        if user.is_none() && device.is_none() {
            return Err(fe(path, "needs `user` or `device`"));
        }
        Ok(Subject { user, device })
    }

    /// Okta's `SecurityEventSubject`: `{"user": …, "device": …}`, no `format` at this level.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(u) = &self.user {
            m.insert("user".into(), u.to_json());
        }
        if let Some(d) = &self.device {
            m.insert("device".into(), d.to_json());
        }
        Value::Object(m)
    }

    /// Canonical key: per-subject ordering and state use it.
    pub fn key(&self) -> String {
        let mut k = String::new();
        if let Some(u) = &self.user {
            let _ = write!(k, "user={}", u.canonical());
        }
        if let Some(d) = &self.device {
            if !k.is_empty() {
                k.push(';');
            }
            let _ = write!(k, "device={}", d.canonical());
        }
        k
    }
}
