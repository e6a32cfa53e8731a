//! Per-agent bearer tokens (design §7): a token names exactly one agent.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use emberline_core::AgentId;

use crate::config::ConfigError;

/// Shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// Which agent each token belongs to. An agent may have several tokens (for rotation); a token
/// belongs to one agent. `Debug` never prints a token.
#[derive(Clone, Default)]
pub struct Tokens {
    by_token: HashMap<String, AgentId>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("tokens", &self.by_token.len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Reads a tokens file: `agent_id token` per line; blank lines and `#` comments are ignored,
    /// so a token holds neither whitespace nor `#` (hex from `openssl rand -hex 32` is ideal).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::TokensFile {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text).map_err(|(line, reason)| ConfigError::TokensLine {
            path: path.to_owned(),
            line,
            reason,
        })
    }

    /// Parses the file's text; an error names the line (from 1) and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut tokens = Self::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            tokens
                .add_line(line)
                .map_err(|reason| (index + 1, reason))?;
        }
        if tokens.by_token.is_empty() {
            return Err((0, "no tokens: write one `agent_id token` per line".into()));
        }
        Ok(tokens)
    }

    fn add_line(&mut self, line: &str) -> Result<(), String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [agent, token] = fields[..] else {
            return Err("expected two fields, `agent_id token`".into());
        };
        let agent = AgentId::parse(agent)?;
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the token of agent {agent} is shorter than {MIN_TOKEN_LEN} characters; use a long random one (e.g. `openssl rand -hex 32`)"
            ));
        }
        if let Some(other) = self.by_token.insert(token.to_owned(), agent.clone()) {
            return Err(format!(
                "agents {other} and {agent} share a token; each token must name one agent"
            ));
        }
        Ok(())
    }

    /// The agent a token belongs to.
    pub fn agent(&self, token: &str) -> Option<&AgentId> {
        self.by_token.get(token)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    emberline_core::tokens::bearer(headers.get(AUTHORIZATION)?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# agents of the north ridge\n\
        edge-1 0123456789abcdef0123\n\n\
        edge-2   fedcba9876543210fedc  # rotated 2025-05\n\
        edge-2 aaaaaaaaaaaaaaaaaaaaaa\n";

    #[test]
    fn tokens_name_their_agent() {
        let tokens = Tokens::parse(FILE).unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(
            tokens.agent("0123456789abcdef0123").unwrap().as_str(),
            "edge-1"
        );
        assert_eq!(
            tokens.agent("aaaaaaaaaaaaaaaaaaaaaa").unwrap().as_str(),
            "edge-2"
        );
        assert!(tokens.agent("nope").is_none());
        assert!(!format!("{tokens:?}").contains("0123"));
    }

    #[test]
    fn bad_lines_are_named() {
        let (line, reason) = Tokens::parse("edge-1 0123456789abcdef0123\nedge-2\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(reason.contains("two fields"), "{reason}");
        let (line, reason) = Tokens::parse("edge-1 short\n").unwrap_err();
        assert_eq!((line, reason.contains("shorter")), (1, true));
        let shared = "a 0123456789abcdef0123\nb 0123456789abcdef0123\n";
        assert!(Tokens::parse(shared).unwrap_err().1.contains("share"));
        assert!(Tokens::parse("bad/id 0123456789abcdef0123").is_err());
        assert!(Tokens::parse("# nothing\n").is_err());
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
