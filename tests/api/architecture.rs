//! Import directions (docs/architecture.md): reads every `src/**/*.rs`, takes each file's
//! module (its first path component under `src/`) and every `crate::X` it mentions (in `use`
//! lines, `use crate::{a, b}` groups and inline paths; `#[cfg(test)]` code included, `//`
//! lines skipped), plus any `actix*` crate, and checks them against `RULES`. A module's
//! imports of itself are always allowed. Not seen: `super::` paths (they stay inside a folder,
//! except at the top level of a single-file module) and `gatehouse::` (only `main.rs`).
use std::path::{Path, PathBuf};

enum Rule {
    /// May import only these crate modules (external crates are not checked).
    Only(&'static [&'static str]),
    /// Must not mention these (crate modules, or an external crate; `x*` matches by prefix).
    Never(&'static [&'static str]),
}
use Rule::{Never, Only};

// The rules, as data. A module is a file's first path component under `src/`.
/// Everything but the top (`routes`, `startup`, `cli`, `main.rs`, `lib.rs`).
#[rustfmt::skip]
const BELOW_TOP: &[&str] = &[
    "signin", "portal", "admin", "demo",                                // features
    "oidc", "directory", "federation", "access", "audit", "mail",       // protocol and domain
    "web", "telemetry",                                                 // the HTTP kit, observability
    "app", "keys", "licensing", "storage", "model",                     // state, storage, records
    "policy", "mfa", "password", "secrets", "clock", "ratelimit", "config", // leaves
];
const TOP: &[&str] = &["routes", "startup", "cli", "main", "lib"];
/// State, storage, records and leaves.
#[rustfmt::skip]
const LOWER: &[&str] = &[
    "app", "keys", "licensing", "storage", "model",
    "policy", "mfa", "password", "secrets", "clock", "ratelimit", "config",
];
/// The top, the features and the protocol/domain modules.
#[rustfmt::skip]
const ABOVE_KIT: &[&str] = &[
    "routes", "startup", "cli",
    "signin", "portal", "admin", "demo",
    "oidc", "directory", "federation", "access", "audit", "mail",
];

/// `(modules, rule)`: every rule whose list holds a file's module applies to that file.
#[rustfmt::skip]
const RULES: &[(&[&str], Rule)] = &[
    // State, storage, records and leaves know nothing of HTTP, the kit, a feature or a protocol.
    (LOWER,          Never(&["actix*", "web"])),
    (LOWER,          Never(ABOVE_KIT)),
    // Storage sees only records and what it needs to open, sweep and count (the in-memory
    // window of the embedded store) them.
    (&["storage"],   Only(&["model", "policy", "secrets", "clock", "config", "ratelimit"])),
    // `User` holds its TOTP methods and lockout (`mfa::TotpMethod`, `mfa::Lockout`): mfa is below model.
    (&["model"],     Only(&["policy", "mfa", "secrets"])),
    // The leaves import only what they import today.
    (&["policy", "mfa", "secrets", "clock", "ratelimit"], Only(&[])),
    (&["config"],    Only(&["secrets"])),
    (&["password"],  Only(&["config", "secrets"])),
    // The HTTP kit serves every feature and so imports none of them.
    (&["web"],       Never(ABOVE_KIT)),
    // Metrics, logs and the timed store: beside the kit, above the store it times.
    (&["telemetry"], Only(&["storage", "model", "policy", "config", "secrets"])),
    // Only startup and cli sit above routes.
    (BELOW_TOP,      Never(&["routes", "startup", "cli"])),
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn ident(s: &str) -> &str {
    &s[..s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len())]
}

/// `(line, name, is_crate_module)` for every `crate::X` and `actix*` in `text`.
fn imports(text: &str) -> Vec<(usize, String, bool)> {
    let mut found = Vec::new();
    let mut offset = 0;
    for (n, line) in text.lines().enumerate() {
        let rest = &text[offset..];
        offset += line.len() + 1;
        if line.trim_start().starts_with("//") {
            continue;
        }
        for (i, _) in line.match_indices("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let (mut depth, mut start) = (0, 0);
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' | ',' if depth == 0 => {
                            let name = ident(group[start..j].trim());
                            if !name.is_empty() && name != "self" {
                                found.push((n + 1, name.to_string(), true));
                            }
                            if c == '}' {
                                break;
                            }
                            start = j + 1;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
            } else {
                found.push((n + 1, ident(after).to_string(), true));
            }
        }
        for (i, _) in line.match_indices("actix") {
            let before = line[..i].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                found.push((n + 1, ident(&line[i..]).to_string(), false));
            }
        }
    }
    found
}

#[test]
fn architecture_imports_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let mut offences = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = first.strip_suffix(".rs").unwrap_or(first);
        if !BELOW_TOP.contains(&module) && !TOP.contains(&module) {
            offences
                .push(format!("src/{}: module `{module}` is in no layer (add it to BELOW_TOP or TOP)", rel.display()));
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (line, dep, is_crate) in imports(&text) {
            if dep == module {
                continue;
            }
            for (_, rule) in RULES.iter().filter(|(who, _)| who.contains(&module)) {
                let broken = match rule {
                    Only(allowed) => is_crate && !allowed.contains(&dep.as_str()),
                    Never(banned) => {
                        banned.iter().any(|b| b.strip_suffix('*').map_or(*b == dep, |p| dep.starts_with(p)))
                    }
                };
                if broken {
                    let shown = if is_crate { format!("crate::{dep}") } else { dep.clone() };
                    let rule = match rule {
                        Only(allowed) => format!("`{module}` may import only {allowed:?}"),
                        Never(_) => format!("`{module}` must never import it"),
                    };
                    offences.push(format!("src/{}:{line}: `{shown}` ({rule})", rel.display()));
                }
            }
        }
    }
    assert!(files.len() > 50, "read only {} files under {}", files.len(), src.display());
    assert!(offences.is_empty(), "imports that point the wrong way:\n{}", offences.join("\n"));
}

#[test]
fn architecture_scanner_sees_groups_inline_paths_and_actix() {
    let text = "use crate::{a::b, c::{d, e}};\n// crate::commented\nlet x = crate::f::g(); use actix_web::X;\n";
    let got = imports(text);
    let want = [(1, "a", true), (1, "c", true), (3, "f", true), (3, "actix_web", false)];
    assert_eq!(got, want.map(|(l, n, c)| (l, n.to_string(), c)));
}
