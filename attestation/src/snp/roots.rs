//! AMD's SEV-SNP root certificates, embedded as DER.
//!
//! Source: AMD KDS (`https://kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/cert_chain` for ASK +
//! ARK, `.../vlek/v1/.../cert_chain` for ASVK), as copied into the test vectors
//! (`snp/builtin/*.pem` and `snp/*_ask_ark_asvk.pem`, byte-identical to virtee/sev's builtin
//! certificates). A unit test compares each file here with those PEM files.
//!
//! SHA-256 of the DER files:
//! - ARK-Milan `69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd`
//! - ARK-Genoa `4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1`
//! - ARK-Turin `1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a`
//! - SEV-Milan (ASK) `67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b`
//! - SEV-Genoa (ASK) `5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521`
//! - SEV-Turin (ASK) `5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185`
//! - SEV-VLEK-Milan (ASVK) `c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5`
//! - SEV-VLEK-Genoa (ASVK) `197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372`
//! - SEV-VLEK-Turin (ASVK) `104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c`

use super::Generation;

/// One generation's embedded DER certificates.
pub(crate) struct EmbeddedSet {
    pub generation: Generation,
    pub ark: &'static [u8],
    pub ask: &'static [u8],
    pub asvk: &'static [u8],
}

pub(crate) const EMBEDDED: [EmbeddedSet; 3] = [
    EmbeddedSet {
        generation: Generation::Milan,
        ark: include_bytes!("roots/milan_ark.der"),
        ask: include_bytes!("roots/milan_ask.der"),
        asvk: include_bytes!("roots/milan_asvk.der"),
    },
    EmbeddedSet {
        generation: Generation::Genoa,
        ark: include_bytes!("roots/genoa_ark.der"),
        ask: include_bytes!("roots/genoa_ask.der"),
        asvk: include_bytes!("roots/genoa_asvk.der"),
    },
    EmbeddedSet {
        generation: Generation::Turin,
        ark: include_bytes!("roots/turin_ark.der"),
        ask: include_bytes!("roots/turin_ask.der"),
        asvk: include_bytes!("roots/turin_asvk.der"),
    },
];

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::test_vectors;
    use x509_cert_02::der::{DecodePem, Encode};

    fn pem_certs_der(relative: &str) -> Vec<Vec<u8>> {
        let text = String::from_utf8(test_vectors::read(relative)).unwrap();
        text.split_inclusive("-----END CERTIFICATE-----")
            .filter(|block| block.contains("BEGIN CERTIFICATE"))
            .map(|block| {
                x509_cert_02::Certificate::from_pem(block.trim_start())
                    .unwrap()
                    .to_der()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn embedded_roots_equal_the_kds_files_in_the_vectors() {
        for set in &EMBEDDED {
            let g = set.generation.as_str().to_lowercase();
            let ark = pem_certs_der(&format!("snp/builtin/{g}_ark.pem"));
            let ask = pem_certs_der(&format!("snp/builtin/{g}_ask.pem"));
            assert_eq!(ark, vec![set.ark.to_vec()], "{g} ARK");
            assert_eq!(ask, vec![set.ask.to_vec()], "{g} ASK");
            // KDS bundle order: ASK, ARK, ASVK.
            let bundle = pem_certs_der(&format!("snp/{g}_ask_ark_asvk.pem"));
            assert_eq!(
                bundle,
                vec![set.ask.to_vec(), set.ark.to_vec(), set.asvk.to_vec()],
                "{g} bundle"
            );
        }
    }
}
