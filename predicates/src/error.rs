use std::fmt;

/// What is wrong with a factory's arguments. The config layer adds the file, line, column and
/// route id; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// The argument at fault, when one is.
    pub arg: Option<String>,
    /// A sentence that says what is wrong and, where possible, what to write instead.
    pub message: String,
}

impl ArgError {
    /// An error about the arguments as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            arg: None,
            message: message.into(),
        }
    }

    /// An error about one named argument.
    pub fn for_arg(arg: &str, message: impl Into<String>) -> Self {
        Self {
            arg: Some(arg.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            Some(arg) => write!(f, "argument `{arg}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ArgError {}
