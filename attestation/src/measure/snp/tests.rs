//! The 21 cases of `shared/vectors/measure/snp/expected.tsv` (sev-snp-measure's own test
//! suite) and the Debian OVMF / sid AmdSev firmware digests of the vectors README.

use super::*;
use crate::measure::ovmf::Ovmf;
use crate::test_vectors;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// A `kernel` / `initrd` column: `/dev/null` is an empty file, `none` is absent.
fn file_column(value: &str) -> Option<Vec<u8>> {
    match value {
        "/dev/null" => Some(Vec::new()),
        "none" | "-" => None,
        other => panic!("unexpected file column {other}"),
    }
}

fn append_column(value: &str) -> Option<String> {
    match value {
        "none" | "-" => None,
        quoted => Some(quoted.trim_matches('"').to_string()),
    }
}

fn hashes(kernel: &str, initrd: &str, append: &str) -> Option<KernelHashes> {
    file_column(kernel).map(|k| {
        KernelHashes::from_files(
            &k,
            file_column(initrd).as_deref(),
            append_column(append).as_deref(),
        )
    })
}

#[test]
fn all_21_sev_snp_measure_vectors_match() {
    let tsv = String::from_utf8(test_vectors::read("measure/snp/expected.tsv")).unwrap();
    let mut seed: Option<[u8; 48]> = None;
    let mut checked = 0;
    for line in tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let c: Vec<&str> = line.split('\t').collect();
        let (mode, vmm, fixture, vcpus, kernel, initrd, append, gf, seed_col, expected) =
            (c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]);
        let data = test_vectors::read(&format!("measure/snp/{fixture}"));
        let ovmf = Ovmf::parse(&data).unwrap();
        let h = hashes(kernel, initrd, append);
        let vmm = match vmm {
            "-" => Vmm::Qemu,
            name => Vmm::from_name(name).unwrap(),
        };
        let sig = vcpu_signature("EPYC-v4").unwrap();
        let got: std::result::Result<Vec<u8>, Error> = match mode {
            "snp:ovmf-hash" => {
                let hash = ovmf_hash(&ovmf).unwrap();
                seed = Some(hash);
                Ok(hash.to_vec())
            }
            "snp" => {
                let params = SnpParams {
                    vcpus: vcpus.parse().unwrap(),
                    vcpu_sig: sig,
                    vmm,
                    guest_features: u64::from_str_radix(gf.trim_start_matches("0x"), 16).unwrap(),
                    kernel_hashes: h,
                };
                if seed_col == "-" {
                    snp_launch_digest(Firmware::Image(&ovmf), &params).map(|d| d.to_vec())
                } else {
                    let metadata = ovmf.sev_metadata().unwrap();
                    snp_launch_digest(
                        Firmware::Seed {
                            ovmf_hash: seed.expect("the ovmf-hash row comes first"),
                            metadata: &metadata,
                        },
                        &params,
                    )
                    .map(|d| d.to_vec())
                }
            }
            "seves" => seves_launch_digest(&ovmf, vcpus.parse().unwrap(), sig, vmm, h.as_ref())
                .map(|d| d.to_vec()),
            "sev" => sev_launch_digest(&ovmf, h.as_ref()).map(|d| d.to_vec()),
            other => panic!("unknown mode {other}"),
        };
        if expected.starts_with("ERROR") {
            assert!(
                matches!(got, Err(Error::KernelHashesUnsupported)),
                "{line}: got {got:?}"
            );
        } else {
            assert_eq!(hex::encode(got.unwrap()), expected, "{line}");
        }
        checked += 1;
    }
    assert_eq!(checked, 21);
}

#[test]
fn seed_mode_equals_image_mode() {
    let data = test_vectors::read("measure/snp/ovmf_AmdSev_suffix.bin");
    let ovmf = Ovmf::parse(&data).unwrap();
    let metadata = ovmf.sev_metadata().unwrap();
    let params = SnpParams {
        vcpus: 3,
        vcpu_sig: vcpu_signature("EPYC-Milan").unwrap(),
        vmm: Vmm::Qemu,
        guest_features: 0x21,
        kernel_hashes: Some(KernelHashes::from_files(
            b"kernel",
            Some(b"initrd"),
            Some("x"),
        )),
    };
    let from_image = snp_launch_digest(Firmware::Image(&ovmf), &params).unwrap();
    let from_seed = snp_launch_digest(
        Firmware::Seed {
            ovmf_hash: ovmf_hash(&ovmf).unwrap(),
            metadata: &metadata,
        },
        &params,
    )
    .unwrap();
    assert_eq!(from_image, from_seed);
}

