//! Cell values as a person sees them.

use std::fmt::Write as _;

use calamine::{Data, DataRef, ExcelDateTime};
use chrono::format::{Item, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

use super::SheetError;

/// Checks that a date format is a strftime pattern chrono can write a plain date and time
/// with (no time zone fields), so that rendering never has to fall back.
pub(crate) fn check_date_format(format: &str) -> Result<(), SheetError> {
    let invalid = || SheetError::InvalidDateFormat {
        format: format.to_string(),
    };
    if format.trim().is_empty() || StrftimeItems::new(format).any(|item| item == Item::Error) {
        return Err(invalid());
    }
    let sample = NaiveDate::from_ymd_opt(2026, 12, 25)
        .and_then(|d| d.and_hms_opt(13, 45, 30))
        .ok_or_else(invalid)?;
    let mut out = String::new();
    write!(out, "{}", sample.format(format)).map_err(|_| invalid())?;
    Ok(())
}

/// Writes cell values as text. Built once per sheet from the date format.
pub(crate) struct Renderer {
    date: String,
    date_minutes: String,
    date_seconds: String,
}

/// Excel's serial date for 10000-01-01: larger serials are not dates Excel can show.
const EXCEL_MAX_SERIAL: f64 = 2_958_466.0;
const SECONDS_PER_DAY: f64 = 86_400.0;

impl Renderer {
    pub(crate) fn new(date_format: &str) -> Renderer {
        let has_time = [
            "%H", "%I", "%M", "%S", "%R", "%T", "%X", "%r", "%c", "%k", "%l",
        ]
        .iter()
        .any(|spec| date_format.contains(spec));
        let (date_minutes, date_seconds) = if has_time {
            (date_format.to_string(), date_format.to_string())
        } else {
            (
                format!("{date_format} %H:%M"),
                format!("{date_format} %H:%M:%S"),
            )
        };
        Renderer {
            date: date_format.to_string(),
            date_minutes,
            date_seconds,
        }
    }

    pub(crate) fn data(&self, value: &Data) -> String {
        match value {
            Data::Empty => String::new(),
            Data::String(s) => super::clean_text(s).to_string(),
            Data::Int(i) => i.to_string(),
            Data::Float(f) => float(*f),
            Data::Bool(b) => boolean(*b),
            Data::DateTime(dt) => self.excel_datetime(dt),
            Data::DateTimeIso(s) => self.iso_datetime(s),
            Data::DurationIso(s) => iso_duration(s),
            Data::Error(e) => e.to_string(),
        }
    }

    pub(crate) fn data_ref(&self, value: &DataRef<'_>) -> String {
        match value {
            DataRef::Empty => String::new(),
            DataRef::String(s) => super::clean_text(s).to_string(),
            DataRef::SharedString(s) => super::clean_text(s).to_string(),
            DataRef::Int(i) => i.to_string(),
            DataRef::Float(f) => float(*f),
            DataRef::Bool(b) => boolean(*b),
            DataRef::DateTime(dt) => self.excel_datetime(dt),
            DataRef::DateTimeIso(s) => self.iso_datetime(s),
            DataRef::DurationIso(s) => iso_duration(s),
            DataRef::Error(e) => e.to_string(),
        }
    }

    /// A date cell: the date format, with the time of day when it is not midnight; a cell
    /// holding only a time (serial below 1) as `HH:MM`; a duration as `H:MM`.
    fn excel_datetime(&self, dt: &ExcelDateTime) -> String {
        let serial = dt.as_f64();
        if !serial.is_finite() {
            return float(serial);
        }
        if dt.is_duration() {
            return duration(serial * SECONDS_PER_DAY);
        }
        if (0.0..1.0).contains(&serial) {
            let seconds = (serial * SECONDS_PER_DAY).round();
            return clock(seconds);
        }
        if !(0.0..EXCEL_MAX_SERIAL).contains(&serial) {
            return float(serial);
        }
        match dt.as_datetime() {
            Some(datetime) => self.datetime(datetime),
            None => float(serial),
        }
    }

    fn datetime(&self, datetime: NaiveDateTime) -> String {
        let datetime = round_to_second(datetime);
        let pattern = if datetime.time() == NaiveTime::MIN {
            &self.date
        } else if datetime.second() == 0 {
            &self.date_minutes
        } else {
            &self.date_seconds
        };
        let mut out = String::new();
        if write!(out, "{}", datetime.format(pattern)).is_err() {
            // Unreachable after `check_date_format`, but a cell must never be lost.
            return datetime.format("%Y-%m-%d %H:%M:%S").to_string();
        }
        out
    }

    /// An ISO 8601 date or date-time (ODS date cells, xlsx `t="d"` cells).
    fn iso_datetime(&self, text: &str) -> String {
        let text = text.trim();
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return self.datetime(date.and_time(NaiveTime::MIN));
        }
        if let Ok(datetime) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return self.datetime(datetime);
        }
        if let Ok(datetime) = chrono::DateTime::parse_from_rfc3339(text) {
            return self.datetime(datetime.naive_local());
        }
        if let Ok(time) = NaiveTime::parse_from_str(text, "%H:%M:%S%.f") {
            return clock(f64::from(time.num_seconds_from_midnight()));
        }
        text.to_string()
    }
}

