//! From spec text to a typed [`Spec`], collecting every error on the way.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostic, SpecErrors, nearest};
use super::expr;
use super::wire::{self, FieldWire, KeyWire, ReportWire, SideWire};
use super::*;

const FIELD_TYPES: &[&str] = &["string", "integer", "decimal", "bool", "date", "datetime"];
const NORMALIZERS: &[&str] = &["exact", "email", "phone", "sku", "text"];
const COMPARES: &[&str] = &[
    "exact",
    "case_insensitive",
    "trim",
    "loose",
    "email",
    "phone",
    "sku",
    "text",
];
const FORMATS: &[&str] = &["csv", "json", "ndjson", "parquet"];

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Option<Range<usize>>, msg: impl Into<String>, hint: Option<String>) {
        self.errors
            .push(Diagnostic::at(self.file, self.text, span, msg, hint));
    }

    /// Turn a serde error into a diagnostic, adding a "did you mean" hint to
    /// unknown keys.
    fn serde_err(&mut self, e: toml::de::Error, context: &str) {
        let msg = e.message().trim().to_string();
        let hint = unknown_key_hint(&msg);
        self.err(e.span(), format!("{msg} in {context}"), hint);
    }

    fn de<'de, T: Deserialize<'de>>(
        &mut self,
        v: Spanned<DeValue<'de>>,
        context: &str,
    ) -> Option<T> {
        match T::deserialize(v.into_deserializer()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.serde_err(e, context);
                None
            }
        }
    }
}

