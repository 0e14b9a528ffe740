//! How deep Cedar policy text would make Cedar recurse, measured before
//! Cedar parses it.
//!
//! Cedar's parser, and the conversion of its syntax tree, recurse once
//! per level of nesting and do not bound it: a few hundred nested
//! parentheses (under a kilobyte of text) overflow a 2 MiB thread stack,
//! the size of a tokio worker's, and a stack overflow aborts the process.
//! Policy text reaches the parser from the admin API (a tenant
//! administrator's write) and from every node that applies a stored
//! version, so [`check`] runs first and refuses text that nests brackets
//! (`(`, `[`, `{`) more than [`MAX_NESTING`] deep, or that has more than
//! [`MAX_OPERATORS`] operators (`.`, arithmetic, comparisons, `!`, `in`,
//! `has`, `like`, `is`, and `if`, which counts [`IF_WEIGHT`]: Cedar spends
//! far more stack on it) in one policy, each of which can add a level
//! (`a.b.c`, `1 + 1 + 1`, `if .. else if ..` build left-deep trees).
//! Chains of `&&` and `||` are not counted: Cedar builds them without
//! recursing per operand.
//!
//! The scan follows Cedar's lexer for what is not code: string literals
//! (`"` .. `"`, a backslash escaping the next character other than a line
//! break) and `//` comments. A quote that does not open a well-formed
//! literal is read as code, so the scan never skips text Cedar reads.

use crate::error::{PolicyError, codes};

/// Deepest nesting of brackets accepted.
pub const MAX_NESTING: usize = 32;
/// Most operators accepted in one policy.
pub const MAX_OPERATORS: usize = 1_000;
/// What an `if` counts towards [`MAX_OPERATORS`].
pub const IF_WEIGHT: usize = 10;

/// The keywords that are operators, with what each counts.
const KEYWORDS: [(&str, usize); 5] = [
    ("if", IF_WEIGHT),
    ("in", 1),
    ("has", 1),
    ("like", 1),
    ("is", 1),
];

/// Refuse `text` if Cedar could recurse too deep parsing it.
pub fn check(text: &str) -> Result<(), PolicyError> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut operators = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                if let Some(end) = string_end(bytes, i) {
                    i = end;
                    continue;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = bytes[i..]
                    .iter()
                    .position(|c| *c == b'\n' || *c == b'\r')
                    .map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(refused(format!(
                        "brackets nest at most {MAX_NESTING} levels deep"
                    )));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b';' if depth == 0 => operators = 0,
            b'.' | b'+' | b'-' | b'*' | b'<' | b'>' | b'=' | b'!' => operators += 1,
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let len = bytes[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .unwrap_or(bytes.len() - i);
                let word = &bytes[i..i + len];
                if let Some((_, weight)) = KEYWORDS.iter().find(|(k, _)| k.as_bytes() == word) {
                    operators += weight;
                }
                i += len;
                if operators > MAX_OPERATORS {
                    return Err(too_many_operators());
                }
                continue;
            }
            _ => {}
        }
        if operators > MAX_OPERATORS {
            return Err(too_many_operators());
        }
        i += 1;
    }
    Ok(())
}

/// The index just past the string literal that opens at `start`, if one
/// is well formed there.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *bytes.get(i + 1)? {
                b'\n' => return None,
                _ => i += 2,
            },
            _ => i += 1,
        }
    }
}

fn too_many_operators() -> PolicyError {
    refused(format!(
        "a policy has at most {MAX_OPERATORS} operators other than && and ||"
    ))
}

fn refused(message: String) -> PolicyError {
    PolicyError::invalid_one(codes::INVALID_POLICIES, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!(
            "permit(principal, action, resource) when {{ {}true{} }};",
            open.repeat(n),
            close.repeat(n)
        )
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_one_more_level_is_refused() {
        // The condition's braces are one level.
        assert!(check(&nested("(", ")", MAX_NESTING - 1)).is_ok());
        assert!(check(&nested("(", ")", MAX_NESTING)).is_err());
        assert!(check(&nested("[", "]", MAX_NESTING)).is_err());
        assert!(check(&nested("{a: ", "}", MAX_NESTING)).is_err());
    }

    #[test]
    fn operators_are_counted_per_policy() {
        let chain = |n: usize| {
            format!(
                "permit(principal, action, resource) when {{ principal{} == 1 }};",
                ".a".repeat(n)
            )
        };
        // `==` counts two.
        assert!(check(&chain(MAX_OPERATORS - 2)).is_ok());
        assert!(check(&chain(MAX_OPERATORS - 1)).is_err());
        let many = chain(MAX_OPERATORS / 2).repeat(4);
        assert!(check(&many).is_ok(), "four policies of half the budget");
        let ifs = format!(
            "permit(principal, action, resource) when {{ {}true{} }};",
            "if true then ".repeat(MAX_OPERATORS / IF_WEIGHT + 1),
            " else true".repeat(MAX_OPERATORS / IF_WEIGHT + 1)
        );
        assert!(check(&ifs).is_err());
        let ands = format!(
            "permit(principal, action, resource) when {{ true{} }};",
            " && true || true".repeat(10 * MAX_OPERATORS)
        );
        assert!(check(&ands).is_ok());
    }

    /// Before this check, about a hundred levels of `(!(` aborted the
    /// process with a stack overflow in Cedar's parser, on a thread with a
    /// tokio worker's stack.
    #[test]
    fn deep_policy_text_is_refused_instead_of_overflowing_a_worker_stack() {
        let text = nested("(!(", "))", 150);
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || crate::compile::parse_policies(&text).map(|_| ()))
            .expect("thread")
            .join()
            .expect("no panic");
        match parsed {
            Err(PolicyError::Invalid { code, message, .. }) => {
                assert_eq!(code, codes::INVALID_POLICIES);
                assert!(message.contains("nest"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strings_and_comments_are_not_code_and_a_stray_quote_is() {
        let deep = "(".repeat(MAX_NESTING + 1);
        let in_string =
            format!("permit(principal, action, resource) when {{ context.s == \"{deep}\\\"\" }};");
        assert!(check(&in_string).is_ok());
        let in_comment = format!("// {deep}\npermit(principal, action, resource);");
        assert!(check(&in_comment).is_ok());
        // An unterminated literal, or one broken by an escaped line break,
        // is not a literal to Cedar either.
        assert!(check(&format!("\"{deep}")).is_err());
        assert!(check(&format!("\"\\\n{deep}\"")).is_err());
    }
}
