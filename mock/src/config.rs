//! Server configuration.

use std::time::Duration;

use crate::faults::Fault;
use crate::script::Script;

/// How the stand-in behaves. Build with [`MockConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The one valid API key.
    pub api_key: String,
    /// What every session "recognizes" (replayed from 0 ms on each session's timeline).
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
    /// `SO_RCVBUF` for accepted sockets. `None`: the system default, or 4 KiB when any
    /// [`Fault::StallReadingAt`] is configured (so a stall backs up the client quickly).
    pub recv_buffer_size: Option<u32>,
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
            recv_buffer_size: None,
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
            .any(|f| matches!(f, Fault::StallReadingAt { .. }));
        self.recv_buffer_size.or(stalls.then_some(4096))
    }
}
