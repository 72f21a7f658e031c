// SPDX-License-Identifier: MPL-2.0
//! The queue between a streaming thread and a session: audio and control, in stream order.
//!
//! The producer is a GStreamer streaming thread (plain blocking code), the consumer is the
//! session task on the runtime. What happens when audio arrives faster than the socket takes
//! it depends on the input:
//! - [`Overflow::Block`] (non-live): the producer waits for room; nothing is lost. A producer
//!   that waits is woken once the queue has drained to half its limit (not for each chunk
//!   taken), and only a waiting producer is woken: a fast producer and its consumer do not
//!   trade a wakeup per chunk.
//! - [`Overflow::DropOldest`] (live): the producer never waits; when the audio the service
//!   has not taken yet — queued here, plus sent but not yet processed (in socket buffers or
//!   waiting at the server, as the session reports) — would exceed the limit, the oldest
//!   queued audio is dropped and the audio after the hole is marked discontinuous, so the
//!   timestamp table re-anchors and later timestamps stay exact.
//!
//! While the session's connection is suspect or being replaced ([`AudioQueue::set_suspect`]),
//! the live limit rises to the hold limit (the replay window), so that audio is not dropped
//! while the session finds out whether it must reconnect and replay.
//!
//! Audio that simply follows on from the newest queued chunk is joined to it as it is pushed,
//! up to a size ([`AudioQueue::merging_up_to`]): the session sends fewer, larger frames.
//!
//! Control items (finalize, gaps, end of audio) are never dropped and do not count against
//! the limit. Closing the queue (the session ended or was aborted) wakes a waiting producer.
//! The moment the end of audio is queued starts the session's drain deadline.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// Audio bytes with the input timestamp of their first byte (ns).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub pts: u64,
    /// The input timestamps do not simply continue from the previous chunk.
    pub discont: bool,
    pub data: Bytes,
}

/// What a session is asked to do, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    Audio(Chunk),
    Finalize,
    /// The input has no audio for this time (a GAP event): nothing is sent for it.
    Gap {
        pts: u64,
        duration: Option<u64>,
    },
    EndOfAudio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Block,
    DropOldest,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushed {
    /// Bytes of the oldest audio dropped to make room.
    pub dropped_bytes: u64,
    /// This push started dropping after a period without drops (warn once per episode).
    pub started_dropping: bool,
}

/// The queue was closed: the session no longer takes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

#[derive(Debug)]
pub struct AudioQueue {
    inner: Mutex<Inner>,
    room: Condvar,
    ready: Notify,
    /// Wakes those waiting for the end of audio.
    ended: Notify,
    overflow: Overflow,
    limit_bytes: u64,
    /// The live limit while the connection is suspect (at least `limit_bytes`).
    hold_limit_bytes: u64,
    /// Audio that follows on from the newest queued chunk joins it up to this size.
    merge_bytes: u64,
    bytes_per_second: u64,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Queued>,
    audio_bytes: u64,
    /// Sent, but not yet processed by the service (as far as the session knows).
    unprocessed_bytes: u64,
    closed: bool,
    /// Where the last pushed audio ends (ns), to stamp audio that has no PTS.
    next_pts: Option<u64>,
    /// Dropping since the queue last fell below half its limit.
    dropping: bool,
    /// The next audio handed out follows a hole.
    hole: bool,
    /// The connection is suspect or being replaced: hold up to the hold limit.
    suspect: bool,
    /// When the end of audio was queued.
    ended_at: Option<Instant>,
    /// A producer waits for room.
    producer_waiting: bool,
    /// A replacement connection has caught up on its replay: the backlog queued meanwhile
    /// is held (not dropped) until it is back within the live limit.
    draining_backlog: bool,
}

