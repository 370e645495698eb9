//! A typed client for the Okta Management API. This slice covers the Security Events Providers
//! API (registering this transmitter as an SSF provider) with SSWS API-token auth; enforcement
//! calls and OAuth join it later.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error from Okta (`errorCode`, `errorSummary`, …) or from reaching it.
#[derive(Debug, thiserror::Error)]
pub enum OktaApiError {
    /// Okta answered with an error body.
    #[error("Okta answered {status}: {error_code} {error_summary}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `errorCode`, e.g. `E0000001`.
        error_code: String,
        /// `errorSummary`.
        error_summary: String,
        /// `errorCauses[].errorSummary`.
        error_causes: Vec<String>,
        /// `errorId`.
        error_id: Option<String>,
    },
    /// Okta could not be reached or answered something unreadable.
    #[error("cannot reach Okta: {0}")]
    Transport(String),
}

/// A Security Events Provider as Okta returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecurityEventsProvider {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ACTIVE` / `INACTIVE`.
    pub status: String,
    /// Settings.
    pub settings: ProviderSettings,
}

/// Provider settings as returned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Issuer.
    pub issuer: Option<String>,
    /// JWKS URL.
    pub jwks_url: Option<String>,
    /// Well-known URL.
    pub well_known_url: Option<String>,
}

/// The Okta Management API client.
#[derive(Clone)]
pub struct OktaClient {
    http: reqwest::Client,
    org_url: String,
    api_token: SecretString,
}

impl std::fmt::Debug for OktaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaClient")
            .field("org_url", &self.org_url)
            .finish_non_exhaustive()
    }
}

impl OktaClient {
    /// A client authenticating with an SSWS API token.
    pub fn with_api_token(org_url: &str, api_token: SecretString) -> Result<Self, OktaApiError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("ssf-transmitter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OktaApiError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            org_url: org_url.trim_end_matches('/').to_owned(),
            api_token,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, OktaApiError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.org_url))
            .header(
                "Authorization",
                format!("SSWS {}", self.api_token.expose_secret()),
            )
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| OktaApiError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| OktaApiError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes)
                .map_err(|e| OktaApiError::Transport(format!("unexpected answer from Okta: {e}")));
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Err(OktaApiError::Api {
            status,
            error_code: v["errorCode"].as_str().unwrap_or("unknown").to_owned(),
            error_summary: v["errorSummary"]
                .as_str()
                .unwrap_or("no error body")
                .to_owned(),
            error_causes: v["errorCauses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["errorSummary"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            error_id: v["errorId"].as_str().map(str::to_owned),
        })
    }

    /// `GET /api/v1/security-events-providers`.
    pub async fn list_providers(&self) -> Result<Vec<SecurityEventsProvider>, OktaApiError> {
        self.call(
            reqwest::Method::GET,
            "/api/v1/security-events-providers",
            None,
        )
        .await
    }

    /// `POST /api/v1/security-events-providers`.
    pub async fn create_provider(
        &self,
        body: &Value,
    ) -> Result<SecurityEventsProvider, OktaApiError> {
        self.call(
            reqwest::Method::POST,
            "/api/v1/security-events-providers",
            Some(body),
        )
        .await
    }

    /// `PUT /api/v1/security-events-providers/{id}`.
    pub async fn replace_provider(
        &self,
        id: &str,
        body: &Value,
    ) -> Result<SecurityEventsProvider, OktaApiError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/security-events-providers/{id}"),
            Some(body),
        )
        .await
    }

    /// `POST /api/v1/security-events-providers/{id}/lifecycle/activate`.
    pub async fn activate_provider(
        &self,
        id: &str,
    ) -> Result<SecurityEventsProvider, OktaApiError> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/security-events-providers/{id}/lifecycle/activate"),
            None,
        )
        .await
    }

    /// Creates or updates this transmitter as an (active) Security Events Provider, registered by
    /// its well-known URL. A provider with the same issuer or well-known URL is reused.
    pub async fn register_transmitter(
        &self,
        name: &str,
        issuer: &str,
        well_known_url: &str,
    ) -> Result<SecurityEventsProvider, OktaApiError> {
        let body = serde_json::json!({
            "name": name,
            "type": "ssf-transmitter",
            "settings": {"well_known_url": well_known_url},
        });
        let existing = self.list_providers().await?.into_iter().find(|p| {
            p.settings.issuer.as_deref() == Some(issuer)
                || p.settings.well_known_url.as_deref() == Some(well_known_url)
        });
        let provider = match existing {
            Some(p) => self.replace_provider(&p.id, &body).await?,
            None => self.create_provider(&body).await?,
        };
        if provider.status == "ACTIVE" {
            Ok(provider)
        } else {
            self.activate_provider(&provider.id).await
        }
    }
}

/// The well-known URL of an issuer (SSF §7.2: inserted between host and path).
pub fn well_known_url(issuer: &str) -> String {
    match url::Url::parse(issuer) {
        Ok(u) => {
            let path = u.path().trim_end_matches('/').to_owned();
            let mut base = u.clone();
            base.set_path("");
            format!(
                "{}/.well-known/ssf-configuration{path}",
                base.as_str().trim_end_matches('/')
            )
        }
        Err(_) => format!("{issuer}/.well-known/ssf-configuration"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn well_known_is_path_aware() {
        assert_eq!(
            super::well_known_url("https://ssf.example.com"),
            "https://ssf.example.com/.well-known/ssf-configuration"
        );
        assert_eq!(
            super::well_known_url("https://ssf.example.com/tenant-a"),
            "https://ssf.example.com/.well-known/ssf-configuration/tenant-a"
        );
        assert_eq!(
            super::well_known_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/.well-known/ssf-configuration"
        );
    }
}
