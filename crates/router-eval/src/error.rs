//! Why a dataset could not be loaded or evaluated.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a file is not what its format says; `line` is 1-based.
    #[error("{}:{line}: {message}", path.display())]
    Format { path: PathBuf, line: usize, message: String },
    /// The data as a whole cannot be evaluated (no models, no prices for a model, ...).
    #[error("{0}")]
    Invalid(String),
}

impl LoadError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> LoadError {
        LoadError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn format(path: &Path, line: usize, message: impl Into<String>) -> LoadError {
        LoadError::Format { path: path.to_path_buf(), line, message: message.into() }
    }
}

/// Why an evaluation could not run on a loaded dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("no prompt in the test part has a result for every model ({0} prompts in it)")]
    NoCompleteTestPrompts(usize),
    #[error("the dataset has no models")]
    NoModels,
    #[error("unknown model `{0}` (the dataset has: {1})")]
    UnknownModel(String, String),
}
