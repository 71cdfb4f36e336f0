//! Data files hold donor PII: new ones are created for this user only (0600, directories 0700).
//!
//! The process umask is tightened before a sink creates anything, which also covers the files
//! SQLite creates itself (`-wal`, `-shm`, and its temporary files): SQLite gives its WAL and SHM
//! files the database file's own mode, so an existing database keeps the mode its owner chose.
//! `skysync sync status` warns about data files other users can read ([`readable_by_others`]).

use std::path::{Path, PathBuf};

/// Masks group and other permission bits for every file this process creates from now on.
/// Idempotent; never loosens a stricter umask.
pub fn private_umask() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        let old = rustix::process::umask(Mode::from_raw_mode(0o077));
        rustix::process::umask(old | Mode::from_raw_mode(0o077));
    }
}

/// The files of a sink that exist and that group or others can read, with their modes.
pub fn readable_by_others(files: &[PathBuf]) -> Vec<(PathBuf, u32)> {
    files.iter().filter_map(|f| mode_if_readable(f).map(|m| (f.clone(), m))).collect()
}

fn mode_if_readable(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The SQLite database and its WAL and SHM files.
pub fn sqlite_files(db: &Path) -> Vec<PathBuf> {
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    vec![db.to_path_buf(), with("-wal"), with("-shm")]
}

/// The files of a JSONL output directory.
pub fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Gives `tmp` the mode of the file it is about to replace, so a rename keeps the owner's choice.
pub fn keep_mode_of(existing: &Path, tmp: &std::fs::File) -> std::io::Result<()> {
    match std::fs::metadata(existing) {
        Ok(meta) => tmp.set_permissions(meta.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