/// serde says "unknown field `requierd`, expected one of `a`, `b`": suggest
/// the nearest expected name.
fn unknown_key_hint(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (word, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    match nearest(word, expected.iter().copied()) {
        Some(n) => Some(format!("did you mean `{n}`?")),
        None => Some(format!("valid keys here: {}", expected.join(", "))),
    }
}

fn one_of(word: &str, known: &[&str]) -> Option<String> {
    if known.is_empty() {
        return None;
    }
    Some(match nearest(word, known.iter().copied()) {
        Some(n) => format!("did you mean `{n}`? (one of: {})", known.join(", ")),
        None => format!("one of: {}", known.join(", ")),
    })
}

pub(super) fn validate(file: &Path, text: &str) -> Result<Spec, SpecErrors> {
    let mut cx = Ctx {
        file,
        text,
        errors: Vec::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(t) => t,
        Err(e) => {
            cx.err(
                e.span(),
                format!("not valid TOML: {}", e.message().trim()),
                None,
            );
            return Err(SpecErrors(cx.errors));
        }
    };
    let root_span = root.span();

    let mut name: Option<Spanned<String>> = None;
    let mut entity: Option<Spanned<String>> = None;
    let mut direction: Option<Spanned<String>> = None;
    let mut winner: Option<Spanned<String>> = None;
    let mut after: Vec<String> = Vec::new();
    let mut sides: Vec<(Spanned<String>, SideWire)> = Vec::new();
    let mut side_span: Option<Range<usize>> = None;
    let mut fields: Vec<Spanned<FieldWire>> = Vec::new();
    let mut keys: Vec<Spanned<KeyWire>> = Vec::new();
    let mut report: Option<ReportWire> = None;
    let mut raw_fields = 0usize;
    let mut raw_field_names: Vec<String> = Vec::new();

    for (k, v) in root.into_inner() {
        let key = k.get_ref().to_string();
        let kspan = k.span();
        match key.as_str() {
            "name" => name = cx.de(v, "`name`"),
            "entity" => entity = cx.de(v, "`entity`"),
            "direction" => direction = cx.de(v, "`direction`"),
            "winner" => winner = cx.de(v, "`winner`"),
            "after" => after = cx.de(v, "`after`").unwrap_or_default(),
            "report" => report = cx.de(v, "[report]"),
            "side" => {
                side_span = Some(v.span());
                let span = v.span();
                match v.into_inner() {
                    DeValue::Table(t) => {
                        for (sk, sv) in t {
                            let sname = Spanned::new(sk.span(), sk.get_ref().to_string());
                            let ctx = format!("[side.{}]", sname.get_ref());
                            if let Some(w) = cx.de::<SideWire>(sv, &ctx) {
                                sides.push((sname, w));
                            } else {
                                // Keep the name so the rest of the spec still validates.
                                sides.push((sname, placeholder_side()));
                            }
                        }
                    }
                    _ => cx.err(
                        Some(span),
                        "`side` must be tables: [side.NAME]",
                        Some("write `[side.crm]` and `[side.erp]` sections".into()),
                    ),
                }
            }
            "field" | "key" => {
                let span = v.span();
                match v.into_inner() {
                    DeValue::Array(items) => {
                        for (n, item) in items.into_iter().enumerate() {
                            // Name the item in messages, and keep field names
                            // known even when the rest of the item is broken.
                            let item_name = item
                                .get_ref()
                                .get("name")
                                .and_then(|v| v.get_ref().as_str().map(str::to_string));
                            let ctx = match &item_name {
                                Some(nm) => format!("[[{key}]] `{nm}`"),
                                None => format!("[[{key}]] #{}", n + 1),
                            };
                            if key == "field" {
                                raw_fields += 1;
                                if let Some(nm) = item_name {
                                    raw_field_names.push(nm);
                                }
                            }
                            let ispan = item.span();
                            if key == "field" {
                                if let Some(w) = cx.de::<FieldWire>(item, &ctx) {
                                    fields.push(Spanned::new(ispan, w));
                                }
                            } else if let Some(w) = cx.de::<KeyWire>(item, &ctx) {
                                keys.push(Spanned::new(ispan, w));
                            }
                        }
                    }
                    _ => cx.err(
                        Some(span),
                        format!("`{key}` must be an array of tables: [[{key}]]"),
                        None,
                    ),
                }
            }
            other => {
                let hint = one_of(other, wire::TOP_KEYS);
                cx.err(
                    Some(kspan),
                    format!("unknown key `{other}` at the top of the spec"),
                    hint,
                );
            }
        }
    }

    let top_missing = |cx: &mut Ctx, what: &str, example: &str| {
        cx.err(
            Some(root_span.start..root_span.start),
            format!("missing `{what}`"),
            Some(format!("add `{example}` at the top of the spec")),
        )
    };
    if name.is_none() {
        top_missing(&mut cx, "name", "name = \"customers\"");
    }
    if entity.is_none() {
        top_missing(&mut cx, "entity", "entity = \"customers\"");
    }
    if let Some(n) = &name {
        let ok = !n.get_ref().is_empty()
            && n.get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            cx.err(
                Some(n.span()),
                format!(
                    "spec name `{}` must be letters, digits, `-` and `_`",
                    n.get_ref()
                ),
                Some("it names folders under snapshots/ and reports/".into()),
            );
        }
    }

    // Sides.
    if sides.len() != 2 {
        let span = side_span.clone().or(Some(root_span.start..root_span.start));
        cx.err(
            span,
            format!("a spec needs exactly two sides, found {}", sides.len()),
            Some("declare `[side.A]` and `[side.B]` with the names of your systems".into()),
        );
    }
    let side_names: Vec<String> = sides.iter().map(|(n, _)| n.get_ref().clone()).collect();
    let typed_sides: Vec<Option<Side>> = sides.iter().map(|(n, w)| side(&mut cx, n, w)).collect();

    // Direction.
    let dir = match (&direction, side_names.len()) {
        (None, _) => {
            top_missing(&mut cx, "direction", "direction = \"crm -> erp\"");
            None
        }
        (Some(d), 2) => parse_direction(&mut cx, d, &side_names),
        _ => None,
    };
    let dir = match (dir, &winner) {
        (Some(Direction::Both { .. }), Some(w)) => {
            match side_names.iter().position(|s| s == w.get_ref()) {
                Some(i) => Some(Direction::Both {
                    winner: Some(if i == 0 { SideIx::A } else { SideIx::B }),
                }),
                None => {
                    let hint = one_of(
                        w.get_ref(),
                        &side_names.iter().map(String::as_str).collect::<Vec<_>>(),
                    );
                    cx.err(
                        Some(w.span()),
                        format!("`winner` names unknown side `{}`", w.get_ref()),
                        hint,
                    );
                    None
                }
            }
        }
        (Some(d), Some(w)) => {
            cx.err(
                Some(w.span()),
                "`winner` only applies to direction = \"both\"",
                None,
            );
            Some(d)
        }
        (d, None) => d,
        (None, Some(_)) => None,
    };

    // Fields.
    let mut seen = BTreeSet::new();
    let field_names: Vec<String> = raw_field_names;
    let mut typed_fields = Vec::new();
    for f in &fields {
        let fname = f.get_ref().name.get_ref().clone();
        if !seen.insert(fname.clone()) {
            cx.err(
                Some(f.get_ref().name.span()),
                format!("field `{fname}` is declared twice"),
                None,
            );
        }
        if fname.starts_with('_') {
            cx.err(
                Some(f.get_ref().name.span()),
                format!("field name `{fname}` may not start with `_`"),
                Some("names starting with `_` are kept for recon's own columns".into()),
            );
        }
        if let Some(tf) = field(&mut cx, f, &side_names, &field_names) {
            typed_fields.push(tf);
        }
    }
    if raw_fields == 0 {
        cx.err(
            Some(root_span.start..root_span.start),
            "a spec needs at least one [[field]]",
            Some("declare the canonical fields: [[field]] name = \"email\" path = { crm = \"Email\", erp = \"email\" }".into()),
        );
    }

    // Keys.
    let mut typed_keys = Vec::new();
    for k in &keys {
        let k = k.get_ref();
        let mut ok = true;
        let mut names = Vec::new();
        for f in k.fields.get_ref() {
            match typed_fields
                .iter()
                .find(|tf: &&Field| &tf.name == f.get_ref())
            {
                Some(tf) => {
                    if tf.paths.iter().any(Option::is_none) {
                        cx.err(
                            Some(f.span()),
                            format!("key field `{}` needs a path on both sides", f.get_ref()),
                            None,
                        );
                        ok = false;
                    }
                }
                None if field_names.contains(f.get_ref()) => ok = false,
                None => {
                    let hint = one_of(
                        f.get_ref(),
                        &field_names.iter().map(String::as_str).collect::<Vec<_>>(),
                    );
                    cx.err(
                        Some(f.span()),
                        format!("key names unknown field `{}`", f.get_ref()),
                        hint,
                    );
                    ok = false;
                }
            }
            names.push(f.get_ref().clone());
        }
        if names.is_empty() {
            cx.err(
                Some(k.fields.span()),
                "a key needs at least one field",
                None,
            );
            ok = false;
        }
        let normalize = match &k.normalize {
            None => Normalizer::Exact,
            Some(n) => match n.get_ref().as_str() {
                "exact" => Normalizer::Exact,
                "email" => Normalizer::Email,
                "phone" => Normalizer::Phone,
                "sku" => Normalizer::Sku {
                    digits_only: k.digits_only.unwrap_or(false),
                },
                "text" => Normalizer::Text,
                other => {
                    cx.err(
                        Some(n.span()),
                        format!("unknown normalizer `{other}`"),
                        one_of(other, NORMALIZERS),
                    );
                    ok = false;
                    Normalizer::Exact
                }
            },
        };
        if ok {
            typed_keys.push(MatchKey {
                name: k
                    .name
                    .as_ref()
                    .map(|n| n.get_ref().clone())
                    .unwrap_or_else(|| names.join("+")),
                fields: names,
                normalize,
            });
        }
    }
    if keys.is_empty() {
        cx.err(
            Some(root_span.start..root_span.start),
            "a spec needs at least one [[key]] to match records by",
            Some("add `[[key]] fields = [\"email\"] normalize = \"email\"`".into()),
        );
    }

    // Filters name canonical fields.
    for (n, w) in &sides {
        for f in w.filter.iter().flatten() {
            if let Ok(rule) = expr::parse_filter(f.get_ref())
                && !field_names.iter().any(|x| x == rule.field())
            {
                let hint = one_of(
                    rule.field(),
                    &field_names.iter().map(String::as_str).collect::<Vec<_>>(),
                );
                cx.err(
                    Some(f.span()),
                    format!(
                        "filter on side `{}` names unknown field `{}`",
                        n.get_ref(),
                        rule.field()
                    ),
                    hint,
                );
            }
        }
    }

    if !cx.errors.is_empty() {
        cx.errors.sort_by_key(|d| (d.line, d.column));
        return Err(SpecErrors(cx.errors));
    }
    let [a, b]: [Option<Side>; 2] = typed_sides.try_into().expect("two sides checked above");
    Ok(Spec {
        name: name.expect("checked").into_inner(),
        entity: entity.expect("checked").into_inner(),
        file: file.to_path_buf(),
        hash: format!("{:x}", Sha256::digest(text.as_bytes())),
        sides: [a.expect("no errors"), b.expect("no errors")],
        direction: dir.expect("no errors"),
        after,
        fields: typed_fields,
        keys: typed_keys,
        report_max_rows: report.and_then(|r| r.max_rows).unwrap_or(500),
    })
}

