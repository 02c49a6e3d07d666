//! Parsing and evaluating a QueueObservationQuery's filter, as the API validates it.

use serde_json::Value;

use super::{CONVERSATION_METRICS, DURATION_METRICS, MEDIA_TYPES, USER_METRICS};
use crate::wire::ApiError;

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
pub(crate) struct Filter {
    is_and: bool,
    predicates: Vec<Predicate>,
    clauses: Vec<Filter>,
}

pub(crate) struct Observation {
    pub(crate) filter: Filter,
    pub(crate) metrics: Vec<String>,
    /// Metrics whose individual observations are asked for (`detailMetrics`).
    pub(crate) detail: Vec<String>,
    /// Distinct queue ids named by the filter, first mention first.
    pub(crate) queue_ids: Vec<String>,
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
    pub(crate) fn eval(&self, queue_id: &str, media: Option<&str>) -> bool {
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
    /// `max_queues`: the most queue ids one query may name (see `Sim::set_max_queues_per_query`).
    pub(crate) fn parse(body: &Value, max_queues: usize) -> Result<Observation, ApiError> {
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
        let mut detail = Vec::new();
        if let Some(detail_v) = obj.get("detailMetrics") {
            let arr = detail_v
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
                if !detail.iter().any(|x: &String| x == name) {
                    detail.push(name.to_owned());
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
        if queue_ids.len() > max_queues {
            return Err(ApiError::bad_request(format!(
                "The filter references {} queue ids; a query may reference at most {max_queues} queue ids",
                queue_ids.len()
            )));
        }
        Ok(Observation {
            filter,
            metrics,
            detail,
            queue_ids,
        })
    }
}
