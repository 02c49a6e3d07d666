//! The answer read in one streaming pass of serde visitors over the borrowed body.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::metric_data::{MetricData, Str};
use super::{
    ApiMetric, Entry, MediaType, Qualifier, QueueObservation, RoutingStatus, SystemPresence,
};

/// Parses an observation answer into observations of the requested queues it covers.
/// Groups of other queues are skipped unread; unknown metrics and fields are ignored.
pub fn parse_response(
    body: &[u8],
    requested: &[String],
) -> Result<HashMap<String, QueueObservation>, String> {
    let wanted: HashSet<&str> = requested.iter().map(String::as_str).collect();
    let mut acc = Accumulator {
        wanted: &wanted,
        presence_ids: HashMap::new(),
        queues: HashMap::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let mappings = AnswerSeed { acc: &mut acc }
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| format!("not the expected JSON: {e}"))?;
    acc.finish(mappings)
}

/// A parsed entry before its presence qualifier is resolved (the mappings may come
/// after the results in the answer).
#[derive(Debug, Clone, Copy)]
struct RawEntry {
    metric: ApiMetric,
    media: Option<MediaType>,
    qualifier: RawQualifier,
    count: u64,
    oldest: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy)]
enum RawQualifier {
    None,
    Routing(RoutingStatus),
    /// Index into the answer's interned organization presence ids.
    OrgPresence(u32),
    Other,
}

struct Accumulator<'w> {
    wanted: &'w HashSet<&'w str>,
    /// Organization presence id -> index, shared by every queue of the answer.
    presence_ids: HashMap<String, u32>,
    queues: HashMap<&'w str, Vec<RawEntry>>,
}

impl<'w> Accumulator<'w> {
    fn intern(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.presence_ids.get(id) {
            return i;
        }
        let i = self.presence_ids.len() as u32;
        self.presence_ids.insert(id.to_owned(), i);
        i
    }

    fn finish(
        self,
        mappings: Option<HashMap<String, Vec<String>>>,
    ) -> Result<HashMap<String, QueueObservation>, String> {
        let mut by_index: Vec<Option<SystemPresence>> = vec![None; self.presence_ids.len()];
        if let Some(m) = &mappings {
            for (system, org_ids) in m {
                let Some(p) = SystemPresence::from_name(system) else {
                    continue;
                };
                for id in org_ids {
                    if let Some(&i) = self.presence_ids.get(id)
                        && let Some(slot) = by_index.get_mut(i as usize)
                    {
                        slot.get_or_insert(p);
                    }
                }
            }
        }
        let mut out = HashMap::with_capacity(self.queues.len());
        for (queue_id, raw) in self.queues {
            let mut entries = Vec::with_capacity(raw.len());
            for r in raw {
                let qualifier = match r.qualifier {
                    RawQualifier::None => Qualifier::None,
                    RawQualifier::Routing(s) => Qualifier::Routing(s),
                    RawQualifier::Other => Qualifier::Other,
                    RawQualifier::OrgPresence(i) => {
                        if mappings.is_none() {
                            return Err(format!(
                                "{} without systemToOrganizationMappings: cannot tell which presence it counts",
                                r.metric.wire_name()
                            ));
                        }
                        by_index
                            .get(i as usize)
                            .copied()
                            .flatten()
                            .map_or(Qualifier::UnmappedPresence, Qualifier::Presence)
                    }
                };
                entries.push(Entry {
                    metric: r.metric,
                    media: r.media,
                    qualifier,
                    count: r.count,
                    oldest: r.oldest,
                });
            }
            out.insert(queue_id.to_owned(), QueueObservation::from_entries(entries));
        }
        Ok(out)
    }
}

/// The top-level answer object; yields the mappings, feeds the results to the accumulator.
struct AnswerSeed<'a, 'w> {
    acc: &'a mut Accumulator<'w>,
}