fn placeholder_side() -> SideWire {
    SideWire {
        file: None,
        profile: None,
        entity: None,
        base_url: None,
        token_url: None,
        batch: None,
        rate_limit: None,
        auth: None,
        incremental: None,
        overlap_seconds: None,
        format: None,
        records: None,
        delimiter: None,
        quote: None,
        header: None,
        decimal_comma: None,
        date_formats: None,
        id: Spanned::new(0..0, String::new()),
        region: None,
        timezone: None,
        filter: None,
    }
}

fn parse_direction(cx: &mut Ctx, d: &Spanned<String>, sides: &[String]) -> Option<Direction> {
    let text = d.get_ref().trim();
    match text {
        "both" => return Some(Direction::Both { winner: None }),
        "audit" => return Some(Direction::Audit),
        _ => {}
    }
    let (from, to) = if let Some((l, r)) = text.split_once("->") {
        (l.trim(), r.trim())
    } else if let Some((l, r)) = text.split_once("<-") {
        (r.trim(), l.trim())
    } else {
        cx.err(
            Some(d.span()),
            format!("direction `{text}` is not understood"),
            Some(format!(
                "write \"{0} -> {1}\", \"{1} -> {0}\", \"both\" or \"audit\"",
                sides[0], sides[1]
            )),
        );
        return None;
    };
    let ix = |name: &str| match name {
        n if n == sides[0] || n == "a" => Some(SideIx::A),
        n if n == sides[1] || n == "b" => Some(SideIx::B),
        _ => None,
    };
    match (ix(from), ix(to)) {
        (Some(f), Some(t)) if f != t => Some(Direction::OneWay { from: f }),
        (Some(_), Some(_)) => {
            cx.err(
                Some(d.span()),
                "a direction goes from one side to the other",
                None,
            );
            None
        }
        _ => {
            let bad = if ix(from).is_none() { from } else { to };
            let names: Vec<&str> = sides.iter().map(String::as_str).collect();
            cx.err(
                Some(d.span()),
                format!("direction names unknown side `{bad}`"),
                one_of(bad, &names),
            );
            None
        }
    }
}

