//! Phone numbers: parsing what people type into E.164, and masking them for logs.
//!
//! Parsing goes through the `phonenumber` crate (libphonenumber's metadata) with a default
//! region (BR unless configured). A number is accepted when libphonenumber considers it valid
//! and its type is mobile or "fixed line or mobile" (regions such as the US cannot tell the two
//! apart); WhatsApp customers are reached on mobiles.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{ParseError, Type};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Retryable;

/// The region a number without a country code is read in (a CLDR two-letter code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Region(Id);

impl Region {
    /// Brazil, the default.
    pub const BR: Region = Region(Id::BR);

    pub fn id(&self) -> Id {
        self.0
    }

    /// The two-letter code, e.g. "BR".
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    /// The country calling code, e.g. 55 for BR (0 if the metadata does not know the region).
    pub fn calling_code(&self) -> u16 {
        DATABASE
            .by_id(self.0.as_ref())
            .map(|meta| meta.country_code())
            .unwrap_or(0)
    }
}

impl Default for Region {
    fn default() -> Self {
        Self::BR
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?} (expected a two-letter country code such as BR)")]
pub struct RegionError(pub String);

impl Retryable for RegionError {
    fn is_retryable(&self) -> bool {
        false
    }
}

impl FromStr for Region {
    type Err = RegionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        let unknown = || RegionError(s.chars().take(20).collect());
        if code.len() != 2 {
            return Err(unknown());
        }
        let id = Id::from_str(&code).map_err(|_| unknown())?;
        // Only regions libphonenumber has metadata for can parse national numbers.
        if DATABASE.by_id(id.as_ref()).is_none() {
            return Err(unknown());
        }
        Ok(Region(id))
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a text is not a phone number we can send to. The texts are written to follow
/// "phone \"…\" is ", e.g. "phone \"12345\" is not a valid number for BR (too short)".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("missing")]
    Empty,
    #[error("not a phone number")]
    NotANumber,
    #[error("not a valid number: unknown country code")]
    InvalidCountryCode,
    #[error("not a valid number for {region} (too short)")]
    TooShort { region: String },
    #[error("not a valid number for {region} (too long)")]
    TooLong { region: String },
    #[error("not a valid number for {region}")]
    Invalid { region: String },
    /// Valid, but not a number WhatsApp customers use (fixed line, toll free, premium rate…).
    #[error("not a mobile number ({kind})")]
    NotMobile { kind: &'static str },
}

impl Retryable for PhoneError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// A phone number in E.164 form, with the leading '+', e.g. "+5511987654321".
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PhoneNumber(String);

/// Longest input worth handing to the parser; anything longer is not a phone number.
const MAX_INPUT_CHARS: usize = 64;

impl PhoneNumber {
    /// Parses what a person typed, reading numbers without a country code in `region`.
    ///
    /// Accepts "+55 (11) 98765-4321", "(11) 98765-4321", "11987654321", "011 98765 4321"
    /// (national prefix), "5511987654321" (digits that start with the region's country code
    /// and are too long to be a national number are read as international), "+1 650 253 0000"
    /// (other countries). The result must be valid and a mobile (or "fixed line or mobile").
    pub fn parse(input: &str, region: &Region) -> Result<PhoneNumber, PhoneError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PhoneError::Empty);
        }
        if input.chars().count() > MAX_INPUT_CHARS || !plausible_characters(input) {
            return Err(PhoneError::NotANumber);
        }
        let digits = input.chars().filter(char::is_ascii_digit).count();
        if digits < 3 {
            return Err(PhoneError::NotANumber);
        }

