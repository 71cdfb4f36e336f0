//! The client-side pace: a number of calls per second, or `off`. Zero is refused: it used to mean
//! "unpaced", which reads as "never call"; `off` says it.

use serde::Deserialize;

/// `--rate-limit`, `SKYSYNC_RATE_LIMIT` and the `[sync]` table's `rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    /// At most this many calls per second (checked to be above 0 by [`RateLimit::checked`]).
    PerSecond(f64),
    /// No client-side pace: Blackbaud's 429s are the only brake.
    Off,
}

/// The environment variable that sets the pace.
pub const RATE_LIMIT_ENV: &str = "SKYSYNC_RATE_LIMIT";

impl RateLimit {
    /// `off` (any case) or a number, as the flag and the environment variable spell it. The range
    /// is checked by [`RateLimit::checked`], where the message can say where the value came from.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(RateLimit::Off);
        }
        text.parse::<f64>()
            .map(RateLimit::PerSecond)
            .map_err(|_| format!("{text:?} is neither a number of calls per second nor `off`"))
    }

    /// The value when a run can use it; otherwise what is wrong with it.
    pub fn checked(self) -> Result<Self, String> {
        match self {
            RateLimit::PerSecond(r) if !r.is_finite() || r < 0.0 => {
                Err(format!("must be a number of calls per second, not {r}"))
            }
            RateLimit::PerSecond(0.0) => Err("must be more than 0 calls per second".into()),
            ok => Ok(ok),
        }
    }

    /// The pacer's number: calls per second, 0 for off.
    pub fn calls_per_second(self) -> f64 {
        match self {
            RateLimit::PerSecond(r) => r,
            RateLimit::Off => 0.0,
        }
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateLimit::PerSecond(r) => write!(f, "{r}"),
            RateLimit::Off => f.write_str("off"),
        }
    }
}

/// A TOML number, or the string `"off"` (a quoted number is refused, so `config set` writes
/// numbers as numbers).
impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(r) => Ok(RateLimit::PerSecond(r)),
            Raw::Text(t) if t.trim().eq_ignore_ascii_case("off") => Ok(RateLimit::Off),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "rate_limit must be a number of calls per second or \"off\", not {t:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn off_is_spelled_out_and_zero_is_refused() {
        assert_eq!(RateLimit::parse("off"), Ok(RateLimit::Off));
        assert_eq!(RateLimit::parse("OFF"), Ok(RateLimit::Off));
        assert_eq!(RateLimit::parse("2.5"), Ok(RateLimit::PerSecond(2.5)));
        assert!(RateLimit::parse("fast").is_err());
        assert!(RateLimit::PerSecond(0.0).checked().unwrap_err().contains("more than 0"));
        assert!(RateLimit::PerSecond(-1.0).checked().is_err());
        assert_eq!(RateLimit::Off.checked().map(RateLimit::calls_per_second), Ok(0.0));
        #[derive(serde::Deserialize)]
        struct T {
            rate_limit: RateLimit,
        }
        let read = |text: &str| toml::from_str::<T>(text).map(|t| t.rate_limit);
        assert_eq!(read("rate_limit = \"off\"").unwrap(), RateLimit::Off);
        assert_eq!(read("rate_limit = 5").unwrap(), RateLimit::PerSecond(5.0));
        assert_eq!(read("rate_limit = 0").unwrap(), RateLimit::PerSecond(0.0), "read, then refused where it is used");
        assert!(read("rate_limit = \"5\"").is_err());
    }
}
