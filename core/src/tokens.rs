//! The device tokens file, as the agent reads it and the simulators send from it: one device per
//! line, `name token`, blank lines allowed, `#` starts a comment. HTTP devices send
//! `Authorization: Bearer <token>`; MQTT devices send the name as username and the token as
//! password.

/// The `(name, token)` pairs of a tokens file's text, in file order; the error is the number
/// (from 1) of the first line that is not `name token`.
pub fn parse_tokens(text: &str) -> Result<Vec<(&str, &str)>, usize> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(index + 1);
        };
        pairs.push((name, token));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_errors() {
        let text = "# devices\nridge-7 s3cret\n\n  creek-2   t0ken # spare\n";
        assert_eq!(
            parse_tokens(text),
            Ok(vec![("ridge-7", "s3cret"), ("creek-2", "t0ken")])
        );
        assert_eq!(parse_tokens(""), Ok(vec![]));
        assert_eq!(parse_tokens("a b c\n"), Err(1));
        assert_eq!(parse_tokens("ok tok\nlonely\n"), Err(2));
        assert_eq!(
            parse_tokens("ok tok\n# x y z\nno#comment-ends-a-name\n"),
            Err(3)
        );
    }
}
