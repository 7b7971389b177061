//! Identity of a measured configuration folder: its git tree hash in the SHA-256 object
//! format, computed from the folder as COCOON computes `spec.tree` (the `runtime/` folder at
//! the top excluded, `.gitignore` rules respected, hidden (dot) files and folders left out —
//! the published COCOON example hashes without its `.gitignore`), plus COCOON's `image_hash`.
//!
//! Git objects: a blob is SHA-256("blob <len>\0" ‖ bytes); a tree is SHA-256("tree <len>\0" ‖
//! entries), each entry "<mode> <name>\0" ‖ 32-byte id, sorted by name with folder names
//! compared as if they ended in '/'. Modes: 100644 (file), 100755 (owner-executable file),
//! 120000 (symbolic link: the blob is its target), 40000 (folder). Folders without files are
//! left out, as git does. The walk (and the .gitignore rules) are the `ignore` crate's.

use crate::error::{Error, Result, Subject};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The folder at the top that is never measured (state written at run time).
pub const EXCLUDED_TOP_FOLDER: &str = "runtime";

/// One measured file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path relative to the folder, '/'-separated.
    pub path: String,
    /// Git mode: "100644", "100755" or "120000".
    pub mode: &'static str,
    /// Git blob id (SHA-256 object format).
    pub blob: [u8; 32],
}

/// The hash and the files it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigTree {
    pub tree_hash: [u8; 32],
    pub files: Vec<TreeFile>,
}

enum Node {
    File { mode: &'static str, id: [u8; 32] },
    Dir(BTreeMap<Vec<u8>, Node>),
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        subject: Subject::ConfigTree,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn object_id(kind: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!("{kind} {}\0", body.len()).as_bytes());
    h.update(body);
    h.finalize().into()
}

/// The git blob id of a file, streamed.
fn blob_of_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let len = file.metadata().map_err(|e| io(path, e))?.len();
    let mut h = Sha256::new();
    h.update(format!("blob {len}\0").as_bytes());
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
        total = total.saturating_add(n as u64);
    }
    if total != len {
        return Err(Error::FileChangedWhileHashed {
            path: path.display().to_string(),
            expected: len,
            actual: total,
        });
    }
    Ok(h.finalize().into())
}

#[cfg(unix)]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    s.to_string_lossy().as_bytes().to_vec()
}

fn tree_id(entries: &BTreeMap<Vec<u8>, Node>) -> [u8; 32] {
    // Git order: names compared bytewise, folders as if followed by '/'.
    let mut sorted: Vec<(Vec<u8>, &Node)> = entries
        .iter()
        .map(|(name, node)| {
            let mut key = name.clone();
            if matches!(node, Node::Dir(_)) {
                key.push(b'/');
            }
            (key, node)
        })
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut body = Vec::new();
    for (key, node) in sorted {
        let (mode, id, name) = match node {
            Node::File { mode, id } => (*mode, *id, key.as_slice()),
            Node::Dir(children) => (
                "40000",
                tree_id(children),
                key.get(..key.len().saturating_sub(1)).unwrap_or_default(),
            ),
        };
        body.extend_from_slice(mode.as_bytes());
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(&id);
    }
    object_id("tree", &body)
}

/// Hashes a configuration folder (see the module documentation for what is included).
pub fn tree_hash(dir: &Path) -> Result<ConfigTree> {
    let meta = std::fs::metadata(dir).map_err(|e| io(dir, e))?;
    if !meta.is_dir() {
        return Err(io(dir, "not a folder"));
    }
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(true)
        .git_ignore(true)
        .require_git(false)
        .parents(false)
        .follow_links(false)
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == EXCLUDED_TOP_FOLDER))
        .build();
    let mut root: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
    let mut files = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| io(dir, e))?;
        if entry.depth() == 0 {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .ok_or_else(|| Error::ConfigTreeUnsupportedEntry {
                path: path.display().to_string(),
            })?;
        if kind.is_dir() {
            continue;
        }
        let (mode, id) = if kind.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| io(path, e))?;
            ("120000", object_id("blob", &os_bytes(target.as_os_str())))
        } else if kind.is_file() {
            let meta = entry.metadata().map_err(|e| io(path, e))?;
            (file_mode(&meta), blob_of_file(path)?)
        } else {
            return Err(Error::ConfigTreeUnsupportedEntry {
                path: path.display().to_string(),
            });
        };
        let relative = path.strip_prefix(dir).map_err(|e| io(path, e))?;
        let components: Vec<Vec<u8>> = relative
            .components()
            .map(|c| os_bytes(c.as_os_str()))
            .collect();
        let Some((name, parents)) = components.split_last() else {
            continue;
        };
        let mut node = &mut root;
        for parent in parents {
            let child = node
                .entry(parent.clone())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            node = match child {
                Node::Dir(children) => children,
                Node::File { .. } => return Err(io(path, "a file and a folder of one name")),
            };
        }
        node.insert(name.clone(), Node::File { mode, id });
        files.push(TreeFile {
            path: relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
            mode,
            blob: id,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ConfigTree {
        tree_hash: tree_id(&root),
        files,
    })
}

