//! The core's layers import one way only: each module uses only modules
//! above it in the `# Layout` of `lib.rs`, so no import cycle can come
//! back unnoticed.

use std::path::{Path, PathBuf};

/// The layers, top first, as `lib.rs` lists them.
const LAYERS: [&str; 14] = [
    "config", "model", "decide", "rail", "store", "pacer", "events", "merchant", "metrics",
    "dispatch", "payouts", "prize", "campaign", "doctor",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::NAME` paths of a file's code (comments and unit tests,
/// which may use anything, left out).
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn no_module_imports_from_a_layer_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for layer in LAYERS {
        assert!(
            lib.contains(&format!("pub mod {layer};")),
            "{layer} is a module of lib.rs"
        );
    }
    let mut files = Vec::new();
    sources(&src, &mut files);
    let rank = |name: &str| LAYERS.iter().position(|l| *l == name);
    let mut wrong = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(own) = rank(&top) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        for used in uses(&text) {
            if rank(&used).is_some_and(|r| r > own) {
                wrong.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(files.len() > 30, "read the sources: {}", files.len());
    assert!(wrong.is_empty(), "imports from below: {wrong:#?}");
}

#[test]
fn the_check_sees_an_import_from_below() {
    let found = uses(
        "use crate::store::db::Db;\n// crate::prize in a comment\nfn f() { crate::dispatch::x(); }\n#[cfg(test)]\nuse crate::doctor;",
    );
    assert_eq!(found, ["store", "dispatch"]);
}
