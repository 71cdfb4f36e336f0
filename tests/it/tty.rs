//! What `skysync sync` prints on a terminal versus into a pipe, black-box under a real
//! pseudo-terminal: progress bars (with each entity's final "done" line) and pretty `--json` on a
//! terminal; no bars, no escape sequences and one-line JSON when piped; tables cut to the
//! terminal's width, and whole with `--wide`.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::Stdio;

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use skysync_cli::sim::SimConfig;
use skysync_tests::cli::Skysync;

/// A pseudo-terminal: the controlling side we read, and the terminal side the child writes to.
fn open_pty() -> (std::fs::File, std::fs::File) {
    let master: OwnedFd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("pts path"))
        .expect("open the terminal side");
    (std::fs::File::from(master), slave)
}

/// Runs skysync with stdout and stderr on a pseudo-terminal; returns its exit code and everything
/// it wrote there (the terminal turns `\n` into `\r\n`).
async fn run_on_terminal(s: &Skysync, args: &[&str]) -> (i32, String) {
    run_on_terminal_sized(s, args, None).await
}

/// [`run_on_terminal`] on a terminal `columns` wide (unset: a pseudo-terminal reports no size).
async fn run_on_terminal_sized(s: &Skysync, args: &[&str], columns: Option<u16>) -> (i32, String) {
    let (mut master, slave) = open_pty();
    if let Some(ws_col) = columns {
        let size = rustix::termios::Winsize { ws_row: 20, ws_col, ws_xpixel: 0, ws_ypixel: 0 };
        rustix::termios::tcsetwinsize(&slave, size).expect("set the window size");
    }
    let mut cmd = s.command(args);
    cmd.stdin(Stdio::null()).stdout(Stdio::from(slave.try_clone().unwrap())).stderr(Stdio::from(slave));
    let mut child = cmd.spawn().expect("spawn skysync");
    // Our copies of the terminal side are gone (moved into the command, dropped with it), so the
    // reader sees EIO once the child has exited and its output is drained.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let status = child.wait().await.unwrap();
    let out = tokio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&out).into_owned())
}

