//! Docs check: README.md and docs/*.md must not cite things that no longer
//! exist.
//!
//! Every inline code span (text in backticks, outside fenced code blocks)
//! that looks like a repository path or a Rust item is checked:
//!
//! - a path (`tests/sim_matrix.rs`, `src/device/`, `wire.rs`) must exist,
//!   relative to the repository root, to the document, or as the tail of a
//!   path in the repository (`src/ffi.rs` for `utcp-packetdrill/src/ffi.rs`);
//!   paths into other trees (packetdrill's `gtests/...`) are not checked;
//! - an item (`Stack::handle_packet`, `flush_conn`, `Tcb::handle_segment(now,
//!   seg)`, `TcpConfig`, `fn drive`, `Mutex<Core>`, `cfg.addr`) must be
//!   defined in src/, tests/, utcp-packetdrill/, benches/ or examples/. In a
//!   `::` path every module segment must be a module and every type segment
//!   a type; `Type::member` must be a member of that type (a field, variant,
//!   method, associated const or type) when the scan found the type's
//!   members, else defined anywhere.
//!
//! "Defined" comes from a token scan of the Rust sources (comments and
//! literals skipped, braces tracked), not a parse: a name after `fn`,
//! `struct`, `enum`, `trait`, `type`, `const`, `static`, `mod`, `union` or
//! `macro_rules!`; the fields of a struct body, the variants of an enum
//! body, the fns/consts/types of a trait or `impl` block (credited to the
//! `impl`'s type); a `.rs` file's stem (a module). C sources contribute
//! `#define`, `struct` and function names. A snake_case word also counts
//! when the code has it as a whole string literal (counter labels such as
//! `not_ipv4`, flag keys such as `min_rto_ms`).
//!
//! Not checked, to keep false positives at zero: spans with spaces or
//! shell syntax (commands, `key=value`), flags (`--stats`), numbers and
//! addresses, single lower-case words without `_` or call parentheses
//! (`server`, `echo`, `recv`: English, CLI commands or too generic to
//! matter), capitals without `_` (`SYN-SENT`, `SND.UNA`, `PASS`), crate names
//! from the Cargo.toml files, and the explicit allow-list below.
//!
//! Each missing reference is printed as `docs/FILE.md:LINE: `ref` not found`
//! and the test fails if there is any.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Names from outside this repository, by class. Each entry is a whole
/// identifier (or `Type::item` path) that a span may name.
const ALLOWED: &[&str] = &[
    // The standard library: traits, types and methods the docs mention.
    "Arc",
    "Condvar",
    "Debug",
    "Display",
    "FromStr",
    "HashMap",
    "Mutex",
    "None",
    "Ord",
    "Read",
    "Write",
    "Instant::now",
    "catch_unwind",
    "notify_all",
    // std::io::ErrorKind variants the socket API returns.
    "BrokenPipe",
    "ConnectionRefused",
    "ConnectionReset",
    "TimedOut",
    "WouldBlock",
    // RFC pseudo-code functions (RFC 6675 section 4).
    "IsLost",
    // packetdrill's C interface (its packetdrill.h), mirrored under Rust names.
    "packetdrill_interface",
    // Linux kernel functions cited for their behaviour.
    "tcp_reset",
];

/// Prefixes of Linux constants and C-library names (ioctl requests, socket
/// options, flags, errno values, capabilities).
const LINUX_PREFIXES: &[&str] = &[
    "IFF_", "TUN", "SIOC", "SO_", "SOL_", "TCP_", "IP_", "IPPROTO_", "MSG_", "O_", "F_", "AF_",
    "SOCK_", "EPOLL", "POLL", "CAP_",
];

/// Environment variables the docs mention (read by scripts or by env_logger).
const ENV_VARS: &[&str] = &[
    "RUST_LOG",
    "RUST_BACKTRACE",
    "PACKETDRILL",
    "PACKETDRILL_TIMEOUT",
];

/// Folders scanned for definitions.
const SOURCE_DIRS: &[&str] = &["src", "tests", "utcp-packetdrill", "benches", "examples"];

