//! Reports: the plan rendered for people (Markdown) and machines (JSON
//! summary, the Parquet plan itself). Their schemas are in `docs/plan.md`.

mod summary;

pub use summary::{Summary, SummaryInput, read_plan, write_plan};

/// Make a value safe for a CSV that a spreadsheet will open: a leading `=`,
/// `+`, `-`, `@`, tab or carriage return would start a formula, so such
/// values get a leading apostrophe.
pub fn csv_safe(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_prefixes_are_neutralized() {
        assert_eq!(super::csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(super::csv_safe("+39 02"), "'+39 02");
        assert_eq!(super::csv_safe("-5"), "'-5");
        assert_eq!(super::csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_safe("Rossi"), "Rossi");
    }
}
