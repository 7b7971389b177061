//! Guest images built by `images/build`: a folder with `vmlinuz`, `initrd.img`, `cmdline.txt`,
//! `model.img` (squashfs), `model.verity` (its dm-verity hash device) and `manifest.json`.
//!
//! The `vm` platform names such a folder (`image = "…"`); the agent reads the manifest for what
//! the image is (kernel command line, model digest, dm-verity root, the enclave's attester and
//! HPKE mode), checks every file against the manifest's SHA-256 and recomputes the dm-verity root
//! of `model.img` before it publishes measurements, and checks the SHA-256s again before each
//! launch (a file swapped after publication is refused, not booted).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};
use crate::spec::{Attester, HpkeMode};

/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The files a VM boots from, in the image folder.
pub const KERNEL: &str = "vmlinuz";
pub const INITRD: &str = "initrd.img";
pub const CMDLINE: &str = "cmdline.txt";
pub const MODEL_IMAGE: &str = "model.img";
pub const MODEL_VERITY: &str = "model.verity";
pub const ROOTFS_IMAGE: &str = "rootfs.img";
pub const ROOTFS_VERITY: &str = "rootfs.verity";

#[derive(Debug, Deserialize)]
struct FileEntry {
    sha256: String,
    size: u64,
}

#[derive(Debug, Deserialize)]
struct ModelEntry {
    model_blake3: String,
}

#[derive(Debug, Deserialize)]
struct VerityEntry {
    root_hash: String,
    salt: String,
    uuid: String,
    data_blocks: u64,
}

#[derive(Debug, Deserialize)]
struct VerityEntries {
    model: VerityEntry,
    rootfs: VerityEntry,
}

#[derive(Debug, Deserialize)]
struct EnclaveEntry {
    /// `sim-tdx`/`sim-snp` (a `vm` image) or the hardware backend (`auto`, `tsm`, …).
    attester: String,
    hpke: HpkeMode,
    port: u16,
}

/// The part of `manifest.json` the agent uses (other keys are for auditors).
#[derive(Debug, Deserialize)]
struct Manifest {
    name: String,
    files: BTreeMap<String, FileEntry>,
    cmdline: String,
    model: ModelEntry,
    verity: VerityEntries,
    enclave: EnclaveEntry,
}

/// One file of the image with its expected digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageFile {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// A guest image as its manifest describes it (paths absolute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuestImage {
    pub dir: PathBuf,
    pub name: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub model_image: PathBuf,
    pub model_verity: PathBuf,
    /// The measured kernel command line.
    pub cmdline: String,
    /// BLAKE3 digest of the model folder inside `model.img` (the claims' `model_blake3`).
    pub model_blake3: String,
    /// dm-verity root of `model.img` (on the cmdline, and the claims' `model_dm_verity_root`).
    pub model_verity_root: String,
    pub verity_salt: String,
    pub verity_uuid: String,
    pub verity_data_blocks: u64,
    /// The root file system (the enclave and its libraries) and its hash device.
    pub rootfs_image: PathBuf,
    pub rootfs_verity: PathBuf,
    /// dm-verity root of `rootfs.img` (on the measured cmdline).
    pub rootfs_verity_root: String,
    pub rootfs_verity_uuid: String,
    pub rootfs_verity_data_blocks: u64,
    /// The attester the image's enclave runs with (`sim-tdx`, `sim-snp`, or a hardware backend).
    pub attester: String,
    pub hpke: HpkeMode,
    /// The enclave's port inside the guest.
    pub guest_port: u16,
    /// Every file the VM boots from, with the manifest's digest.
    pub files: Vec<ImageFile>,
}

