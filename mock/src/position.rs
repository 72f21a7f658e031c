//! Where in the client's stream a session's audio comes from.
//!
//! Soniox recognizes whatever audio a session gets, so a client that opens a new session and
//! replays audio (reconnect) or continues the stream there (rotation) hears the words of *that*
//! audio again, with times counted from the new session's first audio byte. The stand-in cannot
//! recognize, so it has to find out where a session's audio sits in the stream, then play the
//! script from there ([`crate::Script::starting_at`]). Two ways:
//!
//! - **Reference audio** (`MockConfig::reference_audio`): the whole input stream, in the
//!   session's format. The session's first bytes are searched in it. Digital silence matches in
//!   many places, so the search narrows the candidates with every new frame until one is left.
//! - **Timecoded audio** (`MockConfig::timecoded`, audio made by [`timecoded_s16le`]): every
//!   10 ms frame carries its absolute index; the first complete frame header gives the offset.
//!
//! While the position is not known yet (usually a few ms of audio; up to
//! [`AMBIGUITY_LIMIT_MS`] when a session starts in digital silence) the session sends no result
//! messages: it cannot know yet which words it hears.

use std::sync::Arc;

use crate::config::MockConfig;
use crate::start_request::StartRequest;

/// How the stand-in placed a session's audio in the client's stream (see
/// `SessionRecord::position`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StreamPosition {
    /// Neither `MockConfig::timecoded` nor `MockConfig::reference_audio` is set: the script plays
    /// from 0 ms on every session, as if each session got the stream from its start.
    #[default]
    Untracked,
    /// Tracking is on, but the session has not received enough audio to tell yet (or ended
    /// before sending any). Result messages are held back meanwhile.
    Pending,
    /// The session's first audio byte is `offset_ms` into `MockConfig::reference_audio`.
    /// `unique: false`: several places still matched after [`AMBIGUITY_LIMIT_MS`] of audio (or
    /// at `finalize` / end of audio), e.g. a session of digital silence; the earliest was taken.
    Reference { offset_ms: u64, unique: bool },
    /// The session's first audio byte is `offset_ms` into the stream, read from the timecode of
    /// [`timecoded_s16le`] audio.
    Timecode { offset_ms: u64 },
    /// Tracking is on but the audio was not found (not in the reference, no valid timecode, or
    /// not `pcm_s16le` mono for timecodes): the script plays from 0 ms.
    NotFound,
}

impl StreamPosition {
    /// The stream position of the session's first audio byte, if it was located.
    pub fn offset_ms(&self) -> Option<u64> {
        match self {
            StreamPosition::Reference { offset_ms, .. }
            | StreamPosition::Timecode { offset_ms } => Some(*offset_ms),
            _ => None,
        }
    }
}

/// Session audio compared against the reference before the first search.
pub const REFERENCE_PROBE_BYTES: usize = 640;

/// A reference search that still has several candidates after this much session audio takes
/// the earliest (see [`StreamPosition::Reference`]).
pub const AMBIGUITY_LIMIT_MS: u64 = 3000;

/// S16 samples at the start of every timecoded frame: magic (2), index low/high, check.
const HEADER_SAMPLES: usize = 5;
const MAGIC: [u16; 2] = [0x4d53, 0x7c2a];

fn check_word(index: u32) -> u16 {
    (index as u16).rotate_left(3) ^ ((index >> 16) as u16) ^ 0xa55a
}

/// First sample of 10 ms frame `k` (frames are `rate / 100` samples, rounded per frame).
fn frame_start(k: u64, rate: u64) -> u64 {
    k * rate / 100
}

/// The frame that holds `sample`.
fn frame_of(sample: u64, rate: u64) -> u64 {
    ((sample + 1) * 100).div_ceil(rate) - 1
}

/// Milliseconds (rounded up) of `units` at `per_second`; exact for positions that were computed
/// from whole milliseconds by rounding down.
fn units_to_ms(units: u64, per_second: u64) -> u64 {
    (u128::from(units) * 1000).div_ceil(u128::from(per_second)) as u64
}

