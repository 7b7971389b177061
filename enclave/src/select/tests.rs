use super::*;
use crate::tsm::tests::FakeKernel;
use crate::ClaimsPlatform;

/// A temporary "host" with the given interfaces present (devices as plain files).
fn host(tsm: bool, sev: bool, tdx: bool) -> (tempfile::TempDir, HostPaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths {
        tsm_root: dir.path().join("sys/kernel/config/tsm/report"),
        sev_guest: dir.path().join("dev/sev-guest"),
        tdx_guest: dir.path().join("dev/tdx_guest"),
    };
    std::fs::create_dir_all(dir.path().join("dev")).unwrap();
    if tsm {
        std::fs::create_dir_all(&paths.tsm_root).unwrap();
    }
    if sev {
        std::fs::write(&paths.sev_guest, b"").unwrap();
    }
    if tdx {
        std::fs::write(&paths.tdx_guest, b"").unwrap();
    }
    (dir, paths)
}

fn fake(provider: &'static str) -> Option<Arc<dyn KernelHooks>> {
    Some(Arc::new(FakeKernel::new(provider)))
}

#[test]
fn backend_names_parse_and_unknown_names_are_refused() {
    for (name, backend) in [
        ("auto", Backend::Auto),
        ("tsm", Backend::Tsm),
        ("sev-guest", Backend::SevGuest),
        ("tdx-guest", Backend::TdxGuest),
        ("sim", Backend::SimTdx),
        ("sim-tdx", Backend::SimTdx),
        ("sim-snp", Backend::SimSnp),
    ] {
        assert_eq!(name.parse::<Backend>().unwrap(), backend);
    }
    let err = "configfs".parse::<Backend>().unwrap_err();
    assert!(
        matches!(&err, AttestError::UnknownBackend { name } if name == "configfs"),
        "{err:?}"
    );
}

#[test]
fn detection_reports_each_interface_present() {
    let (_d, paths) = host(true, false, true);
    assert_eq!(
        detect(&paths),
        Detected {
            tsm: true,
            sev_guest: false,
            tdx_guest: true
        }
    );
    let (_d, paths) = host(false, true, false);
    assert_eq!(
        detect(&paths),
        Detected {
            tsm: false,
            sev_guest: true,
            tdx_guest: false
        }
    );
}

#[test]
fn auto_prefers_configfs_tsm() {
    let (_d, paths) = host(true, true, true);
    let a = select_with_kernel(
        Backend::Auto,
        &paths,
        &SelectOptions::default(),
        fake("sev_guest"),
    )
    .unwrap();
    assert_eq!(a.platform(), ClaimsPlatform::SevSnp);
    assert_eq!(format!("{a:?}").split(' ').next(), Some("TsmAttester"));
    assert_eq!(a.attest(&[7; 64]).unwrap().bytes[8..], [7; 64]);
}

#[test]
fn auto_falls_back_to_sev_guest() {
    let (_d, paths) = host(false, true, true);
    let a = select(Backend::Auto, &paths, &SelectOptions::default()).unwrap();
    assert_eq!(a.platform(), ClaimsPlatform::SevSnp);
    assert_eq!(format!("{a:?}").split(' ').next(), Some("SevGuestAttester"));
    // Not a real device here: the ioctl fails, proving the device path was used.
    assert!(matches!(a.attest(&[0; 64]), Err(AttestError::Ioctl { .. })));
}

#[test]
fn with_nothing_present_auto_names_every_missing_interface() {
    let (_d, paths) = host(false, false, false);
    let err = select(Backend::Auto, &paths, &SelectOptions::default()).unwrap_err();
    let AttestError::NoTeeInterface { missing } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(missing.len(), 3);
    let text = err.to_string();
    for needle in [
        "no TEE interface found",
        "tsm/report is absent",
        "CONFIG_TSM_REPORTS",
        "configfs",
        "sev-guest is absent",
        "modprobe sev-guest",
        "tdx_guest is absent",
        "modprobe tdx_guest",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
}

#[test]
fn with_only_tdx_guest_auto_explains_that_quotes_need_configfs_tsm() {
    let (_d, paths) = host(false, false, true);
    let err = select(Backend::Auto, &paths, &SelectOptions::default()).unwrap_err();
    assert!(matches!(err, AttestError::NoTeeInterface { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("present but gives only TDREPORTs: TDX quotes need configfs-tsm"),
        "{err}"
    );
}

#[test]
fn explicit_backends_fail_when_their_interface_is_absent() {
    let (_d, paths) = host(false, false, false);
    let opts = SelectOptions::default();
    assert!(matches!(
        select(Backend::Tsm, &paths, &opts),
        Err(AttestError::TsmUnavailable { .. })
    ));
    assert!(matches!(
        select(Backend::SevGuest, &paths, &opts),
        Err(AttestError::DeviceUnavailable { .. })
    ));
    assert!(matches!(
        select(Backend::TdxGuest, &paths, &opts),
        Err(AttestError::DeviceUnavailable { .. })
    ));
}

#[test]
fn explicit_tsm_is_used_even_when_devices_exist() {
    let (_d, paths) = host(true, true, true);
    let a = select_with_kernel(
        Backend::Tsm,
        &paths,
        &SelectOptions::default(),
        fake("tdx_guest"),
    )
    .unwrap();
    assert_eq!(a.platform(), ClaimsPlatform::Tdx);
}

#[test]
fn explicit_tdx_guest_gives_an_attester_that_refuses_quotes() {
    let (_d, paths) = host(false, false, true);
    let a = select(Backend::TdxGuest, &paths, &SelectOptions::default()).unwrap();
    assert!(matches!(
        a.attest(&[0; 64]),
        Err(AttestError::TdxQuoteUnavailable)
    ));
}

#[cfg(not(feature = "sim"))]
#[test]
fn simulated_backends_need_the_sim_feature() {
    let (_d, paths) = host(false, false, false);
    for b in [Backend::SimTdx, Backend::SimSnp] {
        assert!(matches!(
            select(b, &paths, &SelectOptions::default()),
            Err(AttestError::SimulatedBackendNotBuilt)
        ));
    }
}

#[cfg(feature = "sim")]
#[test]
fn simulated_backends_are_selected_by_name() {
    let (_d, paths) = host(false, false, false);
    let opts = SelectOptions::default();
    let tdx = select("sim".parse().unwrap(), &paths, &opts).unwrap();
    assert_eq!(tdx.platform(), ClaimsPlatform::SimulatedTdx);
    let snp = select("sim-snp".parse().unwrap(), &paths, &opts).unwrap();
    assert_eq!(snp.platform(), ClaimsPlatform::SimulatedSnp);
}
