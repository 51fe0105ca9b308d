//! Key normalizers: two systems write the same email, phone or SKU in
//! different ways; a key compares their normal forms.
//!
//! SKU is a plain Polars string expression. Emails and phones (E.164 through
//! the `phonenumber` crate) run row by row in one pass over the column's
//! parts in parallel, most phones through a short path that allocates
//! nothing. Unicode text (NFKC + case fold) runs once per distinct value.

use polars::prelude::*;
use unicode_normalization::UnicodeNormalization;

use crate::spec::Normalizer;

/// The normal form of `e` (a string expression); empty results become null.
pub fn normalized(e: Expr, n: Normalizer, region: Option<&str>) -> Expr {
    let out = match n {
        Normalizer::Exact => e,
        // Row by row in one pass: trimming, lowercasing and nulling the empty
        // ones as three Polars expressions cost three times as much.
        Normalizer::Email => return per_row(e, || (), |raw, (), out| email_into(raw, out)),
        Normalizer::Sku { digits_only } => {
            let t = e.str().strip_chars(lit(NULL)).str().to_uppercase();
            if digits_only {
                t.str().replace_all(lit("[^0-9]"), lit(""), false)
            } else {
                t
            }
        }
        Normalizer::Phone => {
            let region = region.map(str::to_string);
            // Looked up at the first phone, not here: loading phonenumber's
            // metadata takes a while, which `warm_up` spends beside reading.
            let short: std::sync::OnceLock<Option<Region>> = std::sync::OnceLock::new();
            return per_row(
                e,
                || String::with_capacity(16),
                move |raw, digits, out| {
                    let short = short.get_or_init(|| Region::new(region.as_deref()));
                    phone_row(raw, short.as_ref(), region.as_deref(), digits, out)
                },
            );
        }
        Normalizer::Text => per_distinct(e, |s| Some(text(s))),
    };
    when(out.clone().eq(lit("")))
        .then(lit(NULL).cast(DataType::String))
        .otherwise(out)
}

/// Map a string column row by row into a new one, the rows split over the
/// machine's cores. `f` writes a row's result into its buffer and says
/// whether there is one (false: null); `scratch` makes each thread's
/// scratch space.
fn per_row<S, M, F>(e: Expr, scratch: M, f: F) -> Expr
where
    M: Fn() -> S + Send + Sync + 'static,
    F: Fn(&str, &mut S, &mut String) -> bool + Send + Sync + 'static,
{
    e.map(
        move |c: Column| {
            let ca = c.str()?;
            let one = |part: &StringChunked| {
                let mut state = scratch();
                let mut out = String::new();
                let mut b = StringChunkedBuilder::new(ca.name().clone(), part.len());
                for v in part.iter() {
                    out.clear();
                    match v {
                        Some(raw) if f(raw, &mut state, &mut out) => b.append_value(&out),
                        _ => b.append_null(),
                    }
                }
                b.finish()
            };
            let pool = &polars_core::runtime::RAYON;
            let part = ca.len().div_ceil(pool.current_num_threads()).max(8192);
            // In one piece: keys are read by row, and the comparisons
            // gather rows, both slow across pieces.
            Ok(split(ca, part, &one)?.rechunk().into_owned().into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::String)),
    )
}

/// `one` over halves of `ca` on Polars' thread pool, down to parts of at
/// most `part` rows, the results appended in order.
fn split<F>(ca: &StringChunked, part: usize, one: &F) -> PolarsResult<StringChunked>
where
    F: Fn(&StringChunked) -> StringChunked + Sync,
{
    if ca.len() <= part {
        return Ok(one(ca));
    }
    let half = ca.len() / 2;
    let (left, right) = (ca.slice(0, half), ca.slice(half as i64, ca.len() - half));
    let (l, r) =
        polars_core::runtime::RAYON.join(|| split(&left, part, one), || split(&right, part, one));
    let mut l = l?;
    l.append(&r?)?;
    Ok(l)
}

