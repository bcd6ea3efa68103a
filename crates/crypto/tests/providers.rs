//! Both master-key providers pass the same cases: the key file, and a real PKCS#11 token
//! (SoftHSM2, initialised by the test in a private token directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::doc_markdown, missing_docs)]

use crypto::{DataKey, FileKeyProvider, KeyError, KeyProvider, PatientKey, Pkcs11Config, Pkcs11KeyProvider};
use std::path::PathBuf;
use std::process::Command;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

struct Token {
    dir: PathBuf,
}

impl Drop for Token {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh SoftHSM2 token in the directory the parent process chose. The module reads
/// SOFTHSM2_CONF from the environment when it loads, and the workspace forbids the unsafe
/// `set_var`, so the parent re-runs the test with it set (see `with_softhsm_conf`).
fn softhsm_token(label: &str) -> Token {
    assert!(std::path::Path::new(SOFTHSM).exists(), "SoftHSM2 is needed: apt-get install softhsm2 (scripts/test does)");
    let dir = PathBuf::from(std::env::var_os("TIAKI_HSM_DIR").expect("run through with_softhsm_conf"));
    let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").expect("run through with_softhsm_conf"));
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    let ok = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label, "--so-pin", "12345678", "--pin", "1234"])
        .output()
        .expect("softhsm2-util");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    Token { dir }
}

/// Re-runs this test binary for one test with SOFTHSM2_CONF pointing at a fresh token directory.
fn with_softhsm_conf(test: &str, label: &str) -> bool {
    if std::env::var_os("TIAKI_HSM_CHILD").is_some() {
        return false;
    }
    let dir = std::env::temp_dir().join(format!("tiaki-hsm-{}-{label}", std::process::id()));
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture"])
        .env("TIAKI_HSM_CHILD", "1")
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        .env("TIAKI_HSM_DIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{test} failed in its SoftHSM2 process:\n{stdout}\n{stderr}");
    // A child that ran nothing (a renamed test, a filter that matches nothing) also exits 0:
    // the test must have reached its end there.
    assert!(
        stdout.contains(&format!("{CHILD_DONE} {test}")) || stderr.contains(&format!("{CHILD_DONE} {test}")),
        "{test} did not run to its end in the SoftHSM2 process:\n{stdout}\n{stderr}"
    );
    true
}

/// Printed by a test's SoftHSM2 process when it reaches its end.
const CHILD_DONE: &str = "tiaki-hsm-child-done";

/// The key labelled `label` in the token can be used but never read: it is sensitive, not
/// extractable, never was, and asking for its value gets nothing.
fn assert_not_extractable(token: &str, label: &str, class: cryptoki::object::ObjectClass) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::object::{Attribute, AttributeType};
    let ctx = Pkcs11::new(SOFTHSM).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|t| t.label().trim() == token))
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    match session.login(cryptoki::session::UserType::User, Some(&cryptoki::types::AuthPin::new("1234".into()))) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("{e}"),
    }
    let found = session.find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())]).unwrap();
    assert_eq!(found.len(), 1, "one {class:?} labelled {label}");
    let attrs = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Value,
            ],
        )
        .unwrap();
    assert!(attrs.contains(&Attribute::Sensitive(true)), "{label}: {attrs:?}");
    assert!(attrs.contains(&Attribute::Extractable(false)), "{label}: {attrs:?}");
    assert!(attrs.contains(&Attribute::NeverExtractable(true)), "{label}: {attrs:?}");
    assert!(!attrs.iter().any(|a| matches!(a, Attribute::Value(_))), "{label}: its value can be read: {attrs:?}");
}

fn conformance(p: &dyn KeyProvider) {
    let pk = PatientKey::random().unwrap();
    let dk = DataKey::random().unwrap();
    let wrapped_dk = pk.wrap(&dk).unwrap();
    let a = p.wrap_patient_key(&pk).unwrap();
    let b = p.wrap_patient_key(&pk).unwrap();
    assert!(!a.windows(32).any(|w| w == pk.bytes()), "the patient key does not appear in clear");
    let back = p.unwrap_patient_key(&a).unwrap();
    assert_eq!(back.unwrap(&wrapped_dk).unwrap().bytes(), dk.bytes());
    assert_eq!(p.unwrap_patient_key(&b).unwrap().bytes(), pk.bytes());
    let mut damaged = a.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(p.unwrap_patient_key(&damaged).unwrap_err(), KeyError::Unwrap);
    assert_eq!(p.unwrap_patient_key(&a[..10]).unwrap_err(), KeyError::Unwrap);
}

