//! Properties of the engine on generated data: a side planned against
//! itself is unchanged, comparing pairs in slices changes nothing, and
//! applying a plan's creates and updates converges.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use proptest::prelude::*;
use recon::engine::{self, Inputs};
use recon::spec::Spec;

const SPEC: &str = r#"name = "p"
entity = "customers"
direction = "a -> b"

[side.a]
file = "a.csv"
id = "id"
region = "IT"

[side.b]
file = "b.csv"
id = "id"
region = "IT"

[[field]]
name = "ext"
path = { a = "id", b = "ref" }

[[field]]
name = "email"
path = { a = "email", b = "email" }
compare = "email"

[[field]]
name = "name"
path = { a = "name", b = "name" }
compare = "loose"

[[field]]
name = "amount"
type = "decimal"
path = { a = "amount", b = "amount" }
tolerance = 0.01

[[key]]
fields = ["ext"]

[[key]]
fields = ["email"]
normalize = "email"
"#;

const FIELDS: [&str; 4] = ["ext", "email", "name", "amount"];

type Record = BTreeMap<&'static str, Option<String>>;

/// The records of one side: (native id, values).
type Records = Vec<(String, Record)>;

fn spec() -> Spec {
    Spec::parse(Path::new("p.toml"), SPEC).unwrap()
}

fn frame(spec: &Spec, records: &[(String, Record)]) -> LazyFrame {
    let mut cols = vec![
        Series::new(
            "_id".into(),
            records.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        )
        .into_column(),
    ];
    for f in FIELDS {
        let vals: Vec<Option<String>> = records
            .iter()
            .map(|r| r.1.get(f).cloned().flatten())
            .collect();
        let ty = engine::dtype(spec.field(f).unwrap().ty);
        cols.push(Series::new(f.into(), vals).cast(&ty).unwrap().into_column());
    }
    DataFrame::new_infer_height(cols).unwrap().lazy()
}

fn plan(spec: &Spec, a: &[(String, Record)], b: &[(String, Record)]) -> DataFrame {
    engine::plan(spec, inputs(spec, a, b)).unwrap()
}

fn inputs(spec: &Spec, a: &[(String, Record)], b: &[(String, Record)]) -> Inputs {
    Inputs {
        a: frame(spec, a),
        b: frame(spec, b),
        links: vec![],
        baseline: None,
        refs: Default::default(),
    }
}

fn col_strings(df: &DataFrame, n: &str) -> Vec<Option<String>> {
    df.column(n)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// Apply creates and updates to an in-memory copy of side b.
fn apply(df: &DataFrame, b: &mut Vec<(String, Record)>) {
    let (class, right, payload) = (
        col_strings(df, "class"),
        col_strings(df, "right_id"),
        col_strings(df, "payload"),
    );
    for i in 0..df.height() {
        let Some(p) = &payload[i] else { continue };
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(p).unwrap();
        let mut values = Record::new();
        for (k, v) in obj {
            let f = FIELDS.iter().find(|f| **f == k).unwrap();
            values.insert(
                f,
                match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                },
            );
        }
        match class[i].as_deref() {
            Some("create") => b.push((format!("new{i}"), values)),
            Some("update") => {
                let id = right[i].clone().unwrap();
                let rec = &mut b.iter_mut().find(|r| r.0 == id).unwrap().1;
                rec.extend(values);
            }
            other => panic!("payload on a {other:?} row"),
        }
    }
}

fn record() -> impl Strategy<Value = Record> {
    let email = prop_oneof![
        Just(None),
        (0..12u8, any::<bool>()).prop_map(|(n, up)| {
            let e = format!("user{n}@example.com");
            Some(if up {
                format!(" {} ", e.to_uppercase())
            } else {
                e
            })
        }),
    ];
    let name = prop_oneof![Just(None), (0..5u8).prop_map(|n| Some(format!("Name {n}")))];
    let amount = prop_oneof![
        Just(None),
        (0..2000i64).prop_map(|c| Some(format!("{}.{:02}", c / 100, c % 100)))
    ];
    (email, name, amount).prop_map(|(e, n, a)| {
        let mut r = Record::new();
        r.insert("email", e);
        r.insert("name", n);
        r.insert("amount", a);
        r
    })
}

/// Side a: ids `a0..`, ext = own id. Side b: ids `b0..`, ext pointing at some a's.
fn sides() -> impl Strategy<Value = (Records, Records)> {
    (
        prop::collection::vec(record(), 0..25),
        prop::collection::vec((record(), prop::option::of(0..30usize)), 0..25),
    )
        .prop_map(|(a, b)| {
            let a: Vec<(String, Record)> = a
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| {
                    r.insert("ext", Some(format!("a{i}")));
                    (format!("a{i}"), r)
                })
                .collect();
            let b = b
                .into_iter()
                .enumerate()
                .map(|(i, (mut r, ext))| {
                    r.insert("ext", ext.map(|e| format!("a{e}")));
                    (format!("b{i}"), r)
                })
                .collect();
            (a, b)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn a_side_against_itself_is_unchanged((a, _) in sides()) {
        let s = spec();
        let df = plan(&s, &a, &a);
        let classes = col_strings(&df, "class");
        prop_assert!(classes.iter().all(|c| c.as_deref() == Some("unchanged")), "{df}");
        prop_assert_eq!(classes.len(), a.len());
    }

    #[test]
    fn comparing_pairs_in_slices_gives_the_same_plan((a, b) in sides(), at_once in 1usize..4) {
        let s = spec();
        let whole = plan(&s, &a, &b);
        let sliced = engine::plan_sliced(&s, inputs(&s, &a, &b), at_once).unwrap();
        prop_assert!(whole.equals_missing(&sliced), "{whole}\n{sliced}");
    }

    #[test]
    fn applying_a_plan_converges((a, mut b) in sides()) {
        let s = spec();
        let first = plan(&s, &a, &b);
        apply(&first, &mut b);
        let second = plan(&s, &a, &b);
        let classes = col_strings(&second, "class");
        prop_assert!(
            !classes.iter().any(|c| matches!(c.as_deref(), Some("create" | "update"))),
            "first plan:\n{first}\nsecond plan:\n{second}"
        );
    }
}
