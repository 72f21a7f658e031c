//! Server configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::faults::Fault;
use crate::script::Script;

/// How the stand-in behaves. Build with [`MockConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct MockConfig {
    /// The one valid API key.
    pub api_key: String,
    /// What the client's audio stream "says", in ms from the start of the stream. A session
    /// plays it from its stream position (see [`MockConfig::reference_audio`] and
    /// [`MockConfig::timecoded`]; without either, from 0 ms on every session), with token times
    /// counted from the session's first audio byte.
    pub script: Script,
    /// A word turns final once `received_ms >= end_ms + lag`; `None`: only endpoints,
    /// finalize and end of audio make finals. Default `Some(500)`: the protocol document's
    /// example has `final_audio_proc_ms` trailing `total_audio_proc_ms` by 480–540 ms.
    pub auto_final_lag_ms: Option<u64>,
    /// Honour `enable_endpoint_detection`. Default `true`.
    pub endpoints: bool,
    /// Silence after an utterance's last word before its `<end>`. Default 500.
    pub endpoint_silence_ms: u64,
    /// Audio between two regular result messages. Default 120.
    pub response_interval_ms: u64,
    /// Close a session after this long without audio or keepalive (408). Default 20 s.
    pub idle_timeout: Duration,
    /// Refuse every WebSocket upgrade with this HTTP status instead of accepting it.
    pub reject_handshake_status: Option<u16>,
    /// Entry `i` applies to the `i`-th connection (0-based, counting rejected upgrades).
    pub session_faults: Vec<Vec<Fault>>,
    /// Faults of connections beyond `session_faults`.
    pub default_faults: Vec<Fault>,
    /// Timeline faults placed in the client's stream rather than in one session: their
    /// `audio_ms` is a stream position (the session's stream offset plus its audio). Each
    /// fires once, in the first session whose audio reaches it, so that a session which
    /// replays audio from before it does not fail again. Only sessions whose stream position
    /// is known (see [`MockConfig::timecoded`], [`MockConfig::reference_audio`]) count.
    pub stream_faults: Vec<Fault>,
    /// `SO_RCVBUF` for accepted sockets. `None`: the system default, or 4 KiB when any
    /// [`Fault::StallReadingAt`] or [`Fault::SlowReadingAt`] is configured (so a stall backs
    /// up the client quickly, and a slow reader answers pings within seconds).
    pub recv_buffer_size: Option<u32>,
    /// The client's whole input audio, in the format its sessions declare (e.g. the `data`
    /// chunk of the bundled sample WAV, see [`crate::wav_data`]). Each session's first audio is
    /// searched in it to find the session's stream position, and the script plays from there
    /// (words starting before it are never said). Not found: from 0 ms
    /// ([`crate::StreamPosition::NotFound`]). Result messages wait until the position is known.
    pub reference_audio: Option<Arc<Vec<u8>>>,
    /// Sessions send [`crate::timecoded_s16le`] audio (`pcm_s16le` mono): the stream position
    /// is read from the first complete frame header. Takes precedence over `reference_audio`.
    pub timecoded: bool,
    /// Keep every audio byte in `SessionRecord::audio` (default `true`). `false` (long runs):
    /// only `SessionRecord::audio_len` counts them, and `events` and `sent` keep only their
    /// first and latest entries (see `SessionRecord::events_dropped`), so the stand-in's memory
    /// does not grow with the length of a session.
    pub keep_audio: bool,
    /// A quiet service: no result message while no word is due (no progress reports over
    /// silence; `finalize`, endpoints and words are answered as usual). Soniox does not
    /// document whether it reports progress during silence. Default `false`.
    pub quiet: bool,
    /// With `translation` requested: each final translation chunk comes in the message after
    /// the one with its originals (and so after their `<end>`), as Soniox may send it. Default
    /// `false`: right after its originals, in the same message.
    pub late_translation: bool,
    /// The async API: how long a transcription job takes from its creation to `completed`
    /// (queued for the first third). Default [`crate::jobs::DEFAULT_JOB_DELAY`].
    pub job_delay: Duration,
    /// The async API's misbehaviours.
    pub job_faults: Vec<crate::jobs::JobFault>,
    /// Called with the connection's index and each JSON message once the socket took it
    /// (benchmarks time the client's reaction from there). Default none.
    pub on_sent: Option<SentHook>,
}

/// See [`MockConfig::on_sent`].
pub type SentHook = Arc<dyn Fn(usize, &serde_json::Value) + Send + Sync>;

impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("api_key", &self.api_key)
            .field("script_words", &self.script.words().count())
            .field("auto_final_lag_ms", &self.auto_final_lag_ms)
            .field("endpoints", &self.endpoints)
            .field("endpoint_silence_ms", &self.endpoint_silence_ms)
            .field("response_interval_ms", &self.response_interval_ms)
            .field("idle_timeout", &self.idle_timeout)
            .field("reject_handshake_status", &self.reject_handshake_status)
            .field("session_faults", &self.session_faults)
            .field("default_faults", &self.default_faults)
            .field("stream_faults", &self.stream_faults)
            .field("recv_buffer_size", &self.recv_buffer_size)
            .field(
                "reference_audio_bytes",
                &self.reference_audio.as_ref().map(|a| a.len()),
            )
            .field("timecoded", &self.timecoded)
            .field("keep_audio", &self.keep_audio)
            .field("quiet", &self.quiet)
            .field("late_translation", &self.late_translation)
            .field("job_delay", &self.job_delay)
            .field("job_faults", &self.job_faults)
            .field("on_sent", &self.on_sent.is_some())
            .finish()
    }
}

impl MockConfig {
    pub fn new(api_key: &str, script: Script) -> MockConfig {
        MockConfig {
            api_key: api_key.to_string(),
            script,
            auto_final_lag_ms: Some(500),
            endpoints: true,
            endpoint_silence_ms: 500,
            response_interval_ms: 120,
            idle_timeout: Duration::from_secs(20),
            reject_handshake_status: None,
            session_faults: Vec::new(),
            default_faults: Vec::new(),
            stream_faults: Vec::new(),
            recv_buffer_size: None,
            reference_audio: None,
            timecoded: false,
            keep_audio: true,
            quiet: false,
            late_translation: false,
            job_delay: crate::jobs::DEFAULT_JOB_DELAY,
            job_faults: Vec::new(),
            on_sent: None,
        }
    }

    /// The faults of connection `index`.
    pub fn faults_for(&self, index: usize) -> &[Fault] {
        self.session_faults
            .get(index)
            .unwrap_or(&self.default_faults)
    }

    pub(crate) fn effective_recv_buffer_size(&self) -> Option<u32> {
        let stalls = self
            .session_faults
            .iter()
            .flatten()
            .chain(&self.default_faults)
            .chain(&self.stream_faults)
            .any(|f| {
                matches!(
                    f,
                    Fault::StallReadingAt { .. } | Fault::SlowReadingAt { .. }
                )
            });
        self.recv_buffer_size.or(stalls.then_some(4096))
    }
}