        let region_name = || region.code().to_owned();
        // The parser has panicked on malformed input in past releases; a bad cell must never
        // take the whole intake down, so a panic is read as "not a phone number".
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            phonenumber::parse(Some(region.id()), input)
        }))
        .map_err(|_| PhoneError::NotANumber)?
        .map_err(|e| match e {
            ParseError::NoNumber | ParseError::MalformedInteger(_) => PhoneError::NotANumber,
            ParseError::InvalidCountryCode => PhoneError::InvalidCountryCode,
            ParseError::TooShortAfterIdd | ParseError::TooShortNsn => PhoneError::TooShort {
                region: region_name(),
            },
            ParseError::TooLong => PhoneError::TooLong {
                region: region_name(),
            },
        })?;

        // `number_type` is what `is_valid` computes (Unknown means invalid), so it is asked
        // once; and E.164 is written here because the crate's formatter looks up national
        // formatting rules first: each would cost a third of the parse again.
        match parsed.number_type(&DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            Type::Unknown => {
                // Name the country the number turned out to belong to ("+1 …" read in BR
                // is a US number).
                let number_region = parsed
                    .country()
                    .id()
                    .map(|id| id.as_ref().to_owned())
                    .unwrap_or_else(|| format!("+{}", parsed.country().code()));
                return Err(length_problem(&parsed, number_region));
            }
            other => {
                return Err(PhoneError::NotMobile {
                    kind: type_name(other),
                });
            }
        }
        let e164 = format!("+{}{}", parsed.country().code(), parsed.national());
        if !is_e164(&e164) {
            return Err(PhoneError::NotANumber);
        }
        Ok(PhoneNumber(e164))
    }

    /// Wraps a number read back from our own store, already in E.164. Not validated.
    pub fn from_e164_unchecked(s: impl Into<String>) -> Self {
        PhoneNumber(s.into())
    }

    /// "+5511987654321"
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// "5511987654321": what WhatsApp's `to` gets.
    pub fn digits(&self) -> &str {
        self.0.strip_prefix('+').unwrap_or(&self.0)
    }

    /// "+55119****4321": safe for logs.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }

    /// The key to match this number against a WhatsApp `wa_id`; see [`match_key`].
    pub fn match_key(&self) -> String {
        match_key(self.digits())
    }
}

/// Characters people put in phone numbers; anything else (letters, '#', ';'…) means the text is
/// not a phone number. Letters are refused on purpose: vanity numbers are not WhatsApp numbers.
fn plausible_characters(input: &str) -> bool {
    input.chars().all(|c| {
        c.is_ascii_digit()
            || c.is_whitespace()
            || matches!(
                c,
                '+' | '(' | ')' | '-' | '.' | '/' | '\u{2010}'
                    ..='\u{2015}' | '\u{2212}' | '\u{ff0b}'
            )
    })
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        (8..=16).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Says whether an invalid number has the wrong length, for a clearer message.
fn length_problem(parsed: &phonenumber::PhoneNumber, region: String) -> PhoneError {
    let national = parsed.national().to_string().len();
    let lengths = parsed
        .metadata(&DATABASE)
        .map(|meta| {
            // The general descriptor's lengths are often empty in this crate's metadata; the
            // mobile and fixed-line ones are what a customer's number is measured against.
            let descriptors = meta.descriptors();
            let mut lengths: Vec<u16> = [descriptors.mobile(), descriptors.fixed_line()]
                .into_iter()
                .flatten()
                .flat_map(|d| d.possible_length().iter().copied())
                .chain(descriptors.general().possible_length().iter().copied())
                .collect();
            lengths.sort_unstable();
            lengths
        })
        .unwrap_or_default();
    match (lengths.first(), lengths.last()) {
        (Some(&min), _) if (national as u16) < min => PhoneError::TooShort { region },
        (_, Some(&max)) if (national as u16) > max => PhoneError::TooLong { region },
        _ => PhoneError::Invalid { region },
    }
}

fn type_name(kind: Type) -> &'static str {
    match kind {
        Type::FixedLine => "fixed line",
        Type::TollFree => "toll free",
        Type::PremiumRate => "premium rate",
        Type::SharedCost => "shared cost",
        Type::PersonalNumber => "personal number",
        Type::Voip => "VoIP",
        Type::Pager => "pager",
        Type::Uan => "company number",
        Type::Emergency => "emergency",
        Type::Voicemail => "voicemail",
        Type::ShortCode => "short code",
        Type::StandardRate => "standard rate",
        Type::Carrier => "carrier service",
        Type::NoInternational => "not reachable internationally",
        Type::Mobile | Type::FixedLineOrMobile | Type::Unknown => "unknown type",
    }
}

