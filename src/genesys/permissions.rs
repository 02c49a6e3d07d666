//! Every Genesys Cloud call the daemon makes, with the permission(s) it needs: the one
//! table `check` names permissions from and the README's permissions table is rendered
//! from (a test holds the two equal).
//!
//! Permissions are those of the official API spec (`x-inin-requires-permissions`). Every
//! endpoint here lists them with type ANY: a role holding any one of them is enough, so
//! each row-level permission is also accepted as the table-level `architect:datatable:*`
//! one. A missing permission answers 403 `missing.permissions` or `missing.any.permissions`
//! with the list in brackets; a role granted only in some divisions answers 403 (or "not
//! found") for queues and tables in the others.

use super::ApiError;

/// One API call of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Login,
    ListQueues,
    GetQueue,
    ObserveQueues,
    FindTable,
    GetTable,
    ReadRows,
    CreateRow,
    UpdateRow,
    DeleteRow,
    CreateImport,
    Upload,
    PollImport,
    CreateTable,
    AddColumns,
    CreateChannel,
    Subscribe,
    ListChannels,
    Unsubscribe,
    Socket,
}

/// What the table says about a call.
#[derive(Debug)]
pub struct Entry {
    pub call: Call,
    pub method: &'static str,
    pub path: &'static str,
    /// Any one of these admits the call; empty when it needs none.
    pub any_of: &'static [&'static str],
    /// When the daemon makes the call.
    pub when: &'static str,
    /// How many of them a cycle costs.
    pub per_cycle: &'static str,
}

/// The table, in the order a cycle meets the calls.
pub const TABLE: &[Entry] = &[
    Entry {
        call: Call::Login,
        method: "POST",
        path: "https://login.<domain>/oauth/token",
        any_of: &[],
        when: "at start, and when the token nears its expiry (24 h)",
        per_cycle: "0",
    },
    Entry {
        call: Call::ListQueues,
        method: "GET",
        path: "/api/v2/routing/queues",
        any_of: &["routing:queue:view"],
        when: "resolving the selection (at start and every `queues.resolve_every`); with `key = \"name\"`, confirming by id the names of the queues whose rows a cycle writes, before writing, and every `rows.refresh_after` all of them",
        per_cycle: "⌈rows written/100⌉ with `key = \"name\"` (⌈queues/100⌉ once per `rows.refresh_after`), else 0 (one per name, or ⌈all queues/100⌉ pages, per resolve)",
    },
    Entry {
        call: Call::GetQueue,
        method: "GET",
        path: "/api/v2/routing/queues/{queueId}",
        any_of: &["routing:queue:view"],
        when: "`queues.ids`, and a queue missing from an observation answer",
        per_cycle: "0 (1 per such queue)",
    },
    Entry {
        call: Call::ObserveQueues,
        method: "POST",
        path: "/api/v2/analytics/queues/observations/query",
        any_of: &["analytics:queueObservation:view"],
        when: "every cycle",
        per_cycle: "⌈queues/`limits.queues_per_query`⌉ (100 by default)",
    },
    Entry {
        call: Call::FindTable,
        method: "GET",
        path: "/api/v2/flows/datatables",
        any_of: &["architect:datatable:view"],
        when: "finding `table.name`: at start and after the table was lost",
        per_cycle: "0",
    },
    Entry {
        call: Call::GetTable,
        method: "GET",
        path: "/api/v2/flows/datatables/{datatableId}",
        any_of: &["architect:datatable:view"],
        when: "`table.id`, and reading the schema at start",
        per_cycle: "0",
    },
    Entry {
        call: Call::ReadRows,
        method: "GET",
        path: "/api/v2/flows/datatables/{datatableId}/rows",
        any_of: &["architect:datatableRow:view", "architect:datatable:view"],
        when: "reading what the table holds: at start (all pages) and after an import",
        per_cycle: "0 (⌈rows/100⌉ per read)",
    },
    Entry {
        call: Call::CreateRow,
        method: "POST",
        path: "/api/v2/flows/datatables/{datatableId}/rows",
        any_of: &["architect:datatableRow:add", "architect:datatable:add"],
        when: "rows mode: a queue's first row, the heartbeat row's first write",
        per_cycle: "1 per new row",
    },
    Entry {
        call: Call::UpdateRow,
        method: "PUT",
        path: "/api/v2/flows/datatables/{datatableId}/rows/{key}",
        any_of: &["architect:datatableRow:edit", "architect:datatable:edit"],
        when: "rows mode: a row whose values changed or that is `rows.refresh_after` old; the heartbeat row",
        per_cycle: "1 per changed or due row, + 1 heartbeat",
    },
    Entry {
        call: Call::DeleteRow,
        method: "DELETE",
        path: "/api/v2/flows/datatables/{datatableId}/rows/{key}",
        any_of: &[
            "architect:datatableRow:delete",
            "architect:datatable:delete",
        ],
        when: "`queues.on_vanish = \"delete\"`: the row of a queue that left the selection",
        per_cycle: "1 per queue that left",
    },
    Entry {
        call: Call::CreateImport,
        method: "POST",
        path: "/api/v2/flows/datatables/{datatableId}/import/csv/jobs",
        any_of: &["architect:datatableRow:add", "architect:datatable:edit"],
        when: "`table.write_mode = \"import\"` (or `auto` over budget)",
        per_cycle: "1 per import cycle",
    },
    Entry {
        call: Call::Upload,
        method: "PUT",
        path: "the job's `uploadURI` (pre-signed)",
        any_of: &[],
        when: "import cycles: the CSV file",
        per_cycle: "1 per import cycle (not an API request)",
    },
    Entry {
        call: Call::PollImport,
        method: "GET",
        path: "/api/v2/flows/datatables/{datatableId}/import/jobs/{importJobId}",
        any_of: &["architect:datatableRow:view", "architect:datatable:view"],
        when: "import cycles: until the job ends",
        per_cycle: "a few per import cycle",
    },
    Entry {
        call: Call::CreateTable,
        method: "POST",
        path: "/api/v2/flows/datatables",
        any_of: &["architect:datatable:add"],
        when: "`table create` only",
        per_cycle: "0",
    },
    Entry {
        call: Call::AddColumns,
        method: "PUT",
        path: "/api/v2/flows/datatables/{datatableId}",
        any_of: &["architect:datatable:edit"],
        when: "`table create` on an existing table that lacks columns",
        per_cycle: "0",
    },
    Entry {
        call: Call::CreateChannel,
        method: "POST",
        path: "/api/v2/notifications/channels",
        any_of: &[],
        when: "push mode: at start and when the channel expires",
        per_cycle: "0",
    },
    Entry {
        call: Call::Subscribe,
        method: "PUT",
        path: "/api/v2/notifications/channels/{channelId}/subscriptions",
        any_of: &[],
        when: "push mode: the selected queues' observation topics, after each resolve, and once a day per channel (renewal)",
        per_cycle: "0",
    },
    Entry {
        call: Call::ListChannels,
        method: "GET",
        path: "/api/v2/notifications/channels",
        any_of: &[],
        when: "push mode: a renewed channel's new expiry (once a day per channel); `check` counts the client's channels",
        per_cycle: "0",
    },
    Entry {
        call: Call::Unsubscribe,
        method: "DELETE",
        path: "/api/v2/notifications/channels/{channelId}/subscriptions",
        any_of: &[],
        when: "`check` in push mode only: empties the channel it created",
        per_cycle: "0",
    },
    Entry {
        call: Call::Socket,
        method: "GET",
        path: "the channel's `connectUri` (WebSocket)",
        any_of: &[],
        when: "push mode: one socket per channel, reopened after a drop",
        per_cycle: "0 (not an API request)",
    },
];

