//! The WebSocket upgrade: path check, credentials, subprotocol selection, refusals.

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};

use crate::config::MockConfig;
use crate::faults::Fault;
use crate::protocol::{error_type_for, ProtocolError};
use crate::record::{SessionEnd, SessionRecord, Shared};

pub(crate) const PATH: &str = "/transcribe-websocket";
pub(crate) const KEY_PROTOCOL: &str = "soniox-api-key";

/// The key a client presented on the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    /// Neither an `Authorization` header nor a key subprotocol.
    None,
    Key(String),
    /// An `Authorization` header that is not `Bearer <key>`.
    Malformed,
}

/// An accepted upgrade.
pub(crate) struct Accepted {
    pub index: usize,
    pub credential: Credential,
}

/// Handles the upgrade request: registers the connection, then accepts or refuses it.
pub(crate) fn on_request(
    request: &Request,
    mut response: Response,
    config: &MockConfig,
    shared: &Shared,
) -> (Result<Response, ErrorResponse>, Option<Accepted>) {
    let headers = request.headers();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let protocol_values: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let protocols = (!protocol_values.is_empty()).then(|| protocol_values.join(", "));
    let index = shared.register(SessionRecord {
        path: request.uri().to_string(),
        authorization: authorization.clone(),
        protocols: protocols.clone(),
        ..SessionRecord::default()
    });

    let refusal = if request.uri().path() != PATH {
        Some(404)
    } else {
        config.reject_handshake_status.or_else(|| {
            config.faults_for(index).iter().find_map(|f| match f {
                Fault::RejectHandshake { status } => Some(*status),
                _ => None,
            })
        })
    };
    if let Some(status) = refusal {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        shared.update(index, |r| {
            r.end = Some(SessionEnd::Error {
                code: status.as_u16(),
            })
        });
        return (Err(http_error(status)), None);
    }

    let list: Vec<&str> = protocols
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if list.contains(&KEY_PROTOCOL) {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(KEY_PROTOCOL),
        );
    }
    let credential = match authorization {
        Some(value) => bearer(&value),
        None => protocol_key(&list),
    };
    (Ok(response), Some(Accepted { index, credential }))
}

/// `Bearer <key>` (scheme case-insensitive).
fn bearer(value: &str) -> Credential {
    match value.trim().split_once(char::is_whitespace) {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Credential::Key(key.trim().to_string())
        }
        _ => Credential::Malformed,
    }
}

/// The key from `soniox-api-key, <key>`: the entry after `soniox-api-key` (or the other entry
/// of a two-entry list).
fn protocol_key(list: &[&str]) -> Credential {
    let Some(position) = list.iter().position(|p| *p == KEY_PROTOCOL) else {
        return Credential::None;
    };
    let key = list
        .get(position + 1)
        .or(if list.len() == 2 { list.first() } else { None });
    match key {
        Some(key) if *key != KEY_PROTOCOL => Credential::Key((*key).to_string()),
        _ => Credential::None,
    }
}

fn http_error(status: StatusCode) -> ErrorResponse {
    let code = status.as_u16();
    let message = status.canonical_reason().unwrap_or("Error");
    let body = if code == 404 {
        "Not Found".to_string()
    } else {
        ProtocolError::new(code, error_type_for(code), message)
            .to_value()
            .to_string()
    };
    let content_type = if code == 404 {
        "text/plain"
    } else {
        "application/json"
    };
    let mut response = ErrorResponse::new(Some(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        assert_eq!(bearer("Bearer abc"), Credential::Key("abc".into()));
        assert_eq!(bearer("bearer   abc "), Credential::Key("abc".into()));
        assert_eq!(bearer("Basic abc"), Credential::Malformed);
        assert_eq!(bearer("Bearer"), Credential::Malformed);
        assert_eq!(bearer("Bearer  "), Credential::Malformed);
        assert_eq!(
            protocol_key(&["soniox-api-key", "k"]),
            Credential::Key("k".into())
        );
        assert_eq!(
            protocol_key(&["k", "soniox-api-key"]),
            Credential::Key("k".into())
        );
        assert_eq!(
            protocol_key(&["x", "soniox-api-key", "k"]),
            Credential::Key("k".into())
        );
        assert_eq!(protocol_key(&["soniox-api-key"]), Credential::None);
        assert_eq!(protocol_key(&["chat"]), Credential::None);
        assert_eq!(protocol_key(&[]), Credential::None);
    }
}