fn side(cx: &mut Ctx, name: &Spanned<String>, w: &SideWire) -> Option<Side> {
    let n = name.get_ref();
    if w.id.get_ref().is_empty() {
        return None; // already reported by serde
    }
    let errors_before = cx.errors.len();
    let id = match FieldPath::parse(w.id.get_ref()) {
        Ok(p) => Some(p),
        Err(e) => {
            cx.err(
                Some(w.id.span()),
                format!("side `{n}`: bad id path: {e}"),
                None,
            );
            None
        }
    };
    if let Some(profile) = &w.profile {
        return http_side(cx, name, w, profile, id, errors_before);
    }
    let Some(file) = &w.file else {
        cx.err(
            Some(name.span()),
            format!("side `{n}` says nothing about where its records come from"),
            Some(format!(
                "add `file = \"{n}.csv\"` or `profile = \"moysklad\"` under [side.{n}]"
            )),
        );
        return None;
    };
    let base = cx.file.parent().unwrap_or(Path::new("."));
    let path = base.join(file.get_ref());
    let format = match &w.format {
        Some(f) => match f.get_ref().to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "json" => Some(FileFormat::Json),
            "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
            "parquet" => Some(FileFormat::Parquet),
            other => {
                cx.err(
                    Some(f.span()),
                    format!("unknown file format `{other}`"),
                    one_of(other, FORMATS),
                );
                None
            }
        },
        None => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") | Some("tsv") | Some("txt") => Some(FileFormat::Csv),
            Some("json") => Some(FileFormat::Json),
            Some("ndjson") | Some("jsonl") => Some(FileFormat::Ndjson),
            Some("parquet") => Some(FileFormat::Parquet),
            _ => {
                cx.err(
                    Some(file.span()),
                    format!(
                        "cannot tell the format of `{}` from its extension",
                        file.get_ref()
                    ),
                    Some("add `format = \"csv\"` (or json, ndjson, parquet)".into()),
                );
                None
            }
        },
    };
    let one_byte = |cx: &mut Ctx, v: &Option<Spanned<String>>, default: u8, what: &str| -> u8 {
        match v {
            None => default,
            Some(s) => {
                let t = s.get_ref().as_str();
                let t = if t == "\\t" { "\t" } else { t };
                if t.len() == 1 && t.is_ascii() {
                    t.as_bytes()[0]
                } else {
                    cx.err(
                        Some(s.span()),
                        format!("the CSV {what} must be one ASCII character"),
                        None,
                    );
                    default
                }
            }
        }
    };
    let tsv = path.extension().is_some_and(|e| e == "tsv");
    let delimiter = one_byte(
        cx,
        &w.delimiter,
        if tsv { b'\t' } else { b',' },
        "delimiter",
    );
    let quote = one_byte(cx, &w.quote, b'"', "quote");
    let records = w
        .records
        .as_ref()
        .and_then(|r| match FieldPath::parse(r.get_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                cx.err(Some(r.span()), format!("bad records path: {e}"), None);
                None
            }
        });
    let common = side_common(cx, n, w);
    if cx.errors.len() > errors_before {
        return None;
    }
    Some(Side {
        name: n.clone(),
        connection: Connection::File(FileSource {
            path,
            format: format?,
            records,
            delimiter,
            quote,
            header: w.header.unwrap_or(true),
        }),
        id: id?,
        ..common
    })
}

