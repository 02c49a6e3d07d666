//! Raw file -> validated `Config`: every check, each error naming the key, the line and the fix.
//! The checks of `[genesys]` (URLs, the secret, their sources) are in `genesys.rs`, those of
//! `[columns]` in `columns.rs`.

use super::env::{ENV_CLIENT_ID, Env};
use super::error::ConfigError;
use super::raw::{RawConfig, RawPush, RawQueues, RawRows, RawSchedule, RawTable};
use super::source::LineIndex;
use super::validated::{
    Config, DEFAULT_PUSH_MIN_INTERVAL, KeyBy, Mode, OnVanish, PUSH_MIN_INTERVAL_RANGE, RowsPolicy,
    Schedule, Selection, TableRef, WriteMode,
};
use std::net::SocketAddr;
use std::time::Duration;
use toml::Spanned;

/// Requests per minute Genesys Cloud allows one OAuth token (client credentials).
pub const GENESYS_TOKEN_RPM: u32 = 300;

/// The sections of [`RawConfig`], for the "known sections" hint (a unit test keeps the
/// list equal to the fields serde accepts).
pub const SECTIONS: &[&str] = &[
    "genesys", "table", "queues", "rows", "schedule", "limits", "http", "columns", "log", "push",
];

pub(super) struct Validator<'a> {
    pub(super) lines: &'a LineIndex,
    pub(super) env: &'a dyn Env,
}

