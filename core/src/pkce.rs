//! PKCE (RFC 7636, S256) and the anti-CSRF `state` parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::host::Entropy;
use crate::secret::{PkceVerifier, constant_time_eq};

/// Random bytes behind a verifier: 64 bytes give 86 characters, inside RFC 7636's 43..=128.
const VERIFIER_BYTES: usize = 64;
/// Random bytes behind a `state`: 256 bits.
const STATE_BYTES: usize = 32;

impl PkceVerifier {
    /// A fresh verifier of 86 characters from the unreserved set, drawn from `entropy`.
    pub fn generate(entropy: &dyn Entropy) -> Self {
        let mut bytes = [0u8; VERIFIER_BYTES];
        entropy.fill(&mut bytes);
        Self::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The S256 challenge: `base64url(SHA-256(verifier))` without padding.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.secret().as_bytes()))
    }

    /// Whether the verifier has RFC 7636's length and alphabet.
    pub fn is_well_formed(&self) -> bool {
        let v = self.secret();
        (43..=128).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    }
}

/// The `state` sent to the authorization endpoint and expected back on the redirect.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CsrfState(String);

impl CsrfState {
    /// A fresh random state.
    pub fn generate(entropy: &dyn Entropy) -> Self {
        let mut bytes = [0u8; STATE_BYTES];
        entropy.fill(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a state received from elsewhere (for example restored from browser storage).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value to put in the URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares with a `state` returned on the redirect, in constant time.
    pub fn matches(&self, returned: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), returned.as_bytes())
    }
}

impl std::fmt::Debug for CsrfState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfState([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::testing::SeededEntropy;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn generated_verifier_is_well_formed_and_seeded() {
        let a = PkceVerifier::generate(&SeededEntropy::new(7));
        let b = PkceVerifier::generate(&SeededEntropy::new(7));
        let c = PkceVerifier::generate(&SeededEntropy::new(8));
        assert!(a.is_well_formed());
        assert_eq!(a.secret().len(), 86);
        assert_eq!(a.secret(), b.secret());
        assert_ne!(a.secret(), c.secret());
        assert!(!PkceVerifier::new("short").is_well_formed());
        assert!(!PkceVerifier::new("a".repeat(42) + " ").is_well_formed());
    }

    #[test]
    fn state_matches_only_itself() {
        let s = CsrfState::generate(&SeededEntropy::new(1));
        assert_eq!(s.as_str().len(), 43);
        assert!(s.matches(s.as_str()));
        assert!(!s.matches(""));
        let mut tampered = s.as_str().to_owned();
        tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
        assert!(!s.matches(&tampered));
        assert!(!format!("{s:?}").contains(s.as_str()));
    }
}
