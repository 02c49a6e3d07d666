//! One element of an answer's `data`, read field by field: the metric, its qualifier,
//! `stats.count`, and the earliest `observationDate` of its detail observations (folded
//! while they are read, so a long list costs no memory).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string borrowed from the body when it has no escapes.
pub(super) struct Str<'de>(pub(super) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// One element of `data`, read field by field.
pub(super) struct MetricData<'de> {
    pub(super) metric: Str<'de>,
    pub(super) qualifier: Option<Str<'de>>,
    pub(super) count: Option<f64>,
    pub(super) oldest: Option<DateTime<Utc>>,
}

impl<'de> de::Deserialize<'de> for MetricData<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MetricData<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a metric data object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut metric = None;
                let mut qualifier = None;
                let mut count = None;
                let mut oldest = None;
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    match key.0.as_ref() {
                        "metric" => metric = Some(map.next_value::<Str<'de>>()?),
                        "qualifier" => qualifier = map.next_value::<Option<Str<'de>>>()?,
                        "stats" => count = map.next_value_seed(StatsSeed)?,
                        "observations" => oldest = map.next_value_seed(OldestSeed)?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let metric = metric.ok_or_else(|| de::Error::missing_field("metric"))?;
                Ok(MetricData {
                    metric,
                    qualifier,
                    count,
                    oldest,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// `stats`: only `count` is read (null stats read as no count).
struct StatsSeed;

impl<'de> DeserializeSeed<'de> for StatsSeed {
    type Value = Option<f64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for StatsSeed {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stats object")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut count = None;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if key.0 == "count" {
                count = map.next_value::<Option<f64>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(count)
    }
}

/// `observations`: folded into the earliest `observationDate` while it is read.
struct OldestSeed;

impl<'de> DeserializeSeed<'de> for OldestSeed {
    type Value = Option<DateTime<Utc>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OldestSeed {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of observations")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut oldest: Option<DateTime<Utc>> = None;
        while let Some(date) = seq.next_element::<ObservationDate>()? {
            if let Some(d) = date.0 {
                oldest = Some(oldest.map_or(d, |o| o.min(d)));
            }
        }
        Ok(oldest)
    }
}

/// One observation: only its `observationDate` is read.
struct ObservationDate(Option<DateTime<Utc>>);

impl<'de> de::Deserialize<'de> for ObservationDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObservationDate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an observation object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut date = None;
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    if key.0 == "observationDate" {
                        let s = map.next_value::<Str<'de>>()?;
                        let d = DateTime::parse_from_rfc3339(&s.0).map_err(|e| {
                            de::Error::custom(format_args!(
                                "observationDate `{}` is not a date: {e}",
                                s.0
                            ))
                        })?;
                        date = Some(d.with_timezone(&Utc));
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ObservationDate(date))
            }
        }
        d.deserialize_map(V)
    }
}
