//! Child processes of the tests start from a clean environment: nothing the developer's shell
//! exports for PostgreSQL (`PG*`) or for skysync (`SKYSYNC_*`) reaches them, so a test behaves the
//! same on every machine. (The skysync binary itself runs with a cleared environment, see
//! [`crate::cli::Skysync::command`].)

use std::ffi::OsStr;
use std::process::Command;

/// Whether a variable of the test process must not reach a child.
pub fn is_leaky(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("PG") || name.starts_with("SKYSYNC_")
}

/// Removes every `PG*` and `SKYSYNC_*` variable that `cmd` would inherit.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if is_leaky(&name) {
            cmd.env_remove(&name);
        }
    }
    cmd
}

/// A `Command` for `program` with [`clean_env`] applied.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    clean_env(&mut cmd);
    cmd
}
