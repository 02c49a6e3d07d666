//! `[genesys]`: the API and login URLs, the client secret, and where each of them and
//! the client id comes from (the environment first, then the file).

use super::env::{
    ENV_API_REGION, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_CREDENTIALS_DIRECTORY, ENV_REGION,
};
use super::error::ConfigError;
use super::raw::RawGenesys;
use super::urls::{REGIONS, derive_login_url, parse_base_url, region_domain};
use super::validate::Validator;
use super::validated::{Source, Sources};
use secrecy::SecretString;
use std::path::Path;
use url::Url;

impl Validator<'_> {
    pub(super) fn urls(&self, g: &RawGenesys) -> Result<(Url, Url), ConfigError> {
        let api_env = self.env.var(ENV_API_REGION);
        let api = if let Some(u) = api_env {
            parse_base_url(ENV_API_REGION, &u, None)?
        } else if let Some(u) = &g.api_url {
            parse_base_url("genesys.api_url", u.get_ref(), self.line(u))?
        } else {
            let (region, line, key) = match (self.env.var(ENV_REGION), &g.region) {
                (Some(r), _) => (r, None, ENV_REGION),
                (None, Some(r)) => (r.get_ref().clone(), self.line(r), "genesys.region"),
                (None, None) => {
                    return Err(ConfigError::new(
                        "genesys.region",
                        "is missing",
                        format!(
                            "set genesys.region (e.g. \"us-east-1\" or \"mypurecloud.ie\"), \
                             the {ENV_REGION} environment variable, or genesys.api_url"
                        ),
                    ));
                }
            };
            let domain = region_domain(&region).ok_or_else(|| {
                let known: Vec<&str> = REGIONS.iter().map(|(r, _)| *r).collect();
                ConfigError::new(
                    key,
                    format!("unknown region `{region}`"),
                    format!(
                        "use a region name ({}) or your org's domain such as \"mypurecloud.com\"",
                        known.join(", ")
                    ),
                )
                .at(line)
            })?;
            parse_base_url(key, &format!("https://api.{domain}"), line)?
        };
        let login = match &g.login_url {
            Some(u) => parse_base_url("genesys.login_url", u.get_ref(), self.line(u))?,
            None => derive_login_url(&api),
        };
        Ok((api, login))
    }

    /// Where `urls`, the client id and `secret` take each setting from: the same order
    /// of precedence (environment first), kept beside them.
    pub(super) fn sources(&self, g: &RawGenesys) -> Sources {
        let set = |name: &'static str| self.env.var(name).is_some();
        let api_url = if set(ENV_API_REGION) {
            Source::Env(ENV_API_REGION)
        } else if let Some(u) = &g.api_url {
            Source::File {
                key: "genesys.api_url",
                line: self.line(u),
            }
        } else if set(ENV_REGION) {
            Source::Env(ENV_REGION)
        } else {
            Source::File {
                key: "genesys.region",
                line: g.region.as_ref().and_then(|r| self.line(r)),
            }
        };
        let login_url = match &g.login_url {
            Some(u) => Source::File {
                key: "genesys.login_url",
                line: self.line(u),
            },
            None => Source::Derived("the API URL (api. -> login.)"),
        };
        let client_id = if set(ENV_CLIENT_ID) {
            Source::Env(ENV_CLIENT_ID)
        } else {
            Source::File {
                key: "genesys.client_id",
                line: g.client_id.as_ref().and_then(|c| self.line(c)),
            }
        };
        let client_secret = if set(ENV_CLIENT_SECRET) {
            Source::Env(ENV_CLIENT_SECRET)
        } else if let Some(p) = &g.client_secret_file {
            Source::File {
                key: "genesys.client_secret_file",
                line: self.line(p),
            }
        } else {
            Source::CredentialsDirectory
        };
        Sources {
            api_url,
            login_url,
            client_id,
            client_secret,
        }
    }

    pub(super) fn secret(&self, g: &RawGenesys) -> Result<SecretString, ConfigError> {
        if let Some(s) = self.env.var(ENV_CLIENT_SECRET) {
            return Ok(SecretString::from(s.trim().to_owned()));
        }
        let (path, key, line) = if let Some(p) = &g.client_secret_file {
            (
                p.get_ref().clone(),
                "genesys.client_secret_file",
                self.line(p),
            )
        } else if let Some(dir) = self.env.var(ENV_CREDENTIALS_DIRECTORY) {
            (
                Path::new(&dir).join("client-secret"),
                ENV_CREDENTIALS_DIRECTORY,
                None,
            )
        } else {
            return Err(ConfigError::new(
                "genesys.client_secret_file",
                "no client secret was provided",
                format!(
                    "set the {ENV_CLIENT_SECRET} environment variable, point genesys.client_secret_file at a file \
                     holding the secret, or use systemd LoadCredential=client-secret:PATH"
                ),
            ));
        };
        let bytes = read_at_most(&path, MAX_SECRET_FILE).map_err(|e| {
            ConfigError::new(
                key,
                format!(
                    "cannot read the secret file {}: {}",
                    path.display(),
                    e.kind()
                ),
                "make the file exist and be readable by the daemon's user",
            )
            .at(line)
        })?;
        if bytes.len() as u64 > MAX_SECRET_FILE {
            return Err(ConfigError::new(
                key,
                format!(
                    "{} is larger than {} KiB, so it is not a client secret",
                    path.display(),
                    MAX_SECRET_FILE / 1024
                ),
                "point it at the file holding only the OAuth client secret",
            )
            .at(line));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            ConfigError::new(
                key,
                format!("the secret file {} is not UTF-8 text", path.display()),
                "write the OAuth client secret into it as plain text",
            )
            .at(line)
        })?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(ConfigError::new(
                key,
                format!("the secret file {} is empty", path.display()),
                "write the OAuth client secret into it",
            )
            .at(line));
        }
        Ok(SecretString::from(secret.to_owned()))
    }
}

/// A client secret is a few dozen bytes; anything past this is the wrong file.
pub(super) const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads up to `max + 1` bytes, so a secret file pointed at a device (`/dev/zero`) or a big
/// file by mistake is refused instead of hanging the loader or filling memory.
pub(super) fn read_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut buf)?;
    Ok(buf)
}
