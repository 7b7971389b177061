//! The backend against a temporary directory shaped like `/sys/kernel/config/tsm/report`, with
//! a fake kernel doing what configfs does behind the files: populate a new report directory,
//! bump `generation` on every write, produce `outblob` from `inblob`, and drop the attribute
//! files on rmdir.

use super::*;
use crate::certtable::{SnpCertKind, SnpCertificate};
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;

type Firmware = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

pub(crate) struct FakeKernel {
    provider: &'static str,
    with_inblob: bool,
    /// Size of the outblob the "firmware" produces (`None`: a fake quote of 8 + 64 bytes).
    outblob_len: Option<usize>,
    /// The "firmware" turning inblob into outblob, when not the fixed fake.
    firmware: Option<Firmware>,
    /// The TEE fails: outblob cannot be read (a directory stands in for the kernel's EIO).
    failing_tee: bool,
    auxblob: Option<Vec<u8>>,
    /// Attempts during which another process writes its own inblob before our outblob read.
    races: AtomicU32,
    /// Inblob writes by anyone, and privlevel values written.
    inblob_writes: AtomicU32,
    privlevels: Mutex<Vec<String>>,
}

impl FakeKernel {
    pub(crate) fn new(provider: &'static str) -> Self {
        Self {
            provider,
            with_inblob: true,
            outblob_len: None,
            firmware: None,
            failing_tee: false,
            auxblob: None,
            races: AtomicU32::new(0),
            inblob_writes: AtomicU32::new(0),
            privlevels: Mutex::new(Vec::new()),
        }
    }

    fn outblob_for(&self, inblob: &[u8]) -> Vec<u8> {
        if let Some(firmware) = &self.firmware {
            return firmware(inblob);
        }
        match self.outblob_len {
            Some(n) => vec![0x55; n],
            None => [b"FAKEQUOT".as_slice(), inblob].concat(),
        }
    }

    fn bump(dir: &Path) {
        let g: u64 = fs::read_to_string(dir.join("generation"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        fs::write(dir.join("generation"), format!("{}\n", g + 1)).unwrap();
    }
}

impl KernelHooks for FakeKernel {
    fn after_mkdir(&self, dir: &Path) {
        fs::write(dir.join("provider"), format!("{}\n", self.provider)).unwrap();
        fs::write(dir.join("generation"), "0\n").unwrap();
        fs::write(dir.join("outblob"), b"").unwrap();
        if self.with_inblob {
            fs::write(dir.join("inblob"), b"").unwrap();
        }
        if self.provider == "sev_guest" {
            fs::write(dir.join("privlevel"), b"0\n").unwrap();
            fs::write(dir.join("privlevel_floor"), b"0\n").unwrap();
        }
        if let Some(aux) = &self.auxblob {
            fs::write(dir.join("auxblob"), aux).unwrap();
        }
    }

    fn after_write(&self, dir: &Path, attribute: &str, data: &[u8]) {
        Self::bump(dir);
        match attribute {
            "inblob" => {
                self.inblob_writes.fetch_add(1, Ordering::SeqCst);
                if self.failing_tee {
                    let _ = fs::remove_file(dir.join("outblob"));
                    let _ = fs::create_dir(dir.join("outblob"));
                } else {
                    fs::write(dir.join("outblob"), self.outblob_for(data)).unwrap();
                }
            }
            "privlevel" => self
                .privlevels
                .lock()
                .unwrap()
                .push(String::from_utf8(data.to_vec()).unwrap()),
            _ => {}
        }
    }

    fn before_read(&self, dir: &Path, attribute: &str) {
        if attribute == "outblob"
            && self
                .races
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            // Another user of the same directory writes its own REPORT_DATA.
            let theirs = [0xEE; 64];
            fs::write(dir.join("inblob"), theirs).unwrap();
            self.after_write(dir, "inblob", &theirs);
        }
    }

    fn before_rmdir(&self, dir: &Path) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                fs::remove_dir(path).unwrap();
            } else {
                fs::remove_file(path).unwrap();
            }
        }
    }
}

fn attester(
    root: &Path,
    kernel: FakeKernel,
    options: TsmOptions,
) -> (Result<TsmAttester, AttestError>, Arc<FakeKernel>) {
    let kernel = Arc::new(kernel);
    let hooks: Arc<dyn KernelHooks> = kernel.clone();
    (
        TsmAttester::with_kernel(root.to_path_buf(), options, Some(hooks)),
        kernel,
    )
}

