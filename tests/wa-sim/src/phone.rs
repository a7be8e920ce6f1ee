//! Recipient numbers: what `to` may look like, and the `wa_id` WhatsApp answers with.

/// Brazilian area codes where (per the Cloud API facts) WhatsApp ids carry the ninth digit.
const BR_NINE_DIGIT_AREAS: &[u32] = &[11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28];

/// The digits of a `to` value: digits only, an optional leading `+`, 8–15 digits.
/// `None` when it is not a plausible international number.
pub fn recipient_digits(to: &str) -> Option<String> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then(|| digits.to_owned())
}

/// Keeps only ASCII digits (used to normalise configured not-on-WhatsApp numbers).
pub fn digits_only(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The `wa_id` for a recipient's digits. Brazilian mobiles (`55` + area + `9` + 8 digits)
/// outside area codes 11–19, 21, 22, 24, 27 and 28 answer without the ninth digit, like the
/// older WhatsApp accounts there: `5531987654321` → `553187654321`.
pub fn wa_id(digits: &str) -> String {
    if digits.len() == 13 && digits.starts_with("55") && digits.as_bytes()[4] == b'9' {
        let area: Option<u32> = digits.get(2..4).and_then(|a| a.parse().ok());
        if let Some(area) = area
            && !BR_NINE_DIGIT_AREAS.contains(&area)
        {
            return format!("{}{}", &digits[..4], &digits[5..]);
        }
    }
    digits.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_digits_accepts_e164_with_or_without_plus() {
        assert_eq!(
            recipient_digits("+5511987654321").as_deref(),
            Some("5511987654321")
        );
        assert_eq!(
            recipient_digits("5511987654321").as_deref(),
            Some("5511987654321")
        );
        assert_eq!(recipient_digits("12345678").as_deref(), Some("12345678"));
        for bad in [
            "",
            "+",
            "1234567",
            "1234567890123456",
            "55 11 98765 4321",
            "++5511987654321",
            "55119876543a1",
            "05511987654321",
            "５５１１９８７６５４３２１",
        ] {
            assert_eq!(recipient_digits(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn wa_id_drops_ninth_digit_outside_nine_digit_areas() {
        assert_eq!(wa_id("5531987654321"), "553187654321");
        assert_eq!(wa_id("5585987654321"), "558587654321");
        assert_eq!(wa_id("5551987654321"), "555187654321");
        for keep in [
            "5511987654321",
            "5519987654321",
            "5521987654321",
            "5522987654321",
            "5524987654321",
            "5527987654321",
            "5528987654321",
        ] {
            assert_eq!(wa_id(keep), keep);
        }
        // Not a 13-digit Brazilian mobile: unchanged.
        assert_eq!(wa_id("553133334444"), "553133334444");
        assert_eq!(wa_id("5531887654321"), "5531887654321");
        assert_eq!(wa_id("14155550123"), "14155550123");
        assert_eq!(wa_id("4915123456789"), "4915123456789");
    }
}
