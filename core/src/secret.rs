//! Secret values: tokens, the client secret, authorization codes and PKCE verifiers.
//!
//! Each is a newtype whose `Debug` prints `[redacted]` and which has no `Display` and no
//! `PartialEq`, so a secret cannot reach a log line or an error message by accident. Code that
//! really needs the value calls [`secret()`](AccessToken::secret) and owns that decision.

use serde::{Deserialize, Serialize};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Never log or display it.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Whether two secrets are equal, compared in constant time.
            pub fn ct_eq(&self, other: &Self) -> bool {
                constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// A bearer access token (about 60 minutes of life at Blackbaud).
    AccessToken
);
secret_type!(
    /// A refresh token (365 days of life at Blackbaud).
    RefreshToken
);
secret_type!(
    /// The application's client secret ("Application secret" in Blackbaud's developer portal).
    ClientSecret
);
secret_type!(
    /// A one-time authorization code (5 minutes of life at Blackbaud).
    AuthorizationCode
);
secret_type!(
    /// A PKCE code verifier (RFC 7636).
    PkceVerifier
);
secret_type!(
    /// The `Bb-Api-Subscription-Key` sent with every SKY API call.
    SubscriptionKey
);

/// serde's messages may quote a value from the input (`invalid type: string "…"`), which may be a
/// secret: this drops every quoted part, keeping the rest of the message.
pub fn redact_quoted(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            quoted = !quoted;
            out.push_str(if quoted { "\"…" } else { "\"" });
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Constant-time byte comparison (the length is not secret). Here rather than in `pkce`, which
/// builds on these types: secrets depend on nothing else in the crate.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = RefreshToken::new("very-secret-value");
        let shown = format!("{t:?} {:?}", Some(AccessToken::new("also-secret")));
        assert!(!shown.contains("secret-value"));
        assert!(!shown.contains("also-secret"));
        assert!(shown.contains("RefreshToken([redacted])"));
    }

    #[test]
    fn redact_quoted_drops_quoted_values() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "tok-123", expected u64"#),
            "invalid type: string \"…\", expected u64"
        );
        assert_eq!(redact_quoted("no quotes"), "no quotes");
    }

    #[test]
    fn serde_is_transparent_and_ct_eq_works() {
        let t = AccessToken::new("abc");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"abc\"");
        let back: AccessToken = serde_json::from_str("\"abc\"").unwrap();
        assert!(back.ct_eq(&t));
        assert!(!back.ct_eq(&AccessToken::new("abd")));
    }
}
