//! The master key in a PKCS#11 token (an HSM, or `SoftHSM2` in tests). The key never leaves the
//! token (`Sensitive`, not `Extractable`); patient keys are wrapped by AES-256-GCM inside it, with
//! a fresh 96-bit IV each time: wrapped = IV ‖ ciphertext ‖ tag.

use crate::keys::{KeyError, KeyProvider, PatientKey};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Mutex;

const AAD: &[u8] = b"tiaki patient key v1";

/// Where the token and key are.
#[derive(Debug)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: String,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: SecretString,
    /// The master key's label in the token.
    pub key_label: String,
    /// Create the key if the token has none with that label.
    pub create_if_missing: bool,
}

/// A master key held in a PKCS#11 token.
pub struct Pkcs11KeyProvider {
    id: String,
    // A PKCS#11 session is used by one thread at a time.
    session: Mutex<Session>,
    key: ObjectHandle,
    _context: Pkcs11,
}

impl std::fmt::Debug for Pkcs11KeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyProvider").field("id", &self.id).finish_non_exhaustive()
    }
}

fn provider_error(what: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::Provider(format!("{what}: {e}"))
}

/// Loads the module, finds the token by label and logs in.
fn login(config: &Pkcs11Config) -> Result<(Pkcs11, Session), KeyError> {
    let context = Pkcs11::new(&config.module)
        .map_err(|e| provider_error(&format!("cannot load the PKCS#11 module {}", config.module), e))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(provider_error("cannot initialise the PKCS#11 module", e)),
    }
    // A token's details can be unreadable for a moment while another process writes to it (a
    // file-backed token such as SoftHSM2's): looked for again, briefly, before giving up.
    let mut slot = None;
    for attempt in 0..10 {
        slot = context
            .get_slots_with_token()
            .map_err(|e| provider_error("cannot list PKCS#11 slots", e))?
            .into_iter()
            .find(|s| context.get_token_info(*s).is_ok_and(|t| t.label().trim() == config.token_label));
        if slot.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50 * (attempt + 1)));
    }
    let slot =
        slot.ok_or_else(|| KeyError::Provider(format!("no PKCS#11 token is labelled {:?}", config.token_label)))?;
    let session = context.open_rw_session(slot).map_err(|e| provider_error("cannot open a session on the token", e))?;
    let pin = AuthPin::new(config.pin.expose_secret().into());
    // Login state is per application and token: when another key of this process (the audit
    // signer beside the master key) has logged in already, so has this session.
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(provider_error("cannot log in to the token (check the PIN)", e)),
    }
    Ok((context, session))
}

impl Pkcs11KeyProvider {
    /// Opens the token, logs in and finds (or creates) the master key.
    ///
    /// # Errors
    /// [`KeyError::Provider`] saying which step failed.
    pub fn open(config: &Pkcs11Config) -> Result<Self, KeyError> {
        let (context, session) = login(config)?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(config.key_label.as_bytes().to_vec()),
        ];
        let found = session.find_objects(&template).map_err(|e| provider_error("cannot search the token", e))?;
        let key = match found.as_slice() {
            [key] => *key,
            [] if config.create_if_missing => session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::ValueLen(32.into()),
                        Attribute::Label(config.key_label.as_bytes().to_vec()),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                    ],
                )
                .map_err(|e| provider_error("cannot create the master key in the token", e))?,
            [] => return Err(KeyError::Provider(format!("the token has no key labelled {:?}", config.key_label))),
            _ => return Err(KeyError::Provider(format!("the token has several keys labelled {:?}", config.key_label))),
        };
        Ok(Self {
            id: format!("pkcs11:{}/{}", config.token_label, config.key_label),
            session: Mutex::new(session),
            key,
            _context: context,
        })
    }
}

impl KeyProvider for Pkcs11KeyProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap_patient_key(&self, key: &PatientKey) -> Result<Vec<u8>, KeyError> {
        let mut iv = [0u8; 12];
        aws_lc_rs::rand::fill(&mut iv).map_err(|_| KeyError::Crypto("random number generator"))?;
        let session = self.session.lock().map_err(|_| KeyError::Provider("the token session is unusable".into()))?;
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, AAD, 128.into()).map_err(|e| provider_error("GCM parameters", e))?;
        let sealed = session
            .encrypt(&Mechanism::AesGcm(params), self.key, key.bytes())
            .map_err(|e| provider_error("the token could not wrap the key", e))?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap_patient_key(&self, wrapped: &[u8]) -> Result<PatientKey, KeyError> {
        if wrapped.len() != 12 + 32 + 16 {
            return Err(KeyError::Unwrap);
        }
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&wrapped[..12]);
        let session = self.session.lock().map_err(|_| KeyError::Provider("the token session is unusable".into()))?;
        let params = GcmParams::new(&mut iv, AAD, 128.into()).map_err(|e| provider_error("GCM parameters", e))?;
        let plain = zeroize::Zeroizing::new(
            session.decrypt(&Mechanism::AesGcm(params), self.key, &wrapped[12..]).map_err(|_| KeyError::Unwrap)?,
        );
        PatientKey::from_bytes(&plain)
    }
}

