//! `skysync token-store`: make a key for the token store, re-encrypt the store under a new key,
//! move a profile's tokens between the file and PostgreSQL.
//!
//! The encryption itself is [`crate::token_crypto`]; this is the key rotation around it.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context as _;
use skysync_core::store::{StoreError, TokenStore};

use crate::args::{GlobalArgs, MigrateArgs, NewKeyArgs, RekeyArgs, TokenStoreCommand};
use crate::context::Output;
use crate::exit::{self, UsageError};
use crate::token_crypto::{AtRest, OpenError, TokenKey, key_id_of, new_key_text};
use crate::token_store::{FileTokenStore, ProfileStore, STORE_FORMAT, StoreSpec};

/// Dispatches `token-store` subcommands.
pub async fn run(g: &GlobalArgs, cmd: TokenStoreCommand) -> anyhow::Result<u8> {
    let out = Output::detect(g.json);
    match cmd {
        TokenStoreCommand::NewKey(args) => new_key(&out, args),
        TokenStoreCommand::Rekey(args) => rekey(g, &out, args).await,
        TokenStoreCommand::Migrate(args) => migrate(g, &out, args).await,
    }
}

/// The profile's name and its configured token store, from the config file and the environment
/// alone (no application settings needed, so `logout` works before anything else is set up).
pub fn profile_store(g: &GlobalArgs) -> anyhow::Result<(String, ProfileStore)> {
    let resolved = crate::settings::resolve(&super::config_source(g))?;
    let spec = resolved.token_store()?;
    let data_dir = crate::config::data_dir(&resolved.profile)?;
    let store = ProfileStore::open(&resolved.profile, data_dir, &spec, at_rest(&resolved), password_file(&resolved));
    Ok((resolved.profile, store))
}

/// The profile's token-store key (see [`crate::token_crypto`]).
fn at_rest(resolved: &crate::settings::Resolved) -> AtRest {
    AtRest::from_key_file(resolved.token_key_file().as_deref())
}

/// The profile's PostgreSQL password file, if one is configured.
fn password_file(resolved: &crate::settings::Resolved) -> Option<std::path::PathBuf> {
    resolved.db_password_file()
}

/// Moves the tokens: both stores locked, written to the destination, read back, then removed
/// from the source. A rerun after an interruption finds the same set in both and finishes.
async fn migrate(g: &GlobalArgs, out: &Output, args: MigrateArgs) -> anyhow::Result<u8> {
    let (profile, from) = profile_store(g)?;
    let resolved = crate::settings::resolve(&super::config_source(g))?;
    let spec = StoreSpec::parse(Some(&args.to)).map_err(|m| UsageError(format!("--to: {m}")))?;
    if let StoreSpec::Postgres(url) = &spec
        && !crate::sink::url_secrets(url).is_empty()
    {
        return Err(UsageError(
            "--to: the URL holds a password, which would be visible in the process list; \
             leave it out and use PGPASSWORD, ~/.pgpass or db_password_file"
                .into(),
        )
        .into());
    }
    let to = ProfileStore::open(
        &profile,
        crate::config::data_dir(&profile)?,
        &spec,
        at_rest(&resolved),
        password_file(&resolved),
    );
    if to.path() == from.path() {
        return Err(UsageError(format!("profile `{profile}` already keeps its tokens in {}", from.path())).into());
    }
    let _from_lock = from.lock().await?;
    let _to_lock = to.lock().await?;
    let Some(current) = from.load().await? else {
        return Err(UsageError(format!(
            "no tokens are stored for profile `{profile}` in {}; nothing was moved",
            from.path()
        ))
        .into());
    };
    let same = |a: &skysync_core::token_set::TokenSet| a.refresh_token.ct_eq(&current.tokens.refresh_token);
    match to.load().await? {
        // An earlier migrate stopped after writing the destination: finish it.
        Some(there) if same(&there.tokens) => {}
        Some(_) => {
            return Err(UsageError(format!(
                "{} already holds tokens for profile `{profile}`; nothing was moved. Remove them there first (`skysync logout` with token_store pointing at it), or migrate another profile",
                to.path()
            ))
            .into());
        }
        None => {
            to.save(&current.tokens, None).await?;
        }
    }
    let written = to.load().await?;
    anyhow::ensure!(
        written.as_ref().is_some_and(|w| same(&w.tokens)),
        "the tokens read back from {} differ from what was written; the source {} is unchanged",
        to.path(),
        from.path()
    );
    from.remove().await?;
    if out.json {
        out.json_value(&serde_json::json!({"profile": profile, "from": from.path(), "to": to.path()}))?;
    } else {
        out.line(format_args!("Moved the tokens of profile `{profile}` from {} to {}.", from.path(), to.path()))?;
        out.note(format_args!(
            "Now set token_store = \"{}\" in profile `{profile}` (or SKYSYNC_TOKEN_STORE); until then skysync finds no tokens (exit code 4).",
            match &spec {
                StoreSpec::File => "file".to_owned(),
                StoreSpec::Postgres(url) => url.clone(),
            }
        ));
    }
    Ok(exit::OK)
}

