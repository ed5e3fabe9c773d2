//! How the shipping routes refuse: a stale attempt and an offset gap are told apart
//! from the usual API errors, because the shipper does something else about each.
#![forbid(unsafe_code)]

use std::fmt;

use crate::client::{error_for, ApiError};

/// A refused or failed upload, by what the shipper does about it.
#[derive(Debug, Clone, PartialEq)]
pub enum ShipError {
    /// 409 `stale_attempt` (or a 409 without a reason): a newer attempt exists; this
    /// attempt's files are no longer wanted. Stop shipping the run.
    Stale(String),
    /// 409 `offset_gap`: the server has `size` bytes of this attempt; go on from there.
    Gap(u64),
    /// Anything else, as the usual classification (retry the retryable ones).
    Api(ApiError),
}

impl fmt::Display for ShipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stale(detail) => write!(f, "stale attempt (409): {detail}"),
            Self::Gap(size) => write!(f, "offset gap (409): the server has {size} bytes"),
            Self::Api(e) => e.fmt(f),
        }
    }
}

impl From<ApiError> for ShipError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// Reads a refusal: a 409 says which of [`ShipError::Stale`] or [`ShipError::Gap`] it
/// is by a `reason` field (at the top level or inside `detail`).
pub fn ship_error(status: u16, body: &[u8]) -> ShipError {
    if status == 409 {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let field = |name: &str| {
            value
                .get(name)
                .or_else(|| value.get("detail").and_then(|d| d.get(name)))
                .cloned()
        };
        let reason = field("reason");
        if reason.as_ref().and_then(|r| r.as_str()) == Some("offset_gap") {
            if let Some(size) = field("size").and_then(|s| s.as_u64()) {
                return ShipError::Gap(size);
            }
        }
        return match error_for(status, body) {
            ApiError::Conflict(detail) => ShipError::Stale(detail),
            other => ShipError::Api(other),
        };
    }
    ShipError::Api(error_for(status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_carries_the_servers_size() {
        let body = br#"{"detail": "offset 10 is past 4", "reason": "offset_gap", "size": 4}"#;
        assert_eq!(ship_error(409, body), ShipError::Gap(4));
        let nested = br#"{"detail": {"error": "gap", "reason": "offset_gap", "size": 7}}"#;
        assert_eq!(ship_error(409, nested), ShipError::Gap(7));
    }

    #[test]
    fn other_conflicts_mean_a_stale_attempt() {
        let body = br#"{"detail": "attempt 1 is stale", "reason": "stale_attempt", "attempt": 2}"#;
        assert!(matches!(ship_error(409, body), ShipError::Stale(d) if d.contains("stale")));
        assert!(matches!(ship_error(409, b"not json"), ShipError::Stale(_)));
        // A gap without a size cannot be resumed from: treat it as any conflict.
        let sizeless = br#"{"detail": "x", "reason": "offset_gap"}"#;
        assert!(matches!(ship_error(409, sizeless), ShipError::Stale(_)));
    }

    #[test]
    fn other_statuses_keep_their_classification() {
        assert!(matches!(
            ship_error(503, b"{}"),
            ShipError::Api(ApiError::Server(503, _))
        ));
        assert!(matches!(
            ship_error(422, br#"{"detail": "bad name"}"#),
            ShipError::Api(ApiError::Rejected(422, d)) if d == "bad name"
        ));
    }
}