impl<'de> DeserializeSeed<'de> for AnswerSeed<'_, '_> {
    type Value = Option<HashMap<String, Vec<String>>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed<'_, '_> {
    type Value = Option<HashMap<String, Vec<String>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an observation answer object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut mappings = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.0.as_ref() {
                "systemToOrganizationMappings" => {
                    mappings = map.next_value::<Option<HashMap<String, Vec<String>>>>()?;
                }
                "results" => map.next_value_seed(ResultsSeed {
                    acc: &mut *self.acc,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(mappings)
    }
}

/// `results`: a list of containers (null reads as none).
struct ResultsSeed<'a, 'w> {
    acc: &'a mut Accumulator<'w>,
}

impl<'de> DeserializeSeed<'de> for ResultsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ResultsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of result groups")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(ContainerSeed {
                acc: &mut *self.acc,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// One result container: `group` and `data`, in either order.
struct ContainerSeed<'a, 'w> {
    acc: &'a mut Accumulator<'w>,
}

impl<'de> DeserializeSeed<'de> for ContainerSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

/// A container's group: the queue (when asked for) and the media type.
#[derive(Debug, Clone, Copy)]
enum GroupQueue<'w> {
    Wanted(&'w str),
    NotWanted,
}

impl<'de> Visitor<'de> for ContainerSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a result group object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let wanted = self.acc.wanted;
        let mut group: Option<(GroupQueue<'_>, Option<MediaType>)> = None;
        // Data read before the group was known (the order of keys is not promised).
        let mut pending: Option<Vec<RawEntry>> = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.0.as_ref() {
                "group" => {
                    if group.is_some() {
                        return Err(de::Error::duplicate_field("group"));
                    }
                    let (queue, media) = map.next_value_seed(GroupSeed)?;
                    let queue = match queue.and_then(|q| wanted.get(q.0.as_ref()).copied()) {
                        Some(q) => GroupQueue::Wanted(q),
                        None => GroupQueue::NotWanted,
                    };
                    group = Some((queue, media));
                }
                "data" => match group {
                    Some((GroupQueue::NotWanted, _)) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    Some((GroupQueue::Wanted(q), media)) => {
                        let mut entries = Vec::new();
                        map.next_value_seed(DataSeed {
                            acc: &mut *self.acc,
                            media,
                            out: &mut entries,
                        })?;
                        self.acc.queues.entry(q).or_default().extend(entries);
                    }
                    None => {
                        // The media type is not known yet: fill it in below.
                        let out = pending.get_or_insert_with(Vec::new);
                        map.next_value_seed(DataSeed {
                            acc: &mut *self.acc,
                            media: None,
                            out,
                        })?;
                    }
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (group, pending) {
            (Some((GroupQueue::Wanted(q), media)), Some(mut entries)) => {
                for e in &mut entries {
                    e.media = media;
                }
                self.acc.queues.entry(q).or_default().extend(entries);
            }
            (Some((GroupQueue::Wanted(q), _)), None) => {
                // A queue with an empty group is observed, with every metric zero.
                self.acc.queues.entry(q).or_default();
            }
            _ => {}
        }
        Ok(())
    }
}

/// The `group` object: `queueId` and `mediaType`; other dimensions ignored.
struct GroupSeed;

impl<'de> DeserializeSeed<'de> for GroupSeed {
    type Value = (Option<Str<'de>>, Option<MediaType>);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for GroupSeed {
    type Value = (Option<Str<'de>>, Option<MediaType>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a group object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut queue = None;
        let mut media = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.0.as_ref() {
                "queueId" => queue = Some(map.next_value::<Str<'de>>()?),
                "mediaType" => {
                    media = Some(MediaType::from_answer(&map.next_value::<Str<'de>>()?.0));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((queue, media))
    }
}

/// A container's `data` list, appended to `out`.
struct DataSeed<'a, 'w> {
    acc: &'a mut Accumulator<'w>,
    media: Option<MediaType>,
    out: &'a mut Vec<RawEntry>,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of metric data")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(d) = seq.next_element::<MetricData<'de>>()? {
            // Metrics this version does not know are ignored.
            let Some(metric) = ApiMetric::from_wire(&d.metric.0) else {
                continue;
            };
            let count = match d.count {
                Some(c) if c.is_finite() && c >= 0.0 && c <= f64::from(u32::MAX) => c as u64,
                Some(c) => {
                    return Err(de::Error::custom(format_args!(
                        "{} count {c} is not a count",
                        metric.wire_name()
                    )));
                }
                None => 0,
            };
            let qualifier = match d.qualifier.as_ref().map(|q| q.0.as_ref()) {
                None => RawQualifier::None,
                Some(q) if metric.qualified_by_presence() => {
                    RawQualifier::OrgPresence(self.acc.intern(q))
                }
                Some(q) if metric.qualified_by_routing() => {
                    RoutingStatus::from_wire(q).map_or(RawQualifier::Other, RawQualifier::Routing)
                }
                Some(_) => RawQualifier::Other,
            };
            self.out.push(RawEntry {
                metric,
                media: self.media,
                qualifier,
                count,
                oldest: d.oldest,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    use crate::genesys::observations::fixture::ANSWER;

    #[test]
    fn combines_groups_resolves_presences_and_keeps_the_oldest_wait() {
        let got = parse_response(ANSWER.as_bytes(), &ids(&["q1", "q2", "q3"])).unwrap();
        let q1 = &got["q1"];
        assert_eq!(q1.sum(ApiMetric::OnQueueUsers, |_| true), 6);
        assert_eq!(
            q1.sum(ApiMetric::OnQueueUsers, |e| e.qualifier
                == Qualifier::Routing(RoutingStatus::Idle)),
            2
        );
        let in_presence = |p| move |e: &Entry| e.qualifier == Qualifier::Presence(p);
        assert_eq!(
            q1.sum(ApiMetric::UserPresences, in_presence(SystemPresence::Break)),
            3,
            "every org presence mapped to BREAK counts"
        );
        assert_eq!(
            q1.sum(ApiMetric::UserPresences, |e| e.qualifier
                == Qualifier::UnmappedPresence),
            1
        );
        assert_eq!(q1.sum(ApiMetric::Waiting, |_| true), 8);
        assert_eq!(
            q1.sum(ApiMetric::Waiting, |e| e.media == Some(MediaType::Voice)),
            4,
            "media type is known although data came before group"
        );
        assert_eq!(
            q1.sum(ApiMetric::Alerting, |e| e.media == Some(MediaType::Other)),
            1
        );
        assert_eq!(
            q1.oldest(ApiMetric::Waiting, |e| e.media == Some(MediaType::Voice)),
            Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).single(),
            "the oldest of a list, whatever its order"
        );
        assert_eq!(
            q1.oldest(ApiMetric::Waiting, |_| true),
            Utc.with_ymd_and_hms(2026, 12, 2, 9, 58, 0).single()
        );
        assert_eq!(
            q1.oldest(ApiMetric::Waiting, |e| e.media == Some(MediaType::Chat)),
            None
        );
        assert_eq!(got["q2"].sum(ApiMetric::MemberUsers, |_| true), 0);
        assert!(
            !got.contains_key("q3"),
            "a queue absent from the answer is unknown, not zero"
        );
        assert!(!got.contains_key("other"));
    }

    #[test]
    fn mappings_after_the_results_still_resolve() {
        let body = r#"{"results":[{"group":{"queueId":"q"},"data":[{"metric":"oUserPresences","qualifier":"x","stats":{"count":2}}]}],
                       "systemToOrganizationMappings":{"MEAL":["x"]}}"#;
        let got = parse_response(body.as_bytes(), &ids(&["q"])).unwrap();
        assert_eq!(
            got["q"].sum(ApiMetric::UserPresences, |e| e.qualifier
                == Qualifier::Presence(SystemPresence::Meal)),
            2
        );
    }

    #[test]
    fn presences_without_mappings_are_an_error_not_a_guess() {
        let body = br#"{"results":[{"group":{"queueId":"q"},"data":[{"metric":"oUserPresences","qualifier":"x","stats":{"count":1}}]}]}"#;
        assert!(parse_response(body, &ids(&["q"])).is_err());
        // ...but only for a queue that was asked for.
        assert!(parse_response(body, &ids(&["other"])).unwrap().is_empty());
    }

    #[test]
    fn malformed_answers_are_errors() {
        for body in [
            &b"not json"[..],
            br#"{"results": 5}"#,
            br#"{"results":[{"group":{"queueId":"q"},"data":[{"metric":"oWaiting","stats":{"count":-1}}]}]}"#,
            br#"{"results":[{"group":{"queueId":"q"},"data":[{"metric":"oWaiting","observations":[{"observationDate":"soon"}]}]}]}"#,
            br#"[null, [{"group":{"queueId":"q"},"data":[]}]]"#,
            br#"{"results":[]} trailing"#,
        ] {
            assert!(
                parse_response(body, &ids(&["q"])).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Unknown fields and metrics are ignored; null lists read as empty.
        let ok = br#"{"extra":1,"results":[{"group":{"queueId":"q"},"data":[{"metric":"oNew","stats":{"count":1,"max":3}}]}]}"#;
        assert_eq!(
            parse_response(ok, &ids(&["q"])).unwrap()["q"],
            QueueObservation::default()
        );
        assert!(
            parse_response(br#"{"results":null}"#, &ids(&["q"]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn groups_of_other_queues_are_skipped_even_when_malformed_inside() {
        // Not materialised: the data of a queue that was not asked for is not even
        // checked for counts, so it costs no memory and no time beyond the scan.
        let body = br#"{"results":[{"group":{"queueId":"other"},"data":[{"metric":"oWaiting","stats":{"count":-5}}]},
                                   {"group":{"queueId":"q"},"data":[{"metric":"oWaiting","stats":{"count":1}}]}]}"#;
        let got = parse_response(body, &ids(&["q"])).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["q"].sum(ApiMetric::Waiting, |_| true), 1);
    }

    #[test]
    fn escaped_strings_are_read() {
        let body = br#"{"results":[{"group":{"queueId":"q\u0031"},"data":[{"metric":"o\u0057aiting","stats":{"count":2}}]}]}"#;
        let got = parse_response(body, &ids(&["q1"])).unwrap();
        assert_eq!(got["q1"].sum(ApiMetric::Waiting, |_| true), 2);
    }
}