#[test]
fn zero_vcpus_are_rejected() {
    let data = test_vectors::read("measure/snp/ovmf_AmdSev_suffix.bin");
    let ovmf = Ovmf::parse(&data).unwrap();
    let params = SnpParams {
        vcpus: 0,
        vcpu_sig: 0,
        vmm: Vmm::Qemu,
        guest_features: 1,
        kernel_hashes: None,
    };
    assert!(matches!(
        snp_launch_digest(Firmware::Image(&ovmf), &params),
        Err(Error::MeasurementInputInvalid { .. })
    ));
}

#[test]
fn unknown_vcpu_type_is_rejected() {
    assert!(matches!(
        vcpu_signature("EPYC-Bogus"),
        Err(Error::UnknownVcpuType { .. })
    ));
    assert_eq!(vcpu_signature("EPYC-v4").unwrap(), 0x800f12);
    assert_eq!(vcpu_signature("EPYC-Milan").unwrap(), 0xa00f11);
    assert_eq!(vcpu_signature("EPYC-Genoa").unwrap(), 0xa10f10);
}

fn qemu(vcpus: u32, vcpu_type: &str, gf: u64, h: Option<KernelHashes>) -> SnpParams {
    SnpParams {
        vcpus,
        vcpu_sig: vcpu_signature(vcpu_type).unwrap(),
        vmm: Vmm::Qemu,
        guest_features: gf,
        kernel_hashes: h,
    }
}

#[test]
fn debian_bookworm_ovmf_snp_digests_match_the_vectors_readme() {
    let data = test_vectors::read("measure/tdx/OVMF.fd.bookworm-2022.11-6+deb12u2");
    let ovmf = Ovmf::parse(&data).unwrap();
    assert_eq!(
        hex::encode(ovmf_hash(&ovmf).unwrap()),
        "ba2c811512ef868474f239a21f7d7057d65a20de87a003c4f116e4fb1573183bfbcd75c3e99b2f558575a5d0094f73c6"
    );
    let fw = Firmware::Image(&ovmf);
    for (params, expected) in [
        (qemu(1, "EPYC-v4", 1, None), "11570979c77a0adb515761a702527c8b9e11554e730552621d950988613a3a75c6ff1703f540bd22a9beede8fe7a97e3"),
        (qemu(4, "EPYC-v4", 1, None), "32ac9d7a17d28f7cd4404a4516d2f00519668c40ada2062351c36767e908eb3f090d66c33ab10f80150e00a4385b6d0f"),
        (qemu(1, "EPYC-Milan", 0x21, None), "179c6ad39ad318c8c8d18444634df7217b63695830f1cde0b2f01fe53d2cd2f4d39207f50bf659554e2f5ec4ee0f72b6"),
    ] {
        assert_eq!(hex::encode(snp_launch_digest(fw, &params).unwrap()), expected);
    }
}

#[test]
fn debian_bookworm_ovmf_refuses_a_kernel() {
    let data = test_vectors::read("measure/tdx/OVMF.fd.bookworm-2022.11-6+deb12u2");
    let ovmf = Ovmf::parse(&data).unwrap();
    let h = KernelHashes::from_files(b"k", None, None);
    assert!(matches!(
        snp_launch_digest(Firmware::Image(&ovmf), &qemu(1, "EPYC-v4", 1, Some(h))),
        Err(Error::KernelHashesUnsupported)
    ));
}

#[test]
fn sid_amdsev_ovmf_direct_boot_digests_match_sev_snp_measure() {
    let data = test_vectors::read("measure/firmware/OVMF.amdsev.fd.sid-2026.08+ds-2");
    let ovmf = Ovmf::parse(&data).unwrap();
    assert_eq!(
        hex::encode(ovmf_hash(&ovmf).unwrap()),
        "9d0dd8be18c86e3fe3bf0038ed75ebf5340bee69fd2632c8ff9409964575960ae1f7e84be387d2e3467bc3508d1e4806"
    );
    let kernel = test_vectors::read("measure/dm-verity/d8.img");
    let initrd = test_vectors::read("measure/dm-verity/d8.nosalt.verity");
    let h = KernelHashes::from_files(&kernel, Some(&initrd), Some("console=ttyS0 root=/dev/vda"));
    let fw = Firmware::Image(&ovmf);
    let mut ec2 = qemu(2, "EPYC-v4", 1, Some(h));
    ec2.vmm = Vmm::Ec2;
    for (params, expected) in [
        (qemu(1, "EPYC-v4", 1, Some(h)), "6c69105282d6b11816001c68a97366282f4b7420a950809eb7221276e10b3b08fde3d86314abf336b52f3d613aca056b"),
        (qemu(2, "EPYC-v4", 1, Some(h)), "0d943a54de4697d47fb1307df51df66c1f852c16d61a5751903063d29a05ebf479cb82bdcbf0eaa0fc22e7581bc4c79a"),
        (qemu(4, "EPYC-Genoa", 0x21, Some(h)), "ba41f2b8a54d5ca677766b15416db8fe425f7153dedc3d1ce8004d90db3d6d0246ff4a748489f651af023e2e678a2ddc"),
        (ec2, "98b0ad84ced26ab2968ec0c2e85bec5a3744ae8ee29216cb9c27bab4a8373a1a2a06f90837044d33a50a1fe919c13e81"),
    ] {
        assert_eq!(hex::encode(snp_launch_digest(fw, &params).unwrap()), expected);
    }
}

