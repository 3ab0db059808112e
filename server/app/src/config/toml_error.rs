//! What a config file's TOML error may say: where, never what.
//!
//! `toml`'s `Display` of a parse error prints the offending line of the file under a caret, and
//! serde's messages quote the value they refused (`invalid type: string "…", expected u32`,
//! `unknown variant `…``). A config file holds secrets (`client_secret`, `api_key`, Redis and
//! database URLs with passwords), and the error goes to the terminal, the log and CI output. So
//! the error is rebuilt from toml's message and span: the line and column, the message with
//! every value serde quoted replaced by its kind, and, should any string written in the file
//! still appear in it (a message shape not known here), a fixed text instead.

use std::fmt;

/// A place in the config file, both 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The line.
    pub line: usize,
    /// The column, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Said instead of a message that would quote the file.
const WITHHELD: &str = "this value is not valid here (not shown: it may be a secret)";

/// Strings shorter than this are not looked for in the message: `"a"` or `"on"` occur in
/// toml's own words, and so short a value is no secret.
const SHORTEST_WATCHED: usize = 4;

/// Where `error` happened in `text` and what may be said about it.
pub(crate) fn describe(text: &str, error: &toml::de::Error) -> (Option<Position>, String) {
    let at = error.span().map(|span| position(text, span.start));
    let message = without_values(error.message());
    let leaks = string_literals(text)
        .filter(|literal| literal.chars().count() >= SHORTEST_WATCHED)
        .any(|literal| message.contains(literal));
    (at, if leaks { WITHHELD.to_owned() } else { message })
}

/// The 1-based line and character column of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// `message` with the values serde quotes in it replaced by their kind. serde words them
/// `invalid type: <unexpected>, expected <what>`, `invalid value: …` likewise, and `unknown
/// variant `<value>`, expected <what>`; `<what>` comes from our types, never from the file,
/// and is the text after the last `, expected ` (a value may itself contain those words).
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(split) = rest.rfind(", expected ")
        {
            let (unexpected, expected) = rest.split_at(split);
            return format!("{prefix}{}{expected}", kind_of(unexpected));
        }
    }
    if message.starts_with("unknown variant ") {
        let expected = [", expected ", ", there are no variants"]
            .iter()
            .find_map(|tail| message.rfind(tail))
            .map_or("", |split| &message[split..]);
        return format!("unknown variant{expected}");
    }
    message.to_owned()
}

/// What serde's `Unexpected` names, without the value it shows (`string "x"` → `a string`).
fn kind_of(unexpected: &str) -> &str {
    const KINDS: [(&str, &str); 5] = [
        ("string ", "a string"),
        ("character ", "a character"),
        ("integer ", "an integer"),
        ("floating point ", "a floating point number"),
        ("boolean ", "a boolean"),
    ];
    for (prefix, kind) in KINDS {
        if unexpected.starts_with(prefix) {
            return kind;
        }
    }
    if unexpected.contains(['"', '\'', '`']) {
        "a value"
    } else {
        // `map`, `sequence`, `unit`, `option`: a shape, nothing from the file.
        unexpected
    }
}