fn assert_no_report_dirs_left(root: &Path) {
    let left: Vec<_> = fs::read_dir(root).unwrap().collect();
    assert!(left.is_empty(), "report directories left behind: {left:?}");
}

const RD: [u8; 64] = [0x42; 64];

#[test]
fn tdx_provider_gives_a_quote_carrying_the_report_data() {
    let root = tempfile::tempdir().unwrap();
    let (a, kernel) = attester(
        root.path(),
        FakeKernel::new("tdx_guest"),
        TsmOptions::default(),
    );
    let a = a.unwrap();
    assert_eq!(a.platform(), ClaimsPlatform::Tdx);
    let ev = a.attest(&RD).unwrap();
    assert_eq!(ev.platform, ClaimsPlatform::Tdx);
    assert_eq!(ev.kind, EvidenceKind::TdxQuote);
    assert_eq!(ev.bytes, [b"FAKEQUOT".as_slice(), &RD].concat());
    assert!(ev.certificates.is_empty());
    assert_eq!(kernel.inblob_writes.load(Ordering::SeqCst), 1);
    // TDX has no privilege levels: an SNP privlevel option is not written.
    assert!(kernel.privlevels.lock().unwrap().is_empty());
    assert_no_report_dirs_left(root.path());
}

#[test]
fn snp_provider_gives_a_report_and_the_vcek_from_auxblob() {
    let root = tempfile::tempdir().unwrap();
    let certs = vec![
        SnpCertificate {
            kind: SnpCertKind::Vcek,
            der: vec![0x30, 0x82, 1, 2, 3],
        },
        SnpCertificate {
            kind: SnpCertKind::Ask,
            der: vec![0x30, 0x82, 4, 5],
        },
        SnpCertificate {
            kind: SnpCertKind::Ark,
            der: vec![0x30, 0x82, 6],
        },
    ];
    let mut kernel = FakeKernel::new("sev_guest");
    let mut aux = certtable::build(&certs);
    aux.resize(16384, 0); // the kernel hands out whole pages
    kernel.auxblob = Some(aux);
    let (a, _) = attester(root.path(), kernel, TsmOptions::default());
    let a = a.unwrap();
    assert_eq!(a.platform(), ClaimsPlatform::SevSnp);
    let ev = a.attest(&RD).unwrap();
    assert_eq!(ev.kind, EvidenceKind::SnpReport);
    assert_eq!(&ev.bytes[8..], &RD);
    assert_eq!(ev.certificates, certs);
    assert_eq!(ev.vcek(), Some([0x30, 0x82, 1, 2, 3].as_slice()));
    assert_eq!(ev.vlek(), None);
    assert_no_report_dirs_left(root.path());
}

#[test]
fn snp_without_auxblob_has_no_certificates() {
    let root = tempfile::tempdir().unwrap();
    let (a, _) = attester(
        root.path(),
        FakeKernel::new("sev_guest"),
        TsmOptions::default(),
    );
    let ev = a.unwrap().attest(&RD).unwrap();
    assert!(ev.certificates.is_empty());
}

#[test]
fn snp_privlevel_is_written_and_counted_as_a_write() {
    let root = tempfile::tempdir().unwrap();
    let options = TsmOptions {
        privlevel: Some(2),
        ..TsmOptions::default()
    };
    let (a, kernel) = attester(root.path(), FakeKernel::new("sev_guest"), options);
    // Two writes per attempt (privlevel, inblob): generation must be +2, and is.
    a.unwrap().attest(&RD).unwrap();
    assert_eq!(*kernel.privlevels.lock().unwrap(), vec!["2".to_string()]);
    assert_eq!(kernel.inblob_writes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_concurrent_writer_is_detected_and_the_request_retried() {
    let root = tempfile::tempdir().unwrap();
    let kernel = FakeKernel::new("tdx_guest");
    kernel.races.store(2, Ordering::SeqCst);
    let (a, kernel) = attester(root.path(), kernel, TsmOptions::default());
    let ev = a.unwrap().attest(&RD).unwrap();
    // The evidence carries our REPORT_DATA, not the other writer's.
    assert_eq!(&ev.bytes[8..], &RD);
    // Three attempts by us, two intruding writes.
    assert_eq!(kernel.inblob_writes.load(Ordering::SeqCst), 5);
    assert_no_report_dirs_left(root.path());
}

#[test]
fn a_writer_interfering_with_every_attempt_is_a_generation_race() {
    let root = tempfile::tempdir().unwrap();
    let kernel = FakeKernel::new("sev_guest");
    kernel.races.store(u32::MAX, Ordering::SeqCst);
    let options = TsmOptions {
        max_attempts: 4,
        ..TsmOptions::default()
    };
    let (a, _) = attester(root.path(), kernel, options);
    let err = a.unwrap().attest(&RD).unwrap_err();
    assert!(
        matches!(err, AttestError::TsmGenerationRace { attempts: 4 }),
        "{err:?}"
    );
    assert_no_report_dirs_left(root.path());
}

#[test]
fn a_kernel_without_inblob_is_named_in_the_error() {
    let root = tempfile::tempdir().unwrap();
    let mut kernel = FakeKernel::new("tdx_guest");
    kernel.with_inblob = false;
    let (a, _) = attester(root.path(), kernel, TsmOptions::default());
    let err = a.unwrap().attest(&RD).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::TsmAttributeMissing {
                attribute: "inblob",
                ..
            }
        ),
        "{err:?}"
    );
    assert_no_report_dirs_left(root.path());
}

