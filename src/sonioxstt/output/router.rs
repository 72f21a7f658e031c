// SPDX-License-Identifier: MPL-2.0
//! The global order of the output: which element sessions have ended, and the barrier that
//! holds later items back until the sessions before them have ended (a caps or segment
//! change, EOS), so an old session's words always go out first.

use std::collections::{BTreeSet, VecDeque};

use super::Item;

#[derive(Debug, Default)]
pub struct Router {
    ended: BTreeSet<u32>,
    /// Sessions that must end before the deferred items go out.
    barrier: Vec<u32>,
    deferred: VecDeque<Item>,
}

impl Router {
    /// The item, if it may be handled now; otherwise it waits behind the barrier.
    pub fn admit(&mut self, item: Item) -> Option<Item> {
        let passes = match &item {
            Item::Session { session, .. } => {
                self.barrier.is_empty() || self.barrier.contains(session)
            }
            _ => self.barrier.is_empty(),
        };
        if passes {
            Some(item)
        } else {
            self.deferred.push_back(item);
            None
        }
    }

    /// Whatever comes next waits until the sessions `after` have ended.
    pub fn wait_for(&mut self, after: Vec<u32>) {
        self.barrier = after
            .into_iter()
            .filter(|id| !self.ended.contains(id))
            .collect();
    }

    pub fn has_ended(&self, session: u32) -> bool {
        self.ended.contains(&session)
    }

    /// Marks `session` ended; returns the items that no longer wait.
    pub fn end(&mut self, session: u32) -> VecDeque<Item> {
        self.ended.insert(session);
        let was_waiting = !self.barrier.is_empty();
        self.barrier.retain(|&b| b != session);
        if was_waiting && self.barrier.is_empty() {
            std::mem::take(&mut self.deferred)
        } else {
            VecDeque::new()
        }
    }
}
