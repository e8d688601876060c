//! Queue definitions: ordered delivery with a parallelism limit.

use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueInfo {
    pub name: Arc<str>,
    pub parallelism: u32,
    pub paused: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl QueueInfo {
    pub fn new(name: &str, now: i64) -> Self {
        Self {
            name: name.into(),
            parallelism: 1,
            paused: false,
            created_at: now,
            updated_at: now,
        }
    }
}