/// Signs the access log's checkpoints with an Ed25519 key pair held in a PKCS#11 token (the
/// private key never leaves it).
pub struct Pkcs11NoteSigner {
    name: String,
    public: Vec<u8>,
    session: Mutex<Session>,
    key: ObjectHandle,
    _context: Pkcs11,
}

impl std::fmt::Debug for Pkcs11NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11NoteSigner").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The curve name `SoftHSM2` and others accept for Ed25519 in `CKA_EC_PARAMS` (a `PrintableString`
/// "edwards25519").
const ED25519_PARAMS: &[u8] = &[0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9'];

impl Pkcs11NoteSigner {
    /// Finds (or creates) the Ed25519 key pair labelled `config.key_label` and signs as `name`.
    ///
    /// # Errors
    /// [`KeyError::Provider`] saying which step failed.
    pub fn open(config: &Pkcs11Config, name: &str) -> Result<Self, KeyError> {
        if !audit::note::valid_key_name(name) {
            return Err(KeyError::Provider("the log's name cannot contain spaces, plus signs or newlines".into()));
        }
        let (context, session) = login(config)?;
        let label = config.key_label.as_bytes().to_vec();
        let find = |class| {
            session
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::KeyType(KeyType::EC_EDWARDS),
                    Attribute::Label(label.clone()),
                ])
                .map_err(|e| provider_error("cannot search the token", e))
        };
        let (public, private) =
            match (find(ObjectClass::PUBLIC_KEY)?.as_slice(), find(ObjectClass::PRIVATE_KEY)?.as_slice()) {
                ([public], [private]) => (*public, *private),
                ([], []) if config.create_if_missing => session
                    .generate_key_pair(
                        &Mechanism::EccEdwardsKeyPairGen,
                        &[
                            Attribute::Token(true),
                            Attribute::Private(false),
                            Attribute::Verify(true),
                            Attribute::EcParams(ED25519_PARAMS.to_vec()),
                            Attribute::Label(label.clone()),
                        ],
                        &[
                            Attribute::Token(true),
                            Attribute::Sign(true),
                            Attribute::Sensitive(true),
                            Attribute::Extractable(false),
                            Attribute::Label(label.clone()),
                        ],
                    )
                    .map_err(|e| provider_error("cannot create the signing key in the token", e))?,
                ([], []) => {
                    return Err(KeyError::Provider(format!(
                        "the token has no Ed25519 key labelled {:?}",
                        config.key_label
                    )));
                }
                _ => {
                    return Err(KeyError::Provider(format!(
                        "the token's keys labelled {:?} are not one Ed25519 pair",
                        config.key_label
                    )));
                }
            };
        let point = session
            .get_attributes(public, &[cryptoki::object::AttributeType::EcPoint])
            .map_err(|e| provider_error("cannot read the public key", e))?
            .into_iter()
            .find_map(|a| if let Attribute::EcPoint(p) = a { Some(p) } else { None })
            .ok_or_else(|| KeyError::Provider("the token did not give the public key".into()))?;
        // CKA_EC_POINT is the 32-byte key, usually DER-wrapped as an OCTET STRING (04 20 …).
        let public_key = match point.as_slice() {
            [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.to_vec(),
            raw if raw.len() == 32 => raw.to_vec(),
            _ => return Err(KeyError::Provider("unexpected Ed25519 public key encoding".into())),
        };
        Ok(Self {
            name: name.to_owned(),
            public: public_key,
            session: Mutex::new(session),
            key: private,
            _context: context,
        })
    }
}

impl audit::note::NoteSigner for Pkcs11NoteSigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn vkey(&self) -> String {
        audit::note::ed25519_vkey(&self.name, &self.public)
    }

    fn sign(&self, body: &str) -> String {
        let signature = self.session.lock().ok().and_then(|s| {
            s.sign(
                &Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                    cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
                )),
                self.key,
                body.as_bytes(),
            )
            .ok()
        });
        match signature {
            Some(sig) => audit::note::ed25519_signed_note(&self.name, &self.public, body, &sig),
            None => {
                // An unsigned note is refused by every verifier; the failure is also logged by
                // the caller's job, which retries.
                format!("{body}\n")
            }
        }
    }
}
