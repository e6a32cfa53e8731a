//! The device tokens file, as the agent reads it and the simulators send from it: one device per
//! line, `name token`, blank lines allowed, `#` at the start of a line or after a space starts a
//! comment (inside a token it is part of the token). Each name and each token appears once: a
//! token shared by two devices, or a device listed twice, is a mistake the file refuses. HTTP devices send
//! `Authorization: Bearer <token>`; MQTT devices send the name as username and the token as
//! password.

/// The `(name, token)` pairs of a tokens file's text, in file order; the error is the number
/// (from 1) of the first line that is not `name token`, or that repeats a name or a token.
pub fn parse_tokens(text: &str) -> Result<Vec<(&str, &str)>, usize> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = without_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(name), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(index + 1);
        };
        if pairs.iter().any(|(n, t)| *n == name || *t == token) {
            return Err(index + 1);
        }
        pairs.push((name, token));
    }
    Ok(pairs)
}

/// The credentials of an `Authorization` header's value when its scheme is `Bearer` (in any case,
/// RFC 7235), trimmed; `None` for another scheme or none at all. The agent (device tokens) and
/// the bridge (agent tokens) read it the same way.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The line up to a `#` that starts it or follows whitespace.
fn without_comment(line: &str) -> &str {
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        if c == '#' && previous.is_whitespace() {
            return &line[..at];
        }
        previous = c;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

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

    #[test]
    fn a_hash_inside_a_token_is_part_of_it() {
        // It used to cut the token to `abc`, which then let a device in with those three letters.
        assert_eq!(
            parse_tokens("ridge-7 abc#def\n"),
            Ok(vec![("ridge-7", "abc#def")])
        );
        assert_eq!(
            parse_tokens("ridge-7 abc #def\n"),
            Ok(vec![("ridge-7", "abc")])
        );
    }

    #[test]
    fn names_and_tokens_are_each_listed_once() {
        // A shared token silently belonged to the later device only; a device listed twice kept
        // both tokens over HTTP but only the last over MQTT.
        assert_eq!(parse_tokens("a tok-1\nb tok-1\n"), Err(2));
        assert_eq!(parse_tokens("a tok-1\n\na tok-2\n"), Err(3));
    }
}
