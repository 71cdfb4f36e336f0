//! Sealed bundles: a token bundle encrypted in the browser to a key only the importing machine has.
//!
//! A plain bundle holds a refresh token (or an authorization code) in JSON, and it often travels
//! by email or chat. `skysync import --prepare` makes a one-time [`ImportKey`] in the profile and
//! prints a consent-page link carrying its [`Recipient`] (public key and binding nonce) in the URL
//! fragment, which browsers never send to a server. The page [`seal`]s the bundle to it, and
//! `skysync import` [`open`]s it with the stored key, then deletes the key.
//!
//! The encryption is HPKE (RFC 9180) in base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256
//! and ChaCha20-Poly1305, from the `hpke` crate (RustCrypto primitives). Nothing here is home-made:
//! this module only frames HPKE's output as a small versioned JSON document. The framing fields
//! (format, version, suite, recipient, nonce) are the HPKE `aad`, so none can be changed without
//! the opening failing.
//!
//! The nonce binds a bundle to one prepare step: `import` refuses a sealed bundle whose nonce is
//! not the stored one (a bundle made from someone else's link, or from an earlier prepare). It
//! does not authenticate the sender: whoever holds the link can seal a bundle to it, so the link
//! should reach the admin over a channel you trust, as the bundle did before.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};

/// The `format` marker of a sealed bundle.
pub const SEALED_FORMAT: &str = "skysync-sealed-bundle";
/// The sealed-bundle version this build writes and reads.
pub const SEALED_VERSION: u32 = 1;
/// The HPKE suite, named as RFC 9180 names its parts.
pub const SEALED_SUITE: &str = "HPKE-base/DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305";
/// The `format` marker of a stored import key.
pub const IMPORT_KEY_FORMAT: &str = "skysync-import-key";
/// HPKE `info`: separates this use of the key from any other.
const HPKE_INFO: &[u8] = b"skysync sealed token bundle v1";

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Why a sealed bundle cannot be opened, or a recipient or key not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Not a sealed bundle, or a field is missing or malformed.
    #[error("not a valid sealed bundle: {0}")]
    Malformed(String),
    /// A version this build does not read.
    #[error("sealed bundle version {0} is not supported by this skysync; upgrade skysync")]
    UnsupportedVersion(u64),
    /// Sealed to another key than the prepared one.
    #[error(
        "the bundle was sealed for another import key (recipient {bundle}, this profile's prepared key is {prepared}); use the link prepared on this machine and profile"
    )]
    WrongRecipient {
        /// Fingerprint of the bundle's recipient.
        bundle: String,
        /// Fingerprint of the prepared key.
        prepared: String,
    },
    /// Sealed to this key but for another prepare step.
    #[error(
        "the bundle is bound to another prepare step (nonce mismatch); it was not made from the link this profile printed"
    )]
    WrongNonce,
    /// The authenticated decryption failed: the bundle was altered, or the key is not the one.
    #[error("the sealed bundle cannot be decrypted: it was altered or truncated, or sealed to another key")]
    Undecryptable,
    /// A recipient (public key or nonce) from a link is malformed.
    #[error("invalid recipient: {0}")]
    BadRecipient(String),
    /// A stored import key is malformed.
    #[error("the import key file is not valid: {0}")]
    BadKey(String),
    /// The random source or HPKE failed while sealing.
    #[error("sealing failed: {0}")]
    Seal(String),
}

/// What a page needs to seal a bundle: the recipient's public key and the prepare step's nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    public: [u8; 32],
    nonce: String,
}

impl Recipient {
    /// From the link's base64url fields.
    pub fn parse(public_b64: &str, nonce: &str) -> Result<Self, SealError> {
        let public = B64
            .decode(public_b64.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| SealError::BadRecipient("the public key is not 32 bytes of base64url".into()))?;
        let nonce = nonce.trim();
        if nonce.len() < 16
            || nonce.len() > 64
            || !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SealError::BadRecipient("the nonce must be 16 to 64 base64url characters".into()));
        }
        Ok(Self { public, nonce: nonce.to_owned() })
    }

    /// The public key, base64url.
    pub fn public_b64(&self) -> String {
        B64.encode(self.public)
    }

    /// The binding nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// A short, stable name for the key, for messages (not secret).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public)
    }

    /// The URL fragment the consent page reads: `skysync-recipient=…&skysync-nonce=…`.
    pub fn to_fragment(&self) -> String {
        format!("skysync-recipient={}&skysync-nonce={}", self.public_b64(), self.nonce)
    }
}

