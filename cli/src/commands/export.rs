//! `skysync export`: this profile's tokens out as a bundle, for another host, a JavaScript app
//! or another store.
//!
//! A grant must have exactly one refresher: a refresh may rotate the refresh token, and the
//! holder that did not rotate is left with a dead one (and replaying it may revoke the consent).
//! So an export hands the tokens over: under the store lock, the bundle is written first (a new
//! file, 0600, fsynced; or stdout), then the profile is marked handed over
//! ([`crate::token_store::HandedOver`]). From then on the profile's store refuses to load or save
//! its tokens (exit 4, naming where they went and when), until `skysync import` or `login` stores
//! tokens again. If the mark cannot be written, the bundle file is removed again, so the tokens
//! never have two holders by accident. `--copy` skips the mark, with a warning.
//!
//! The bundle is the consent page's refresh-token bundle ([`skysync_core::bundle`]), so
//! `skysync import` reads it as it is.
//!
//! `--json` prints the result on stdout (`bundle`: the file's absolute path, `profile`,
//! `handed_over`, `generation`: the token store's generation that was exported, `exported_at`),
//! never a token. With `-` stdout carries the bundle itself, so `--json` is refused there (exit
//! 2, nothing exported) rather than mixed into it or moved to stderr beside the notes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use skysync_core::SessionError;
use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_core::host::{Clock, SystemClock};
use skysync_core::store::TokenStore;

use crate::args::ExportArgs;
use crate::context::Context;
use crate::exit::{self, UsageError};
use crate::output::timestamp;
use crate::token_store::{FileTokenStore, HandedOver, ProfileStore};

/// Writes the bundle and, without `--copy`, marks the profile's tokens handed over.
pub async fn run(ctx: &Context, args: ExportArgs) -> anyhow::Result<u8> {
    let out = ctx.output();
    if out.json && args.file == "-" {
        return Err(UsageError(
            "--json describes a bundle written to a file: with `-`, stdout carries the bundle itself. Name a new file, or drop --json; nothing was exported".into(),
        )
        .into());
    }
    let store = ctx.store();
    // The hand-over mark lives beside the token file; a PostgreSQL store is shared by several
    // hosts, so moving its tokens out is `token-store migrate`'s job (or an explicit --copy).
    // What happens to the profile's own tokens after the bundle is written.
    let after = match store.as_ref() {
        _ if args.copy => AfterExport::KeepUsing,
        ProfileStore::File(f) => AfterExport::MarkHandedOver(f),
        ProfileStore::Postgres(_) => {
            return Err(UsageError(format!(
                "profile `{}` keeps its tokens in PostgreSQL ({}); `skysync export` hands over tokens kept in the token file. Move them first (`skysync token-store migrate --to file`), or use --copy for an explicit copy; nothing was exported",
                ctx.profile(),
                store.path()
            ))
            .into());
        }
    };
    let _lock = store.lock().await?;
    let Some(current) = store.load().await? else {
        return Err(SessionError::NotLoggedIn.into());
    };
    let (tokens, generation) = (current.tokens, current.generation);
    let now = SystemClock.now();
    if tokens.refresh_expires_at <= now {
        return Err(anyhow::Error::from(SessionError::RefreshTokenExpired {
            expired_at: timestamp(tokens.refresh_expires_at),
        })
        .context("nothing was exported"));
    }
    if let Some(refused_at) = tokens.grant_refused_at {
        return Err(anyhow::Error::from(SessionError::GrantRefused { refused_at: timestamp(refused_at) })
            .context("nothing was exported"));
    }
    if let Some(started) = tokens.rotation_started_at {
        anyhow::bail!(
            "a rotation of the refresh token started at {} has not been settled, so the stored refresh token may no longer work; nothing was exported. Run `skysync token` once (it settles it), then export",
            timestamp(started)
        );
    }
    let json = TokenBundle::new(BundleContent::RefreshToken { tokens: Box::new(tokens) }, now).to_json();

    let destination = if args.file == "-" { None } else { Some(absolute(Path::new(&args.file))?) };
    match &destination {
        Some(path) => write_new_private_file(path, json.as_bytes())?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(json.as_bytes())
                .and_then(|()| stdout.write_all(b"\n"))
                .and_then(|()| stdout.flush())
                .context("writing the bundle to stdout; nothing was handed over")?;
        }
    }
    let to = destination.as_ref().map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());

    let file_store = match after {
        AfterExport::KeepUsing => {
            out.note(format_args!(
                "warning: --copy: profile `{}` keeps using and refreshing these tokens. If the copy's holder refreshes them too, one of the two is left with a dead refresh token (and a replayed one may revoke the consent): let only one of them refresh",
                ctx.profile()
            ));
            out.note(format_args!("Copied profile `{}`'s tokens to {to}.", ctx.profile()));
            return report(ctx, &to, false, generation, now);
        }
        AfterExport::MarkHandedOver(f) => f,
    };
    let marked = file_store.mark_handed_over(&HandedOver { to: to.clone(), at: now });
    if let Err(e) = marked {
        let undone = match &destination {
            Some(path) => match std::fs::remove_file(path) {
                Ok(()) => format!("the bundle {} was removed again", path.display()),
                Err(_) => format!("remove the bundle {} by hand", path.display()),
            },
            None => "do not use the bundle printed on stdout".to_owned(),
        };
        return Err(anyhow::Error::from(e)
            .context(format!("the profile could not be marked as handed over, so it keeps its tokens; {undone}")));
    }
    out.note(format_args!(
        "Handed profile `{}`'s tokens over to {to} at {}. This profile no longer uses or refreshes them (`skysync token` and `skysync sync` exit 4 until a bundle is imported here again).",
        ctx.profile(),
        timestamp(now)
    ));
    if destination.is_some() {
        out.note(format_args!(
            "The bundle holds the refresh token in plain text: import it once where it goes (`skysync import {to}`), then delete it."
        ));
    }
    report(ctx, &to, true, generation, now)
}

/// With `--json`, the result on stdout (never a token: the bundle went to a file).
fn report(ctx: &Context, to: &str, handed_over: bool, generation: u64, at: time::OffsetDateTime) -> anyhow::Result<u8> {
    let out = ctx.output();
    if out.json {
        out.json_value(&serde_json::json!({
            "bundle": to,
            "profile": ctx.profile(),
            "handed_over": handed_over,
            "generation": generation,
            "exported_at": timestamp(at),
        }))?;
    }
    Ok(exit::OK)
}

/// `path`, absolute, so the hand-over mark says where the bundle is from anywhere.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Creates `path` (never an existing file or a link) with mode 0600, writes and fsyncs it. A
/// failed write removes the file again.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(UsageError(format!(
                "{} already exists; nothing was exported. Name a new file (export never overwrites one), or `-` for stdout",
                path.display()
            ))
            .into());
        }
        Err(e) => return Err(anyhow::anyhow!("cannot create {}: {e}; nothing was exported", path.display())),
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .and_then(|()| sync_parent(path));
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(anyhow::anyhow!("cannot write {}: {e}; nothing was exported", path.display()));
    }
    Ok(())
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    let _ = path;
    Ok(())
}

/// Whether the exporting profile keeps its tokens (`--copy`) or gives them up.
enum AfterExport<'a> {
    /// `--copy`: the profile keeps using and refreshing the same tokens.
    KeepUsing,
    /// A hand-over: the token file is marked so this profile stops using the tokens.
    MarkHandedOver(&'a FileTokenStore),
}
