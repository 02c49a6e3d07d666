//! Keeps secrets out of everything the daemon shows: logs, `/readyz`, metric labels and
//! the output of `once` and `check`.
//!
//! Two layers, because text from the network can hold anything (gateways and proxies
//! echo the request's headers into error bodies):
//! - **known secrets**: the client secret, its HTTP Basic form, the current and previous
//!   access tokens and the signatures of recent pre-signed upload URLs are replaced
//!   wherever they appear, raw, JSON-escaped or percent-encoded. They are registered as
//!   they come into being ([`register_credentials`], [`register_token`],
//!   [`register_upload_url`]); the log writer ([`Scrubbing`]) applies this layer to every
//!   line the daemon writes, whatever produced it.
//! - **shapes of secrets**, for text received from the network ([`excerpt`]): any
//!   `Bearer`/`Basic` credential, any `Authorization`/`Cookie`/`X-Amz-*-Token` header value,
//!   `access_token`-like JSON fields, and the whole query string of any URL (a pre-signed
//!   URL's authority is its query). The excerpt is then capped at [`EXCERPT_MAX`] bytes.
//!
//! **What is a secret.** The client secret, the access tokens, the Basic credential (which
//! holds the secret), upload signatures and channel ids are. The OAuth client id is not:
//! Genesys shows it to anyone who may view OAuth clients, and alone it grants nothing. So
//! it is never registered or scrubbed, and `check` prints it with where it came from; the
//! one rule is tested here and by `check` (`tests/daemon.rs`).
//!
//! The daemon's registry is process-wide on purpose: a secret must be scrubbed wherever it
//! turns up (an error built deep in an endpoint module, a panic message, a library's log
//! line), not only where someone remembered to pass a redactor. It is bounded: a few fixed
//! secrets and the last [`KEEP_ROTATING`] tokens and upload signatures. The registry itself
//! is a type ([`Secrets`]) so that a test can own one: in a test process many clients share
//! the process-wide registry, and their tokens push each other's out of its bound.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{LazyLock, RwLock, RwLockWriteGuard};

use base64::Engine;
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";
/// The longest excerpt of a network answer the daemon shows, in bytes (before `…`).
pub const EXCERPT_MAX: usize = 300;
/// Tokens and upload signatures remembered: the current one and a few before it (a token
/// renewed mid-cycle leaves the old one in answers still in flight).
const KEEP_ROTATING: usize = 4;
/// Shorter strings are not registered: they would shred ordinary text, and nothing the
/// daemon guards is that short (Genesys tokens are ~86 characters, secrets ~43).
const MIN_SECRET_LEN: usize = 6;
/// At most this many fixed secrets (several clients in one process, as in the tests).
const MAX_FIXED: usize = 32;

struct Registry {
    /// Client secrets and their Basic form (with every encoded variant).
    fixed: Vec<String>,
    tokens: VecDeque<Vec<String>>,
    uploads: VecDeque<Vec<String>>,
    /// Notification channel ids: each one (and its connectUri, which holds it) lets anyone
    /// take the channel's single socket.
    channels: VecDeque<String>,
}

impl Registry {
    fn all(&self) -> impl Iterator<Item = &String> {
        self.fixed
            .iter()
            .chain(self.tokens.iter().flatten())
            .chain(self.uploads.iter().flatten())
            .chain(self.channels.iter())
    }
}

/// A registry of known secrets and the scrubbing it does. The daemon uses one, process-wide
/// (the free functions of this module and [`Scrubbing::new`]).
pub struct Secrets {
    reg: RwLock<Registry>,
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new()
    }
}

/// The daemon's registry.
static GLOBAL: Secrets = Secrets::new();

/// A secret as it may appear in text: raw, JSON-escaped, percent-encoded.
fn variants(secret: &str) -> Vec<String> {
    let mut v = vec![secret.to_owned()];
    if let Ok(json) = serde_json::to_string(secret) {
        let inner = json.trim_matches('"').to_owned();
        if inner != secret {
            v.push(inner);
        }
    }
    let pct = crate::genesys::path::encode_segment(secret);
    if pct != secret {
        v.push(pct);
    }
    v
}

fn push_fixed(reg: &mut Registry, secret: &str) {
    if secret.len() < MIN_SECRET_LEN || reg.fixed.iter().any(|s| s == secret) {
        return;
    }
    if reg.fixed.len() >= MAX_FIXED {
        reg.fixed
            .drain(..variants(secret).len().min(reg.fixed.len()));
    }
    reg.fixed.extend(variants(secret));
}

/// The most channel ids remembered: the 20 a client may hold, and as many being replaced.
const KEEP_CHANNELS: usize = 40;

