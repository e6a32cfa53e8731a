//! Device tokens: who may send readings.
//!
//! The tokens file's format is [`emberline_core::tokens`]: one `name token` per line. HTTP devices
//! send `Authorization: Bearer <token>`; MQTT devices send the name as username and the token as
//! password. With no file configured every device is accepted (and the agent says so at start).

use std::collections::HashMap;
use std::path::Path;

use secrecy::{ExposeSecret as _, SecretString};

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "tokens file {path}, line {line}: expected `name token`, each name and each token once"
    )]
    Line { path: String, line: usize },
}

/// The configured device tokens. Tokens are secrets: never logged, never in metrics, and
/// `Debug` shows only how many there are.
#[derive(Default)]
pub struct Tokens {
    by_token: HashMap<String, String>,
    by_name: HashMap<String, SecretString>,
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|line| TokensError::Line { path: shown, line })
    }

    /// Parses the file's text ([`emberline_core::tokens`]); the error is the bad line's number.
    pub fn parse(text: &str) -> Result<Self, usize> {
        let mut tokens = Self::default();
        for (name, token) in emberline_core::tokens::parse_tokens(text)? {
            tokens.by_token.insert(token.to_owned(), name.to_owned());
            tokens
                .by_name
                .insert(name.to_owned(), SecretString::from(token.to_owned()));
        }
        Ok(tokens)
    }

    /// The device a bearer token belongs to.
    pub fn device_for_token(&self, token: &str) -> Option<&str> {
        self.by_token.get(token).map(String::as_str)
    }

    /// Whether `name` / `password` are a configured device's credentials (MQTT).
    pub fn check_password(&self, name: &str, password: &[u8]) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|token| constant_time_eq(token.expose_secret().as_bytes(), password))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("devices", &self.by_name.len())
            .finish()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_file_lines_and_errors() {
        let tokens =
            Tokens::parse("# devices\nridge-7 s3cret\n\n  creek-2   t0ken # spare\n").unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.device_for_token("t0ken"), Some("creek-2"));
        assert!(tokens.check_password("ridge-7", b"s3cret"));
        assert!(!tokens.check_password("ridge-7", b"s3creT"));
        assert!(!tokens.check_password("nobody", b"s3cret"));
        assert_eq!(Tokens::parse("a b c\n").unwrap_err(), 1);
        assert_eq!(Tokens::parse("ok tok\nlonely\n").unwrap_err(), 2);
        assert!(
            !format!("{tokens:?}").contains("s3cret"),
            "tokens must not print"
        );
    }
}