/// What the repository defines, as far as the docs check is concerned.
struct Defs {
    /// Item names: fns, types, consts, fields, variants, macros.
    items: HashSet<String>,
    /// The members of each type: fields, variants, methods, associated
    /// consts and types (from `impl` blocks, trait impls included).
    members: HashMap<String, HashSet<String>>,
    /// Modules: `mod` declarations and `.rs` file stems (test crates too).
    modules: HashSet<String>,
    /// Whole-identifier string literals in the code.
    labels: HashSet<String>,
    /// Crate names (package and dependency names, `-` and `_` spellings).
    crates: HashSet<String>,
    /// Every file and folder, relative to the root, `/`-separated; folders
    /// also with a trailing `/`.
    paths: HashSet<String>,
    /// Top-level entries of the repository (`src`, `README.md`, `.ci`, ...).
    top: HashSet<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// True for a whole Rust/C identifier.
fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_char)
}

/// `TcpConfig`, `Owner`: capital first, a lower-case letter somewhere.
fn is_camel(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().any(|c| c.is_ascii_lowercase())
}

/// `RX_BATCH`, `IFF_TUN`: capitals, digits and underscores only.
fn is_upper(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_uppercase()) && !s.chars().any(|c| c.is_ascii_lowercase())
}

/// Splits a line into identifier tokens and single punctuation characters,
/// dropping whitespace.
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if is_ident_char(c) {
            let end = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
            out.push(&rest[..end]);
            rest = &rest[end..];
        } else {
            out.push(&rest[..c.len_utf8()]);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Splits Rust source into identifiers (and numbers) and single punctuation
/// characters, dropping whitespace, comments, lifetimes' quote marks and
/// the contents of string and char literals; whole-identifier string
/// literals are added to `labels`.
fn lex_rust(text: &str, labels: &mut HashSet<String>) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let at = |k: usize| chars.get(k).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            let body: String = chars[start..i.min(chars.len())].iter().collect();
            if is_ident(&body) {
                labels.insert(body);
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime: one token, so `'static` is not the keyword.
                let start = i;
                i += 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                toks.push(chars[start..i].iter().collect());
            }
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // Raw strings: r"..", r#".."#, br"..".
            if (word == "r" || word == "br") && (at(i) == '"' || at(i) == '#') {
                let mut hashes = 0;
                while at(i + hashes) == '#' {
                    hashes += 1;
                }
                if at(i + hashes) == '"' {
                    i += hashes + 1;
                    while i < chars.len() {
                        if chars[i] == '"' && (0..hashes).all(|h| at(i + 1 + h) == '#') {
                            i += 1 + hashes;
                            break;
                        }
                        i += 1;
                    }
                    continue;
                }
            }
            toks.push(word);
        } else {
            toks.push(c.to_string());
            i += 1;
        }
    }
    toks
}

impl Defs {
    /// Scans the repository at `root`.
    fn scan(root: &Path) -> Defs {
        let mut defs = Defs {
            items: HashSet::new(),
            members: HashMap::new(),
            modules: HashSet::new(),
            labels: HashSet::new(),
            crates: HashSet::new(),
            paths: HashSet::new(),
            top: HashSet::new(),
        };
        let mut files = Vec::new();
        walk(root, root, &mut defs.paths, &mut files);
        for p in &defs.paths {
            if let Some(first) = p.split('/').next() {
                defs.top.insert(first.to_string());
            }
        }
        for rel in &files {
            let Some(dir) = rel.split('/').next() else {
                continue;
            };
            let is_rust = rel.ends_with(".rs");
            let is_c = rel.ends_with(".c") || rel.ends_with(".h");
            // This file's own test strings name things that must not exist.
            if !SOURCE_DIRS.contains(&dir) || !(is_rust || is_c) || rel == "tests/docs.rs" {
                continue;
            }
            let Ok(text) = fs::read_to_string(root.join(rel)) else {
                continue;
            };
            if is_rust {
                if let Some(stem) = rel.strip_suffix(".rs").and_then(|s| s.rsplit('/').next()) {
                    defs.modules.insert(stem.to_string());
                }
                if let Some(parent) = rel
                    .strip_suffix("/mod.rs")
                    .and_then(|s| s.rsplit('/').next())
                {
                    defs.modules.insert(parent.to_string());
                }
                defs.scan_rust(&text);
            } else {
                defs.scan_c(&text);
            }
        }
        for manifest in ["Cargo.toml", "utcp-packetdrill/Cargo.toml"] {
            if let Ok(text) = fs::read_to_string(root.join(manifest)) {
                defs.scan_manifest(&text);
            }
        }
        defs
    }

