//! [`Secret`]: a configured secret (a client secret, a cookie key) that never prints.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a masked secret prints as, in `Debug` and when serialized (`check-config` output).
pub const MASK: &str = "********";

/// A secret string. `Debug`, `Display`-free, and `Serialize` print [`MASK`] (or nothing when
/// empty); only [`Secret::expose`] reveals it, and only the code that puts it on the wire calls
/// that. Surrounding whitespace (the trailing newline of a secret file) is removed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, trimmed.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().trim().to_owned())
    }

    /// Reads a secret file (`*_FILE` settings), trimmed.
    ///
    /// # Errors
    /// The file cannot be read (the message names the file, never its content).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        std::fs::read_to_string(path)
            .map(Self::new)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            write!(f, "Secret({MASK})")
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { MASK })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new(" s3cr3t-value\n");
        assert_eq!(secret.expose(), "s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, format!("\"{MASK}\""));
        // Positive control: deserializing reads the real value.
        let back: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back.expose(), "abc");
        assert_eq!(format!("{:?}", Secret::default()), "Secret(<empty>)");
    }
}