fn new_key(out: &Output, args: NewKeyArgs) -> anyhow::Result<u8> {
    let text = new_key_text()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&args.file).with_context(|| {
        format!("cannot create the key file {} (an existing key is never overwritten)", args.file.display())
    })?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).context("writing the key file")?;
    let key = TokenKey::from_file(&args.file).map_err(StoreError::Key)?;
    if out.json {
        out.json_value(&serde_json::json!({"key_file": args.file, "key_id": key.id()}))?;
    } else {
        out.line(format_args!("Wrote a new token store key to {} (key id {}).", args.file.display(), key.id()))?;
        out.note(
            "Keep it away from the token directory and its backups. Use it with `skysync token-store rekey --new-key-file FILE`, then SKYSYNC_TOKEN_KEY_FILE or the systemd credential skysync-token-key.",
        );
    }
    Ok(exit::OK)
}

async fn rekey(g: &GlobalArgs, out: &Output, args: RekeyArgs) -> anyhow::Result<u8> {
    // The profile's key: SKYSYNC_TOKEN_KEY_FILE, the credential, or the config's token_key_file.
    let resolved = crate::settings::resolve(&crate::commands::config_source(g))?;
    let profile = resolved.profile.clone();
    let current = AtRest::from_key_file(resolved.token_key_file().as_deref());
    let target = match &args.new_key_file {
        Some(path) => AtRest::with_key_file(path),
        None => AtRest::Plaintext,
    };
    if let AtRest::Unavailable(problem) = &target {
        return Err(StoreError::Key(problem.clone()).into());
    }
    if let (_, ProfileStore::Postgres(_)) = profile_store(g)? {
        return Err(UsageError(
            "rekey re-encrypts the token file; this profile keeps its tokens in PostgreSQL. \
             Migrate them to the file (`skysync token-store migrate --to file`), rekey, and migrate them back"
                .into(),
        )
        .into());
    }
    let store = FileTokenStore::new(crate::config::data_dir(&profile)?).with_at_rest(current.clone());
    let _lock = store.lock().await?;

    // Open every file first: nothing is written unless all of them can be re-encrypted.
    let mut rewrites = Vec::new();
    for path in store.token_files() {
        let Some(bytes) = read_private(&path)? else { continue };
        let plaintext = open_for_rekey(&path, bytes, &current, &target)?;
        let is_token_file = serde_json::from_slice::<serde_json::Value>(&plaintext)
            .is_ok_and(|v| v.get("format").and_then(|f| f.as_str()) == Some(STORE_FORMAT));
        anyhow::ensure!(
            is_token_file,
            "{} is not a skysync token file; nothing was changed (restore it, or remove it with `skysync logout`)",
            path.display()
        );
        rewrites.push((path, plaintext));
    }
    if rewrites.is_empty() {
        out.note(format_args!("No tokens are stored for profile `{profile}`; nothing to re-encrypt."));
        return Ok(exit::OK);
    }
    for (path, plaintext) in &rewrites {
        let bytes = target.seal(plaintext.clone()).map_err(StoreError::Key)?;
        replace_atomically(store.dir(), path, &bytes)
            .with_context(|| format!("re-encrypting {} (files not yet rewritten are unchanged)", path.display()))?;
    }
    let files: Vec<String> = rewrites.iter().map(|(p, _)| p.display().to_string()).collect();
    let key_id = match &target {
        AtRest::Encrypted(key) => Some(key.id().to_owned()),
        _ => None,
    };
    if out.json {
        out.json_value(&serde_json::json!({"profile": profile, "files": files, "key_id": key_id}))?;
    } else {
        match (&key_id, &args.new_key_file) {
            (Some(id), Some(path)) => {
                out.line(format_args!("Re-encrypted {} under key id {id}.", files.join(", ")))?;
                out.note(format_args!(
                    "Now set SKYSYNC_TOKEN_KEY_FILE={} (or load it as the systemd credential skysync-token-key); until then other skysync runs stop with exit code 3.",
                    path.display()
                ));
            }
            _ => {
                out.line(format_args!("Decrypted {} to plaintext (mode 0600).", files.join(", ")))?;
                out.note("Now unset SKYSYNC_TOKEN_KEY_FILE (and drop the skysync-token-key credential).");
            }
        }
    }
    Ok(exit::OK)
}

/// The plaintext of one file: under the target key already (a re-run after a crash), or else
/// under the current key or plaintext.
fn open_for_rekey(path: &Path, bytes: Vec<u8>, current: &AtRest, target: &AtRest) -> anyhow::Result<Vec<u8>> {
    let result = match target.open(path, bytes.clone()) {
        // A plaintext file passes any `open`; take it from the current side so a broken current key
        // is still reported when the target is plaintext too.
        Ok(plain) if key_id_of(&bytes).is_some() => Ok(plain),
        Ok(_) | Err(OpenError::Key(_)) => current.open(path, bytes),
        Err(e) => Err(e),
    };
    result.map_err(|e| match e {
        OpenError::Key(m) => anyhow::Error::from(StoreError::Key(m)),
        OpenError::Unreadable(m) => {
            anyhow::anyhow!("the token file {} is unreadable: {m}; nothing was changed", path.display())
        }
    })
}

/// A token file's bytes, refusing one other users can read (as the store does).
fn read_private(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("cannot open {}: {e}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::Insecure(format!(
                "the token file {} is accessible by other users (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            ))
            .into());
        }
    }
    let mut bytes = Vec::new();
    file.take(1024 * 1024).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(bytes))
}

/// Temp file in the same directory (0600), fsync, rename over `path`, fsync the directory.
fn replace_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tokens.").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
