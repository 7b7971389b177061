#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use super::*;
use crate::test_vectors;
use std::io::Cursor;

const COCOON_SALT: &str = "00010203040506070809101a1b1c1d1e1f";
const COCOON_UUID: &str = "16961134-6412-4db8-96f9-3dd00bd6ffa3";

fn cocoon(superblock: bool) -> VerityParams {
    VerityParams {
        salt: hex::decode(COCOON_SALT).unwrap(),
        uuid: parse_uuid(COCOON_UUID).unwrap(),
        superblock,
    }
}

/// Data of `blocks` blocks, block i filled with byte (i & 0xff), as the vectors' README says.
fn pattern(blocks: usize) -> Vec<u8> {
    let mut d = vec![0u8; blocks * BLOCK_SIZE];
    for (i, b) in d.chunks_mut(BLOCK_SIZE).enumerate() {
        b.fill(i as u8);
    }
    d
}

fn build_mem(data: &[u8], params: &VerityParams) -> (VerityTree, Vec<u8>) {
    let mut sink = SeekSink(Cursor::new(Vec::new()));
    let tree = build(data, data.len() as u64, params, &mut sink, &mut |_, _| {}).unwrap();
    (tree, sink.0.into_inner())
}

fn root_of(name: &str) -> String {
    String::from_utf8(test_vectors::read(&format!(
        "measure/dm-verity/{name}.roothash"
    )))
    .unwrap()
    .trim()
    .to_string()
}

#[test]
fn vector_roots_and_hash_devices_are_byte_exact() {
    let d8 = test_vectors::read("measure/dm-verity/d8.img");
    assert_eq!(d8, pattern(8));
    let nosalt = VerityParams {
        salt: vec![],
        ..cocoon(true)
    };
    let cases: Vec<(&str, Vec<u8>, VerityParams)> = vec![
        ("d8.cocoonsalt", d8.clone(), cocoon(true)),
        ("d8.nosalt", d8.clone(), nosalt),
        ("d8.nosb", d8.clone(), cocoon(false)),
        ("d129.cocoonsalt", pattern(129), cocoon(true)),
        ("d1zero.cocoonsalt", vec![0u8; BLOCK_SIZE], cocoon(true)),
    ];
    for (name, data, params) in cases {
        let (tree, device) = build_mem(&data, &params);
        assert_eq!(hex::encode(tree.root_hash), root_of(name), "{name} root");
        let want = test_vectors::read(&format!("measure/dm-verity/{name}.verity"));
        assert_eq!(device.len(), want.len(), "{name} size");
        assert!(device == want, "{name}: hash device differs");
        assert_eq!(tree.hash_device_size, want.len() as u64);
    }
}

#[test]
fn a_three_level_tree_has_the_published_root() {
    let (tree, _) = build_mem(&pattern(16385), &cocoon(true));
    assert_eq!(tree.levels, 3);
    assert_eq!(hex::encode(tree.root_hash), root_of("d16385.cocoonsalt"));
}

#[test]
fn the_superblock_does_not_change_the_root() {
    assert_eq!(root_of("d8.nosb"), root_of("d8.cocoonsalt"));
    let d = pattern(300);
    assert_eq!(
        build_mem(&d, &cocoon(true)).0.root_hash,
        build_mem(&d, &cocoon(false)).0.root_hash
    );
}

#[test]
fn the_layout_puts_the_top_level_first() {
    assert_eq!(layout(1), vec![]);
    assert_eq!(layout(8), vec![(0, 1)]);
    assert_eq!(layout(129), vec![(1, 2), (0, 1)]);
    assert_eq!(layout(16385), vec![(3, 129), (1, 2), (0, 1)]);
    assert_eq!(hash_device_size(16385, true), (1 + 132) * 4096);
}

#[test]
fn bytes_after_the_last_whole_block_are_not_covered() {
    let mut d = pattern(2);
    let base = build_mem(&d, &cocoon(true)).0;
    d.extend_from_slice(&[7u8; 100]);
    let (tree, _) = build_mem(&d, &cocoon(true));
    assert_eq!(tree.root_hash, base.root_hash);
    assert_eq!(tree.data_blocks, 2);
}

#[test]
fn data_without_a_whole_block_is_refused() {
    let r = build(
        &[0u8; 4095][..],
        4095,
        &cocoon(true),
        &mut Discard,
        &mut |_, _| {},
    );
    assert!(matches!(r, Err(Error::VerityParametersInvalid { .. })));
}

#[test]
fn a_salt_over_256_bytes_is_refused() {
    let params = VerityParams {
        salt: vec![1; 257],
        ..cocoon(true)
    };
    let r = build(&pattern(1)[..], 4096, &params, &mut Discard, &mut |_, _| {});
    assert!(matches!(r, Err(Error::VerityParametersInvalid { .. })));
}

