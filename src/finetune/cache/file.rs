//! Fixed-size slots of f32 activations in a file mapped into memory. The pages are the kernel's to keep or
//! drop: a cache of gigabytes takes disk, not RAM. The file is private to one run: made anew, its space taken
//! up front (so a full disk fails at once, not with a bus error mid-run), and unlinked once mapped on Unix.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

#[derive(Debug)]
pub(super) struct Slots {
    path: PathBuf,
    slot_bytes: usize,
    /// Slots the mapping holds (0 before `reserve`).
    reserved: usize,
    map: Option<MmapMut>,
    /// Kept open for the mapping's lifetime where the file cannot be unlinked while mapped.
    file: Option<File>,
}

impl Slots {
    pub fn new(path: &Path, slot_bytes: usize) -> Self {
        Self {
            path: path.to_path_buf(),
            slot_bytes,
            reserved: 0,
            map: None,
            file: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// Maps a new file of `slots` slots (once; later calls keep the first mapping).
    pub fn reserve(&mut self, slots: usize) -> Result<(), String> {
        if self.map.is_some() || slots == 0 {
            return Ok(());
        }
        let bytes = slots * self.slot_bytes;
        let fail = |what: &str, e: std::io::Error| format!("{}: {what} ({e})", self.path.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .map_err(|e| fail("cannot be made for the activations cache", e))?;
        take_space(&file, bytes as u64).map_err(|e| {
            let _ = std::fs::remove_file(&self.path);
            fail(
                &format!("no room for {:.1} GB of cached activations", bytes as f64 / 1e9),
                e,
            )
        })?;
        // Safety: the file was made by this run and is unlinked at once (Unix): no one else can change it under
        // the mapping.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| fail("cannot be mapped", e))?;
        if cfg!(unix) {
            let _ = std::fs::remove_file(&self.path);
        } else {
            self.file = Some(file);
        }
        self.map = Some(map);
        self.reserved = slots;
        Ok(())
    }

    pub fn get(&self, slot: usize) -> &[f32] {
        let map = self.map.as_ref().expect("a slot is stored only after reserve");
        bytemuck::cast_slice(&map[slot * self.slot_bytes..(slot + 1) * self.slot_bytes])
    }

    pub fn put(&mut self, slot: usize, values: &[f32]) {
        let map = self.map.as_mut().expect("a slot is stored only after reserve");
        map[slot * self.slot_bytes..(slot + 1) * self.slot_bytes].copy_from_slice(bytemuck::cast_slice(values));
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        self.map = None;
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Gives the file `bytes` of real disk space (not a sparse hole that could fail to fill later).
#[cfg(target_os = "linux")]
fn take_space(file: &File, bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // Safety: a plain call on an open descriptor.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, bytes as libc::off_t) } {
        0 => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

#[cfg(not(target_os = "linux"))]
fn take_space(file: &File, bytes: u64) -> std::io::Result<()> {
    file.set_len(bytes)
}