/// The settings every kind of side has: zone, region, filters, formats.
fn side_common(cx: &mut Ctx, n: &str, w: &SideWire) -> Side {
    let timezone = match &w.timezone {
        None => chrono_tz::UTC,
        Some(tz) => match tz.get_ref().parse::<chrono_tz::Tz>() {
            Ok(t) => t,
            Err(_) => {
                cx.err(
                    Some(tz.span()),
                    format!("unknown time zone `{}`", tz.get_ref()),
                    Some("use an IANA name such as `Europe/Rome` or `UTC`".into()),
                );
                chrono_tz::UTC
            }
        },
    };
    if let Some(r) = &w.region {
        let code = r.get_ref().to_ascii_uppercase();
        if code.parse::<phonenumber::country::Id>().is_err() {
            cx.err(
                Some(r.span()),
                format!("unknown phone region `{}`", r.get_ref()),
                Some("use a two-letter country code such as `IT`, `RO`, `RU`".into()),
            );
        }
    }
    let mut filters = Vec::new();
    for f in w.filter.iter().flatten() {
        match expr::parse_filter(f.get_ref()) {
            Ok(rule) => filters.push((f.get_ref().clone(), rule)),
            Err(e) => cx.err(Some(f.span()), format!("side `{n}`: bad filter: {e}"), None),
        }
    }
    Side {
        name: n.to_string(),
        connection: Connection::File(FileSource {
            path: Default::default(),
            format: FileFormat::Csv,
            records: None,
            delimiter: b',',
            quote: b'"',
            header: true,
        }),
        id: FieldPath::key("id"),
        region: w.region.as_ref().map(|r| r.get_ref().to_ascii_uppercase()),
        timezone,
        decimal_comma: w.decimal_comma.unwrap_or(false),
        date_formats: w
            .date_formats
            .iter()
            .flatten()
            .map(|s| s.get_ref().clone())
            .collect(),
        filters,
    }
}