/// Timecoded test audio: `pcm_s16le` mono at `rate` Hz covering `[start_ms, start_ms +
/// duration_ms)` of a stream whose every 10 ms frame starts with a 5-sample header carrying the
/// frame's absolute index (magic, index, check); all other samples are 0.
///
/// Consecutive calls (`start_ms` = the previous `start_ms + duration_ms`) join seamlessly, so a
/// long stream can be made buffer by buffer. With `MockConfig::timecoded` the stand-in reads a
/// session's stream position from its first complete frame header.
///
/// Panics if `rate < 1000`.
pub fn timecoded_s16le(rate: u32, start_ms: u64, duration_ms: u64) -> Vec<u8> {
    assert!(rate >= 1000, "timecoded_s16le: rate {rate} < 1000 Hz");
    let rate = u64::from(rate);
    let first = start_ms * rate / 1000;
    let end = (start_ms + duration_ms) * rate / 1000;
    let mut out = vec![0u8; ((end - first) * 2) as usize];
    let mut k = frame_of(first, rate);
    loop {
        let start = frame_start(k, rate);
        if start >= end {
            break;
        }
        let index = k as u32;
        let header = [
            MAGIC[0],
            MAGIC[1],
            index as u16,
            (index >> 16) as u16,
            check_word(index),
        ];
        for (i, word) in header.iter().enumerate() {
            let sample = start + i as u64;
            if sample >= first && sample < end && sample < frame_start(k + 1, rate) {
                let at = ((sample - first) * 2) as usize;
                out[at..at + 2].copy_from_slice(&word.to_le_bytes());
            }
        }
        k += 1;
    }
    out
}

/// The stream position (ms) of the first sample of `audio`, a piece of [`timecoded_s16le`]
/// audio at `rate` that holds at least one complete frame header; `None` if there is none.
/// `audio` must start on a sample boundary.
pub fn timecode_offset_ms(audio: &[u8], rate: u32) -> Option<u64> {
    let rate = u64::from(rate.max(1));
    let samples: Vec<u16> = audio
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    samples
        .windows(HEADER_SAMPLES)
        .enumerate()
        .find_map(|(p, h)| {
            if h[0] != MAGIC[0] || h[1] != MAGIC[1] {
                return None;
            }
            let index = u32::from(h[2]) | (u32::from(h[3]) << 16);
            if h[4] != check_word(index) {
                return None;
            }
            let start = frame_start(u64::from(index), rate).checked_sub(p as u64)?;
            Some(units_to_ms(start, rate))
        })
}