    /// Rust sources: every item name (after `fn`, `struct`, `enum`, `trait`,
    /// `type`, `const`, `static`, `mod`, `union`, `macro_rules!`), and the
    /// members of each type: the fields of a struct, the variants of an
    /// enum, the fns, consts and types of its `impl` blocks and of a trait.
    fn scan_rust(&mut self, text: &str) {
        const ITEM_KEYWORDS: &[&str] = &[
            "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "union",
        ];
        let toks = lex_rust(text, &mut self.labels);
        // Open braces: the type whose members they hold (if any), with the
        // kind of block and the bracket depth at which members appear.
        let mut blocks: Vec<Option<(String, &str)>> = Vec::new();
        let mut brackets = 0usize;
        let mut block_brackets: Vec<usize> = Vec::new();
        // A header seen but its `{` not yet: (kind, type name).
        let mut pending: Option<(&str, String)> = None;
        // Inside an `impl` header: identifiers at angle depth 0 (the last one
        // before `{` is the type), and the angle depth.
        let mut impl_header: Option<(Option<String>, usize)> = None;
        for (i, tok) in toks.iter().enumerate() {
            let tok = tok.as_str();
            let prev = i.checked_sub(1).map(|p| toks[p].as_str());
            let next = toks.get(i + 1).map(String::as_str);
            if let Some((last, angle)) = &mut impl_header {
                match tok {
                    "<" => *angle += 1,
                    ">" => *angle = angle.saturating_sub(1),
                    "for" if *angle == 0 => *last = None,
                    "where" | "{" if *angle == 0 => {
                        if let Some(name) = last.take() {
                            pending = Some(("impl", name));
                        }
                        impl_header = None;
                    }
                    t if *angle == 0 && is_ident(t) => *last = Some(t.to_string()),
                    _ => {}
                }
                if tok != "{" {
                    continue;
                }
            }
            match tok {
                "{" => {
                    blocks.push(pending.take().map(|(kind, name)| (name, kind)));
                    block_brackets.push(brackets);
                    continue;
                }
                "}" => {
                    blocks.pop();
                    block_brackets.pop();
                    continue;
                }
                "(" | "[" => brackets += 1,
                ")" | "]" => brackets = brackets.saturating_sub(1),
                ";" => pending = None,
                _ => {}
            }
            // `impl` as an item (not `impl Trait` in a type).
            if tok == "impl" && matches!(prev, None | Some("}" | ";" | "]" | "{" | "unsafe")) {
                impl_header = Some((None, 0));
                continue;
            }
            let def_name =
                if ITEM_KEYWORDS.contains(&tok) || (tok == "!" && prev == Some("macro_rules")) {
                    next.filter(|n| is_ident(n))
                } else {
                    None
                };
            if let Some(name) = def_name {
                self.items.insert(name.to_string());
                match tok {
                    "mod" => {
                        self.modules.insert(name.to_string());
                    }
                    "struct" | "enum" | "trait" | "union" => {
                        pending = Some((tok, name.to_string()));
                    }
                    _ => {}
                }
            }
            // Members of the innermost block's type.
            let Some(Some((owner, kind))) = blocks.last() else {
                continue;
            };
            if block_brackets.last() != Some(&brackets) || !is_ident(tok) {
                continue;
            }
            let member = match *kind {
                "impl" | "trait" => {
                    matches!(prev, Some("fn" | "const" | "type")) && def_name.is_none()
                }
                "struct" | "union" => {
                    next == Some(":")
                        && toks.get(i + 2).map(String::as_str) != Some(":")
                        && matches!(prev, Some("{" | "," | "pub" | ")" | "]"))
                }
                "enum" => {
                    matches!(prev, Some("{" | "," | "]"))
                        && tok.starts_with(|c: char| c.is_ascii_uppercase())
                }
                _ => false,
            };
            if member {
                self.items.insert(tok.to_string());
                self.members
                    .entry(owner.clone())
                    .or_default()
                    .insert(tok.to_string());
            }
        }
    }

