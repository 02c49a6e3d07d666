//! The org itself: queues, agents, conversations, data tables. Pure logic, no HTTP, so the
//! rules (what counts, what validates) can be tested directly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::RngExt;
use serde_json::{Map, Value, json};

use super::import::ImportJob;
use super::{FieldType, QueueTruth, RoutingStatus, SystemPresence};

pub(crate) const HOME_DIVISION: &str = "Home";
pub(crate) const MAX_ROWS: usize = 5000;
pub(crate) const MAX_PROPERTIES: usize = 50;
pub(crate) const MAX_OBSERVATION_QUEUES: usize = 100;
const KEY_MAX_LENGTH: u64 = 256;
const SCHEMA_DRAFT: &str = "http://json-schema.org/draft-04/schema#";

pub(crate) const USER_METRICS: [&str; 6] = [
    "oOnQueueUsers",
    "oOffQueueUsers",
    "oUserPresences",
    "oUserRoutingStatuses",
    "oActiveUsers",
    "oMemberUsers",
];
pub(crate) const CONVERSATION_METRICS: [&str; 3] = ["oWaiting", "oInteracting", "oAlerting"];
/// Accepted but never reported: the simulator keeps no per-conversation timestamps.
const DURATION_METRICS: [&str; 2] = ["oLongestWaiting", "oLongestInteracting"];
pub(crate) const MEDIA_TYPES: [&str; 9] = [
    "voice",
    "chat",
    "email",
    "message",
    "callback",
    "cobrowse",
    "video",
    "screenshare",
    "unknown",
];

/// An error as the API reports it (ErrorBody).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad.request", message)
    }

    pub(crate) fn invalid_value(value: &str, field: &str, allowed: &str) -> ApiError {
        ApiError::new(
            400,
            "invalid.value",
            format!(
                "Value [{value}] is not valid for field type [{field}]. Allowable values are: {allowed}"
            ),
        )
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(404, "not.found", "The requested resource was not found.")
    }

    pub(crate) fn schema(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "flows.datatables.schema.exception", message)
    }

    pub(crate) fn syntax(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "flows.datatables.syntax.error", message)
    }

    pub(crate) fn table_not_found(id: &str) -> ApiError {
        ApiError::new(
            404,
            "flows.datatables.table.not.found",
            format!("The datatable could not be found. (datatableId: {id})"),
        )
    }

    pub(crate) fn row_not_found(key: &str) -> ApiError {
        ApiError::new(
            404,
            "flows.datatables.row.not.found",
            format!("The datatable row could not be found. (rowId: {key})"),
        )
    }

    /// The ErrorBody JSON; `context_id` is the response's correlation id.
    pub(crate) fn body(&self, context_id: Option<&str>) -> Value {
        let mut body = json!({
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "messageParams": {},
            "details": [],
            "errors": [],
        });
        if let (Some(ctx), Some(obj)) = (context_id, body.as_object_mut()) {
            obj.insert("contextId".to_owned(), Value::String(ctx.to_owned()));
        }
        body
    }
}

/// A random version-4 UUID, the form every Genesys id takes.
pub(crate) fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Case-insensitive match where `*` stands for any run of characters (data table names).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return true,
    };
    let (last, middle) = match rest.split_last() {
        Some(x) => x,
        None => return text.starts_with(first),
    };
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut remaining = &text[first.len()..text.len() - last.len()];
    for part in middle {
        match remaining.find(part) {
            Some(pos) => remaining = &remaining[pos + part.len()..],
            None => return false,
        }
    }
    true
}

/// Queue name filter: exact (case-insensitive) unless a leading and/or trailing `*` makes it a
/// suffix/prefix/contains match; an inner `*` is literal, as in the routing API.
pub(crate) fn queue_name_match(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let name = name.to_lowercase();
    let leading = pattern.starts_with('*');
    let trailing = pattern.len() > 1 && pattern.ends_with('*');
    let core = pattern.trim_start_matches('*').trim_end_matches('*');
    match (leading, trailing) {
        (true, true) => name.contains(core),
        (true, false) => name.ends_with(core),
        (false, true) => name.starts_with(core),
        (false, false) => name == pattern,
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) division_id: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) modified: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Agent {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) presence: SystemPresence,
    pub(crate) presence_id: String,
    pub(crate) presence_since: DateTime<Utc>,
    pub(crate) routing: RoutingStatus,
    pub(crate) routing_since: DateTime<Utc>,
    pub(crate) queues: BTreeSet<String>,
}

impl Agent {
    /// Genesys only routes to agents On Queue; any other presence reads as OFF_QUEUE.
    pub(crate) fn effective_routing(&self) -> RoutingStatus {
        if self.presence == SystemPresence::OnQueue {
            self.routing
        } else {
            RoutingStatus::OffQueue
        }
    }

    fn on_queue(&self) -> bool {
        self.effective_routing() != RoutingStatus::OffQueue
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvKind {
    Waiting,
    Interacting,
    Alerting,
}

#[derive(Clone, Copy, Debug, Default)]
struct ConvCounts {
    waiting: u32,
    interacting: u32,
    alerting: u32,
}

impl ConvCounts {
    fn get(&self, metric: &str) -> u32 {
        match metric {
            "oWaiting" => self.waiting,
            "oInteracting" => self.interacting,
            "oAlerting" => self.alerting,
            _ => 0,
        }
    }
}

/// Constraints of one data table column, from its JSON Schema property.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldSpec {
    pub(crate) ty: FieldType,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) division_id: String,
    /// The normalized JSON Schema document as stored and returned.
    pub(crate) schema: Map<String, Value>,
    pub(crate) fields: BTreeMap<String, FieldSpec>,
    pub(crate) required: BTreeSet<String>,
    pub(crate) rows: BTreeMap<String, Map<String, Value>>,
}

struct ParsedSchema {
    doc: Map<String, Value>,
    fields: BTreeMap<String, FieldSpec>,
    required: BTreeSet<String>,
}

/// Query-string filters for the queue listing.
#[derive(Debug, Default)]
pub(crate) struct QueueFilter {
    pub(crate) name: Option<String>,
    pub(crate) ids: Vec<String>,
    pub(crate) division_ids: Vec<String>,
    pub(crate) descending: bool,
}

#[derive(Debug, Default)]
pub(crate) struct TableFilter {
    pub(crate) name: Option<String>,
    pub(crate) division_ids: Vec<String>,
    pub(crate) sort_by_name: bool,
    pub(crate) descending: bool,
}

pub(crate) struct Org {
    pub(crate) org_id: String,
    home_division: String,
    divisions: BTreeMap<String, String>,
    queues: BTreeMap<String, Queue>,
    agents: BTreeMap<String, Agent>,
    next_agent: u64,
    conversations: BTreeMap<(String, String), ConvCounts>,
    presence_ids: Vec<(SystemPresence, Vec<String>)>,
    /// Agents set to Available alternate between the two Available definitions, so clients
    /// must sum every org presence id mapped to a system presence.
    next_available: usize,
    pub(crate) tables: BTreeMap<String, Table>,
    pub(crate) jobs: BTreeMap<String, ImportJob>,
}

