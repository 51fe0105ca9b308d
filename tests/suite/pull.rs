//! Pulling file sides: every format, encodings and line endings, nested
//! paths, rejects, missing files and atomic snapshots.

use crate::common;

use common::{Dir, read_parquet, show, strings};

/// A spec with sides `a` and `b` over the given files and extra side keys.
fn spec(a: &str, a_extra: &str, b: &str, b_extra: &str, fields: &str) -> String {
    format!(
        r#"name = "t"
entity = "customers"
direction = "a -> b"

[side.a]
file = "{a}"
id = "id"
{a_extra}

[side.b]
file = "{b}"
id = "id"
{b_extra}

{fields}

[[key]]
fields = ["email"]
normalize = "email"
"#
    )
}

const FIELDS: &str = r#"
[[field]]
name = "email"
path = { a = "email", b = "emails[type=primary].email" }

[[field]]
name = "city"
path = { a = "city", b = "address.city" }

[[field]]
name = "limit"
type = "decimal"
path = { a = "limit", b = "limit" }
"#;

#[test]
fn csv_with_bom_crlf_and_quoted_newlines() {
    let d = Dir::new();
    d.write(
        "a.csv",
        "\u{feff}id;email;city;limit\r\n1;ann@x.com;\"Rome;\r\nLazio\";12,50\r\n2;bob@x.com;\"Milan \"\"Centro\"\"\";3\r\n",
    );
    d.write(
        "b.ndjson",
        "{\"id\": 9, \"emails\": [{\"type\": \"primary\", \"email\": \"ann@x.com\"}]}\n",
    );
    let s = spec(
        "a.csv",
        "delimiter = \";\"\ndecimal_comma = true",
        "b.ndjson",
        "",
        FIELDS,
    );
    let sp = d.write("t.toml", s);
    let o = d.recon(&["pull", sp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let snaps = d.files("snapshots/t/a", ".parquet");
    assert_eq!(snaps.len(), 1, "{}", show(&o));
    let df = read_parquet(&snaps[0]);
    assert_eq!(
        strings(&df, "_id"),
        vec![Some("1".into()), Some("2".into())]
    );
    assert_eq!(
        strings(&df, "city"),
        vec![
            Some("Rome;\r\nLazio".into()),
            Some("Milan \"Centro\"".into())
        ]
    );
    assert_eq!(
        strings(&df, "limit"),
        vec![Some("12.50".into()), Some("3.00".into())]
    );
    // The BOM does not stick to the first header: `id` was found.
    assert!(d.files("snapshots/t/a", ".rejects.csv").is_empty());
}

#[test]
fn json_nested_paths_and_document_records() {
    let d = Dir::new();
    d.write("a.csv", "id,email,city,limit\n1,ann@x.com,Rome,1\n");
    d.write(
        "b.json",
        r#"{"data": [
            {"id": "E1", "emails": [{"type": "billing", "email": "bill@x.com"}, {"type": "primary", "email": "ann@x.com"}],
             "address": {"city": "Roma"}, "limit": 1.5},
            {"id": "E2", "emails": [], "address": null, "limit": "2"}
        ]}"#,
    );
    let sp = d.write(
        "t.toml",
        spec("a.csv", "", "b.json", "records = \"data\"", FIELDS),
    );
    let o = d.recon(&["pull", sp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let df = read_parquet(&d.files("snapshots/t/b", ".parquet")[0]);
    assert_eq!(strings(&df, "email"), vec![Some("ann@x.com".into()), None]);
    assert_eq!(strings(&df, "city"), vec![Some("Roma".into()), None]);
    assert_eq!(
        strings(&df, "limit"),
        vec![Some("1.50".into()), Some("2.00".into())]
    );
}

#[test]
fn top_level_json_array_ndjson_and_parquet_sources() {
    let d = Dir::new();
    d.write(
        "a.json",
        "\u{feff}[{\"id\": 1, \"email\": \"a@x\", \"city\": \"X\", \"limit\": 1}, {\"id\": 2, \"email\": \"b@x\", \"city\": null, \"limit\": null}]",
    );
    d.write(
        "b.ndjson",
        "{\"id\": \"E1\", \"emails\": [{\"type\": \"primary\", \"email\": \"a@x\"}]}\r\n\r\nnot json\r\n{\"id\": \"E2\"}\r\n",
    );
    let sp = d.write("t.toml", spec("a.json", "", "b.ndjson", "", FIELDS));
    let o = d.recon(&["pull", sp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let a = read_parquet(&d.files("snapshots/t/a", ".parquet")[0]);
    assert_eq!(a.height(), 2);
    let b = read_parquet(&d.files("snapshots/t/b", ".parquet")[0]);
    assert_eq!(
        strings(&b, "_id"),
        vec![Some("E1".into()), Some("E2".into())]
    );
    // The malformed NDJSON line is rejected with its line number.
    let rejects = std::fs::read_to_string(&d.files("snapshots/t/b", ".rejects.csv")[0]).unwrap();
    assert!(rejects.contains("line 3"), "{rejects}");
    assert!(rejects.contains("malformed JSON"), "{rejects}");

    // A Parquet file is a source too: read side a's snapshot back.
    let snap = d.files("snapshots/t/a", ".parquet")[0].clone();
    std::fs::copy(&snap, d.path().join("a.parquet")).unwrap();
    let sp = d.write(
        "p.toml",
        spec("a.parquet", "", "b.ndjson", "", FIELDS)
            .replace("name = \"t\"", "name = \"p\"")
            .replace("id = \"id\"\n\n\n[side.b]", "id = \"_id\"\n\n\n[side.b]"),
    );
    let o = d.recon(&["pull", sp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let p = read_parquet(&d.files("snapshots/p/a", ".parquet")[0]);
    assert_eq!(
        strings(&p, "email"),
        vec![Some("a@x".into()), Some("b@x".into())]
    );
    assert_eq!(strings(&p, "limit"), vec![Some("1.00".into()), None]);
}

#[test]
fn bad_rows_go_to_rejects_and_the_pull_goes_on() {
    let d = Dir::new();
    d.write(
        "a.csv",
        "id,email,city,limit\n1,a@x,Rome,1\n2,b@x,Rome,n/a\n,c@x,Rome,3\n4,d@x,Rome\n1,e@x,Rome,5\n6,f@x,Rome,6\n",
    );
    let mut bad_utf8 = b"id,email,city,limit\n1,a@x,Ro".to_vec();
    bad_utf8.extend_from_slice(&[0xff, 0xfe]);
    bad_utf8.extend_from_slice(b"me,1\n2,b@x,Milan,2\n");
    d.write("b.csv", bad_utf8);
    let fields = FIELDS
        .replace("b = \"emails[type=primary].email\"", "b = \"email\"")
        .replace("b = \"address.city\"", "b = \"city\"");
    let sp = d.write("t.toml", spec("a.csv", "", "b.csv", "", &fields));
    let o = d.recon(&["pull", sp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("pulled a: 2 records"), "{out}");
    assert!(out.contains("4 records rejected"), "{out}");
    let rejects = std::fs::read_to_string(&d.files("snapshots/t/a", ".rejects.csv")[0]).unwrap();
    for want in [
        "line 3,limit,limit (`limit`) `n/a` is not a number",
        "line 4,id,missing id (`id`)",
        "line 5,,\"has 3 fields, the header has 4\"",
        "line 6,id,id `1` was already used at line 2",
    ] {
        assert!(rejects.contains(want), "missing {want:?} in\n{rejects}");
    }
    let b_rejects = std::fs::read_to_string(&d.files("snapshots/t/b", ".rejects.csv")[0]).unwrap();
    assert!(
        b_rejects.contains("line 2,,column 3 (`city`) is not valid UTF-8"),
        "{b_rejects}"
    );
    assert_eq!(
        read_parquet(&d.files("snapshots/t/b", ".parquet")[0]).height(),
        1
    );
}

#[test]
fn a_missing_file_is_one_clear_error() {
    let d = Dir::new();
    d.write("b.csv", "id,email\n");
    let sp = d.write("t.toml", spec("nowhere.csv", "", "b.csv", "", FIELDS));
    let o = d.recon(&["pull", sp.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nowhere.csv"), "{err}");
    assert!(err.contains("pulling side `a`"), "{err}");
    assert!(d.files("snapshots", ".parquet").is_empty());
}

#[test]
fn a_failing_pull_leaves_no_partial_snapshot() {
    let d = Dir::new();
    // Enough records to flush several batches to the temporary file before
    // the document turns out to be cut short.
    let mut body = String::from("[");
    for i in 0..30_000 {
        body.push_str(&format!("{{\"id\": {i}, \"email\": \"u{i}@x\"}},"));
    }
    body.push_str("{\"id\": ");
    d.write("a.json", body);
    d.write("b.csv", "id,email\n");
    let sp = d.write("t.toml", spec("a.json", "", "b.csv", "", FIELDS));
    let o = d.recon(&["pull", sp.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("malformed JSON"),
        "{}",
        show(&o)
    );
    let left: Vec<_> = std::fs::read_dir(d.path().join("snapshots/t/a"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
