//! The help is part of the interface: every command shows examples (and every example parses),
//! every flag with a fixed set of values lists them, the completion scripts and manual pages
//! generated from the same definitions are valid for their tools, and the README's command
//! reference is generated from the help (`SKYSYNC_UPDATE_README=1` rewrites it; this test fails
//! while it is stale).

use clap::{CommandFactory, Parser};
use skysync_cli::args::Cli;
use skysync_tests::cli::{Skysync, workspace_root};

/// Every visible command, as the words after `skysync` (`["sync", "status"]`), with its clap
/// definition.
fn commands() -> Vec<(Vec<String>, clap::Command)> {
    fn walk(path: Vec<String>, cmd: &clap::Command, out: &mut Vec<(Vec<String>, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            out.push((p.clone(), sub.clone()));
            walk(p, sub, out);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(Vec::new(), &cmd, &mut out);
    out
}

/// The `skysync …` lines of a help text's examples, continuation lines joined.
fn example_lines(help: &str) -> Vec<String> {
    let Some((_, examples)) = help.split_once("Examples:\n") else { return Vec::new() };
    let mut lines: Vec<String> = Vec::new();
    let mut continued = false;
    for line in examples.lines() {
        let line = line.trim();
        if continued {
            let last = lines.last_mut().expect("a line to continue");
            last.push(' ');
            last.push_str(line.trim_end_matches('\\'));
        } else if line.starts_with("skysync ") {
            lines.push(line.trim_end_matches('\\').to_owned());
        }
        continued = line.ends_with('\\') && (continued || line.starts_with("skysync "));
    }
    lines
}

/// Shell words up to the first unquoted comment, pipe, redirection or `||`.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            '#' | '|' | '>' | '<' if !in_word => break,
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_has_examples_that_parse_and_lists_the_values_of_its_flags() {
    let s = Skysync::start().await;
    let all = commands();
    assert!(all.len() > 20, "{} commands", all.len());
    for (path, cmd) in &all {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = s.run(&args).await;
        run.expect_code(0);
        let name = path.join(" ");
        let examples = example_lines(&run.stdout);
        assert!(!examples.is_empty(), "`skysync {name} --help` has no Examples section:\n{}", run.stdout);
        for example in &examples {
            let words = shell_words(example);
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!("an example of `skysync {name}` does not parse: {example}\n{e}");
            }
        }
        // Examples are never wrapped (a wrapped command line would not paste).
        let after = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        if let Some(line) = after.lines().find(|l| l.chars().count() > 100) {
            panic!("`skysync {name} --help` has a line over 100 characters (clap wraps it): {line}");
        }
        // Flags with a fixed set of values show each value (and what it does).
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && a.get_action().takes_values()) {
            for value in arg.get_possible_values().iter().filter(|v| !v.is_hide_set()) {
                assert!(
                    run.stdout.contains(value.get_name()),
                    "`skysync {name} --help` does not show the value {:?} of --{}:\n{}",
                    value.get_name(),
                    arg.get_id(),
                    run.stdout
                );
            }
        }
    }
    let sync = s.run(&["sync", "--help"]).await;
    assert!(sync.stdout.contains("Keep the row and set its deleted_at (the default)"), "{}", sync.stdout);
    assert!(sync.stdout.contains("One JSON record per line"), "{}", sync.stdout);
    // An unknown value is refused by the parser, naming the ones there are.
    let run = s.run(&["sync", "--deletes", "purge"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("[possible values: mark, remove]"), "{}", run.stderr);
}

#[test]
fn example_lines_are_read_like_a_shell_reads_them() {
    let help = "Usage\n\nExamples:\n  skysync a 'b c' # note\n  curl x\n  skysync d \\\n      --e f | jq\n";
    let lines = example_lines(help);
    assert_eq!(lines, ["skysync a 'b c' # note", "skysync d  --e f | jq"]);
    assert_eq!(shell_words(&lines[0]), ["skysync", "a", "b c"]);
    assert_eq!(shell_words(&lines[1]), ["skysync", "d", "--e", "f"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_scripts_for_every_shell_are_valid() {
    let s = Skysync::start().await;
    let dir = tempfile::tempdir().unwrap();
    for shell in clap_complete_shells() {
        let run = s.run(&["completions", &shell]).await;
        run.expect_code(0);
        assert!(run.stdout.contains("skysync") && run.stdout.contains("token-store"), "{shell}: {}", run.stdout);
        let file = dir.path().join(format!("skysync.{shell}"));
        std::fs::write(&file, &run.stdout).unwrap();
        // Each shell's own syntax check, where the shell is installed (bash always is).
        let check: Option<(&str, Vec<&str>)> = match shell.as_str() {
            "bash" => Some(("bash", vec!["-n"])),
            "zsh" => Some(("zsh", vec!["-n"])),
            "fish" => Some(("fish", vec!["--no-execute"])),
            _ => None,
        };
        let Some((program, flags)) = check else { continue };
        let status = std::process::Command::new(program).args(&flags).arg(&file).output();
        match status {
            Ok(out) => assert!(
                out.status.success(),
                "{program} rejects the {shell} completion: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && shell != "bash" => {
                eprintln!("{program} is not installed: the {shell} completion is only generated");
            }
            Err(e) => panic!("running {program}: {e}"),
        }
    }
}

/// The shells `skysync completions` takes, as clap names them.
fn clap_complete_shells() -> Vec<String> {
    let cmd = Cli::command();
    let completions = cmd.find_subcommand("completions").expect("the completions command");
    let shell = completions.get_arguments().find(|a| a.get_id() == "shell").expect("its shell argument");
    let names: Vec<String> = shell.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect();
    assert!(names.contains(&"bash".to_owned()) && names.contains(&"zsh".to_owned()), "{names:?}");
    names
}

/// groff's verdict on a page as `man` reads it (UTF-8 through preconv, `-k`): warnings included
/// (`-ww`), output discarded.
fn groff_problems(page: &std::path::Path) -> String {
    let out = std::process::Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .arg(page)
        .output()
        .expect("groff (Debian's groff-base) is installed");
    assert!(out.status.success(), "groff failed on {}", page.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_pages_render_without_warnings_and_cover_every_command() {
    let s = Skysync::start().await;
    let dir = tempfile::tempdir().unwrap();
    let run = s.run(&["man"]).await;
    run.expect_code(0);
    assert!(run.stdout.starts_with(".ie \\n(.g .ds Aq") || run.stdout.contains(".TH skysync 1"), "{}", run.stdout);
    let page = dir.path().join("stdout.1");
    std::fs::write(&page, &run.stdout).unwrap();
    assert_eq!(groff_problems(&page), "");

    let pages = dir.path().join("man1");
    let pages_arg = pages.display().to_string();
    s.run(&["man", "--dir", &pages_arg]).await.expect_code(0);
    for (path, _) in commands() {
        let page = pages.join(format!("skysync-{}.1", path.join("-")));
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.contains("Examples:"), "{} has no examples", page.display());
        assert_eq!(groff_problems(&page), "", "{}", page.display());
    }
    let sync = std::fs::read_to_string(pages.join("skysync-sync.1")).unwrap();
    assert!(sync.contains("remove") && sync.contains("deleted_at"), "the --deletes values: {sync}");
}

// ---------------------------------------------------------------------------------------------
// The README's command reference

const BEGIN: &str = "<!-- BEGIN command reference: generated from `skysync --help`; SKYSYNC_UPDATE_README=1 cargo test -p skysync-tests --test it cli_help:: rewrites it -->";
const END: &str = "<!-- END command reference -->";

/// The reference: each command's help (its own options; the global ones once, at the top), at a
/// fixed width.
fn reference() -> String {
    let help = |cmd: clap::Command| -> String {
        let mut cmd = cmd.term_width(100).max_term_width(100);
        let text = cmd.render_help().to_string();
        text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim_end().to_owned()
    };
    let mut top = Cli::command();
    top.build();
    let mut out = String::from("```text\n$ skysync --help\n");
    out += &help(top.clone());
    out += "\n```\n";
    for (path, cmd) in commands() {
        // Global options are listed once, above.
        let own = cmd.mut_args(|a| if a.is_global_set() { a.hide(true) } else { a });
        let name = path.join(" ");
        out += &format!("\n#### `skysync {name}`\n\n```text\n$ skysync {name} -h\n{}\n```\n", help(own));
    }
    out
}

#[test]
fn the_readme_command_reference_is_the_help() {
    let path = workspace_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(BEGIN).expect("README.md has the BEGIN marker of the command reference");
    let end = readme.find(END).expect("README.md has the END marker");
    let current = &readme[start + BEGIN.len()..end];
    let wanted = format!("\n{}", reference());
    if std::env::var_os("SKYSYNC_UPDATE_README").is_some() {
        let updated = format!("{}{BEGIN}{wanted}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        current == wanted,
        "README.md's command reference is stale; rewrite it with \
         SKYSYNC_UPDATE_README=1 cargo test -p skysync-tests --test it cli_help::the_readme"
    );
}

/// The cron and systemd examples call the binary where the install step puts it, by absolute
/// path (cron's PATH is /usr/bin:/bin; systemd wants absolute paths).
#[test]
fn scheduled_examples_use_the_installed_binary_by_absolute_path() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let install = "cargo install --locked --root /usr/local --path cli";
    assert!(readme.contains(install), "the install step puts the binary in /usr/local/bin");
    let mut blocks = Vec::new();
    let mut lang = None;
    let mut block = String::new();
    for line in readme.lines() {
        match (line.strip_prefix("```"), &lang) {
            (Some(l), None) => lang = Some(l.to_owned()),
            (Some(_), Some(l)) => {
                blocks.push((l.clone(), std::mem::take(&mut block)));
                lang = None;
            }
            (None, Some(_)) => block += &format!("{line}\n"),
            (None, None) => {}
        }
    }
    let cron = std::fs::read_to_string(root.join("contrib/cron/skysync.cron")).unwrap();
    let service = std::fs::read_to_string(root.join("contrib/systemd/skysync.service")).unwrap();
    blocks.push(("cron".into(), cron));
    blocks.push(("ini".into(), service));
    let subcommands: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
    let mut checked = 0;
    for (lang, text) in blocks.iter().filter(|(l, _)| l == "cron" || l == "ini") {
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            // An invocation: `skysync` as a word, followed by a subcommand or an option (not
            // `mail -s skysync …`, cron's user field, `User=skysync`, or a path ending in it).
            let words: Vec<&str> = line.split(|c: char| c.is_whitespace() || c == '=').collect();
            for pair in words.windows(2) {
                let invoked = pair[1].starts_with('-') || subcommands.iter().any(|c| c == pair[1]);
                if invoked && (pair[0] == "skysync" || pair[0].ends_with("/skysync")) {
                    assert_eq!(
                        pair[0], "/usr/local/bin/skysync",
                        "a {lang} example runs skysync by another path: {line}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 5, "the examples call /usr/local/bin/skysync ({checked} found)");
}

// ---------------------------------------------------------------------------------------------
// Flags only where they apply

/// The commands that read a profile (`--config`, `--profile`).
const PROFILE_COMMANDS: &[&str] = &[
    "login",
    "import",
    "export",
    "token",
    "status",
    "renew",
    "api",
    "logout",
    "config show",
    "config path",
    "config init",
    "config set",
    "sync",
    "sync status",
    "token-store rekey",
    "token-store migrate",
];

/// The commands that print a result for scripts (`--json`): those above and `token-store new-key`.
const JSON_COMMANDS: &[&str] = &[
    "login",
    "import",
    "export",
    "token",
    "status",
    "renew",
    "api",
    "logout",
    "config show",
    "config path",
    "config init",
    "config set",
    "sync",
    "sync status",
    "token-store new-key",
    "token-store rekey",
    "token-store migrate",
];

/// The commands each command-specific flag belongs to; every other command must not offer it.
const WHERE_FLAGS_APPLY: &[(&str, &[&str])] = &[
    ("--json", JSON_COMMANDS),
    ("--config", PROFILE_COMMANDS),
    ("--profile", PROFILE_COMMANDS),
    ("--ping-url", &["sync", "sync status", "status", "token", "renew", "api"]),
    ("--metrics-file", &["sync", "sync status", "status", "token", "renew", "api"]),
    ("--all-profiles", &["sync", "sync status", "status"]),
    ("--wide", &["sync", "sync status", "status", "config show"]),
];

/// Whether a help text lists `flag` among its options (a mention in a text or example is not an
/// offer).
fn offers(help: &str, flag: &str) -> bool {
    help.lines().map(str::trim_start).any(|line| {
        let option = line.split_once(", ").filter(|(short, _)| short.len() == 2).map_or(line, |(_, long)| long);
        option == flag || option.starts_with(&format!("{flag} ")) || option.starts_with(&format!("{flag}..."))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_help_offers_only_the_flags_its_command_uses() {
    let s = Skysync::start().await;
    let top = s.run(&["--help"]).await;
    top.expect_code(0);
    let mut wrong = Vec::new();
    for (flag, _) in WHERE_FLAGS_APPLY {
        if offers(&top.stdout, flag) {
            wrong.push(format!("`skysync --help` offers {flag}"));
        }
    }
    for (path, _) in commands() {
        let name = path.join(" ");
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = s.run(&args).await;
        help.expect_code(0);
        for (flag, commands) in WHERE_FLAGS_APPLY {
            let offered = offers(&help.stdout, flag);
            if offered != commands.contains(&name.as_str()) {
                wrong.push(format!("`skysync {name} --help` {} {flag}", if offered { "offers" } else { "lacks" }));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The manual pages and the completions are generated from the same definitions.
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().display().to_string();
    s.run(&["man", "--dir", &pages]).await.expect_code(0);
    let page = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert!(!page("skysync-token-store.1").contains("ping\\-url"), "token-store's page");
    assert!(!page("skysync.1").contains("all\\-profiles"), "skysync(1)'s global options");
    assert!(page("skysync-sync.1").contains("ping\\-url") && page("skysync-sync.1").contains("all\\-profiles"));
    let bash = s.run(&["completions", "bash"]).await;
    let opts_of = |command: &str| {
        let at = bash.stdout.find(&format!("{command})\n")).unwrap_or_else(|| panic!("{command} in the completion"));
        let rest = &bash.stdout[at..];
        let line = rest.lines().find(|l| l.trim_start().starts_with("opts=")).unwrap();
        line.to_owned()
    };
    assert!(
        !opts_of("        skysync__subcmd__login").contains("--ping-url"),
        "{}",
        opts_of("        skysync__subcmd__login")
    );
    assert!(
        opts_of("        skysync__subcmd__sync").contains("--ping-url"),
        "{}",
        opts_of("        skysync__subcmd__sync")
    );
    for flag in ["\\-\\-json", "\\-\\-config", "\\-\\-profile"] {
        assert!(!page("skysync-completions.1").contains(flag), "completions' page offers {flag}");
        assert!(!page("skysync-sim.1").contains(flag), "sim's page offers {flag}");
        assert!(page("skysync-login.1").contains(flag), "login's page lacks {flag}");
    }
    for flag in ["--json", "--config", "--profile"] {
        for command in ["sim", "views", "demo", "consent__subcmd__page", "completions", "man"] {
            let opts = opts_of(&format!("        skysync__subcmd__{command}"));
            assert!(!opts.contains(flag), "{command}'s completion offers {flag}: {opts}");
        }
        let opts = opts_of("        skysync__subcmd__config__subcmd__show");
        assert!(opts.contains(flag), "config show's completion lacks {flag}: {opts}");
    }
}

/// The command list of a "FLAG applies to a, b and c, not `x`" message, with a group's word
/// (`config`) standing for each of its commands.
fn listed_in(message: &str, flag: &str) -> Vec<String> {
    let list = message
        .split_once(&format!("{flag} applies to "))
        .and_then(|(_, rest)| rest.split_once(", not `"))
        .unwrap_or_else(|| panic!("no list in {message:?}"))
        .0;
    let all = commands();
    let mut names = Vec::new();
    for name in list.split(", ").flat_map(|part| part.split(" and ")) {
        let (_, cmd) = all.iter().find(|(path, _)| path.join(" ") == name).unwrap_or_else(|| panic!("{name}"));
        // `sync` runs by itself; `config` only names its subcommands.
        if !cmd.is_subcommand_required_set() {
            names.push(name.to_owned());
        }
        let members = all.iter().map(|(path, _)| path.join(" ")).filter(|c| c.starts_with(&format!("{name} ")));
        names.extend(members);
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_config_and_profile_before_the_command_are_taken_quietly_where_they_apply_and_refused_elsewhere() {
    let s = Skysync::start().await;
    let config = s.home().join("other.toml");
    std::fs::write(&config, "[profiles.acme]\nenvironment_id = \"p-acme\"\n").unwrap();
    let config = config.to_str().unwrap();

    // Before the command: the documented form of 0.1 scripts, with no warning.
    let before = s.run(&["--config", config, "--profile", "acme", "--json", "config", "show"]).await;
    let after = s.run(&["config", "show", "--config", config, "--profile", "acme", "--json"]).await;
    for run in [&before, &after] {
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        assert_eq!(v["profile"], "acme", "{}", run.stdout);
        assert_eq!(v["config_file"], config, "{}", run.stdout);
        assert_eq!(v["settings"]["environment_id"]["value"], "p-acme", "{}", run.stdout);
        assert!(!run.stderr.contains("deprecated"), "no warning: {}", run.stderr);
    }
    assert_eq!(before.stdout, after.stdout);
    let run = s.run(&["--json", "sync", "status"]).await;
    run.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert!(v["entities"].is_array(), "{}", run.stdout);
    assert_eq!(run.stderr, "");

    // The environment, under a flag before the command or after it.
    s.set_env("SKYSYNC_PROFILE", Some("acme"));
    s.set_env("SKYSYNC_CONFIG", Some(config));
    let path = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["config", "path", "--json"]);
        all.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    for (args, profile) in [(vec![], "acme"), (vec!["--profile", "two"], "two")] {
        let run = s.run(&path(&args).iter().map(String::as_str).collect::<Vec<_>>()).await;
        run.expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        assert_eq!((v["profile"].as_str(), v["config_file"].as_str()), (Some(profile), Some(config)), "{args:?}");
    }
    let run = s.run(&["config", "path", "--profile", "two", "--json"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("\"profile\":\"two\""),
        "the flag after the command over SKYSYNC_PROFILE: {}",
        run.stdout
    );
    // Where nothing reads them, the variables are no error.
    s.run(&["views", "--markdown"]).await.expect_code(0);
    s.set_env("SKYSYNC_PROFILE", None);
    s.set_env("SKYSYNC_CONFIG", None);

    // Before a command that does not read them: refused (exit 2), naming where they apply,
    // and nothing is done.
    let key = s.home().join("new.key");
    let key_arg = key.to_str().unwrap();
    let misplaced: [(&[&str], &str, &str); 5] = [
        (&["--json", "views", "gifts"], "--json", "views"),
        (&["--profile", "acme", "views"], "--profile", "views"),
        (&["--config", config, "completions", "bash"], "--config", "completions"),
        (&["--profile", "acme", "token-store", "new-key", key_arg], "--profile", "token-store new-key"),
        (&["--json", "man"], "--json", "man"),
    ];
    for (args, flag, command) in misplaced {
        let run = s.run(args).await;
        run.expect_code(2);
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("error: {flag} applies to ")), "{args:?}: {}", run.stderr);
        assert!(first.ends_with(&format!(", not `{command}`")), "{args:?}: {}", run.stderr);
        let wanted: Vec<String> = {
            let list = if flag == "--json" { JSON_COMMANDS } else { PROFILE_COMMANDS };
            let mut v: Vec<String> = list.iter().map(|c| c.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(listed_in(first, flag), wanted, "the message names the commands that take {flag}");
        if command == "man" || command == "completions" {
            assert!(!run.stdout.contains(".TH") && !run.stdout.contains("complete"), "{}", run.stdout);
        }
    }
    assert!(!key.exists(), "a refused command changes nothing");
    // The same flag given twice, before and after: one of them would be ignored.
    let run = s.run(&["--config", config, "config", "path", "--config", config]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--config is given twice"), "{}", run.stderr);
    let run = s.run(&["--profile", "acme", "sync", "--all-profiles"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--all-profiles and --profile exclude each other"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_place_before_the_command_still_works_with_a_warning_where_the_flag_applies() {
    let s = Skysync::start().await;
    let run = s.run(&["--all-profiles", "views"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--all-profiles applies to sync and status, not `views`"), "{}", run.stderr);
    let run = s.run(&["--ping-url", "http://127.0.0.1:9/x", "login", "--manual"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--ping-url applies to sync"), "{}", run.stderr);
    let run = s.run(&["--wide", "sync", "--list"]).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("`skysync --wide … sync` is deprecated: put --wide after the command"),
        "{}",
        run.stderr
    );
    let run = s.run(&["-q", "--wide", "sync", "--list"]).await;
    run.expect_code(0);
    assert_eq!(run.stderr, "", "-q: no warning");
}