impl Secrets {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            reg: RwLock::new(Registry {
                fixed: Vec::new(),
                tokens: VecDeque::new(),
                uploads: VecDeque::new(),
                channels: VecDeque::new(),
            }),
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        // A poisoned lock still holds valid strings: keep redacting rather than give up.
        self.reg.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the client secret and the HTTP Basic credential built from it.
    pub fn register_credentials(&self, client_id: &str, secret: &SecretString) {
        let secret = secret.expose_secret();
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
        let mut reg = self.write();
        push_fixed(&mut reg, secret);
        push_fixed(&mut reg, &basic);
    }

    /// Registers a newly obtained access token; the oldest remembered one is forgotten.
    pub fn register_token(&self, token: &SecretString) {
        let token = token.expose_secret();
        if token.len() < MIN_SECRET_LEN {
            return;
        }
        let mut reg = self.write();
        if reg
            .tokens
            .iter()
            .any(|t| t.first().is_some_and(|s| s == token))
        {
            return;
        }
        if reg.tokens.len() >= KEEP_ROTATING {
            reg.tokens.pop_front();
        }
        reg.tokens.push_back(variants(token));
    }

    /// Registers the signature-bearing parts of a pre-signed upload URL: its query string,
    /// and each query value long enough to be a credential, raw and decoded (storage
    /// services echo the signature they were given in their error bodies).
    pub fn register_upload_url(&self, url: &url::Url) {
        let Some(query) = url.query() else { return };
        let mut parts = vec![query.to_owned()];
        for (_, v) in url.query_pairs() {
            if v.len() >= 16 {
                parts.extend(variants(&v));
            }
        }
        for raw in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if raw.1.len() >= 16 {
                parts.push(raw.1.to_owned());
            }
        }
        parts.retain(|p| p.len() >= MIN_SECRET_LEN);
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        parts.dedup();
        let mut reg = self.write();
        if reg.uploads.len() >= KEEP_ROTATING {
            reg.uploads.pop_front();
        }
        reg.uploads.push_back(parts);
    }

    /// Registers a notification channel's id (which its connectUri contains).
    pub fn register_channel(&self, id: &str) {
        if id.len() < MIN_SECRET_LEN {
            return;
        }
        let mut reg = self.write();
        if reg.channels.iter().any(|c| c == id) {
            return;
        }
        if reg.channels.len() >= KEEP_CHANNELS {
            reg.channels.pop_front();
        }
        reg.channels.push_back(id.to_owned());
    }

    /// Replaces every registered secret in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let reg = self.reg.read().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<&str> = reg
            .all()
            .filter(|s| text.contains(s.as_str()))
            .map(String::as_str)
            .collect();
        if found.is_empty() {
            return text.to_owned();
        }
        // Longest first, so a secret containing another is replaced whole.
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for s in found {
            out = out.replace(s, REDACTED);
        }
        out
    }

    /// [`excerpt`] against this registry.
    pub fn excerpt(&self, text: &str) -> String {
        let mut out = self.scrub(text);
        match SHAPES.as_ref() {
            Some(s) => {
                out = s.url_query.replace_all(&out, "$1?[redacted]").into_owned();
                out = s.credential.replace_all(&out, "$1 [redacted]").into_owned();
                out = s.header.replace_all(&out, "$1$2[redacted]").into_owned();
                out = s.field.replace_all(&out, "$1$2[redacted]").into_owned();
            }
            // The patterns are constants and compile; if they ever did not, show nothing
            // rather than something unscrubbed.
            None => return "[answer not shown: redaction unavailable]".to_owned(),
        }
        cap(&out, EXCERPT_MAX)
    }
}

/// Registers the client secret and the HTTP Basic credential built from it.
pub fn register_credentials(client_id: &str, secret: &SecretString) {
    GLOBAL.register_credentials(client_id, secret);
}

/// Registers a newly obtained access token; the oldest remembered one is forgotten.
pub fn register_token(token: &SecretString) {
    GLOBAL.register_token(token);
}

/// Registers the signature-bearing parts of a pre-signed upload URL (see
/// [`Secrets::register_upload_url`]).
pub fn register_upload_url(url: &url::Url) {
    GLOBAL.register_upload_url(url);
}

/// Registers a notification channel's id (which its connectUri contains).
pub fn register_channel(id: &str) {
    GLOBAL.register_channel(id);
}

/// Replaces every registered secret in `text`.
pub fn scrub(text: &str) -> String {
    GLOBAL.scrub(text)
}

struct Shapes {
    credential: Regex,
    header: Regex,
    field: Regex,
    url_query: Regex,
}