#[test]
fn an_oversize_outblob_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    let mut kernel = FakeKernel::new("tdx_guest");
    kernel.outblob_len = Some(4097);
    let options = TsmOptions {
        max_outblob: 4096,
        ..TsmOptions::default()
    };
    let (a, _) = attester(root.path(), kernel, options);
    let err = a.unwrap().attest(&RD).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::OutputTooLarge {
                what: "outblob",
                limit: 4096
            }
        ),
        "{err:?}"
    );
    assert_no_report_dirs_left(root.path());
}

#[test]
fn an_outblob_of_exactly_the_limit_is_accepted() {
    let root = tempfile::tempdir().unwrap();
    let mut kernel = FakeKernel::new("tdx_guest");
    kernel.outblob_len = Some(4096);
    let options = TsmOptions {
        max_outblob: 4096,
        ..TsmOptions::default()
    };
    let (a, _) = attester(root.path(), kernel, options);
    assert_eq!(a.unwrap().attest(&RD).unwrap().bytes.len(), 4096);
}

#[test]
fn an_empty_outblob_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    let mut kernel = FakeKernel::new("tdx_guest");
    kernel.outblob_len = Some(0);
    let (a, _) = attester(root.path(), kernel, TsmOptions::default());
    let err = a.unwrap().attest(&RD).unwrap_err();
    assert!(
        matches!(err, AttestError::EmptyOutput { what: "outblob" }),
        "{err:?}"
    );
}

#[test]
fn an_oversize_auxblob_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    let mut kernel = FakeKernel::new("sev_guest");
    kernel.auxblob = Some(vec![0; 1025]);
    let options = TsmOptions {
        max_auxblob: 1024,
        ..TsmOptions::default()
    };
    let (a, _) = attester(root.path(), kernel, options);
    let err = a.unwrap().attest(&RD).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::OutputTooLarge {
                what: "auxblob",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_malformed_certificate_table_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    let mut kernel = FakeKernel::new("sev_guest");
    // One entry pointing past the end, no terminator.
    let mut aux = certtable::VCEK_GUID.to_vec();
    aux.extend_from_slice(&48u32.to_le_bytes());
    aux.extend_from_slice(&1000u32.to_le_bytes());
    kernel.auxblob = Some(aux);
    let (a, _) = attester(root.path(), kernel, TsmOptions::default());
    let err = a.unwrap().attest(&RD).unwrap_err();
    assert!(
        matches!(err, AttestError::CertTableMalformed { .. }),
        "{err:?}"
    );
    assert_no_report_dirs_left(root.path());
}

#[test]
fn a_tee_that_fails_to_report_is_named_with_a_hint() {
    let root = tempfile::tempdir().unwrap();
    let mut kernel = FakeKernel::new("tdx_guest");
    kernel.failing_tee = true;
    let (a, _) = attester(root.path(), kernel, TsmOptions::default());
    let err = a.unwrap().attest(&RD).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::TsmReportFailed {
                provider: "tdx_guest",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("quote generation service"),
        "{err}"
    );
    assert_no_report_dirs_left(root.path());
}

#[test]
fn an_unknown_provider_is_named() {
    let root = tempfile::tempdir().unwrap();
    let (a, _) = attester(
        root.path(),
        FakeKernel::new("arm_cca_guest"),
        TsmOptions::default(),
    );
    let err = a.unwrap_err();
    assert!(
        matches!(&err, AttestError::TsmUnknownProvider { provider } if provider == "arm_cca_guest"),
        "{err:?}"
    );
    assert_no_report_dirs_left(root.path());
}

