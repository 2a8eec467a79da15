//! Following a file on disk however it is saved.
//!
//! The parent directory is watched, not the file, so a file that is replaced (an editor's
//! write-to-temp-then-rename, `sed -i`, delete then create) is still followed, and so is a
//! Kubernetes ConfigMap mount, where the file is a symlink through `..data` and the directory
//! behind `..data` is swapped atomically. A burst of events becomes one call after a trailing
//! debounce: the call comes `debounce` after the last event of the burst.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps a watch alive; dropping it stops the watch.
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether an event kind can mean the file's content changed. Reading the file (as a reload
/// does) produces access events, which must not trigger another reload.
fn may_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Calls `on_change` after each burst of changes to `path`.
pub fn watch_file<F, Fut>(
    path: &Path,
    debounce: Duration,
    on_change: F,
) -> notify::Result<FileWatch>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    watch_files(
        std::slice::from_ref(&path.to_path_buf()),
        debounce,
        on_change,
    )
}

/// Calls `on_change` after each burst of changes to any of `paths`: files that change
/// together (a certificate and its key) give one call.
pub fn watch_files<F, Fut>(
    paths: &[PathBuf],
    debounce: Duration,
    on_change: F,
) -> notify::Result<FileWatch>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // The names to look for, and the directories to watch (each once).
    let mut names: Vec<OsString> = vec![OsString::from("..data")];
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut watch_dir = |dir: PathBuf| {
        let key = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !seen.contains(&key) {
            seen.push(key);
            dirs.push(dir);
        }
    };
    for path in paths {
        names.extend(path.file_name().map(OsString::from));
        watch_dir(match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
        // When the file is a symlink, its target's directory is watched too, so that an
        // in-place write to the target is seen.
        if let Ok(target) = std::fs::canonicalize(path) {
            names.extend(target.file_name().map(OsString::from));
            if let Some(dir) = target.parent() {
                watch_dir(dir.to_path_buf());
            }
        }
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !may_change_content(&event.kind) {
            return;
        }
        let relevant = event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|name| names.iter().any(|n| n == name))
        });
        if relevant {
            let _ = tx.send(());
        }
    })?;
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Trailing debounce: wait until no event has come for `debounce`.
            loop {
                tokio::select! {
                    more = rx.recv() => if more.is_none() { return },
                    _ = tokio::time::sleep(debounce) => break,
                }
            }
            on_change().await;
        }
    });
    Ok(FileWatch {
        _watcher: watcher,
        task,
    })
}
