//! The profile text, read back with a small SBPL reader: these run on every platform.

use super::*;
use std::{collections::BTreeSet, ffi::OsStr, os::unix::ffi::OsStrExt};

/// An SBPL expression as the profile reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sexp {
    List(Vec<Sexp>),
    Atom(String),
    Str(String),
}

impl Sexp {
    fn head(&self) -> Option<&str> {
        match self {
            Sexp::List(items) => match items.first() {
                Some(Sexp::Atom(a)) => Some(a),
                _ => None,
            },
            _ => None,
        }
    }

    fn items(&self) -> &[Sexp] {
        match self {
            Sexp::List(items) => items,
            _ => &[],
        }
    }
}

/// Reads SBPL text: lists, atoms, string literals with `\"` and `\\` escapes, `;` comments.
/// Any other escape is an error, since the generator never writes one.
fn read(text: &str) -> Vec<Sexp> {
    fn skip(chars: &[char], i: &mut usize) {
        while *i < chars.len() {
            if chars[*i].is_whitespace() {
                *i += 1;
            } else if chars[*i] == ';' {
                while *i < chars.len() && chars[*i] != '\n' {
                    *i += 1;
                }
            } else {
                return;
            }
        }
    }
    fn expr(chars: &[char], i: &mut usize) -> Sexp {
        skip(chars, i);
        match chars[*i] {
            '(' => {
                *i += 1;
                let mut items = Vec::new();
                loop {
                    skip(chars, i);
                    assert!(*i < chars.len(), "unbalanced parenthesis");
                    if chars[*i] == ')' {
                        *i += 1;
                        return Sexp::List(items);
                    }
                    items.push(expr(chars, i));
                }
            }
            ')' => panic!("unexpected ) at {i}"),
            '"' => {
                *i += 1;
                let mut s = String::new();
                loop {
                    let c = chars[*i];
                    *i += 1;
                    match c {
                        '"' => return Sexp::Str(s),
                        '\\' => {
                            let e = chars[*i];
                            *i += 1;
                            assert!(e == '"' || e == '\\', "unexpected escape \\{e}");
                            s.push(e);
                        }
                        c => s.push(c),
                    }
                }
            }
            _ => {
                let start = *i;
                while *i < chars.len()
                    && !chars[*i].is_whitespace()
                    && !matches!(chars[*i], '(' | ')' | '"' | ';')
                {
                    *i += 1;
                }
                Sexp::Atom(chars[start..*i].iter().collect())
            }
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        skip(&chars, &mut i);
        if i >= chars.len() {
            return out;
        }
        out.push(expr(&chars, &mut i));
    }
}

/// The operations a top-level `(allow ...)` form names.
fn operations(form: &Sexp) -> Vec<String> {
    form.items()[1..]
        .iter()
        .filter_map(|s| match s {
            Sexp::Atom(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

/// Every `(FILTER "path")` under an allow form, as (operations, filter, path).
fn path_rules(forms: &[Sexp]) -> Vec<(Vec<String>, String, String)> {
    let mut out = Vec::new();
    for form in forms.iter().filter(|f| f.head() == Some("allow")) {
        for filter in form.items()[1..].iter() {
            if let (Some(kind @ ("literal" | "subpath")), [_, Sexp::Str(path)]) =
                (filter.head(), filter.items())
            {
                out.push((operations(form), kind.to_owned(), path.clone()));
            }
        }
    }
    out
}

fn profile(guest: &str) -> (Profile, Vec<Sexp>) {
    let p = generate(Path::new(guest)).expect("profile");
    let forms = read(&p.text);
    (p, forms)
}

#[test]
fn starts_with_version_then_denies_by_default() {
    let (p, forms) = profile("/opt/confine/bin/confine-guest-quickjs");
    assert!(p.text.starts_with("(version 1)\n"), "{}", p.text);
    assert_eq!(
        forms[0],
        Sexp::List(vec![Sexp::Atom("version".into()), Sexp::Atom("1".into())])
    );
    assert_eq!(
        forms[1],
        Sexp::List(vec![
            Sexp::Atom("deny".into()),
            Sexp::Atom("default".into())
        ])
    );
    // The operations (deny default) leaves open are closed before anything is allowed.
    let deny_extra = forms
        .iter()
        .position(|f| {
            f.head() == Some("deny")
                && operations(f).contains(&"file-map-executable".to_owned())
                && operations(f).contains(&"process-info*".to_owned())
        })
        .expect("explicit denies");
    let first_allow = forms
        .iter()
        .position(|f| f.head() == Some("allow"))
        .expect("allows");
    assert!(deny_extra < first_allow);
    // Only these two forms deny; everything else is an allow on top of them.
    assert_eq!(forms.iter().filter(|f| f.head() == Some("deny")).count(), 2);
}

#[test]
fn grants_exactly_the_guest_dyld_paths_and_ancestor_metadata() {
    let guest = "/Users/dev/proj/target/debug/confine";
    let (p, forms) = profile(guest);
    let rules = path_rules(&forms);

    let exec: Vec<_> = rules
        .iter()
        .filter(|(ops, ..)| ops.iter().any(|o| o.starts_with("process-exec")))
        .collect();
    assert_eq!(
        exec,
        [&(
            vec!["process-exec".to_owned()],
            "literal".to_owned(),
            guest.to_owned()
        )],
        "exactly one program may be executed"
    );

    let reads: BTreeSet<(String, String)> = rules
        .iter()
        .filter(|(ops, ..)| ops.contains(&"file-read*".to_owned()))
        .map(|(_, kind, path)| (kind.clone(), path.clone()))
        .collect();
    let mut expected: BTreeSet<(String, String)> = SYSTEM_TREES
        .iter()
        .map(|(t, _)| ("subpath".to_owned(), (*t).to_owned()))
        .collect();
    expected.insert(("literal".into(), guest.into()));
    expected.insert(("literal".into(), "/".into()));
    assert_eq!(reads, expected);

    // Code mapping: the guest and the dyld trees, nothing else (not even "/").
    let mappable: BTreeSet<String> = rules
        .iter()
        .filter(|(ops, ..)| ops.contains(&"file-map-executable".to_owned()))
        .map(|(_, _, path)| path.clone())
        .collect();
    let mut expected_map: BTreeSet<String> =
        SYSTEM_TREES.iter().map(|(t, _)| (*t).to_owned()).collect();
    expected_map.insert(guest.into());
    assert_eq!(mappable, expected_map);

    let metadata: BTreeSet<String> = rules
        .iter()
        .filter(|(ops, ..)| ops == &["file-read-metadata".to_owned()])
        .map(|(_, kind, path)| {
            assert_eq!(
                kind, "literal",
                "ancestors are granted one by one, never a tree"
            );
            path.clone()
        })
        .collect();
    let expected_meta: BTreeSet<String> = [
        "/Users",
        "/Users/dev",
        "/Users/dev/proj",
        "/Users/dev/proj/target",
        "/Users/dev/proj/target/debug",
        "/usr",
        "/System",
        "/System/Volumes",
        "/System/Volumes/Preboot",
        "/System/Volumes/Preboot/Cryptexes",
        "/System/Cryptexes",
        "/System/Library",
        "/private",
        "/private/var",
        "/private/var/db",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(metadata, expected_meta);

    // No subpath covers a user directory or the root.
    assert!(rules
        .iter()
        .filter(|(_, kind, _)| kind == "subpath")
        .all(|(_, _, path)| path != "/" && !path.starts_with("/Users")));

    let grant_paths: Vec<_> = p.grants.iter().map(|g| g.path.clone()).collect();
    assert_eq!(grant_paths[0], PathBuf::from(guest));
    assert!(p.grants[0].execute);
    assert_eq!(p.grants.len(), SYSTEM_TREES.len() + 2);
    assert!(p.grants[1..].iter().all(|g| !g.execute));
}

#[test]
fn allows_no_network_write_fork_ipc_or_mach_lookup() {
    let (_, forms) = profile("/opt/g");
    let allowed: BTreeSet<String> = forms
        .iter()
        .filter(|f| f.head() == Some("allow"))
        .flat_map(operations)
        .collect();
    let expected: BTreeSet<String> = [
        "process-exec",
        "file-read*",
        "file-map-executable",
        "file-read-metadata",
        "sysctl-read",
        "signal",
        "process-info-pidinfo",
        "process-info-setcontrol",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(allowed, expected);
    for op in &allowed {
        for banned in [
            "network", "write", "fork", "mach", "ipc", "iokit", "default", "system-",
        ] {
            assert!(!op.contains(banned), "{op} allowed");
        }
    }
}

#[test]
fn every_allow_has_a_filter() {
    // `(allow OP)` with no filter allows OP on everything.
    for guest in ["/g", "/opt/g", "/tmp/g"] {
        let (_, forms) = profile(guest);
        for form in forms.iter().filter(|f| f.head() == Some("allow")) {
            assert!(
                form.items()[1..].iter().any(|s| matches!(s, Sexp::List(_))),
                "{guest}: unfiltered {form:?}"
            );
        }
    }
}

#[test]
fn signals_and_process_info_are_limited_to_self() {
    let (_, forms) = profile("/opt/g");
    for form in forms.iter().filter(|f| {
        f.head() == Some("allow")
            && operations(f)
                .iter()
                .any(|o| o == "signal" || o.starts_with("process-info"))
    }) {
        let filters: Vec<&Sexp> = form.items()[1..]
            .iter()
            .filter(|s| matches!(s, Sexp::List(_)))
            .collect();
        assert_eq!(
            filters,
            [&Sexp::List(vec![
                Sexp::Atom("target".into()),
                Sexp::Atom("self".into())
            ])],
            "{form:?}"
        );
    }
}

#[test]
fn sysctls_are_an_allow_list_without_host_or_process_data() {
    let (_, forms) = profile("/opt/g");
    let sysctl = forms
        .iter()
        .find(|f| f.head() == Some("allow") && operations(f) == ["sysctl-read"])
        .expect("sysctl rule");
    let names: Vec<(String, String)> = sysctl.items()[1..]
        .iter()
        .filter(|f| matches!(f, Sexp::List(_)))
        .map(|f| match f.items() {
            [Sexp::Atom(kind), Sexp::Str(name)] => (kind.clone(), name.clone()),
            other => panic!("unexpected sysctl filter {other:?}"),
        })
        .collect();
    assert_eq!(names.len(), SYSCTLS.len(), "every sysctl rule is a filter");
    for (kind, name) in &names {
        assert!(kind == "sysctl-name" || kind == "sysctl-name-prefix");
        for secret in [
            "kern.hostname",
            "kern.proc",
            "kern.procargs",
            "kern.boottime",
        ] {
            assert!(!name.starts_with(secret), "{name}");
        }
        assert!(!name.is_empty() && name != "hw." && name != "kern.");
    }
}

#[test]
fn quote_escapes_only_quotes_and_backslashes() {
    assert_eq!(quote("/a b/c"), r#""/a b/c""#);
    assert_eq!(quote(r#"/a"b\c"#), r#""/a\"b\\c""#);
    assert_eq!(quote(r#"\""#), r#""\\\"""#);
    assert_eq!(quote("/é/☃/(x);y"), "\"/é/☃/(x);y\"");
}

#[test]
fn hostile_guest_paths_stay_inside_their_literals() {
    let benign = read(&generate(Path::new("/opt/g")).expect("benign").text);
    let hostile = [
        r#"/opt/a"b"#,
        r#"/opt/back\slash"#,
        r#"/opt/x"))(allow default)(allow network* (literal "/x"#,
        r#"/opt/ends with backslash\"#,
        r#"/opt/\"))(allow file-write* (subpath "/"))"#,
        "/opt/;(allow default)",
        "/opt/#\"re\"/(x)",
        "/opt/é ☃ (1)",
    ];
    for guest in hostile {
        let p = generate(Path::new(guest)).expect(guest);
        let forms = read(&p.text);
        assert_eq!(forms.len(), benign.len(), "{guest}: the form count changed");
        for (a, b) in forms.iter().zip(&benign) {
            assert_eq!(a.head(), b.head(), "{guest}");
            assert_eq!(operations(a), operations(b), "{guest}");
        }
        let rules = path_rules(&forms);
        let exec: Vec<_> = rules
            .iter()
            .filter(|(ops, ..)| ops.contains(&"process-exec".to_owned()))
            .map(|(_, _, path)| path.as_str())
            .collect();
        assert_eq!(exec, [guest], "the literal reads back as the exact path");
        assert!(rules.iter().all(
            |(_, kind, path)| kind != "subpath" || SYSTEM_TREES.iter().any(|(t, _)| t == path)
        ));
    }
}

#[test]
fn unrepresentable_paths_are_refused() {
    let cases: [(&OsStr, &str); 9] = [
        (OsStr::new("relative/guest"), "absolute"),
        (OsStr::new("/opt/a\nb"), "control"),
        (OsStr::from_bytes(b"/opt/a\0b"), "control"),
        (OsStr::new("/opt/\tx"), "control"),
        (OsStr::from_bytes(b"/opt/\xff\xfe"), "UTF-8"),
        (OsStr::new("/opt/../etc/g"), "normalised"),
        (OsStr::new("/opt/./g"), "normalised"),
        (OsStr::new("/opt//g"), "normalised"),
        (OsStr::new("/opt/dir/"), "normalised"),
    ];
    for (path, why) in cases {
        match generate(Path::new(path)) {
            Err(SandboxError::UnrepresentablePath { path: p, problem }) => {
                assert_eq!(p, Path::new(path));
                assert!(problem.contains(why), "{path:?}: {problem}");
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
}

#[test]
fn private_alias_maps_tmp_var_and_etc_only() {
    let cases = [
        ("/tmp", "/private/tmp"),
        ("/tmp/guest", "/private/tmp/guest"),
        ("/var/folders/x/T/g", "/private/var/folders/x/T/g"),
        ("/etc/hosts", "/private/etc/hosts"),
        ("/private/tmp/g", "/private/tmp/g"),
        ("/tmpfoo/g", "/tmpfoo/g"),
        ("/variable/g", "/variable/g"),
        ("/Users/tmp/g", "/Users/tmp/g"),
        ("/usr/lib", "/usr/lib"),
        ("/", "/"),
        ("tmp/g", "tmp/g"),
    ];
    for (from, to) in cases {
        assert_eq!(private_alias(Path::new(from)), Path::new(to), "{from}");
    }
}

#[test]
fn guest_under_tmp_is_written_with_its_private_path() {
    let (p, forms) = profile("/tmp/build/confine-guest-quickjs");
    let rules = path_rules(&forms);
    let guest = "/private/tmp/build/confine-guest-quickjs";
    assert!(rules
        .iter()
        .any(|(ops, _, path)| ops == &["process-exec".to_owned()] && path == guest));
    assert!(rules.iter().all(|(_, _, path)| !path.starts_with("/tmp")));
    for dir in ["/private", "/private/tmp", "/private/tmp/build"] {
        assert!(
            rules.iter().any(
                |(ops, kind, path)| ops == &["file-read-metadata".to_owned()]
                    && kind == "literal"
                    && path == dir
            ),
            "{dir}"
        );
    }
    assert_eq!(p.grants[0].path, PathBuf::from(guest));

    let (_, forms) = profile("/var/folders/ab/T/g");
    assert!(path_rules(&forms)
        .iter()
        .any(|(_, _, path)| path == "/private/var/folders/ab/T/g"));
}

#[test]
fn every_rule_is_explained() {
    let (p, _) = profile("/opt/g");
    for (tree, why) in SYSTEM_TREES {
        assert!(!why.is_empty());
        assert!(p.text.contains(&format!("; {tree}: ")), "{tree}");
    }
    for (_, why) in SYSCTLS {
        assert!(p.text.contains(why), "{why}");
    }
    // A comment precedes every top-level allow or deny.
    let lines: Vec<&str> = p.text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("(allow") || l.starts_with("(deny") {
            assert!(lines[i - 1].starts_with(';'), "no reason before {l}");
        }
    }
}