fn boolean(value: bool) -> String {
    if value { "TRUE" } else { "FALSE" }.to_string()
}

/// A number as a person sees it: integral values without `.0` or an exponent (a phone number
/// stored as `5.511987654321E12` is `5511987654321`), other values in plain decimal notation
/// with at most 15 significant digits, as Excel shows them (`0.1 + 0.2` is `0.3`).
pub(crate) fn float(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    // Below 2^53 every integral f64 is exactly an i64.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        return (value as i64).to_string();
    }
    if value.fract() == 0.0 {
        // `Display` for f64 writes plain digits, never an exponent.
        return value.to_string();
    }
    let rounded = format!("{value:.14e}").parse::<f64>().unwrap_or(value);
    if rounded.fract() == 0.0 && rounded.abs() < 9_007_199_254_740_992.0 {
        return (rounded as i64).to_string();
    }
    rounded.to_string()
}

fn round_to_second(datetime: NaiveDateTime) -> NaiveDateTime {
    let nanos = datetime.nanosecond();
    let whole = datetime.with_nanosecond(0).unwrap_or(datetime);
    if nanos >= 500_000_000 {
        whole
            .checked_add_signed(TimeDelta::seconds(1))
            .unwrap_or(whole)
    } else {
        whole
    }
}

/// A time of day from seconds since midnight: `HH:MM`, or `HH:MM:SS` when it has seconds.
fn clock(seconds: f64) -> String {
    // A time that rounds up to midnight of the next day is still shown as the end of today.
    let seconds = seconds.clamp(0.0, SECONDS_PER_DAY - 1.0) as u32;
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// A duration: `HH:MM` (hours may pass 24), or `HH:MM:SS` when it has seconds.
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds.abs() > 1e15 {
        return float(seconds / SECONDS_PER_DAY);
    }
    let total = seconds.round() as i64;
    let sign = if total < 0 { "-" } else { "" };
    let total = total.unsigned_abs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// An ISO 8601 duration such as ODS writes for time cells (`PT14H30M00S`), as `14:30`.
/// Anything it does not understand (years, months) is returned as written.
fn iso_duration(text: &str) -> String {
    let text = text.trim();
    match parse_iso_duration(text) {
        Some(seconds) => duration(seconds),
        None => text.to_string(),
    }
}

fn parse_iso_duration(text: &str) -> Option<f64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let rest = rest.strip_prefix('P')?;
    let mut seconds = 0.0;
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                let value: f64 = number.parse().ok()?;
                number.clear();
                seconds += value
                    * match (unit, in_time) {
                        ('D', false) => SECONDS_PER_DAY,
                        ('W', false) => 7.0 * SECONDS_PER_DAY,
                        ('H', true) => 3600.0,
                        ('M', true) => 60.0,
                        ('S', true) => 1.0,
                        _ => return None,
                    };
                any = true;
            }
        }
    }
    if !any || !number.is_empty() {
        return None;
    }
    Some(if negative { -seconds } else { seconds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{CellErrorType, ExcelDateTimeType};

    fn renderer() -> Renderer {
        Renderer::new("%d/%m/%Y")
    }

    fn serial(y: i32, m: u32, d: u32) -> f64 {
        let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
        (NaiveDate::from_ymd_opt(y, m, d).unwrap() - epoch).num_days() as f64
    }

    fn excel(value: f64) -> Data {
        Data::DateTime(ExcelDateTime::new(
            value,
            ExcelDateTimeType::DateTime,
            false,
        ))
    }

    #[test]
    fn numbers() {
        assert_eq!(float(5.511987654321E12), "5511987654321");
        assert_eq!(float(5531987654321.0), "5531987654321");
        assert_eq!(float(12.5), "12.5");
        assert_eq!(float(-3.0), "-3");
        assert_eq!(float(-0.0), "0");
        assert_eq!(float(0.1 + 0.2), "0.3");
        assert_eq!(float(1.0 / 3.0), "0.333333333333333");
        assert_eq!(float(1e20), "100000000000000000000");
        assert_eq!(float(1.5e-7), "0.00000015");
        assert_eq!(float(9_007_199_254_740_993.0), "9007199254740992");
        assert_eq!(float(2.9999999999999996), "3");
        assert_eq!(float(f64::NAN), "NaN");
        let r = renderer();
        assert_eq!(r.data(&Data::Int(5511987654321)), "5511987654321");
        assert_eq!(r.data(&Data::Float(0.15)), "0.15");
    }

    #[test]
    fn text_booleans_errors_empty() {
        let r = renderer();
        assert_eq!(r.data(&Data::String("  João \u{a0}".into())), "João");
        assert_eq!(
            r.data_ref(&DataRef::SharedString(" Loja Centro\n")),
            "Loja Centro"
        );
        assert_eq!(r.data(&Data::Bool(true)), "TRUE");
        assert_eq!(r.data(&Data::Bool(false)), "FALSE");
        assert_eq!(r.data(&Data::Error(CellErrorType::Ref)), "#REF!");
        assert_eq!(r.data(&Data::Error(CellErrorType::NA)), "#N/A");
        assert_eq!(r.data(&Data::Empty), "");
        assert_eq!(r.data_ref(&DataRef::Empty), "");
    }

    #[test]
    fn dates() {
        let r = renderer();
        assert_eq!(serial(2026, 12, 25), 46381.0);
        assert_eq!(r.data(&excel(46381.0)), "25/12/2026");
        assert_eq!(r.data(&excel(46381.5)), "25/12/2026 12:00");
        assert_eq!(
            r.data(&excel(46381.0 + (14.0 * 3600.0 + 30.0 * 60.0) / 86400.0)),
            "25/12/2026 14:30"
        );
        assert_eq!(
            r.data(&excel(46381.0 + 45.0 / 86400.0)),
            "25/12/2026 00:00:45"
        );
        // Floating-point noise in the serial does not show up as a time of day.
        assert_eq!(r.data(&excel(46381.000000001)), "25/12/2026");
        assert_eq!(r.data(&excel(46380.999999999)), "25/12/2026");
        let us = Renderer::new("%m/%d/%Y");
        assert_eq!(us.data(&excel(46381.0)), "12/25/2026");
        let with_time = Renderer::new("%d/%m/%Y %H:%M");
        assert_eq!(with_time.data(&excel(46381.5)), "25/12/2026 12:00");
        // 1904 epoch
        let dt = ExcelDateTime::new(46381.0 - 1462.0, ExcelDateTimeType::DateTime, true);
        assert_eq!(r.data(&Data::DateTime(dt)), "25/12/2026");
    }

    #[test]
    fn times_and_durations() {
        let r = renderer();
        assert_eq!(r.data(&excel(14.5 / 24.0)), "14:30");
        assert_eq!(r.data(&excel(9.0 / 24.0)), "09:00");
        assert_eq!(r.data(&excel(0.0)), "00:00");
        assert_eq!(r.data(&excel(0.9999999)), "23:59:59");
        let d = ExcelDateTime::new(26.5 / 24.0, ExcelDateTimeType::TimeDelta, false);
        assert_eq!(r.data(&Data::DateTime(d)), "26:30");
        assert_eq!(r.data(&Data::DurationIso("PT14H30M00S".into())), "14:30");
        assert_eq!(
            r.data(&Data::DurationIso("PT09H05M30.000S".into())),
            "09:05:30"
        );
        assert_eq!(r.data(&Data::DurationIso("P1DT2H".into())), "26:00");
        assert_eq!(r.data(&Data::DurationIso("-PT1H".into())), "-01:00");
        assert_eq!(r.data(&Data::DurationIso("P1Y".into())), "P1Y");
        assert_eq!(r.data(&Data::DurationIso("PT".into())), "PT");
        assert_eq!(r.data(&Data::DurationIso("PTxS".into())), "PTxS");
    }

    #[test]
    fn out_of_range_serials_are_numbers() {
        let r = renderer();
        assert_eq!(r.data(&excel(-5.0)), "-5");
        assert_eq!(r.data(&excel(1e300)), float(1e300));
        assert_eq!(r.data(&excel(f64::NAN)), "NaN");
        assert_eq!(r.data(&excel(f64::NEG_INFINITY)), "-inf");
        let d = ExcelDateTime::new(f64::MAX, ExcelDateTimeType::TimeDelta, false);
        assert!(!r.data(&Data::DateTime(d)).is_empty());
    }

    #[test]
    fn iso_dates() {
        let r = renderer();
        assert_eq!(
            r.data(&Data::DateTimeIso("2026-12-25".into())),
            "25/12/2026"
        );
        assert_eq!(
            r.data(&Data::DateTimeIso("2026-12-25T00:00:00".into())),
            "25/12/2026"
        );
        assert_eq!(
            r.data(&Data::DateTimeIso("2026-12-25T14:30:00".into())),
            "25/12/2026 14:30"
        );
        assert_eq!(
            r.data(&Data::DateTimeIso("2026-12-25T14:30:00.000Z".into())),
            "25/12/2026 14:30"
        );
        assert_eq!(r.data(&Data::DateTimeIso("14:30:00".into())), "14:30");
        assert_eq!(r.data(&Data::DateTimeIso("natal".into())), "natal");
    }

    #[test]
    fn date_format_check() {
        assert!(check_date_format("%d/%m/%Y").is_ok());
        assert!(check_date_format("%Y-%m-%d").is_ok());
        assert!(check_date_format("%e de %B de %Y").is_ok());
        assert!(check_date_format("%d/%m/%Q").is_err());
        assert!(check_date_format("%d/%m/%Y %z").is_err());
        assert!(check_date_format("").is_err());
        assert!(check_date_format("%").is_err());
    }
}