/// An HTTP side: a profile, one of its entities, and the variables holding
/// its credentials.
fn http_side(
    cx: &mut Ctx,
    name: &Spanned<String>,
    w: &SideWire,
    profile: &Spanned<String>,
    id: Option<FieldPath>,
    errors_before: usize,
) -> Option<Side> {
    let n = name.get_ref();
    if let Some(f) = &w.file {
        cx.err(
            Some(f.span()),
            format!("side `{n}` has both `file` and `profile`"),
            Some("a side reads a file or an API, not both".into()),
        );
    }
    for (key, given) in [
        ("format", w.format.is_some()),
        ("records", w.records.is_some()),
        ("delimiter", w.delimiter.is_some()),
        ("quote", w.quote.is_some()),
    ] {
        if given {
            cx.err(
                Some(name.span()),
                format!("side `{n}`: `{key}` applies to file sides only"),
                None,
            );
        }
    }
    let base = cx.file.parent().unwrap_or(Path::new("."));
    let prof = match crate::connect::http::profile::Profile::find(profile.get_ref(), base) {
        Ok(p) => Some(p),
        Err(e) => {
            cx.err(Some(profile.span()), e, None);
            None
        }
    };
    let entity = match (&w.entity, &prof) {
        (None, _) => {
            cx.err(
                Some(name.span()),
                format!("side `{n}` needs `entity`, the profile's entity to read"),
                None,
            );
            None
        }
        (Some(e), Some(p)) if !p.entity.contains_key(e.get_ref()) => {
            let names: Vec<&str> = p.entity.keys().map(String::as_str).collect();
            cx.err(
                Some(e.span()),
                format!("profile `{}` has no entity `{}`", p.name, e.get_ref()),
                one_of(e.get_ref(), &names),
            );
            None
        }
        (Some(e), _) => Some(e.get_ref().clone()),
    };
    let mut auth = BTreeMap::new();
    for (k, v) in w.auth.iter().flat_map(|a| a.get_ref().iter()) {
        auth.insert(k.clone(), v.get_ref().clone());
    }
    if let Some(p) = &prof {
        let needed = p.auth.secrets();
        for secret in &needed {
            if !auth.contains_key(secret) {
                let span = w.auth.as_ref().map(|a| a.span()).unwrap_or(name.span());
                cx.err(
                    Some(span),
                    format!("side `{n}`: profile `{}` needs the secret `{secret}`", p.name),
                    Some(format!("name the environment variable that holds it: [side.{n}.auth] {secret} = \"{}_{}\"", n.to_uppercase(), secret.to_uppercase())),
                );
            }
        }
        for (k, v) in w.auth.iter().flat_map(|a| a.get_ref().iter()) {
            if !needed.contains(k) {
                let names: Vec<&str> = needed.iter().map(String::as_str).collect();
                cx.err(
                    Some(v.span()),
                    format!("side `{n}`: profile `{}` has no secret `{k}`", p.name),
                    one_of(k, &names),
                );
            }
            let var = v.get_ref();
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                cx.err(
                    Some(v.span()),
                    format!("side `{n}`: `{k}` must name an environment variable, not hold the secret"),
                    Some("secrets never live in a spec: write the variable's name, e.g. MOYSKLAD_TOKEN".into()),
                );
            }
        }
    }
    let common = side_common(cx, n, w);
    if cx.errors.len() > errors_before {
        return None;
    }
    let mut prof = prof?;
    let entity = entity?;
    if let Some(limit) = w.rate_limit {
        prof.rate_limit = Some(limit);
    }
    let supports = prof
        .entity
        .get(&entity)
        .is_some_and(|e| e.incremental.is_some() || e.changelog.is_some());
    Some(Side {
        name: n.clone(),
        connection: Connection::Http(Box::new(crate::connect::http::HttpSource {
            profile_name: profile.get_ref().clone(),
            base_url: w
                .base_url
                .as_ref()
                .map(|b| b.get_ref().clone())
                .unwrap_or_else(|| prof.base_url.clone()),
            token_url: w.token_url.as_ref().map(|t| t.get_ref().clone()),
            profile: prof,
            entity,
            auth,
            incremental: w.incremental.unwrap_or(true) && supports,
            batch: w.batch.unwrap_or(true),
            overlap: std::time::Duration::from_secs(w.overlap_seconds.unwrap_or(300)),
        })),
        id: id?,
        ..common
    })
}

fn side_index(cx: &mut Ctx, name: &Spanned<String>, sides: &[String], what: &str) -> Option<usize> {
    let pos = sides.iter().position(|s| s == name.get_ref());
    if pos.is_none() {
        let names: Vec<&str> = sides.iter().map(String::as_str).collect();
        cx.err(
            Some(name.span()),
            format!("{what} names unknown side `{}`", name.get_ref()),
            one_of(name.get_ref(), &names),
        );
    }
    pos
}

