//! Native values to canonical cells: the typed half of mapping a record.
//!
//! Every side writes numbers, dates and booleans its own way; here they all
//! become one canonical value, or a reason why they cannot.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use rust_decimal::Decimal;
use rust_decimal::prelude::*;
use serde_json::Value;

use crate::spec::{Field, FieldType, Side, path::scalar_text};

/// One canonical value, ready for an Arrow builder.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    /// Mantissa at the field's number of decimals.
    Decimal(i128),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since the epoch, UTC.
    Datetime(i64),
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// Convert the value found at a field's path (`None`: the path is missing).
pub fn to_cell(
    raw: Option<&Value>,
    field: &Field,
    side: &Side,
    unit: Option<f64>,
) -> Result<Cell, String> {
    let value = match raw {
        None | Some(Value::Null) => return Ok(Cell::Null),
        Some(v) => v,
    };
    // Lists become text when the spec says how to join them.
    let joined;
    let value = match (value, &field.join) {
        (Value::Array(items), Some(sep)) => {
            let parts: Vec<String> = items.iter().filter_map(scalar_text).collect();
            joined = Value::String(parts.join(sep));
            &joined
        }
        (Value::Array(_) | Value::Object(_), _) => {
            let what = if value.is_array() {
                "a list"
            } else {
                "an object"
            };
            return Err(format!(
                "is {what}, not a {} (point the path at one value{})",
                field.ty.name(),
                if value.is_array() {
                    ", or set `join`"
                } else {
                    ""
                }
            ));
        }
        _ => value,
    };
    if let Value::String(s) = value
        && s.trim().is_empty()
    {
        return Ok(Cell::Null);
    }
    match field.ty {
        FieldType::String => Ok(Cell::Text(
            scalar_text(value).expect("scalar checked above"),
        )),
        FieldType::Integer => {
            let d = number(value, side.decimal_comma)?;
            let d = apply_unit(d, unit)?;
            if !d.fract().is_zero() {
                return Err(format!("`{d}` is not a whole number"));
            }
            d.to_i64()
                .map(Cell::Int)
                .ok_or_else(|| format!("`{d}` is too large"))
        }
        FieldType::Decimal { decimals } => {
            let d = apply_unit(number(value, side.decimal_comma)?, unit)?;
            let d = d.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
            let mut m = d.mantissa();
            let scale = d.scale();
            // Bring the mantissa to exactly `decimals` digits.
            for _ in scale..decimals {
                m = m.checked_mul(10).ok_or("too large")?;
            }
            Ok(Cell::Decimal(m))
        }
        FieldType::Bool => boolean(value).map(Cell::Bool),
        FieldType::Date => {
            let s = text(value)?;
            parse_date(&s, &side.date_formats)
                .map(|d| Cell::Date((d - EPOCH).num_days() as i32))
                .ok_or_else(|| format!("`{s}` is not a date{}", formats_hint(side)))
        }
        FieldType::Datetime => match value {
            Value::Number(n) => {
                let n = n.as_f64().ok_or("not a number")?;
                // Epoch seconds, or milliseconds when the number is that large.
                let micros = if n.abs() > 1e11 { n * 1e3 } else { n * 1e6 };
                Ok(Cell::Datetime(micros as i64))
            }
            _ => {
                let s = text(value)?;
                parse_datetime(&s, side)
                    .map(Cell::Datetime)
                    .ok_or_else(|| format!("`{s}` is not a date and time{}", formats_hint(side)))
            }
        },
    }
}

fn formats_hint(side: &Side) -> String {
    if side.date_formats.is_empty() {
        " (add its format to the side's `date_formats`, e.g. \"%d/%m/%Y\")".into()
    } else {
        format!(" in ISO or {}", side.date_formats.join(", "))
    }
}

fn text(v: &Value) -> Result<String, String> {
    scalar_text(v)
        .map(|s| s.trim().to_string())
        .ok_or_else(|| "is not a scalar".into())
}

fn apply_unit(d: Decimal, unit: Option<f64>) -> Result<Decimal, String> {
    match unit {
        None => Ok(d),
        Some(f) => {
            let f = Decimal::from_f64(f).ok_or("bad unit factor")?;
            d.checked_div(f).ok_or_else(|| "cannot apply unit".into())
        }
    }
}

/// Parse numbers as people and systems write them: `1500`, `1500.5`,
/// `1 500,50` (with `decimal_comma`), `1,500.50`, `€ 12`.
pub fn number(v: &Value, decimal_comma: bool) -> Result<Decimal, String> {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .map_err(|_| format!("`{s}` is out of range"))
        }
        Value::Bool(_) => Err("is a boolean, not a number".into()),
        Value::String(s) => {
            let cleaned: String = s
                .trim()
                .chars()
                .filter(|c| {
                    !c.is_whitespace()
                        && !matches!(c, '€' | '$' | '£' | '\'' | '\u{a0}' | '\u{202f}')
                })
                .collect();
            let cleaned = if decimal_comma {
                cleaned.replace('.', "").replace(',', ".")
            } else {
                cleaned.replace(',', "")
            };
            Decimal::from_str(&cleaned)
                .or_else(|_| Decimal::from_scientific(&cleaned))
                .map_err(|_| format!("`{}` is not a number", s.trim()))
        }
        _ => Err("is not a number".into()),
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "si" | "sì" | "da" | "ja" | "да" | "on" => {
                Ok(true)
            }
            "false" | "f" | "no" | "n" | "0" | "nu" | "nein" | "нет" | "off" => Ok(false),
            other => Err(format!("`{other}` is not yes or no")),
        },
        _ => Err("is not yes or no".into()),
    }
}

