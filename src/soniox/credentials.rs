// SPDX-License-Identifier: MPL-2.0
//! Soniox credentials: the API key, never shown, and where a connection gets it.
//!
//! A fixed key (the `api-key` property or `SONIOX_API_KEY`), or a fresh one for every
//! connection from a [`KeySource`] (an application that mints temporary keys): it is asked on
//! a thread of its own, since minting a key is a request to Soniox that may take a while.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::session::SessionError;

/// A Soniox API key. It never appears in `Debug` output, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into().trim().to_string();
        (!key.is_empty()).then_some(ApiKey(key))
    }

    pub(super) fn bearer(&self) -> Result<HeaderValue, SessionError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            SessionError::InvalidKey(
                "the API key contains characters that cannot be sent in an HTTP header".into(),
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The longest wait for a [`KeySource`] to hand over a key.
pub const KEY_TIMEOUT: Duration = Duration::from_secs(20);

/// Fresh keys, one per connection (contract §8 "Fresh credentials").
pub trait KeySource: Send + Sync {
    /// Whether keys are to be asked for now (e.g. a signal handler is connected).
    fn fetches(&self) -> bool;
    /// A key for connection `session` (the number bus messages use); `None`: use the fixed
    /// key. Called on a thread of its own; it may block.
    fn fetch(&self, session: u32) -> Option<String>;
}

/// Where a session's connections get their key.
#[derive(Clone)]
pub struct Credentials {
    /// The `api-key` property or `SONIOX_API_KEY`.
    pub fixed: Option<ApiKey>,
    pub fresh: Option<Arc<dyn KeySource>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("fixed", &self.fixed)
            .field("fresh", &self.fresh.is_some())
            .finish()
    }
}

impl Credentials {
    pub fn fixed(key: ApiKey) -> Credentials {
        Credentials {
            fixed: Some(key),
            fresh: None,
        }
    }

    /// Whether each connection gets a fresh key.
    pub fn fetches(&self) -> bool {
        self.fresh.as_ref().is_some_and(|source| source.fetches())
    }

    /// The key for connection `session`: a fresh one if there is a source, else the fixed one.
    pub async fn key_for(&self, session: u32) -> Result<ApiKey, SessionError> {
        let fresh = match &self.fresh {
            Some(source) if source.fetches() => fetch(source.clone(), session).await?,
            _ => None,
        };
        fresh
            .or_else(|| self.fixed.clone())
            .ok_or(SessionError::NoKey)
    }
}

/// Asks `source` for a key on a thread of its own.
async fn fetch(source: Arc<dyn KeySource>, session: u32) -> Result<Option<ApiKey>, SessionError> {
    let (answer, answered) = oneshot::channel();
    std::thread::Builder::new()
        .name("soniox-key".into())
        .spawn(move || {
            let _ = answer.send(source.fetch(session).and_then(ApiKey::new));
        })
        .map_err(|e| SessionError::KeyUnavailable(format!("no thread to ask on: {e}")))?;
    match tokio::time::timeout(KEY_TIMEOUT, answered).await {
        Ok(Ok(key)) => Ok(key),
        // The handler panicked: as if it had no key.
        Ok(Err(_)) => Ok(None),
        Err(_) => Err(SessionError::KeyUnavailable(format!(
            "request-api-key did not return within {} s",
            KEY_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Minter(AtomicU32);

    impl KeySource for Minter {
        fn fetches(&self) -> bool {
            true
        }
        fn fetch(&self, session: u32) -> Option<String> {
            assert_ne!(
                std::thread::current().name(),
                Some("soniox-runtime"),
                "never on the runtime"
            );
            self.0.fetch_add(1, Ordering::Relaxed);
            (session != 3).then(|| format!("temp:{session}"))
        }
    }

    #[tokio::test]
    async fn each_connection_asks_the_source_and_falls_back_to_the_fixed_key() {
        let minter = Arc::new(Minter(AtomicU32::new(0)));
        let credentials = Credentials {
            fixed: ApiKey::new("fixed"),
            fresh: Some(minter.clone()),
        };
        assert!(credentials.fetches());
        assert_eq!(
            credentials.key_for(1).await.unwrap(),
            ApiKey::new("temp:1").unwrap()
        );
        assert_eq!(
            credentials.key_for(2).await.unwrap(),
            ApiKey::new("temp:2").unwrap()
        );
        assert_eq!(
            credentials.key_for(3).await.unwrap(),
            ApiKey::new("fixed").unwrap()
        );
        assert_eq!(minter.0.load(Ordering::Relaxed), 3);
        let none = Credentials {
            fixed: None,
            fresh: Some(minter),
        };
        assert_eq!(none.key_for(3).await.unwrap_err(), SessionError::NoKey);
    }

    #[test]
    fn the_key_is_redacted() {
        let key = ApiKey::new("  sekrit-123 ").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert!(!format!("{:?}", key.bearer().unwrap()).contains("sekrit"));
        assert!(ApiKey::new("  ").is_none());
        let error = ApiKey::new("bad\nkey").unwrap().bearer().unwrap_err();
        assert!(!error.to_string().contains("bad"));
    }
}