fn fingerprint(public: &[u8; 32]) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(public);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A one-time import key: the X25519 private key and its [`Recipient`]. `Debug` hides the key.
#[derive(Clone)]
pub struct ImportKey {
    secret: [u8; 32],
    recipient: Recipient,
}

impl std::fmt::Debug for ImportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportKey").field("recipient", &self.recipient.fingerprint()).finish_non_exhaustive()
    }
}

/// The stored form of an [`ImportKey`].
#[derive(Serialize, Deserialize)]
struct StoredKey {
    format: String,
    version: u32,
    suite: String,
    private_key: String,
    public_key: String,
    nonce: String,
}

impl ImportKey {
    /// A fresh key pair and nonce from the operating system's (or browser's) random source.
    pub fn generate() -> Result<Self, SealError> {
        let mut ikm = [0u8; 32];
        getrandom::fill(&mut ikm).map_err(|e| SealError::Seal(format!("random source: {e}")))?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Seal(format!("random source: {e}")))?;
        let (sk, pk) = Kem::derive_keypair(&ikm);
        Ok(Self {
            secret: sk.to_bytes().into(),
            recipient: Recipient { public: pk.to_bytes().into(), nonce: B64.encode(nonce) },
        })
    }

    /// What the consent page needs.
    pub fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// The JSON text to store (mode 0600: it holds the private key).
    pub fn to_json(&self) -> String {
        let stored = StoredKey {
            format: IMPORT_KEY_FORMAT.into(),
            version: SEALED_VERSION,
            suite: SEALED_SUITE.into(),
            private_key: B64.encode(self.secret),
            public_key: self.recipient.public_b64(),
            nonce: self.recipient.nonce.clone(),
        };
        let mut text = serde_json::to_string_pretty(&stored).expect("keys serialize");
        text.push('\n');
        text
    }

    /// Reads a stored key, checking that its private and public halves match.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SealError> {
        let stored: StoredKey = serde_json::from_slice(bytes)
            .map_err(|e| SealError::BadKey(crate::secret::redact_quoted(&e.to_string())))?;
        if stored.format != IMPORT_KEY_FORMAT || stored.version != SEALED_VERSION || stored.suite != SEALED_SUITE {
            return Err(SealError::BadKey(format!("not a version {SEALED_VERSION} {IMPORT_KEY_FORMAT}")));
        }
        let secret = B64
            .decode(stored.private_key.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| SealError::BadKey("the private key is not 32 bytes of base64url".into()))?;
        let recipient =
            Recipient::parse(&stored.public_key, &stored.nonce).map_err(|e| SealError::BadKey(e.to_string()))?;
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret)
            .map_err(|_| SealError::BadKey("the private key is invalid".into()))?;
        let derived: [u8; 32] = <Kem as hpke::Kem>::sk_to_pk(&sk).to_bytes().into();
        if derived != recipient.public {
            return Err(SealError::BadKey("the public key does not belong to the private key".into()));
        }
        Ok(Self { secret, recipient })
    }
}

/// A sealed bundle as it travels (JSON).
#[derive(Serialize, Deserialize)]
struct SealedBundle {
    format: String,
    version: u64,
    suite: String,
    recipient: String,
    nonce: String,
    enc: String,
    ciphertext: String,
}

impl SealedBundle {
    /// The authenticated framing: every field but the HPKE output itself.
    fn aad(&self) -> Vec<u8> {
        format!("{}\n{}\n{}\n{}\n{}", self.format, self.version, self.suite, self.recipient, self.nonce).into_bytes()
    }
}

/// Whether `bytes` look like a sealed bundle (JSON with the sealed `format`), so a caller can tell
/// it from a plain bundle before parsing either.
pub fn is_sealed(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.format.as_deref() == Some(SEALED_FORMAT))
}