async fn world() -> Skysync {
    let s = Skysync::with_sim(SimConfig { records: 20, ..SimConfig::default() }).await;
    s.seed(s.minted_tokens(|_| {})).await;
    // What a terminal emulator sets (the child's environment is otherwise clean).
    s.set_env("TERM", Some("xterm-256color"));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_draws_progress_bars_on_a_terminal_and_none_into_a_pipe() {
    let s = world().await;
    let (code, screen) = run_on_terminal(&s, &["sync", "gifts", "--page-size", "10"]).await;
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("done · 5 pages"), "each entity's bar ends with its final state: {screen:?}");
    assert!(screen.contains("[============================]"), "a full bar: {screen:?}");
    assert!(screen.contains('\u{1b}'), "bars redraw with terminal escapes: {screen:?}");
    let bar_end = screen.rfind("done · 5 pages").unwrap();
    let summary = screen.find("40 records").expect("the summary");
    assert!(bar_end < summary, "the bars are finished before the summary is printed: {screen:?}");

    let s = world().await;
    let run = s.run(&["sync", "gifts", "--page-size", "10"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("40 records"), "{}", run.stdout);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("done ·") && !text.contains("[==="), "no bars into a pipe: {text}");
        assert!(!text.contains('\u{1b}'), "no escapes into a pipe: {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_pretty_on_a_terminal_and_one_line_into_a_pipe() {
    let s = world().await;
    let (code, screen) = run_on_terminal(&s, &["sync", "gifts", "--json"]).await;
    assert_eq!(code, 0, "{screen}");
    let start = screen.find('{').expect("JSON on the terminal");
    let json = screen[start..].replace("\r\n", "\n");
    assert!(json.starts_with("{\n  \""), "pretty, indented by two: {json:?}");
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["ok"], true);

    let s = world().await;
    let run = s.run(&["sync", "gifts", "--json"]).await;
    run.expect_code(0);
    assert_eq!(run.stdout.trim().lines().count(), 1, "one line into a pipe: {}", run.stdout);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_draws_no_bars_and_bars_are_wiped_before_the_summary() {
    let s = world().await;
    let (code, screen) = run_on_terminal(&s, &["-q", "sync", "gifts", "--page-size", "10"]).await;
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("40 records"), "the summary still prints: {screen:?}");
    assert!(!screen.contains("done ·") && !screen.contains("[==="), "-q: no bars on a terminal: {screen:?}");

    let s = world().await;
    let (code, screen) = run_on_terminal(&s, &["sync", "gifts", "--page-size", "10"]).await;
    assert_eq!(code, 0, "{screen}");
    let bar_end = screen.rfind("done · 5 pages").expect("the bars were drawn") + "done · 5 pages".len();
    let summary = screen.find("40 records").expect("the summary");
    // Erase-line escapes between the last bar and the summary: the bars are cleared first.
    assert!(screen[bar_end..summary].contains("\u{1b}[2K"), "bars wiped before the summary: {screen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_init_asks_on_a_terminal() {
    use std::io::Write;
    let s = world().await;
    let (mut master, slave) = open_pty();
    let mut cmd = s.command(&["--profile", "asked", "config", "init"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // The terminal keeps typed lines until they are read: the id, no secret file, no key file,
    // the default database.
    master.write_all(b"typed-app-id\n\n\n\n").unwrap();
    let mut child = cmd.spawn().expect("spawn skysync");
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = master.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let status = child.wait().await.unwrap();
    let screen = tokio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
    let screen = String::from_utf8_lossy(&screen);
    assert_eq!(status.code(), Some(0), "{screen}");
    assert!(screen.contains("Application ID (developer.blackbaud.com"), "the prompt: {screen:?}");
    let text = std::fs::read_to_string(s.home().join("config/skysync/config.toml")).unwrap();
    assert!(text.contains("[profiles.asked]") && text.contains("client_id = \"typed-app-id\""), "{text}");
    assert!(text.contains("# client_secret_file = "), "skipped answers stay commented out: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_fit_a_narrow_terminal_and_wide_prints_them_whole() {
    let s = world().await;
    s.run(&["sync", "gifts", "constituents"]).await.expect_code(0);
    for command in [&["sync", "status"][..], &["status"][..]] {
        let piped = s.run(command).await;
        piped.expect_code(0);
        assert!(piped.stdout.lines().any(|l| l.chars().count() > 60), "a line to cut: {}", piped.stdout);

        let (code, screen) = run_on_terminal_sized(&s, command, Some(60)).await;
        assert_eq!(code, 0, "{screen}");
        let lines: Vec<&str> = screen.split("\r\n").collect();
        for line in &lines {
            assert!(line.chars().count() <= 60, "{command:?}: longer than the terminal: {line:?}\n{screen}");
        }
        assert!(lines.iter().any(|l| l.ends_with('…')), "{command:?}: cut lines end with …: {screen}");

        let mut wide = command.to_vec();
        wide.push("--wide");
        let (code, screen) = run_on_terminal_sized(&s, &wide, Some(60)).await;
        assert_eq!(code, 0, "{screen}");
        // Digits aside: `status` says "in 59m 59s", a second later "in 59m 58s".
        let digits_masked = |text: &str| text.replace("\r\n", "\n").replace(|c: char| c.is_ascii_digit(), "#");
        let screen = digits_masked(&screen);
        for line in digits_masked(&piped.stdout).lines() {
            assert!(screen.contains(line), "{command:?} --wide: the whole line {line:?} in:\n{screen}");
        }
        assert!(!screen.contains('…'), "{command:?} --wide: nothing cut: {screen}");
    }
}

/// `text` as words, each run of digits as one `#` (times and counts differ between runs).
fn masked_words(text: &str) -> Vec<String> {
    let mut masked = String::new();
    for c in text.chars() {
        if !c.is_ascii_digit() {
            masked.push(c);
        } else if !masked.ends_with('#') {
            masked.push('#');
        }
    }
    masked.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_summary_wraps_its_status_to_a_narrow_terminal_and_wide_prints_it_whole() {
    let s = world().await;
    s.run(&["sync", "gifts", "constituents"]).await.expect_code(0);
    // -q: no progress bars on the terminal, only the summary.
    let command = ["-q", "sync", "gifts", "constituents", "--reconcile"];
    let piped = s.run(&command).await;
    piped.expect_code(0);
    assert!(piped.stdout.contains("  ok, reconciled\n"), "{}", piped.stdout);
    let rows = piped.stdout.lines().filter(|l| l.ends_with("ok, reconciled"));
    assert!(rows.clone().count() == 2 && rows.clone().all(|l| l.chars().count() > 80), "full rows: {}", piped.stdout);
    let totals = piped.stdout.lines().find(|l| l.contains(" records, ")).expect("the totals line");

    // 80 columns: the numbers shrink to their width and the status wraps in its column.
    let (code, screen) = run_on_terminal_sized(&s, &command, Some(80)).await;
    assert_eq!(code, 0, "{screen}");
    let lines: Vec<&str> = screen.trim_end().split("\r\n").collect();
    for line in &lines {
        assert!(line.chars().count() <= 80, "longer than the terminal: {line:?}\n{screen}");
    }
    assert!(!screen.contains('…'), "nothing cut: {screen}");
    assert_eq!(masked_words(&screen), masked_words(&piped.stdout), "the same words in the same order:\n{screen}");
    let row = lines.iter().position(|l| l.starts_with("gifts") && l.ends_with(" ok,")).expect("a wrapped status");
    let column = lines[row].len() - "ok,".len();
    assert_eq!(lines[row + 1], format!("{}reconciled", " ".repeat(column)), "under its column:\n{screen}");

    // 60 columns: too narrow for the numbers; they are cut, the status and totals are not.
    let (code, screen) = run_on_terminal_sized(&s, &command, Some(60)).await;
    assert_eq!(code, 0, "{screen}");
    for line in screen.trim_end().split("\r\n") {
        assert!(line.chars().count() <= 60, "longer than the terminal: {line:?}\n{screen}");
    }
    assert_eq!(screen.matches("\r\n    ok, reconciled\r\n").count(), 2, "each status below its row: {screen}");
    let (words, totals) = (masked_words(&screen), masked_words(totals));
    assert!(words.windows(totals.len()).any(|w| w == totals), "the totals, wrapped, whole: {screen}");

    let (code, screen) =
        run_on_terminal_sized(&s, &["-q", "sync", "gifts", "constituents", "--reconcile", "--wide"], Some(60)).await;
    assert_eq!(code, 0, "{screen}");
    let lines: Vec<&str> = screen.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), piped.stdout.trim_end().lines().count(), "--wide: one line each: {screen}");
    assert_eq!(masked_words(&screen), masked_words(&piped.stdout), "--wide: the same words:\n{screen}");
}