#[test]
fn key_file_provider_passes() {
    conformance(&FileKeyProvider::from_bytes(&[3; 32]).unwrap());
}

#[test]
fn pkcs11_provider_passes_against_softhsm2() {
    if with_softhsm_conf("pkcs11_provider_passes_against_softhsm2", "tiaki-test") {
        return;
    }
    let _token = softhsm_token("tiaki-test");
    let config = |create| Pkcs11Config {
        module: SOFTHSM.into(),
        token_label: "tiaki-test".into(),
        pin: "1234".to_owned().into(),
        key_label: "master".into(),
        create_if_missing: create,
    };
    assert!(
        matches!(Pkcs11KeyProvider::open(&config(false)), Err(KeyError::Provider(m)) if m.contains("no key labelled"))
    );
    let p = Pkcs11KeyProvider::open(&config(true)).unwrap();
    assert_eq!(p.id(), "pkcs11:tiaki-test/master");
    conformance(&p);
    let wrapped = p.wrap_patient_key(&PatientKey::from_bytes(&[5; 32]).unwrap()).unwrap();
    drop(p);
    // The key persists in the token, and a wrong PIN is refused with a clear message.
    let again = Pkcs11KeyProvider::open(&config(false)).unwrap();
    assert_eq!(again.unwrap_patient_key(&wrapped).unwrap().bytes(), &[5; 32]);
    drop(again);
    let wrong = Pkcs11Config { pin: "9999".to_owned().into(), ..config(false) };
    assert!(matches!(Pkcs11KeyProvider::open(&wrong), Err(KeyError::Provider(m)) if m.contains("PIN")));
    // A key wrapped by the token does not open with a key file, nor the other way round.
    assert!(FileKeyProvider::from_bytes(&[5; 32]).unwrap().unwrap_patient_key(&wrapped).is_err());
    // The master key was created so that nobody, not even the portal, can read it out.
    assert_not_extractable("tiaki-test", "master", cryptoki::object::ObjectClass::SECRET_KEY);
    std::io::Write::write_all(
        &mut std::io::stdout(),
        format!("{CHILD_DONE} pkcs11_provider_passes_against_softhsm2\n").as_bytes(),
    )
    .unwrap();
}

#[test]
fn checkpoints_are_signed_by_an_ed25519_key_in_the_token() {
    use audit::note::{Note, NoteSigner, Verifier, checkpoint_body};
    if with_softhsm_conf("checkpoints_are_signed_by_an_ed25519_key_in_the_token", "tiaki-sign") {
        return;
    }
    let _token = softhsm_token("tiaki-sign");
    let config = Pkcs11Config {
        module: SOFTHSM.into(),
        token_label: "tiaki-sign".into(),
        pin: "1234".to_owned().into(),
        key_label: "tiaki-audit".into(),
        create_if_missing: true,
    };
    let signer = crypto::Pkcs11NoteSigner::open(&config, "portal.test/audit").unwrap();
    let body = checkpoint_body("portal.test/audit", 42, &[9; 32]);
    let note = Note::parse(&signer.sign(&body)).unwrap();
    let verifier = Verifier::parse(&signer.vkey()).unwrap();
    assert_eq!(verifier.verify(&note.body, &note.signatures[0]), Some(0), "a standard Ed25519 note signature");
    assert_eq!(verifier.verify(&body.replace("42", "43"), &note.signatures[0]), None);
    // The key persists in the token: a second opening signs with the same key.
    let vkey = signer.vkey();
    drop(signer);
    let again =
        crypto::Pkcs11NoteSigner::open(&Pkcs11Config { create_if_missing: false, ..config }, "portal.test/audit")
            .unwrap();
    assert_eq!(again.vkey(), vkey);
    // The signing key's private half cannot be read out of the token.
    assert_not_extractable("tiaki-sign", "tiaki-audit", cryptoki::object::ObjectClass::PRIVATE_KEY);
    std::io::Write::write_all(
        &mut std::io::stdout(),
        format!("{CHILD_DONE} checkpoints_are_signed_by_an_ed25519_key_in_the_token\n").as_bytes(),
    )
    .unwrap();
}