pub fn parse_date(s: &str, extra: &[String]) -> Option<NaiveDate> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    for f in extra {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Some(d);
        }
    }
    // A date and time where a date is wanted: keep the date.
    if s.len() > 10 && s.is_char_boundary(10) {
        return NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").ok();
    }
    None
}

fn parse_datetime(s: &str, side: &Side) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, f) {
            return Some(dt.timestamp_micros());
        }
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        side.date_formats.iter().find_map(|f| {
            NaiveDateTime::parse_from_str(s, f).ok().or_else(|| {
                NaiveDate::parse_from_str(s, f)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        })
    })
    .or_else(|| parse_date(s, &[]).and_then(|d| d.and_hms_opt(0, 0, 0)))?;
    // Times without an offset are in the side's time zone.
    side.timezone
        .from_local_datetime(&naive)
        .earliest()
        .map(|dt| dt.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(ty: FieldType) -> Field {
        crate::spec::Spec::parse(
            std::path::Path::new("t.toml"),
            "name='t'\nentity='x'\ndirection='a -> b'\n[side.a]\nfile='a.csv'\nid='id'\n[side.b]\nfile='b.csv'\nid='id'\n[[field]]\nname='f'\npath={a='f',b='f'}\n[[key]]\nfields=['f']\n",
        )
        .map(|s| Field { ty, ..s.fields[0].clone() })
        .unwrap()
    }

    fn side(tz: &str, formats: &[&str], comma: bool) -> Side {
        let s = crate::spec::Spec::parse(
            std::path::Path::new("t.toml"),
            "name='t'\nentity='x'\ndirection='a -> b'\n[side.a]\nfile='a.csv'\nid='id'\n[side.b]\nfile='b.csv'\nid='id'\n[[field]]\nname='f'\npath={a='f',b='f'}\n[[key]]\nfields=['f']\n",
        )
        .unwrap();
        Side {
            timezone: tz.parse().unwrap(),
            date_formats: formats.iter().map(|s| s.to_string()).collect(),
            decimal_comma: comma,
            ..s.sides[0].clone()
        }
    }

    #[test]
    fn numbers_in_many_spellings() {
        let f = field(FieldType::Decimal { decimals: 2 });
        let s = side("UTC", &[], false);
        assert_eq!(
            to_cell(Some(&json!("1,500.5")), &f, &s, None),
            Ok(Cell::Decimal(150050))
        );
        assert_eq!(
            to_cell(Some(&json!(12)), &f, &s, None),
            Ok(Cell::Decimal(1200))
        );
        assert_eq!(
            to_cell(Some(&json!(0.005)), &f, &s, None),
            Ok(Cell::Decimal(1))
        );
        let comma = side("UTC", &[], true);
        assert_eq!(
            to_cell(Some(&json!("1.500,50")), &f, &comma, None),
            Ok(Cell::Decimal(150050))
        );
        assert_eq!(
            to_cell(Some(&json!("12345")), &f, &s, Some(100.0)),
            Ok(Cell::Decimal(12345))
        );
        assert!(
            to_cell(Some(&json!("n/a")), &f, &s, None)
                .unwrap_err()
                .contains("not a number")
        );
        let i = field(FieldType::Integer);
        assert_eq!(to_cell(Some(&json!("42")), &i, &s, None), Ok(Cell::Int(42)));
        assert!(to_cell(Some(&json!("4.2")), &i, &s, None).is_err());
        assert_eq!(to_cell(Some(&json!("  ")), &i, &s, None), Ok(Cell::Null));
    }

    #[test]
    fn dates_and_zones() {
        let d = field(FieldType::Date);
        let s = side("Europe/Rome", &["%d/%m/%Y"], false);
        let days =
            |y, m, dd| (NaiveDate::from_ymd_opt(y, m, dd).unwrap() - EPOCH).num_days() as i32;
        assert_eq!(
            to_cell(Some(&json!("2024-03-01")), &d, &s, None),
            Ok(Cell::Date(days(2024, 3, 1)))
        );
        assert_eq!(
            to_cell(Some(&json!("01/03/2024")), &d, &s, None),
            Ok(Cell::Date(days(2024, 3, 1)))
        );
        assert!(to_cell(Some(&json!("31/02/2024")), &d, &s, None).is_err());
        let t = field(FieldType::Datetime);
        let utc = to_cell(Some(&json!("2024-03-01T09:00:00Z")), &t, &s, None).unwrap();
        // 10:00 in Rome (winter, UTC+1) is 09:00 UTC.
        assert_eq!(
            to_cell(Some(&json!("2024-03-01 10:00:00")), &t, &s, None).unwrap(),
            utc
        );
        assert_eq!(
            to_cell(Some(&json!("2024-03-01T11:00:00+02:00")), &t, &s, None).unwrap(),
            utc
        );
    }

    #[test]
    fn lists_need_join() {
        let mut f = field(FieldType::String);
        let s = side("UTC", &[], false);
        assert!(
            to_cell(Some(&json!(["a", "b"])), &f, &s, None)
                .unwrap_err()
                .contains("join")
        );
        f.join = Some("|".into());
        assert_eq!(
            to_cell(Some(&json!(["a", "b"])), &f, &s, None),
            Ok(Cell::Text("a|b".into()))
        );
        let b = field(FieldType::Bool);
        assert_eq!(
            to_cell(Some(&json!("Sì")), &b, &s, None),
            Ok(Cell::Bool(true))
        );
    }
}
