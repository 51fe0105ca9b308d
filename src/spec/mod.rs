//! Specs: one TOML file per reconciled entity.
//!
//! A spec is read in two steps, as in the layout of the crate: the file is
//! parsed into the wire model (`wire.rs`, unknown keys denied), each table on
//! its own so that every error in the file is found in one pass; then the
//! wire model is validated into [`Spec`], where names are resolved and rules
//! checked against each other. Both steps report [`Diagnostic`]s with file,
//! line and column.

pub mod diag;
pub mod expr;
pub mod path;
mod validate;
pub mod wire;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, SpecErrors};
pub use expr::{Calc, FilterRule, Piece};
pub use path::FieldPath;
pub use wire::Literal;

/// Which of the two sides: `A` is the first `[side.*]` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SideIx {
    A,
    B,
}

impl SideIx {
    pub fn other(self) -> Self {
        match self {
            SideIx::A => SideIx::B,
            SideIx::B => SideIx::A,
        }
    }
    pub fn index(self) -> usize {
        match self {
            SideIx::A => 0,
            SideIx::B => 1,
        }
    }
    pub fn both() -> [SideIx; 2] {
        [SideIx::A, SideIx::B]
    }
}

/// Which way changes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Changes flow from `from` to the other side.
    OneWay { from: SideIx },
    /// Both ways; a field that differs with no baseline is a conflict unless
    /// `winner` names the side whose value wins.
    Both { winner: Option<SideIx> },
    /// Compare only; nothing is ever written.
    Audit,
}

impl Direction {
    /// The side that receives writes from `from`, if this direction lets it.
    pub fn receives_from(self, from: SideIx) -> bool {
        match self {
            Direction::OneWay { from: f } => f == from,
            Direction::Both { .. } => true,
            Direction::Audit => false,
        }
    }
}

/// The canonical type of a field; every side's value is cast to it on pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Decimal { decimals: u32 },
    Bool,
    Date,
    Datetime,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Decimal { .. } => "decimal",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
        }
    }
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Decimal { .. })
    }
}

/// How two values of a field are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compare {
    pub case_insensitive: bool,
    pub trim: bool,
    /// Compare the normalized values (`email`, `phone`, `sku`, `text`).
    pub normalize: Option<Normalizer>,
}

/// How the sending side's value becomes the value written.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The field itself.
    Own,
    /// Always this value.
    Constant(Literal),
    /// Built from other fields' text.
    Template(Vec<Piece>),
    /// Arithmetic over other fields.
    Compute(Calc),
}

/// A value map (`{"Unas-Status1" = "MiniCRM-Status1"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueMap {
    pub pairs: Vec<(String, String)>,
    /// Used for values missing from the map; without it they are invalid.
    pub unmapped: Option<String>,
}

/// One canonical field with its paths and rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    /// Path on side A and B; `None` where the side lacks the field.
    pub paths: [Option<FieldPath>; 2],
    /// Native = canonical x factor, per side.
    pub unit: [Option<f64>; 2],
    pub join: Option<String>,
    pub ignore: bool,
    pub create_only: bool,
    pub keep_target_if_set: bool,
    pub tolerance: Option<f64>,
    pub compare: Compare,
    pub map: Option<ValueMap>,
    pub source: Source,
    pub default: Option<Literal>,
    pub required: bool,
    /// A regex the written value must match.
    pub pattern: Option<String>,
    /// Overrides the spec's direction for this field.
    pub direction: Option<Direction>,
    /// The spec whose records this field's value identifies.
    pub reference: Option<String>,
}

impl Field {
    pub fn path(&self, side: SideIx) -> Option<&FieldPath> {
        self.paths[side.index()].as_ref()
    }
}

/// Key normalizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalizer {
    Exact,
    Email,
    Phone,
    Sku { digits_only: bool },
    Text,
}

impl Normalizer {
    pub fn name(self) -> &'static str {
        match self {
            Normalizer::Exact => "exact",
            Normalizer::Email => "email",
            Normalizer::Phone => "phone",
            Normalizer::Sku { .. } => "sku",
            Normalizer::Text => "text",
        }
    }
}

/// One match rule of the cascade.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchKey {
    pub name: String,
    pub fields: Vec<String>,
    pub normalize: Normalizer,
}

/// File formats a file side can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Json,
    Ndjson,
    Parquet,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "CSV",
            FileFormat::Json => "JSON",
            FileFormat::Ndjson => "NDJSON",
            FileFormat::Parquet => "Parquet",
        }
    }
}

/// Reading options of a file side.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSource {
    pub path: PathBuf,
    pub format: FileFormat,
    pub records: Option<FieldPath>,
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
}

/// Where a side's records come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    File(FileSource),
    Http(Box<crate::connect::http::HttpSource>),
}

impl Connection {
    /// Where the records come from, safe to print and to store.
    pub fn describe(&self) -> String {
        match self {
            Connection::File(f) => f.path.display().to_string(),
            Connection::Http(h) => h.describe(),
        }
    }
}

/// One of the two systems.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub name: String,
    pub connection: Connection,
    pub id: FieldPath,
    pub region: Option<String>,
    pub timezone: chrono_tz::Tz,
    pub decimal_comma: bool,
    pub date_formats: Vec<String>,
    /// (rule as written, parsed rule)
    pub filters: Vec<(String, FilterRule)>,
}