impl AudioQueue {
    /// `limit_bytes`: audio held before the producer waits or the oldest audio is dropped
    /// (at least one chunk is always accepted).
    pub fn new(overflow: Overflow, limit_bytes: u64, bytes_per_second: u64) -> AudioQueue {
        assert!(bytes_per_second > 0, "audio has a rate");
        AudioQueue {
            inner: Mutex::new(Inner::default()),
            room: Condvar::new(),
            ready: Notify::new(),
            ended: Notify::new(),
            overflow,
            limit_bytes: limit_bytes.max(1),
            hold_limit_bytes: limit_bytes.max(1),
            merge_bytes: 0,
            bytes_per_second,
        }
    }

    /// Audio queued back to back is joined into chunks of up to `bytes` as it is pushed:
    /// fewer, larger frames for audio that waits anyway (Soniox's own examples send 120 ms
    /// frames), and the producer's buffer is copied and released on the producer's thread.
    /// Only audio that simply continues the newest queued chunk is joined (no DISCONT, no
    /// timestamp jump, nothing queued between them).
    pub fn merging_up_to(mut self, bytes: u64) -> AudioQueue {
        self.merge_bytes = bytes;
        self
    }

    /// While the connection is suspect, live audio is held up to `bytes` (see
    /// [`AudioQueue::set_suspect`]).
    pub fn holding_up_to(mut self, bytes: u64) -> AudioQueue {
        self.hold_limit_bytes = bytes.max(self.limit_bytes);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues audio whose first byte has input timestamp `pts` (`None`: it follows the
    /// previous audio). Blocks only in [`Overflow::Block`] mode, until there is room or the
    /// queue is closed.
    pub fn push_audio(
        &self,
        pts: Option<u64>,
        discont: bool,
        data: Bytes,
    ) -> Result<Pushed, Closed> {
        let len = data.len() as u64;
        let mut inner = self.lock();
        if self.overflow == Overflow::Block
            && !inner.closed
            && inner.audio_bytes > 0
            && inner.audio_bytes + len > self.limit_bytes
        {
            // Full: wait until it has drained to half and has room (or is empty, or closed).
            while !inner.closed
                && inner.audio_bytes > 0
                && (inner.audio_bytes > self.limit_bytes / 2
                    || inner.audio_bytes + len > self.limit_bytes)
            {
                inner.producer_waiting = true;
                inner = self.room.wait(inner).unwrap_or_else(|e| e.into_inner());
            }
            inner.producer_waiting = false;
        }
        if inner.closed {
            return Err(Closed);
        }
        let pts = pts.or(inner.next_pts).unwrap_or(0);
        inner.next_pts = Some(pts + self.duration_ns(len));
        let mut pushed = Pushed::default();
        if self.overflow == Overflow::DropOldest {
            if inner.draining_backlog
                && inner.audio_bytes + inner.unprocessed_bytes + len <= self.limit_bytes
            {
                inner.draining_backlog = false;
            }
            let limit = if inner.suspect || inner.draining_backlog {
                self.hold_limit_bytes
            } else {
                self.limit_bytes
            };
            while inner.audio_bytes > 0 && inner.audio_bytes + inner.unprocessed_bytes + len > limit
            {
                pushed.dropped_bytes += inner.drop_oldest_audio();
            }
            if pushed.dropped_bytes > 0 {
                pushed.started_dropping = !std::mem::replace(&mut inner.dropping, true);
            }
        }
        inner.audio_bytes += len;
        match inner.items.back_mut() {
            Some(Queued::Audio(last))
                if !discont
                    && last.data.len() as u64 + len <= self.merge_bytes
                    && last.pts + self.duration_ns(last.data.len() as u64) == pts =>
            {
                // Joined in place once the newest chunk is a buffer of the queue's own.
                let mut joined = std::mem::take(&mut last.data)
                    .try_into_mut()
                    .unwrap_or_else(|shared| {
                        let mut own = BytesMut::with_capacity(self.merge_bytes as usize);
                        own.extend_from_slice(&shared);
                        own
                    });
                joined.extend_from_slice(&data);
                last.data = joined.freeze();
                // Someone already knows the newest chunk is there: no wakeup for the rest.
                return Ok(pushed);
            }
            _ => inner
                .items
                .push_back(Queued::Audio(Chunk { pts, discont, data })),
        }
        drop(inner);
        self.ready.notify_one();
        Ok(pushed)
    }

    /// Queues a control item (never blocks, never dropped).
    pub fn push_control(&self, item: Queued) -> Result<(), Closed> {
        debug_assert!(
            !matches!(item, Queued::Audio(_)),
            "audio goes through push_audio"
        );
        let mut inner = self.lock();
        if inner.closed {
            return Err(Closed);
        }
        let end = item == Queued::EndOfAudio && inner.ended_at.is_none();
        if end {
            inner.ended_at = Some(Instant::now());
        }
        inner.items.push_back(item);
        drop(inner);
        self.ready.notify_one();
        if end {
            self.ended.notify_waiters();
        }
        Ok(())
    }

    /// When the end of audio was queued, if it was.
    pub fn ended_at(&self) -> Option<Instant> {
        self.lock().ended_at
    }

    /// Waits until the end of audio is queued; returns when that was. Cancel-safe.
    pub async fn wait_ended(&self) -> Instant {
        loop {
            let notified = self.ended.notified();
            if let Some(at) = self.ended_at() {
                return at;
            }
            notified.await;
        }
    }

    /// The connection is suspect or being replaced (`true`), or healthy again.
    pub fn set_suspect(&self, suspect: bool) {
        self.lock().suspect = suspect;
    }

    /// A replacement connection is healthy again after its replay: what was queued while the
    /// connection was replaced is on its way now, and is still held up to the hold limit
    /// until the backlog is back within the live limit (else the oldest of it would be
    /// dropped the moment the replay is processed, while it drains at full speed).
    pub fn drain_backlog(&self) {
        let mut inner = self.lock();
        inner.suspect = false;
        inner.draining_backlog = true;
    }

    /// The next item, waiting for one; `None` once closed. Cancel-safe.
    pub async fn pop(&self) -> Option<Queued> {
        loop {
            let notified = self.ready.notified();
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if self.lock().closed {
                return None;
            }
            notified.await;
        }
    }

    /// Closed: nothing more comes.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next item if there is one.
    pub fn try_pop(&self) -> Option<Queued> {
        let mut inner = self.lock();
        let mut item = inner.items.pop_front()?;
        if let Queued::Audio(chunk) = &mut item {
            inner.audio_bytes -= chunk.data.len() as u64;
            if std::mem::take(&mut inner.hole) {
                chunk.discont = true;
            }
            self.audio_taken(inner);
        }
        Some(item)
    }

    /// After audio was taken: below half the limit, the drop episode is over and a waiting
    /// producer is woken (only then, and only a waiting one).
    fn audio_taken(&self, mut inner: MutexGuard<'_, Inner>) {
        let half = inner.audio_bytes <= self.limit_bytes / 2;
        if half {
            inner.dropping = false;
        }
        let wake = half && inner.producer_waiting;
        drop(inner);
        if wake {
            self.room.notify_all();
        }
    }

    /// The session's count of audio sent but not yet processed by the service: it counts
    /// against the live limit as much as queued audio does.
    pub fn set_unprocessed(&self, bytes: u64) {
        self.lock().unprocessed_bytes = bytes;
    }

    /// Bytes of audio in `ms`.
    pub fn bytes_for_ms(&self, ms: u64) -> u64 {
        (ms as u128 * self.bytes_per_second as u128 / 1000) as u64
    }

    /// Refuses everything from now on and wakes a waiting producer. What is queued stays
    /// readable through `try_pop` (for the session that closes it).
    pub fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
        self.ready.notify_one();
    }

    /// Audio waiting, in bytes.
    pub fn queued_bytes(&self) -> u64 {
        self.lock().audio_bytes
    }

    pub fn duration_ns(&self, bytes: u64) -> u64 {
        (bytes as u128 * 1_000_000_000 / self.bytes_per_second as u128) as u64
    }
}

impl Inner {
    /// Drops the oldest audio chunk (control items stay); returns its length.
    fn drop_oldest_audio(&mut self) -> u64 {
        let Some(index) = self
            .items
            .iter()
            .position(|item| matches!(item, Queued::Audio(_)))
        else {
            return 0;
        };
        let Some(Queued::Audio(chunk)) = self.items.remove(index) else {
            unreachable!("position found audio");
        };
        let len = chunk.data.len() as u64;
        self.audio_bytes -= len;
        self.hole = true;
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    const BPS: u64 = 32_000; // 16 kHz S16

    fn audio(ms: u64) -> Bytes {
        Bytes::from(vec![0u8; (BPS * ms / 1000) as usize])
    }

    fn pop_audio(queue: &AudioQueue) -> Chunk {
        match queue.try_pop() {
            Some(Queued::Audio(chunk)) => chunk,
            other => panic!("expected audio, got {other:?}"),
        }
    }

    #[test]
    fn live_overflow_drops_the_oldest_audio_and_marks_the_hole() {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS, BPS); // 1 s
        for i in 0..10 {
            let pushed = queue
                .push_audio(Some(i * 100_000_000), false, audio(100))
                .unwrap();
            assert_eq!(pushed, Pushed::default());
        }
        queue.push_control(Queued::Finalize).unwrap();
        let pushed = queue
            .push_audio(Some(1_000_000_000), false, audio(100))
            .unwrap();
        assert_eq!(pushed.dropped_bytes, 3200);
        assert!(pushed.started_dropping);
        let pushed = queue
            .push_audio(Some(1_100_000_000), false, audio(100))
            .unwrap();
        assert!(!pushed.started_dropping, "one warning per episode");
        assert_eq!(queue.queued_bytes(), BPS);
        assert_eq!(pushed.dropped_bytes, 3200, "6400 bytes dropped in all");
        let first = pop_audio(&queue);
        assert_eq!(first.pts, 200_000_000, "0 and 100 ms were dropped");
        assert!(first.discont, "the audio after the hole re-anchors");
        assert!(!pop_audio(&queue).discont);
    }

