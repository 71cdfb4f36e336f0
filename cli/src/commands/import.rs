//! `skysync import`: a token bundle from the consent page into the store.
//!
//! An import must never destroy a working grant: a stale refresh token replayed, or a code
//! exchanged twice, may make a server revoke the whole consent (RFC 6749 §10.4, §10.5). So before
//! anything is sent or stored, a refresh-token bundle must be unexpired and no older than the
//! stored refresh token, and a code bundle must carry a code never sent before (their SHA-256 are
//! remembered) and be no older than the stored consent.
//!
//! `skysync import --prepare` first makes a one-time key pair in the profile and prints the
//! consent-page link that makes the page seal the bundle to it ([`skysync_core::bundle_seal`]);
//! `skysync import` then opens a sealed bundle with that key and deletes the key once the tokens
//! are stored. Plain bundles are still accepted, with a warning.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::Digest as _;
use skysync_core::bundle::{BundleContent, MAX_BUNDLE_BYTES, TokenBundle};
use skysync_core::bundle_seal::{ImportKey, is_sealed, open};
use skysync_core::host::{Clock, SystemClock};
use skysync_core::store::TokenStore;
use skysync_core::{SessionError, TokenSet};
use time::OffsetDateTime;

use crate::args::ImportArgs;
use crate::commands::login::print_consent;
use crate::context::Context;
use crate::exit::{self, UsageError};
use crate::login::{Replace, exchange_and_replace, store_tokens};
use crate::output::timestamp;

/// Validates the bundle against the configured client and stores it (exchanging a code at once).
pub async fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<u8> {
    if args.prepare {
        return prepare(ctx, &args).await;
    }
    let limit = MAX_BUNDLE_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if args.file == "-" {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            ctx.output().note("Paste the token bundle, then press Ctrl-D (or pass the file: `skysync import FILE`).");
        }
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes).context("reading the bundle from stdin")?;
    } else {
        let mut file = std::fs::File::open(&args.file).with_context(|| format!("reading the bundle {}", args.file))?;
        warn_if_readable_by_others(ctx, &args.file, &file);
        file.by_ref()
            .take(limit)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading the bundle {}", args.file))?;
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        anyhow::bail!(
            "the bundle is empty; pass the file the consent page downloaded (`skysync import FILE`) or pipe it to `skysync import -`"
        );
    }
    let (bytes, prepared_key) = unseal(ctx, bytes)?;
    let bundle = TokenBundle::parse(&bytes)?;
    let now = SystemClock.now();
    if prepared_key.is_none() {
        check_unsealed(ctx, &bundle)?;
    }
    bundle.validate(&ctx.settings().client_id, now)?;
    let replace = if args.force { Replace::Always } else { Replace::SameEnvironment };
    let store = ctx.store();
    let (tokens, holds) = match bundle.content {
        BundleContent::RefreshToken { tokens } => {
            let _lock = store.lock().await?;
            check_refresh_bundle(ctx, &tokens, now, args.force).await?;
            store_tokens(ctx, &tokens, replace).await?;
            (*tokens, "a refresh token")
        }
        BundleContent::AuthorizationCode { code, code_verifier, redirect_uri, obtained_at, .. } => {
            let hash = hex_sha256(code.secret());
            {
                let _lock = store.lock().await?;
                check_code_bundle(ctx, &hash, obtained_at, args.force).await?;
                // Durable before the code leaves: a run killed mid-exchange still burnt it.
                store.remember_code(&hash).await?;
            }
            let tokens = exchange_and_replace(ctx, code, Some(code_verifier), &redirect_uri, replace).await?;
            (tokens, "a used authorization code")
        }
    };
    if let Some(path) = prepared_key {
        forget_import_key(&path)?;
    }
    print_consent(ctx, &tokens, "Imported")?;
    if args.file != "-" {
        ctx.output().note(format_args!(
            "The bundle {} is no longer needed and holds {holds}: delete it (`rm {}`).",
            args.file, args.file
        ));
    }
    Ok(exit::OK)
}

/// Refuses an expired refresh token, and (without `force`) one older than the stored one.
async fn check_refresh_bundle(
    ctx: &Context,
    bundle: &TokenSet,
    now: OffsetDateTime,
    force: bool,
) -> anyhow::Result<()> {
    if bundle.refresh_expires_at <= now && !force {
        return Err(anyhow::Error::from(SessionError::RefreshTokenExpired {
            expired_at: timestamp(bundle.refresh_expires_at),
        })
        .context(
            "the bundle's refresh token has expired; nothing was changed. Consent again and import the new bundle",
        ));
    }
    // Unreadable tokens are what an import repairs, so only readable ones are protected.
    if let Ok(Some(current)) = ctx.store().load().await
        && bundle.refresh_obtained_at < current.tokens.refresh_obtained_at
        && !force
    {
        return Err(UsageError(format!(
            "the bundle's refresh token was issued {}, before the stored one ({}); importing it would replace a newer refresh token (and replaying an old one may revoke the consent). Nothing was changed; pass --force to import it anyway",
            timestamp(bundle.refresh_obtained_at),
            timestamp(current.tokens.refresh_obtained_at)
        ))
        .into());
    }
    Ok(())
}