#[test]
fn kernel_given_as_hash_equals_kernel_given_as_file() {
    let a = KernelHashes::from_files(b"kernel bytes", Some(b"initrd bytes"), Some("ro"));
    let b = KernelHashes::from_hashes(
        crate::measure::sha256(b"kernel bytes"),
        crate::measure::sha256(b"initrd bytes"),
        Some("ro"),
    );
    assert_eq!(a, b);
    assert_eq!(a.table().len(), 176);
    let _ = unhex("00");
}

/// The `sev` crate's measurement module (8.0.0) as a second, independent implementation:
/// equal to ours for QEMU and GCE; for EC2 it still writes RDX 0 and gives the digest
/// sev-snp-measure produced before 2026-04-28 (both values are in expected.tsv), which is
/// why we follow sev-snp-measure instead of this crate.
#[test]
fn sev_crate_agrees_for_qemu_and_differs_only_by_the_ec2_rdx_convention() {
    use sev::measurement::snp::{snp_calc_launch_digest, SnpMeasurementArgs};
    use sev::measurement::vcpu_types::CpuType;
    use sev::measurement::vmsa::{GuestFeatures, VMMType};
    let firmware = test_vectors::path("measure/firmware/OVMF.amdsev.fd.sid-2026.08+ds-2");
    let kernel = test_vectors::path("measure/dm-verity/d8.img");
    let initrd = test_vectors::path("measure/dm-verity/d8.nosalt.verity");
    let data = std::fs::read(&firmware).unwrap();
    let ovmf = Ovmf::parse(&data).unwrap();
    let h = KernelHashes::from_files(
        &std::fs::read(&kernel).unwrap(),
        Some(&std::fs::read(&initrd).unwrap()),
        Some("quiet"),
    );
    let theirs = |vcpus: u32, cpu: CpuType, gf: u64, vmm: VMMType| {
        snp_calc_launch_digest(SnpMeasurementArgs {
            vcpus,
            vcpu_type: cpu,
            ovmf_file: firmware.clone(),
            guest_features: GuestFeatures(gf),
            kernel_file: Some(kernel.clone()),
            initrd_file: Some(initrd.clone()),
            append: Some("quiet"),
            ovmf_hash_str: None,
            vmm_type: Some(vmm),
        })
        .unwrap()
        .get_hex_ld()
    };
    let ours = |vcpus: u32, cpu: &str, gf: u64, vmm: Vmm| {
        let params = SnpParams {
            vcpus,
            vcpu_sig: vcpu_signature(cpu).unwrap(),
            vmm,
            guest_features: gf,
            kernel_hashes: Some(h),
        };
        hex::encode(snp_launch_digest(Firmware::Image(&ovmf), &params).unwrap())
    };
    assert_eq!(
        ours(3, "EPYC-Milan", 0x21, Vmm::Qemu),
        theirs(3, CpuType::EpycMilan, 0x21, VMMType::QEMU)
    );
    assert_eq!(
        ours(1, "EPYC-Genoa", 0x1, Vmm::Qemu),
        theirs(1, CpuType::EpycGenoa, 0x1, VMMType::QEMU)
    );
    assert_ne!(
        ours(2, "EPYC-v4", 0x1, Vmm::Ec2),
        theirs(2, CpuType::EpycV4, 0x1, VMMType::EC2)
    );

    // On the expected.tsv fixture the sev crate gives the old (RDX 0) EC2 value listed there.
    let fixture = test_vectors::path("measure/snp/ovmf_AmdSev_suffix.bin");
    let old_ec2 = snp_calc_launch_digest(SnpMeasurementArgs {
        vcpus: 1,
        vcpu_type: CpuType::EpycV4,
        ovmf_file: fixture,
        guest_features: GuestFeatures(0x21),
        kernel_file: Some("/dev/null".into()),
        initrd_file: Some("/dev/null".into()),
        append: Some(""),
        ovmf_hash_str: None,
        vmm_type: Some(VMMType::EC2),
    })
    .unwrap()
    .get_hex_ld();
    assert_eq!(old_ec2, "6ae80856486b1396af8c82a40351d6ed76a20c785e9c7fa4ffa27c22d5d6313b4b3b458cd3c9968e6f89fb5d8450d7a6");
}