impl Default for Org {
    fn default() -> Self {
        Org::new()
    }
}

impl Org {
    pub(crate) fn new() -> Org {
        let home = new_id();
        let mut divisions = BTreeMap::new();
        divisions.insert(home.clone(), HOME_DIVISION.to_owned());
        let presence_ids = SystemPresence::ALL
            .into_iter()
            .map(|p| {
                let mut ids = vec![new_id()];
                if p == SystemPresence::Available {
                    ids.push(new_id());
                }
                (p, ids)
            })
            .collect();
        Org {
            org_id: new_id(),
            home_division: home,
            divisions,
            queues: BTreeMap::new(),
            agents: BTreeMap::new(),
            next_agent: 1,
            conversations: BTreeMap::new(),
            presence_ids,
            next_available: 0,
            tables: BTreeMap::new(),
            jobs: BTreeMap::new(),
        }
    }

    pub(crate) fn presence_ids(&self, presence: SystemPresence) -> Vec<String> {
        self.presence_ids
            .iter()
            .find(|(p, _)| *p == presence)
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default()
    }

    fn assign_presence_id(&mut self, presence: SystemPresence) -> String {
        let ids = self.presence_ids(presence);
        if ids.is_empty() {
            return String::new();
        }
        let idx = if presence == SystemPresence::Available {
            self.next_available = self.next_available.wrapping_add(1);
            self.next_available % ids.len()
        } else {
            0
        };
        ids.get(idx).cloned().unwrap_or_default()
    }

    /// Display label of an org presence id, for the members endpoint.
    fn presence_label(&self, presence_id: &str) -> String {
        for (p, ids) in &self.presence_ids {
            if let Some(pos) = ids.iter().position(|i| i == presence_id) {
                return if pos == 0 {
                    p.label().to_owned()
                } else {
                    format!("{} (backup)", p.label())
                };
            }
        }
        String::new()
    }

    fn division_id(&mut self, name: &str) -> String {
        if let Some((id, _)) = self.divisions.iter().find(|(_, n)| n.as_str() == name) {
            return id.clone();
        }
        let id = new_id();
        self.divisions.insert(id.clone(), name.to_owned());
        id
    }

    fn division_json(&self, id: &str) -> Value {
        json!({
            "id": id,
            "name": self.divisions.get(id).cloned().unwrap_or_default(),
            "selfUri": format!("/api/v2/authorization/divisions/{id}"),
        })
    }

    // ---- queues and agents ----

    pub(crate) fn add_queue(&mut self, name: &str, division: &str) -> String {
        let id = new_id();
        let division_id = self.division_id(division);
        let now = Utc::now();
        self.queues.insert(
            id.clone(),
            Queue {
                id: id.clone(),
                name: name.to_owned(),
                division_id,
                created: now,
                modified: now,
            },
        );
        id
    }

    pub(crate) fn rename_queue(&mut self, id: &str, new_name: &str) {
        if let Some(q) = self.queues.get_mut(id) {
            new_name.clone_into(&mut q.name);
            q.modified = Utc::now();
        }
    }

    pub(crate) fn delete_queue(&mut self, id: &str) {
        self.queues.remove(id);
        for agent in self.agents.values_mut() {
            agent.queues.remove(id);
        }
        self.conversations.retain(|(q, _), _| q != id);
    }

    pub(crate) fn add_agent(
        &mut self,
        presence: SystemPresence,
        routing: RoutingStatus,
        queue_ids: &[&str],
    ) -> String {
        let id = new_id();
        let n = self.next_agent;
        self.next_agent += 1;
        let presence_id = self.assign_presence_id(presence);
        let now = Utc::now();
        self.agents.insert(
            id.clone(),
            Agent {
                id: id.clone(),
                name: format!("Sim Agent {n:03}"),
                presence,
                presence_id,
                presence_since: now,
                routing,
                routing_since: now,
                queues: queue_ids.iter().map(|q| (*q).to_owned()).collect(),
            },
        );
        id
    }

    pub(crate) fn set_agent(
        &mut self,
        user_id: &str,
        presence: SystemPresence,
        routing: RoutingStatus,
    ) {
        if !self.agents.contains_key(user_id) {
            return;
        }
        let presence_id = self.assign_presence_id(presence);
        let now = Utc::now();
        if let Some(a) = self.agents.get_mut(user_id) {
            if a.presence != presence {
                a.presence_since = now;
            }
            if a.routing != routing {
                a.routing_since = now;
            }
            a.presence = presence;
            a.presence_id = presence_id;
            a.routing = routing;
        }
    }

    pub(crate) fn set_membership(&mut self, user_id: &str, queue_id: &str, member: bool) {
        if let Some(a) = self.agents.get_mut(user_id) {
            if member {
                a.queues.insert(queue_id.to_owned());
            } else {
                a.queues.remove(queue_id);
            }
        }
    }

    pub(crate) fn set_conversations(
        &mut self,
        queue_id: &str,
        media: &str,
        kind: ConvKind,
        n: u32,
    ) {
        let entry = self
            .conversations
            .entry((queue_id.to_owned(), media.to_owned()))
            .or_default();
        match kind {
            ConvKind::Waiting => entry.waiting = n,
            ConvKind::Interacting => entry.interacting = n,
            ConvKind::Alerting => entry.alerting = n,
        }
    }