/// An email's normal form into `out`: trimmed and lowercased; false when
/// nothing is left.
fn email_into(raw: &str, out: &mut String) -> bool {
    let t = raw.trim();
    if t.is_ascii() {
        out.extend(t.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        out.push_str(&t.to_lowercase());
    }
    !out.is_empty()
}

/// A phone's E.164 form into `out`: the short path where it applies, the
/// full parser otherwise; false when it is not a phone number.
fn phone_row(
    raw: &str,
    short: Option<&Region>,
    region: Option<&str>,
    digits: &mut String,
    out: &mut String,
) -> bool {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return false;
    }
    if phone_into(trimmed, short, digits, out) {
        return true;
    }
    out.clear();
    match phone_parsed(trimmed, region) {
        Some(p) => {
            out.push_str(&p);
            true
        }
        None => false,
    }
}

/// Apply `f` to each distinct value of a string column, spreading the
/// distinct values over the machine's cores.
fn per_distinct<F>(e: Expr, f: F) -> Expr
where
    F: Fn(&str) -> Option<String> + Send + Sync + 'static,
{
    e.map(
        move |c: Column| {
            let ca = c.str()?;
            let mut index: PlHashMap<&str, u32> = PlHashMap::with_capacity(ca.len());
            let mut distinct: Vec<&str> = Vec::new();
            let slots: Vec<Option<u32>> = ca
                .iter()
                .map(|v| {
                    v.map(|s| {
                        *index.entry(s).or_insert_with(|| {
                            distinct.push(s);
                            (distinct.len() - 1) as u32
                        })
                    })
                })
                .collect();
            let results = map_parallel(&distinct, &f);
            let out: StringChunked = slots
                .into_iter()
                .map(|slot| slot.and_then(|i| results[i as usize].as_deref()))
                .collect();
            Ok(out.with_name(c.name().clone()).into_column())
        },
        |_, field| Ok(Field::new(field.name().clone(), DataType::String)),
    )
}

fn map_parallel<F>(values: &[&str], f: &F) -> Vec<Option<String>>
where
    F: Fn(&str) -> Option<String> + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || values.len() < 4096 {
        return values.iter().map(|v| f(v)).collect();
    }
    let chunk = values.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = values
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|v| f(v)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a normalizer thread panicked"))
            .collect()
    })
}

/// The normal form of one value, as [`normalized`] computes it for a column.
pub fn scalar(raw: &str, n: Normalizer, region: Option<&str>) -> Option<String> {
    let out = match n {
        Normalizer::Exact => Some(raw.to_string()),
        Normalizer::Email => {
            let mut out = String::new();
            email_into(raw, &mut out);
            Some(out)
        }
        Normalizer::Sku { digits_only } => {
            let t = raw.trim().to_uppercase();
            Some(if digits_only {
                t.chars().filter(char::is_ascii_digit).collect()
            } else {
                t
            })
        }
        Normalizer::Phone => phone(raw, region),
        Normalizer::Text => Some(text(raw)),
    };
    out.filter(|s| !s.is_empty())
}

/// E.164 form of a phone number, read with the side's default region.
/// `None` when it is not a phone number.
pub fn phone(raw: &str, region: Option<&str>) -> Option<String> {
    let (mut digits, mut out) = (String::new(), String::new());
    phone_row(
        raw,
        Region::new(region).as_ref(),
        region,
        &mut digits,
        &mut out,
    )
    .then_some(out)
}

/// Load phonenumber's metadata on a thread of its own, so that the first
/// phone to normalize finds it ready: a plan calls this before it reads
/// the snapshots.
pub fn warm_up() {
    std::thread::spawn(|| phonenumber::metadata::DATABASE.by_id("US").is_some());
}

/// What the short path needs of a side's default region, looked up once.
struct Region {
    country_code: String,
    national_prefix: Option<String>,
}

impl Region {
    fn new(region: Option<&str>) -> Option<Region> {
        let meta = phonenumber::metadata::DATABASE.by_id(region?)?;
        Some(Region {
            country_code: meta.country_code().to_string(),
            national_prefix: meta.national_prefix().map(str::to_string),
        })
    }
}

