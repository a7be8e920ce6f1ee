//! Opaque pagination cursors: URL-safe base64 of a small JSON position.

use anna_shared::aws::queries::DispatchPosition;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::problem::{ApiError, Problem};

/// Longest cursor accepted; real ones are far shorter.
const MAX_CURSOR_CHARS: usize = 512;

#[derive(Debug, Serialize, Deserialize)]
struct DispatchCursor {
    /// created_at of the last dispatch of the page.
    c: String,
    /// Its id.
    i: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct MessageCursor {
    /// The last row of the page.
    r: u32,
}

fn encode<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail; an empty cursor would only restart a list.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

fn decode<T: for<'de> Deserialize<'de>>(cursor: &str) -> Result<T, ApiError> {
    let invalid = || {
        Problem::bad_request(
            "invalid-cursor",
            "the cursor is not one this API handed out; pass `next_cursor` of the previous \
             page unchanged, or leave it out to start from the beginning",
        )
    };
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(invalid().into());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    Ok(serde_json::from_slice(&bytes).map_err(|_| invalid())?)
}

pub fn encode_dispatch(position: &DispatchPosition) -> String {
    encode(&DispatchCursor {
        c: position.created_at.clone(),
        i: position.id.clone(),
    })
}

pub fn decode_dispatch(cursor: &str) -> Result<DispatchPosition, ApiError> {
    let cursor: DispatchCursor = decode(cursor)?;
    if !crate::dispatches::is_dispatch_id(&cursor.i) {
        return Err(Problem::bad_request(
            "invalid-cursor",
            "the cursor is not one this API handed out",
        )
        .into());
    }
    Ok(DispatchPosition {
        created_at: cursor.c,
        id: cursor.i,
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    /// The list the cursor belongs to (`conversations:open`, `events`, `opt-outs`), so a
    /// cursor of one list is refused by another.
    l: String,
    /// The sort-key position of the last item of the page.
    p: String,
}

/// A cursor into one of the index-backed lists.
pub fn encode_list(list: &str, position: &str) -> String {
    encode(&ListCursor {
        l: list.to_owned(),
        p: position.to_owned(),
    })
}

pub fn decode_list(list: &str, cursor: &str) -> Result<String, ApiError> {
    let cursor: ListCursor = decode(cursor)?;
    if cursor.l != list {
        return Err(Problem::bad_request(
            "invalid-cursor",
            format!(
                "the cursor belongs to another list ({}); pass `next_cursor` of the previous \
                 page of this one",
                cursor.l
            ),
        )
        .into());
    }
    Ok(cursor.p)
}

pub fn encode_message(row: u32) -> String {
    encode(&MessageCursor { r: row })
}

pub fn decode_message(cursor: &str) -> Result<u32, ApiError> {
    decode::<MessageCursor>(cursor).map(|c| c.r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let position = DispatchPosition {
            created_at: "2026-11-25T10:00:00.000Z".into(),
            id: "d-0123".into(),
        };
        assert_eq!(
            decode_dispatch(&encode_dispatch(&position)).expect("valid"),
            position
        );
        assert_eq!(decode_message(&encode_message(42)).expect("valid"), 42);
        for bad in ["", "!!", "bm90IGpzb24", &"A".repeat(600)] {
            assert!(decode_message(bad).is_err(), "{bad:?}");
            assert!(decode_dispatch(bad).is_err(), "{bad:?}");
        }
        // A message cursor is not a dispatch cursor.
        assert!(decode_dispatch(&encode_message(1)).is_err());
        let events = encode_list("events", "2026-12-01T10:00:00.000Z#ev-1");
        assert_eq!(
            decode_list("events", &events).expect("valid"),
            "2026-12-01T10:00:00.000Z#ev-1"
        );
        assert!(decode_list("opt-outs", &events).is_err());
    }
}
