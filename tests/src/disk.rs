//! A small disk of a test's own that it can fill to the last byte and free
//! again: a `tmpfs` mounted on a temporary directory. Mounting needs root (CI
//! and the development machines run tests as root); elsewhere the test is
//! skipped with a note.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use tempfile::TempDir;

/// A mounted `tmpfs` of a fixed size; unmounted on drop.
#[derive(Debug)]
pub struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    /// Mounts a `tmpfs` of `bytes` on a fresh temporary directory; `None`, with
    /// a note naming `test`, when this process may not mount.
    pub fn mount(test: &str, bytes: u64) -> anyhow::Result<Option<Self>> {
        let dir = tempfile::tempdir()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(output) if output.status.success() => Ok(Some(Self { dir })),
            Ok(output) => {
                eprintln!(
                    "{test}: skipped, a tmpfs could not be mounted (run as root): {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                Ok(None)
            }
            Err(error) => {
                eprintln!("{test}: skipped, `mount` did not run: {error}");
                Ok(None)
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.dir.path().join("filler")
    }

    /// Writes a filler file until the disk has no byte left.
    pub fn fill(&self) -> anyhow::Result<()> {
        self.fill_leaving(0)
    }

    /// Writes a filler file until about `room` bytes are left, so that what
    /// writes next fills the disk itself, mid-load.
    pub fn fill_leaving(&self, room: u64) -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())?;
        let block = vec![0u8; 4096];
        let mut left = self.available()?;
        while left > room {
            let size = (left - room).min(block.len() as u64) as usize;
            match file.write(&block[..size]) {
                Ok(0) => break,
                Ok(written) => left = left.saturating_sub(written as u64),
                Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
                Err(error) => return Err(error).context("filling the disk"),
            }
        }
        if room == 0 {
            // The last partial page, byte by byte.
            while let Ok(1) = file.write(&[0]) {}
        }
        let _ = file.sync_all();
        Ok(())
    }

    /// Removes the filler: the space it took is free again.
    pub fn free(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.filler()) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error).context("freeing the disk"),
        }
    }

    /// Bytes still free.
    pub fn available(&self) -> anyhow::Result<u64> {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.dir.path())
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        match text.lines().nth(1).map(str::trim).map(str::parse) {
            Some(Ok(bytes)) => Ok(bytes),
            _ => bail!("df gave {text:?}"),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process killed by the test may still hold files open.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