    pub(crate) fn members<'a>(&'a self, queue_id: &'a str) -> impl Iterator<Item = &'a Agent> + 'a {
        self.agents
            .values()
            .filter(move |a| a.queues.contains(queue_id))
    }

    pub(crate) fn truth(&self, queue_id: &str) -> Option<QueueTruth> {
        self.queues.get(queue_id)?;
        let mut t = QueueTruth::default();
        for a in self.members(queue_id) {
            if a.presence != SystemPresence::Offline {
                t.online += 1;
            }
            if a.on_queue() {
                t.on_queue += 1;
                match a.routing {
                    RoutingStatus::Idle => t.idle += 1,
                    RoutingStatus::Interacting => t.interacting += 1,
                    _ => {}
                }
            }
        }
        t.waiting = self
            .conversations
            .iter()
            .filter(|((q, _), _)| q == queue_id)
            .map(|(_, c)| u64::from(c.waiting))
            .sum();
        Some(t)
    }

    pub(crate) fn queue(&self, id: &str) -> Option<&Queue> {
        self.queues.get(id)
    }

    pub(crate) fn queue_json(&self, q: &Queue) -> Value {
        let members = self.members(&q.id).count();
        json!({
            "id": q.id,
            "name": q.name,
            "division": self.division_json(&q.division_id),
            "dateCreated": iso(q.created),
            "dateModified": iso(q.modified),
            "createdBy": "sim",
            "modifiedBy": "sim",
            "state": "active",
            "version": 1,
            "memberCount": members,
            "userMemberCount": members,
            "joinedMemberCount": members,
            "mediaSettings": {},
            "acwSettings": {"wrapupPrompt": "OPTIONAL", "timeoutMs": 0},
            "skillEvaluationMethod": "ALL",
            "autoAnswerOnly": false,
            "selfUri": format!("/api/v2/routing/queues/{}", q.id),
        })
    }

    /// Matching queues as API entities, sorted by name.
    pub(crate) fn list_queues(&self, f: &QueueFilter) -> Vec<Value> {
        let mut found: Vec<&Queue> = self
            .queues
            .values()
            .filter(|q| {
                f.name
                    .as_deref()
                    .is_none_or(|n| queue_name_match(n, &q.name))
            })
            .filter(|q| f.ids.is_empty() || f.ids.contains(&q.id))
            .filter(|q| f.division_ids.is_empty() || f.division_ids.contains(&q.division_id))
            .collect();
        found.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then_with(|| a.id.cmp(&b.id))
        });
        if f.descending {
            found.reverse();
        }
        found.into_iter().map(|q| self.queue_json(q)).collect()
    }

    /// Queue members as QueueMember entities, sorted by name.
    pub(crate) fn member_entities(
        &self,
        queue_id: &str,
        presence: bool,
        routing: bool,
    ) -> Vec<Value> {
        let mut members: Vec<&Agent> = self.members(queue_id).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
            .into_iter()
            .map(|a| {
                let mut user = json!({
                    "id": a.id,
                    "name": a.name,
                    "state": "active",
                    "selfUri": format!("/api/v2/users/{}", a.id),
                });
                if presence && let Some(u) = user.as_object_mut() {
                    u.insert(
                        "presence".to_owned(),
                        json!({
                            "source": "PURECLOUD",
                            "primary": true,
                            "presenceDefinition": {
                                "id": a.presence_id,
                                "systemPresence": a.presence.wire_name(),
                                "selfUri": format!("/api/v2/presencedefinitions/{}", a.presence_id),
                            },
                            "presenceMessage": self.presence_label(&a.presence_id),
                            "modifiedDate": iso(a.presence_since),
                        }),
                    );
                }
                let mut member = json!({
                    "id": a.id,
                    "name": a.name,
                    "user": user,
                    "ringNumber": 1,
                    "joined": true,
                    "memberBy": "user",
                    "selfUri": format!("/api/v2/users/{}", a.id),
                });
                if routing && let Some(m) = member.as_object_mut() {
                    m.insert(
                        "routingStatus".to_owned(),
                        json!({
                            "userId": a.id,
                            "status": a.effective_routing().wire_name(),
                            "startTime": iso(a.routing_since),
                        }),
                    );
                }
                member
            })
            .collect()
    }

    // ---- observations ----

    /// Answers a QueueObservationQuery.
    pub(crate) fn observe(&self, body: &Value) -> Result<Value, ApiError> {
        let query = Observation::parse(body)?;
        let mut results = Vec::new();
        let user_metrics: Vec<&str> = query
            .metrics
            .iter()
            .map(String::as_str)
            .filter(|m| USER_METRICS.contains(m))
            .collect();
        let conv_metrics: Vec<&str> = query
            .metrics
            .iter()
            .map(String::as_str)
            .filter(|m| CONVERSATION_METRICS.contains(m))
            .collect();
        for queue_id in &query.queue_ids {
            if !self.queues.contains_key(queue_id) || !query.filter.eval(queue_id, None) {
                continue;
            }
            let data = self.user_metric_data(queue_id, &user_metrics);
            let mut group = Map::new();
            group.insert("group".to_owned(), json!({ "queueId": queue_id }));
            if !data.is_empty() {
                group.insert("data".to_owned(), Value::Array(data));
            }
            results.push(Value::Object(group));
            for ((q, media), counts) in &self.conversations {
                if q != queue_id || !query.filter.eval(queue_id, Some(media)) {
                    continue;
                }
                let data: Vec<Value> = conv_metrics
                    .iter()
                    .filter(|m| counts.get(m) > 0)
                    .map(|m| json!({"metric": m, "stats": {"count": counts.get(m)}}))
                    .collect();
                if !data.is_empty() {
                    results.push(json!({
                        "group": {"queueId": queue_id, "mediaType": media},
                        "data": data,
                    }));
                }
            }
        }
        let mappings: Map<String, Value> = self
            .presence_ids
            .iter()
            .map(|(p, ids)| (p.wire_name().to_owned(), json!(ids)))
            .collect();
        Ok(json!({
            "systemToOrganizationMappings": mappings,
            "results": results,
        }))
    }

    fn user_metric_data(&self, queue_id: &str, metrics: &[&str]) -> Vec<Value> {
        let members: Vec<&Agent> = self.members(queue_id).collect();
        let mut data = Vec::new();
        let qualified = |data: &mut Vec<Value>, metric: &str, counts: BTreeMap<String, u64>| {
            for (qualifier, count) in counts {
                if count > 0 {
                    data.push(json!({"metric": metric, "qualifier": qualifier, "stats": {"count": count}}));
                }
            }
        };
        for &metric in metrics {
            match metric {
                "oOnQueueUsers" => {
                    let mut counts = BTreeMap::new();
                    for a in members.iter().filter(|a| a.on_queue()) {
                        *counts.entry(a.routing.wire_name().to_owned()).or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oOffQueueUsers" => {
                    let mut counts = BTreeMap::new();
                    for a in members
                        .iter()
                        .filter(|a| !a.on_queue() && a.presence != SystemPresence::Offline)
                    {
                        *counts.entry(a.presence_id.clone()).or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oUserPresences" => {
                    let mut counts = BTreeMap::new();
                    for a in &members {
                        *counts.entry(a.presence_id.clone()).or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oUserRoutingStatuses" => {
                    let mut counts = BTreeMap::new();
                    for a in &members {
                        *counts
                            .entry(a.effective_routing().wire_name().to_owned())
                            .or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oActiveUsers" => {
                    let n = members
                        .iter()
                        .filter(|a| a.presence != SystemPresence::Offline)
                        .count();
                    data.push(json!({"metric": metric, "stats": {"count": n}}));
                }
                "oMemberUsers" => {
                    data.push(json!({"metric": metric, "stats": {"count": members.len()}}));
                }
                _ => {}
            }
        }
        data
    }

    // ---- data tables ----

    pub(crate) fn table(&self, id: &str) -> Result<&Table, ApiError> {
        self.tables
            .get(id)
            .ok_or_else(|| ApiError::table_not_found(id))
    }

    pub(crate) fn table_mut(&mut self, id: &str) -> Result<&mut Table, ApiError> {
        self.tables
            .get_mut(id)
            .ok_or_else(|| ApiError::table_not_found(id))
    }

    pub(crate) fn table_id(&self, name: &str) -> Option<String> {
        self.tables
            .values()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .map(|t| t.id.clone())
    }

    pub(crate) fn table_json(&self, t: &Table, with_schema: bool) -> Value {
        let mut v = json!({
            "id": t.id,
            "name": t.name,
            "division": self.division_json(&t.division_id),
            "selfUri": format!("/api/v2/flows/datatables/{}", t.id),
        });
        if let Some(obj) = v.as_object_mut() {
            if let Some(d) = &t.description {
                obj.insert("description".to_owned(), Value::String(d.clone()));
            }
            if with_schema {
                obj.insert("schema".to_owned(), Value::Object(t.schema.clone()));
            }
        }
        v
    }

    pub(crate) fn list_tables(&self, f: &TableFilter) -> Vec<&Table> {
        let mut found: Vec<&Table> = self
            .tables
            .values()
            .filter(|t| f.name.as_deref().is_none_or(|n| glob_match(n, &t.name)))
            .filter(|t| f.division_ids.is_empty() || f.division_ids.contains(&t.division_id))
            .collect();
        if f.sort_by_name {
            found.sort_by(|a, b| {
                a.name
                    .to_lowercase()
                    .cmp(&b.name.to_lowercase())
                    .then_with(|| a.id.cmp(&b.id))
            });
        } else {
            found.sort_by(|a, b| a.id.cmp(&b.id));
        }
        if f.descending {
            found.reverse();
        }
        found
    }

    /// POST /flows/datatables.
    pub(crate) fn create_table(&mut self, body: &Value) -> Result<String, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::syntax("The datatable must be a JSON object"))?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::schema("The datatable name is required"))?;
        if name.chars().count() > 256 {
            return Err(ApiError::schema(
                "The datatable name is longer than 256 characters",
            ));
        }
        let schema = obj
            .get("schema")
            .ok_or_else(|| ApiError::schema("The datatable schema is required"))?;
        let parsed = parse_schema(schema, None)?;
        if self.table_id(name).is_some() {
            return Err(ApiError::new(
                409,
                "flows.datatables.not.unique",
                format!("The passed in datatable had a duplicate name. (name: {name})"),
            ));
        }
        let description = obj
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let division_id = obj
            .get("division")
            .and_then(|d| d.get("id"))
            .and_then(Value::as_str)
            .filter(|id| self.divisions.contains_key(*id))
            .map_or_else(|| self.home_division.clone(), str::to_owned);
        let id = new_id();
        self.tables.insert(
            id.clone(),
            Table {
                id: id.clone(),
                name: name.to_owned(),
                description,
                division_id,
                schema: parsed.doc,
                fields: parsed.fields,
                required: parsed.required,
                rows: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    /// PUT /flows/datatables/{id}: schema changes are additive only.
    pub(crate) fn update_table(&mut self, id: &str, body: &Value) -> Result<(), ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::syntax("The datatable must be a JSON object"))?;
        let new_name = obj
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if let Some(n) = &new_name
            && let Some(other) = self.table_id(n)
            && other != id
        {
            return Err(ApiError::new(
                409,
                "flows.datatables.not.unique",
                format!("The passed in datatable had a duplicate name. (name: {n})"),
            ));
        }
        let table = self.table(id)?;
        let parsed = match obj.get("schema") {
            Some(schema) => Some(parse_schema(schema, Some(table))?),
            None => None,
        };
        let description = obj
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let table = self.table_mut(id)?;
        if let Some(n) = new_name {
            table.name = n;
        }
        if description.is_some() {
            table.description = description;
        }
        if let Some(p) = parsed {
            table.schema = p.doc;
            table.fields = p.fields;
            table.required = p.required;
        }
        Ok(())
    }

    pub(crate) fn delete_table(&mut self, id: &str) -> Result<(), ApiError> {
        self.tables
            .remove(id)
            .ok_or_else(|| ApiError::table_not_found(id))?;
        self.jobs.retain(|_, j| j.table_id != id);
        Ok(())
    }

    pub(crate) fn create_table_direct(
        &mut self,
        name: &str,
        fields: &[(&str, FieldType)],
    ) -> String {
        if let Some(id) = self.table_id(name) {
            return id;
        }
        let mut properties = Map::new();
        properties.insert(
            "key".to_owned(),
            json!({"title": "Key", "type": "string", "displayOrder": 0}),
        );
        for (i, (field, ty)) in fields.iter().enumerate() {
            properties.insert(
                (*field).to_owned(),
                json!({"title": field, "type": ty.wire_name(), "displayOrder": i + 1}),
            );
        }
        let body = json!({"name": name, "schema": {"properties": properties}});
        match self.create_table(&body) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(table = name, error = %e.message, "sim: create_table rejected");
                String::new()
            }
        }
    }

    pub(crate) fn delete_table_direct(&mut self, id: &str) {
        // Deleting a missing table is a no-op for the scripting API.
        let _ = self.delete_table(id);
    }

    pub(crate) fn rows_direct(&self, id: &str) -> BTreeMap<String, Map<String, Value>> {
        self.tables
            .get(id)
            .map(|t| t.rows.clone())
            .unwrap_or_default()
    }

    pub(crate) fn put_row_direct(&mut self, id: &str, row: Value) {
        let Some(table) = self.tables.get_mut(id) else {
            tracing::warn!(table = id, "sim: put_row on a missing table");
            return;
        };
        let Value::Object(row) = row else {
            tracing::warn!(table = id, "sim: put_row needs a JSON object");
            return;
        };
        let Some(key) = row.get("key").and_then(Value::as_str).map(str::to_owned) else {
            tracing::warn!(table = id, "sim: put_row needs a string \"key\"");
            return;
        };
        table.rows.insert(key, row);
    }

    pub(crate) fn table_schema(&self, id: &str) -> Option<Value> {
        self.tables.get(id).map(|t| Value::Object(t.schema.clone()))
    }

    /// POST .../rows.
    pub(crate) fn insert_row(&mut self, table_id: &str, body: &Value) -> Result<Value, ApiError> {
        let table = self.table_mut(table_id)?;
        let row = table.validate_row(body, None)?;
        let key = row_key(&row);
        if table.rows.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "flows.datatables.not.unique",
                format!("The row had a duplicate keyname. (key: {key})"),
            ));
        }
        if table.rows.len() >= MAX_ROWS {
            return Err(ApiError::new(
                400,
                "flows.datatables.too.many.rows",
                format!(
                    "The max number of rows ({MAX_ROWS}) allowed in a datatable has been reached."
                ),
            ));
        }
        table.rows.insert(key, row.clone());
        Ok(Value::Object(row))
    }

    /// PUT .../rows/{key}: replaces the whole row.
    pub(crate) fn replace_row(
        &mut self,
        table_id: &str,
        key: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let table = self.table_mut(table_id)?;
        if !table.rows.contains_key(key) {
            return Err(ApiError::row_not_found(key));
        }
        let row = table.validate_row(body, Some(key))?;
        table.rows.insert(key.to_owned(), row.clone());
        Ok(Value::Object(row))
    }

    pub(crate) fn get_row(
        &self,
        table_id: &str,
        key: &str,
    ) -> Result<&Map<String, Value>, ApiError> {
        self.table(table_id)?
            .rows
            .get(key)
            .ok_or_else(|| ApiError::row_not_found(key))
    }

    pub(crate) fn delete_row(&mut self, table_id: &str, key: &str) -> Result<(), ApiError> {
        self.table_mut(table_id)?
            .rows
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| ApiError::row_not_found(key))
    }

    // ---- demo churn ----

    /// Moves a fifth of the agents (at least one) to a random state and nudges waiting counts,
    /// so a live demo has something to sync.
    pub(crate) fn churn_step(&mut self) {
        let mut rng = rand::rng();
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        let moves = (ids.len() / 5).max(1).min(ids.len());
        for _ in 0..moves {
            let Some(id) = ids.get(rng.random_range(0..ids.len())) else {
                continue;
            };
            let roll: u32 = rng.random_range(0..100);
            let presence = match roll {
                0..60 => SystemPresence::OnQueue,
                60..70 => SystemPresence::Available,
                70..78 => SystemPresence::Away,
                78..85 => SystemPresence::Break,
                85..90 => SystemPresence::Meal,
                90..95 => SystemPresence::Busy,
                _ => SystemPresence::Offline,
            };
            let routing = if presence == SystemPresence::OnQueue {
                match rng.random_range(0..100u32) {
                    0..45 => RoutingStatus::Idle,
                    45..90 => RoutingStatus::Interacting,
                    90..95 => RoutingStatus::Communicating,
                    _ => RoutingStatus::NotResponding,
                }
            } else {
                RoutingStatus::OffQueue
            };
            self.set_agent(id, presence, routing);
        }
        let queue_ids: Vec<String> = self.queues.keys().cloned().collect();
        for q in queue_ids {
            if rng.random_bool(0.3) {
                let entry = self
                    .conversations
                    .entry((q.clone(), "voice".to_owned()))
                    .or_default();
                let delta: i64 = rng.random_range(-2..=2);
                entry.waiting =
                    u32::try_from((i64::from(entry.waiting) + delta).clamp(0, 20)).unwrap_or(0);
            }
            if rng.random_bool(0.15) {
                let entry = self
                    .conversations
                    .entry((q.clone(), "chat".to_owned()))
                    .or_default();
                let delta: i64 = rng.random_range(-1..=1);
                entry.waiting =
                    u32::try_from((i64::from(entry.waiting) + delta).clamp(0, 8)).unwrap_or(0);
            }
            let interacting = self
                .members(&q)
                .filter(|a| a.effective_routing() == RoutingStatus::Interacting)
                .count();
            let entry = self
                .conversations
                .entry((q, "voice".to_owned()))
                .or_default();
            entry.interacting = u32::try_from(interacting).unwrap_or(u32::MAX);
        }
    }
}

