//! Which queues the daemon owns a row for: the configured names, ids, patterns and
//! divisions resolved into [`Target`]s, re-resolved every `resolve_every` and after a
//! queue went missing, with the queues that left the selection remembered for deletion.
//! One resolution, from the configuration to targets, is `resolution`.

mod resolution;

use std::collections::{HashMap, HashSet};

use tokio::time::Instant;

use crate::config::{Config, KeyBy, OnVanish};
use crate::genesys::datatable::MAX_ROWS;
use crate::genesys::queues::{self, Queue};
use crate::genesys::{ApiError, Client};
pub use crate::sync::target::{Target, TargetData};
use resolution::target;
pub use resolution::{Resolution, glob_match, resolve, selects};

/// The selection as it stands between cycles.
///
/// A queue leaves the selection only on evidence: `GET /api/v2/routing/queues/{id}`
/// answers 404 (deleted), or answers with a queue that no longer matches the
/// configuration (renamed, moved to another division), or it was missing from two
/// consecutive complete resolutions while that lookup kept failing. A listing that is not
/// consistent with itself (see [`queues::Listed`]) removes nothing.
#[derive(Debug, Default)]
pub struct Selection {
    targets: Vec<Target>,
    resolved_at: Option<Instant>,
    resolve_requested: bool,
    /// Keys of queues that left the selection, to delete (on_vanish = "delete").
    vanished: Vec<String>,
    /// Queue ids missing from complete resolutions whose lookup failed: how many
    /// resolutions in a row.
    unconfirmed: HashMap<String, u32>,
    /// Queue ids missing from an observation answer to look up by id at the next cycle.
    to_confirm: Vec<String>,
    /// Queue ids missing from an observation answer that were looked up and exist: not
    /// looked up again before the next full resolution (`resolve_every`).
    known_unobserved: HashSet<String>,
    /// Row keys a renamed queue gave up this cycle (rows keyed by name): another queue
    /// may take them at the resolution that follows.
    released: Vec<String>,
    /// Row keys now written from another queue than before: what the table holds for
    /// them came from the queue that had the key, so it is not to be trusted.
    rekeyed: Vec<String>,
    /// Configured names and ids the last resolution did not find (`name "X"`, `id Y`).
    missing: Vec<String>,
    /// When every selected queue's name was last read (a resolution, or a confirmation
    /// of them all).
    names_read_at: Option<Instant>,
}

/// Which selected queues' names a cycle confirms by id before it writes (rows keyed by
/// name: a renamed queue must not write its old name's row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameCheck {
    /// None: rows are keyed by id, or this cycle's resolution read every name.
    None,
    /// The queues whose rows this cycle writes, [`queues::IDS_PER_REQUEST`] per request.
    Written,
    /// Every selected queue: their names were last read `rows.refresh_after` ago, so a
    /// rename of a queue whose row is not written is noticed too (and a queue that
    /// took the old name gets the row).
    All,
}

impl NameCheck {
    /// Requests a confirmation of `n` queues costs.
    pub fn cost(n: usize) -> usize {
        n.div_ceil(queues::IDS_PER_REQUEST)
    }
}

/// What a lookup by id says about a target.
enum Confirmed {
    /// 404: the queue is gone.
    Gone,
    /// The queue exists and the configuration still selects it, as this target.
    Kept(Target),
    /// The queue exists but the configuration no longer selects it (renamed, moved).
    LeftSelection(Queue),
}