static SHAPES: LazyLock<Option<Shapes>> = LazyLock::new(|| {
    Some(Shapes {
        // `Bearer <token>`, `Basic <base64>`, also with a JSON-escaped space or quotes around.
        credential: Regex::new(r"(?i)\b(bearer|basic)(\s+|%20|\\u0020)[A-Za-z0-9\-._~+/]+=*")
            .ok()?,
        // Header echoes: `Authorization: ...`, `"authorization":"..."`, `Cookie=...`.
        header: Regex::new(
            r#"(?i)\b(proxy-authorization|authorization|cookie|set-cookie|x-api-key|x-amz-security-token|x-amz-signature|x-amz-credential|x-goog-signature|x-ms-signature)("?\s*[:=]\s*"?)[^"\r\n]*"#,
        )
        .ok()?,
        // `"access_token": "..."` and similar fields of token or credential answers.
        field: Regex::new(
            r#"(?i)\b(access_token|refresh_token|id_token|client_secret|password|secret|signature|sig|token)("?\s*[:=]\s*"?)[^"&\s,;}<]+"#,
        )
        .ok()?,
        // A URL's query string (a pre-signed URL's signature lives there).
        url_query: Regex::new(r#"(?i)\b(https?://[^\s"'<>?]+)\?[^\s"'<>]*"#).ok()?,
    })
});

/// Text received from the network (an error body, a job's error message, a transport
/// error), made safe to log or show: registered secrets and anything shaped like a
/// credential replaced, then capped at [`EXCERPT_MAX`] bytes.
pub fn excerpt(text: &str) -> String {
    GLOBAL.excerpt(text)
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A log writer that scrubs registered secrets from each line before it reaches the
/// output: the last line of defence, whatever a log event carries.
pub struct Scrubbing<'s, W: Write> {
    inner: W,
    buf: Vec<u8>,
    secrets: &'s Secrets,
}

impl<W: Write> Scrubbing<'static, W> {
    /// A writer scrubbing the daemon's (process-wide) registered secrets.
    pub fn new(inner: W) -> Self {
        Self::with_secrets(inner, &GLOBAL)
    }
}

impl<'s, W: Write> Scrubbing<'s, W> {
    /// A writer scrubbing the secrets registered in `secrets`.
    pub fn with_secrets(inner: W, secrets: &'s Secrets) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            secrets,
        }
    }

    fn flush_lines(&mut self, all: bool) -> std::io::Result<()> {
        let end = if all {
            self.buf.len()
        } else {
            match self.buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => return Ok(()),
            }
        };
        if end == 0 {
            return Ok(());
        }
        let chunk: Vec<u8> = self.buf.drain(..end).collect();
        let text = String::from_utf8_lossy(&chunk);
        self.inner.write_all(self.secrets.scrub(&text).as_bytes())
    }
}

