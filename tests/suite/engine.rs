//! Golden tests of the engine on small frames: normalizers, the key
//! cascade, every field rule, filters, directions and classes.

use std::path::Path;

use polars::prelude::*;
use recon::engine::{self, Inputs};
use recon::spec::Spec;

/// One plan row, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    class: String,
    key: Option<String>,
    left: Option<String>,
    right: Option<String>,
    receiver: Option<String>,
    changes: Vec<(String, Option<String>, Option<String>)>,
    reason: Option<String>,
    payload: Option<serde_json::Value>,
}

fn spec(body: &str) -> Spec {
    let text = format!("name = \"t\"\nentity = \"customers\"\n{body}\n",);
    Spec::parse(Path::new("t.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

const SIDES: &str = r#"
[side.crm]
file = "crm.csv"
id = "id"
region = "IT"

[side.erp]
file = "erp.csv"
id = "id"
region = "IT"
"#;

/// A snapshot frame of strings, cast to the spec's field types as a pull would.
fn frame(spec: &Spec, cols: &[(&str, Vec<Option<&str>>)]) -> LazyFrame {
    let columns: Vec<Column> = cols
        .iter()
        .map(|(n, v)| {
            let s = Series::new((*n).into(), v.clone());
            let s = match spec.field(n) {
                Some(f) => s.cast(&engine::dtype(f.ty)).unwrap(),
                None => s,
            };
            s.into_column()
        })
        .collect();
    DataFrame::new_infer_height(columns).unwrap().lazy()
}

fn run(spec: &Spec, a: LazyFrame, b: LazyFrame, links: &[(&str, &str)]) -> Vec<Row> {
    let df = engine::plan(
        spec,
        Inputs {
            a,
            b,
            links: links
                .iter()
                .map(|(l, r)| (l.to_string(), r.to_string()))
                .collect(),
            baseline: None,
            refs: Default::default(),
        },
    )
    .unwrap();
    rows(&df)
}

fn rows(df: &DataFrame) -> Vec<Row> {
    let s = |n: &str| -> Vec<Option<String>> {
        df.column(n)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    };
    let (class, key, left, right, receiver, reason, payload) = (
        s("class"),
        s("key"),
        s("left_id"),
        s("right_id"),
        s("receiver"),
        s("reason"),
        s("payload"),
    );
    let changes = df.column("changes").unwrap().list().unwrap().clone();
    (0..df.height())
        .map(|i| {
            let ch = match changes.get_as_series(i) {
                Some(series) if !series.is_empty() => {
                    let st = series.struct_().unwrap();
                    let get = |n: &str| -> Vec<Option<String>> {
                        st.field_by_name(n)
                            .unwrap()
                            .str()
                            .unwrap()
                            .iter()
                            .map(|v| v.map(str::to_string))
                            .collect()
                    };
                    let (f, b, a) = (get("field"), get("before"), get("after"));
                    f.into_iter()
                        .zip(b)
                        .zip(a)
                        .map(|((f, b), a)| (f.unwrap(), b, a))
                        .collect()
                }
                _ => vec![],
            };
            Row {
                class: class[i].clone().unwrap(),
                key: key[i].clone(),
                left: left[i].clone(),
                right: right[i].clone(),
                receiver: receiver[i].clone(),
                changes: ch,
                reason: reason[i].clone(),
                payload: payload[i]
                    .as_ref()
                    .map(|p| serde_json::from_str(p).unwrap()),
            }
        })
        .collect()
}

fn class_of<'a>(rows: &'a [Row], left: Option<&str>, right: Option<&str>) -> &'a Row {
    rows.iter()
        .find(|r| r.left.as_deref() == left && r.right.as_deref() == right)
        .unwrap_or_else(|| panic!("no row for {left:?}/{right:?} in {rows:#?}"))
}

fn counts(rows: &[Row]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in rows {
        *m.entry(r.class.clone()).or_insert(0) += 1;
    }
    m
}

fn email_spec(extra_fields: &str, keys: &str) -> Spec {
    spec(&format!(
        "direction = \"crm -> erp\"\n{SIDES}\n[[field]]\nname = \"email\"\npath = {{ crm = \"e\", erp = \"e\" }}\ncompare = \"email\"\n{extra_fields}\n{keys}"
    ))
}

const EMAIL_KEY: &str = "[[key]]\nfields = [\"email\"]\nnormalize = \"email\"\n";

#[test]
fn null_and_empty_keys_never_match() {
    let s = email_spec("", EMAIL_KEY);
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2"), Some("3")]),
            ("email", vec![None, Some(""), Some("  ")]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("email", vec![None, Some("")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    let c = counts(&rows);
    assert_eq!(c.get("create"), Some(&3), "{rows:#?}");
    assert_eq!(c.get("orphan"), Some(&2), "{rows:#?}");
    assert!(
        !c.contains_key("duplicate"),
        "empty keys are not duplicates: {rows:#?}"
    );
}

#[test]
fn email_keys_ignore_case_and_spaces() {
    let s = email_spec("", EMAIL_KEY);
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1")]),
            ("email", vec![Some("  Ann@Example.COM ")]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x")]),
            ("email", vec![Some("ann@example.com")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    let r = class_of(&rows, Some("1"), Some("x"));
    assert_eq!(
        r.class, "unchanged",
        "compare = email treats them as equal: {r:#?}"
    );
    assert_eq!(r.key.as_deref(), Some("email"));
}

#[test]
fn text_keys_fold_unicode_case() {
    let s = spec(&format!(
        "direction = \"crm -> erp\"\n{SIDES}\n[[field]]\nname = \"name\"\npath = {{ crm = \"n\", erp = \"n\" }}\ncompare = \"text\"\n[[key]]\nfields = [\"name\"]\nnormalize = \"text\"\n"
    ));
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("name", vec![Some("ÉCOLE  Ｍüller"), Some("Straße")]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("name", vec![Some("école müller"), Some("STRASSE")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    assert_eq!(
        class_of(&rows, Some("1"), Some("x")).class,
        "unchanged",
        "{rows:#?}"
    );
    // Lowercasing keeps ß; full case folding to "ss" is not done, so these differ.
    assert_eq!(class_of(&rows, Some("2"), None).class, "create");
}

#[test]
fn phones_written_five_ways_match_one_record_each() {
    let s = spec(&format!(
        "direction = \"crm -> erp\"\n{SIDES}\n[[field]]\nname = \"phone\"\npath = {{ crm = \"p\", erp = \"p\" }}\ncompare = \"phone\"\n[[key]]\nfields = [\"phone\"]\nnormalize = \"phone\"\n"
    ));
    let ways = [
        "+39 02 1234 5678",
        "0039 02-1234-5678",
        "(02) 12345678",
        "02 1234 5678",
        "+390212345678",
    ];
    for (n, w) in ways.iter().enumerate() {
        let a = frame(&s, &[("_id", vec![Some("1")]), ("phone", vec![Some(*w)])]);
        let other = ways[(n + 1) % ways.len()];
        let b = frame(
            &s,
            &[("_id", vec![Some("x")]), ("phone", vec![Some(other)])],
        );
        let rows = run(&s, a, b, &[]);
        let r = class_of(&rows, Some("1"), Some("x"));
        assert_eq!(r.class, "unchanged", "{w} vs {other}: {rows:#?}");
        assert_eq!(r.key.as_deref(), Some("phone"));
    }
}

#[test]
fn a_key_value_on_several_records_is_duplicate_on_both_sides() {
    let s = email_spec("", EMAIL_KEY);
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2"), Some("3"), Some("4")]),
            (
                "email",
                vec![Some("dup@x"), Some("DUP@x"), Some("both@x"), Some("solo@x")],
            ),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y"), Some("z"), Some("w")]),
            (
                "email",
                vec![
                    Some("both@x"),
                    Some("both@x"),
                    Some("dup@x"),
                    Some("solo@x"),
                ],
            ),
        ],
    );
    let rows = run(&s, a, b, &[]);
    let dups: Vec<&Row> = rows.iter().filter(|r| r.class == "duplicate").collect();
    assert_eq!(dups.len(), 6, "{rows:#?}");
    let reason = &class_of(&rows, Some("1"), None).reason;
    assert_eq!(
        reason.as_deref(),
        Some("email `dup@x` occurs 2x in crm (1, 2) and 1x in erp (z)"),
        "all ids are listed"
    );
    assert_eq!(class_of(&rows, None, Some("y")).class, "duplicate");
    assert_eq!(class_of(&rows, Some("3"), None).class, "duplicate");
    assert_eq!(class_of(&rows, Some("4"), Some("w")).class, "unchanged");
}

#[test]
fn a_record_matched_by_the_first_key_leaves_the_pool() {
    let s = spec(&format!(
        "direction = \"crm -> erp\"\n{SIDES}
[[field]]
name = \"ext\"
path = {{ crm = \"id\", erp = \"ref\" }}
[[field]]
name = \"email\"
path = {{ crm = \"e\", erp = \"e\" }}
compare = \"email\"
[[key]]
fields = [\"ext\"]
[[key]]
fields = [\"email\"]
normalize = \"email\"
"
    ));
    // 1 matches x by ext and y by email; the ext match wins and y stays free.
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("ext", vec![Some("1"), Some("2")]),
            ("email", vec![Some("a@x"), Some("b@x")]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("ext", vec![Some("1"), None]),
            ("email", vec![Some("other@x"), Some("a@x")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    let r = class_of(&rows, Some("1"), Some("x"));
    assert_eq!(r.key.as_deref(), Some("ext"));
    assert_eq!(r.class, "update");
    assert_eq!(
        r.changes,
        vec![("email".into(), Some("other@x".into()), Some("a@x".into()))]
    );
    assert_eq!(
        class_of(&rows, None, Some("y")).class,
        "orphan",
        "{rows:#?}"
    );
    assert_eq!(class_of(&rows, Some("2"), None).class, "create");
}

#[test]
fn links_match_first_even_when_keys_changed() {
    let s = email_spec("", EMAIL_KEY);
    let a = frame(
        &s,
        &[("_id", vec![Some("1")]), ("email", vec![Some("new@x")])],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("email", vec![Some("old@x"), Some("new@x")]),
        ],
    );
    let rows = run(&s, a, b, &[("1", "x")]);
    let r = class_of(&rows, Some("1"), Some("x"));
    assert_eq!(r.key.as_deref(), Some("link"));
    assert_eq!(r.class, "update");
    assert_eq!(class_of(&rows, None, Some("y")).class, "orphan");
}

#[test]
fn create_only_and_keep_target_if_set_never_overwrite() {
    let s = email_spec(
        "[[field]]\nname = \"desc\"\npath = { crm = \"d\", erp = \"d\" }\ncreate_only = true\n[[field]]\nname = \"note\"\npath = { crm = \"n\", erp = \"n\" }\nkeep_target_if_set = true\n",
        EMAIL_KEY,
    );
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2"), Some("3")]),
            ("email", vec![Some("a@x"), Some("b@x"), Some("c@x")]),
            ("desc", vec![Some("short"), Some("short"), Some("new text")]),
            ("note", vec![Some("crm note"), Some("crm note"), None]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("email", vec![Some("a@x"), Some("b@x")]),
            ("desc", vec![Some("Enriched by hand"), Some("Enriched")]),
            ("note", vec![Some("erp note"), None]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    assert_eq!(
        class_of(&rows, Some("1"), Some("x")).class,
        "unchanged",
        "{rows:#?}"
    );
    let y = class_of(&rows, Some("2"), Some("y"));
    assert_eq!(
        y.changes,
        vec![("note".into(), None, Some("crm note".into()))]
    );
    // A create writes the create-only field.
    let c = class_of(&rows, Some("3"), None);
    assert_eq!(c.class, "create");
    assert_eq!(c.payload.as_ref().unwrap()["desc"], "new text");
}

#[test]
fn tolerance_edges_and_type_coercion() {
    let s = email_spec(
        "[[field]]\nname = \"amount\"\ntype = \"decimal\"\npath = { crm = \"a\", erp = \"a\" }\ntolerance = 0.01\n[[field]]\nname = \"since\"\ntype = \"date\"\npath = { crm = \"s\", erp = \"s\" }\n",
        EMAIL_KEY,
    );
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2"), Some("3")]),
            ("email", vec![Some("a@x"), Some("b@x"), Some("c@x")]),
            ("amount", vec![Some("10.00"), Some("10.00"), Some("10")]),
            (
                "since",
                vec![Some("2024-01-31"), Some("2024-01-31"), Some("2024-01-31")],
            ),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y"), Some("z")]),
            ("email", vec![Some("a@x"), Some("b@x"), Some("c@x")]),
            ("amount", vec![Some("10.01"), Some("10.02"), None]),
            (
                "since",
                vec![Some("2024-01-31"), Some("2024-01-31"), Some("2024-02-01")],
            ),
        ],
    );
    let rows = run(&s, a, b, &[]);
    assert_eq!(
        class_of(&rows, Some("1"), Some("x")).class,
        "unchanged",
        "0.01 apart is within tolerance 0.01"
    );
    let y = class_of(&rows, Some("2"), Some("y"));
    assert_eq!(
        y.changes,
        vec![("amount".into(), Some("10.02".into()), Some("10.00".into()))]
    );
    assert_eq!(y.payload.as_ref().unwrap()["amount"], 10.0);
    let z = class_of(&rows, Some("3"), Some("z"));
    assert_eq!(
        z.changes,
        vec![
            ("amount".into(), None, Some("10.00".into())),
            (
                "since".into(),
                Some("2024-02-01".into()),
                Some("2024-01-31".into())
            ),
        ]
    );
}

#[test]
fn compare_modes_case_and_whitespace() {
    let s = email_spec(
        "[[field]]\nname = \"city\"\npath = { crm = \"c\", erp = \"c\" }\ncompare = \"loose\"\n[[field]]\nname = \"code\"\npath = { crm = \"k\", erp = \"k\" }\n",
        EMAIL_KEY,
    );
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1")]),
            ("email", vec![Some("a@x")]),
            ("city", vec![Some(" Milano ")]),
            ("code", vec![Some("AB")]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x")]),
            ("email", vec![Some("a@x")]),
            ("city", vec![Some("MILANO")]),
            ("code", vec![Some("ab")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    let r = class_of(&rows, Some("1"), Some("x"));
    assert_eq!(
        r.changes,
        vec![("code".into(), Some("ab".into()), Some("AB".into()))],
        "exact compare sees case"
    );
}

#[test]
fn value_maps_unmapped_values_and_fallbacks() {
    let s = email_spec(
        "[[field]]\nname = \"status\"\npath = { crm = \"s\", erp = \"s\" }\nmap = { \"Unas-Status1\" = \"MiniCRM-Status1\", paid = \"Paid\" }\n[[field]]\nname = \"kind\"\npath = { crm = \"k\", erp = \"k\" }\nmap = { a = \"A\" }\nunmapped = \"Other\"\n",
        EMAIL_KEY,
    );
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2"), Some("3")]),
            ("email", vec![Some("a@x"), Some("b@x"), Some("c@x")]),
            (
                "status",
                vec![Some("Unas-Status1"), Some("lost"), Some("paid")],
            ),
            ("kind", vec![Some("a"), Some("zzz"), None]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("email", vec![Some("a@x"), Some("b@x")]),
            ("status", vec![Some("MiniCRM-Status1"), Some("Paid")]),
            ("kind", vec![Some("A"), Some("Other")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    assert_eq!(
        class_of(&rows, Some("1"), Some("x")).class,
        "unchanged",
        "{rows:#?}"
    );
    let y = class_of(&rows, Some("2"), Some("y"));
    assert_eq!(y.class, "invalid");
    assert_eq!(
        y.reason.as_deref(),
        Some("status value `lost` has no entry in the value map")
    );
    let c = class_of(&rows, Some("3"), None);
    assert_eq!(c.class, "create");
    assert_eq!(c.payload.as_ref().unwrap()["status"], "Paid");
}

#[test]
fn templates_constants_defaults_and_computed_fields() {
    let s = spec(&format!(
        "direction = \"crm -> erp\"\n{SIDES}
[[field]]
name = \"phone\"
path = {{ crm = \"p\" }}
[[field]]
name = \"title\"
path = {{ erp = \"t\" }}
template = \"Order from call {{phone}}\"
[[field]]
name = \"employee\"
type = \"integer\"
path = {{ erp = \"emp\" }}
constant = 999999
[[field]]
name = \"country\"
path = {{ crm = \"c\", erp = \"c\" }}
default = \"IT\"
[[field]]
name = \"available\"
type = \"integer\"
path = {{ crm = \"av\" }}
[[field]]
name = \"reserved\"
type = \"integer\"
path = {{ crm = \"rs\" }}
[[field]]
name = \"stock\"
type = \"integer\"
path = {{ erp = \"st\" }}
compute = \"available - reserved\"
[[field]]
name = \"sku\"
path = {{ crm = \"s\", erp = \"s\" }}
compare = \"sku\"
[[key]]
fields = [\"sku\"]
normalize = \"sku\"
"
    ));
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("sku", vec![Some("ab-1"), Some("ab-2")]),
            ("phone", vec![Some("+3902"), Some("+3903")]),
            ("country", vec![None, Some("RO")]),
            ("available", vec![Some("10"), Some("5")]),
            ("reserved", vec![Some("3"), None]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x")]),
            ("sku", vec![Some(" AB-1")]),
            ("title", vec![Some("Order from call +3902")]),
            ("employee", vec![Some("1")]),
            ("country", vec![Some("IT")]),
            ("stock", vec![Some("7")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    let x = class_of(&rows, Some("1"), Some("x"));
    assert_eq!(
        x.changes,
        vec![("employee".into(), Some("1".into()), Some("999999".into()))],
        "{rows:#?}"
    );
    let c = class_of(&rows, Some("2"), None);
    let p = c.payload.as_ref().unwrap();
    assert_eq!(p["title"], "Order from call +3903");
    assert_eq!(p["employee"], 999999);
    assert_eq!(p["country"], "RO");
    // 5 - null is unknown, never a made-up number.
    assert_eq!(p["stock"], serde_json::Value::Null);
}

#[test]
fn required_fields_make_rows_invalid_with_the_reason() {
    let s = email_spec(
        "[[field]]\nname = \"vat\"\npath = { crm = \"v\", erp = \"v\" }\nrequired = true\n",
        EMAIL_KEY,
    );
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("email", vec![Some("a@x"), Some("b@x")]),
            ("vat", vec![None, None]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x")]),
            ("email", vec![Some("a@x")]),
            ("vat", vec![Some("IT1")]),
        ],
    );
    let rows = run(&s, a, b, &[]);
    let x = class_of(&rows, Some("1"), Some("x"));
    assert_eq!(x.class, "invalid");
    assert_eq!(
        x.reason.as_deref(),
        Some("required field `vat` would be emptied in erp")
    );
    let c = class_of(&rows, Some("2"), None);
    assert_eq!(c.class, "invalid");
    assert_eq!(c.reason.as_deref(), Some("required field `vat` is empty"));
    assert_eq!(c.payload, None, "an invalid row writes nothing");
}

#[test]
fn filters_skip_rows_with_the_rule() {
    let s = spec(&format!(
        "direction = \"crm -> erp\"
[side.crm]
file = \"crm.csv\"
id = \"id\"
filter = ['status != \"complete\"', 'created >= 2024-01-01']
[side.erp]
file = \"erp.csv\"
id = \"id\"
[[field]]
name = \"email\"
path = {{ crm = \"e\", erp = \"e\" }}
[[field]]
name = \"status\"
path = {{ crm = \"s\" }}
[[field]]
name = \"created\"
type = \"date\"
path = {{ crm = \"c\" }}
{EMAIL_KEY}"
    ));
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2"), Some("3"), Some("4")]),
            (
                "email",
                vec![Some("a@x"), Some("b@x"), Some("c@x"), Some("d@x")],
            ),
            (
                "status",
                vec![Some("complete"), Some("new"), Some("new"), None],
            ),
            (
                "created",
                vec![
                    Some("2024-05-01"),
                    Some("2023-12-31"),
                    Some("2024-01-01"),
                    Some("2024-02-02"),
                ],
            ),
        ],
    );
    let b = frame(
        &s,
        &[("_id", vec![Some("x")]), ("email", vec![Some("a@x")])],
    );
    let rows = run(&s, a, b, &[]);
    let r1 = class_of(&rows, Some("1"), None);
    assert_eq!(r1.class, "skipped", "{rows:#?}");
    assert_eq!(
        r1.reason.as_deref(),
        Some("filtered out by crm rule `status != \"complete\"`")
    );
    assert_eq!(
        class_of(&rows, Some("2"), None).reason.as_deref(),
        Some("filtered out by crm rule `created >= 2024-01-01`")
    );
    assert_eq!(class_of(&rows, Some("3"), None).class, "create");
    assert_eq!(
        class_of(&rows, Some("4"), None).class,
        "create",
        "a null status is not \"complete\""
    );
    // The filtered sender's partner on the receiving side is not touched.
    assert_eq!(class_of(&rows, None, Some("x")).class, "orphan");
}

fn two_way(direction: &str, extra: &str) -> (Spec, LazyFrame, LazyFrame) {
    let s = spec(&format!(
        "direction = \"{direction}\"\n{extra}\n{SIDES}\n[[field]]\nname = \"email\"\npath = {{ crm = \"e\", erp = \"e\" }}\n[[field]]\nname = \"city\"\npath = {{ crm = \"c\", erp = \"c\" }}\n[[field]]\nname = \"zip\"\npath = {{ crm = \"z\", erp = \"z\" }}\ndirection = \"erp -> crm\"\n{EMAIL_KEY}"
    ));
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("email", vec![Some("a@x"), Some("only-crm@x")]),
            ("city", vec![Some("Roma"), Some("Bari")]),
            ("zip", vec![Some("00100"), None]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("email", vec![Some("a@x"), Some("only-erp@x")]),
            ("city", vec![Some("Rome"), Some("Pisa")]),
            ("zip", vec![Some("00184"), None]),
        ],
    );
    (s, a, b)
}

#[test]
fn directions_one_way_audit_and_per_field_override() {
    let (s, a, b) = two_way("crm -> erp", "");
    let rows = run(&s, a, b, &[]);
    let ups: Vec<&Row> = rows.iter().filter(|r| r.class == "update").collect();
    assert_eq!(ups.len(), 2, "{rows:#?}");
    let to_erp = ups
        .iter()
        .find(|r| r.receiver.as_deref() == Some("erp"))
        .unwrap();
    assert_eq!(
        to_erp.changes,
        vec![("city".into(), Some("Rome".into()), Some("Roma".into()))]
    );
    let to_crm = ups
        .iter()
        .find(|r| r.receiver.as_deref() == Some("crm"))
        .unwrap();
    assert_eq!(
        to_crm.changes,
        vec![("zip".into(), Some("00100".into()), Some("00184".into()))]
    );
    assert_eq!(class_of(&rows, Some("2"), None).class, "create");
    assert_eq!(class_of(&rows, None, Some("y")).class, "orphan");

    let (s, a, b) = two_way("erp -> crm", "");
    let rows = run(&s, a, b, &[]);
    assert_eq!(class_of(&rows, None, Some("y")).class, "create");
    assert_eq!(
        class_of(&rows, None, Some("y")).receiver.as_deref(),
        Some("crm")
    );
    assert_eq!(class_of(&rows, Some("2"), None).class, "orphan");

    let (s, a, b) = two_way("audit", "");
    let rows = run(&s, a, b, &[]);
    assert_eq!(class_of(&rows, None, Some("y")).class, "orphan");
    assert!(rows.iter().any(|r| r.class == "update"));
}

#[test]
fn both_ways_conflict_without_a_winner_and_flow_with_one() {
    let (s, a, b) = two_way("both", "");
    let rows = run(&s, a, b, &[]);
    let c = rows
        .iter()
        .find(|r| r.class == "conflict")
        .expect("a conflict");
    assert_eq!(
        c.changes,
        vec![("city".into(), Some("Roma".into()), Some("Rome".into()))]
    );
    assert_eq!(
        class_of(&rows, Some("2"), None).receiver.as_deref(),
        Some("erp")
    );
    assert_eq!(
        class_of(&rows, None, Some("y")).receiver.as_deref(),
        Some("crm")
    );
    assert!(!rows.iter().any(|r| r.class == "orphan"));

    let (s, a, b) = two_way("both", "winner = \"erp\"");
    let rows = run(&s, a, b, &[]);
    assert!(!rows.iter().any(|r| r.class == "conflict"), "{rows:#?}");
    let u = rows
        .iter()
        .find(|r| r.class == "update" && r.receiver.as_deref() == Some("crm"))
        .unwrap();
    assert!(
        u.changes
            .contains(&("city".into(), Some("Roma".into()), Some("Rome".into())))
    );
}

#[test]
fn identical_sides_are_all_unchanged() {
    let s = email_spec("", EMAIL_KEY);
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("email", vec![Some("a@x"), Some("b@x")]),
        ],
    );
    let rows = run(&s, a.clone(), a, &[]);
    assert!(rows.iter().all(|r| r.class == "unchanged"), "{rows:#?}");
}

/// The plan, with the matched pairs compared `at_once` at a time if given.
fn plan_with(
    spec: &Spec,
    a: LazyFrame,
    b: LazyFrame,
    baseline: &[(&str, &str, &str)],
    refs: &[(&str, Vec<(&str, &str)>)],
    at_once: Option<usize>,
) -> DataFrame {
    let base: Vec<(String, String, String)> = baseline
        .iter()
        .map(|(l, r, j)| (l.to_string(), r.to_string(), j.to_string()))
        .collect();
    let inputs = Inputs {
        a,
        b,
        links: vec![],
        baseline: engine::baseline_frame(spec, &base).unwrap(),
        refs: refs
            .iter()
            .map(|(f, l)| {
                (
                    f.to_string(),
                    l.iter()
                        .map(|(x, y)| (x.to_string(), y.to_string()))
                        .collect(),
                )
            })
            .collect(),
    };
    match at_once {
        Some(n) => engine::plan_sliced(spec, inputs, n),
        None => engine::plan(spec, inputs),
    }
    .unwrap()
}

#[test]
fn with_a_baseline_one_sided_changes_flow_and_two_sided_ones_conflict() {
    let s = spec(&format!(
        "direction = \"both\"\n{SIDES}\n[[field]]\nname = \"email\"\npath = {{ crm = \"e\", erp = \"e\" }}\n[[field]]\nname = \"city\"\npath = {{ crm = \"c\", erp = \"c\" }}\n[[field]]\nname = \"zip\"\npath = {{ crm = \"z\", erp = \"z\" }}\n{EMAIL_KEY}"
    ));
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("email", vec![Some("a@x"), Some("b@x")]),
            ("city", vec![Some("Roma"), Some("Bari")]),
            ("zip", vec![Some("00100"), Some("70100")]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x"), Some("y")]),
            ("email", vec![Some("a@x"), Some("b@x")]),
            ("city", vec![Some("Milano"), Some("Bari")]),
            ("zip", vec![Some("00199"), Some("70121")]),
        ],
    );
    let base = [
        // Pair 1: crm changed city (Milano -> Roma); erp changed zip. Both flow.
        ("1", "x", r#"{"email":"a@x","city":"Milano","zip":"00100"}"#),
        // Pair 2: both changed zip, to different values: a conflict.
        ("2", "y", r#"{"email":"b@x","city":"Bari","zip":"70122"}"#),
    ];
    let whole = plan_with(&s, a.clone(), b.clone(), &base, &[], None);
    // Pairs compared one at a time meet the same baselines.
    let one_by_one = plan_with(&s, a, b, &base, &[], Some(1));
    assert!(whole.equals_missing(&one_by_one), "{whole}\n{one_by_one}");
    let rows = rows(&whole);
    let to_erp = rows
        .iter()
        .find(|r| r.left.as_deref() == Some("1") && r.receiver.as_deref() == Some("erp"))
        .unwrap();
    assert_eq!(to_erp.class, "update");
    assert_eq!(
        to_erp.changes,
        vec![("city".into(), Some("Milano".into()), Some("Roma".into()))]
    );
    let to_crm = rows
        .iter()
        .find(|r| r.left.as_deref() == Some("1") && r.receiver.as_deref() == Some("crm"))
        .unwrap();
    assert_eq!(
        to_crm.changes,
        vec![("zip".into(), Some("00100".into()), Some("00199".into()))]
    );
    let c = class_of(&rows, Some("2"), Some("y"));
    assert_eq!(c.class, "conflict", "{rows:#?}");
    assert_eq!(
        c.changes,
        vec![("zip".into(), Some("70100".into()), Some("70121".into()))]
    );
    assert_eq!(
        c.reason.as_deref(),
        Some("changed on both sides since the last sync")
    );
}

#[test]
fn references_resolve_through_the_parent_links() {
    let s = spec(&format!(
        "direction = \"crm -> erp\"\n{SIDES}\n[[field]]\nname = \"number\"\npath = {{ crm = \"n\", erp = \"n\" }}\n[[field]]\nname = \"customer\"\npath = {{ crm = \"c\", erp = \"c\" }}\nref = \"customers\"\n[[key]]\nfields = [\"number\"]\n"
    ));
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("o1"), Some("o2"), Some("o3")]),
            ("number", vec![Some("1"), Some("2"), Some("3")]),
            ("customer", vec![Some("C1"), Some("C2"), Some("C1")]),
        ],
    );
    let b = frame(
        &s,
        &[
            ("_id", vec![Some("x3")]),
            ("number", vec![Some("3")]),
            ("customer", vec![Some("E1")]),
        ],
    );
    let rows = rows(&plan_with(
        &s,
        a,
        b,
        &[],
        &[("customer", vec![("C1", "E1")])],
        None,
    ));
    let o1 = class_of(&rows, Some("o1"), None);
    assert_eq!(o1.class, "create");
    assert_eq!(
        o1.payload.as_ref().unwrap()["customer"],
        "E1",
        "the erp id of customer C1"
    );
    let o2 = class_of(&rows, Some("o2"), None);
    assert_eq!(o2.class, "invalid");
    assert_eq!(
        o2.reason.as_deref(),
        Some("customer `C2` refers to a customers record not synced yet")
    );
    assert_eq!(class_of(&rows, Some("o3"), Some("x3")).class, "unchanged");
}

#[test]
fn a_value_that_misses_its_pattern_is_invalid() {
    let s = spec(&format!(
        "direction = \"crm -> erp\"\n{SIDES}\n[[field]]\nname = \"sku\"\npath = {{ crm = \"s\", erp = \"s\" }}\npattern = \"^[0-9]+$\"\n[[key]]\nfields = [\"sku\"]\n"
    ));
    let a = frame(
        &s,
        &[
            ("_id", vec![Some("1"), Some("2")]),
            ("sku", vec![Some("12345"), Some("AB-12")]),
        ],
    );
    let b = frame(&s, &[("_id", vec![Some("x")]), ("sku", vec![Some("999")])]);
    let rows = run(&s, a, b, &[]);
    assert_eq!(class_of(&rows, Some("1"), None).class, "create");
    let bad = class_of(&rows, Some("2"), None);
    assert_eq!(bad.class, "invalid");
    assert_eq!(
        bad.reason.as_deref(),
        Some("sku `AB-12` does not match ^[0-9]+$")
    );
}
