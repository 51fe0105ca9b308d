//! The demo's review report in a real browser: headless Chromium loads
//! `report.html` from disk, runs its script, and hands back the DOM, its
//! console and a screenshot.
//!
//! Chromium is required: `scripts/test` (which CI runs) installs Debian's
//! `chromium` package when it is missing. Set `RECON_SKIP_BROWSER=1` to skip
//! this test on a machine without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SKIP_ENV: &str = "RECON_SKIP_BROWSER";

fn chromium() -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// What one headless run of Chromium produced.
struct Load {
    stdout: String,
    stderr: String,
}

/// Run Chromium on `url` with `extra` flags, from a fresh profile, and wait
/// for it (a hung browser fails the test instead of hanging it).
fn load(browser: &Path, url: &str, extra: &[String], scratch: &Path) -> Load {
    let profile = tempfile::tempdir_in(scratch).unwrap();
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    // Read both pipes on threads so a chatty browser never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let load = Load {
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            };
            assert!(
                status.success(),
                "chromium exited with {status}:\n{}",
                load.stderr
            );
            return load;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish loading {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Console messages the page produced. The report never logs, so any
/// message at all (an uncaught exception, a failed load) is a bug.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// The serialized `<tr data-row ...>...</tr>` elements of a DOM dump.
fn rows(dom: &str) -> Vec<&str> {
    dom.match_indices("<tr data-row")
        .map(|(i, _)| {
            let end = dom[i..].find("</tr>").expect("closed row") + i;
            &dom[i..end]
        })
        .collect()
}

fn hidden(row: &str) -> bool {
    let open = &row[..row.find('>').unwrap()];
    open.contains(" hidden")
}

/// The part of the DOM between `start` and the next `end`.
fn between<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let i = dom
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in the page"));
    let j = dom[i..].find(end).map(|j| i + j).unwrap_or(dom.len());
    &dom[i..j]
}

#[test]
fn demo_report_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
            eprintln!("chromium not found; skipped because {SKIP_ENV}=1");
            return;
        }
        panic!(
            "this test needs Chromium: install it with `apt-get install -y chromium` \
             (scripts/test does so), or set {SKIP_ENV}=1 to skip it"
        );
    };

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path().join("home");
    let run = Command::new(env!("CARGO_BIN_EXE_recon"))
        .current_dir(root)
        .arg("--home")
        .arg(&home)
        .args(["run", "specs/demo/customers.toml"])
        .output()
        .expect("run recon");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(2),
        "the demo has pending changes\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let plan_dir = std::fs::read_dir(home.join("reports/demo-customers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .expect("a plan folder");
    let report = plan_dir.join("report.html");
    assert!(report.is_file(), "no report in {}", plan_dir.display());
    assert!(
        stdout.contains(&format!("wrote {}", report.display())),
        "the run names the report:\n{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plan_dir.join("summary.json")).unwrap()).unwrap();
    let count = |c: &str| summary["counts"][c].as_u64().unwrap();
    assert_eq!(count("create"), 40, "the demo plants 40 creates");
    let url = format!("file://{}", report.display());

    // The page as a person first sees it.
    let page = load(&browser, &url, &["--dump-dom".into()], scratch.path());
    let dom = &page.stdout;
    assert!(dom.contains("Customers: crm → erp"), "header");
    for class in [
        "create",
        "update",
        "invalid",
        "duplicate",
        "orphan",
        "skipped",
    ] {
        let card = between(dom, &format!("class=\"card k-{class}"), "</a>");
        let n = count(class);
        assert!(
            card.contains(&format!("<span class=\"num\">{n}</span>")),
            "the {class} card shows {n}: {card}"
        );
    }
    assert!(between(dom, "class=\"card k-create", "</a>").contains("Will be created in erp"));
    // C0003's city: the ERP has Padua, the CRM says Padova, so the ERP's
    // value before is Padua and after is Padova.
    let update = between(dom, "id=\"sec-update\"", "</section>");
    let c0003 = rows(update)
        .into_iter()
        .find(|r| r.contains(">C0003<"))
        .expect("C0003 is among the listed updates");
    let city = c0003.find(">city<").expect("city changes");
    let before = c0003[city..].find(">Padua<").expect("before: Padua") + city;
    assert!(
        c0003[before..].contains(">Padova<"),
        "after: Padova, in that order: {c0003}"
    );
    let all = rows(dom);
    assert!(all.len() > 100, "rows listed: {}", all.len());
    assert!(all.iter().all(|r| !hidden(r)), "no filter, nothing hidden");
    let console = console_lines(&page.stderr);
    assert!(console.is_empty(), "console messages: {console:#?}");

    // A shared link with a search: only the matching rows stay visible.
    let page = load(
        &browser,
        &format!("{url}#q=C0003"),
        &["--dump-dom".into()],
        scratch.path(),
    );
    let all = rows(&page.stdout);
    let visible: Vec<_> = all.iter().filter(|r| !hidden(r)).collect();
    assert!(!visible.is_empty(), "C0003 is found");
    assert!(visible.len() < all.len() / 10, "the rest is hidden");
    for r in &visible {
        assert!(r.contains("C0003"), "a visible row does not match: {r}");
    }
    for r in all.iter().filter(|r| r.contains(">C0003<")) {
        assert!(!hidden(r), "a matching row is hidden: {r}");
    }
    assert!(page.stdout.contains(&format!(
        "<span id=\"qstatus\" aria-live=\"polite\">{} of {} rows match</span>",
        visible.len(),
        all.len()
    )));
    let console = console_lines(&page.stderr);
    assert!(console.is_empty(), "console messages: {console:#?}");

    // A screenshot, kept beside the plan in the temporary home.
    let shot = scratch.path().join("report.png");
    load(
        &browser,
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
        ],
        scratch.path(),
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 50_000,
        "screenshot of {size} bytes at {}",
        shot.display()
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
