//! Temporary API keys: minted through the REST API (`POST /v1/auth/temporary-api-key`) or by
//! a test, and accepted on the WebSocket as Soniox accepts them: until they expire, once if
//! single-use, and for at most their session duration.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// What a temporary key allows (the fields of Soniox's request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporaryKeyOptions {
    /// `expires_in_seconds` (1–3600).
    pub expires_in: Duration,
    /// `single_use`: the key opens one connection.
    pub single_use: bool,
    /// `max_session_duration_seconds`: a session on the key ends with 403
    /// `temp_api_key_session_expired` after this long.
    pub max_session_duration: Option<Duration>,
    pub client_reference_id: Option<String>,
}

impl Default for TemporaryKeyOptions {
    fn default() -> Self {
        TemporaryKeyOptions {
            expires_in: Duration::from_secs(60),
            single_use: false,
            max_session_duration: None,
            client_reference_id: None,
        }
    }
}

/// Soniox's words for a temporary key it no longer takes.
pub(crate) const EXPIRED: &str = "Invalid/expired temporary API key.";
/// Soniox's words when a temporary key's session ran out (UNCONFIRMED text).
pub(crate) const SESSION_EXPIRED: &str = "Temporary API key session duration exceeded.";

struct Entry {
    options: TemporaryKeyOptions,
    expires_at: Instant,
    uses: u32,
}

#[derive(Default)]
pub(crate) struct KeyStore {
    keys: Mutex<HashMap<String, Entry>>,
    minted: AtomicU64,
}

impl KeyStore {
    /// A new key and when it expires.
    pub fn mint(&self, options: TemporaryKeyOptions) -> (String, SystemTime) {
        let n = self.minted.fetch_add(1, Ordering::Relaxed) + 1;
        let key = format!("temp:{n}-{}", crate::protocol::new_request_id());
        let expires = SystemTime::now() + options.expires_in;
        let entry = Entry {
            expires_at: Instant::now() + options.expires_in,
            options,
            uses: 0,
        };
        self.lock().insert(key.clone(), entry);
        (key, expires)
    }

    /// Whether `key` is a temporary key at all.
    pub fn is_temporary(key: &str) -> bool {
        key.starts_with("temp:")
    }

    /// Takes `key` for a connection: its session limit, or why it is refused.
    pub fn accept(&self, key: &str) -> Result<Option<Duration>, &'static str> {
        let mut keys = self.lock();
        let Some(entry) = keys.get_mut(key) else {
            return Err(EXPIRED);
        };
        if Instant::now() >= entry.expires_at || (entry.options.single_use && entry.uses > 0) {
            return Err(EXPIRED);
        }
        entry.uses += 1;
        Ok(entry.options.max_session_duration)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}