fn row_key(row: &Map<String, Value>) -> String {
    row.get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Table {
    /// Checks a row against the schema the way Genesys' JSON Schema validator does; on success
    /// returns the row to store. `path_key` is the key from the URL for PUT.
    pub(crate) fn validate_row(
        &self,
        body: &Value,
        path_key: Option<&str>,
    ) -> Result<Map<String, Value>, ApiError> {
        let Value::Object(row) = body else {
            return Err(ApiError::syntax(
                "There was an error parsing user data: the row must be a JSON object",
            ));
        };
        let mut row = row.clone();
        if let Some(pk) = path_key {
            match row.get("key") {
                None => {
                    row.insert("key".to_owned(), Value::String(pk.to_owned()));
                }
                Some(Value::String(k)) if k == pk => {}
                Some(Value::String(k)) => {
                    return Err(ApiError::bad_request(format!(
                        "The key in the row body ({k}) does not match the rowId in the path ({pk})"
                    )));
                }
                Some(_) => {}
            }
        }
        let unknown: Vec<&String> = row
            .keys()
            .filter(|k| !self.fields.contains_key(*k))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::schema(format!(
                "Failed to validate the row against the schema: object instance has properties which are not allowed by the schema: {}",
                json!(unknown)
            )));
        }
        let missing: Vec<&String> = self
            .required
            .iter()
            .filter(|r| !row.contains_key(*r))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::schema(format!(
                "Failed to validate the row against the schema: object has missing required properties ({})",
                json!(missing)
            )));
        }
        for (name, value) in &row {
            if let Some(spec) = self.fields.get(name) {
                spec.check(name, value).map_err(ApiError::schema)?;
            }
        }
        Ok(row)
    }
}