fn invalid(path: &Path, detail: impl Into<String>) -> Error {
    Error::ImageInvalid {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn hex32(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

impl GuestImage {
    /// Reads `DIR/manifest.json` and checks it is self-consistent (no file hashing: see
    /// [`Self::check_files`] and [`Self::check_verity_root`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let file = std::fs::File::open(&path).map_err(io(&path))?;
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES.saturating_add(1))
            .read_to_string(&mut text)
            .map_err(io(&path))?;
        if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_MANIFEST_BYTES {
            return Err(invalid(&path, format!("over {MAX_MANIFEST_BYTES} bytes")));
        }
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| invalid(&path, format!("not an images/build manifest: {e}")))?;
        let attester_ok = !m.enclave.attester.is_empty()
            && m.enclave.attester.len() <= 32
            && m.enclave
                .attester
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !attester_ok {
            return Err(invalid(&path, "enclave.attester is not a backend name"));
        }
        for (what, value) in [
            ("model.model_blake3", &m.model.model_blake3),
            ("verity.model.root_hash", &m.verity.model.root_hash),
            ("verity.rootfs.root_hash", &m.verity.rootfs.root_hash),
        ] {
            if !hex32(value) {
                return Err(invalid(
                    &path,
                    format!("{what} is not 64 lowercase hex digits"),
                ));
            }
        }
        // The root on the measured cmdline is what the guest's dm-verity enforces: it must be
        // the manifest's, or the published claims would describe another model volume.
        for (arg, root) in [
            ("cocoon.model_verity", &m.verity.model.root_hash),
            ("cocoon.rootfs_verity", &m.verity.rootfs.root_hash),
        ] {
            let expected = format!("{arg}={root}");
            if !m.cmdline.split(' ').any(|a| a == expected) {
                return Err(invalid(
                    &path,
                    format!("the cmdline does not carry the manifest's {arg} root"),
                ));
            }
        }
        let mut files = Vec::new();
        for name in [
            KERNEL,
            INITRD,
            CMDLINE,
            MODEL_IMAGE,
            MODEL_VERITY,
            ROOTFS_IMAGE,
            ROOTFS_VERITY,
        ] {
            let entry = m
                .files
                .get(name)
                .ok_or_else(|| invalid(&path, format!("files.{name} missing")))?;
            if !hex32(&entry.sha256) {
                return Err(invalid(&path, format!("files.{name}.sha256 is not hex")));
            }
            files.push(ImageFile {
                path: dir.join(name),
                sha256: entry.sha256.clone(),
                size: entry.size,
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name: m.name,
            kernel: dir.join(KERNEL),
            initrd: dir.join(INITRD),
            model_image: dir.join(MODEL_IMAGE),
            model_verity: dir.join(MODEL_VERITY),
            cmdline: m.cmdline,
            model_blake3: m.model.model_blake3,
            model_verity_root: m.verity.model.root_hash,
            verity_salt: m.verity.model.salt,
            verity_uuid: m.verity.model.uuid,
            verity_data_blocks: m.verity.model.data_blocks,
            rootfs_image: dir.join(ROOTFS_IMAGE),
            rootfs_verity: dir.join(ROOTFS_VERITY),
            rootfs_verity_root: m.verity.rootfs.root_hash,
            rootfs_verity_uuid: m.verity.rootfs.uuid,
            rootfs_verity_data_blocks: m.verity.rootfs.data_blocks,
            attester: m.enclave.attester,
            hpke: m.enclave.hpke,
            guest_port: m.enclave.port,
            files,
        })
    }

    /// The simulated TEE the image's enclave uses, if it uses one.
    pub fn simulated_attester(&self) -> Option<Attester> {
        match self.attester.as_str() {
            "sim-tdx" => Some(Attester::SimTdx),
            "sim-snp" => Some(Attester::SimSnp),
            _ => None,
        }
    }

    /// The manifest's SHA-256 of one of the image's files.
    pub fn sha256_of(&self, name: &str) -> Option<[u8; 32]> {
        let path = self.dir.join(name);
        let f = self.files.iter().find(|f| f.path == path)?;
        hex::decode(&f.sha256).ok()?.try_into().ok()
    }

    /// Every file's size and SHA-256 must equal the manifest's; `cmdline.txt` must hold the
    /// manifest's command line.
    pub fn check_files(&self) -> Result<()> {
        for f in &self.files {
            let meta = std::fs::metadata(&f.path).map_err(io(&f.path))?;
            if meta.len() != f.size {
                return Err(Error::ImageChanged {
                    path: f.path.clone(),
                    detail: format!("{} bytes, the manifest says {}", meta.len(), f.size),
                });
            }
            let digest = sha256_file(&f.path)?;
            if digest != f.sha256 {
                return Err(Error::ImageChanged {
                    path: f.path.clone(),
                    detail: format!("sha256 {digest}, the manifest says {}", f.sha256),
                });
            }
        }
        let cmdline_path = self.dir.join(CMDLINE);
        let text = std::fs::read_to_string(&cmdline_path).map_err(io(&cmdline_path))?;
        if text.trim_end_matches('\n') != self.cmdline {
            return Err(Error::ImageChanged {
                path: cmdline_path,
                detail: "differs from the manifest's cmdline".to_owned(),
            });
        }
        Ok(())
    }

    /// Recomputes the dm-verity roots of `model.img` and `rootfs.img` (cocoon_attestation::verity,
    /// the same code as `cocoon-verify measure verity`) and compares them with the manifest's.
    pub fn check_verity_root(&self) -> Result<()> {
        check_volume(
            &self.model_image,
            &self.verity_salt,
            &self.verity_uuid,
            self.verity_data_blocks,
            &self.model_verity_root,
        )?;
        check_volume(
            &self.rootfs_image,
            &self.verity_salt,
            &self.rootfs_verity_uuid,
            self.rootfs_verity_data_blocks,
            &self.rootfs_verity_root,
        )
    }
}

/// One volume's dm-verity tree, recomputed, against the manifest's root and block count.
fn check_volume(image: &Path, salt: &str, uuid: &str, data_blocks: u64, root: &str) -> Result<()> {
    use cocoon_attestation::verity;
    let measure_err = |detail: String| Error::Measure {
        what: "dm-verity",
        detail,
    };
    let salt = hex::decode(salt).map_err(|e| measure_err(e.to_string()))?;
    let uuid = verity::parse_uuid(uuid).map_err(|e| measure_err(e.to_string()))?;
    let params = verity::VerityParams {
        salt,
        uuid,
        superblock: true,
    };
    let tree = verity::build_file(image, &params, None, &mut |_, _| {})
        .map_err(|e| measure_err(e.to_string()))?;
    if tree.data_blocks != data_blocks {
        return Err(Error::ImageChanged {
            path: image.to_path_buf(),
            detail: format!(
                "{} dm-verity data blocks, the manifest says {data_blocks}",
                tree.data_blocks
            ),
        });
    }
    let actual = hex::encode(tree.root_hash);
    if actual != root {
        return Err(Error::ImageChanged {
            path: image.to_path_buf(),
            detail: format!(
                "dm-verity root {actual}, the manifest (and the measured cmdline) say {root}"
            ),
        });
    }
    Ok(())
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A small, self-consistent image folder for unit tests (random model bytes, real dm-verity
/// tree and SHA-256s, a manifest in the images/build format).
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
pub(crate) fn test_image(dir: &Path) -> GuestImage {
    use cocoon_attestation::verity;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(KERNEL), b"not a kernel").unwrap();
    std::fs::write(dir.join(INITRD), b"not an initrd").unwrap();
    let salt = "00010203";
    // One volume: random-looking bytes, its hash device, (root, data blocks).
    let volume = |image: &str, hash: &str, uuid: &str, seed: u32, blocks: u32| {
        let data: Vec<u8> = (0..blocks * 4096)
            .map(|i| ((i ^ seed).wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        std::fs::write(dir.join(image), &data).unwrap();
        let params = verity::VerityParams {
            salt: hex::decode(salt).unwrap(),
            uuid: verity::parse_uuid(uuid).unwrap(),
            superblock: true,
        };
        let tree = verity::build_file(
            &dir.join(image),
            &params,
            Some(&dir.join(hash)),
            &mut |_, _| {},
        )
        .unwrap();
        (hex::encode(tree.root_hash), tree.data_blocks)
    };
    let model_uuid = "16961134-6412-4db8-96f9-3dd00bd6ffa3";
    let rootfs_uuid = "5a1c2b7e-0d7f-4f43-9a0e-2f6c1d3b8e41";
    let (root, blocks) = volume(MODEL_IMAGE, MODEL_VERITY, model_uuid, 0, 5);
    let (rroot, rblocks) = volume(ROOTFS_IMAGE, ROOTFS_VERITY, rootfs_uuid, 0x5a5a, 3);
    let cmdline = format!(
        "console=ttyS0 cocoon.rootfs_verity={rroot} cocoon.rootfs_blocks={rblocks} \
         cocoon.model_verity={root} cocoon.model_blocks={blocks}"
    );
    std::fs::write(dir.join(CMDLINE), format!("{cmdline}\n")).unwrap();
    let mut files = serde_json::Map::new();
    for name in [
        KERNEL,
        INITRD,
        CMDLINE,
        MODEL_IMAGE,
        MODEL_VERITY,
        ROOTFS_IMAGE,
        ROOTFS_VERITY,
    ] {
        let path = dir.join(name);
        files.insert(
            name.to_owned(),
            serde_json::json!({
                "sha256": sha256_file(&path).unwrap(),
                "size": std::fs::metadata(&path).unwrap().len(),
            }),
        );
    }
    let manifest = serde_json::json!({
        "name": "test",
        "files": files,
        "cmdline": cmdline,
        "model": {"model_blake3": "ab".repeat(32), "files": []},
        "verity": {
            "model": {"root_hash": root, "salt": salt, "uuid": model_uuid, "data_blocks": blocks},
            "rootfs": {"root_hash": rroot, "salt": salt, "uuid": rootfs_uuid, "data_blocks": rblocks},
        },
        "enclave": {"attester": "sim-tdx", "hpke": "required", "port": 8443},
        "auditor_only_key": {"ignored": true},
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    GuestImage::load(dir).unwrap()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::type_complexity
)]
mod tests {
    use super::*;

    fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join("manifest.json");
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut value);
        std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    }

    #[test]
    fn a_consistent_image_passes_every_check() {
        let dir = tempfile::tempdir().unwrap();
        let image = test_image(dir.path());
        assert_eq!(image.simulated_attester(), Some(Attester::SimTdx));
        assert_eq!(image.hpke, HpkeMode::Required);
        assert_eq!(image.files.len(), 7);
        image.check_files().unwrap();
        image.check_verity_root().unwrap();
    }

    #[test]
    fn a_changed_byte_in_any_file_is_refused_before_boot() {
        for name in [
            KERNEL,
            INITRD,
            MODEL_IMAGE,
            MODEL_VERITY,
            ROOTFS_IMAGE,
            ROOTFS_VERITY,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let image = test_image(dir.path());
            let path = dir.path().join(name);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[3] ^= 1;
            std::fs::write(&path, bytes).unwrap();
            match image.check_files() {
                Err(Error::ImageChanged { path: p, detail }) => {
                    assert_eq!(p, path);
                    assert!(detail.contains("sha256"), "{detail}");
                }
                other => panic!("{name}: expected ImageChanged, got {other:?}"),
            }
        }
    }

    /// Flips one byte of volume `name` at `offset`: the manifest's SHA-256 no longer matters
    /// here, only the recomputed dm-verity root must catch the other tree.
    fn flipped_volume_is_refused(name: &str, offset: usize) {
        let dir = tempfile::tempdir().unwrap();
        let image = test_image(dir.path());
        let path = dir.path().join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offset] ^= 0x80;
        std::fs::write(&path, &bytes).unwrap();
        match image.check_verity_root() {
            Err(Error::ImageChanged { path: p, detail }) => {
                assert_eq!(p, path);
                assert!(detail.contains("dm-verity root"), "{detail}");
            }
            other => panic!("{name}: expected ImageChanged, got {other:?}"),
        }
    }

    #[test]
    fn a_model_image_that_is_not_the_cmdline_root_is_refused() {
        flipped_volume_is_refused(MODEL_IMAGE, 4096 * 2);
    }

    #[test]
    fn a_root_file_system_that_is_not_the_cmdline_root_is_refused() {
        flipped_volume_is_refused(ROOTFS_IMAGE, 4096);
    }

    #[test]
    fn a_size_change_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let image = test_image(dir.path());
        std::fs::write(dir.path().join(INITRD), b"longer than before").unwrap();
        match image.check_files() {
            Err(Error::ImageChanged { detail, .. }) => {
                assert!(detail.contains("bytes"), "{detail}")
            }
            other => panic!("expected ImageChanged, got {other:?}"),
        }
    }

    #[test]
    fn inconsistent_manifests_are_refused() {
        let cases: Vec<(&str, Box<dyn Fn(&mut serde_json::Value)>)> = vec![
            (
                "cmdline without the roots",
                Box::new(|m| m["cmdline"] = "console=ttyS0".into()),
            ),
            (
                "no rootfs volume",
                Box::new(|m| {
                    m["verity"].as_object_mut().unwrap().remove("rootfs");
                }),
            ),
            (
                "model digest not hex",
                Box::new(|m| m["model"]["model_blake3"] = "xyz".into()),
            ),
            (
                "a file missing",
                Box::new(|m| {
                    m["files"].as_object_mut().unwrap().remove(MODEL_VERITY);
                }),
            ),
            (
                "attester not a name",
                Box::new(|m| m["enclave"]["attester"] = "../x".into()),
            ),
            (
                "no enclave entry",
                Box::new(|m| {
                    m.as_object_mut().unwrap().remove("enclave");
                }),
            ),
        ];
        for (what, edit) in cases {
            let dir = tempfile::tempdir().unwrap();
            test_image(dir.path());
            edit_manifest(dir.path(), edit);
            match GuestImage::load(dir.path()) {
                Err(Error::ImageInvalid { .. }) => {}
                other => panic!("{what}: expected ImageInvalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_oversized_manifest_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        test_image(dir.path());
        let big = vec![b' '; usize::try_from(MAX_MANIFEST_BYTES).unwrap() + 10];
        std::fs::write(dir.path().join("manifest.json"), big).unwrap();
        match GuestImage::load(dir.path()) {
            Err(Error::ImageInvalid { detail, .. }) => assert!(detail.contains("over")),
            other => panic!("expected ImageInvalid, got {other:?}"),
        }
    }
}
