//! The shape the code must keep: what the web layer may not reach.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn crate_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

/// The names of the `pub fn`s in a set of files.
fn public_functions(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(f)?.lines() {
            let t = line.trim_start();
            let rest = t.strip_prefix("pub async fn ").or_else(|| t.strip_prefix("pub fn "));
            if let Some(rest) = rest {
                names.push(rest.split(['(', '<']).next().unwrap_or_default().to_owned());
            }
        }
    }
    Ok(names)
}

/// Every console-only use case is on `app::console::Console`, reached only by `App::console`,
/// which `web/clippy.toml` bans; no `pub fn` of it is named in the web layer's source, and no
/// console shortcut is left on `App` itself.
#[test]
fn console_is_out_of_the_web_layers_reach() -> Result<()> {
    let clippy = std::fs::read_to_string(crate_dir("web").join("clippy.toml"))?;
    assert!(clippy.contains("path = \"app::App::console\""), "web/clippy.toml must ban app::App::console");
    let mut console = Vec::new();
    rust_files(&crate_dir("app").join("src").join("console"), &mut console)?;
    let functions = public_functions(&console)?;
    assert!(functions.len() >= 20, "the console's use cases: {functions:?}");
    let mut web = Vec::new();
    rust_files(&crate_dir("web").join("src"), &mut web)?;
    for f in &web {
        let text = std::fs::read_to_string(f)?;
        assert!(!text.contains(".console()"), "{} reaches the console", f.display());
        for name in &functions {
            assert!(
                !text.contains(&format!(".{name}(")) || app_has_public(name)?,
                "{} calls {name}, a console use case",
                f.display()
            );
        }
    }
    // Nothing console-only is left on App: no `console_*` and no unaudited path outside it.
    let mut app_files = Vec::new();
    rust_files(&crate_dir("app").join("src"), &mut app_files)?;
    app_files.retain(|f| !f.starts_with(crate_dir("app").join("src").join("console")));
    for name in public_functions(&app_files)? {
        assert!(!name.starts_with("console_") && !name.contains("unaudited"), "App::{name} belongs on Console");
    }
    Ok(())
}

/// Whether a name is also one of `App`'s own public use cases (outside the console), which the
/// web layer may call: `Console::create_practice` and `App::create_practice` share a name.
fn app_has_public(name: &str) -> Result<bool> {
    let mut files = Vec::new();
    rust_files(&crate_dir("app").join("src"), &mut files)?;
    files.retain(|f| !f.starts_with(crate_dir("app").join("src").join("console")));
    Ok(public_functions(&files)?.iter().any(|n| n == name))
}

/// Storage never takes a bare patient or document id: a method that names a patient or a
/// document also takes the grant that reaches it (and its SQL repeats the relationship the
/// grant rests on). Identity look-ups keyed by the signed-in subject take an account id, which
/// this rule does not cover (ARCHITECTURE.md, "Storage never takes a bare id").
#[test]
fn storage_takes_grants_not_bare_patient_ids() -> Result<()> {
    // `recipients`: who to tell that there is news about a patient (their own account and their
    // proxies' — contact details, no health data), asked by a use case after its grant, or by
    // the reminders job, which has none.
    const EXCEPTIONS: &[&str] = &["recipients"];
    let mut files = Vec::new();
    rust_files(&crate_dir("store").join("src"), &mut files)?;
    files.retain(|f| f.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs"));
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        // Each declaration, joined onto one line.
        for decl in text.split("fn ").skip(1) {
            let Some(head) = decl.split(';').next() else { continue };
            let name = head.split(['(', '<']).next().unwrap_or_default().trim();
            let params = head.split("->").next().unwrap_or_default();
            let bare = [": PatientId", ": DocumentId", ": domain::PatientId", ": domain::DocumentId"]
                .iter()
                .any(|t| params.contains(t))
                && !params.contains("Grant<")
                && !params.contains("KeyGrant")
                && !params.contains("StoreGrant");
            if bare && !EXCEPTIONS.contains(&name) {
                offenders.push(format!("{}: {name}", f.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "storage methods that take a bare patient or document id: {offenders:#?}");
    Ok(())
}

/// Views returned to the web layer are the modules' own types: no storage row (`DocumentRow`
/// with its wrapped key and blob address, `PatientRow` with its account, …) is named in `web`,
/// and `app` re-exports none.
#[test]
fn no_storage_row_crosses_into_web() -> Result<()> {
    let mut web = Vec::new();
    rust_files(&crate_dir("web").join("src"), &mut web)?;
    let mut model = std::fs::read_to_string(crate_dir("store").join("src").join("model.rs"))?;
    for entry in std::fs::read_dir(crate_dir("store").join("src"))? {
        let path = entry?.path().join("mod.rs");
        if path.exists() {
            model.push_str(&std::fs::read_to_string(path)?);
        }
    }
    let rows: Vec<&str> = model
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub struct "))
        .map(|rest| rest.split([' ', '<', '(', '{']).next().unwrap_or_default())
        .filter(|name| name.ends_with("Row"))
        .collect();
    assert!(rows.len() >= 8, "the storage rows: {rows:?}");
    for f in &web {
        let text = std::fs::read_to_string(f)?;
        for row in &rows {
            assert!(!text.contains(row), "{} names the storage row {row}", f.display());
        }
    }
    let lib = std::fs::read_to_string(crate_dir("app").join("src").join("lib.rs"))?;
    for row in &rows {
        assert!(!lib.contains(row), "app re-exports the storage row {row}");
    }
    Ok(())
}