#[test]
fn data_shorter_than_its_declared_size_is_an_io_error() {
    let d = pattern(2);
    let r = build(
        &d[..],
        3 * 4096,
        &cocoon(true),
        &mut Discard,
        &mut |_, _| {},
    );
    assert!(matches!(
        r,
        Err(Error::Io {
            subject: Subject::Verity,
            ..
        })
    ));
}

#[test]
fn uuids_parse_only_in_their_hyphenated_form() {
    let u = parse_uuid(COCOON_UUID).unwrap();
    assert_eq!(format_uuid(&u), COCOON_UUID);
    for bad in [
        "",
        "1696113464124db896f93dd00bd6ffa3",
        "16961134-6412-4db8-96f9-3dd00bd6ffaz",
    ] {
        assert!(matches!(
            parse_uuid(bad),
            Err(Error::VerityParametersInvalid { .. })
        ));
    }
    let r = random_uuid().unwrap();
    assert_eq!(r[6] >> 4, 4);
}

#[test]
fn progress_reaches_the_total() {
    let d = pattern(3000); // more than one 8 MiB chunk? no: 12 MB > 8 MiB, two chunks
    let mut calls = Vec::new();
    build(
        &d[..],
        d.len() as u64,
        &cocoon(true),
        &mut Discard,
        &mut |a, b| calls.push((a, b)),
    )
    .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls.last(), Some(&(d.len() as u64, d.len() as u64)));
}

#[test]
fn build_file_writes_the_hash_device_atomically() {
    let dir = std::env::temp_dir().join(format!("cocoon-verity-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("d8.img");
    std::fs::write(&data, pattern(8)).unwrap();
    let out = dir.join("d8.verity");
    let tree = build_file(&data, &cocoon(true), Some(&out), &mut |_, _| {}).unwrap();
    assert_eq!(hex::encode(tree.root_hash), root_of("d8.cocoonsalt"));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        test_vectors::read("measure/dm-verity/d8.cocoonsalt.verity")
    );
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `veritysetup format` as an oracle on random sizes and salts. Skips (with a printed reason)
/// where the binary is absent, unless COCOON_REQUIRE_VERITYSETUP=1 (scripts/test sets it).
#[test]
fn veritysetup_agrees_on_random_sizes() {
    let bin = [
        "/usr/sbin/veritysetup",
        "/sbin/veritysetup",
        "/usr/bin/veritysetup",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        if std::env::var("COCOON_REQUIRE_VERITYSETUP").as_deref() == Ok("1") {
            panic!("veritysetup is required (COCOON_REQUIRE_VERITYSETUP=1) but not installed");
        }
        eprintln!("SKIPPED veritysetup_agrees_on_random_sizes: veritysetup not installed (apt-get install cryptsetup-bin)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("cocoon-verity-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // splitmix64: reproducible "random" sizes and contents without a dependency.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut sizes: Vec<u64> = (0..10).map(|_| 4096 + next() % (700 * 4096)).collect();
    sizes.extend([4096, 128 * 4096, 129 * 4096, 16384 * 4096 + 4096 + 17]);
    for (i, size) in sizes.into_iter().enumerate() {
        let mut data = vec![0u8; size as usize];
        for chunk in data.chunks_mut(8) {
            let r = next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        let salt_len = (next() % 40) as usize; // 0 = no salt
        let salt: Vec<u8> = (0..salt_len).map(|_| next() as u8).collect();
        let superblock = i % 3 != 2;
        let params = VerityParams {
            salt: salt.clone(),
            uuid: parse_uuid(COCOON_UUID).unwrap(),
            superblock,
        };
        let data_path = dir.join(format!("data{i}"));
        let hash_path = dir.join(format!("hash{i}"));
        std::fs::write(&data_path, &data).unwrap();
        let _ = std::fs::remove_file(&hash_path);
        let salt_arg = if salt.is_empty() {
            "-".to_string()
        } else {
            hex::encode(&salt)
        };
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("format")
            .arg(&data_path)
            .arg(&hash_path)
            .arg(format!("--salt={salt_arg}"))
            .arg(format!("--uuid={COCOON_UUID}"));
        if !superblock {
            cmd.arg("--no-superblock");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let root = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .unwrap()
            .trim()
            .to_string();
        let (tree, device) = build_mem(&data, &params);
        assert_eq!(
            hex::encode(tree.root_hash),
            root,
            "size {size}, salt {salt_arg}"
        );
        assert!(
            std::fs::read(&hash_path).unwrap() == device,
            "size {size}: hash device differs"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
