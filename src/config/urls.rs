//! Regions and base URLs: region names to domains, the login URL derived from the API URL, and which URLs are accepted (https, or http to loopback only).

use super::error::ConfigError;
use std::net::IpAddr;
use url::Url;

/// Region names as the official SDKs and the Terraform provider spell them.
pub(super) const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "mypurecloud.com"),
    ("us-east-2", "use2.us-gov-pure.cloud"),
    ("us-west-2", "usw2.pure.cloud"),
    ("ca-central-1", "cac1.pure.cloud"),
    ("sa-east-1", "sae1.pure.cloud"),
    ("eu-central-1", "mypurecloud.de"),
    ("eu-central-2", "euc2.pure.cloud"),
    ("eu-west-1", "mypurecloud.ie"),
    ("eu-west-2", "euw2.pure.cloud"),
    ("me-central-1", "mec1.pure.cloud"),
    ("ap-south-1", "aps1.pure.cloud"),
    ("ap-northeast-1", "mypurecloud.jp"),
    ("ap-northeast-2", "apne2.pure.cloud"),
    ("ap-northeast-3", "apne3.pure.cloud"),
    ("ap-southeast-2", "mypurecloud.com.au"),
];

/// Maps a region name (`us-east-1`, `us_east_1`) or a domain to the domain. A domain may
/// be given as the API or login host (`api.mypurecloud.de`, `login.mypurecloud.de`) or
/// as a URL (`https://api.mypurecloud.de/`): the host prefix is dropped, so the API URL
/// does not become `api.api.`.
pub fn region_domain(region: &str) -> Option<String> {
    let r = region.trim().to_ascii_lowercase().replace('_', "-");
    let r = r
        .strip_prefix("https://")
        .unwrap_or(&r)
        .trim_end_matches('/')
        .to_owned();
    let r = ["api.", "login."]
        .iter()
        .find_map(|p| r.strip_prefix(p).filter(|rest| rest.contains('.')))
        .map_or(r.clone(), str::to_owned);
    if let Some((_, d)) = REGIONS.iter().find(|(name, _)| *name == r) {
        return Some((*d).to_owned());
    }
    let looks_like_domain = r.contains('.')
        && r.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    looks_like_domain.then_some(r)
}

/// Builds the login base from the API base: `api.X` → `login.X`, else the same host.
pub fn derive_login_url(api: &Url) -> Url {
    let mut login = api.clone();
    if let Some(host) = api.host_str() {
        if let Some(rest) = host.strip_prefix("api.") {
            // set_host only fails for cannot-be-a-base URLs, which parse_base_url rejects.
            if login.set_host(Some(&format!("login.{rest}"))).is_err() {
                return api.clone();
            }
        }
    }
    login
}

/// Parses a base URL, enforcing https except for loopback hosts.
pub fn parse_base_url(key: &str, s: &str, line: Option<usize>) -> Result<Url, ConfigError> {
    let s = s.trim();
    let url = Url::parse(s).map_err(|e| {
        ConfigError::new(
            key,
            format!("`{s}` is not a URL: {e}"),
            "write a full URL such as \"https://api.mypurecloud.com\"",
        )
        .at(line)
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(ConfigError::new(
                key,
                format!("`{s}` uses plain http to a non-loopback host"),
                "use https:// (plain http is accepted only for 127.0.0.0/8, ::1 and localhost)",
            )
            .at(line));
        }
        other => {
            return Err(ConfigError::new(
                key,
                format!("unsupported scheme `{other}`"),
                "use an https:// URL",
            )
            .at(line));
        }
    }
    if url.host_str().is_none() || url.cannot_be_a_base() {
        return Err(
            ConfigError::new(key, format!("`{s}` has no host"), "write a full URL").at(line),
        );
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ConfigError::new(
            key,
            format!("`{s}` carries a query, fragment or user info"),
            "give only scheme, host and optional port",
        )
        .at(line));
    }
    Ok(url)
}

/// Checks an upload URL handed out by the API (https, or http to loopback only).
pub fn parse_upload_url(s: &str) -> Result<Url, String> {
    parse_base_url("uploadURI", s, None)
        .or_else(|e| {
            // Pre-signed URLs carry a query string; only the scheme and host rules apply here.
            let url = Url::parse(s).map_err(|_| e.clone())?;
            match url.scheme() {
                "https" => Ok(url),
                "http" if is_loopback(&url) => Ok(url),
                _ => Err(e),
            }
        })
        .map_err(|e| e.problem)
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
