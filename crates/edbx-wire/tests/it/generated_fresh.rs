//! Keeps `src/generated/` in step with `schema/`.
//!
//! The Rust code generated from the Cap'n Proto schemas is checked in so that building the crate
//! needs no `capnp` tool. This test regenerates it with `capnpc` into a scratch directory and
//! fails when the checked-in copy differs. To refresh the checked-in copy instead, run
//!
//! ```text
//! EDBX_REGEN=1 cargo test -p edbx-wire --test it generated_fresh
//! ```
//!
//! The test needs the `capnp` schema compiler (`apt-get install capnproto`); without it the test
//! fails rather than skipping, so a stale copy can never slip through unnoticed.
//!
//! One header line, `// capnp binary version: …`, records the version of the `capnp` tool that
//! happened to run and is ignored in the comparison: the code below it depends only on the schemas
//! and the `capnpc` crate version (which is compared).

use std::path::{Path, PathBuf};
use std::process::Command;

const REFRESH: &str = "EDBX_REGEN=1 cargo test -p edbx-wire --test it generated_fresh";
const INSTALL: &str = "apt-get install capnproto";
const TOOL_VERSION_LINE: &str = "// capnp binary version:";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The schema files, sorted, and the generated file each one yields (`foo.capnp` → `foo_capnp.rs`).
fn schemas(schema_dir: &Path) -> Vec<(PathBuf, String)> {
    let mut schemas: Vec<(PathBuf, String)> = std::fs::read_dir(schema_dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", schema_dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "capnp"))
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .expect("schema file names are UTF-8")
                .replace('-', "_");
            (path, format!("{stem}_capnp.rs"))
        })
        .collect();
    schemas.sort();
    assert!(
        !schemas.is_empty(),
        "no .capnp files in {}",
        schema_dir.display()
    );
    schemas
}

fn require_capnp_tool() {
    match Command::new("capnp").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`capnp --version` failed ({}): {}\nThis test needs a working Cap'n Proto schema \
             compiler: `{INSTALL}` (Debian/Ubuntu).",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(err) => panic!(
            "the Cap'n Proto schema compiler `capnp` is not on PATH ({err}).\n\
             This test regenerates src/generated/ from schema/ and cannot run without it: \
             install it with `{INSTALL}` (Debian/Ubuntu; `brew install capnp` on macOS)."
        ),
    }
}

fn generate(schema_dir: &Path, schemas: &[(PathBuf, String)], out_dir: &Path) {
    let mut command = capnpc::CompilerCommand::new();
    command
        .src_prefix(schema_dir)
        .default_parent_module(vec!["generated".to_owned()])
        .output_path(out_dir);
    for (schema, _) in schemas {
        command.file(schema);
    }
    if let Err(err) = command.run() {
        panic!("capnpc failed on {}: {err}", schema_dir.display());
    }
}

fn without_tool_version(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.starts_with(TOOL_VERSION_LINE))
        .collect()
}

#[test]
fn generated_code_matches_schemas() {
    require_capnp_tool();
    let crate_dir = crate_dir();
    let schema_dir = crate_dir.join("schema");
    let generated_dir = crate_dir.join("src").join("generated");
    let schemas = schemas(&schema_dir);

    if std::env::var_os("EDBX_REGEN").is_some_and(|value| value == "1") {
        generate(&schema_dir, &schemas, &generated_dir);
        eprintln!(
            "EDBX_REGEN=1: regenerated {} in {}",
            schemas
                .iter()
                .map(|(_, file)| file.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            generated_dir.display()
        );
        return;
    }

    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edbx-wire-generated-fresh");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).expect("clear scratch directory");
    }
    std::fs::create_dir_all(&scratch).expect("create scratch directory");
    generate(&schema_dir, &schemas, &scratch);

    let mut problems = Vec::new();
    for (schema, file) in &schemas {
        let fresh = std::fs::read_to_string(scratch.join(file))
            .unwrap_or_else(|err| panic!("capnpc did not write {file}: {err}"));
        let checked_in_path = generated_dir.join(file);
        let Ok(checked_in) = std::fs::read_to_string(&checked_in_path) else {
            problems.push(format!(
                "{} is missing (generated from {})",
                checked_in_path.display(),
                schema.display()
            ));
            continue;
        };
        let fresh_lines = without_tool_version(&fresh);
        let checked_in_lines = without_tool_version(&checked_in);
        if fresh_lines != checked_in_lines {
            let first_difference = fresh_lines
                .iter()
                .zip(&checked_in_lines)
                .position(|(a, b)| a != b)
                .unwrap_or(fresh_lines.len().min(checked_in_lines.len()));
            problems.push(format!(
                "{} differs from what {} generates (first difference near line {}; \
                 {} vs {} lines)",
                checked_in_path.display(),
                schema.display(),
                first_difference + 1,
                checked_in_lines.len(),
                fresh_lines.len()
            ));
        }
    }

    // Generated files whose schema is gone.
    let expected: Vec<&str> = schemas.iter().map(|(_, file)| file.as_str()).collect();
    for entry in std::fs::read_dir(&generated_dir).expect("list src/generated") {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with("_capnp.rs") && !expected.contains(&name.as_ref()) {
            problems.push(format!(
                "src/generated/{name} has no schema in schema/ (delete it and its `mod` line)"
            ));
        }
    }

    std::fs::remove_dir_all(&scratch).ok();
    assert!(
        problems.is_empty(),
        "the checked-in generated code is stale:\n  {}\n\nRefresh it with:\n  {REFRESH}\n\
         and commit the changes in src/generated/.",
        problems.join("\n  ")
    );
}