    /// C sources: `#define NAME`, `struct NAME`, and `NAME(` (functions).
    fn scan_c(&mut self, text: &str) {
        for line in text.lines() {
            let toks = tokens(line);
            for (i, tok) in toks.iter().enumerate() {
                let next = toks.get(i + 1).copied().unwrap_or("");
                if (*tok == "define" || *tok == "struct") && is_ident(next) {
                    self.items.insert(next.to_string());
                }
                if next == "(" && is_ident(tok) {
                    self.items.insert(tok.to_string());
                }
            }
        }
    }

    /// Package and dependency names of a Cargo.toml.
    fn scan_manifest(&mut self, text: &str) {
        let mut in_deps = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line.contains("dependencies");
                continue;
            }
            let name = if in_deps {
                line.split('=').next().map(str::trim)
            } else {
                line.strip_prefix("name")
                    .and_then(|r| r.trim_start().strip_prefix('='))
                    .map(|r| r.trim().trim_matches('"'))
            };
            if let Some(name) = name.filter(|n| !n.is_empty() && !n.starts_with('#')) {
                self.crates.insert(name.to_string());
                self.crates.insert(name.replace('-', "_"));
            }
        }
    }

    /// True when `name` is defined as an item (or allowed).
    fn has_item(&self, name: &str) -> bool {
        self.items.contains(name) || ALLOWED.contains(&name)
    }

    /// True when the word may be a module name.
    fn has_module(&self, name: &str) -> bool {
        self.modules.contains(name) || self.crates.contains(name)
    }
}

/// Collects files (and folders) below `dir`, skipping `target` and hidden
/// build or VCS folders.
fn walk(root: &Path, dir: &Path, paths: &mut HashSet<String>, files: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "target" || name == ".git" {
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if path.is_dir() {
            paths.insert(format!("{rel}/"));
            paths.insert(rel);
            walk(root, &path, paths, files);
        } else {
            paths.insert(rel.clone());
            files.push(rel);
        }
    }
}

/// An inline code span and the line it starts on (1-based).
#[derive(Debug, PartialEq)]
struct Span {
    line: usize,
    text: String,
}

/// The inline code spans of `markdown`, outside fenced code blocks. A span
/// may continue onto the next line, but not across a blank line; its line
/// breaks become spaces.
fn code_spans(markdown: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    // Paragraphs: runs of non-blank lines outside fences, with their first
    // line number.
    let mut para: Vec<(usize, &str)> = Vec::new();
    let mut fence: Option<&str> = None;
    let mut flush = |para: &mut Vec<(usize, &str)>| {
        spans.extend(spans_in_paragraph(para));
        para.clear();
    };
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => {
                flush(&mut para);
                fence = Some(m);
                continue;
            }
            (Some(open), Some(m)) if open == m => {
                fence = None;
                continue;
            }
            (Some(_), _) => continue,
            (None, None) => {}
        }
        if trimmed.is_empty() {
            flush(&mut para);
        } else {
            para.push((i + 1, line));
        }
    }
    flush(&mut para);
    spans
}

fn spans_in_paragraph(lines: &[(usize, &str)]) -> Vec<Span> {
    // Join with '\n' and remember where each line starts.
    let mut text = String::new();
    let mut starts = Vec::new();
    for (n, line) in lines {
        starts.push((text.len(), *n));
        text.push_str(line);
        text.push('\n');
    }
    let line_at = |offset: usize| {
        starts
            .iter()
            .rev()
            .find(|(start, _)| *start <= offset)
            .map_or(0, |(_, n)| *n)
    };
    let mut spans = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let open = bytes[i..].iter().take_while(|b| **b == b'`').count();
        let body_start = i + open;
        // Find a closing run of exactly `open` backticks.
        let mut j = body_start;
        let mut close = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let run = bytes[j..].iter().take_while(|b| **b == b'`').count();
                if run == open {
                    close = Some(j);
                    break;
                }
                j += run;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => {
                let body = text[body_start..end].replace('\n', " ");
                spans.push(Span {
                    line: line_at(i),
                    text: body.trim().to_string(),
                });
                i = end + open;
            }
            None => i = body_start,
        }
    }
    spans
}

