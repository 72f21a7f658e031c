// SPDX-License-Identifier: MPL-2.0
//! The audio a session sent that Soniox has not finalized yet, kept for a reconnect.
//!
//! When a connection fails, the words of its unfinalized audio are not lost: the next
//! connection first receives that audio again (from `final_audio_proc_ms` on, cut on a sample
//! frame boundary), then the audio that queued meanwhile. Each replayed chunk keeps its input
//! timestamp, so the new connection's timestamp table maps its own timeline onto the input's
//! and no word moves. The buffer is bounded: beyond the limit the oldest audio is forgotten
//! (the session keeps less than half the limit in flight, so this takes a service that
//! stops finalizing for long).

use std::collections::VecDeque;

use super::audio_queue::Chunk;

#[derive(Debug)]
pub struct Replay {
    /// Chunks sent on the current connection, each with its start offset in that connection.
    chunks: VecDeque<(u64, Chunk)>,
    /// What the current connection must send before anything else, oldest first: the audio
    /// the previous connections left unfinalized. A chunk leaves it only to be sent, so a
    /// connection that breaks before sending it all (even before connecting) loses none.
    pending: VecDeque<Chunk>,
    /// Bytes sent on the current connection.
    sent: u64,
    /// Bytes in `chunks` and `pending`.
    held: u64,
    limit_bytes: u64,
    frame_bytes: u64,
    bytes_per_second: u64,
}

impl Replay {
    pub fn new(limit_bytes: u64, frame_bytes: u64, bytes_per_second: u64) -> Replay {
        assert!(
            frame_bytes > 0 && bytes_per_second > 0,
            "audio has a format"
        );
        Replay {
            chunks: VecDeque::new(),
            pending: VecDeque::new(),
            sent: 0,
            held: 0,
            limit_bytes,
            frame_bytes,
            bytes_per_second,
        }
    }

    /// `chunk` went out on the current connection. Returns how many bytes of the oldest audio
    /// were forgotten to stay within the limit (0 unless the service stopped finalizing).
    pub fn sent(&mut self, chunk: &Chunk) -> u64 {
        let len = chunk.data.len() as u64;
        self.chunks.push_back((self.sent, chunk.clone()));
        self.sent += len;
        self.held += len;
        let mut forgotten = 0;
        while self.held > self.limit_bytes && self.chunks.len() > 1 {
            let (_, oldest) = self.chunks.pop_front().expect("more than one chunk");
            self.held -= oldest.data.len() as u64;
            forgotten += oldest.data.len() as u64;
        }
        forgotten
    }

    /// Soniox finalized the current connection's audio up to `ms`: that needs no replay.
    pub fn finalized(&mut self, ms: u64) {
        let offset = self.offset(ms);
        while let Some((start, chunk)) = self.chunks.front() {
            if start + chunk.data.len() as u64 > offset {
                break;
            }
            self.held -= chunk.data.len() as u64;
            self.chunks.pop_front();
        }
    }

    /// The next chunk the current connection must send first, if any. Hand it to
    /// [`Replay::sent`] once sent.
    pub fn next_pending(&mut self) -> Option<Chunk> {
        let chunk = self.pending.pop_front()?;
        self.held -= chunk.data.len() as u64;
        Some(chunk)
    }

    /// The current connection broke with Soniox's `final_audio_proc_ms` at `final_ms` (its
    /// time): the next connection starts with the audio from there on, then whatever this one
    /// did not get to send. Starts the count for the next connection.
    pub fn restart(&mut self, final_ms: u64) {
        let from = self.offset(final_ms);
        let mut again = VecDeque::new();
        for (start, chunk) in self.chunks.drain(..) {
            let end = start + chunk.data.len() as u64;
            if end <= from {
                self.held -= chunk.data.len() as u64;
                continue;
            }
            let skip = from.saturating_sub(start);
            self.held -= skip;
            again.push_back(Chunk {
                pts: chunk.pts + ns(skip, self.bytes_per_second),
                discont: chunk.discont || skip > 0,
                data: chunk.data.slice(skip as usize..),
            });
        }
        again.append(&mut self.pending);
        if let Some(first) = again.front_mut() {
            first.discont = true;
        }
        self.pending = again;
        self.sent = 0;
    }

