//! `weir check FILE`: every kind of config error is reported at its file, line and column with
//! the route it is in (exit status 1), every error of a file at once; a good file prints the
//! compiled route table (exit status 0).

use crate::support::*;

/// Runs `weir check` on `yaml`; asserts it fails; returns the file name and stderr.
fn check_fails(yaml: &str) -> (String, String) {
    let file = write_config("check.yaml", yaml);
    let name = file.to_str().unwrap().to_string();
    let out = run_weir(&["check", &name], &[]);
    assert_eq!(
        out.code, 1,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    (name, out.stderr)
}

/// Asserts that `stderr` has an error line starting `FILE:LINE:COL: route `ROUTE`: ` that
/// contains every piece of `message`, and returns that line.
fn expect_error<'a>(
    file: &str,
    stderr: &'a str,
    (line, col): (usize, usize),
    route: Option<&str>,
    message: &[&str],
) -> &'a str {
    let prefix = match route {
        Some(route) => format!("error: {file}:{line}:{col}: route `{route}`: "),
        None => format!("error: {file}:{line}:{col}: "),
    };
    let found = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no error line starting `{prefix}` in:\n{stderr}"));
    for piece in message {
        assert!(found.contains(piece), "`{piece}` missing from: {found}");
    }
    found
}

/// Asserts the summary line and that there are exactly `n` error lines.
fn expect_count(file: &str, stderr: &str, n: usize) {
    let errors = stderr.lines().filter(|l| l.starts_with("error: ")).count();
    assert_eq!(errors, n, "{stderr}");
    let summary = format!("{n} error{} in {file}", if n == 1 { "" } else { "s" });
    assert!(
        stderr.lines().any(|l| l == summary),
        "no `{summary}` in:\n{stderr}"
    );
}

#[test]
fn unknown_predicate_suggests_the_closest_name() {
    let (f, e) = check_fails(
        "gateway:\n  routes:\n  - id: r1\n    uri: http://127.0.0.1:9\n    predicates:\n    - Pth=/x\n",
    );
    expect_error(
        &f,
        &e,
        (6, 7),
        Some("r1"),
        &["unknown predicate `Pth`; did you mean `Path`?"],
    );
    expect_count(&f, &e, 1);
}

#[test]
fn unknown_filter() {
    let (f, e) = check_fails(
        "gateway:\n  routes:\n  - id: r1\n    uri: http://127.0.0.1:9\n    filters:\n    - StripPrefix=1\n    - AddRequestHeadr=X-A, b\n",
    );
    expect_error(
        &f,
        &e,
        (7, 7),
        Some("r1"),
        &["unknown filter `AddRequestHeadr`; did you mean `AddRequestHeader`?"],
    );
    expect_count(&f, &e, 1);
}

#[test]
fn invalid_regex_quotes_the_regex_error() {
    let (f, e) = check_fails(
        "gateway:\n  routes:\n  - id: re\n    uri: http://127.0.0.1:9\n    predicates:\n    - Header=X-Id, [a-\n    filters:\n    - RewritePath=/(?<x>a, /b\n",
    );
    expect_error(
        &f,
        &e,
        (6, 7),
        Some("re"),
        &[
            "`Header`",
            "regexp",
            "invalid regular expression `[a-`",
            "unclosed character class",
        ],
    );
    expect_error(
        &f,
        &e,
        (8, 7),
        Some("re"),
        &[
            "`RewritePath`",
            "invalid regular expression `/(?<x>a`",
            "unclosed group",
        ],
    );
    expect_count(&f, &e, 2);
}

#[test]
fn wrong_argument_count_lists_the_arguments() {
    let (f, e) = check_fails(
        "gateway:\n  routes:\n  - id: args\n    uri: http://127.0.0.1:9\n    predicates:\n    - Header=X-A, b, c\n    filters:\n    - SetStatus=401, 402\n",
    );
    expect_error(
        &f,
        &e,
        (6, 7),
        Some("args"),
        &["`Header`: takes at most 2 arguments (header, regexp), but 3 were given"],
    );
    expect_error(
        &f,
        &e,
        (8, 7),
        Some("args"),
        &["`SetStatus`: takes at most 1 argument (status), but 2 were given"],
    );
}

