//! dm-verity hash trees, byte-exact with `veritysetup format` (cryptsetup 2.x) for hash format
//! 1, SHA-256, 4096-byte data and hash blocks, any salt (≤ 256 bytes), with or without the
//! 512-byte superblock, and its UUID.
//!
//! Hand-written because no Rust crate produces veritysetup's on-disk tree. The layout
//! (cryptsetup `lib/verity/verity_hash.c`, kernel `Documentation/admin-guide/device-mapper/verity.rst`):
//!
//! - every digest is SHA-256(salt ‖ block) (format 1: salt first);
//! - level 0 holds the digests of the data blocks, level i+1 those of level i's blocks, 128
//!   digests per 4096-byte block, each level's last block zero-padded; there are as many
//!   levels as it takes to reach one block (none for a single data block);
//! - on the hash device the top level comes first and level 0 last; with a superblock the
//!   tree starts at the second 4096-byte block (the superblock zero-padded to one block);
//! - the root hash is SHA-256(salt ‖ the top level's block) (or of the only data block).
//!
//! Streaming: memory is one 4096-byte buffer per level plus the read buffer, whatever the
//! data size; hash blocks go to the output as soon as they are full. Level-0 digests of a
//! read chunk are computed on several threads.

use crate::error::{Error, Result, Subject};
use ring::digest;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Data and hash block size (the only one supported).
pub const BLOCK_SIZE: usize = 4096;
const BLOCK_SIZE_U64: u64 = 4096;
/// SHA-256 digest size.
pub const DIGEST_SIZE: usize = 32;
/// Digests per hash block.
const FANOUT: u64 = (BLOCK_SIZE / DIGEST_SIZE) as u64;
/// The longest salt veritysetup accepts.
pub const MAX_SALT: usize = 256;
/// Size of the superblock structure (padded to a block on the device).
pub const SUPERBLOCK_SIZE: usize = 512;
/// Bytes read (and level-0 digests computed in parallel) at a time.
const CHUNK: usize = 8 * 1024 * 1024;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityParams {
    /// The salt (empty for `--salt -`).
    pub salt: Vec<u8>,
    /// The superblock's UUID (ignored without superblock).
    pub uuid: [u8; 16],
    /// Whether the hash device starts with the superblock (veritysetup's default).
    pub superblock: bool,
}

/// What was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityTree {
    pub root_hash: [u8; 32],
    /// Size of the data in bytes (its last partial block, if any, is not covered).
    pub data_size: u64,
    pub data_blocks: u64,
    /// The number of hash levels (0 for a single data block).
    pub levels: usize,
    /// Size of the hash device in bytes (superblock included).
    pub hash_device_size: u64,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::VerityParametersInvalid {
        reason: reason.into(),
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Io {
        subject: Subject::Verity,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Parses a UUID in its 8-4-4-4-12 hex form into the 16 bytes the superblock stores.
pub fn parse_uuid(text: &str) -> Result<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return Err(invalid(format!("UUID {text:?} is not in 8-4-4-4-12 form")));
    }
    let bytes = hex::decode(groups.concat()).map_err(|e| invalid(format!("UUID {text:?}: {e}")))?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| invalid("UUID is not 16 bytes"))
}

/// A UUID in its 8-4-4-4-12 hex form.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let h = hex::encode(uuid);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// A random (version 4) UUID, as veritysetup makes when none is given.
pub fn random_uuid() -> Result<[u8; 16]> {
    use ring::rand::SecureRandom;
    let mut uuid = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut uuid)
        .map_err(|_| invalid("no randomness for a UUID"))?;
    if let Some(b) = uuid.get_mut(6) {
        *b = (*b & 0x0F) | 0x40;
    }
    if let Some(b) = uuid.get_mut(8) {
        *b = (*b & 0x3F) | 0x80;
    }
    Ok(uuid)
}

/// A random 32-byte salt, as veritysetup makes when none is given.
pub fn random_salt() -> Result<[u8; 32]> {
    use ring::rand::SecureRandom;
    let mut salt = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| invalid("no randomness for a salt"))?;
    Ok(salt)
}

/// The blocks of each level, level 0 first, and where each starts in the hash area (in
/// blocks from the start of the tree): veritysetup stores the top level first.
pub fn layout(data_blocks: u64) -> Vec<(u64, u64)> {
    let mut sizes = Vec::new();
    let mut n = data_blocks;
    while n > 1 {
        n = n.div_ceil(FANOUT);
        sizes.push(n);
    }
    let mut position = 0u64;
    let mut starts = vec![0u64; sizes.len()];
    for (start, size) in starts.iter_mut().zip(sizes.iter()).rev() {
        *start = position;
        position = position.saturating_add(*size);
    }
    starts.into_iter().zip(sizes).collect()
}

/// The hash device's size in bytes for this many data blocks.
pub fn hash_device_size(data_blocks: u64, superblock: bool) -> u64 {
    let tree: u64 = layout(data_blocks).iter().map(|(_, n)| *n).sum();
    tree.saturating_add(u64::from(superblock))
        .saturating_mul(BLOCK_SIZE_U64)
}