/// Masks any phone-like text for logs: keeps the country and area prefix and the last four
/// digits, hides four digits in between. "+5511987654321" → "+55119****4321",
/// "5511987654321" → "55119****4321". Short digit strings keep at most their last two digits;
/// text with fewer than four digits (a name typed in the phone column) becomes "***".
pub fn mask_phone(any: &str) -> String {
    let digits: Vec<char> = any.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n < 4 {
        return "***".to_owned();
    }
    let plus = if any.trim_start().starts_with('+') {
        "+"
    } else {
        ""
    };
    if n < 10 {
        let shown: String = digits[n - 2..].iter().collect();
        return format!("{plus}{}{shown}", "*".repeat(n - 2));
    }
    let prefix: String = digits[..n - 8].iter().collect();
    let last: String = digits[n - 4..].iter().collect();
    format!("{plus}{prefix}****{last}")
}

/// A key that matches a number with and without Brazil's ninth mobile digit.
///
/// WhatsApp may answer with a `wa_id` without the ninth digit ("551187654321" for
/// "5511987654321"). For Brazilian numbers (55 + 10 or 11 digits) the key is country code +
/// area code + last eight digits; other numbers are their digits unchanged.
pub fn match_key(digits_or_e164: &str) -> String {
    let digits: String = digits_or_e164
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    match digits.strip_prefix("55") {
        Some(national) if national.len() == 10 || national.len() == 11 => {
            format!("55{}{}", &national[..2], &national[national.len() - 8..])
        }
        _ => digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn br(input: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(input, &Region::default())
    }

    #[test]
    fn agrees_with_the_crates_own_validity_and_e164_formatting() {
        let inputs = [
            "(11) 98765-4321",
            "5511987654321",
            "+55 21 3456-7890",
            "011 98765 4321",
            "+1 650 253 0000",
            "+39 06 6982 1234",
            "+39 347 123 4567",
            "+44 7911 123456",
            "+225 07 12 34 56 78",
            "+7 912 345 67 89",
            "+55 11 8765-432",
            "+1 800 555 0199",
        ];
        for input in inputs {
            let parsed = phonenumber::parse(Some(Id::BR), input).expect("parses");
            let expected = parsed
                .is_valid()
                .then(|| parsed.format().mode(phonenumber::Mode::E164).to_string());
            let ours = PhoneNumber::parse(input, &Region::BR);
            match (&expected, &ours) {
                (Some(e164), Ok(ours)) => assert_eq!(ours.e164(), e164, "{input}"),
                (Some(_), Err(PhoneError::NotMobile { .. })) => {}
                (None, Err(e)) => assert!(
                    !matches!(e, PhoneError::NotMobile { .. }),
                    "{input}: invalid, yet {e:?}"
                ),
                _ => panic!("{input}: crate says {expected:?}, we say {ours:?}"),
            }
        }
    }

    #[test]
    fn region_parses_case_insensitively_and_defaults_to_br() {
        assert_eq!(Region::default().to_string(), "BR");
        assert_eq!("br".parse::<Region>(), Ok(Region::BR));
        assert_eq!(
            " Us ".parse::<Region>().map(|r| r.to_string()).as_deref(),
            Ok("US")
        );
        assert_eq!(Region::BR.calling_code(), 55);
        for bad in ["", "B", "BRA", "XX", "12", "zz"] {
            assert!(bad.parse::<Region>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn region_serde_is_its_code() {
        let json = serde_json::to_string(&Region::BR).unwrap();
        assert_eq!(json, "\"BR\"");
        let back: Region = serde_json::from_str("\"pt\"").unwrap();
        assert_eq!(back.code(), "PT");
    }

    #[test]
    fn accepts_the_usual_brazilian_spellings() {
        for input in [
            "+55 (11) 98765-4321",
            "(11) 98765-4321",
            "11987654321",
            "11 98765 4321",
            "5511987654321",
            "+5511987654321",
            "  +55 11 98765.4321 ",
            "011 98765 4321",
            "55 11 98765-4321",
        ] {
            let phone = br(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(phone.e164(), "+5511987654321", "{input:?}");
            assert_eq!(phone.digits(), "5511987654321");
        }
    }

    #[test]
    fn accepts_other_countries_in_international_form() {
        let us = br("+1 650 253 0000").unwrap();
        assert_eq!(us.e164(), "+16502530000");
        let pt = br("+351 912 345 678").unwrap();
        assert_eq!(pt.e164(), "+351912345678");
        let us_region: Region = "US".parse().unwrap();
        let local = PhoneNumber::parse("(650) 253-0000", &us_region).unwrap();
        assert_eq!(local.e164(), "+16502530000");
    }

    #[test]
    fn says_why_a_number_is_refused() {
        assert_eq!(br(""), Err(PhoneError::Empty));
        assert_eq!(br("   "), Err(PhoneError::Empty));
        assert_eq!(br("telefone"), Err(PhoneError::NotANumber));
        assert_eq!(br("Maria"), Err(PhoneError::NotANumber));
        assert_eq!(br("12"), Err(PhoneError::NotANumber));
        assert_eq!(br("11 9876#5432"), Err(PhoneError::NotANumber));
        let short = br("12345").unwrap_err();
        assert!(matches!(short, PhoneError::TooShort { .. }), "{short:?}");
        assert_eq!(short.to_string(), "not a valid number for BR (too short)");
        let long = br("1198765432109876").unwrap_err();
        assert!(
            matches!(
                long,
                PhoneError::TooLong { .. } | PhoneError::Invalid { .. }
            ),
            "{long:?}"
        );
        // Right length, impossible area code.
        let invalid = br("(00) 98765-4321").unwrap_err();
        assert!(matches!(
            invalid,
            PhoneError::Invalid { .. } | PhoneError::TooShort { .. }
        ));
        // São Paulo landline.
        let landline = br("(11) 3456-7890").unwrap_err();
        assert_eq!(landline, PhoneError::NotMobile { kind: "fixed line" });
        assert_eq!(landline.to_string(), "not a mobile number (fixed line)");
        // Old eight-digit mobile form is no longer valid.
        assert!(br("(11) 8765-4321").is_err());
    }

    #[test]
    fn malformed_input_never_panics() {
        for input in [
            "  2 22#:",
            "+",
            "++++",
            "+0",
            "+999 1234567",
            "tel:+55",
            "0000000000000000000000000000000000000000000000000000000000000000000000",
            "((((((((()))))))))123",
            "-----1-----2-----3",
            "+55 ()()()",
            "\u{0}\u{1}123",
            "1e10",
            "5.511987654321E12",
        ] {
            let _ = br(input);
        }
        assert!(br("+999 1234567").is_err());
    }

    #[test]
    fn accessors_and_masking() {
        let phone = PhoneNumber::from_e164_unchecked("+5511987654321");
        assert_eq!(phone.e164(), "+5511987654321");
        assert_eq!(phone.digits(), "5511987654321");
        assert_eq!(phone.masked(), "+55119****4321");
        assert_eq!(mask_phone("5511987654321"), "55119****4321");
        assert_eq!(mask_phone("+55 (11) 98765-4321"), "+55119****4321");
        assert_eq!(mask_phone("+16502530000"), "+165****0000");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone("Maria"), "***");
        assert_eq!(mask_phone(""), "***");
    }

    #[test]
    fn serde_is_the_e164_string() {
        let phone = br("11987654321").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+5511987654321\"");
        let back: PhoneNumber = serde_json::from_str("\"+5511987654321\"").unwrap();
        assert_eq!(back, phone);
    }

    #[test]
    fn match_key_ignores_the_ninth_digit() {
        assert_eq!(match_key("5511987654321"), "551187654321");
        assert_eq!(match_key("551187654321"), "551187654321");
        assert_eq!(match_key("+5521998765432"), "552198765432");
        assert_eq!(match_key("16502530000"), "16502530000");
        assert_eq!(
            br("11987654321").unwrap().match_key(),
            match_key("551187654321")
        );
    }
}
