//! Whether the queue file at the configured path is still the one the writer has open.
//!
//! SQLite keeps writing to the file it opened. When that file is deleted or replaced (a restore,
//! an operator's `mv`, a cleanup job), commits still succeed, but into a file nobody will open
//! again: the next start would not see them. The writer checks the path's device and inode
//! after commits (at most once a second); once they differ, the queue is faulty until a restart,
//! so nothing more is accepted into the orphaned file. What it already holds is still delivered.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(1);

pub(super) struct Watch {
    path: PathBuf,
    identity: (u64, u64),
    checked: Instant,
}

impl Watch {
    /// The file at `path` as it is now (just opened).
    pub(super) fn new(path: &str) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            path: PathBuf::from(path),
            identity: (meta.dev(), meta.ino()),
            checked: Instant::now(),
        })
    }

    /// Why the open file is no longer the queue file, if it is not; checked at most once a second.
    pub(super) fn gone(&mut self) -> Option<String> {
        if self.checked.elapsed() < EVERY {
            return None;
        }
        self.checked = Instant::now();
        let path = self.path.display();
        match std::fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.identity => None,
            Ok(_) => Some(format!(
                "the queue file {path} was replaced under the running process; webhooks are refused \
                 until a restart (restart once /admin/stats shows nothing pending)"
            )),
            Err(error) => Some(format!(
                "the queue file {path} is gone ({error}); webhooks are refused until a restart \
                 (restart once /admin/stats shows nothing pending)"
            )),
        }
    }
}
