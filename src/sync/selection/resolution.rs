//! One resolution of the configured selection: names, ids, patterns and divisions
//! turned into [`Target`]s (at most 5,000, the rows a table holds), and the same rules
//! for one queue ([`selects`]).

use std::collections::HashSet;

use crate::config::{Config, KeyBy};
use crate::genesys::datatable::MAX_ROWS;
use crate::genesys::queues::{self, Queue};
use crate::genesys::{ApiError, Client};
use crate::sync::target::Target;

/// The outcome of resolving the queue selection.
#[derive(Debug, Default, Clone)]
pub struct Resolution {
    pub targets: Vec<Target>,
    /// Configured names or ids that match no queue.
    pub missing: Vec<String>,
    /// Queues matched but left out because the table holds at most 5,000 rows.
    pub left_out: Vec<String>,
    /// Why a listing behind this resolution was not trusted to be complete (see
    /// [`queues::Listed`]); None when every listing checked out. A queue absent from an
    /// incomplete resolution is not gone.
    pub doubt: Option<String>,
}

/// Whether the configuration selects this queue (the rules of [`resolve`], for one queue).
pub fn selects(cfg: &Config, q: &Queue) -> bool {
    let sel = &cfg.selection;
    cfg.queue_ids.contains(&q.id)
        || cfg
            .queue_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&q.name))
        || (!sel.patterns.is_empty() || !sel.divisions.is_empty())
            && (sel.patterns.is_empty() || sel.patterns.iter().any(|p| glob_match(p, &q.name)))
            && (sel.divisions.is_empty() || in_divisions(q, &sel.divisions))
}

/// Up to this many names are looked up one request each; more are matched against one
/// paged listing of all queues (100 per page), which is cheaper for long lists.
const NAMES_PER_LOOKUP_LIMIT: usize = 5;

/// Case-insensitive match with `*` standing for any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn in_divisions(q: &Queue, divisions: &[String]) -> bool {
    divisions.iter().any(|d| {
        q.division
            .as_ref()
            .is_some_and(|div| div.id == *d || div.name.eq_ignore_ascii_case(d))
    })
}

/// Resolves the configured selection (names, ids, patterns, divisions) into targets.
pub async fn resolve(client: &Client, cfg: &Config) -> Result<Resolution, ApiError> {
    let sel = &cfg.selection;
    let listing = if cfg.queue_names.len() > NAMES_PER_LOOKUP_LIMIT
        || !sel.patterns.is_empty()
        || !sel.divisions.is_empty()
    {
        Some(queues::list_all(client).await?)
    } else {
        None
    };
    let mut res = Resolution::default();
    let mut seen = HashSet::new();
    let mut add = |res: &mut Resolution, q: Queue| {
        if seen.insert(q.id.clone()) {
            res.targets.push(target(cfg.key_by, q));
        }
    };
    if let Some(l) = &listing {
        res.doubt.clone_from(&l.doubt);
    }
    let names: Vec<(String, Option<Queue>)> = match &listing {
        Some(all) => queues::match_names(&all.queues, cfg.queue_names.iter().map(String::as_str)),
        None => {
            let mut v = Vec::new();
            for name in &cfg.queue_names {
                let (found, complete) = queues::lookup_name(client, name).await?;
                if !complete && res.doubt.is_none() {
                    res.doubt = Some(format!(
                        "the lookup of name \"{name}\" was not consistent with itself"
                    ));
                }
                v.push((name.clone(), found));
            }
            v
        }
    };
    for (name, found) in names {
        match found {
            Some(q) => add(&mut res, q),
            None => res.missing.push(format!("name \"{name}\"")),
        }
    }
    if !cfg.queue_ids.is_empty() {
        let found: Vec<Queue> = match &listing {
            Some(all) => all
                .queues
                .iter()
                .filter(|q| cfg.queue_ids.contains(&q.id))
                .cloned()
                .collect(),
            None => {
                let got = queues::find_by_ids(client, &cfg.queue_ids).await?;
                if res.doubt.is_none() {
                    res.doubt = got.doubt;
                }
                got.queues
            }
        };
        for id in &cfg.queue_ids {
            match found.iter().find(|q| &q.id == id) {
                Some(q) => add(&mut res, q.clone()),
                None => res.missing.push(format!("id {id}")),
            }
        }
    }
    if let Some(all) = &listing {
        let mut matched: Vec<&Queue> = all
            .queues
            .iter()
            .filter(|q| {
                let by_pattern = if sel.patterns.is_empty() {
                    !sel.divisions.is_empty()
                } else {
                    sel.patterns.iter().any(|p| glob_match(p, &q.name))
                };
                by_pattern && (sel.divisions.is_empty() || in_divisions(q, &sel.divisions))
            })
            .collect();
        matched.sort_by(|a, b| a.name.cmp(&b.name));
        for q in matched {
            add(&mut res, q.clone());
        }
    }
    if res.targets.len() > MAX_ROWS {
        let left: Vec<Target> = res.targets.split_off(MAX_ROWS);
        res.left_out = left.into_iter().map(|t| t.name.clone()).collect();
        let shown: Vec<&str> = res.left_out.iter().take(10).map(String::as_str).collect();
        tracing::warn!(
            selected = MAX_ROWS + res.left_out.len(),
            left_out = res.left_out.len(),
            first_left_out = %shown.join(", "),
            "the selection exceeds the 5,000 rows a data table holds; the queues past 5,000 (by configuration order, then name) are left out"
        );
    }
    Ok(res)
}

pub(super) fn target(key_by: KeyBy, q: Queue) -> Target {
    let key = match key_by {
        KeyBy::Name => q.name.clone(),
        KeyBy::Id => q.id.clone(),
    };
    Target::new(
        q.id,
        q.name,
        key,
        q.division.map(|d| d.name).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_case_insensitively_anywhere() {
        assert!(glob_match("Sales *", "sales EU"));
        assert!(glob_match("*Support", "Tech Support"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("Sales *", "Sales"));
        assert!(!glob_match("*Support", "Support desk"));
        assert!(glob_match("Über*", "übersicht"));
    }
}