impl FieldSpec {
    /// Validates one value; the error text follows the json-schema-validator wording Genesys
    /// passes through.
    pub(crate) fn check(&self, name: &str, value: &Value) -> Result<(), String> {
        let actual = json_type_name(value);
        let type_ok = match self.ty {
            FieldType::String => value.is_string(),
            FieldType::Integer => actual == "integer",
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
        };
        if !type_ok {
            return Err(format!(
                "Failed to validate the row against the schema: /{name}: instance type ({actual}) does not match any allowed primitive type (allowed: [\"{}\"])",
                self.ty.wire_name()
            ));
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = self.minimum
                && n < min
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: numeric instance is lower than the required minimum (minimum: {min}, found: {value})"
                ));
            }
            if let Some(max) = self.maximum
                && n > max
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: numeric instance is greater than the required maximum (maximum: {max}, found: {value})"
                ));
            }
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count() as u64;
            if let Some(min) = self.min_length
                && len < min
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: string \"{s}\" is too short (length: {len}, required minimum: {min})"
                ));
            }
            if let Some(max) = self.max_length
                && len > max
            {
                return Err(format!(
                    "Failed to validate the row against the schema: /{name}: string \"{s}\" is too long (length: {len}, maximum allowed: {max})"
                ));
            }
        }
        Ok(())
    }
}