/// The 512-byte superblock (`struct verity_sb`).
pub fn superblock(params: &VerityParams, data_blocks: u64) -> Result<[u8; SUPERBLOCK_SIZE]> {
    check_params(params)?;
    let mut sb = [0u8; SUPERBLOCK_SIZE];
    let salt_size = u16::try_from(params.salt.len()).map_err(|_| invalid("salt too long"))?;
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(dst) = at
            .checked_add(bytes.len())
            .and_then(|end| sb.get_mut(at..end))
        {
            dst.copy_from_slice(bytes);
        }
    };
    put(0, b"verity\0\0");
    put(8, &1u32.to_le_bytes()); // version
    put(12, &1u32.to_le_bytes()); // hash type (format 1)
    put(16, &params.uuid);
    put(32, b"sha256");
    put(64, &4096u32.to_le_bytes()); // data block size
    put(68, &4096u32.to_le_bytes()); // hash block size
    put(72, &data_blocks.to_le_bytes());
    put(80, &salt_size.to_le_bytes());
    put(88, &params.salt);
    Ok(sb)
}

fn check_params(params: &VerityParams) -> Result<()> {
    if params.salt.len() > MAX_SALT {
        return Err(invalid(format!(
            "salt of {} bytes (at most {MAX_SALT})",
            params.salt.len()
        )));
    }
    Ok(())
}

/// SHA-256(salt ‖ block).
fn salted(salt: &[u8], block: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt);
    ctx.update(block);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Where hash blocks go: a seekable writer, or nowhere (root hash only).
pub trait HashSink {
    fn write_block(&mut self, offset: u64, block: &[u8]) -> std::io::Result<()>;
}

/// Discards hash blocks (only the root hash is wanted).
#[derive(Debug, Default)]
pub struct Discard;

impl HashSink for Discard {
    fn write_block(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes hash blocks at their offsets.
#[derive(Debug)]
pub struct SeekSink<W: Write + Seek>(pub W);

impl<W: Write + Seek> HashSink for SeekSink<W> {
    fn write_block(&mut self, offset: u64, block: &[u8]) -> std::io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        self.0.write_all(block)
    }
}

struct Level {
    start: u64,
    blocks: u64,
    emitted: u64,
    buf: Vec<u8>,
    fill: usize,
}

struct Tree<'a, S: HashSink> {
    salt: &'a [u8],
    levels: Vec<Level>,
    base: u64,
    sink: &'a mut S,
    root: Option<[u8; 32]>,
}

impl<S: HashSink> Tree<'_, S> {
    fn push(&mut self, mut level: usize, mut digest: [u8; 32]) -> Result<()> {
        loop {
            let salt = self.salt;
            let base = self.base;
            let Some(l) = self.levels.get_mut(level) else {
                self.root = Some(digest);
                return Ok(());
            };
            let end = l.fill.saturating_add(DIGEST_SIZE);
            if let Some(dst) = l.buf.get_mut(l.fill..end) {
                dst.copy_from_slice(&digest);
            }
            l.fill = end;
            if l.fill < BLOCK_SIZE {
                return Ok(());
            }
            digest = Self::emit(l, salt, base, self.sink)?;
            level = level.saturating_add(1);
        }
    }

    fn emit(l: &mut Level, salt: &[u8], base: u64, sink: &mut S) -> Result<[u8; 32]> {
        if l.emitted >= l.blocks {
            return Err(invalid("hash level overflow"));
        }
        let offset = l
            .start
            .saturating_add(l.emitted)
            .saturating_mul(BLOCK_SIZE_U64)
            .saturating_add(base);
        sink.write_block(offset, &l.buf).map_err(|e| Error::Io {
            subject: Subject::Verity,
            path: "hash device".into(),
            reason: e.to_string(),
        })?;
        let digest = salted(salt, &l.buf);
        l.buf.fill(0);
        l.fill = 0;
        l.emitted = l.emitted.saturating_add(1);
        Ok(digest)
    }

    fn finish(mut self) -> Result<[u8; 32]> {
        for level in 0..self.levels.len() {
            let salt = self.salt;
            let base = self.base;
            let pending = self.levels.get(level).is_some_and(|l| l.fill > 0);
            if pending {
                let digest = match self.levels.get_mut(level) {
                    Some(l) => Self::emit(l, salt, base, self.sink)?,
                    None => continue,
                };
                self.push(level.saturating_add(1), digest)?;
            }
        }
        if self.levels.iter().any(|l| l.emitted != l.blocks) {
            return Err(invalid("hash levels incomplete"));
        }
        self.root.ok_or_else(|| invalid("no data blocks"))
    }
}

