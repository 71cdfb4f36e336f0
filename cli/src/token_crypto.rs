//! Optional encryption of the token store at rest.
//!
//! By default `tokens.json` is a 0600 plaintext file in a 0700 directory: on a headless server
//! there is no keyring to hold a key, and a key file next to the tokens protects nothing. When the
//! key can live elsewhere (a systemd credential, encrypted with `systemd-creds` and bound to the
//! machine's TPM; a key on another volume or mount that is not backed up with the data), the store
//! is encrypted with it:
//!
//! - `SKYSYNC_TOKEN_KEY_FILE=/path/to/key`, or
//! - the systemd credential `skysync-token-key` (`LoadCredential=skysync-token-key:/etc/…` or
//!   `LoadCredentialEncrypted=`), read from `$CREDENTIALS_DIRECTORY/skysync-token-key`, or
//! - `token_key_file = "/path/to/key"` in the profile of the config file,
//!
//! in that order ([`crate::settings`] resolves it). Every source gets the same checks.
//!
//! A key file holds 32 random bytes, raw or as base64 (`skysync token-store new-key FILE` makes
//! one), and must not be readable by other users.
//!
//! Every file the store writes (the token file and its backup) goes through [`AtRest::seal`], and
//! every read through [`AtRest::open`]. An encrypted file is a small versioned JSON envelope:
//!
//! ```json
//! {"format": "skysync-tokens-encrypted", "version": 1, "cipher": "XChaCha20-Poly1305",
//!  "key_id": "<16 hex>", "nonce": "<base64, 24 random bytes>", "ciphertext": "<base64>"}
//! ```
//!
//! The cipher is XChaCha20-Poly1305 from RustCrypto's `chacha20poly1305` (its 24-byte nonces are
//! safe to draw at random, from `getrandom`); the format, version, cipher and key id are the
//! associated data, so none can be changed unnoticed. The key id is a truncated SHA-256 of the key
//! (domain-separated), so a wrong key is named as such instead of looking like a corrupt file.
//!
//! Errors: a configured key that is missing or unreadable, an encrypted store with no key, or a
//! key other than the one the file was written with are [`KeyProblem`]s (exit code 3, nothing
//! changed). A file under the right key that fails authentication is unreadable like any corrupt
//! file (the backup is tried). A plaintext store is read with a key configured (the next save
//! encrypts it, or `skysync token-store rekey` does it at once).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The environment variable naming the key file.
pub const KEY_FILE_ENV: &str = "SKYSYNC_TOKEN_KEY_FILE";
/// The systemd credential name looked up in `$CREDENTIALS_DIRECTORY`.
pub const KEY_CREDENTIAL: &str = "skysync-token-key";
/// The `format` marker of an encrypted token file.
pub const ENCRYPTED_FORMAT: &str = "skysync-tokens-encrypted";
/// The envelope version this build writes and reads.
pub const ENCRYPTED_VERSION: u32 = 1;
/// The AEAD, as named in the envelope.
pub const CIPHER: &str = "XChaCha20-Poly1305";
/// A key file is 32 bytes, or a line of base64; anything larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// A key problem: the message names the file and the fix. Exit code 3.
pub type KeyProblem = String;

/// A 256-bit token store key. `Debug` shows only its id and where it came from.
pub struct TokenKey {
    cipher: XChaCha20Poly1305,
    id: String,
    source: PathBuf,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("id", &self.id).field("source", &self.source).finish_non_exhaustive()
    }
}

impl TokenKey {
    /// Reads a key file: 32 raw bytes, or base64 of 32 bytes (surrounding whitespace ignored).
    /// Refuses a file other users can read.
    pub fn from_file(path: &Path) -> Result<Self, KeyProblem> {
        let shown = path.display();
        let file = std::fs::File::open(path).map_err(|e| {
            format!(
                "cannot open the token store key {shown}: {e}; set {KEY_FILE_ENV} to the key file (or load the systemd credential {KEY_CREDENTIAL})"
            )
        })?;
        let meta = file.metadata().map_err(|e| format!("cannot stat the token store key {shown}: {e}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "the token store key {shown} is accessible by other users (mode {mode:o}); run `chmod 600 {shown}`"
                ));
            }
        }
        let mut bytes = Vec::new();
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read the token store key {shown}: {e}"))?;
        let key = decode_key(&bytes).ok_or_else(|| {
            format!(
                "the token store key {shown} is not a key: it must hold 32 random bytes, raw or base64 (`skysync token-store new-key FILE` makes one)"
            )
        })?;
        Ok(Self::from_bytes(&key, path.to_owned()))
    }

    fn from_bytes(key: &[u8; 32], source: PathBuf) -> Self {
        let mut hasher = sha2::Sha256::new();
        hasher.update(b"skysync token store key id v1\0");
        hasher.update(key);
        let id = hasher.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self { cipher: XChaCha20Poly1305::new(key.into()), id, source }
    }

    /// The key's id (not secret): a truncated hash of it, stored in every envelope.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The file it was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }
}