impl Selection {
    /// Configured names and ids the last resolution did not find.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Queues missing from an observation answer (deleted, not visible to analytics, or
    /// with nothing to report): each is looked up by id at the next cycle, one request,
    /// instead of listing every queue again; one found to exist is not looked up again
    /// before the next resolution at `resolve_every`.
    pub fn missing_from_answer(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if !self.known_unobserved.contains(&id) && !self.to_confirm.contains(&id) {
                self.to_confirm.push(id);
            }
        }
    }

    /// Resolve again at the next cycle.
    pub fn request_resolve(&mut self) {
        self.resolve_requested = true;
    }

    /// The keys of vanished queues still to delete; a key that is back in the selection
    /// is dropped. What cannot be deleted now goes back through [`Self::retry_vanished`].
    pub fn take_vanished(&mut self) -> Vec<String> {
        let mut keys = std::mem::take(&mut self.vanished);
        keys.retain(|k| !self.targets.iter().any(|t| &t.key == k));
        keys.dedup();
        keys
    }

    pub fn retry_vanished(&mut self, keys: Vec<String>) {
        self.vanished.extend(keys);
    }

    /// Row keys that passed from one queue to another (a queue renamed, and another
    /// queue took its old name): the table's copy of those rows is the old queue's.
    pub fn take_rekeyed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.rekeyed)
    }

    /// Looks up queues missing from the last observation answer, then resolves the
    /// selection on the first cycle, every `resolve_every`, and when asked to (a rename
    /// asks). Returns whether it resolved (and so read every selected queue's name).
    pub async fn ensure(&mut self, client: &Client, cfg: &Config) -> Result<bool, ApiError> {
        if self.resolved_at.is_some() {
            self.confirm_missing(client, cfg).await?;
        }
        let due = match self.resolved_at {
            None => true,
            Some(at) => self.resolve_requested || at.elapsed() >= cfg.resolve_every,
        };
        if !due {
            return Ok(false);
        }
        let released = std::mem::take(&mut self.released);
        match resolve(client, cfg).await {
            Ok(res) => {
                let first = self.resolved_at.is_none();
                for m in &res.missing {
                    tracing::warn!(queue = %m, "no such queue in Genesys Cloud; check [queues]");
                }
                self.missing.clone_from(&res.missing);
                if res.targets.len() >= MAX_ROWS && cfg.rows.heartbeat_key.is_some() {
                    tracing::warn!(
                        queues = res.targets.len(),
                        "the queues fill the table's 5,000 rows, so the heartbeat row is not written (queue rows come first); select fewer queues to keep it"
                    );
                }
                let targets = if first {
                    res.targets
                } else {
                    self.reconcile(client, cfg, res).await?
                };
                warn_heartbeat_collisions(cfg, &self.targets, &targets);
                for t in targets.iter().filter(|t| released.contains(&t.key)) {
                    tracing::warn!(key = %t.key, queue = %t.name, id = %t.id, "the row key of a renamed queue now names another queue: the row is written from this queue from now on");
                    self.rekeyed.push(t.key.clone());
                }
                self.targets = targets;
                self.resolved_at = Some(Instant::now());
                self.names_read_at = self.resolved_at;
                self.resolve_requested = false;
                self.known_unobserved.clear();
                Ok(true)
            }
            Err(ApiError::Cancelled) => Err(ApiError::Cancelled),
            Err(e) if !self.targets.is_empty() => {
                // Keep writing the queues we know rather than stopping on a lookup hiccup.
                tracing::warn!(error = %e, "re-resolving queues failed; keeping the previous list");
                self.resolved_at = Some(Instant::now());
                // A key given up by a rename may still be taken: look again next time.
                self.released.extend(released);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Which names this cycle confirms before writing (see [`NameCheck`]); `resolved`:
    /// whether this cycle's [`Self::ensure`] resolved.
    pub fn name_check(&self, cfg: &Config, resolved: bool) -> NameCheck {
        if cfg.key_by != KeyBy::Name || resolved || self.targets.is_empty() {
            NameCheck::None
        } else if self
            .names_read_at
            .is_none_or(|at| at.elapsed() >= cfg.rows.refresh_after)
        {
            NameCheck::All
        } else {
            NameCheck::Written
        }
    }

    /// With rows keyed by name, a queue renamed (and another given its old name) must
    /// not go on writing the row of that name: before a cycle writes, the names of the
    /// queues `ids` (those it writes, or all of them every `rows.refresh_after`) are
    /// read by id, [`queues::IDS_PER_REQUEST`] per request (one request for up to 100
    /// queues, `concurrency` at a time). A renamed queue leaves its old key (and the
    /// selection, when the configuration no longer selects it) and a resolution is
    /// requested, which the cycle runs at once so a queue that took the old name gets
    /// the row. Returns whether a rename was found.
    pub async fn confirm_names(
        &mut self,
        client: &Client,
        cfg: &Config,
        ids: &[String],
        concurrency: usize,
    ) -> Result<bool, ApiError> {
        if cfg.key_by != KeyBy::Name || ids.is_empty() {
            return Ok(false);
        }
        let found = match queues::find_by_ids_concurrently(client, ids, concurrency).await {
            Ok(found) => found,
            Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
            Err(e) => {
                tracing::warn!(error = %e, "could not confirm the selected queues' names; rows are written under the names last confirmed");
                return Ok(false);
            }
        };
        if ids.len() >= self.targets.len() {
            self.names_read_at = Some(Instant::now());
        }
        let mut renamed = false;
        // A queue absent from this answer is not taken for gone here: the observation
        // answer and the lookup by id decide that.
        for q in found.queues {
            let Some(pos) = self.targets.iter().position(|t| t.id == q.id) else {
                continue;
            };
            if self.targets[pos].name == q.name {
                continue;
            }
            let old = self.targets[pos].clone();
            tracing::warn!(queue = %old.name, now_named = %q.name, id = %old.id, "queue renamed: its row key no longer names it, so it stops writing that row");
            if selects(cfg, &q) {
                let new = target(cfg.key_by, q);
                self.note_key_change(cfg, &old, &new);
                self.targets[pos] = new;
            } else {
                self.targets.remove(pos);
                self.leave(cfg, &old, &Confirmed::LeftSelection(q));
            }
            self.released.push(old.key.clone());
            self.resolve_requested = true;
            renamed = true;
        }
        Ok(renamed)
    }

    /// Whether `t` is still selected under the same row key (not renamed since it was
    /// observed).
    pub fn still_keyed(&self, t: &Target) -> bool {
        self.targets.iter().any(|s| s.id == t.id && s.key == t.key)
    }

    /// Looks up, one request each, the queues an observation answer left out.
    async fn confirm_missing(&mut self, client: &Client, cfg: &Config) -> Result<(), ApiError> {
        for id in std::mem::take(&mut self.to_confirm) {
            let Some(pos) = self.targets.iter().position(|t| t.id == id) else {
                continue;
            };
            match confirm(client, cfg, &id).await {
                Ok(Confirmed::Kept(t)) => {
                    tracing::info!(queue = %t.name, id = %t.id, "queue missing from the observation answer exists and is still selected; not looked up again before the next resolution");
                    self.known_unobserved.insert(id);
                    let old = std::mem::replace(&mut self.targets[pos], t.clone());
                    self.note_key_change(cfg, &old, &t);
                }
                Ok(other) => {
                    let old = self.targets.remove(pos);
                    self.leave(cfg, &old, &other);
                    // The name (or pattern) may be someone else's now.
                    self.resolve_requested = true;
                }
                Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
                Err(e) => {
                    tracing::warn!(id = %id, error = %e, "could not look up a queue missing from the observation answer; trying again next cycle");
                    self.to_confirm.push(id);
                }
            }
        }
        Ok(())
    }

    /// The new target list from a resolution: its targets, plus the previous targets it
    /// lacks that are not confirmed gone or out of the selection.
    async fn reconcile(
        &mut self,
        client: &Client,
        cfg: &Config,
        res: Resolution,
    ) -> Result<Vec<Target>, ApiError> {
        let mut targets = res.targets;
        let now: HashSet<String> = targets.iter().map(|t| t.id.clone()).collect();
        let old = std::mem::take(&mut self.targets);
        let before: HashSet<&str> = old.iter().map(|t| t.key.as_str()).collect();
        let added: Vec<&Target> = targets
            .iter()
            .filter(|t| !before.contains(t.key.as_str()))
            .collect();
        if !added.is_empty() {
            tracing::info!(added = added.len(), "new queues joined the selection");
        }
        for t in &old {
            if now.contains(&t.id) {
                self.unconfirmed.remove(&t.id);
                if let Some(n) = targets.iter().find(|n| n.id == t.id) {
                    let n = n.clone();
                    self.note_key_change(cfg, t, &n);
                }
                continue;
            }
            if let Some(doubt) = &res.doubt {
                tracing::warn!(queue = %t.name, id = %t.id, doubt = %doubt, "queue absent from a queue listing that is not consistent with itself; kept");
                targets.push(t.clone());
                continue;
            }
            match confirm(client, cfg, &t.id).await {
                Ok(Confirmed::Kept(n)) => {
                    tracing::warn!(queue = %n.name, id = %n.id, "queue absent from the listing but found by id and still selected; kept");
                    self.unconfirmed.remove(&t.id);
                    self.note_key_change(cfg, t, &n);
                    targets.push(n);
                }
                Ok(other) => {
                    self.unconfirmed.remove(&t.id);
                    self.leave(cfg, t, &other);
                }
                Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
                Err(e) => {
                    let strikes = self.unconfirmed.entry(t.id.clone()).or_insert(0);
                    *strikes += 1;
                    if *strikes >= 2 {
                        tracing::warn!(queue = %t.name, id = %t.id, error = %e, on_vanish = ?cfg.selection.on_vanish, "queue missing from two consecutive complete listings; it left the selection");
                        self.unconfirmed.remove(&t.id);
                        self.leave_key(cfg, &t.key);
                    } else {
                        tracing::warn!(queue = %t.name, id = %t.id, error = %e, "queue missing from the listing and its lookup failed; kept until a second listing agrees");
                        targets.push(t.clone());
                    }
                }
            }
        }
        targets.truncate(MAX_ROWS);
        Ok(targets)
    }

    /// A target's row key changed (a rename, with rows keyed by name): the old key's row
    /// is no longer the daemon's.
    fn note_key_change(&mut self, cfg: &Config, old: &Target, new: &Target) {
        if new.key == old.key {
            return;
        }
        tracing::warn!(queue = %old.name, new_name = %new.name, id = %old.id, on_vanish = ?cfg.selection.on_vanish, "queue renamed: its row is now written under the new name");
        self.leave_key(cfg, &old.key);
    }

    fn leave(&mut self, cfg: &Config, t: &Target, why: &Confirmed) {
        match why {
            Confirmed::Gone => {
                tracing::warn!(queue = %t.name, id = %t.id, on_vanish = ?cfg.selection.on_vanish, "queue deleted (GET by id answers 404); it left the selection");
            }
            Confirmed::LeftSelection(q) => {
                tracing::warn!(queue = %t.name, id = %t.id, now_named = %q.name, division = %q.division.as_ref().map(|d| d.name.as_str()).unwrap_or_default(), on_vanish = ?cfg.selection.on_vanish, "queue no longer matches the configuration (renamed or moved); it left the selection");
            }
            Confirmed::Kept(_) => return,
        }
        self.leave_key(cfg, &t.key);
    }

    fn leave_key(&mut self, cfg: &Config, key: &str) {
        if cfg.selection.on_vanish == OnVanish::Delete {
            self.vanished.push(key.to_owned());
        }
    }
}

/// Looks a target up by id and says whether the configuration still selects it.
async fn confirm(client: &Client, cfg: &Config, id: &str) -> Result<Confirmed, ApiError> {
    Ok(match queues::get_by_id(client, id).await? {
        None => Confirmed::Gone,
        Some(q) if selects(cfg, &q) => Confirmed::Kept(target(cfg.key_by, q)),
        Some(q) => Confirmed::LeftSelection(q),
    })
}

/// Warns once per newly resolved queue whose row key is the heartbeat key: the heartbeat
/// is not written while it lasts (the queue's row wins).
fn warn_heartbeat_collisions(cfg: &Config, before: &[Target], after: &[Target]) {
    let Some(hb) = &cfg.rows.heartbeat_key else {
        return;
    };
    for t in after.iter().filter(|t| t.key.eq_ignore_ascii_case(hb)) {
        if !before.iter().any(|b| b.id == t.id) {
            tracing::warn!(queue = %t.name, id = %t.id, heartbeat_key = %hb, "a selected queue's row key is the heartbeat key: the heartbeat row is not written while it lasts, so it never overwrites the queue's row; set rows.heartbeat_key to another key");
        }
    }
}
