//! Watching the files that filters read at run time (credentials, htpasswd files), so that a
//! rotated secret takes effect without a restart.
//!
//! Filters open such files through `FilterContext::watched_file`, which keeps a
//! [`WatchedFile`] in the state store. After every compile that is swapped in (start-up and
//! each reload), [`FileWatches::sync`] watches each of them the way the config file is
//! watched (any way of saving, Kubernetes secret mounts included), and stops watching files
//! no filter uses any more.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_filters::{StateStore, WatchedFile};

use super::watch::{watch_file, FileWatch};

/// How long a changed file must stay quiet before it is read again.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// The watches of the files filters read.
#[derive(Default)]
pub struct FileWatches {
    watches: Mutex<HashMap<PathBuf, FileWatch>>,
}

impl FileWatches {
    /// Watches every [`WatchedFile`] in `state`, and only those. Needs a Tokio runtime.
    pub fn sync(&self, state: &StateStore) {
        let files: Vec<Arc<WatchedFile>> = state
            .values::<WatchedFile>()
            .into_iter()
            .map(|(_, file)| file)
            .collect();
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        watches.retain(|path, _| files.iter().any(|f| f.path() == path));
        for file in files {
            if watches.contains_key(file.path()) {
                continue;
            }
            let weak = Arc::downgrade(&file);
            let watched = watch_file(file.path(), DEBOUNCE, move || {
                let weak = weak.clone();
                async move {
                    let Some(file) = weak.upgrade() else { return };
                    match file.reload() {
                        Ok(true) => {
                            tracing::info!(file = %file.path().display(), "file changed: reloaded")
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!("{e}; the previous content stays in use"),
                    }
                }
            });
            match watched {
                Ok(watch) => {
                    watches.insert(file.path().to_path_buf(), watch);
                }
                Err(e) => tracing::warn!(
                    file = %file.path().display(),
                    "cannot watch the file for changes ({e}); a change takes effect at the next reload"
                ),
            }
        }
    }
}