#[test]
fn a_missing_root_says_what_the_kernel_needs() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("tsm/report");
    let err = TsmAttester::new(&missing, TsmOptions::default()).unwrap_err();
    assert!(
        matches!(&err, AttestError::TsmUnavailable { root } if *root == missing),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("CONFIG_TSM_REPORTS") && text.contains("6.7"),
        "{text}"
    );
}

#[test]
fn concurrent_requests_use_separate_directories() {
    let root = tempfile::tempdir().unwrap();
    let (a, kernel) = attester(
        root.path(),
        FakeKernel::new("tdx_guest"),
        TsmOptions::default(),
    );
    let a = a.unwrap();
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let a = &a;
            s.spawn(move || {
                let rd = [i; 64];
                for _ in 0..5 {
                    assert_eq!(&a.attest(&rd).unwrap().bytes[8..], &rd);
                }
            });
        }
    });
    assert_eq!(kernel.inblob_writes.load(Ordering::SeqCst), 20);
    assert_no_report_dirs_left(root.path());
}

/// configfs-tsm with the simulated TEE as the "firmware" behind the files: the evidence the
/// backend returns verifies with the simulated roots and binds the claims.
#[cfg(feature = "sim")]
mod with_simulated_firmware {
    use super::*;
    use cocoon_attestation::claims::{Claims, ModelIdentity};
    use cocoon_attestation::sim::snp::{self as sim_snp, SimSnp, SimSnpReport};
    use cocoon_attestation::sim::tdx::{SimTdReport, SimTdx};
    use cocoon_attestation::sim::SIM_NOW;
    use cocoon_attestation::snp::SnpVerifier;
    use cocoon_attestation::tdx::{Quote, TdxVerifier};

    fn claims(platform: ClaimsPlatform) -> Claims {
        Claims {
            platform,
            tls_spki_sha256: [1; 32],
            hpke_public_key: None,
            model: ModelIdentity {
                blake3: [2; 32],
                dm_verity_root: None,
            },
            config_digest: [3; 32],
            created_at: SIM_NOW,
            expires_at: SIM_NOW + 60,
            nonce: None,
            gpu: None,
        }
    }

    fn inblob(data: &[u8]) -> [u8; 64] {
        data.try_into().expect("the backend writes 64 bytes")
    }

    #[test]
    fn tdx_quote_from_configfs_tsm_verifies_and_binds_the_claims() {
        let root = tempfile::tempdir().unwrap();
        let sim = SimTdx::new().unwrap();
        let mut kernel = FakeKernel::new("tdx_guest");
        let firmware = sim.clone();
        kernel.firmware = Some(Box::new(move |data| {
            firmware
                .issue_quote(&SimTdReport::default().report_data(inblob(data)))
                .unwrap()
        }));
        kernel.races.store(1, Ordering::SeqCst);
        let (a, _) = attester(root.path(), kernel, TsmOptions::default());
        let c = claims(ClaimsPlatform::Tdx);
        let ev = a.unwrap().attest(&c.report_data()).unwrap();
        let verified = TdxVerifier::with_roots(vec![sim.root_anchor()])
            .verify(
                &Quote::parse(&ev.bytes).unwrap(),
                &sim.collateral().unwrap(),
                SIM_NOW,
            )
            .unwrap();
        c.check_binding(verified.quote.report_data()).unwrap();
        assert_no_report_dirs_left(root.path());
    }

    #[test]
    fn snp_report_and_auxblob_vcek_from_configfs_tsm_verify_and_bind_the_claims() {
        let root = tempfile::tempdir().unwrap();
        let sim = SimSnp::new().unwrap();
        let mut kernel = FakeKernel::new("sev_guest");
        let firmware = sim.clone();
        kernel.firmware = Some(Box::new(move |data| {
            firmware
                .issue_report(&SimSnpReport::default().report_data(inblob(data)))
                .unwrap()
        }));
        kernel.auxblob = Some(certtable::build(&[SnpCertificate {
            kind: SnpCertKind::Vcek,
            der: sim_snp::vcek_der().to_vec(),
        }]));
        let (a, _) = attester(root.path(), kernel, TsmOptions::default());
        let c = claims(ClaimsPlatform::SevSnp);
        let ev = a.unwrap().attest(&c.report_data()).unwrap();
        let verified = SnpVerifier::with_roots(sim_snp::amd_roots())
            .verify_bytes(&ev.bytes, ev.vcek().unwrap(), None, SIM_NOW)
            .unwrap();
        c.check_binding(&verified.report.report_data).unwrap();
    }
}
