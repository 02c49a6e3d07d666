//! OAuth: the client credentials, issued tokens, and each token's sliding one-minute rate
//! window (Genesys limits requests per token).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Reported as `inin-ratelimit-allowed` when the limit is switched off.
const UNLIMITED_ALLOWED: u32 = i32::MAX as u32;
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const TOKEN_LEN: usize = 86;

struct Token {
    /// The OAuth client it was issued to (its grants apply to the token's requests).
    client: String,
    expires_at: Instant,
    revoked: bool,
    /// Arrival times of admitted requests in the last minute.
    window: VecDeque<Instant>,
}

/// One OAuth client: its credentials and the permissions its roles grant.
struct OAuthClient {
    id: String,
    secret: String,
    grants: BTreeSet<String>,
}

/// OAuth clients and issued tokens with their rate-limit windows. The first client is the
/// one `SimOptions` names; tests may add others.
pub(crate) struct Auth {
    clients: Vec<OAuthClient>,
    tokens: HashMap<String, Token>,
    /// Whether answers carry `inin-ratelimit-*` headers (Genesys removed them in June
    /// 2021; off unless a test turns them on).
    pub(crate) legacy_headers: bool,
}

/// Rate-limit state reported in `inin-ratelimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    pub(crate) count: usize,
    pub(crate) allowed: u32,
    pub(crate) reset_secs: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Unauthorized,
    Limited { retry_after: u64, rate: RateHeaders },
    Admitted { rate: RateHeaders },
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Auth {
    pub(crate) fn new(client_id: &str, client_secret: &str) -> Auth {
        Auth {
            clients: vec![OAuthClient {
                id: client_id.to_owned(),
                secret: client_secret.to_owned(),
                grants: crate::permissions::all(),
            }],
            tokens: HashMap::new(),
            legacy_headers: false,
        }
    }

    /// The id of the client the token was issued to (the first client's when unknown).
    pub(crate) fn client_id(&self, token: Option<&str>) -> &str {
        token
            .and_then(|t| self.tokens.get(t))
            .map(|t| t.client.as_str())
            .or_else(|| self.clients.first().map(|c| c.id.as_str()))
            .unwrap_or_default()
    }

    /// The client these credentials authenticate, if any.
    pub(crate) fn authenticate(&self, id: &str, secret: &str) -> Option<String> {
        self.clients
            .iter()
            .find(|c| c.id == id && c.secret == secret)
            .map(|c| c.id.clone())
    }

    /// Replaces the first client's credentials (its grants stay).
    pub(crate) fn set_credentials(&mut self, id: &str, secret: &str) {
        if let Some(c) = self.clients.first_mut() {
            id.clone_into(&mut c.id);
            secret.clone_into(&mut c.secret);
        }
    }

    /// Adds a client (or replaces the one of that id) with exactly these grants.
    pub(crate) fn add_client(&mut self, id: &str, secret: &str, grants: BTreeSet<String>) {
        self.clients.retain(|c| c.id != id);
        self.clients.push(OAuthClient {
            id: id.to_owned(),
            secret: secret.to_owned(),
            grants,
        });
    }

    /// The grants of a client (the first one when `id` is None); None for an unknown id.
    pub(crate) fn grants_mut(&mut self, id: Option<&str>) -> Option<&mut BTreeSet<String>> {
        match id {
            None => self.clients.first_mut(),
            Some(id) => self.clients.iter_mut().find(|c| c.id == id),
        }
        .map(|c| &mut c.grants)
    }

    /// Whether the token's client holds at least one of `any_of`. Grants are read at each
    /// request: a role change applies to tokens already issued.
    pub(crate) fn permits(&self, token: Option<&str>, any_of: &[&str]) -> bool {
        let client = self.client_id(token);
        self.clients
            .iter()
            .find(|c| c.id == client)
            .is_some_and(|c| any_of.iter().any(|p| c.grants.contains(*p)))
    }

    pub(crate) fn revoke_all(&mut self) {
        for t in self.tokens.values_mut() {
            t.revoked = true;
        }
    }

    pub(crate) fn revoke(&mut self, token: &str) {
        if let Some(t) = self.tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    pub(crate) fn issue(&mut self, client: &str, ttl_secs: u64) -> String {
        let now = Instant::now();
        // Dead tokens answer 401 whether or not they are remembered; forget them.
        self.tokens.retain(|_, t| !t.revoked && t.expires_at > now);
        let token: String = (0..TOKEN_LEN)
            .map(|_| {
                let i = rand::random_range(0..TOKEN_ALPHABET.len());
                char::from(TOKEN_ALPHABET.get(i).copied().unwrap_or(b'A'))
            })
            .collect();
        self.tokens.insert(
            token.clone(),
            Token {
                client: client.to_owned(),
                expires_at: now + Duration::from_secs(ttl_secs),
                revoked: false,
                window: VecDeque::new(),
            },
        );
        token
    }

    /// Authenticates a bearer token and applies its sliding one-minute window. Requests
    /// answered 429 do not consume budget, as in Genesys.
    pub(crate) fn admit(&mut self, token: Option<&str>, limit: u32, now: Instant) -> Admission {
        let Some(t) = token.and_then(|t| self.tokens.get_mut(t)) else {
            return Admission::Unauthorized;
        };
        if t.revoked || now >= t.expires_at {
            return Admission::Unauthorized;
        }
        while t.window.front().is_some_and(|f| *f + RATE_WINDOW <= now) {
            t.window.pop_front();
        }
        let allowed = if limit == 0 { UNLIMITED_ALLOWED } else { limit };
        let until_slot = |oldest: Option<&Instant>| {
            oldest.map_or(ceil_secs(RATE_WINDOW), |o| {
                ceil_secs((*o + RATE_WINDOW).saturating_duration_since(now)).max(1)
            })
        };
        if limit > 0 && t.window.len() >= limit as usize {
            let wait = until_slot(t.window.front());
            return Admission::Limited {
                retry_after: wait,
                rate: RateHeaders {
                    count: t.window.len(),
                    allowed,
                    reset_secs: wait,
                },
            };
        }
        t.window.push_back(now);
        Admission::Admitted {
            rate: RateHeaders {
                count: t.window.len(),
                allowed,
                reset_secs: until_slot(t.window.front()),
            },
        }
    }
}

/// Decodes standard or URL-safe base64, padding optional.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// `(client_id, client_secret)` from an HTTP Basic `Authorization` value.
pub(crate) fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(rest.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_auth_headers() {
        assert_eq!(base64_decode("YTpi").unwrap(), b"a:b");
        assert_eq!(base64_decode("YTpiYw==").unwrap(), b"a:bc");
        assert_eq!(base64_decode("YTpiYw").unwrap(), b"a:bc");
        assert!(base64_decode("Y*").is_none());
        assert_eq!(
            basic_credentials("Basic c2ltLWNsaWVudC1pZDpzaW0tY2xpZW50LXNlY3JldA=="),
            Some(("sim-client-id".to_owned(), "sim-client-secret".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn sliding_window() {
        let mut auth = Auth::new("id", "secret");
        let tok = auth.issue("id", 3600);
        let t0 = Instant::now();
        for i in 0..3u64 {
            let now = t0 + Duration::from_secs(i * 10);
            assert!(matches!(
                auth.admit(Some(&tok), 3, now),
                Admission::Admitted { .. }
            ));
        }
        // Window full at t=25: the first slot frees at t=60.
        let now = t0 + Duration::from_secs(25);
        match auth.admit(Some(&tok), 3, now) {
            Admission::Limited { retry_after, .. } => assert_eq!(retry_after, 35),
            other => panic!("{other:?}"),
        }
        // 429s consumed nothing: at t=60 exactly one slot is free.
        let now = t0 + Duration::from_secs(60);
        assert!(matches!(
            auth.admit(Some(&tok), 3, now),
            Admission::Admitted {
                rate: RateHeaders { count: 3, .. }
            }
        ));
        assert!(matches!(
            auth.admit(Some(&tok), 3, now),
            Admission::Limited {
                retry_after: 10,
                ..
            }
        ));
        // Unlimited.
        for _ in 0..10 {
            assert!(matches!(
                auth.admit(Some(&tok), 0, now),
                Admission::Admitted { .. }
            ));
        }
        // Expiry and revocation.
        assert_eq!(
            auth.admit(Some(&tok), 0, t0 + Duration::from_secs(3600)),
            Admission::Unauthorized
        );
        let tok2 = auth.issue("id", 3600);
        auth.revoke_all();
        assert_eq!(auth.admit(Some(&tok2), 0, now), Admission::Unauthorized);
        assert_eq!(auth.admit(Some("nope"), 0, now), Admission::Unauthorized);
        assert_eq!(auth.admit(None, 0, now), Admission::Unauthorized);
    }
}