/// Refuses a code already sent, and (without `force`) one older than the stored consent.
async fn check_code_bundle(ctx: &Context, hash: &str, obtained_at: OffsetDateTime, force: bool) -> anyhow::Result<()> {
    let store = ctx.store();
    if let Some(sent_at) = store.code_sent_at(hash).await? {
        return Err(UsageError(format!(
            "this bundle's authorization code was already sent to the token endpoint at {}; a code works only once, and a server may revoke the whole consent when one is replayed. Nothing was sent or changed; consent again for a new bundle",
            timestamp(sent_at)
        ))
        .into());
    }
    if let Ok(Some(current)) = store.load().await
        && obtained_at < current.tokens.consented_at
        && !force
    {
        return Err(UsageError(format!(
            "the bundle's authorization code was obtained {}, before the stored consent ({}); importing it would replace newer tokens. Nothing was sent or changed; pass --force to exchange it anyway",
            timestamp(obtained_at),
            timestamp(current.tokens.consented_at)
        ))
        .into());
    }
    Ok(())
}

fn hex_sha256(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A bundle holds a refresh token or a code: other users must not read it.
fn warn_if_readable_by_others(ctx: &Context, path: &str, file: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = file.metadata() {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o044 != 0 {
                ctx.output().note(format_args!(
                    "warning: the bundle {path} is readable by other users (mode {mode:o}); it holds a secret: keep bundles private (`chmod 600`) and delete this one after the import"
                ));
            }
        }
    }
    let _ = (ctx, path, file);
}

/// The one-time import key's file in the profile's directory.
pub fn import_key_path(ctx: &Context) -> PathBuf {
    ctx.data_dir().join(IMPORT_KEY_FILE)
}

/// The one-time import key's file name.
pub const IMPORT_KEY_FILE: &str = "import-key.json";

/// `--prepare`: a new key pair (replacing any earlier one) and the link that carries its public
/// half in the URL fragment, which browsers never send to a server.
async fn prepare(ctx: &Context, args: &ImportArgs) -> anyhow::Result<u8> {
    let store = ctx.store();
    // The lock makes the 0700 directory, and keeps a concurrent import from using a half-made key.
    let _lock = store.lock().await?;
    let key = ImportKey::generate()?;
    let path = import_key_path(ctx);
    write_private(ctx.data_dir(), &path, key.to_json().as_bytes())
        .with_context(|| format!("writing the import key {}", path.display()))?;
    let mut link = args.page_url.clone().unwrap_or_else(|| ctx.settings().redirect_uri.clone());
    link.set_fragment(Some(&key.recipient().to_fragment()));
    let out = ctx.output();
    if out.json {
        out.json_value(&serde_json::json!({
            "profile": ctx.profile(),
            "link": link.as_str(),
            "recipient": key.recipient().fingerprint(),
            "key_file": path,
        }))?;
    } else {
        out.line(link.as_str())?;
        out.note(format_args!(
            "Open this link in the browser where the admin consents (`skysync consent-page` serves the page at the default address). The page encrypts the bundle to this machine (key {}, kept in {}); import it here with `skysync import FILE`. The key is deleted after the import, and a new --prepare replaces it.",
            key.recipient().fingerprint(),
            path.display()
        ));
    }
    Ok(exit::OK)
}

/// Opens a sealed bundle with the prepared key. Returns the bundle's bytes, and the key file to
/// delete after a successful import (`None` for a plain bundle, which is returned as it is).
fn unseal(ctx: &Context, bytes: Vec<u8>) -> anyhow::Result<(Vec<u8>, Option<PathBuf>)> {
    if !is_sealed(&bytes) {
        return Ok((bytes, None));
    }
    let path = import_key_path(ctx);
    let key_bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "the bundle is sealed, but profile `{}` has no import key ({} is missing: it was used by an earlier import, or the link came from another machine or profile); run `skysync import --prepare` here and consent again with the new link",
            ctx.profile(),
            path.display()
        ),
        Err(e) => return Err(anyhow::anyhow!("cannot read the import key {}: {e}", path.display())),
    };
    let key = ImportKey::from_json(&key_bytes)?;
    let inner = open(&bytes, &key)?;
    Ok((inner, Some(path)))
}

/// A plain bundle is accepted with a warning; a plain authorization-code bundle is refused while
/// a prepare step waits for its sealed bundle (it cannot come from that consent).
fn check_unsealed(ctx: &Context, bundle: &TokenBundle) -> anyhow::Result<()> {
    let pending = import_key_path(ctx);
    if matches!(bundle.content, BundleContent::AuthorizationCode { .. }) && pending.exists() {
        anyhow::bail!(
            "this authorization-code bundle is not sealed, but profile `{}` is waiting for the sealed bundle of the link `skysync import --prepare` printed; it is refused because it may come from someone else's consent. Import the sealed bundle, or delete {} to accept unsealed bundles again",
            ctx.profile(),
            pending.display()
        );
    }
    tracing::warn!(
        "this bundle is not encrypted: it holds a {} in plain text. Delete every copy of it (email, chat, downloads); next time run `skysync import --prepare` and use the link it prints, so the page encrypts the bundle",
        match bundle.content {
            BundleContent::RefreshToken { .. } => "refresh token",
            BundleContent::AuthorizationCode { .. } => "authorization code",
        }
    );
    Ok(())
}

/// Deletes the used import key (a sealed bundle opens once).
fn forget_import_key(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "the tokens were stored, but the used import key {} could not be deleted: {e}; delete it by hand",
            path.display()
        )),
    }
}

/// Temp file (0600) in `dir`, fsync, rename over `path`.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp = tempfile::Builder::new().prefix(".import-key.").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
