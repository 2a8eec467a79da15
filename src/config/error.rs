use std::fmt;
use std::sync::Arc;

use super::yaml::Pos;

/// One problem with a config file, pointing at where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded default>`).
    pub file: Arc<str>,
    /// Where in the file.
    pub pos: Pos,
    /// The route the problem is in, when it is in one.
    pub route: Option<String>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            // Not about a place in the file (it could not be read, say).
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.pos.line, self.pos.col)?;
        }
        if let Some(route) = &self.route {
            write!(f, "route `{route}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// An error that is not about the file's content (a task that failed, say).
    pub fn internal(message: &str) -> Self {
        Self(vec![ConfigError {
            file: Arc::from("weir"),
            pos: Pos::default(),
            route: None,
            message: message.to_string(),
        }])
    }

    /// The first error, for a one-line summary.
    pub fn first(&self) -> Option<&ConfigError> {
        self.0.first()
    }
}