#[cfg(unix)]
fn file_mode(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o100 != 0 {
        "100755"
    } else {
        "100644"
    }
}

#[cfg(not(unix))]
fn file_mode(_: &std::fs::Metadata) -> &'static str {
    "100644"
}

/// COCOON's `image_hash` of a TD: SHA-256(MRTD ‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG ‖
/// RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3 ‖ 64 zero bytes).
pub fn cocoon_image_hash(report: &crate::tdx::TdReport10) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(report.mr_td);
    h.update(report.mr_config_id);
    h.update(report.mr_owner);
    h.update(report.mr_owner_config);
    for rtmr in &report.rt_mr {
        h.update(rtmr);
    }
    h.update([0u8; 64]);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    use super::*;
    use crate::test_vectors;

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn unpack_spec_example(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("cocoon-config-tree-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tar = test_vectors::path("measure/cocoon/spec-example.tar");
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        TempDir(dir)
    }

    const SPEC_TREE: &str = "3498b88b6744207aa94ee56d84f5b00c3f126fe14756fb5c1b07a445b9eebb1e";

    #[test]
    fn the_cocoon_spec_example_hashes_to_its_published_tree() {
        let dir = unpack_spec_example("vector");
        let tree = tree_hash(&dir.0).unwrap();
        assert_eq!(hex::encode(tree.tree_hash), SPEC_TREE);
        let paths: Vec<&str> = tree.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["init", "sub/file.txt", "worker-config.json"]);
        assert_eq!(tree.files[0].mode, "100755");
    }

    #[test]
    fn runtime_state_and_ignored_files_do_not_change_the_hash() {
        let dir = unpack_spec_example("runtime");
        std::fs::write(dir.0.join("runtime/new-state"), b"x").unwrap();
        std::fs::write(dir.0.join("ignored.log"), b"more log").unwrap();
        std::fs::create_dir_all(dir.0.join("empty")).unwrap();
        assert_eq!(hex::encode(tree_hash(&dir.0).unwrap().tree_hash), SPEC_TREE);
    }

    #[test]
    fn a_changed_byte_or_mode_changes_the_hash() {
        let dir = unpack_spec_example("change");
        std::fs::write(dir.0.join("sub/file.txt"), b"y\n").unwrap();
        assert_ne!(hex::encode(tree_hash(&dir.0).unwrap().tree_hash), SPEC_TREE);
        let dir = unpack_spec_example("mode");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.0.join("init"), std::fs::Permissions::from_mode(0o644))
                .unwrap();
            assert_ne!(hex::encode(tree_hash(&dir.0).unwrap().tree_hash), SPEC_TREE);
        }
    }

    #[test]
    fn an_empty_folder_has_gits_empty_tree() {
        let dir = std::env::temp_dir().join(format!("cocoon-config-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let guard = TempDir(dir);
        // `git hash-object -t tree --object-format=sha256 /dev/null`
        assert_eq!(
            hex::encode(tree_hash(&guard.0).unwrap().tree_hash),
            "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
        );
    }

    #[test]
    fn a_missing_folder_is_an_io_error() {
        assert!(matches!(
            tree_hash(Path::new("/nonexistent/cocoon-config")),
            Err(Error::Io {
                subject: Subject::ConfigTree,
                ..
            })
        ));
    }

    #[test]
    fn image_hash_covers_every_td_measurement_in_order() {
        let quote = crate::tdx::Quote::parse(&test_vectors::read("tdx/tdx_quote")).unwrap();
        let report = quote.td_report().unwrap().clone();
        let mut preimage = Vec::new();
        for part in [
            &report.mr_td,
            &report.mr_config_id,
            &report.mr_owner,
            &report.mr_owner_config,
        ] {
            preimage.extend_from_slice(part);
        }
        for r in &report.rt_mr {
            preimage.extend_from_slice(r);
        }
        preimage.extend_from_slice(&[0u8; 64]);
        assert_eq!(preimage.len(), 8 * 48 + 64);
        let want: [u8; 32] = Sha256::digest(&preimage).into();
        assert_eq!(cocoon_image_hash(&report), want);
        let mut changed = report.clone();
        changed.rt_mr[3][0] ^= 1;
        assert_ne!(cocoon_image_hash(&changed), want);
    }
}
