//! Device tokens as the agent reads them (the format is [`emberline_core::tokens`]). A simulated
//! sensor sends its own: as `Authorization: Bearer` over HTTP, as username (its name) and
//! password over MQTT.

use std::collections::HashMap;
use std::path::Path;

use secrecy::SecretString;

/// Tokens by device name. `Debug` shows only how many there are.
#[derive(Default, Clone)]
pub struct DeviceTokens {
    by_name: HashMap<String, SecretString>,
}

impl DeviceTokens {
    /// Reads a tokens file; the error is a sentence naming the file or the bad line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|line| {
            format!(
                "tokens file {}, line {line}: expected `name token`, each name and each token once",
                path.display()
            )
        })
    }

    /// Parses a tokens file's text ([`emberline_core::tokens`]); the error is the bad line's
    /// number.
    pub fn parse(text: &str) -> Result<Self, usize> {
        let by_name = emberline_core::tokens::parse_tokens(text)?
            .into_iter()
            .map(|(name, token)| (name.to_owned(), SecretString::from(token.to_owned())))
            .collect();
        Ok(Self { by_name })
    }

    /// The token of device `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.by_name.get(name)
    }
}

impl std::fmt::Debug for DeviceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTokens")
            .field("devices", &self.by_name.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn lines_comments_and_errors() {
        let tokens =
            DeviceTokens::parse("# fire\nsensor-0 abc\n\n sensor-1  def # spare\n").unwrap();
        assert_eq!(tokens.get("sensor-1").unwrap().expose_secret(), "def");
        assert!(tokens.get("sensor-2").is_none());
        assert_eq!(DeviceTokens::parse("ok tok\nlonely\n").unwrap_err(), 2);
        assert!(
            !format!("{tokens:?}").contains("abc"),
            "tokens must not print"
        );
    }
}