impl<W: Write> Write for Scrubbing<'_, W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        self.flush_lines(false)?;
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_lines(true)?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for Scrubbing<'_, W> {
    fn drop(&mut self) {
        // Nowhere to report a failed log write.
        let _ = self.flush();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Each test owns its registry: the process-wide one is shared by every test of this
    // binary that logs in, and their tokens would push this test's out of its bound.

    #[test]
    fn registered_secrets_are_replaced_in_every_form() {
        let secrets = Secrets::new();
        let secret = SecretString::from("s3cr\"et/with+chars");
        secrets.register_credentials("unit-client-a", &secret);
        let basic =
            base64::engine::general_purpose::STANDARD.encode("unit-client-a:s3cr\"et/with+chars");
        for text in [
            "raw s3cr\"et/with+chars here".to_owned(),
            r#"{"x":"s3cr\"et/with+chars"}"#.to_owned(),
            "q=s3cr%22et%2Fwith%2Bchars".to_owned(),
            format!("Authorization: Basic {basic}"),
        ] {
            let out = secrets.scrub(&text);
            assert!(out.contains(REDACTED), "{out}");
            assert!(
                !out.contains("with+chars") && !out.contains("with%2Bchars"),
                "{out}"
            );
            assert!(!out.contains(&basic), "{out}");
        }
    }

    #[test]
    fn the_client_id_is_shown_while_its_secret_and_basic_form_are_not() {
        let secrets = Secrets::new();
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        secrets.register_credentials(id, &SecretString::from("unit-secret-of-the-id"));
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:unit-secret-of-the-id"));
        for shown in [
            format!("client id: {id} from genesys.client_id"),
            format!(r#"{{"client_id":"{id}","error":"invalid_client"}}"#),
        ] {
            assert_eq!(secrets.scrub(&shown), shown);
            assert_eq!(secrets.excerpt(&shown), shown);
        }
        let leaked = format!("{id} unit-secret-of-the-id {basic}");
        assert_eq!(
            secrets.scrub(&leaked),
            format!("{id} [redacted] [redacted]")
        );
    }

    #[test]
    fn the_current_and_previous_tokens_are_scrubbed_and_old_ones_age_out_boundedly() {
        let secrets = Secrets::new();
        let tokens: Vec<String> = (0..6).map(|i| format!("unit-token-{i}-abcdefgh")).collect();
        for t in &tokens {
            secrets.register_token(&SecretString::from(t.clone()));
        }
        // The newest KEEP_ROTATING are all scrubbed; older ones are forgotten.
        let kept = &tokens[tokens.len() - KEEP_ROTATING..];
        let text = kept.join(" and ");
        assert_eq!(
            secrets.scrub(&text),
            [REDACTED; KEEP_ROTATING].join(" and ")
        );
        assert_eq!(secrets.scrub(&tokens[0]), tokens[0]);
        assert_eq!(secrets.reg.read().unwrap().tokens.len(), KEEP_ROTATING);
    }

    #[test]
    fn the_client_secret_survives_any_number_of_token_renewals() {
        let secrets = Secrets::new();
        secrets.register_credentials("unit-client-b", &SecretString::from("unit-secret-b"));
        for i in 0..100 {
            secrets.register_token(&SecretString::from(format!("unit-renewed-token-{i}")));
        }
        let basic = base64::engine::general_purpose::STANDARD.encode("unit-client-b:unit-secret-b");
        assert_eq!(
            secrets.scrub(&format!("unit-secret-b {basic} unit-renewed-token-99")),
            "[redacted] [redacted] [redacted]"
        );
    }

    #[test]
    fn network_text_loses_anything_shaped_like_a_credential_and_is_capped() {
        let secrets = Secrets::new();
        let body = r#"{"message":"bad gateway","echo":{"Authorization":"Bearer eyJhbGciOi.unknown-token_x","Cookie":"sid=abc"},"access_token":"zzzzzzzz","url":"https://bucket.s3.amazonaws.com/up/f.csv?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA%2F"}"#;
        let out = secrets.excerpt(body);
        for leaked in ["eyJhbGciOi", "sid=abc", "zzzzzzzz", "deadbeef", "AKIA"] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert!(out.contains("bad gateway"), "{out}");
        assert!(
            out.contains("https://bucket.s3.amazonaws.com/up/f.csv?[redacted]"),
            "{out}"
        );
        let long = "x".repeat(5000);
        let out = secrets.excerpt(&long);
        assert!(out.len() <= EXCERPT_MAX + '…'.len_utf8());
        assert!(out.ends_with('…'));
    }

    #[test]
    fn plain_text_is_left_alone() {
        let text = "queue Sales: 503 service.unavailable: try again later";
        assert_eq!(Secrets::new().excerpt(text), text);
    }

    #[test]
    fn upload_signatures_are_scrubbed_even_when_echoed_decoded() {
        let secrets = Secrets::new();
        let url = url::Url::parse(
            "https://uploads.example/t/f.csv?X-Amz-Signature=0123456789abcdef0123&X-Amz-Credential=AKIAUNIT%2F20261202%2Fus-east-1",
        )
        .unwrap();
        secrets.register_upload_url(&url);
        let out = secrets.scrub(
            "<SignatureProvided>0123456789abcdef0123</SignatureProvided><Cred>AKIAUNIT/20261202/us-east-1</Cred>",
        );
        assert!(!out.contains("0123456789abcdef0123"), "{out}");
        assert!(!out.contains("AKIAUNIT"), "{out}");
    }

    #[test]
    fn channel_ids_are_scrubbed_inside_their_connect_uri() {
        let secrets = Secrets::new();
        secrets.register_channel("streaming-0-unittestchannel");
        let out = secrets
            .scrub("connecting to wss://streaming.example/channels/streaming-0-unittestchannel");
        assert!(!out.contains("unittestchannel"), "{out}");
    }

    #[test]
    fn the_log_writer_scrubs_whole_lines() {
        let secrets = Secrets::new();
        secrets.register_token(&SecretString::from("unit-writer-token-xyz".to_owned()));
        let mut out = Vec::new();
        {
            let mut w = Scrubbing::with_secrets(&mut out, &secrets);
            w.write_all(b"a line with unit-writer-").unwrap();
            w.write_all(b"token-xyz split across writes\n").unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "a line with [redacted] split across writes\n");
    }

    /// The daemon's entry points feed the process-wide registry its log writer reads.
    /// Uses the client secret: fixed secrets are not pushed out by token renewals, and
    /// this test binary registers far fewer than MAX_FIXED of them.
    #[test]
    fn the_daemons_writer_and_excerpts_use_the_process_wide_registry() {
        register_credentials(
            "unit-client-global",
            &SecretString::from("unit-global-secret"),
        );
        let mut out = Vec::new();
        {
            let mut w = Scrubbing::new(&mut out);
            w.write_all(b"leaked unit-global-secret\n").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "leaked [redacted]\n");
        assert_eq!(excerpt("body unit-global-secret"), "body [redacted]");
        assert_eq!(scrub("unit-global-secret"), REDACTED);
    }
}