/// Validates and normalizes a table schema. With `existing`, the change must be additive:
/// every existing property kept with its type.
fn parse_schema(schema: &Value, existing: Option<&Table>) -> Result<ParsedSchema, ApiError> {
    let obj = schema
        .as_object()
        .ok_or_else(|| ApiError::schema("The schema must be a JSON object"))?;
    if let Some(t) = obj.get("type")
        && t.as_str() != Some("object")
    {
        return Err(ApiError::schema("The schema type must be \"object\""));
    }
    let props = obj
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::schema("The schema must define \"properties\""))?;
    if props.len() > MAX_PROPERTIES {
        return Err(ApiError::new(
            400,
            "flows.datatables.too.many.properties",
            format!(
                "The max number of properties allowed in a schema has been reached. ({} > {MAX_PROPERTIES})",
                props.len()
            ),
        ));
    }
    let mut fields = BTreeMap::new();
    let mut normalized = Map::new();
    let max_given_order = props
        .values()
        .filter_map(|p| p.get("displayOrder").and_then(Value::as_u64))
        .max()
        .unwrap_or(0);
    let mut next_order = max_given_order + 1;
    for (name, prop) in props {
        if name.trim().is_empty() {
            return Err(ApiError::schema("Property names must not be empty"));
        }
        let p = prop.as_object().ok_or_else(|| {
            ApiError::schema(format!("Property \"{name}\" must be a JSON object"))
        })?;
        let ty_name = p.get("type").and_then(Value::as_str).unwrap_or_default();
        let ty = FieldType::from_wire(ty_name).ok_or_else(|| {
            ApiError::schema(format!(
                "Property \"{name}\" has unsupported type \"{ty_name}\"; allowed: string, integer, number, boolean"
            ))
        })?;
        if name == "key" && ty != FieldType::String {
            return Err(ApiError::schema(
                "The \"key\" property must be of type string",
            ));
        }
        let mut p = p.clone();
        p.entry("title").or_insert_with(|| {
            Value::String(if name == "key" {
                "Key".to_owned()
            } else {
                name.clone()
            })
        });
        p.insert(
            "$id".to_owned(),
            Value::String(format!("/properties/{name}")),
        );
        if name == "key" {
            p.insert("displayOrder".to_owned(), json!(0));
            p.entry("maxLength").or_insert(json!(KEY_MAX_LENGTH));
            p.entry("minLength").or_insert(json!(1));
        } else if !p.get("displayOrder").is_some_and(Value::is_u64) {
            let order = existing
                .and_then(|t| t.schema.get("properties"))
                .and_then(|ps| ps.get(name))
                .and_then(|ep| ep.get("displayOrder"))
                .and_then(Value::as_u64)
                .unwrap_or_else(|| {
                    next_order += 1;
                    next_order - 1
                });
            p.insert("displayOrder".to_owned(), json!(order));
        }
        let spec = FieldSpec {
            ty,
            minimum: p.get("minimum").and_then(Value::as_f64),
            maximum: p.get("maximum").and_then(Value::as_f64),
            min_length: p.get("minLength").and_then(Value::as_u64),
            max_length: p.get("maxLength").and_then(Value::as_u64),
        };
        if let Some(default) = p.get("default") {
            spec.check(name, default).map_err(|e| {
                ApiError::schema(format!(
                    "The default of property \"{name}\" is invalid: {e}"
                ))
            })?;
        }
        fields.insert(name.clone(), spec);
        normalized.insert(name.clone(), Value::Object(p));
    }
    if !fields.contains_key("key") {
        return Err(ApiError::schema(
            "The schema must define a \"key\" property of type string",
        ));
    }
    let mut required: BTreeSet<String> = BTreeSet::new();
    required.insert("key".to_owned());
    if let Some(req) = obj.get("required") {
        let arr = req
            .as_array()
            .ok_or_else(|| ApiError::schema("\"required\" must be an array of property names"))?;
        for r in arr {
            let r = r.as_str().ok_or_else(|| {
                ApiError::schema("\"required\" must be an array of property names")
            })?;
            if !fields.contains_key(r) {
                return Err(ApiError::schema(format!(
                    "Required property \"{r}\" is not defined in the schema"
                )));
            }
            required.insert(r.to_owned());
        }
    }
    if let Some(t) = existing {
        for (name, old) in &t.fields {
            match fields.get(name) {
                None => {
                    return Err(ApiError::schema(format!(
                        "Schema updates are additive only: property \"{name}\" cannot be removed"
                    )));
                }
                Some(new) if new.ty != old.ty => {
                    return Err(ApiError::schema(format!(
                        "Schema updates are additive only: property \"{name}\" cannot change type from {} to {}",
                        old.ty.wire_name(),
                        new.ty.wire_name()
                    )));
                }
                Some(_) => {}
            }
        }
    }
    // "key" first, the rest in the order they were given (serde_json sorts object keys).
    let mut ordered_required: Vec<String> = vec!["key".to_owned()];
    ordered_required.extend(required.iter().filter(|r| r.as_str() != "key").cloned());
    let mut doc = Map::new();
    doc.insert("$schema".to_owned(), json!(SCHEMA_DRAFT));
    doc.insert("type".to_owned(), json!("object"));
    doc.insert("required".to_owned(), json!(ordered_required));
    doc.insert("additionalProperties".to_owned(), json!(false));
    doc.insert("properties".to_owned(), Value::Object(normalized));
    for extra in ["title", "description"] {
        if let Some(v) = obj.get(extra) {
            doc.insert(extra.to_owned(), v.clone());
        }
    }
    Ok(ParsedSchema {
        doc,
        fields,
        required,
    })
}

// ---- observation query parsing ----

#[derive(Debug)]
enum Dimension {
    QueueId,
    MediaType,
}

#[derive(Debug)]
enum Operator {
    Matches,
    Exists,
    NotExists,
}

#[derive(Debug)]
struct Predicate {
    dimension: Dimension,
    operator: Operator,
    value: String,
}

#[derive(Debug)]
struct Filter {
    is_and: bool,
    predicates: Vec<Predicate>,
    clauses: Vec<Filter>,
}

struct Observation {
    filter: Filter,
    metrics: Vec<String>,
    /// Distinct queue ids named by the filter, first mention first.
    queue_ids: Vec<String>,
}

impl Predicate {
    fn eval(&self, queue_id: &str, media: Option<&str>) -> bool {
        match (&self.dimension, &self.operator) {
            (Dimension::QueueId, Operator::Matches) => self.value == queue_id,
            (Dimension::QueueId, Operator::Exists) => true,
            (Dimension::QueueId, Operator::NotExists) => false,
            // User metrics are not split by media type, so a media predicate does not exclude them.
            (Dimension::MediaType, Operator::Matches) => media.is_none_or(|m| m == self.value),
            (Dimension::MediaType, Operator::Exists) => true,
            (Dimension::MediaType, Operator::NotExists) => media.is_none(),
        }
    }
}

impl Filter {
    fn eval(&self, queue_id: &str, media: Option<&str>) -> bool {
        let preds = self.predicates.iter().map(|p| p.eval(queue_id, media));
        let clauses = self.clauses.iter().map(|c| c.eval(queue_id, media));
        let mut all = preds.chain(clauses);
        if self.is_and {
            all.all(|b| b)
        } else {
            all.any(|b| b)
        }
    }

    fn parse(v: &Value, at: &str, nested: bool) -> Result<Filter, ApiError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request(format!("{at} must be an object")))?;
        let ty = obj
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("{at}.type is required")))?;
        let is_and = match ty {
            "and" => true,
            "or" => false,
            other => return Err(ApiError::invalid_value(other, "type", "and, or")),
        };
        let mut predicates = Vec::new();
        if let Some(ps) = obj.get("predicates") {
            let arr = ps.as_array().ok_or_else(|| {
                ApiError::bad_request(format!("{at}.predicates must be an array"))
            })?;
            for (i, p) in arr.iter().enumerate() {
                predicates.push(Predicate::parse(p, &format!("{at}.predicates[{i}]"))?);
            }
        }
        let mut clauses = Vec::new();
        if let Some(cs) = obj.get("clauses") {
            if nested {
                return Err(ApiError::bad_request(format!(
                    "{at}: clauses may not contain clauses"
                )));
            }
            let arr = cs
                .as_array()
                .ok_or_else(|| ApiError::bad_request(format!("{at}.clauses must be an array")))?;
            for (i, c) in arr.iter().enumerate() {
                let clause = Filter::parse(c, &format!("{at}.clauses[{i}]"), true)?;
                if clause.predicates.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "{at}.clauses[{i}].predicates must not be empty"
                    )));
                }
                clauses.push(clause);
            }
        }
        if predicates.is_empty() && clauses.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{at} must have at least one predicate or clause"
            )));
        }
        Ok(Filter {
            is_and,
            predicates,
            clauses,
        })
    }

    fn queue_ids(&self, out: &mut Vec<String>) {
        for p in &self.predicates {
            if matches!(p.dimension, Dimension::QueueId)
                && matches!(p.operator, Operator::Matches)
                && !out.contains(&p.value)
            {
                out.push(p.value.clone());
            }
        }
        for c in &self.clauses {
            c.queue_ids(out);
        }
    }
}

