//! The wire model: what a spec file may say, exactly as written.
//!
//! Every table denies unknown keys so a typo is an error, not a silently
//! ignored rule. Values keep their spans so validation can point at them.
//! Validation into the typed [`crate::spec::Spec`] happens in `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The keys allowed at the top of a spec, for "did you mean" hints.
pub const TOP_KEYS: &[&str] = &[
    "name",
    "entity",
    "direction",
    "winner",
    "after",
    "side",
    "field",
    "key",
    "report",
];

/// `[side.NAME]`: where one system's records come from and how to read them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideWire {
    /// A local file, relative to the spec file.
    pub file: Option<Spanned<String>>,
    /// An HTTP side: a built-in profile (`moysklad`, `retailcrm`, `teamleader`,
    /// `reviso`, `eaccounting`) or a profile file relative to the spec.
    pub profile: Option<Spanned<String>>,
    /// The profile's entity to read (`counterparty`, `customers`).
    pub entity: Option<Spanned<String>>,
    /// Overrides the profile's base URL (a sandbox, the emulator).
    pub base_url: Option<Spanned<String>>,
    /// Overrides the profile's OAuth2 token endpoint (a sandbox, the emulator).
    pub token_url: Option<Spanned<String>>,
    /// Use the profile's batch endpoints (default true). Off, each record is
    /// its own request: slower, but one bad record cannot fail a whole batch.
    pub batch: Option<bool>,
    /// Overrides the profile's client-side rate limit (a higher API tier, a
    /// local emulator): `{ requests = 100, per_seconds = 1, parallel = 8 }`.
    pub rate_limit: Option<crate::connect::http::profile::RateLimit>,
    /// Secret name -> environment variable holding it (`token = "MS_TOKEN"`).
    pub auth: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// Pull only what changed since the last pull (default true when the
    /// entity supports it).
    pub incremental: Option<bool>,
    /// Seconds each incremental window reaches back before the cursor (default 300).
    pub overlap_seconds: Option<u64>,
    /// `csv`, `json`, `ndjson` or `parquet`; inferred from the extension when absent.
    pub format: Option<Spanned<String>>,
    /// For JSON documents: the path to the array of records (`data`, `rows`).
    pub records: Option<Spanned<String>>,
    /// CSV field delimiter (one character; `\t` for tabs).
    pub delimiter: Option<Spanned<String>>,
    /// CSV quote character.
    pub quote: Option<Spanned<String>>,
    /// Whether the CSV file has a header row (default true).
    pub header: Option<bool>,
    /// Decimal numbers are written with a comma (`12,50`).
    pub decimal_comma: Option<bool>,
    /// Extra formats tried for dates (`%d.%m.%Y`); ISO is always accepted.
    pub date_formats: Option<Vec<Spanned<String>>>,
    /// Path to the record's native id.
    pub id: Spanned<String>,
    /// Default phone region for this side (ISO 3166 code, e.g. `IT`).
    pub region: Option<Spanned<String>>,
    /// Time zone of times written without an offset (e.g. `Europe/Moscow`).
    pub timezone: Option<Spanned<String>>,
    /// Rows to leave out, e.g. `status != "complete"`; each row failing one is `skipped`.
    pub filter: Option<Vec<Spanned<String>>>,
}

/// `[[field]]`: one canonical field, each side's path to it, and its rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldWire {
    pub name: Spanned<String>,
    /// `string` (default), `integer`, `decimal`, `bool`, `date`, `datetime`.
    #[serde(rename = "type")]
    pub ty: Option<Spanned<String>>,
    /// Digits after the point for `decimal` fields (default 2).
    pub decimals: Option<Spanned<u32>>,
    /// Path to the field on each side, by side name.
    pub path: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// Join an array found at the path into one text with this separator.
    pub join: Option<Spanned<String>>,
    /// Native value = canonical value x factor, per side (kopecks: 100).
    pub unit: Option<Spanned<BTreeMap<String, Spanned<f64>>>>,
    /// Never compared nor written.
    pub ignore: Option<bool>,
    /// Written when the record is created, never overwritten afterwards.
    pub create_only: Option<bool>,
    /// Written only while the receiving side's value is empty.
    pub keep_target_if_set: Option<bool>,
    /// Numbers within this distance compare equal.
    pub tolerance: Option<Spanned<f64>>,
    /// `exact` (default), `case_insensitive`, `trim`, `loose` (both).
    pub compare: Option<Spanned<String>>,
    /// Source value -> receiving value.
    pub map: Option<Spanned<BTreeMap<String, String>>>,
    /// Value used for a source value that the map lacks (else the row is invalid).
    pub unmapped: Option<Spanned<String>>,
    /// Text built from other fields of the sending side: `"Order from call {phone}"`.
    pub template: Option<Spanned<String>>,
    /// Arithmetic over other fields of the sending side: `available - reserved`.
    pub compute: Option<Spanned<String>>,
    /// Used when the sending side has no value.
    pub default: Option<Spanned<Literal>>,
    /// Always this value, whatever the sending side says.
    pub constant: Option<Spanned<Literal>>,
    /// The receiving side needs a value: a missing one makes the row invalid.
    pub required: Option<bool>,
    /// A regex the value written must match (`^[0-9]+$` for numeric SKUs);
    /// a value that does not makes the row invalid.
    pub pattern: Option<Spanned<String>>,
    /// The field holds the id of a record of another spec (`ref = "customers"`):
    /// it is written as the receiving side's id of that record, found through
    /// that spec's links.
    #[serde(rename = "ref")]
    pub reference: Option<Spanned<String>>,
    /// This field's own direction, overriding the spec's.
    pub direction: Option<Spanned<String>>,
}

/// `[[key]]`: one match rule; keys are tried in the order written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyWire {
    /// Defaults to the field names joined with `+`.
    pub name: Option<Spanned<String>>,
    /// One field, or several for a composite key.
    pub fields: Spanned<Vec<Spanned<String>>>,
    /// `exact` (default), `email`, `phone`, `sku`, `text`.
    pub normalize: Option<Spanned<String>>,
    /// For `sku`: keep digits only.
    pub digits_only: Option<bool>,
}

/// `[report]`: how the review report is rendered.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportWire {
    /// Rows shown per class before the report points to the Parquet plan.
    pub max_rows: Option<usize>,
}

/// A scalar written in a spec (`default`, `constant`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => write!(f, "{x}"),
            Literal::Text(s) => write!(f, "{s:?}"),
        }
    }
}