/// One thing a span names.
#[derive(Debug, PartialEq)]
enum Check {
    /// A path in this repository.
    Path(String),
    /// A `::` path: every segment but the last a module or a type, the last
    /// an item or a module.
    RustPath(Vec<String>),
    /// A bare identifier.
    Ident(String),
    /// A bare identifier used as a call, field or definition: must be an item.
    Item(String),
}

/// File extensions that make a bare word a path (`wire.rs`, `README.md`).
const PATH_EXTENSIONS: &[&str] = &[".rs", ".md", ".sh", ".toml", ".pkt", ".c", ".lock"];

/// Extensions of files from other projects (`packetdrill.h`, `.so`): such
/// names are neither repository paths nor field accesses.
const FOREIGN_EXTENSIONS: &[&str] = &["h", "so", "py", "txt", "json", "pcap"];

/// What `span` names, if anything worth checking.
fn classify(span: &str, defs: &Defs) -> Vec<Check> {
    let s = span.trim();
    if s.is_empty() {
        return Vec::new();
    }
    // Paths: a slash and no spaces, or a bare file name with a known
    // extension. Only paths into this repository's own top-level entries are
    // checked.
    let looks_like_path = !s.contains(' ')
        && !s.contains("::")
        && (s.contains('/') || PATH_EXTENSIONS.iter().any(|e| s.ends_with(e)))
        && s.chars().all(|c| is_ident_char(c) || "./-".contains(c))
        && !s.starts_with('/')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if looks_like_path {
        let first = s.trim_start_matches("./").split('/').next().unwrap_or("");
        let bare_file = !s.contains('/');
        if bare_file || defs.top.contains(first) {
            return vec![Check::Path(s.to_string())];
        }
        return Vec::new();
    }
    // Definitions: `fn drive`, `struct Runtime`, `enum Owner`.
    for kw in [
        "fn ", "struct ", "enum ", "trait ", "mod ", "type ", "const ",
    ] {
        if let Some(name) = s.strip_prefix(kw) {
            return if is_ident(name.trim()) {
                vec![Check::Item(name.trim().to_string())]
            } else {
                Vec::new()
            };
        }
    }
    let s = s.trim_start_matches('&').trim_start_matches("mut ");
    // A call: `name(args)`; the arguments are not checked (parameter names,
    // C prototypes, man-page sections).
    let (head, called) = match s.find('(') {
        Some(open) if s.ends_with(')') => (&s[..open], true),
        _ => (s, false),
    };
    // A struct literal: `StackConfig { addr, mtu, tcp: TcpConfig, seed }`.
    if let Some((name, body)) = head.split_once('{') {
        let (name, body) = (name.trim(), body.trim_end().strip_suffix('}'));
        let Some(body) = body else {
            return Vec::new();
        };
        if !is_ident(name) && !name.contains("::") {
            return Vec::new();
        }
        let mut checks = classify(name, defs);
        for field in body.split(',') {
            let mut parts = field.split(':');
            if let Some(f) = parts.next().map(str::trim).filter(|f| is_ident(f)) {
                checks.push(Check::Item(f.to_string()));
            }
            if let Some(ty) = parts.next().map(str::trim) {
                checks.extend(classify(ty, defs));
            }
        }
        return checks;
    }
    // A generic: `Mutex<Core>`.
    if let Some((outer, inner)) = head.split_once('<') {
        let Some(inner) = inner.strip_suffix('>') else {
            return Vec::new();
        };
        let mut checks = classify(outer, defs);
        for arg in inner.split(',') {
            checks.extend(classify(arg, defs));
        }
        return checks;
    }
    if head.contains(' ') || head.is_empty() {
        return Vec::new();
    }
    // `a::b::c`
    if head.contains("::") {
        let segs: Vec<&str> = head.split("::").collect();
        if !segs.iter().all(|s| is_ident(s)) {
            return Vec::new();
        }
        if ["std", "core", "alloc", "libc"].contains(&segs[0]) || ALLOWED.contains(&head) {
            return Vec::new();
        }
        let segs: Vec<String> = segs
            .into_iter()
            .skip_while(|s| *s == "utcp" || *s == "crate")
            .map(str::to_string)
            .collect();
        return vec![Check::RustPath(segs)];
    }
    // `cfg.addr`, `stack.poll_timeout()`: a variable's field or method; only
    // the last name is checked. RFC variables (`SND.UNA`, `TS.Recent`) are
    // not Rust.
    if head.contains('.') {
        let segs: Vec<&str> = head.split('.').collect();
        let external_file = segs.last().is_some_and(|e| FOREIGN_EXTENSIONS.contains(e));
        if !segs.iter().all(|s| is_ident(s)) || is_upper(segs[0]) || external_file {
            return Vec::new();
        }
        return segs
            .last()
            .map(|last| vec![Check::Item(last.to_string())])
            .unwrap_or_default();
    }
    if !is_ident(head) {
        return Vec::new();
    }
    if called {
        return vec![Check::Item(head.to_string())];
    }
    if defs.crates.contains(head) || ENV_VARS.contains(&head) {
        return Vec::new();
    }
    if is_upper(head) {
        let linux = LINUX_PREFIXES.iter().any(|p| head.starts_with(p));
        return if head.contains('_') && !linux {
            vec![Check::Item(head.to_string())]
        } else {
            Vec::new()
        };
    }
    if is_camel(head) || head.contains('_') {
        return vec![Check::Ident(head.to_string())];
    }
    Vec::new()
}