/// A validated spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub entity: String,
    pub file: PathBuf,
    /// SHA-256 of the file's bytes; snapshots and plans carry it.
    pub hash: String,
    pub sides: [Side; 2],
    pub direction: Direction,
    pub after: Vec<String>,
    pub fields: Vec<Field>,
    pub keys: Vec<MatchKey>,
    pub report_max_rows: usize,
}

impl Spec {
    /// Read and validate a spec file; every problem is reported at once.
    pub fn load(path: &Path) -> Result<Spec, SpecErrors> {
        let bytes = std::fs::read(path).map_err(|e| {
            SpecErrors(vec![Diagnostic::whole_file(
                path,
                format!("cannot read spec file: {e}"),
            )])
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            SpecErrors(vec![Diagnostic::whole_file(
                path,
                format!("spec file is not UTF-8: {e}"),
            )])
        })?;
        Self::parse(path, &text)
    }

    /// Validate spec text as if read from `path` (relative file paths resolve
    /// against its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Spec, SpecErrors> {
        validate::validate(path, text)
    }

    pub fn side(&self, ix: SideIx) -> &Side {
        &self.sides[ix.index()]
    }

    pub fn side_by_name(&self, name: &str) -> Option<SideIx> {
        SideIx::both()
            .into_iter()
            .find(|&ix| self.side(ix).name == name)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The direction of one field: its own, or the spec's.
    pub fn field_direction(&self, field: &Field) -> Direction {
        field.direction.unwrap_or(self.direction)
    }

    /// Render a direction with this spec's side names.
    pub fn describe_direction(&self, d: Direction) -> String {
        match d {
            Direction::OneWay { from } => format!(
                "{} -> {}",
                self.side(from).name,
                self.side(from.other()).name
            ),
            Direction::Both { winner: None } => "both ways".into(),
            Direction::Both { winner: Some(w) } => {
                format!("both ways ({} wins a conflict)", self.side(w).name)
            }
            Direction::Audit => "audit (compare only)".into(),
        }
    }

    /// One paragraph saying what this spec will do.
    pub fn describe(&self) -> String {
        let [a, b] = &self.sides;
        let action = match self.direction {
            Direction::OneWay { from } => format!(
                "writes creates and updates from {} into {}",
                self.side(from).name,
                self.side(from.other()).name
            ),
            Direction::Both { winner } => format!(
                "writes changes both ways between {} and {}{}",
                a.name,
                b.name,
                match winner {
                    Some(w) => format!(", {} winning where both differ", self.side(w).name),
                    None => ", flagging fields that differ on both as conflicts".into(),
                }
            ),
            Direction::Audit => format!(
                "compares {} with {} and writes nothing (audit)",
                a.name, b.name
            ),
        };
        let keys = self
            .keys
            .iter()
            .map(|k| format!("{} ({})", k.name, k.normalize.name()))
            .collect::<Vec<_>>()
            .join(", then ");
        let rules: Vec<String> = self
            .fields
            .iter()
            .filter_map(|f| {
                let mut r = Vec::new();
                if f.ignore {
                    r.push("ignored".to_string());
                }
                if f.create_only {
                    r.push("create-only".into());
                }
                if f.keep_target_if_set {
                    r.push("kept if set".into());
                }
                if f.required {
                    r.push("required".into());
                }
                if let Some(t) = f.tolerance {
                    r.push(format!("tolerance {t}"));
                }
                if f.map.is_some() {
                    r.push("mapped".into());
                }
                match &f.source {
                    Source::Own => {}
                    Source::Constant(c) => r.push(format!("constant {c}")),
                    Source::Template(_) => r.push("template".into()),
                    Source::Compute(_) => r.push("computed".into()),
                }
                (!r.is_empty()).then(|| format!("{} {}", f.name, r.join("/")))
            })
            .collect();
        let filters: Vec<String> = self
            .sides
            .iter()
            .flat_map(|s| {
                s.filters
                    .iter()
                    .map(move |(text, _)| format!("{}: {text}", s.name))
            })
            .collect();
        let mut out = format!(
            "Spec `{}` reconciles {} between {} ({}, {}) and {} ({}, {}). It matches records by {}, compares {} field{}, and {}.",
            self.name,
            self.entity,
            a.name,
            connection_kind(&a.connection),
            a.connection.describe(),
            b.name,
            connection_kind(&b.connection),
            b.connection.describe(),
            keys,
            self.fields.len(),
            if self.fields.len() == 1 { "" } else { "s" },
            action
        );
        if !rules.is_empty() {
            out.push_str(&format!(" Rules: {}.", rules.join("; ")));
        }
        if !filters.is_empty() {
            out.push_str(&format!(" Filters: {}.", filters.join("; ")));
        }
        out
    }
}

/// Where a side's rotated OAuth2 refresh token is kept under `home`: one
/// file per system and refresh-token variable, so every spec that uses the
/// same credentials shares the latest token (they are single use).
pub fn token_store(side: &Side, home: &Path) -> Option<PathBuf> {
    let Connection::Http(h) = &side.connection else {
        return None;
    };
    if !matches!(
        h.profile.auth,
        crate::connect::http::profile::AuthSpec::Oauth2Refresh { .. }
    ) {
        return None;
    }
    let var = h
        .auth
        .get("refresh_token")
        .map(String::as_str)
        .unwrap_or("token");
    Some(
        home.join("tokens")
            .join(format!("{}.{var}.json", h.profile.name)),
    )
}

fn connection_kind(c: &Connection) -> String {
    match c {
        Connection::File(f) => format!("{} file", f.format.name()),
        Connection::Http(h) => format!("{} API, {}", h.profile.name, h.entity),
    }
}
