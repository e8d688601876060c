//! The broker's side of `-data-dir`: every release of the engine lock hands the step's
//! changes to the journal, and callers can wait until what they changed is on disk.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::Broker;
use super::core::Core;
use crate::domain::flow_control::FlowState;
use crate::ids::MessageId;
use crate::persistence::{Journal, NotDurable};
use crate::users::UserId;

/// What a broker on a data directory starts with.
pub struct Durability {
    pub journal: Arc<Journal>,
    /// Flow-control keys and unfinished messages (in the order they were stored) read back
    /// from disk, for the engine to take up.
    pub flows: Vec<(UserId, FlowState)>,
    pub messages: Vec<(UserId, MessageId)>,
}

/// The engine lock; on release (with `-data-dir`) the step's changes go to the journal, so
/// no change made under the lock, whichever method made it, is missed.
pub(super) struct CoreGuard<'a> {
    core: MutexGuard<'a, Core>,
    durable: bool,
}

impl<'a> CoreGuard<'a> {
    pub(super) fn new(core: MutexGuard<'a, Core>, durable: bool) -> Self {
        Self { core, durable }
    }
}

impl Deref for CoreGuard<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        if self.durable {
            self.core.end_step();
        }
    }
}

impl Broker {
    /// Resolves once every change made so far is on disk (at once without `-data-dir`).
    /// State-changing API calls await it before they answer.
    pub async fn durable(&self) -> Result<(), NotDurable> {
        match &self.shared.journal {
            None => Ok(()),
            Some(j) => {
                let seq = j.pushed();
                if j.is_durable(seq) {
                    return Ok(());
                }
                j.durable(seq).await
            }
        }
    }
}
