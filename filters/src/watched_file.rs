//! Files that filters read at run time (credentials, htpasswd files) and that must take effect
//! when they change on disk, without a restart.
//!
//! A filter opens the file when it is built ([`WatchedFile::open`], through
//! [`FilterContext::watched_file`](crate::FilterContext::watched_file)): a missing file is a
//! config error naming the path. The gateway finds every [`WatchedFile`] in the
//! [`StateStore`](crate::StateStore) after each compile and watches it as it watches the config
//! file, calling [`WatchedFile::reload`] when it changes. Readers get the current content with
//! [`WatchedFile::content`]; [`WatchedFile::version`] tells them when to parse it again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A file whose content is kept in memory and re-read when it changes.
pub struct WatchedFile {
    path: PathBuf,
    content: RwLock<Arc<str>>,
    version: AtomicU64,
}

impl std::fmt::Debug for WatchedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The content is a secret as often as not: never shown.
        f.debug_struct("WatchedFile")
            .field("path", &self.path)
            .field("version", &self.version())
            .finish()
    }
}

/// `a//b/./c` becomes `a/b/c`, so that messages name the file as a person would write it (a
/// mount path with a trailing `/` followed by `/name` is common in configs).
pub fn clean_path(path: &str) -> PathBuf {
    Path::new(path.trim()).components().collect()
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

impl WatchedFile {
    /// Reads the file at `path`; the error names the path.
    pub fn open(path: &Path) -> Result<Self, String> {
        let content = read(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            content: RwLock::new(Arc::from(content)),
            version: AtomicU64::new(1),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The content as last read.
    pub fn content(&self) -> Arc<str> {
        self.content
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Increments each time the content changes.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Reads the file again. Returns whether the content changed. When the file cannot be
    /// read (it is being replaced, say), the last content is kept and the error returned.
    pub fn reload(&self) -> Result<bool, String> {
        let fresh = read(&self.path)?;
        Ok(self.set(fresh))
    }

    /// Replaces the content (when a new compile read the file again).
    pub(crate) fn set(&self, fresh: String) -> bool {
        let mut content = self.content.write().unwrap_or_else(|e| e.into_inner());
        if **content == *fresh {
            return false;
        }
        *content = Arc::from(fresh);
        self.version.fetch_add(1, Ordering::AcqRel);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_sees_changes_and_keeps_content_when_the_file_is_gone() {
        let dir = std::env::temp_dir().join(format!("weir-watched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, "one").unwrap();
        let file = WatchedFile::open(&path).unwrap();
        assert_eq!(&*file.content(), "one");
        assert!(!file.reload().unwrap());
        std::fs::write(&path, "two").unwrap();
        assert!(file.reload().unwrap());
        assert_eq!((&*file.content(), file.version()), ("two", 2));
        std::fs::remove_file(&path).unwrap();
        assert!(file.reload().unwrap_err().contains("secret"));
        assert_eq!(&*file.content(), "two");
        let missing = WatchedFile::open(&dir.join("nope")).unwrap_err();
        assert!(missing.contains("nope"), "{missing}");
        assert_eq!(
            clean_path("/run/secrets//basic-auth-user"),
            Path::new("/run/secrets/basic-auth-user")
        );
    }
}
