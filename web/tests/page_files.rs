//! Static checks of the consent page's files (web/www): the hygiene rules that a browser run
//! would only catch by luck. Server text is only ever set as text, the page loads nothing from
//! elsewhere and works from any directory, every field has a label, and the form cannot be
//! submitted natively (a secret in a URL). What the page does (Authorize enabled once the wasm
//! loads, the code leaving the address bar even when the wasm cannot load, localStorage holding
//! only the remembered non-secret fields) is checked as behaviour in Chromium by
//! `tests/it/browser.rs`, not by matching statements of app.js here.
#![cfg(not(target_arch = "wasm32"))]

const INDEX: &str = include_str!("../www/index.html");
const APP: &str = include_str!("../www/app.js");
const STYLE: &str = include_str!("../www/style.css");

/// The attribute text of every `<name ...>` tag.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        let end = after.find('>').expect("tag is closed");
        if after.starts_with([' ', '>', '\n']) {
            found.push(&after[..end]);
        }
        rest = &after[end..];
    }
    found
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

fn csp() -> &'static str {
    let meta = tags(INDEX, "meta")
        .into_iter()
        .find(|t| attr(t, "http-equiv") == Some("Content-Security-Policy"))
        .expect("a CSP meta tag");
    attr(meta, "content").expect("CSP content")
}

#[test]
fn server_text_is_only_ever_set_as_text() {
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "srcdoc"] {
        assert!(!APP.contains(sink), "app.js uses {sink}");
    }
}

#[test]
fn the_policy_is_restrictive_and_the_page_obeys_it() {
    let csp = csp();
    for directive in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval';",
        "style-src 'self';",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'") && !csp.contains(" *;"), "{csp}");
    // What the policy forbids must not be needed: no inline scripts, styles or handlers.
    for script in tags(INDEX, "script") {
        assert!(attr(script, "src").is_some(), "inline <script{script}>");
    }
    assert!(!INDEX.contains(" style="), "an inline style attribute");
    assert!(!INDEX.contains("<style"), "an inline <style>");
    for handler in [" onclick=", " onload=", " onsubmit=", " onerror=", " oninput=", " onchange="] {
        assert!(!INDEX.contains(handler), "an inline handler {handler}");
    }
    assert!(!APP.contains(".style."), "app.js sets inline styles");
}

#[test]
fn everything_is_loaded_relative_to_the_page_so_any_directory_works() {
    let mut refs: Vec<&str> = tags(INDEX, "script").iter().filter_map(|t| attr(t, "src")).collect();
    refs.extend(tags(INDEX, "link").iter().filter_map(|t| attr(t, "href")));
    for line in APP.lines().filter(|l| l.trim_start().starts_with("import ")) {
        refs.push(line.split('"').nth(1).expect("import specifier"));
    }
    assert!(refs.len() >= 3, "{refs:?}");
    for r in refs {
        assert!(
            !r.starts_with('/') && !r.contains(':'),
            "{r} is not relative to the page (subpaths, no external assets)"
        );
    }
    assert!(!STYLE.contains("url(") && !STYLE.contains("@import"), "style.css loads something");
}

#[test]
fn every_field_has_a_label_and_none_is_submitted_natively() {
    let inputs = tags(INDEX, "input");
    assert!(inputs.len() >= 9, "{inputs:?}");
    for input in inputs {
        let id = attr(input, "id").unwrap_or_else(|| panic!("<input{input}> has no id"));
        let labelled = INDEX.contains(&format!("<label for=\"{id}\""))
            || INDEX.contains(&format!("<label class=\"check\"><input id=\"{id}\""));
        assert!(labelled, "#{id} has no label");
        // Without a name, a native submission (before the script runs, or if it fails) carries
        // nothing, so a secret can never end up in the query string of a GET.
        assert!(attr(input, "name").is_none(), "#{id} has a name attribute");
        for described in attr(input, "aria-describedby").unwrap_or_default().split_whitespace() {
            assert!(INDEX.contains(&format!("id=\"{described}\"")), "#{id} is described by a missing #{described}");
        }
    }
    let authorize = tags(INDEX, "button").into_iter().find(|t| attr(t, "id") == Some("authorize")).unwrap();
    assert!(authorize.contains(" disabled"), "Authorize must stay disabled until the wasm is loaded");
}
