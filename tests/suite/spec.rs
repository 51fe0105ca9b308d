//! Spec diagnostics: every error at once, each with file, line, column and a
//! hint; and every shipped spec is valid.

use crate::common;

use std::path::Path;

use recon::spec::Spec;

fn errors(text: &str) -> String {
    Spec::parse(Path::new("specs/bad.toml"), text)
        .expect_err("the spec is malformed")
        .to_string()
}

#[test]
fn unknown_key_wrong_type_and_missing_side_are_reported_together() {
    let text = r#"name = "bad"
entity = "customers"
direction = "crm -> erp"

[side.crm]
file = "crm.csv"
id = "id"
regoin = "IT"

[[field]]
name = "email"
path = { crm = "email", erp = "email" }
requierd = true

[[field]]
name = "limit"
type = "decimal"
tolerance = "a lot"
path = { crm = "limit" }

[[key]]
fields = ["emial"]
"#;
    insta::assert_snapshot!(errors(text));
}

#[test]
fn bad_values_are_explained() {
    let text = r#"name = "bad name"
entity = "customers"
direction = "crm => erp"
colour = "blue"

[side.crm]
file = "crm.xlsx"
id = "id"
timezone = "Mars/Olympus"
filter = ['status ~ "x"']

[side.erp]
file = "erp.json"
id = "id["

[[field]]
name = "status"
type = "strnig"
path = { crm = "status", erp = "status" }
compare = "fuzzy"

[[key]]
fields = ["status"]
normalize = "emali"
"#;
    insta::assert_snapshot!(errors(text));
}

#[test]
fn broken_toml_points_at_the_spot() {
    insta::assert_snapshot!(errors("name = \"x\"\nentity = [\n"));
}

#[test]
fn every_shipped_spec_is_valid() {
    let mut found = 0;
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("specs")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                found += 1;
                if let Err(e) = Spec::load(&p) {
                    panic!("{}:\n{e}", p.display());
                }
            }
        }
    }
    assert!(found > 0, "no specs found");
}

#[test]
fn check_prints_one_paragraph_and_exits_1_on_errors() {
    let d = common::Dir::new();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/demo/customers.toml");
    let o = d.recon(&["check", demo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", common::show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("reconciles customers between crm"), "{out}");
    let bad = d.write("bad.toml", "name = 1\n");
    let o = d.recon(&["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", common::show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.toml:1:8"),
        "{}",
        common::show(&o)
    );
}