/// Every string literal written in `text`, roughly (the file did not parse, so this is a scan,
/// not a parse): the text between two `"` on a line (skipping `\"`) or two `'`. Multi-line
/// strings give their first line's part. Good enough for what it is for: a last check that
/// nothing written in the file is repeated.
fn string_literals(text: &str) -> impl Iterator<Item = &str> {
    text.lines().flat_map(|line| {
        let mut found = Vec::new();
        let mut rest = line;
        while let Some(open) = rest.find(['"', '\'']) {
            let quote = rest.as_bytes()[open];
            let body = &rest[open + 1..];
            let mut close = None;
            let mut escaped = false;
            for (i, byte) in body.bytes().enumerate() {
                match byte {
                    b'\\' if quote == b'"' && !escaped => escaped = true,
                    b if b == quote && !escaped => {
                        close = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            match close {
                Some(close) => {
                    found.push(&body[..close]);
                    rest = &body[close + 1..];
                }
                None => {
                    // An unterminated string: the rest of the line is its value.
                    found.push(body);
                    break;
                }
            }
        }
        found
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use super::*;

    const SECRET: &str = "gh0-secret-7f3a9c";

    /// Writes `text` to a fresh file and loads it as the server does.
    fn load(text: &str) -> Result<Config, ConfigError> {
        let path = std::env::temp_dir().join(format!(
            "agui-config-{}-{}.toml",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&path, text).unwrap();
        let loaded = Config::from_file(&path);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    /// A config file that does not load says where (line and column) and what kind of problem,
    /// but neither the offending line nor any value written in the file, whichever layer
    /// refused it (toml's syntax, serde's types, an enum's variants). The control: toml's own
    /// message for the same file does quote the secret.
    #[test]
    fn a_parse_error_gives_the_position_but_never_the_files_text() {
        let cases = [
            // serde: a string where a number belongs (it quotes the value).
            (
                format!("backlog = \"{SECRET}\"\n"),
                Position {
                    line: 1,
                    column: 11,
                },
                "invalid type: a string, expected u32",
            ),
            // toml: a syntax error on the line that holds a secret (it prints the line).
            (
                format!("[auth]\n\n[openai]\napi_key = \"{SECRET}\" trailing\n"),
                Position {
                    line: 4,
                    column: 31,
                },
                "unexpected key or value, expected newline",
            ),
            // serde: an unknown variant (it quotes the variant).
            (
                format!("log_format = \"{SECRET}\"\n"),
                Position {
                    line: 1,
                    column: 14,
                },
                "unknown variant, expected `text` or `json`",
            ),
        ];
        for (text, at, what) in cases {
            let error = load(&text).expect_err(&text);
            let shown = error.to_string();
            assert!(
                matches!(&error, ConfigError::Parse { at: Some(p), .. } if *p == at),
                "{at} in {shown}"
            );
            assert!(shown.contains(&format!("at {at}: ")), "{shown}");
            assert!(shown.contains(what), "{what:?} in {shown}");
            assert!(!shown.contains(SECRET), "the value leaked: {shown}");
            for line in text.lines().filter(|l| !l.is_empty()) {
                assert!(!shown.contains(line), "the line {line:?} leaked: {shown}");
            }
            let raw = toml::from_str::<Config>(&text).unwrap_err().to_string();
            assert!(raw.contains(SECRET), "the control quotes it: {raw}");
        }
    }

    /// Keys are not values: a typo'd key is still named with the keys expected there, so the
    /// operator can fix it (the positive control of the redaction).
    #[test]
    fn a_misspelt_key_is_still_named_with_its_position() {
        let error = load(&format!("\n[openai]\napi_kye = \"{SECRET}\"\n")).unwrap_err();
        let shown = error.to_string();
        assert!(shown.contains("at line 3, column 1: "), "{shown}");
        assert!(shown.contains("unknown field `api_kye`"), "{shown}");
        assert!(shown.contains("`api_key`"), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
    }

    /// A message shape the rewrite does not know still cannot repeat a string of the file:
    /// the last check withholds it. The control: a message quoting nothing of the file is kept.
    #[test]
    fn any_string_of_the_file_in_a_message_withholds_it() {
        let text = format!("# a comment\nname = \"{SECRET}\"\nother = 'plain-literal'\n");
        let literals: Vec<&str> = string_literals(&text).collect();
        assert_eq!(literals, [SECRET, "plain-literal"]);
        assert_eq!(
            string_literals(r#"a = "x\"y" b = 'c' d = "unterminated"#).collect::<Vec<_>>(),
            [r#"x\"y"#, "c", "unterminated"]
        );
        let mut error = toml::from_str::<toml::Table>("a = ").unwrap_err();
        assert!(!describe(&text, &error).1.contains(WITHHELD), "the control");
        error = <toml::de::Error as serde::de::Error>::custom(format!("weird: {SECRET}!"));
        assert_eq!(describe(&text, &error), (None, WITHHELD.to_owned()));
    }

    #[test]
    fn serde_values_become_their_kind() {
        for (message, want) in [
            (
                "invalid type: string \"s, expected x\", expected u32",
                "invalid type: a string, expected u32",
            ),
            (
                "invalid value: integer `-5`, expected u16",
                "invalid value: an integer, expected u16",
            ),
            (
                "invalid type: sequence, expected a string",
                "invalid type: sequence, expected a string",
            ),
            (
                "invalid type: floating point `1.5`, expected u64",
                "invalid type: a floating point number, expected u64",
            ),
            (
                "unknown variant `sk-1`, expected one of `a`, `b`",
                "unknown variant, expected one of `a`, `b`",
            ),
            (
                "unknown variant `sk-1`, there are no variants",
                "unknown variant, there are no variants",
            ),
            ("missing field `issuer`", "missing field `issuer`"),
        ] {
            assert_eq!(without_values(message), want, "{message}");
        }
    }

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(position(text, 0), Position { line: 1, column: 1 });
        assert_eq!(position(text, 6), Position { line: 2, column: 1 });
        // After the two-byte `é`: the third character of the line.
        assert_eq!(position(text, 9), Position { line: 2, column: 3 });
        assert_eq!(position(text, 999), Position { line: 3, column: 1 });
    }
}