/// The short path for the common shapes (`+39 02 1234 5678`,
/// `0039 02-1234-5678`, `(02) 12345678`, `8 (495) 123-45-67`): they need only
/// the region's country code and national prefix from phonenumber's
/// metadata, at a fraction of a full parse's cost; anything else (letters,
/// extensions) goes to the full parser. Writes into `out`, with `digits` as
/// scratch space; false when the full parser must decide.
fn phone_into(s: &str, region: Option<&Region>, digits: &mut String, out: &mut String) -> bool {
    digits.clear();
    let mut plus = false;
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if digits.is_empty() && !plus => plus = true,
            ' ' | '-' | '(' | ')' | '.' | '/' | '\u{a0}' => {}
            _ => return false,
        }
    }
    out.clear();
    out.push('+');
    if plus {
        out.push_str(digits);
    } else if let Some(rest) = digits.strip_prefix("00") {
        out.push_str(rest);
    } else {
        let Some(r) = region else { return false };
        // Digits that start with the country's own code (79161234567,
        // Italian mobiles 393...) may or may not include it: the full
        // parser, which knows each country's number plan, decides.
        if digits.starts_with(&r.country_code) {
            return false;
        }
        let national = match &r.national_prefix {
            Some(np) if digits.starts_with(np.as_str()) && digits.len() >= np.len() + 6 => {
                &digits[np.len()..]
            }
            _ => digits.as_str(),
        };
        out.push_str(&r.country_code);
        out.push_str(national);
    }
    // E.164 numbers have at most 15 digits; fewer than 8 is no phone.
    (9..=16).contains(&out.len())
}

/// The full parse, with validation, for the shapes the fast path declines.
fn phone_parsed(trimmed: &str, region: Option<&str>) -> Option<String> {
    // `00` is the international prefix in most of Europe; phonenumber wants `+`.
    let cleaned: String = trimmed
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    let cleaned = match cleaned.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => cleaned,
    };
    if cleaned.is_empty() {
        return None;
    }
    let country = region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
    let valid = |text: &str, country| {
        phonenumber::parse(country, text)
            .ok()
            .filter(phonenumber::is_valid)
            .map(|p| p.format().mode(phonenumber::Mode::E164).to_string())
    };
    valid(&cleaned, country).or_else(|| {
        // A national number that starts with the country's own code (Italian
        // mobiles 39x) is taken for an international one; say it plainly.
        let code = phonenumber::metadata::DATABASE
            .by_id(region?)?
            .country_code();
        if cleaned.starts_with('+') {
            return None;
        }
        valid(&format!("+{code}{cleaned}"), None)
    })
}