#[test]
fn unknown_argument_name_in_expanded_form() {
    let (f, e) = check_fails(
        r"gateway:
  routes:
  - id: expanded
    uri: http://127.0.0.1:9
    predicates:
    - name: Header
      args:
        header: X-Id
        regex: \d+
    filters:
    - name: AddRequestHeader
      args:
        nmae: X-A
        value: b
",
    );
    // An optional argument misspelled.
    expect_error(
        &f,
        &e,
        (6, 7),
        Some("expanded"),
        &[
            "argument `regex`",
            "`Header`: argument `regex`: no such argument; did you mean `regexp`?",
            "header, regexp",
        ],
    );
    // A required one misspelled: the message names what was written, not only what is missing.
    expect_error(
        &f,
        &e,
        (11, 7),
        Some("expanded"),
        &["argument `nmae`", "did you mean `name`?"],
    );
    expect_count(&f, &e, 2);
}

#[test]
fn misspelled_route_key_suggests_the_right_one() {
    let (f, e) = check_fails(
        "gateway:\n  routes:\n  - id: typo\n    uri: http://127.0.0.1:9\n    predicate:\n    - Path=/x\n",
    );
    expect_error(
        &f,
        &e,
        (5, 5),
        Some("typo"),
        &["unknown route key `predicate`; did you mean `predicates`?"],
    );
    expect_count(&f, &e, 1);
}

#[test]
fn missing_uri() {
    let (f, e) =
        check_fails("gateway:\n  routes:\n  - id: nowhere\n    predicates:\n    - Path=/x\n");
    expect_error(&f, &e, (3, 5), Some("nowhere"), &["the route has no `uri`"]);
    expect_count(&f, &e, 1);
}

#[test]
fn duplicate_id() {
    let (f, e) = check_fails(
        "gateway:\n  routes:\n  - id: twice\n    uri: http://127.0.0.1:9\n  - id: twice\n    uri: http://127.0.0.1:9\n",
    );
    expect_error(
        &f,
        &e,
        (5, 9),
        Some("twice"),
        &["route id `twice` is used by an earlier route"],
    );
    expect_count(&f, &e, 1);
}

#[test]
fn missing_placeholder_names_the_variable() {
    let (f, e) =
        check_fails("gateway:\n  routes:\n  - id: env\n    uri: http://${WEIR_E2E_SURELY_UNSET}\n");
    expect_error(
        &f,
        &e,
        (4, 10),
        Some("env"),
        &["environment variable `WEIR_E2E_SURELY_UNSET` is not set"],
    );
    expect_count(&f, &e, 1);
}

#[test]
fn invalid_yaml() {
    let (f, e) = check_fails("gateway:\n  routes:\n  - id: x\n    uri: [unclosed\n    order: 1\n");
    let line = e
        .lines()
        .find(|l| l.starts_with(&format!("error: {f}:")))
        .unwrap_or_else(|| panic!("{e}"));
    assert!(line.contains("invalid YAML"), "{line}");
    let pos: Vec<usize> = line[format!("error: {f}:").len()..]
        .split(':')
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(pos[0] >= 4 && pos[1] >= 1, "{line}");
    expect_count(&f, &e, 1);
}

#[test]
fn template_variable_must_be_captured() {
    let (f, e) = check_fails(
        "gateway:\n  routes:\n  - id: tpl\n    uri: http://127.0.0.1:9\n    predicates:\n    - Path=/a/{seg}\n    filters:\n    - SetPath=/b/{sgment}\n",
    );
    expect_error(
        &f,
        &e,
        (8, 7),
        Some("tpl"),
        &["`{sgment}` is not a captured variable", "capture: seg"],
    );
    expect_count(&f, &e, 1);
}

