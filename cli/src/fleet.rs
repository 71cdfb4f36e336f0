//! Many tenants in one run: `sync` and `status` with `--all-profiles` or `--profile` given more
//! than once.
//!
//! Each profile runs as a child `skysync --profile NAME …` process, so each has its own token
//! session, pacer and call budget (Blackbaud limits per subscription) exactly as a run of its own
//! would, and one profile's crash or lock cannot stall another. At most
//! [`PARALLEL_ENV`] (default [`DEFAULT_PARALLEL`]) run at once. Each child's output is printed
//! whole when it finishes, under a header naming its profile, then a per-profile summary; the
//! exit code is the worst of the children's ([`severity`]).
//!
//! Hooks: the parent sends the `--ping-url` pings once for the whole run; each child writes its own
//! metrics file (`--metrics-file DIR/NAME.prom` becomes `DIR/NAME-<profile>.prom`, since the
//! textfile collector reads every `*.prom`) and runs its profile's `notify_command`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use crate::args::GlobalArgs;
use crate::context::Output;
use crate::exit::{self, UsageError};

/// How many profiles run at once, unless [`PARALLEL_ENV`] says otherwise.
pub const DEFAULT_PARALLEL: usize = 4;
/// Overrides [`DEFAULT_PARALLEL`].
pub const PARALLEL_ENV: &str = "SKYSYNC_PARALLEL_PROFILES";

/// Whether this invocation is a fleet run (`--all-profiles`, or more than one `--profile`).
pub fn wanted(g: &GlobalArgs) -> bool {
    g.all_profiles || g.profiles.len() > 1
}

/// How bad an exit code is, for "the worst": success, then the warning, then what a later run
/// may fix by itself (throttled, busy, failure), then what needs a person (consent, config, usage).
pub fn severity(code: u8) -> u8 {
    match code {
        exit::OK => 0,
        exit::WARNING => 1,
        exit::THROTTLED => 2,
        exit::BUSY => 3,
        exit::CONSENT => 5,
        exit::CONFIG => 6,
        exit::USAGE => 7,
        _ => 4,
    }
}

/// One profile's finished child.
struct Outcome {
    profile: String,
    code: u8,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `command` (`sync` or `status`, with the rest of the command line) for every selected
/// profile and returns the worst exit code.
pub async fn run(g: &GlobalArgs, command: &str) -> anyhow::Result<u8> {
    let profiles = if g.all_profiles { crate::config::profile_names(g.config.as_deref())? } else { g.profiles.clone() };
    if profiles.is_empty() {
        return Err(UsageError(
            "--all-profiles found no [profiles.NAME] tables in the config file; define the profiles first".into(),
        )
        .into());
    }
    let args = child_args(std::env::args_os().skip(1).collect());
    let parallel = std::env::var(PARALLEL_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0);
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel.unwrap_or(DEFAULT_PARALLEL)));
    let exe = std::env::current_exe()?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, profile) in profiles.iter().enumerate() {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("--profile").arg(profile);
        cmd.env_remove("SKYSYNC_METRICS_FILE");
        if let Some(path) = &g.metrics_file {
            // By the environment: the command's own flag, wherever the command is on the line.
            cmd.env("SKYSYNC_METRICS_FILE", per_profile(path, profile));
        }
        cmd.args(&args)
            .env_remove("SKYSYNC_PROFILE")
            .env_remove("SKYSYNC_PING_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let (gate, profile) = (gate.clone(), profile.clone());
        tasks.spawn(async move {
            let _turn = gate.acquire_owned().await;
            let out = cmd.output().await;
            let outcome = match out {
                Ok(out) => Outcome {
                    profile,
                    // Killed by a signal: report it as a failure.
                    code: out.status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(exit::FAILURE),
                    stdout: out.stdout,
                    stderr: out.stderr,
                },
                Err(e) => Outcome {
                    profile,
                    code: exit::FAILURE,
                    stdout: Vec::new(),
                    stderr: format!("error: could not start skysync: {e}\n").into_bytes(),
                },
            };
            (i, outcome)
        });
    }
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let out = Output::detect(g.json);
    while let Some(done) = tasks.join_next().await {
        let (i, o) = done?;
        if !out.json {
            out.line(format_args!("== profile {} (exit {}) ==", o.profile, o.code))?;
            // The child wrote into a pipe, at full width: fit it here.
            out.table(String::from_utf8_lossy(&o.stdout).trim_end())?;
        }
        eprint!("{}", String::from_utf8_lossy(&o.stderr));
        outcomes.push((i, o));
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let worst = outcomes.iter().map(|(_, o)| o.code).max_by_key(|c| severity(*c)).unwrap_or(exit::OK);
    if out.json {
        let profiles: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(_, o)| {
                let text = String::from_utf8_lossy(&o.stdout);
                let result = serde_json::from_str::<serde_json::Value>(text.trim()).unwrap_or(serde_json::Value::Null);
                serde_json::json!({"profile": o.profile, "exit_code": o.code, "result": result})
            })
            .collect();
        out.json_value(&serde_json::json!({"command": command, "exit_code": worst, "profiles": profiles}))?;
    } else {
        out.line(format_args!("\n{:<24} exit", "profile"))?;
        for (_, o) in &outcomes {
            out.line(format_args!("{:<24} {}", o.profile, o.code))?;
        }
    }
    Ok(worst)
}

/// The command line without the options the parent handles (`--profile`, `--all-profiles`,
/// `--ping-url`, `--metrics-file`).
fn child_args(args: Vec<OsString>) -> Vec<OsString> {
    const WITH_VALUE: [&str; 3] = ["--profile", "--ping-url", "--metrics-file"];
    let mut kept = Vec::new();
    let mut skip_next = false;
    for arg in args {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let text = arg.to_string_lossy();
        if text == "--all-profiles" {
            continue;
        }
        if WITH_VALUE.contains(&text.as_ref()) {
            skip_next = true;
            continue;
        }
        if WITH_VALUE.iter().any(|o| text.starts_with(&format!("{o}="))) {
            continue;
        }
        kept.push(arg);
    }
    kept
}

/// `DIR/NAME.prom` → `DIR/NAME-<profile>.prom`.
fn per_profile(path: &Path, profile: &str) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "skysync".into());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{profile}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{profile}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_options_are_left_out_of_the_child_command_line() {
        let args =
            ["--profile", "a", "--all-profiles", "sync", "--ping-url=http://x", "--metrics-file", "m.prom", "gifts"]
                .map(OsString::from)
                .to_vec();
        assert_eq!(child_args(args), ["sync", "gifts"].map(OsString::from).to_vec());
    }

    #[test]
    fn each_profile_gets_its_own_metrics_file() {
        assert_eq!(per_profile(Path::new("/t/skysync.prom"), "acme"), Path::new("/t/skysync-acme.prom"));
    }

    #[test]
    fn the_worst_exit_code_is_the_one_that_needs_a_person() {
        let worst = |codes: &[u8]| codes.iter().copied().max_by_key(|c| severity(*c)).unwrap();
        assert_eq!(worst(&[0, 10, 0]), 10);
        assert_eq!(worst(&[10, 5, 1]), 1);
        assert_eq!(worst(&[1, 4, 6]), 4);
        assert_eq!(worst(&[4, 3]), 3);
    }
}
