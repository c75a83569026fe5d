//! A command `fedproxy rules` runs: argv plus optional stdin (the nft script).
//! `plan` prints them in a form a shell runs as-is.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    /// Text fed on stdin (`nft -f -`).
    pub stdin: Option<String>,
}

impl Command {
    pub fn new<I, S>(argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: None,
        }
    }

    pub fn with_stdin(mut self, text: String) -> Command {
        self.stdin = Some(text);
        self
    }
}

impl fmt::Display for Command {
    /// One shell line; a stdin text becomes a quoted here-document.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.argv.iter().map(|w| shell_quote(w)).collect();
        f.write_str(&words.join(" "))?;
        if let Some(text) = &self.stdin {
            write!(f, " <<'EOF'\n{}", text)?;
            if !text.ends_with('\n') {
                f.write_str("\n")?;
            }
            f.write_str("EOF")?;
        }
        Ok(())
    }
}

/// Quotes a word for POSIX sh only when it needs it.
pub fn shell_quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%^".contains(&b));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// Splits one line of `iptables -S`/`iptables-save` output into words: words
/// are separated by spaces, `"..."` quotes (with `\"` and `\\` inside).
pub fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' | '\t' if !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            _ => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let c = Command::new([
            "iptables",
            "-m",
            "comment",
            "--comment",
            "fedproxy: it's",
            "-j",
            "RETURN",
        ]);
        assert_eq!(
            c.to_string(),
            r#"iptables -m comment --comment 'fedproxy: it'\''s' -j RETURN"#
        );
        let c = Command::new(["nft", "-f", "-"]).with_stdin("table inet fedproxy {}".into());
        assert_eq!(
            c.to_string(),
            "nft -f - <<'EOF'\ntable inet fedproxy {}\nEOF"
        );
    }

    #[test]
    fn split_words_reads_iptables_quoting() {
        assert_eq!(
            split_words(r#"-A OUTPUT -m comment --comment "fedproxy: a \"b\"" -j X"#),
            vec![
                "-A",
                "OUTPUT",
                "-m",
                "comment",
                "--comment",
                "fedproxy: a \"b\"",
                "-j",
                "X"
            ]
        );
        assert_eq!(split_words("  a  b "), vec!["a", "b"]);
        assert_eq!(split_words(r#"x """#), vec!["x", ""]);
    }
}