impl Validator<'_> {
    pub(super) fn line<T>(&self, s: &Spanned<T>) -> Option<usize> {
        Some(self.lines.line(s.span().start))
    }

    pub(super) fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let g = raw.genesys;
        if let Some(inline) = &g.client_secret {
            return Err(ConfigError::new(
                "genesys.client_secret",
                "the client secret must not be written in the config file",
                "remove it and provide the secret through the GENESYSCLOUD_OAUTHCLIENT_SECRET environment variable, \
                 genesys.client_secret_file, or systemd LoadCredential=client-secret:...",
            )
            .at(self.line(inline)));
        }
        let (api_url, login_url) = self.urls(&g)?;
        let client_id = match self.env.var(ENV_CLIENT_ID) {
            Some(id) => id,
            None => match &g.client_id {
                Some(id) if !id.get_ref().trim().is_empty() => id.get_ref().trim().to_owned(),
                Some(id) => {
                    return Err(ConfigError::new(
                        "genesys.client_id",
                        "is empty",
                        "set it to the OAuth client id (Admin > Integrations > OAuth, Client Credentials grant)",
                    )
                    .at(self.line(id)));
                }
                None => {
                    return Err(ConfigError::new(
                        "genesys.client_id",
                        "is missing",
                        format!(
                            "set genesys.client_id or the {ENV_CLIENT_ID} environment variable to the OAuth client id"
                        ),
                    ));
                }
            },
        };
        let client_secret = self.secret(&g)?;
        let request_timeout = match &g.request_timeout {
            None => Duration::from_secs(10),
            Some(s) => self.duration("genesys.request_timeout", s, Duration::from_millis(100))?,
        };

        let (table, key_by, write_mode, table_owned) = self.table(raw.table)?;
        let rows = self.rows(&raw.rows)?;
        self.heartbeat_collision(&raw.rows, &raw.queues, key_by, &rows)?;
        let (queue_names, queue_ids, selection, resolve_every) = self.queues(raw.queues)?;
        let columns = self.columns(raw.columns)?;

        let schedule = match &raw.schedule.cron {
            None => Schedule::parse("0 * * * * *").map_err(|e| {
                ConfigError::new("schedule.cron", e, "report this bug: the default schedule is invalid")
            })?,
            Some(expr) => Schedule::parse(expr.get_ref().trim()).map_err(|e| {
                ConfigError::new(
                    "schedule.cron",
                    format!("`{}` is not a valid schedule: {e}", expr.get_ref()),
                    "use 6 fields with seconds, in UTC, e.g. \"0 * * * * *\" for every minute at :00",
                )
                .at(self.line(expr))
            })?,
        };
        if schedule.period < Duration::from_secs(10) {
            return Err(ConfigError::new(
                "schedule.cron",
                format!(
                    "fires every {}s, too often for the API budget",
                    schedule.period.as_secs()
                ),
                "run at most every 10 seconds; once a minute (\"0 * * * * *\") is the usual choice",
            )
            .at(raw.schedule.cron.as_ref().and_then(|c| self.line(c))));
        }

        let mode = self.mode(&raw.schedule)?;
        let push_min_interval = self.push_min_interval(&raw.push)?;

        let requests_per_minute = match &raw.limits.requests_per_minute {
            None => 240,
            Some(v) => self.int_in("limits.requests_per_minute", v, 10, 10_000)? as u32,
        };
        let mut warnings = Vec::new();
        if requests_per_minute > GENESYS_TOKEN_RPM {
            warnings.push(format!(
                "limits.requests_per_minute = {requests_per_minute} is above the about {GENESYS_TOKEN_RPM} \
                 requests per minute one OAuth token allows: expect 429 answers and waits; \
                 240 leaves headroom"
            ));
        }
        let write_concurrency = match &raw.limits.write_concurrency {
            None => 4,
            Some(v) => self.int_in("limits.write_concurrency", v, 1, 32)? as usize,
        };
        let queues_per_query = match &raw.limits.queues_per_query {
            None => crate::genesys::observations::MAX_QUEUES_PER_QUERY,
            Some(v) => self.int_in(
                "limits.queues_per_query",
                v,
                1,
                crate::genesys::observations::MAX_QUEUES_PER_QUERY as i64,
            )? as usize,
        };
        let http_listen = match &raw.http.listen {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            Some(s) if s.get_ref().trim().is_empty() || s.get_ref() == "off" => None,
            Some(s) => Some(parse_listen(s.get_ref()).ok_or_else(|| {
                ConfigError::new(
                    "http.listen",
                    format!("`{}` is not an address", s.get_ref()),
                    "use IP:PORT such as \"127.0.0.1:9464\", \":9464\" for every interface (in a container), or \"off\"",
                )
                .at(self.line(s))
            })?),
        };

        let log_level = match &raw.log.level {
            None => None,
            Some(l) => Some(crate::telemetry::parse_log_level(l.get_ref()).map_err(|problem| {
                ConfigError::new(
                    "log.level",
                    problem,
                    "use error, warn, info, debug or trace, or a filter such as \"info,genesys_queue_sync=debug\"",
                )
                .at(self.line(l))
            })?),
        };

        Ok(Config {
            sources: self.sources(&g),
            api_url,
            login_url,
            client_id,
            client_secret,
            request_timeout,
            table,
            key_by,
            write_mode,
            table_owned,
            queue_names,
            queue_ids,
            selection,
            resolve_every,
            schedule,
            mode,
            push_min_interval,
            requests_per_minute,
            write_concurrency,
            queues_per_query,
            http_listen,
            rows,
            columns,
            queue_metrics: raw.http.queue_metrics.unwrap_or(true),
            log_level,
            warnings,
        })
    }

    pub(super) fn rows(&self, r: &RawRows) -> Result<RowsPolicy, ConfigError> {
        let mut p = RowsPolicy::default();
        if let Some(s) = &r.refresh_after {
            p.refresh_after = self.duration("rows.refresh_after", s, Duration::from_secs(60))?;
        }
        if let Some(k) = &r.heartbeat_key {
            let k = k.get_ref().trim();
            p.heartbeat_key = (!k.is_empty() && k != "off").then(|| k.to_owned());
        }
        Ok(p)
    }

    /// The heartbeat row must not be a queue's row: it would overwrite that queue's counts
    /// with a row of none. Row keys are compared case-insensitively (queue names are
    /// matched so, and whether the table's keys are case-sensitive is not documented).
    pub(super) fn heartbeat_collision(
        &self,
        r: &RawRows,
        q: &RawQueues,
        key_by: KeyBy,
        rows: &RowsPolicy,
    ) -> Result<(), ConfigError> {
        let Some(hb) = &rows.heartbeat_key else {
            return Ok(());
        };
        let (list, what, list_key) = match key_by {
            KeyBy::Name => (&q.names, "name", "queues.names"),
            KeyBy::Id => (&q.ids, "id", "queues.ids"),
        };
        let Some(clash) = list
            .iter()
            .find(|n| n.get_ref().trim().eq_ignore_ascii_case(hb))
        else {
            return Ok(());
        };
        let fix = "set rows.heartbeat_key to a key no queue uses (e.g. \"_genesys_queue_sync_heartbeat\"), or \"off\"";
        let problem = format!(
            "the heartbeat row key `{hb}` is also the row key of a configured queue ({what} `{}`): \
             the heartbeat would overwrite that queue's row with a row of no counts",
            clash.get_ref().trim()
        );
        Err(match &r.heartbeat_key {
            Some(k) => ConfigError::new("rows.heartbeat_key", problem, fix).at(self.line(k)),
            // The default key: point at the queue, the line the user wrote.
            None => ConfigError::new(list_key, problem, fix).at(self.line(clash)),
        })
    }

    pub(super) fn table(
        &self,
        raw: Option<RawTable>,
    ) -> Result<(TableRef, KeyBy, WriteMode, bool), ConfigError> {
        let Some(t) = raw else {
            return Err(ConfigError::new(
                "table",
                "the [table] section is missing",
                "add [table] with name = \"QueueAgentCounts\" (or id = \"...\") and key = \"name\" or \"id\"",
            ));
        };
        let table = match (&t.name, &t.id) {
            (Some(_), Some(id)) => {
                return Err(ConfigError::new(
                    "table.id",
                    "both table.name and table.id are set",
                    "keep only one of them",
                )
                .at(self.line(id)));
            }
            (Some(n), None) if !n.get_ref().trim().is_empty() => {
                TableRef::Name(n.get_ref().trim().to_owned())
            }
            (None, Some(id)) if !id.get_ref().trim().is_empty() => {
                TableRef::Id(id.get_ref().trim().to_owned())
            }
            (n, id) => {
                return Err(ConfigError::new(
                    "table.name",
                    "no table is named",
                    "set table.name to the data table's name (e.g. \"QueueAgentCounts\") or table.id to its id",
                )
                .at(n.as_ref().or(id.as_ref()).and_then(|s| self.line(s))));
            }
        };
        let key_by = match t.key.as_ref().map(|k| (k.get_ref().as_str(), k)) {
            None | Some(("name", _)) => KeyBy::Name,
            Some(("id", _)) => KeyBy::Id,
            Some((other, k)) => {
                return Err(ConfigError::new(
                    "table.key",
                    format!("`{other}` is not a row key kind"),
                    "use key = \"name\" (rows keyed by queue name) or key = \"id\" (by queue id)",
                )
                .at(self.line(k)));
            }
        };
        let owned = t.owned.as_ref().is_some_and(|o| *o.get_ref());
        let write_mode = match t.write_mode.as_ref().map(|m| (m.get_ref().as_str(), m)) {
            None | Some(("rows", _)) => WriteMode::Rows,
            Some(("import", _)) => WriteMode::Import,
            Some(("auto", _)) => WriteMode::Auto,
            Some((other, m)) => {
                return Err(ConfigError::new(
                    "table.write_mode",
                    format!("`{other}` is not a write mode"),
                    "use \"rows\" (one request per row), \"import\" (one CSV import per cycle) or \"auto\"",
                )
                .at(self.line(m)));
            }
        };
        Ok((table, key_by, write_mode, owned))
    }

    pub(super) fn queues(
        &self,
        q: RawQueues,
    ) -> Result<(Vec<String>, Vec<String>, Selection, Duration), ConfigError> {
        let mut names = Vec::new();
        for n in &q.names {
            let name = n.get_ref().trim();
            if name.is_empty() {
                return Err(ConfigError::new(
                    "queues.names",
                    "contains an empty name",
                    "remove the empty entry",
                )
                .at(self.line(n)));
            }
            if !names.iter().any(|x: &String| x == name) {
                names.push(name.to_owned());
            }
        }
        let mut ids = Vec::new();
        for i in &q.ids {
            let id = i.get_ref().trim();
            if id.is_empty() || id.contains(['/', '?', '#', ' ']) {
                return Err(ConfigError::new(
                    "queues.ids",
                    format!("`{id}` is not a queue id"),
                    "use queue ids as shown in the queue's URL in Genesys Cloud admin (a UUID)",
                )
                .at(self.line(i)));
            }
            if !ids.iter().any(|x: &String| x == id) {
                ids.push(id.to_owned());
            }
        }
        let mut patterns = Vec::new();
        for p in &q.patterns {
            let pat = p.get_ref().trim();
            if pat.is_empty() || pat.chars().all(|c| c == '*') && !q.divisions.is_empty() {
                return Err(ConfigError::new(
                    "queues.match",
                    format!("`{pat}` selects nothing useful"),
                    "write a name pattern such as \"Sales *\" (use * as a wildcard), or use queues.divisions alone",
                )
                .at(self.line(p)));
            }
            patterns.push(pat.to_owned());
        }
        let mut divisions = Vec::new();
        for d in &q.divisions {
            let div = d.get_ref().trim();
            if div.is_empty() {
                return Err(ConfigError::new(
                    "queues.divisions",
                    "contains an empty entry",
                    "remove it",
                )
                .at(self.line(d)));
            }
            divisions.push(div.to_owned());
        }
        let on_vanish = match q.on_vanish.as_ref().map(|v| (v.get_ref().as_str(), v)) {
            None | Some(("keep", _)) => OnVanish::Keep,
            Some(("delete", _)) => OnVanish::Delete,
            Some((other, v)) => {
                return Err(ConfigError::new(
                    "queues.on_vanish",
                    format!("`{other}` is not an option"),
                    "use \"keep\" (leave the row of a vanished queue) or \"delete\" (remove it)",
                )
                .at(self.line(v)));
            }
        };
        if names.is_empty() && ids.is_empty() && patterns.is_empty() && divisions.is_empty() {
            return Err(ConfigError::new(
                "queues.names",
                "no queues are configured",
                "list queue names in queues.names = [\"Sales\"], queue ids in queues.ids, \
                 name patterns in queues.match, or divisions in queues.divisions",
            ));
        }
        if names.len() + ids.len() > 5000 {
            return Err(ConfigError::new(
                "queues.names",
                format!("{} queues are configured", names.len() + ids.len()),
                "a data table holds at most 5,000 rows: configure at most 5,000 queues",
            ));
        }
        let resolve_every = match &q.resolve_every {
            None => Duration::from_secs(600),
            Some(s) => self.duration("queues.resolve_every", s, Duration::from_secs(60))?,
        };
        let selection = Selection {
            patterns,
            divisions,
            on_vanish,
        };
        Ok((names, ids, selection, resolve_every))
    }

    pub(super) fn mode(&self, s: &RawSchedule) -> Result<Mode, ConfigError> {
        let Some(m) = &s.mode else {
            return Ok(Mode::Poll);
        };
        match m.get_ref().trim().to_ascii_lowercase().as_str() {
            "poll" => Ok(Mode::Poll),
            "push" => Ok(Mode::Push),
            other => Err(ConfigError::new(
                "schedule.mode",
                format!("`{other}` is not a mode"),
                "use \"poll\" (every cron tick observes and writes) or \"push\" (rows follow Notifications API events within seconds; the cron schedule reconciles)",
            )
            .at(self.line(m))),
        }
    }

    pub(super) fn push_min_interval(&self, p: &RawPush) -> Result<Duration, ConfigError> {
        let Some(s) = &p.min_interval else {
            return Ok(DEFAULT_PUSH_MIN_INTERVAL);
        };
        let (min, max) = PUSH_MIN_INTERVAL_RANGE;
        let d = self.duration("push.min_interval", s, min)?;
        if d > max {
            return Err(ConfigError::new(
                "push.min_interval",
                format!(
                    "`{}` is too long: push would be slower than polling",
                    s.get_ref()
                ),
                format!(
                    "use at most {} (the default is {}), or mode = \"poll\"",
                    humantime::format_duration(max),
                    humantime::format_duration(DEFAULT_PUSH_MIN_INTERVAL)
                ),
            )
            .at(self.line(s)));
        }
        Ok(d)
    }

    pub(super) fn duration(
        &self,
        key: &str,
        s: &Spanned<String>,
        min: Duration,
    ) -> Result<Duration, ConfigError> {
        let d = humantime::parse_duration(s.get_ref().trim()).map_err(|e| {
            ConfigError::new(
                key,
                format!("`{}` is not a duration: {e}", s.get_ref()),
                "write a duration such as \"10s\", \"5m\" or \"1h\"",
            )
            .at(self.line(s))
        })?;
        if d < min {
            return Err(ConfigError::new(
                key,
                format!("`{}` is too short", s.get_ref()),
                format!("use at least {}", humantime::format_duration(min)),
            )
            .at(self.line(s)));
        }
        Ok(d)
    }

    pub(super) fn int_in(
        &self,
        key: &str,
        v: &Spanned<i64>,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::new(
                key,
                format!("{n} is out of range"),
                format!("use a whole number from {min} to {max}"),
            )
            .at(self.line(v)))
        }
    }
}

/// Parses `http.listen`: `IP:PORT`, `[IPv6]:PORT`, or `:PORT` for every IPv4 interface
/// (the Go and Prometheus convention, `0.0.0.0:PORT`).
pub fn parse_listen(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        return port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from(([0, 0, 0, 0], p)));
    }
    s.parse().ok()
}