/// Builds the tree of `data_size / 4096` data blocks read from `data` (bytes past the last
/// whole block are not covered, as with veritysetup). Hash blocks (and the superblock) go to
/// `sink`; `progress(done, total)` is called after each chunk with bytes hashed so far.
pub fn build<R: Read, S: HashSink>(
    mut data: R,
    data_size: u64,
    params: &VerityParams,
    sink: &mut S,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerityTree> {
    check_params(params)?;
    let data_blocks = data_size / BLOCK_SIZE_U64;
    if data_blocks == 0 {
        return Err(invalid(format!(
            "the data ({data_size} bytes) holds no whole 4096-byte block"
        )));
    }
    let layout = layout(data_blocks);
    let base = if params.superblock {
        let sb = superblock(params, data_blocks)?;
        let mut block = vec![0u8; BLOCK_SIZE];
        if let Some(dst) = block.get_mut(..SUPERBLOCK_SIZE) {
            dst.copy_from_slice(&sb);
        }
        sink.write_block(0, &block).map_err(|e| Error::Io {
            subject: Subject::Verity,
            path: "hash device".into(),
            reason: e.to_string(),
        })?;
        BLOCK_SIZE_U64
    } else {
        0
    };
    let levels = layout
        .iter()
        .map(|&(start, blocks)| Level {
            start,
            blocks,
            emitted: 0,
            buf: vec![0u8; BLOCK_SIZE],
            fill: 0,
        })
        .collect();
    let mut tree = Tree {
        salt: &params.salt,
        levels,
        base,
        sink,
        root: None,
    };
    let total = data_blocks.saturating_mul(BLOCK_SIZE_U64);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    // Double-buffered: while the worker threads hash one chunk, this thread reads the next.
    let read_err = |e: std::io::Error, want: usize, at: u64| Error::Io {
        subject: Subject::Verity,
        path: "data".into(),
        reason: format!("reading {want} bytes at offset {at}: {e}"),
    };
    let chunk_len =
        |done: u64| usize::try_from(total.saturating_sub(done).min(CHUNK as u64)).unwrap_or(CHUNK);
    let mut current = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut done = 0u64;
    let mut current_len = chunk_len(0);
    let first = current
        .get_mut(..current_len)
        .ok_or_else(|| invalid("read buffer"))?;
    data.read_exact(first)
        .map_err(|e| read_err(e, current_len, 0))?;
    while current_len > 0 {
        let next_at = done.saturating_add(current_len as u64);
        let next_len = chunk_len(next_at);
        let chunk = current.get(..current_len).unwrap_or_default();
        let next_buf = next.get_mut(..next_len).unwrap_or_default();
        let salt = params.salt.as_slice();
        let (digests, read) = std::thread::scope(|s| {
            let hashing = s.spawn(move || digest_blocks(salt, chunk, threads));
            let read = data.read_exact(next_buf);
            (hashing.join(), read)
        });
        // A hashing thread does not panic; if one did, the level counts would not add up.
        for d in digests.unwrap_or_default() {
            tree.push(0, d)?;
        }
        done = next_at;
        progress(done, total);
        read.map_err(|e| read_err(e, next_len, next_at))?;
        std::mem::swap(&mut current, &mut next);
        current_len = next_len;
    }
    let root_hash = tree.finish()?;
    Ok(VerityTree {
        root_hash,
        data_size,
        data_blocks,
        levels: layout.len(),
        hash_device_size: hash_device_size(data_blocks, params.superblock),
    })
}

/// SHA-256(salt ‖ block) of every block of `chunk`, in order, on up to `threads` threads.
fn digest_blocks(salt: &[u8], chunk: &[u8], threads: usize) -> Vec<[u8; 32]> {
    let blocks = chunk.len() / BLOCK_SIZE;
    if threads <= 1 || blocks < 64 {
        return chunk
            .chunks_exact(BLOCK_SIZE)
            .map(|b| salted(salt, b))
            .collect();
    }
    let per = blocks.div_ceil(threads).saturating_mul(BLOCK_SIZE);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    part.chunks_exact(BLOCK_SIZE)
                        .map(|b| salted(salt, b))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(blocks);
        for h in handles {
            // A hashing thread cannot panic; an empty part would fail the level count.
            out.extend(h.join().unwrap_or_default());
        }
        out
    })
}

/// Builds the tree of a file; with `hash_out`, writes the hash device there atomically
/// (a temporary file in the same folder, fsync, rename).
pub fn build_file(
    data_path: &Path,
    params: &VerityParams,
    hash_out: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerityTree> {
    let file = std::fs::File::open(data_path).map_err(|e| io_error(data_path, &e))?;
    let size = file.metadata().map_err(|e| io_error(data_path, &e))?.len();
    let Some(out) = hash_out else {
        return build(file, size, params, &mut Discard, progress);
    };
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hash".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let tmp_file = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, &e))?;
        let mut sink = SeekSink(std::io::BufWriter::new(tmp_file));
        let tree = build(file, size, params, &mut sink, progress)?;
        let tmp_file = sink.0.into_inner().map_err(|e| io_error(&tmp, e.error()))?;
        tmp_file.sync_all().map_err(|e| io_error(&tmp, &e))?;
        std::fs::rename(&tmp, out).map_err(|e| io_error(out, &e))?;
        // The rename is durable once the folder is synced (best effort: not every
        // filesystem lets a folder be opened for sync).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(tree)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
