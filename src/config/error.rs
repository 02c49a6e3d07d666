//! A rejected configuration: the key, the file line and the fix.

use std::fmt;

/// A configuration problem, phrased for the person editing the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub key: String,
    pub line: Option<usize>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A value that came from the environment is named by its variable, not a file key.
        if self.key.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            write!(f, "environment variable `{}`", self.key)?;
        } else {
            write!(f, "config key `{}`", self.key)?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}. Fix: {}", self.problem, self.fix)
    }
}

impl ConfigError {
    pub(super) fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            line: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(super) fn at(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}
