//! What every Graph endpoint checks first: the API version in the path and the bearer token.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::error::GraphError;

/// Accepts any `v<major>.<minor>` (or `v<major>`) version segment, e.g. `v23.0`.
pub fn check_version(version: &str, path: &str) -> Result<(), GraphError> {
    let ok = version.strip_prefix('v').is_some_and(|rest| {
        let mut parts = rest.split('.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits(major) && minor.is_none_or(digits) && parts.next().is_none()
    });
    if ok {
        Ok(())
    } else {
        Err(GraphError::unknown_path(path))
    }
}

/// Requires `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn authorize(headers: &HeaderMap, token: &str) -> Result<(), GraphError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(GraphError::token_missing());
    };
    let Ok(value) = value.to_str() else {
        return Err(GraphError::token_invalid());
    };
    let value = value.trim();
    let given = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => return Err(GraphError::token_invalid()),
    };
    if given == token {
        Ok(())
    } else {
        Err(GraphError::token_invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn versions() {
        for ok in ["v23.0", "v1", "v19.0"] {
            assert!(check_version(ok, "/").is_ok(), "{ok}");
        }
        for bad in ["23.0", "v", "v23.", "v23.0.1", "vx", "", "V23.0x"] {
            assert!(check_version(bad, "/").is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer() {
        let mut h = HeaderMap::new();
        assert_eq!(authorize(&h, "t").map_err(|e| e.code), Err(190));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(authorize(&h, "t").is_ok());
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer t"));
        assert!(authorize(&h, "t").is_ok());
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer wrong"));
        assert_eq!(authorize(&h, "t").map_err(|e| e.code), Err(190));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic t"));
        assert_eq!(authorize(&h, "t").map_err(|e| e.status.as_u16()), Err(401));
        h.insert(AUTHORIZATION, HeaderValue::from_static("t"));
        assert!(authorize(&h, "t").is_err());
        if let Ok(v) = HeaderValue::from_bytes(b"Bearer \xff") {
            h.insert(AUTHORIZATION, v);
            assert!(authorize(&h, "t").is_err());
        }
    }
}