fn decode_key(bytes: &[u8]) -> Option<[u8; 32]> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        // 32 bytes that happen to be printable are taken as raw unless they are base64 of 32.
        if !raw.iter().all(|b| b.is_ascii_graphic()) {
            return Some(raw);
        }
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let decoded = B64
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .ok()?;
    <[u8; 32]>::try_from(decoded).ok()
}

/// A new key file's text: base64 of 32 bytes from the operating system's random source.
pub fn new_key_text() -> anyhow::Result<String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("the operating system's random source failed: {e}"))?;
    Ok(format!("{}\n", B64.encode(key)))
}

/// How the store's files are kept at rest.
#[derive(Debug, Clone, Default)]
pub enum AtRest {
    /// Plaintext (the default). Encrypted files are refused with a key problem.
    #[default]
    Plaintext,
    /// Encrypted with this key; plaintext files are still read (and encrypted on the next save).
    Encrypted(Arc<TokenKey>),
    /// A key is configured but cannot be used: every read and write fails with this problem.
    Unavailable(KeyProblem),
}

/// Why a file's bytes could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Missing, unusable or wrong key (exit code 3).
    Key(KeyProblem),
    /// The file is damaged (the store treats it as any unreadable file).
    Unreadable(String),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u64,
    cipher: String,
    key_id: String,
    nonce: String,
    ciphertext: String,
}

impl Envelope {
    fn aad(&self) -> Vec<u8> {
        format!("{}\n{}\n{}\n{}", self.format, self.version, self.cipher, self.key_id).into_bytes()
    }
}

impl AtRest {
    /// Encrypted with the key in `path`, or plaintext without one: the profile's resolved
    /// `token_key_file` (which is [`KEY_FILE_ENV`], the credential, or the config file's key).
    pub fn from_key_file(path: Option<&Path>) -> Self {
        path.map_or(AtRest::Plaintext, Self::with_key_file)
    }

    /// Encrypted with the key in `path` (or unavailable, with the reason).
    pub fn with_key_file(path: &Path) -> Self {
        match TokenKey::from_file(path) {
            Ok(key) => AtRest::Encrypted(Arc::new(key)),
            Err(problem) => AtRest::Unavailable(problem),
        }
    }

    /// The bytes to write for `plaintext` (a token file's JSON).
    pub fn seal(&self, plaintext: Vec<u8>) -> Result<Vec<u8>, KeyProblem> {
        let key = match self {
            AtRest::Plaintext => return Ok(plaintext),
            AtRest::Unavailable(problem) => return Err(problem.clone()),
            AtRest::Encrypted(key) => key,
        };
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| format!("the operating system's random source failed: {e}"))?;
        let mut envelope = Envelope {
            format: ENCRYPTED_FORMAT.into(),
            version: u64::from(ENCRYPTED_VERSION),
            cipher: CIPHER.into(),
            key_id: key.id.clone(),
            nonce: B64.encode(nonce),
            ciphertext: String::new(),
        };
        let aad = envelope.aad();
        let ciphertext = key
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad })
            .map_err(|_| "encryption failed".to_string())?;
        envelope.ciphertext = B64.encode(ciphertext);
        let mut out = serde_json::to_vec_pretty(&envelope).expect("envelopes serialize");
        out.push(b'\n');
        Ok(out)
    }

    /// The plaintext of `bytes` read from `path`: decrypted when it is an envelope, as is otherwise.
    pub fn open(&self, path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, OpenError> {
        if let AtRest::Unavailable(problem) = self {
            return Err(OpenError::Key(problem.clone()));
        }
        let Some(envelope) = parse_envelope(&bytes)? else {
            if matches!(self, AtRest::Encrypted(_)) {
                tracing::info!(file = %path.display(), "the token file is not encrypted yet; the next save encrypts it");
            }
            return Ok(bytes);
        };
        let key = match self {
            AtRest::Encrypted(key) => key,
            _ => {
                return Err(OpenError::Key(format!(
                    "the token file {} is encrypted (key id {}), and no key is configured; set {KEY_FILE_ENV} to its key file or load the systemd credential {KEY_CREDENTIAL}",
                    path.display(),
                    envelope.key_id
                )));
            }
        };
        open_with(key, path, &envelope)
    }
}

/// `Some` when `bytes` are an encrypted envelope (checked), `None` when they are something else.
fn parse_envelope(bytes: &[u8]) -> Result<Option<Envelope>, OpenError> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Ok(None) };
    if value.get("format").and_then(|f| f.as_str()) != Some(ENCRYPTED_FORMAT) {
        return Ok(None);
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(ENCRYPTED_VERSION) => {}
        Some(v) => {
            return Err(OpenError::Unreadable(format!(
                "it is an encrypted token file of version {v}, and this skysync reads version {ENCRYPTED_VERSION}; upgrade skysync"
            )));
        }
        None => {
            return Err(OpenError::Unreadable("it is an encrypted token file without a numeric \"version\"".into()));
        }
    }
    let envelope: Envelope = serde_json::from_value(value)
        .map_err(|e| OpenError::Unreadable(format!("it is an incomplete encrypted token file ({e})")))?;
    if envelope.cipher != CIPHER {
        return Err(OpenError::Unreadable(format!("it is encrypted with an unknown cipher {:?}", envelope.cipher)));
    }
    Ok(Some(envelope))
}