/// The table's entry for a call.
pub fn entry(call: Call) -> &'static Entry {
    TABLE.iter().find(|e| e.call == call).unwrap_or(&TABLE[0])
}

/// The entry of the request `method path` the client sends (a path with ids, no query):
/// `{…}` in the table's path stands for any one segment. None for calls not in the table.
pub fn for_request(method: &str, path: &str) -> Option<&'static Entry> {
    TABLE
        .iter()
        .find(|e| e.method == method && path_matches(e.path, path))
}

fn path_matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                let any = ts.starts_with('{') && ts.ends_with('}') && !ps.is_empty();
                if !any && ts != ps {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Whose division a call's 403 is about, for [`explain_403`]'s fix.
pub fn scope(call: Call) -> &'static str {
    match call {
        Call::ListQueues | Call::GetQueue | Call::ObserveQueues => "the queues",
        Call::Login
        | Call::CreateChannel
        | Call::Subscribe
        | Call::ListChannels
        | Call::Unsubscribe
        | Call::Socket => "the OAuth client",
        _ => "the table",
    }
}

impl Entry {
    /// "a or b", as a role must hold one of them.
    pub fn needs(&self) -> String {
        if self.any_of.is_empty() {
            return "none".to_owned();
        }
        self.any_of
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// The permissions a 403 body lists in brackets (both documented codes), if any.
pub fn listed(message: &str) -> Vec<String> {
    let Some(start) = message.rfind('[') else {
        return Vec::new();
    };
    let rest = &message[start + 1..];
    let inner = rest.split(']').next().unwrap_or_default();
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// For a 403 on `call`: which permission(s) the call needs and the two ways to get them.
/// None when `err` is not a 403.
pub fn explain_403(call: Call, err: &ApiError, scope: &str) -> Option<String> {
    let ApiError::Status {
        status: 403,
        code,
        message,
        ..
    } = err
    else {
        return None;
    };
    let e = entry(call);
    let said = listed(message);
    let mut line = if e.any_of.is_empty() && !said.is_empty() {
        // A call the spec lists no permission for (a notification topic's): what Genesys
        // names is all there is to go by.
        format!(
            "403 {code}: `{} {}` needs {} (as Genesys lists it)",
            e.method,
            e.path,
            said.iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    } else {
        format!("403 {code}: `{} {}` needs {}", e.method, e.path, e.needs())
    };
    if !e.any_of.is_empty()
        && !said.is_empty()
        && said.iter().any(|p| !e.any_of.contains(&p.as_str()))
    {
        line.push_str(&format!(" (Genesys lists: {})", said.join(", ")));
    }
    line.push_str(&format!(
        "; fix: add it to a role of the OAuth client, granted in the division that holds {scope} \
         (a role granted only in other divisions answers 403 too)"
    ));
    Some(line)
}

/// The README's permissions table (markdown), rendered from [`TABLE`].
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Method | Path | Permission (any one) | When | Requests per cycle |\n|---|---|---|---|---|\n",
    );
    for e in TABLE {
        let path = if e.path.starts_with('/') || e.path.starts_with("https://") {
            format!("`{}`", e.path)
        } else {
            e.path.to_owned()
        };
        out.push_str(&format!(
            "| {} | {path} | {} | {} | {} |\n",
            e.method,
            e.needs(),
            e.when,
            e.per_cycle
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README shows this very table: a permission added to the code and not to the
    /// README (or the other way round) fails here.
    #[test]
    fn readme_permissions_table_is_the_code_table() {
        let readme = include_str!("../../README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's permissions table differs from src/genesys/permissions.rs; paste this:\n{table}"
        );
    }

    #[test]
    fn every_call_has_one_entry() {
        for e in TABLE {
            assert_eq!(TABLE.iter().filter(|o| o.call == e.call).count(), 1);
            assert_eq!(entry(e.call).call, e.call);
        }
    }

    #[test]
    fn both_documented_403_bodies_are_read() {
        assert_eq!(
            listed(
                "Unable to perform the requested action. You are missing the following permission(s): [analytics:queueObservation:view]"
            ),
            ["analytics:queueObservation:view"]
        );
        assert_eq!(
            listed(
                "Unable to perform the requested action. You must have at least one of the following permissions assigned: [architect:datatable:edit, architect:datatableRow:edit]"
            ),
            ["architect:datatable:edit", "architect:datatableRow:edit"]
        );
        assert!(listed("no list").is_empty());
    }

    #[test]
    fn requests_find_their_entry_by_method_and_path() {
        let found = |m: &str, p: &str| for_request(m, p).map(|e| e.call);
        let table = "/api/v2/flows/datatables/0a1b";
        assert_eq!(found("GET", table), Some(Call::GetTable));
        assert_eq!(found("PUT", table), Some(Call::AddColumns));
        assert_eq!(
            found("GET", "/api/v2/flows/datatables"),
            Some(Call::FindTable)
        );
        assert_eq!(
            found("POST", "/api/v2/flows/datatables"),
            Some(Call::CreateTable)
        );
        assert_eq!(found("GET", &format!("{table}/rows")), Some(Call::ReadRows));
        assert_eq!(
            found("POST", &format!("{table}/rows")),
            Some(Call::CreateRow)
        );
        assert_eq!(
            found("PUT", &format!("{table}/rows/Sales%20EU")),
            Some(Call::UpdateRow)
        );
        assert_eq!(
            found("DELETE", &format!("{table}/rows/Sales")),
            Some(Call::DeleteRow)
        );
        assert_eq!(
            found("POST", "/api/v2/analytics/queues/observations/query"),
            Some(Call::ObserveQueues)
        );
        assert_eq!(
            found("GET", "/api/v2/routing/queues/q1"),
            Some(Call::GetQueue)
        );
        assert_eq!(
            found("GET", "/api/v2/routing/queues"),
            Some(Call::ListQueues)
        );
        // An id is one segment, never none or several.
        assert_eq!(found("GET", "/api/v2/routing/queues/"), None);
        assert_eq!(found("GET", "/api/v2/routing/queues/a/b"), None);
        assert_eq!(found("DELETE", "/api/v2/routing/queues/q1"), None);
    }

    #[test]
    fn a_403_names_the_permission_and_divisions() {
        let e = ApiError::Status {
            endpoint: "queue_observations",
            status: 403,
            code: "missing.permissions".into(),
            message: "... permission(s): [analytics:queueObservation:view]".into(),
        };
        let line = explain_403(Call::ObserveQueues, &e, "the queues").unwrap_or_default();
        assert!(
            line.contains("needs `analytics:queueObservation:view`"),
            "{line}"
        );
        assert!(line.contains("division that holds the queues"), "{line}");
        assert!(!line.contains("Genesys lists"), "{line}");
        // A list that differs from the table's is shown too.
        let other = ApiError::Status {
            endpoint: "x",
            status: 403,
            code: "missing.permissions".into(),
            message: "[analytics:something:else]".into(),
        };
        let line = explain_403(Call::ObserveQueues, &other, "the queues").unwrap_or_default();
        assert!(
            line.contains("Genesys lists: analytics:something:else"),
            "{line}"
        );
        let not_403 = ApiError::Status {
            endpoint: "x",
            status: 404,
            code: "not.found".into(),
            message: String::new(),
        };
        assert!(explain_403(Call::ObserveQueues, &not_403, "x").is_none());
    }
}