/// Why `check` fails, or `None` when what it names exists.
fn problem(check: &Check, defs: &Defs, doc_dir: &str) -> Option<String> {
    match check {
        Check::Path(p) => {
            let p = p.trim_start_matches("./");
            let bare = p.trim_end_matches('/');
            let found = defs.paths.contains(p)
                || defs.paths.contains(&format!("{doc_dir}{p}"))
                || defs
                    .paths
                    .iter()
                    .any(|have| have.ends_with(&format!("/{bare}")));
            (!found).then(|| "no such file".to_string())
        }
        Check::RustPath(segs) => {
            let (last, init) = segs.split_last()?;
            for seg in init {
                let ok = if is_camel(seg) {
                    defs.has_item(seg)
                } else {
                    defs.has_module(seg) || defs.has_item(seg)
                };
                if !ok {
                    return Some(format!("no module or type `{seg}`"));
                }
            }
            // `Type::member`: a member of that very type, when the scan
            // found the type's members.
            let ty = init.last().filter(|t| is_camel(t));
            if let Some(members) = ty.and_then(|t| defs.members.get(t)) {
                return (!members.contains(last))
                    .then(|| format!("`{}` has no member `{last}`", ty.map_or("", |t| t)));
            }
            (!defs.has_item(last) && !defs.has_module(last)).then(|| format!("no item `{last}`"))
        }
        Check::Ident(name) => {
            (!defs.has_item(name) && !defs.has_module(name) && !defs.labels.contains(name))
                .then(|| format!("no item `{name}`"))
        }
        Check::Item(name) => (!defs.has_item(name)).then(|| format!("no item `{name}`")),
    }
}

/// Every reference in `markdown` (the file `doc`, repository-relative) that
/// names something missing, as `doc:LINE: `ref` not found (why)`.
fn missing_refs(doc: &str, markdown: &str, defs: &Defs) -> Vec<String> {
    let doc_dir = doc.rfind('/').map_or("", |i| &doc[..=i]);
    let mut out = Vec::new();
    for span in code_spans(markdown) {
        for check in classify(&span.text, defs) {
            if let Some(why) = problem(&check, defs, doc_dir) {
                out.push(format!(
                    "{doc}:{}: `{}` not found ({why})",
                    span.line, span.text
                ));
            }
        }
    }
    out
}

/// README.md and docs/*.md, repository-relative, sorted.
fn documents(root: &Path) -> Vec<String> {
    let mut docs = vec!["README.md".to_string()];
    if let Ok(entries) = fs::read_dir(root.join("docs")) {
        let mut md: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .map(|n| format!("docs/{n}"))
            .collect();
        md.sort();
        docs.extend(md);
    }
    docs
}

