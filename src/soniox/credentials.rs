// SPDX-License-Identifier: MPL-2.0
//! Soniox credentials: the API key, never shown.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
