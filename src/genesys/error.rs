//! Why an API call failed ([`ApiError`]), the Genesys error body, and the limit a 429
//! names.

use serde::Deserialize;

use super::auth::AuthError;
use crate::redact;

/// Why an API call failed, for callers that branch on it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(
        "{endpoint}: 401 Unauthorized even with a fresh token: the OAuth client may be revoked or lack a role"
    )]
    Unauthorized { endpoint: &'static str },
    #[error("{endpoint}: {status} {code}: {message}")]
    Status {
        endpoint: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{endpoint}: still rate limited (429) after {attempts} attempts{}", limit.as_ref().map(|l| format!("; the limit hit: {l}")).unwrap_or_default())]
    RateLimited {
        endpoint: &'static str,
        attempts: u32,
        /// The limit the 429's body names, when it names one.
        limit: Option<RateLimit>,
    },
    #[error("{endpoint}: {message}")]
    Transport {
        endpoint: &'static str,
        message: String,
    },
    #[error("{endpoint}: unexpected response: {message}")]
    Decode {
        endpoint: &'static str,
        message: String,
    },
    #[error("cancelled by shutdown")]
    Cancelled,
}

impl ApiError {
    /// A decode error whose message may quote the answer (serde quotes values): redacted
    /// and capped like any text received from the network.
    pub fn decode(endpoint: &'static str, message: impl AsRef<str>) -> Self {
        Self::Decode {
            endpoint,
            message: redact::excerpt(message.as_ref()),
        }
    }

    /// A transport error, redacted and capped.
    pub fn transport(endpoint: &'static str, message: impl AsRef<str>) -> Self {
        Self::Transport {
            endpoint,
            message: redact::excerpt(message.as_ref()),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The Genesys error body (ErrorBody in the API spec); every field optional.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) code: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// The limit a 429 names: since mid-2023 Genesys may add `"limit": {"key", "namespace",
/// "value"}` to the body (not guaranteed: "discretionary based on the specific limit").
/// Text from the network, so both strings are redacted and capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub key: String,
    pub namespace: String,
    pub value: Option<u64>,
}

impl RateLimit {
    /// The `limit` of a 429 body, if it has one.
    pub fn from_body(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Body {
            limit: Option<Limit>,
        }
        #[derive(Deserialize)]
        struct Limit {
            #[serde(default)]
            key: Option<String>,
            #[serde(default)]
            namespace: Option<String>,
            #[serde(default)]
            value: Option<serde_json::Value>,
        }
        let l = serde_json::from_slice::<Body>(body).ok()?.limit?;
        let text = |s: Option<String>| redact::cap(&redact::excerpt(&s.unwrap_or_default()), 80);
        let key = text(l.key);
        let namespace = text(l.namespace);
        (!key.is_empty() || !namespace.is_empty()).then(|| Self {
            key,
            namespace,
            value: l.value.as_ref().and_then(serde_json::Value::as_u64),
        })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key {} in namespace {}", self.key, self.namespace)?;
        if let Some(v) = self.value {
            write!(f, ", value {v}")?;
        }
        Ok(())
    }
}
