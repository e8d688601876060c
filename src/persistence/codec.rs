//! How records are written to disk: MessagePack with named fields (`rmp_serde::to_vec_named`).
//!
//! Self-describing on purpose: a record written before a field was added still reads (the
//! field takes its `#[serde(default)]`), and one written by a newer server with a field this
//! one does not know reads too (unknown fields are skipped). Bodies stay binary, unlike JSON.
//!
//! The few domain types that are not plain data are stored by what they were parsed from
//! (a retry expression, a cron line, a message id) or replayed from their parts (a run's
//! steps, whose hash chain and shared segments are rebuilt by pushing the entries again).

use std::sync::Arc;

use bytes::Bytes;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::cron::CronSpec;
use crate::domain::log::{LogDetail, LogEntry, LogState};
use crate::domain::message::MessageSpec;
use crate::domain::retry_expr::RetryExpr;
use crate::domain::workflow::meta::StepMeta;
use crate::domain::workflow::steps::Steps;
use crate::domain::workflow::tag::CallType;
use crate::ids::MessageId;

pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serializing plain in-memory data into a Vec cannot fail (no I/O, no map with keys
    // MessagePack refuses); an empty record would be refused on load, never silently used.
    rmp_serde::to_vec_named(value).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

impl Serialize for RetryExpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.source())
    }
}

impl<'de> Deserialize<'de> for RetryExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        RetryExpr::parse(&source).map_err(D::Error::custom)
    }
}

impl Serialize for CronSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for CronSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        CronSpec::parse(&source).map_err(D::Error::custom)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse()
            .map_err(|_| D::Error::custom(format!("not a message id: {text}")))
    }
}

/// One step as stored: what [`Steps::push`] was given.
#[derive(Serialize, Deserialize)]
struct StoredStep {
    id: MessageId,
    call_type: CallType,
    body: Bytes,
    meta: Option<Arc<StepMeta>>,
    created_at: i64,
}

impl Serialize for Steps {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|e| StoredStep {
            id: e.message_id,
            call_type: e.call_type,
            body: self.body(e),
            meta: e.meta.clone(),
            created_at: e.created_at,
        }))
    }
}

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = Vec::<StoredStep>::deserialize(d)?;
        let mut steps = Steps::default();
        for e in stored {
            steps.push(e.id, e.call_type, &e.body, e.meta, e.created_at);
        }
        Ok(steps)
    }
}

/// A log entry as stored. Written by format 2 with its spec inline (`LogEntry`'s own
/// fields); since format 3 an entry that shows a stored message's spec names that
/// message's row instead (`spec_row`), so a publish writes its spec once, not twice.
#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct LogRow<S> {
    pub seq: u64,
    pub time: i64,
    pub state: LogState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<S>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_row: Option<i64>,
    pub detail: Option<Arc<LogDetail>>,
}

impl<S> LogRow<S> {
    /// The entry this row stores, shown with `spec` (its own, or its message's).
    pub fn into_entry(self, spec: Arc<MessageSpec>) -> LogEntry {
        LogEntry {
            seq: self.seq,
            time: self.time,
            state: self.state,
            spec,
            detail: self.detail,
        }
    }
}