    /// The current connection still has replay to send.
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Audio held for replay, in bytes.
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    /// The byte offset of `ms` on the current connection, on a frame boundary.
    fn offset(&self, ms: u64) -> u64 {
        let bytes = (ms as u128 * self.bytes_per_second as u128 / 1000) as u64;
        bytes - bytes % self.frame_bytes
    }
}

fn ns(bytes: u64, bytes_per_second: u64) -> u64 {
    (bytes as u128 * 1_000_000_000 / bytes_per_second as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const BPS: u64 = 32_000;
    const MS: u64 = 1_000_000;

    fn chunk(pts_ms: u64, ms: u64) -> Chunk {
        let data: Vec<u8> = (0..BPS * ms / 1000).map(|i| i as u8).collect();
        Chunk {
            pts: pts_ms * MS,
            discont: false,
            data: Bytes::from(data),
        }
    }

    /// The connection broke at `final_ms`: what the next one sends first.
    fn take(replay: &mut Replay, final_ms: u64) -> Vec<Chunk> {
        replay.restart(final_ms);
        std::iter::from_fn(|| replay.next_pending()).collect()
    }

    #[test]
    fn replay_starts_at_the_finalized_audio_cut_on_a_frame() {
        let mut replay = Replay::new(60 * BPS, 2, BPS);
        for i in 0..10 {
            replay.sent(&chunk(5000 + i * 100, 100));
        }
        replay.finalized(420);
        assert_eq!(
            replay.held_bytes(),
            6 * 3200,
            "chunks before 400 ms are gone"
        );
        replay.restart(433);
        assert_eq!(
            replay.held_bytes(),
            6 * 3200 - 1056,
            "held until sent again"
        );
        let again: Vec<Chunk> = std::iter::from_fn(|| replay.next_pending()).collect();
        assert_eq!(again.len(), 6);
        // 433 ms = 13856 bytes, inside the chunk starting at 400 ms (12800): 1056 bytes in.
        assert_eq!(again[0].pts, 5433 * MS);
        assert_eq!(again[0].data.len(), 3200 - 1056);
        assert_eq!(again[0].data[0], (1056 % 256) as u8);
        assert!(again[0].discont, "the replay starts a new anchor");
        assert_eq!(again[1].pts, 5500 * MS);
        assert!(!again[1].discont);
        assert_eq!(
            replay.held_bytes(),
            0,
            "counting starts again for the next connection"
        );
    }

    #[test]
    fn a_connection_that_breaks_before_replaying_everything_loses_nothing() {
        let mut replay = Replay::new(60 * BPS, 2, BPS);
        for i in 0..6 {
            replay.sent(&chunk(i * 100, 100));
        }
        replay.restart(0);
        // The next connection never connects: the same audio waits for the one after.
        replay.restart(0);
        // That one sends two chunks, gets nothing finalized, and breaks.
        for _ in 0..2 {
            let chunk = replay.next_pending().unwrap();
            replay.sent(&chunk);
        }
        let again = take(&mut replay, 0);
        let pts: Vec<u64> = again.iter().map(|c| c.pts / MS).collect();
        assert_eq!(pts, [0, 100, 200, 300, 400, 500]);
        assert!(again.iter().all(|c| c.data.len() == 3200));
        assert_eq!(replay.held_bytes(), 0);
    }

    #[test]
    fn odd_offsets_are_cut_on_whole_frames() {
        let mut replay = Replay::new(60 * 8000 * 4, 4, 8000 * 4); // 8 kHz F32
        replay.sent(&Chunk {
            pts: 0,
            discont: false,
            data: Bytes::from(vec![0u8; 3200]),
        });
        let again = take(&mut replay, 3); // 96 bytes: a whole number of 4-byte frames
        assert_eq!(again[0].data.len() % 4, 0);
        assert_eq!(again[0].data.len(), 3200 - 96);
        assert_eq!(again[0].pts, 3 * MS);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut replay = Replay::new(BPS, 2, BPS); // 1 s
        for i in 0..15 {
            replay.sent(&chunk(i * 100, 100));
        }
        assert_eq!(replay.held_bytes(), BPS);
        let again = take(&mut replay, 0);
        assert_eq!(
            again[0].pts,
            500 * MS,
            "the oldest half second was forgotten"
        );
    }
}