    #[test]
    fn audio_the_service_has_not_processed_counts_against_the_live_limit() {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS, BPS); // 1 s
        queue.set_unprocessed(BPS * 8 / 10); // 800 ms in socket buffers
        queue.push_audio(Some(0), false, audio(100)).unwrap();
        let pushed = queue
            .push_audio(Some(100_000_000), false, audio(100))
            .unwrap();
        assert_eq!(pushed.dropped_bytes, 0);
        let pushed = queue
            .push_audio(Some(200_000_000), false, audio(100))
            .unwrap();
        assert_eq!(
            pushed.dropped_bytes, 3200,
            "0.8 + 0.3 s > 1 s: the oldest goes"
        );
        queue.set_unprocessed(0);
        let pushed = queue
            .push_audio(Some(300_000_000), false, audio(100))
            .unwrap();
        assert_eq!(pushed.dropped_bytes, 0);
    }

    #[test]
    fn while_the_connection_is_suspect_live_audio_is_held_up_to_the_hold_limit() {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS, BPS).holding_up_to(3 * BPS);
        queue.set_suspect(true);
        for i in 0..25 {
            let pushed = queue
                .push_audio(Some(i * 100_000_000), false, audio(100))
                .unwrap();
            assert_eq!(pushed.dropped_bytes, 0, "2.5 s held");
        }
        // Healthy again: beyond 1 s the oldest goes.
        queue.set_suspect(false);
        let pushed = queue
            .push_audio(Some(2_500_000_000), false, audio(100))
            .unwrap();
        assert_eq!(pushed.dropped_bytes, 16 * 3200);
        assert_eq!(pop_audio(&queue).pts, 1_600_000_000);
    }

    #[test]
    fn a_backlog_left_by_a_replaced_connection_is_held_until_it_fits_again() {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS, BPS).holding_up_to(3 * BPS);
        queue.set_suspect(true);
        for i in 0..25 {
            queue
                .push_audio(Some(i * 100_000_000), false, audio(100))
                .unwrap();
        }
        // The replacement has caught up: the 2.5 s backlog drains, nothing is dropped...
        queue.drain_backlog();
        let pushed = queue
            .push_audio(Some(2_500_000_000), false, audio(100))
            .unwrap();
        assert_eq!(pushed.dropped_bytes, 0);
        for _ in 0..20 {
            pop_audio(&queue);
        }
        // ...and once it fits in the live limit, the live limit holds again.
        for i in 26..40 {
            queue
                .push_audio(Some(i * 100_000_000), false, audio(100))
                .unwrap();
        }
        assert_eq!(queue.queued_bytes(), BPS, "1 s: the live limit");
    }

    #[test]
    fn the_end_of_audio_is_stamped_when_queued() {
        let queue = AudioQueue::new(Overflow::Block, BPS, BPS);
        assert_eq!(queue.ended_at(), None);
        let before = Instant::now();
        queue.push_control(Queued::EndOfAudio).unwrap();
        let at = queue.ended_at().unwrap();
        assert!(at >= before);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(queue.wait_ended()), at);
    }

    #[test]
    fn control_items_are_kept_in_order_and_never_dropped() {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS / 10, BPS);
        queue.push_audio(Some(0), false, audio(100)).unwrap();
        queue.push_control(Queued::Finalize).unwrap();
        queue
            .push_audio(Some(100_000_000), false, audio(100))
            .unwrap();
        queue.push_control(Queued::EndOfAudio).unwrap();
        assert_eq!(queue.try_pop(), Some(Queued::Finalize));
        assert_eq!(pop_audio(&queue).pts, 100_000_000);
        assert_eq!(queue.try_pop(), Some(Queued::EndOfAudio));
        assert_eq!(queue.try_pop(), None);
    }

    #[test]
    fn audio_without_pts_follows_the_previous_audio() {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS, BPS);
        queue
            .push_audio(Some(5_000_000_000), false, audio(100))
            .unwrap();
        queue.push_audio(None, false, audio(100)).unwrap();
        assert_eq!(pop_audio(&queue).pts, 5_000_000_000);
        assert_eq!(pop_audio(&queue).pts, 5_100_000_000);
    }

    #[test]
    fn non_live_producers_wait_for_room_and_closing_wakes_them() {
        let queue = Arc::new(AudioQueue::new(Overflow::Block, BPS / 5, BPS));
        queue.push_audio(Some(0), false, audio(100)).unwrap();
        queue
            .push_audio(Some(100_000_000), false, audio(100))
            .unwrap();
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.push_audio(Some(200_000_000), false, audio(100)))
        };
        // The producer waits until the queue has drained to half...
        std::thread::sleep(Duration::from_millis(50));
        assert!(!producer.is_finished());
        pop_audio(&queue);
        assert_eq!(producer.join().unwrap().unwrap().dropped_bytes, 0);
        // ...or the queue is closed.
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.push_audio(None, false, audio(100)))
        };
        std::thread::sleep(Duration::from_millis(50));
        queue.close();
        assert_eq!(producer.join().unwrap(), Err(Closed));
    }

    #[test]
    fn a_waiting_producer_is_woken_at_half_not_for_each_chunk_taken() {
        let queue = Arc::new(AudioQueue::new(Overflow::Block, BPS * 4 / 10, BPS));
        for i in 0..4 {
            queue
                .push_audio(Some(i * 100_000_000), false, audio(100))
                .unwrap();
        }
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.push_audio(None, false, audio(100)))
        };
        std::thread::sleep(Duration::from_millis(50));
        pop_audio(&queue);
        // Room for the chunk, but the queue is still over half full: it goes on waiting.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!producer.is_finished());
        pop_audio(&queue);
        assert_eq!(producer.join().unwrap().unwrap().dropped_bytes, 0);
        assert_eq!(queue.queued_bytes(), BPS * 3 / 10);
    }

    #[test]
    fn pop_waits_for_an_item_and_ends_when_closed() {
        let queue = Arc::new(AudioQueue::new(Overflow::Block, BPS, BPS));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let q = queue.clone();
        std::thread::spawn(move || {
            q.push_control(Queued::Finalize).unwrap();
            q.close();
        });
        runtime.block_on(async {
            assert_eq!(queue.pop().await, Some(Queued::Finalize));
            assert_eq!(queue.pop().await, None);
        });
    }

    /// A 20 ms frame whose bytes are all `n`.
    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; (BPS / 50) as usize])
    }

    #[test]
    fn audio_that_follows_on_is_joined_as_it_is_pushed() {
        let queue = AudioQueue::new(Overflow::Block, BPS, BPS).merging_up_to(BPS * 120 / 1000);
        // A clone held elsewhere (another session's queue) is not changed by joining.
        let shared = frame(0);
        queue.push_audio(Some(0), false, shared.clone()).unwrap();
        for n in 1..8u8 {
            // No PTS: follows on from the previous audio.
            queue.push_audio(None, false, frame(n)).unwrap();
        }
        assert_eq!(shared, frame(0));
        let first = pop_audio(&queue);
        assert_eq!((first.pts, first.discont), (0, false));
        let expected: Vec<u8> = (0..6u8).flat_map(|n| frame(n).to_vec()).collect();
        assert_eq!(first.data, expected, "six frames, in order");
        let second = pop_audio(&queue);
        assert_eq!(second.pts, 120_000_000);
        assert_eq!(second.data.len() as u64, BPS * 40 / 1000);
        assert_eq!(queue.queued_bytes(), 0);
    }

    #[test]
    fn audio_after_a_break_is_not_joined() {
        let queue = AudioQueue::new(Overflow::Block, BPS, BPS).merging_up_to(BPS);
        queue.push_audio(Some(0), false, frame(0)).unwrap();
        // A timestamp jump, a DISCONT, a control item: each starts a chunk of its own.
        queue.push_audio(Some(40_000_000), false, frame(1)).unwrap();
        queue.push_audio(Some(60_000_000), true, frame(2)).unwrap();
        queue.push_control(Queued::Finalize).unwrap();
        queue.push_audio(Some(80_000_000), false, frame(3)).unwrap();
        queue
            .push_audio(Some(100_000_000), false, frame(4))
            .unwrap();
        let pts: Vec<(u64, bool, usize)> = std::iter::from_fn(|| queue.try_pop())
            .filter_map(|item| match item {
                Queued::Audio(c) => Some((c.pts, c.discont, c.data.len())),
                _ => None,
            })
            .collect();
        assert_eq!(
            pts,
            [
                (0, false, 640),
                (40_000_000, false, 640),
                (60_000_000, true, 640),
                (80_000_000, false, 1280)
            ]
        );
    }

    #[test]
    fn a_live_queue_that_joins_still_drops_the_oldest_and_marks_the_hole() {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS / 10, BPS).merging_up_to(BPS / 25);
        // 100 ms held, chunks of up to 40 ms: the sixth frame drops the oldest 40 ms.
        for n in 0..5u8 {
            let pushed = queue.push_audio(None, false, frame(n)).unwrap();
            assert_eq!(pushed.dropped_bytes, 0);
        }
        let pushed = queue.push_audio(None, false, frame(5)).unwrap();
        assert_eq!(pushed.dropped_bytes, BPS / 25);
        let next = pop_audio(&queue);
        assert_eq!((next.pts, next.discont), (40_000_000, true));
        assert_eq!(next.data, [frame(2), frame(3)].concat());
    }
}