/// The `data` chunk of a RIFF WAV file (e.g. the bundled sample, for
/// `MockConfig::reference_audio`); `None` if there is none.
pub fn wav_data(wav: &[u8]) -> Option<&[u8]> {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return None;
    }
    let mut at = 12usize;
    while at.checked_add(8)? <= wav.len() {
        let size = u32::from_le_bytes(wav[at + 4..at + 8].try_into().ok()?) as usize;
        let body = at + 8;
        if &wav[at..at + 4] == b"data" {
            return wav.get(body..body.checked_add(size)?.min(wav.len()));
        }
        at = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// Finds a session's stream position from its first audio.
pub(crate) enum Locator {
    Reference(ReferenceSearch),
    Timecode(TimecodeSearch),
}

impl Locator {
    /// A locator if the configuration asks for one (timecodes win over reference audio).
    pub fn new(config: &MockConfig, start: &StartRequest) -> Option<Locator> {
        let frame = (start.bytes_per_sample * start.num_channels) as usize;
        let bytes_per_second = u64::from(start.bytes_per_sample)
            * u64::from(start.sample_rate)
            * u64::from(start.num_channels);
        if config.timecoded {
            let format = start
                .audio_format
                .strip_prefix("pcm_")
                .unwrap_or(&start.audio_format);
            return Some(Locator::Timecode(TimecodeSearch {
                rate: start.sample_rate,
                usable: format == "s16le" && start.num_channels == 1 && start.sample_rate >= 1000,
                buffer: Vec::new(),
            }));
        }
        let reference = config.reference_audio.as_ref()?;
        Some(Locator::Reference(ReferenceSearch {
            reference: Arc::clone(reference),
            frame: frame.max(1),
            bytes_per_second: bytes_per_second.max(1),
            probe: Vec::new(),
            candidates: None,
            received: 0,
        }))
    }

    /// Takes the next audio frame; the position once it is decided.
    pub fn feed(&mut self, data: &[u8]) -> Option<StreamPosition> {
        match self {
            Locator::Reference(search) => search.feed(data),
            Locator::Timecode(search) => search.feed(data),
        }
    }

    /// Decides with the audio so far (finalize, end of audio); `None` if no audio arrived.
    pub fn finish(&mut self) -> Option<StreamPosition> {
        match self {
            Locator::Reference(search) => search.finish(),
            Locator::Timecode(search) => search.finish(),
        }
    }
}

pub(crate) struct ReferenceSearch {
    reference: Arc<Vec<u8>>,
    /// Bytes per sample frame (all channels); candidates are aligned to it.
    frame: usize,
    bytes_per_second: u64,
    /// Session audio until the first search.
    probe: Vec<u8>,
    /// Byte offsets in the reference that match all session audio so far.
    candidates: Option<Vec<usize>>,
    /// Session audio bytes seen.
    received: usize,
}

impl ReferenceSearch {
    fn feed(&mut self, data: &[u8]) -> Option<StreamPosition> {
        match &mut self.candidates {
            None => {
                self.probe.extend_from_slice(data);
                self.received += data.len();
                if self.probe.len() < REFERENCE_PROBE_BYTES {
                    return None;
                }
                self.search();
            }
            Some(candidates) => {
                let reference = &self.reference[..];
                let at = self.received;
                candidates.retain(|&c| matches_at(reference, c + at, data));
                self.received += data.len();
            }
        }
        self.decide(false)
    }

    fn finish(&mut self) -> Option<StreamPosition> {
        if self.candidates.is_none() {
            if self.probe.is_empty() {
                return None;
            }
            self.search();
        }
        self.decide(true)
    }

    /// The first search: every frame-aligned offset where the probe matches.
    fn search(&mut self) {
        let probe = std::mem::take(&mut self.probe);
        let reference = &self.reference[..];
        let candidates = (0..reference.len())
            .step_by(self.frame)
            .filter(|&c| matches_at(reference, c, &probe))
            .collect();
        self.candidates = Some(candidates);
    }

    /// One candidate left: found. Candidates that the session's audio already runs past the
    /// reference's end with match vacuously there, so they only count when no candidate holds
    /// all the audio so far. Several left: wait, up to [`AMBIGUITY_LIMIT_MS`] (or `force`),
    /// then take the earliest.
    fn decide(&self, force: bool) -> Option<StreamPosition> {
        let candidates = self.candidates.as_ref()?;
        let received_ms = self.received as u64 * 1000 / self.bytes_per_second;
        let position = |offset: usize, unique| StreamPosition::Reference {
            offset_ms: units_to_ms(offset as u64, self.bytes_per_second),
            unique,
        };
        let holding = match self.reference.len().checked_sub(self.received) {
            Some(last) => candidates.partition_point(|&c| c <= last),
            None => 0,
        };
        let best = if holding > 0 {
            &candidates[..holding]
        } else {
            &candidates[..]
        };
        match best {
            [] => Some(StreamPosition::NotFound),
            [only] => Some(position(*only, true)),
            [first, ..] if force || received_ms >= AMBIGUITY_LIMIT_MS => {
                Some(position(*first, false))
            }
            _ => None,
        }
    }
}

/// Whether `data` equals the reference at `at`, as far as the reference goes (audio past the
/// reference's end matches anything: the client may send more than the reference holds).
fn matches_at(reference: &[u8], at: usize, data: &[u8]) -> bool {
    if at >= reference.len() {
        return true;
    }
    let n = data.len().min(reference.len() - at);
    reference[at..at + n] == data[..n]
}

pub(crate) struct TimecodeSearch {
    rate: u32,
    /// `pcm_s16le`, mono, ≥ 1000 Hz.
    usable: bool,
    buffer: Vec<u8>,
}

impl TimecodeSearch {
    fn feed(&mut self, data: &[u8]) -> Option<StreamPosition> {
        if !self.usable {
            return Some(StreamPosition::NotFound);
        }
        self.buffer.extend_from_slice(data);
        if let Some(offset_ms) = timecode_offset_ms(&self.buffer, self.rate) {
            return Some(StreamPosition::Timecode { offset_ms });
        }
        // A complete header is due within one frame plus a header.
        let longest_frame = (self.rate as usize).div_ceil(100);
        (self.buffer.len() >= 2 * (2 * longest_frame + HEADER_SAMPLES))
            .then_some(StreamPosition::NotFound)
    }

    fn finish(&mut self) -> Option<StreamPosition> {
        if self.buffer.is_empty() && self.usable {
            return None;
        }
        Some(
            timecode_offset_ms(&self.buffer, self.rate)
                .filter(|_| self.usable)
                .map_or(StreamPosition::NotFound, |offset_ms| {
                    StreamPosition::Timecode { offset_ms }
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cover_every_sample_once() {
        for rate in [8000u64, 16000, 22050, 44100, 48000] {
            for sample in [0u64, 1, 159, 160, 219, 220, 221, 440, 441, 12345, 999_999] {
                let k = frame_of(sample, rate);
                assert!(frame_start(k, rate) <= sample, "{rate} {sample}");
                assert!(sample < frame_start(k + 1, rate), "{rate} {sample}");
            }
        }
    }

    #[test]
    fn timecodes_round_trip_at_any_offset() {
        for rate in [8000u32, 16000, 22050, 44100, 48000] {
            for start_ms in [0u64, 1, 7, 10, 1234, 3_600_005, 7_199_990] {
                let audio = timecoded_s16le(rate, start_ms, 40);
                assert_eq!(
                    timecode_offset_ms(&audio, rate),
                    Some(start_ms),
                    "rate {rate} start {start_ms}"
                );
            }
        }
    }

    #[test]
    fn timecoded_pieces_join_and_are_mostly_quiet() {
        let whole = timecoded_s16le(16000, 500, 1000);
        assert_eq!(whole.len(), 32_000);
        let mut pieces = timecoded_s16le(16000, 500, 333);
        pieces.extend(timecoded_s16le(16000, 833, 667));
        assert_eq!(pieces, whole);
        let loud = whole.chunks_exact(2).filter(|s| s != &[0, 0]).count();
        assert!(loud <= 100 * HEADER_SAMPLES, "{loud}");
        // Frame 50 (500 ms) starts the piece.
        assert_eq!(
            &whole[..10],
            &[
                0x53,
                0x4d,
                0x2a,
                0x7c,
                50,
                0,
                0,
                0,
                check_word(50) as u8,
                (check_word(50) >> 8) as u8
            ]
        );
    }

    #[test]
    fn no_timecode_in_plain_audio() {
        assert_eq!(timecode_offset_ms(&[0; 640], 16000), None);
        assert_eq!(timecode_offset_ms(&[], 16000), None);
        let mut audio = timecoded_s16le(16000, 0, 20);
        audio[8] ^= 1; // break the first frame's check word
        assert_eq!(timecode_offset_ms(&audio, 16000), Some(0)); // read from frame 1
        audio[328] ^= 1;
        assert_eq!(timecode_offset_ms(&audio, 16000), None);
    }

    #[test]
    fn wav_data_finds_the_data_chunk() {
        let mut wav =
            b"RIFF\0\0\0\0WAVEfmt \x03\0\0\0abc\0LIST\x02\0\0\0xydata\x04\0\0\0wxyz".to_vec();
        assert_eq!(wav_data(&wav), Some(&b"wxyz"[..]));
        wav.truncate(wav.len() - 2);
        assert_eq!(wav_data(&wav), Some(&b"wx"[..]));
        assert_eq!(wav_data(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(wav_data(b"nope"), None);
    }

    fn search(reference: Vec<u8>, frame: usize) -> ReferenceSearch {
        ReferenceSearch {
            reference: Arc::new(reference),
            frame,
            bytes_per_second: 32_000,
            probe: Vec::new(),
            candidates: None,
            received: 0,
        }
    }

    /// Deterministic non-silent "speech".
    fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn reference_search_narrows_silence_down() {
        // 1 s each: silence, noise, silence, noise, silence (pcm_s16le 16 kHz).
        let mut reference = vec![0; 32_000];
        reference.extend(noise(32_000, 1));
        reference.extend(vec![0; 32_000]);
        reference.extend(noise(32_000, 2));
        reference.extend(vec![0; 32_000]);
        // A session starting 250 ms before the second noise block.
        let session = reference[88_000..].to_vec();
        let mut s = search(reference.clone(), 2);
        assert_eq!(s.feed(&session[..320]), None); // below the probe size
        assert_eq!(s.feed(&session[320..3840]), None); // silence: many candidates
        assert_eq!(s.feed(&session[3840..7680]), None);
        assert_eq!(
            s.feed(&session[7680..11_520]),
            Some(StreamPosition::Reference {
                offset_ms: 2750,
                unique: true
            })
        );

        // A session of pure silence: after 1 s only the trailing silence (which the stream may
        // run past) still matches; the search gives up after the ambiguity limit and takes the
        // earliest match.
        let mut s = search(reference.clone(), 2);
        let silence = vec![0; 3840];
        let mut decided = None;
        for _ in 0..30 {
            decided = s.feed(&silence);
            if decided.is_some() {
                break;
            }
        }
        assert_eq!(
            decided,
            Some(StreamPosition::Reference {
                offset_ms: 4000,
                unique: false
            })
        );
        assert_eq!(s.received, 25 * 3840);

        // Audio that is not in the reference.
        let mut s = search(reference.clone(), 2);
        assert_eq!(s.feed(&noise(3840, 9)), Some(StreamPosition::NotFound));

        // finish() decides with what there is; nothing without audio.
        let mut s = search(reference.clone(), 2);
        assert_eq!(s.finish(), None);
        assert_eq!(s.feed(&reference[32_000..32_100]), None);
        assert_eq!(
            s.finish(),
            Some(StreamPosition::Reference {
                offset_ms: 1000,
                unique: true
            })
        );
        // Silence shorter than the probe matches everywhere: the earliest place.
        let mut s = search(reference.clone(), 2);
        assert_eq!(s.feed(&[0; 100]), None);
        assert_eq!(
            s.finish(),
            Some(StreamPosition::Reference {
                offset_ms: 0,
                unique: false
            })
        );
    }

    #[test]
    fn reference_candidates_are_frame_aligned_and_may_run_past_the_end() {
        let reference = noise(64_000, 3);
        // Odd byte offset: never a candidate for 2-byte samples.
        let mut s = search(reference.clone(), 2);
        assert_eq!(
            s.feed(&reference[1001..2001]),
            Some(StreamPosition::NotFound)
        );
        // The stream goes on past the reference (e.g. the client sends more than it).
        let mut s = search(reference.clone(), 2);
        let mut session = reference[63_000..].to_vec();
        session.extend(noise(5000, 4));
        assert_eq!(
            s.feed(&session),
            Some(StreamPosition::Reference {
                offset_ms: 1969, // 63000 bytes = 1968.75 ms, rounded up
                unique: true
            })
        );
    }
}