fn field(
    cx: &mut Ctx,
    f: &Spanned<FieldWire>,
    sides: &[String],
    all_fields: &[String],
) -> Option<Field> {
    let w = f.get_ref();
    let name = w.name.get_ref().clone();
    let before = cx.errors.len();
    let ty = match &w.ty {
        None => FieldType::String,
        Some(t) => match t.get_ref().as_str() {
            "string" | "text" => FieldType::String,
            "integer" | "int" => FieldType::Integer,
            "decimal" => FieldType::Decimal {
                decimals: w.decimals.as_ref().map(|d| *d.get_ref()).unwrap_or(2),
            },
            "bool" | "boolean" => FieldType::Bool,
            "date" => FieldType::Date,
            "datetime" => FieldType::Datetime,
            other => {
                cx.err(
                    Some(t.span()),
                    format!("field `{name}`: unknown type `{other}`"),
                    one_of(other, FIELD_TYPES),
                );
                FieldType::String
            }
        },
    };
    if let Some(d) = &w.decimals
        && (!matches!(ty, FieldType::Decimal { .. }) || *d.get_ref() > 18)
    {
        cx.err(
            Some(d.span()),
            format!("field `{name}`: `decimals` applies to decimal fields, 0 to 18"),
            None,
        );
    }
    let mut paths: [Option<FieldPath>; 2] = [None, None];
    if let Some(p) = &w.path {
        for (side, text) in p.get_ref() {
            let Some(i) = side_index(
                cx,
                &Spanned::new(text.span(), side.clone()),
                sides,
                &format!("field `{name}`: path"),
            ) else {
                continue;
            };
            match FieldPath::parse(text.get_ref()) {
                Ok(fp) => paths[i] = Some(fp),
                Err(e) => cx.err(Some(text.span()), format!("field `{name}`: {e}"), None),
            }
        }
    }
    let mut unit = [None, None];
    if let Some(u) = &w.unit {
        if !ty.is_numeric() {
            cx.err(
                Some(u.span()),
                format!("field `{name}`: `unit` applies to integer and decimal fields"),
                None,
            );
        }
        for (side, factor) in u.get_ref() {
            if let Some(i) = side_index(
                cx,
                &Spanned::new(factor.span(), side.clone()),
                sides,
                &format!("field `{name}`: unit"),
            ) {
                if *factor.get_ref() == 0.0 {
                    cx.err(
                        Some(factor.span()),
                        format!("field `{name}`: a unit factor cannot be 0"),
                        None,
                    );
                }
                unit[i] = Some(*factor.get_ref());
            }
        }
    }
    let compare = match &w.compare {
        None => Compare::default(),
        Some(c) => match c.get_ref().as_str() {
            "exact" => Compare::default(),
            "case_insensitive" => Compare {
                case_insensitive: true,
                ..Compare::default()
            },
            "trim" => Compare {
                trim: true,
                ..Compare::default()
            },
            "loose" => Compare {
                case_insensitive: true,
                trim: true,
                normalize: None,
            },
            "email" => Compare {
                normalize: Some(Normalizer::Email),
                ..Compare::default()
            },
            "phone" => Compare {
                normalize: Some(Normalizer::Phone),
                ..Compare::default()
            },
            "sku" => Compare {
                normalize: Some(Normalizer::Sku { digits_only: false }),
                ..Compare::default()
            },
            "text" => Compare {
                normalize: Some(Normalizer::Text),
                ..Compare::default()
            },
            other => {
                cx.err(
                    Some(c.span()),
                    format!("field `{name}`: unknown compare `{other}`"),
                    one_of(other, COMPARES),
                );
                Compare::default()
            }
        },
    };
    if let Some(t) = &w.tolerance {
        if !ty.is_numeric() {
            cx.err(
                Some(t.span()),
                format!("field `{name}`: `tolerance` applies to integer and decimal fields"),
                None,
            );
        } else if *t.get_ref() < 0.0 {
            cx.err(
                Some(t.span()),
                format!("field `{name}`: `tolerance` cannot be negative"),
                None,
            );
        }
    }
    let check_refs = |cx: &mut Ctx, span: Range<usize>, refs: Vec<String>, what: &str| {
        for r in refs {
            if r == name {
                cx.err(
                    Some(span.clone()),
                    format!("field `{name}`: {what} refers to the field itself"),
                    None,
                );
            } else if !all_fields.contains(&r) {
                let names: Vec<&str> = all_fields.iter().map(String::as_str).collect();
                cx.err(
                    Some(span.clone()),
                    format!("field `{name}`: {what} names unknown field `{r}`"),
                    one_of(&r, &names),
                );
            }
        }
    };
    let mut sources = Vec::new();
    if let Some(c) = &w.constant {
        sources.push(("constant", c.span(), Source::Constant(c.get_ref().clone())));
    }
    if let Some(t) = &w.template {
        match expr::parse_template(t.get_ref()) {
            Ok(pieces) => {
                let refs = pieces
                    .iter()
                    .filter_map(|p| match p {
                        Piece::Field(f) => Some(f.clone()),
                        Piece::Text(_) => None,
                    })
                    .collect();
                check_refs(cx, t.span(), refs, "template");
                sources.push(("template", t.span(), Source::Template(pieces)));
            }
            Err(e) => cx.err(Some(t.span()), format!("field `{name}`: {e}"), None),
        }
    }
    if let Some(c) = &w.compute {
        match expr::parse_calc(c.get_ref()) {
            Ok(calc) => {
                let mut refs = Vec::new();
                calc.fields(&mut refs);
                check_refs(cx, c.span(), refs, "compute");
                if !ty.is_numeric() {
                    cx.err(Some(c.span()), format!("field `{name}`: `compute` makes numbers; declare type = \"decimal\" or \"integer\""), None);
                }
                sources.push(("compute", c.span(), Source::Compute(calc)));
            }
            Err(e) => cx.err(Some(c.span()), format!("field `{name}`: {e}"), None),
        }
    }
    if sources.len() > 1 {
        cx.err(
            Some(sources[1].1.clone()),
            format!(
                "field `{name}`: `{}` and `{}` cannot both say where the value comes from",
                sources[0].0, sources[1].0
            ),
            None,
        );
    }
    let source = sources.pop().map(|s| s.2).unwrap_or(Source::Own);
    if source == Source::Own && paths.iter().all(Option::is_none) {
        cx.err(
            Some(w.name.span()),
            format!("field `{name}` has no path on either side"),
            Some(format!(
                "add `path = {{ {} = \"...\" }}`",
                sides.first().map(String::as_str).unwrap_or("crm")
            )),
        );
    }
    let map = w.map.as_ref().map(|m| ValueMap {
        pairs: m
            .get_ref()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        unmapped: w.unmapped.as_ref().map(|u| u.get_ref().clone()),
    });
    if map.is_none()
        && let Some(u) = &w.unmapped
    {
        cx.err(
            Some(u.span()),
            format!("field `{name}`: `unmapped` needs a `map`"),
            None,
        );
    }
    if let Some(m) = &w.map
        && ty != FieldType::String
    {
        cx.err(
            Some(m.span()),
            format!("field `{name}`: `map` applies to string fields"),
            None,
        );
    }
    if let Some(p) = &w.pattern
        && let Err(e) = regex::Regex::new(p.get_ref())
    {
        cx.err(
            Some(p.span()),
            format!("field `{name}`: `pattern` is not a valid regex: {e}"),
            None,
        );
    }
    let direction = match &w.direction {
        None => None,
        Some(d) if sides.len() == 2 => parse_direction(cx, d, sides),
        Some(_) => None,
    };
    if cx.errors.len() > before {
        return None;
    }
    Some(Field {
        name,
        ty,
        paths,
        unit,
        join: w.join.as_ref().map(|j| j.get_ref().clone()),
        ignore: w.ignore.unwrap_or(false),
        create_only: w.create_only.unwrap_or(false),
        keep_target_if_set: w.keep_target_if_set.unwrap_or(false),
        tolerance: w.tolerance.as_ref().map(|t| *t.get_ref()),
        compare,
        map,
        source,
        default: w.default.as_ref().map(|d| d.get_ref().clone()),
        required: w.required.unwrap_or(false),
        pattern: w.pattern.as_ref().map(|p| p.get_ref().clone()),
        direction,
        reference: w.reference.as_ref().map(|r| r.get_ref().clone()),
    })
}