#[test]
fn every_error_in_a_file_is_printed() {
    let (f, e) = check_fails(
        r"gateway:
  routes:
  - id: one
    uri: http://127.0.0.1:9
    predicates:
    - Pth=/x
  - id: two
    predicates:
    - Path=/y
  - id: three
    uri: http://127.0.0.1:9
    filters:
    - SetPath=/{nope}
    - StripPrefix=x
  - id: one
    uri: http://${WEIR_E2E_SURELY_UNSET}
",
    );
    expect_error(&f, &e, (6, 7), Some("one"), &["unknown predicate `Pth`"]);
    expect_error(&f, &e, (7, 5), Some("two"), &["the route has no `uri`"]);
    expect_error(
        &f,
        &e,
        (13, 7),
        Some("three"),
        &["`{nope}` is not a captured variable"],
    );
    expect_error(&f, &e, (14, 7), Some("three"), &["StripPrefix", "`x`"]);
    expect_error(
        &f,
        &e,
        (15, 9),
        Some("one"),
        &["route id `one` is used by an earlier route"],
    );
    expect_error(
        &f,
        &e,
        (16, 10),
        Some("one"),
        &["`WEIR_E2E_SURELY_UNSET` is not set"],
    );
    expect_count(&f, &e, 6);
    // In file order.
    let lines: Vec<usize> = e
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("error: {f}:")))
        .map(|rest| rest.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn a_bad_default_filter_is_reported_once_even_without_routes() {
    // With routes: once, not once per route.
    let (f, e) = check_fails(
        "gateway:\n  default-filters:\n  - AddRequestHeadr=X-A, b\n  routes:\n  - id: r1\n    uri: http://127.0.0.1:9\n  - id: r2\n    uri: http://127.0.0.1:9\n  - id: r3\n    uri: no://op\n",
    );
    expect_error(
        &f,
        &e,
        (3, 5),
        Some("r1"),
        &["unknown filter `AddRequestHeadr`"],
    );
    expect_count(&f, &e, 1);
    // Without routes, still checked.
    let (f, e) = check_fails(
        "gateway:\n  default-filters:\n  - AddRequestHeadr=X-A, b\n  - StripPrefix=x\n",
    );
    expect_error(&f, &e, (3, 5), None, &["unknown filter `AddRequestHeadr`"]);
    expect_error(&f, &e, (4, 5), None, &["`StripPrefix`", "`x`"]);
    expect_count(&f, &e, 2);
}

#[test]
fn the_repository_example_checks_and_prints_the_route_table() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/routes.example.yaml");
    let out = run_weir(&["check", file], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.stdout;
    assert!(
        text.starts_with(&format!(
            "{file}: 12 routes (listen 0.0.0.0:8080, admin 127.0.0.1:9901)"
        )),
        "{text}"
    );
    assert!(
        text.contains("[order 0] function -> http://127.0.0.1:8081\n"),
        "{text}"
    );
    assert!(
        text.contains("  predicate: Path(patterns=[/function/{name:[-a-zA-Z_0-9.]+}, /function/{name:[-a-zA-Z_0-9.]+}/**])\n"),
        "{text}"
    );
    assert!(
        text.contains("[order 0] healthz -> http://127.0.0.1:8081\n"),
        "{text}"
    );
    assert!(
        text.contains("[order 0] system-alert -> no://op\n"),
        "{text}"
    );
    assert!(
        text.contains("[order 0] async-function -> queue:\n"),
        "{text}"
    );
    assert!(
        text.contains("  filter:    AllowMethods(methods=GET)\n"),
        "{text}"
    );
}

#[test]
fn check_prints_order_id_uri_predicates_and_resolved_filters() {
    let file = write_config(
        "good.yaml",
        r"
server:
  listen: 127.0.0.1:18080
gateway:
  default-filters:
  - AddResponseHeader=X-Gateway, weir
  routes:
  - id: second
    uri: http://127.0.0.1:9/ignored
    predicates:
    - Path=/b/{seg}
    filters:
    - SetPath=/x/{seg}
  - id: first
    uri: forward:/b/1
    order: -5
    predicates:
    - Host=**.example.org
    filters:
    - AddRequestHeader=X-Env, ${WEIR_E2E_VALUE}
  - id: catch-all
    uri: no://op
    order: 9
",
    );
    let name = file.to_str().unwrap();
    let out = run_weir(&["check", name], &[("WEIR_E2E_VALUE", "resolved value")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The ignored uri path is a warning, not an error.
    assert!(out.stdout.contains("warning: "), "{}", out.stdout);
    let table = &out.stdout[out.stdout.find(&format!("{name}: 3 routes")).unwrap()..];
    assert_eq!(
        table,
        format!(
            "{name}: 3 routes (listen 127.0.0.1:18080, admin 127.0.0.1:9901)

[order -5] first -> forward:/b/1
  predicate: Host(patterns=**.example.org)
  filter:    AddResponseHeader(name=X-Gateway, value=weir)
  filter:    AddRequestHeader(name=X-Env, value=resolved value)

[order 0] second -> http://127.0.0.1:9
  predicate: Path(patterns=/b/{{seg}})
  filter:    AddResponseHeader(name=X-Gateway, value=weir)
  filter:    SetPath(template=/x/{{seg}})

[order 9] catch-all -> no://op
  predicate: (none: matches every request)
  filter:    AddResponseHeader(name=X-Gateway, value=weir)
"
        )
    );
}