impl Predicate {
    fn parse(v: &Value, at: &str) -> Result<Predicate, ApiError> {
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request(format!("{at} must be an object")))?;
        if let Some(t) = obj.get("type").and_then(Value::as_str)
            && t != "dimension"
        {
            return Err(ApiError::invalid_value(t, "type", "dimension"));
        }
        let dim = obj
            .get("dimension")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("{at}.dimension is required")))?;
        let dimension = match dim {
            "queueId" => Dimension::QueueId,
            "mediaType" => Dimension::MediaType,
            other => {
                return Err(ApiError::invalid_value(
                    other,
                    "dimension",
                    "mediaType, queueId",
                ));
            }
        };
        let operator = match obj.get("operator").and_then(Value::as_str) {
            None | Some("matches") => Operator::Matches,
            Some("exists") => Operator::Exists,
            Some("notExists") => Operator::NotExists,
            Some(other) => {
                return Err(ApiError::invalid_value(
                    other,
                    "operator",
                    "matches, exists, notExists",
                ));
            }
        };
        let value = obj
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if matches!(operator, Operator::Matches) {
            if value.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "{at}.value is required for the matches operator"
                )));
            }
            if matches!(dimension, Dimension::MediaType) && !MEDIA_TYPES.contains(&value.as_str()) {
                return Err(ApiError::invalid_value(
                    &value,
                    "mediaType",
                    &MEDIA_TYPES.join(", "),
                ));
            }
        }
        Ok(Predicate {
            dimension,
            operator,
            value,
        })
    }
}

