//! Message ids (`wamid.…`) and opaque paging cursors.

use std::sync::atomic::{AtomicU32, Ordering};

use rand::Rng;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new message id shaped like the Cloud API's: `wamid.` + standard base64 of
/// `1C 18 <len> <wa_id> 15 02 00 11 18 12 <18 upper-case hex chars> 00`.
/// The hex part is a process-wide counter plus random bits, so ids never repeat within a
/// process and practically never across processes.
pub fn new_wamid(wa_id: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u64 = rand::rng().random::<u64>() & 0xFF_FFFF_FFFF; // 40 bits
    let tail = format!("{n:08X}{r:010X}");
    let recipient = &wa_id.as_bytes()[..wa_id.len().min(0x7F)];
    let mut raw = Vec::with_capacity(recipient.len() + 30);
    raw.extend_from_slice(&[0x1C, 0x18]);
    raw.push(u8::try_from(recipient.len()).unwrap_or(0));
    raw.extend_from_slice(recipient);
    raw.extend_from_slice(&[0x15, 0x02, 0x00, 0x11, 0x18, 0x12]);
    raw.extend_from_slice(tail.as_bytes());
    raw.push(0x00);
    format!("wamid.{}", base64(&raw, STANDARD, true))
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(alphabet[*s as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode_url_safe(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = URL_SAFE.iter().position(|&a| a == c)?;
        acc = (acc << 6) | u32::try_from(v).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xFF).ok()?);
        }
    }
    Some(out)
}

const CURSOR_PREFIX: &str = "wa-sim:template:";

/// The opaque paging cursor pointing at one template (by its id).
pub fn cursor_for(template_id: &str) -> String {
    base64(
        format!("{CURSOR_PREFIX}{template_id}").as_bytes(),
        URL_SAFE,
        false,
    )
}

/// The template id a cursor points at, if the cursor is one of ours.
pub fn template_id_from_cursor(cursor: &str) -> Option<String> {
    let raw = base64_decode_url_safe(cursor)?;
    let text = String::from_utf8(raw).ok()?;
    text.strip_prefix(CURSOR_PREFIX).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes(), STANDARD, true), want);
        }
    }

    #[test]
    fn wamid_looks_real_and_is_unique() {
        let a = new_wamid("5511987654321");
        let b = new_wamid("5511987654321");
        assert_ne!(a, b);
        assert!(a.starts_with("wamid.HBgN"), "{a}");
        assert!(
            a["wamid.".len()..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=')
        );
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = cursor_for("1667192013751005");
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(
            template_id_from_cursor(&c).as_deref(),
            Some("1667192013751005")
        );
        assert_eq!(template_id_from_cursor("not a cursor!"), None);
        assert_eq!(template_id_from_cursor("Zm9vYmFy"), None);
        assert_eq!(template_id_from_cursor(""), None);
    }
}