fn open_with(key: &TokenKey, path: &Path, envelope: &Envelope) -> Result<Vec<u8>, OpenError> {
    if envelope.key_id != key.id {
        return Err(OpenError::Key(format!(
            "the token file {} is encrypted with key id {}, but the configured key {} has id {}; configure the key it was written with (after `skysync token-store rekey`, the new key)",
            path.display(),
            envelope.key_id,
            key.source.display(),
            key.id
        )));
    }
    let nonce = B64
        .decode(&envelope.nonce)
        .ok()
        .filter(|n| n.len() == 24)
        .ok_or_else(|| OpenError::Unreadable("its nonce is not 24 bytes of base64".into()))?;
    let ciphertext =
        B64.decode(&envelope.ciphertext).map_err(|_| OpenError::Unreadable("its ciphertext is not base64".into()))?;
    key.cipher
        .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &envelope.aad() })
        .map_err(|_| OpenError::Unreadable("it fails authentication under its key: it was altered or truncated".into()))
}

/// The key id an encrypted file was written with, `None` for a plaintext file.
pub fn key_id_of(bytes: &[u8]) -> Option<String> {
    parse_envelope(bytes).ok().flatten().map(|e| e.key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKENS: &[u8] = br#"{"format":"skysync-tokens","refresh_token":"rt-secret-123"}"#;

    fn key(byte: u8) -> AtRest {
        AtRest::Encrypted(Arc::new(TokenKey::from_bytes(&[byte; 32], PathBuf::from(format!("/keys/{byte}")))))
    }

    fn open(at: &AtRest, bytes: &[u8]) -> Result<Vec<u8>, OpenError> {
        at.open(Path::new("/store/tokens.json"), bytes.to_vec())
    }

    #[test]
    fn round_trip_hides_the_tokens_and_uses_fresh_nonces() {
        let k = key(1);
        let a = k.seal(TOKENS.to_vec()).unwrap();
        let b = k.seal(TOKENS.to_vec()).unwrap();
        assert!(!String::from_utf8_lossy(&a).contains("rt-secret"));
        assert_ne!(a, b, "each save draws a new nonce");
        assert_eq!(open(&k, &a).unwrap(), TOKENS);
        assert_eq!(
            key_id_of(&a).as_deref(),
            Some(match &k {
                AtRest::Encrypted(k) => k.id(),
                _ => unreachable!(),
            })
        );
    }

    #[test]
    fn wrong_key_and_missing_key_are_key_problems() {
        let sealed = key(1).seal(TOKENS.to_vec()).unwrap();
        assert!(matches!(open(&key(2), &sealed), Err(OpenError::Key(m)) if m.contains("key id")));
        assert!(matches!(open(&AtRest::Plaintext, &sealed), Err(OpenError::Key(m)) if m.contains(KEY_FILE_ENV)));
        let unavailable = AtRest::Unavailable("no key here".into());
        assert!(matches!(open(&unavailable, TOKENS), Err(OpenError::Key(_))));
        assert!(unavailable.seal(TOKENS.to_vec()).is_err());
    }

    #[test]
    fn tampering_is_unreadable_not_a_key_problem() {
        let k = key(1);
        let sealed = k.seal(TOKENS.to_vec()).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        let mut ct = B64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
        ct[0] ^= 0x80;
        v["ciphertext"] = B64.encode(&ct).into();
        assert!(matches!(open(&k, v.to_string().as_bytes()), Err(OpenError::Unreadable(_))));
        // The header is authenticated too.
        let mut v: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        v["nonce"] = B64.encode([0u8; 24]).into();
        assert!(matches!(open(&k, v.to_string().as_bytes()), Err(OpenError::Unreadable(_))));
        let mut v: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        v["version"] = 9.into();
        assert!(matches!(open(&k, v.to_string().as_bytes()), Err(OpenError::Unreadable(m)) if m.contains("upgrade")));
    }

    #[test]
    fn plaintext_is_read_with_a_key_configured() {
        assert_eq!(open(&key(1), TOKENS).unwrap(), TOKENS);
        assert_eq!(open(&AtRest::Plaintext, TOKENS).unwrap(), TOKENS);
    }

    #[test]
    fn key_files_are_raw_or_base64_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            p
        };
        let b64 = write("b64", new_key_text().unwrap().as_bytes(), 0o600);
        let raw = write("raw", &[0xffu8; 32], 0o400);
        assert!(TokenKey::from_file(&b64).is_ok());
        assert!(TokenKey::from_file(&raw).is_ok());
        assert!(TokenKey::from_file(&write("short", b"abc", 0o600)).unwrap_err().contains("32 random bytes"));
        #[cfg(unix)]
        assert!(TokenKey::from_file(&write("open", &[0xffu8; 32], 0o644)).unwrap_err().contains("chmod 600"));
        assert!(TokenKey::from_file(&dir.path().join("absent")).unwrap_err().contains("cannot open"));
        assert!(!format!("{:?}", TokenKey::from_file(&raw).unwrap()).contains("255"));
    }
}