/// Unicode text as a key: NFKC, case folded, inner whitespace collapsed.
pub fn text(raw: &str) -> String {
    let nfkc: String = raw.nfkc().collect();
    nfkc.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_written_five_ways_agree() {
        let ways = [
            "+39 02 1234 5678",
            "0039 02-1234-5678",
            "(02) 12345678",
            "02 1234 5678",
            "+390212345678",
        ];
        for w in ways {
            assert_eq!(
                phone(w, Some("IT")).as_deref(),
                Some("+390212345678"),
                "{w}"
            );
        }
        assert_eq!(
            phone("8 (495) 123-45-67", Some("RU")).as_deref(),
            Some("+74951234567")
        );
        // Italian mobiles start with 3, and some with 39, the country code.
        for w in [
            "393 243 3632",
            "393-2433632",
            "+39 393 2433632",
            "0039 3932433632",
        ] {
            assert_eq!(
                phone(w, Some("IT")).as_deref(),
                Some("+393932433632"),
                "{w}"
            );
        }
        assert_eq!(phone("not a phone", Some("IT")), None);
        assert_eq!(
            phone("020 7946 0018", Some("GB")).as_deref(),
            Some("+442079460018")
        );
        assert_eq!(
            phone("0721 234 567", Some("RO")).as_deref(),
            Some("+40721234567")
        );
        assert_eq!(phone("123", Some("IT")), None);
        assert_eq!(phone("", Some("IT")), None);
    }

    fn phone_fast(s: &str, region: Option<&str>) -> Option<String> {
        let (mut digits, mut out) = (String::new(), String::new());
        phone_into(s, Region::new(region).as_ref(), &mut digits, &mut out).then_some(out)
    }

    /// The short path agrees with the full parser wherever the parser reads a
    /// valid number, or leaves the number to it.
    #[test]
    fn the_fast_path_agrees_with_the_full_parse() {
        let samples = [
            ("+39 02 1234 5678", "IT"),
            ("02 1234 5678", "IT"),
            ("06 8738 3207", "IT"),
            ("347 123 4567", "IT"),
            ("0039 347-1234567", "IT"),
            ("8 (495) 123-45-67", "RU"),
            ("8 916 123 45 67", "RU"),
            ("+7 916 123-45-67", "RU"),
            ("0721 234 567", "RO"),
            ("+40 21 312 3456", "RO"),
            ("020 7946 0018", "GB"),
            ("+32 2 555 12 12", "BE"),
            ("02 555 12 12", "BE"),
            ("030 901820", "DE"),
            ("79161234567", "RU"),
            ("7 (916) 123-45-67", "RU"),
            ("06 12345678", "NL"),
        ];
        for (raw, region) in samples {
            let full = phone_parsed(raw, Some(region));
            assert!(full.is_some(), "{raw} is a valid {region} number");
            // The short path either declines or agrees.
            if let Some(fast) = phone_fast(raw, Some(region)) {
                assert_eq!(Some(fast), full, "{raw} ({region})");
            }
            assert_eq!(phone(raw, Some(region)), full, "{raw} ({region})");
        }
    }

    #[test]
    fn a_phone_column_reads_as_its_values_do() {
        let raw = [
            Some("+39 02 1234 5678"),
            None,
            Some("  "),
            Some("393 243 3632"),
            Some("not a phone"),
            Some("(02) 12345678"),
        ];
        // Long enough to be split across threads.
        let values: Vec<Option<&str>> = raw.iter().cycle().take(6 * 3000).copied().collect();
        let df = df!("v" => values.clone()).unwrap();
        let out = df
            .lazy()
            .select([normalized(col("v"), Normalizer::Phone, Some("IT")).alias("v")])
            .collect()
            .unwrap();
        let got: Vec<Option<&str>> = out.column("v").unwrap().str().unwrap().iter().collect();
        let want: Vec<Option<String>> = values
            .iter()
            .map(|v| v.and_then(|v| phone(v, Some("IT"))))
            .collect();
        assert_eq!(got, want.iter().map(|w| w.as_deref()).collect::<Vec<_>>());
        assert_eq!(got[3], Some("+393932433632"));
        assert_eq!(got[4], None);
    }

    #[test]
    fn text_folds_unicode() {
        assert_eq!(text("  ＡＢＣ  Straße "), "abc straße");
        assert_eq!(text("ÉCOLE"), text("école"));
        assert_eq!(text("Ｍüller\tGmbH"), "müller gmbh");
    }

    #[test]
    fn expressions_normalize_columns() {
        let df = df!("v" => [Some("  Ann@X.COM "), Some(""), None, Some("sku-0012 ")]).unwrap();
        let out = df
            .lazy()
            .select([
                normalized(col("v"), Normalizer::Email, None).alias("email"),
                normalized(col("v"), Normalizer::Sku { digits_only: true }, None).alias("sku"),
            ])
            .collect()
            .unwrap();
        let email: Vec<Option<&str>> = out.column("email").unwrap().str().unwrap().iter().collect();
        assert_eq!(email, vec![Some("ann@x.com"), None, None, Some("sku-0012")]);
        let sku: Vec<Option<&str>> = out.column("sku").unwrap().str().unwrap().iter().collect();
        assert_eq!(sku, vec![None, None, None, Some("0012")]);
    }
}