#[test]
fn docs_cite_only_things_that_exist() {
    let root = root();
    let defs = Defs::scan(&root);
    let mut missing = Vec::new();
    let mut checked = 0;
    let verbose = std::env::var_os("DOCS_CHECK_VERBOSE").is_some();
    if verbose {
        let mut owners: Vec<_> = defs.members.iter().collect();
        owners.sort_by_key(|(ty, _)| *ty);
        for (ty, members) in owners {
            let mut m: Vec<_> = members.iter().collect();
            m.sort();
            println!("members of {ty}: {m:?}");
        }
    }
    for doc in documents(&root) {
        let text = fs::read_to_string(root.join(&doc)).expect("document is readable");
        if verbose {
            for span in code_spans(&text) {
                println!(
                    "{doc}:{}: `{}` -> {:?}",
                    span.line,
                    span.text,
                    classify(&span.text, &defs)
                );
            }
        }
        checked += code_spans(&text).len();
        missing.extend(missing_refs(&doc, &text, &defs));
    }
    for m in &missing {
        println!("{m}");
    }
    assert!(
        checked > 100,
        "only {checked} code spans found: extractor broken?"
    );
    assert!(
        missing.is_empty(),
        "{} stale reference(s) in the docs (listed above)",
        missing.len()
    );
}

#[test]
fn extractor_reports_missing_and_accepts_present() {
    let defs = Defs::scan(&root());
    let md = "# Title\n\
              \n\
              `Stack::handle_packet` and `Tcb::handle_segment(now, seg)` exist, as do\n\
              `flush_conn`, `fn drive`, `TcpConfig`, `tests/sim_matrix.rs` and\n\
              `StackConfig { addr, mtu }`. Words such as `server`, flags such as\n\
              `--stats`, `SYN-SENT`, `SND.UNA`, `10ms`, `IFF_NO_PI`, `RUST_LOG`,\n\
              `etherparse` and `Instant::now()` are not checked.\n\
              \n\
              Missing: `Stack::no_such_method_xyz`, `NoSuchType::new`, `fn gone_fn_xyz`,\n\
              `src/no_such_file.rs`, `Mutex<NoSuchCore>`, `not_a_field_xyz`, and a span\n\
              across lines: `Tcb::also_gone_xyz(now,\n\
              seg)`.\n\
              \n\
              A method of another type: `Stack::apply_syn_options` (it is `Tcb`'s).\n\
              \n\
              ```rust\n\
              let x = `Fenced::ignored_xyz`;\n\
              ```\n";
    let got = missing_refs("docs/example.md", md, &defs);
    let expected = [
        "docs/example.md:9: `Stack::no_such_method_xyz` not found (`Stack` has no member `no_such_method_xyz`)",
        "docs/example.md:9: `NoSuchType::new` not found (no module or type `NoSuchType`)",
        "docs/example.md:9: `fn gone_fn_xyz` not found (no item `gone_fn_xyz`)",
        "docs/example.md:10: `src/no_such_file.rs` not found (no such file)",
        "docs/example.md:10: `Mutex<NoSuchCore>` not found (no item `NoSuchCore`)",
        "docs/example.md:10: `not_a_field_xyz` not found (no item `not_a_field_xyz`)",
        "docs/example.md:11: `Tcb::also_gone_xyz(now, seg)` not found (`Tcb` has no member `also_gone_xyz`)",
        "docs/example.md:14: `Stack::apply_syn_options` not found (`Stack` has no member `apply_syn_options`)",
    ];
    assert_eq!(got, expected);
}

#[test]
fn code_spans_skip_fences_and_handle_double_backticks() {
    let md = "a `one` b ``two ` inner`` c\n\
              ~~~\n\
              `fenced`\n\
              ~~~\n\
              unclosed ` tick\n\
              \n\
              `three`\n";
    let spans = code_spans(md);
    let got: Vec<(usize, &str)> = spans.iter().map(|s| (s.line, s.text.as_str())).collect();
    assert_eq!(got, [(1, "one"), (1, "two ` inner"), (7, "three")]);
}