/// Encrypts `plaintext` (a bundle's JSON text) to `recipient`. Returns the sealed bundle's JSON text.
pub fn seal(plaintext: &[u8], recipient: &Recipient) -> Result<String, SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.public)
        .map_err(|_| SealError::BadRecipient("the public key is invalid".into()))?;
    let mut sealed = SealedBundle {
        format: SEALED_FORMAT.into(),
        version: u64::from(SEALED_VERSION),
        suite: SEALED_SUITE.into(),
        recipient: recipient.public_b64(),
        nonce: recipient.nonce.clone(),
        enc: String::new(),
        ciphertext: String::new(),
    };
    let mut rng = rand_core::UnwrapErr(rand_core::OsRng);
    let (enc, ciphertext) =
        hpke::single_shot_seal::<Aead, Kdf, Kem, _>(&OpModeS::Base, &pk, HPKE_INFO, plaintext, &sealed.aad(), &mut rng)
            .map_err(|e| SealError::Seal(e.to_string()))?;
    sealed.enc = B64.encode(enc.to_bytes());
    sealed.ciphertext = B64.encode(ciphertext);
    let mut text = serde_json::to_string_pretty(&sealed).expect("sealed bundles serialize");
    text.push('\n');
    Ok(text)
}

/// Decrypts a sealed bundle with `key`, checking recipient and nonce first. Returns the inner
/// bundle's JSON text (still to be parsed and validated as any bundle).
pub fn open(bytes: &[u8], key: &ImportKey) -> Result<Vec<u8>, SealError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| SealError::Malformed(format!("invalid JSON ({e})")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(SEALED_FORMAT) {
        return Err(SealError::Malformed(format!("missing \"format\": \"{SEALED_FORMAT}\"")));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SEALED_VERSION) => {}
        Some(v) => return Err(SealError::UnsupportedVersion(v)),
        None => return Err(SealError::Malformed("missing numeric \"version\"".into())),
    }
    let sealed: SealedBundle = serde_json::from_value(value).map_err(|e| SealError::Malformed(e.to_string()))?;
    if sealed.suite != SEALED_SUITE {
        return Err(SealError::Malformed(format!("unknown suite {:?}", sealed.suite)));
    }
    let bundle_recipient =
        Recipient::parse(&sealed.recipient, &sealed.nonce).map_err(|e| SealError::Malformed(e.to_string()))?;
    if bundle_recipient.public != key.recipient.public {
        return Err(SealError::WrongRecipient {
            bundle: bundle_recipient.fingerprint(),
            prepared: key.recipient.fingerprint(),
        });
    }
    if !crate::secret::constant_time_eq(sealed.nonce.as_bytes(), key.recipient.nonce.as_bytes()) {
        return Err(SealError::WrongNonce);
    }
    let enc_bytes = B64.decode(&sealed.enc).map_err(|_| SealError::Malformed("\"enc\" is not base64url".into()))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc_bytes).map_err(|_| SealError::Undecryptable)?;
    let ciphertext =
        B64.decode(&sealed.ciphertext).map_err(|_| SealError::Malformed("\"ciphertext\" is not base64url".into()))?;
    let sk =
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&key.secret).map_err(|_| SealError::BadKey("invalid".into()))?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, HPKE_INFO, &ciphertext, &sealed.aad())
        .map_err(|_| SealError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INNER: &[u8] = br#"{"format":"skysync-token-bundle","version":1,"kind":"refresh_token","secret":"rt-123"}"#;

    fn reseal_field(sealed: &str, field: &str, value: serde_json::Value) -> String {
        let mut v: serde_json::Value = serde_json::from_str(sealed).unwrap();
        v[field] = value;
        v.to_string()
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let key = ImportKey::generate().unwrap();
        let sealed = seal(INNER, key.recipient()).unwrap();
        assert!(is_sealed(sealed.as_bytes()));
        assert!(!is_sealed(INNER));
        assert!(!sealed.contains("rt-123"), "the secret is not in the sealed text");
        assert_eq!(open(sealed.as_bytes(), &key).unwrap(), INNER);
    }

    #[test]
    fn another_key_is_refused_as_wrong_recipient() {
        let key = ImportKey::generate().unwrap();
        let other = ImportKey::generate().unwrap();
        let sealed = seal(INNER, other.recipient()).unwrap();
        assert!(matches!(open(sealed.as_bytes(), &key), Err(SealError::WrongRecipient { .. })));
    }

    #[test]
    fn a_swapped_recipient_field_does_not_decrypt() {
        // The attacker rewrites the recipient to ours: the HPKE opening must still fail.
        let key = ImportKey::generate().unwrap();
        let other = ImportKey::generate().unwrap();
        let sealed =
            seal(INNER, &Recipient { public: other.recipient.public, nonce: key.recipient.nonce.clone() }).unwrap();
        let forged = reseal_field(&sealed, "recipient", key.recipient.public_b64().into());
        assert_eq!(open(forged.as_bytes(), &key), Err(SealError::Undecryptable));
    }

    #[test]
    fn nonce_binding_refuses_another_prepare_step() {
        let key = ImportKey::generate().unwrap();
        let elsewhere = Recipient { public: key.recipient.public, nonce: "AAAAAAAAAAAAAAAAAAAAAA".into() };
        let sealed = seal(INNER, &elsewhere).unwrap();
        assert_eq!(open(sealed.as_bytes(), &key), Err(SealError::WrongNonce));
        // Rewriting the nonce to ours breaks the authentication instead.
        let forged = reseal_field(&sealed, "nonce", key.recipient.nonce.clone().into());
        assert_eq!(open(forged.as_bytes(), &key), Err(SealError::Undecryptable));
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let key = ImportKey::generate().unwrap();
        let sealed = seal(INNER, key.recipient()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&sealed).unwrap();
        let mut ct = B64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
        ct[3] ^= 1;
        let forged = reseal_field(&sealed, "ciphertext", B64.encode(&ct).into());
        assert_eq!(open(forged.as_bytes(), &key), Err(SealError::Undecryptable));
        ct.truncate(ct.len() - 1);
        let truncated = reseal_field(&sealed, "ciphertext", B64.encode(&ct).into());
        assert_eq!(open(truncated.as_bytes(), &key), Err(SealError::Undecryptable));
    }

    #[test]
    fn unknown_versions_and_garbage_are_malformed_not_panics() {
        let key = ImportKey::generate().unwrap();
        let sealed = seal(INNER, key.recipient()).unwrap();
        let v2 = reseal_field(&sealed, "version", 2.into());
        assert_eq!(open(v2.as_bytes(), &key), Err(SealError::UnsupportedVersion(2)));
        assert!(matches!(open(b"{}", &key), Err(SealError::Malformed(_))));
        assert!(matches!(open(b"\xff", &key), Err(SealError::Malformed(_))));
        let bad_enc = reseal_field(&sealed, "enc", "AAAA".into());
        assert_eq!(open(bad_enc.as_bytes(), &key), Err(SealError::Undecryptable));
    }

    #[test]
    fn stored_key_round_trips_and_mismatched_halves_are_refused() {
        let key = ImportKey::generate().unwrap();
        let back = ImportKey::from_json(key.to_json().as_bytes()).unwrap();
        assert_eq!(back.recipient(), key.recipient());
        assert!(!format!("{key:?}").contains(&B64.encode(key.secret)));
        let other = ImportKey::generate().unwrap();
        let mut stored: serde_json::Value = serde_json::from_str(&key.to_json()).unwrap();
        stored["public_key"] = other.recipient.public_b64().into();
        assert!(matches!(ImportKey::from_json(stored.to_string().as_bytes()), Err(SealError::BadKey(_))));
    }

    #[test]
    fn recipients_parse_from_links_and_refuse_junk() {
        let key = ImportKey::generate().unwrap();
        let r = key.recipient();
        assert_eq!(&Recipient::parse(&r.public_b64(), r.nonce()).unwrap(), r);
        assert!(r.to_fragment().starts_with("skysync-recipient="));
        assert!(Recipient::parse("abc", r.nonce()).is_err());
        assert!(Recipient::parse(&r.public_b64(), "short").is_err());
        assert!(Recipient::parse(&r.public_b64(), "has spaces in it ok?").is_err());
    }
}