impl Observation {
    fn parse(body: &Value) -> Result<Observation, ApiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ApiError::bad_request("The query must be a JSON object"))?;
        let all_metrics: Vec<&str> = USER_METRICS
            .iter()
            .chain(CONVERSATION_METRICS.iter())
            .chain(DURATION_METRICS.iter())
            .copied()
            .collect();
        let metrics_v = obj
            .get("metrics")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::bad_request("metrics is required"))?;
        if metrics_v.is_empty() {
            return Err(ApiError::bad_request("metrics must not be empty"));
        }
        let mut metrics = Vec::new();
        for m in metrics_v {
            let name = m.as_str().unwrap_or_default();
            if !all_metrics.contains(&name) {
                return Err(ApiError::invalid_value(
                    &m.as_str().map_or_else(|| m.to_string(), str::to_owned),
                    "metrics",
                    &all_metrics.join(", "),
                ));
            }
            if !metrics.iter().any(|x: &String| x == name) {
                metrics.push(name.to_owned());
            }
        }
        if let Some(detail) = obj.get("detailMetrics") {
            let arr = detail
                .as_array()
                .ok_or_else(|| ApiError::bad_request("detailMetrics must be an array"))?;
            for m in arr {
                let name = m.as_str().unwrap_or_default();
                if !all_metrics.contains(&name) || DURATION_METRICS.contains(&name) {
                    return Err(ApiError::invalid_value(
                        &m.to_string(),
                        "detailMetrics",
                        &USER_METRICS
                            .iter()
                            .chain(CONVERSATION_METRICS.iter())
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", "),
                    ));
                }
            }
        }
        let filter = Filter::parse(
            obj.get("filter")
                .ok_or_else(|| ApiError::bad_request("filter is required"))?,
            "filter",
            false,
        )?;
        let mut queue_ids = Vec::new();
        filter.queue_ids(&mut queue_ids);
        if queue_ids.is_empty() {
            return Err(ApiError::bad_request(
                "The filter must include at least one queueId predicate",
            ));
        }
        if queue_ids.len() > MAX_OBSERVATION_QUEUES {
            return Err(ApiError::bad_request(format!(
                "The filter references {} queue ids; a query may reference at most {MAX_OBSERVATION_QUEUES} queue ids",
                queue_ids.len()
            )));
        }
        Ok(Observation {
            filter,
            metrics,
            queue_ids,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn obs_query(ids: &[&str], metrics: &[&str]) -> Value {
        let preds: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "dimension", "dimension": "queueId", "operator": "matches", "value": id}))
            .collect();
        json!({"filter": {"type": "or", "predicates": preds}, "metrics": metrics})
    }

    #[test]
    fn glob_and_queue_name_matching() {
        assert!(glob_match("sales*", "Sales Queue"));
        assert!(glob_match("*queue", "Sales Queue"));
        assert!(glob_match("s*s*e", "Sales Queue"));
        assert!(!glob_match("s*x*e", "Sales Queue"));
        assert!(glob_match("SALES QUEUE", "sales queue"));
        assert!(!glob_match("sales", "sales queue"));
        assert!(queue_name_match("sales*", "Sales EU"));
        assert!(queue_name_match("*eu", "Sales EU"));
        assert!(queue_name_match("*les*", "Sales EU"));
        assert!(queue_name_match("sales eu", "SALES EU"));
        assert!(!queue_name_match("sales", "Sales EU"));
        assert!(!queue_name_match("s*u", "Sales EU"));
        assert!(queue_name_match("*", "anything"));
    }

    #[test]
    fn truth_and_effective_routing() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[&q]);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::Interacting, &[&q]);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::OffQueue, &[&q]);
        org.add_agent(SystemPresence::Available, RoutingStatus::Idle, &[&q]);
        org.add_agent(SystemPresence::Offline, RoutingStatus::OffQueue, &[&q]);
        org.set_conversations(&q, "voice", ConvKind::Waiting, 3);
        org.set_conversations(&q, "chat", ConvKind::Waiting, 2);
        let t = org.truth(&q).unwrap();
        assert_eq!(
            t,
            QueueTruth {
                online: 4,
                on_queue: 2,
                idle: 1,
                interacting: 1,
                waiting: 5
            }
        );
        assert!(org.truth("nope").is_none());
    }

    #[test]
    fn available_alternates_between_two_org_presences() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        for _ in 0..4 {
            org.add_agent(SystemPresence::Available, RoutingStatus::OffQueue, &[&q]);
        }
        let ids = org.presence_ids(SystemPresence::Available);
        assert_eq!(ids.len(), 2);
        let r = org.observe(&obs_query(&[&q], &["oUserPresences"])).unwrap();
        let data = r["results"][0]["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        for d in data {
            assert!(ids.contains(&d["qualifier"].as_str().unwrap().to_owned()));
            assert_eq!(d["stats"]["count"], 2);
        }
        assert_eq!(r["systemToOrganizationMappings"]["AVAILABLE"], json!(ids));
    }

    #[test]
    fn observation_validation() {
        let org = Org::new();
        let ids: Vec<String> = (0..101).map(|i| format!("q{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let e = org.observe(&obs_query(&refs, &["oWaiting"])).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("100"), "{}", e.message);
        assert!(org.observe(&obs_query(&refs[..100], &["oWaiting"])).is_ok());
        let e = org.observe(&obs_query(&["a"], &["oBogus"])).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("oBogus"));
        let e = org
            .observe(&json!({"filter": {"type": "xor", "predicates": []}, "metrics": ["oWaiting"]}))
            .unwrap_err();
        assert_eq!(e.status, 400);
        let e = org
            .observe(&json!({"filter": {"type": "and", "predicates": [{"dimension": "userId", "value": "x"}]}, "metrics": ["oWaiting"]}))
            .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn observation_media_filter_and_clauses() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        org.set_conversations(&q, "voice", ConvKind::Waiting, 3);
        org.set_conversations(&q, "chat", ConvKind::Waiting, 2);
        let body = json!({
            "filter": {"type": "and", "clauses": [
                {"type": "or", "predicates": [{"dimension": "queueId", "value": q}]},
                {"type": "or", "predicates": [{"dimension": "mediaType", "value": "chat"}]}
            ]},
            "metrics": ["oWaiting", "oActiveUsers"]
        });
        let r = org.observe(&body).unwrap();
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{r}");
        assert_eq!(results[1]["group"]["mediaType"], "chat");
        assert_eq!(results[1]["data"][0]["stats"]["count"], 2);
    }

    #[test]
    fn schema_rules() {
        let mut org = Org::new();
        let body = json!({"name": "T", "schema": {"properties": {
            "key": {"type": "string"},
            "Online": {"type": "integer", "minimum": 0},
        }}});
        let id = org.create_table(&body).unwrap();
        let t = org.table(&id).unwrap();
        assert_eq!(t.schema["required"], json!(["key"]));
        assert_eq!(t.schema["additionalProperties"], json!(false));
        assert_eq!(t.schema["properties"]["key"]["maxLength"], json!(256));
        assert_eq!(
            t.schema["properties"]["Online"]["$id"],
            json!("/properties/Online")
        );
        assert_eq!(org.create_table(&body).unwrap_err().status, 409);
        let mut lower = body.clone();
        lower["name"] = json!("t");
        assert_eq!(org.create_table(&lower).unwrap_err().status, 409);
        let bad = json!({"name": "U", "schema": {"properties": {"key": {"type": "integer"}}}});
        assert_eq!(org.create_table(&bad).unwrap_err().status, 400);
        let bad = json!({"name": "U", "schema": {"properties": {"Online": {"type": "integer"}}}});
        assert_eq!(org.create_table(&bad).unwrap_err().status, 400);
        let bad = json!({"name": "U", "schema": {"properties": {"key": {"type": "string"}, "X": {"type": "array"}}}});
        assert_eq!(org.create_table(&bad).unwrap_err().status, 400);
        let mut many = Map::new();
        many.insert("key".into(), json!({"type": "string"}));
        for i in 0..50 {
            many.insert(format!("f{i}"), json!({"type": "integer"}));
        }
        let e = org
            .create_table(&json!({"name": "U", "schema": {"properties": many}}))
            .unwrap_err();
        assert_eq!(e.code, "flows.datatables.too.many.properties");

        // additive update
        let add = json!({"schema": {"properties": {
            "key": {"type": "string"}, "Online": {"type": "integer"}, "Idle": {"type": "integer"}}}});
        org.update_table(&id, &add).unwrap();
        assert!(org.table(&id).unwrap().fields.contains_key("Idle"));
        let remove = json!({"schema": {"properties": {"key": {"type": "string"}, "Idle": {"type": "integer"}}}});
        assert_eq!(org.update_table(&id, &remove).unwrap_err().status, 400);
        let retype = json!({"schema": {"properties": {
            "key": {"type": "string"}, "Online": {"type": "string"}, "Idle": {"type": "integer"}}}});
        assert_eq!(org.update_table(&id, &retype).unwrap_err().status, 400);
    }

    #[test]
    fn row_rules() {
        let mut org = Org::new();
        let id = org.create_table_direct(
            "T",
            &[
                ("Online", FieldType::Integer),
                ("Note", FieldType::String),
                ("Ok", FieldType::Boolean),
                ("Ratio", FieldType::Number),
            ],
        );
        org.insert_row(&id, &json!({"key": "a", "Online": 3, "Ratio": 1}))
            .unwrap();
        assert_eq!(
            org.insert_row(&id, &json!({"key": "a"}))
                .unwrap_err()
                .status,
            409
        );
        for bad in [
            json!({"key": "b", "Online": 1.5}),
            json!({"key": "b", "Online": 2.0}),
            json!({"key": "b", "Online": "2"}),
            json!({"key": "b", "Ok": "true"}),
            json!({"key": "b", "Note": 1}),
            json!({"key": "b", "Online": null}),
            json!({"key": "b", "Bogus": 1}),
            json!({"key": ""}),
            json!({"key": 5}),
            json!({"Online": 1}),
            json!([1]),
        ] {
            let e = org.insert_row(&id, &bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
        let e = org
            .insert_row(&id, &json!({"key": "b", "Bogus": 1}))
            .unwrap_err();
        assert_eq!(e.code, "flows.datatables.schema.exception");
        assert!(e.message.contains("Bogus"));
        // PUT replaces the whole row, key from path.
        let r = org.replace_row(&id, "a", &json!({"Note": "x"})).unwrap();
        assert_eq!(r, json!({"key": "a", "Note": "x"}));
        assert_eq!(
            org.replace_row(&id, "zz", &json!({})).unwrap_err().status,
            404
        );
        assert_eq!(
            org.replace_row(&id, "a", &json!({"key": "b"}))
                .unwrap_err()
                .status,
            400
        );
        org.delete_row(&id, "a").unwrap();
        assert_eq!(org.delete_row(&id, "a").unwrap_err().status, 404);
        assert_eq!(
            org.insert_row("nope", &json!({"key": "a"}))
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn row_limit() {
        let mut org = Org::new();
        let id = org.create_table_direct("T", &[]);
        for i in 0..MAX_ROWS {
            org.put_row_direct(&id, json!({"key": format!("k{i:05}")}));
        }
        let e = org.insert_row(&id, &json!({"key": "extra"})).unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn churn_keeps_state_consistent() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        for _ in 0..10 {
            org.add_agent(SystemPresence::Offline, RoutingStatus::OffQueue, &[&q]);
        }
        for _ in 0..20 {
            org.churn_step();
        }
        let t = org.truth(&q).unwrap();
        assert!(t.on_queue <= t.online && t.idle + t.interacting <= t.on_queue);
    }
}
