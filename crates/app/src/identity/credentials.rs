//! Random tokens, their hashes, CSRF tokens and password hashing.

use crate::AppError;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use aws_lc_rs::{digest, hmac, rand};

/// `N` bytes from the operating system's CSPRNG. Fails closed: if the generator ever failed,
/// no token, key, code or secret is made from whatever the buffer held (review #24).
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    filled(|b| rand::fill(b).map_err(|_| ()))
}

/// `N` bytes from `fill`, or an error if it fails (never the buffer as it was).
fn filled<const N: usize>(fill: impl FnOnce(&mut [u8]) -> Result<(), ()>) -> Result<[u8; N], AppError> {
    let mut b = [0u8; N];
    fill(&mut b).map_err(|()| {
        tracing::error!("system random number generator failed");
        AppError::Internal("the system's random number generator failed".into())
    })?;
    Ok(b)
}

/// A 256-bit bearer token as 64 hex characters.
pub(crate) fn new_token() -> Result<String, AppError> {
    Ok(hex::encode(random_bytes::<32>()?))
}

/// What is stored instead of a token.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

/// A tidy token: only lower-case hex of the right length is ever looked up.
pub(crate) fn plausible_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The letters of an emailed code: Crockford's base 32 (no I, L, O or U, so nothing is
/// mistaken for another character when read off a phone and typed).
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A single-use code for an email (activation, invitation, password reset, email change,
/// second-factor set-up): 80 random bits as 16 characters in four groups, `ABCD-EFGH-JKMN-PQRS`.
/// An email carries the code, never a link: the person types it into the page they reached
/// by typing the portal's address themselves, so an email that asks them to click is phishing.
pub(crate) fn new_code() -> Result<String, AppError> {
    let bytes = random_bytes::<10>()?;
    let mut bits = 0u32;
    let mut held = 0;
    let mut out = String::with_capacity(19);
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        held += 8;
        while held >= 5 {
            held -= 5;
            if out.len() % 5 == 4 {
                out.push('-');
            }
            out.push(char::from(CODE_ALPHABET[((bits >> held) & 31) as usize]));
        }
    }
    Ok(out)
}

/// What is stored of an emailed code, from the code as typed: spaces and dashes are ignored,
/// case does not matter, and O, I and L are read as 0, 1 and 1. `None` for anything that
/// cannot be a code (it is never looked up).
pub(crate) fn code_hash(typed: &str) -> Option<Vec<u8>> {
    if typed.len() > 64 {
        return None;
    }
    let mut code = String::with_capacity(16);
    for c in typed.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CODE_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        code.push(c);
    }
    (code.len() == 16).then(|| token_hash(&format!("code:{code}")))
}

/// The CSRF token bound to a browser's cookie (signed double-submit).
pub(crate) fn csrf_token(key: &hmac::Key, binding: &str) -> String {
    hex::encode(hmac::sign(key, format!("csrf:{binding}").as_bytes()).as_ref())
}

/// Checks a submitted CSRF token in constant time.
pub(crate) fn csrf_ok(key: &hmac::Key, binding: &str, submitted: &str) -> bool {
    let Ok(tag) = hex::decode(submitted) else { return false };
    !binding.is_empty() && hmac::verify(key, format!("csrf:{binding}").as_bytes(), &tag).is_ok()
}

/// OWASP's Argon2id parameters: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    // These constant parameters are within Argon2's limits, so `new` cannot fail; fall back to
    // the library default (also Argon2id, stronger) rather than panic.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// At most this many Argon2 computations (19 MiB each) run at once; the rest queue, so a flood
/// of sign-ins cannot exhaust memory or the blocking thread pool.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

/// Hashes a password on a blocking thread.
pub(crate) async fn hash_password(password: String) -> Result<String, String> {
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        PasswordHasher::<PasswordHash>::hash_password(&argon2(), password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// How many Argon2 password checks this process has computed (also `/metrics`'
/// `tiaki_password_checks_total`): the sign-in load, and the proof that an unknown email costs
/// a check like a known one.
static PASSWORD_CHECKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many Argon2 password checks this process has computed so far.
#[must_use]
pub fn password_checks() -> u64 {
    PASSWORD_CHECKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Verifies a password against a stored hash on a blocking thread. A missing or unreadable
/// hash is checked against a dummy so that the time taken does not reveal it.
pub(crate) async fn verify_password(password: String, stored: Option<String>) -> bool {
    let Ok(_permit) = HASHING.acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        let dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0zDHjy5Xz4CrX1pWnfbdeDN0+bC8eFU3p/wX6c6dJVg";
        let (hash, real) = match &stored {
            Some(h) => (h.as_str(), true),
            None => (dummy, false),
        };
        let hash = if PasswordHash::new(hash).is_ok() { hash } else { dummy };
        let ok = argon2().verify_password(password.as_bytes(), hash).is_ok();
        PASSWORD_CHECKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("tiaki_password_checks_total").increment(1);
        ok && real
    })
    .await
    .unwrap_or(false)
}

/// The password rules (NIST SP 800-63B): at least 8 characters (15 recommended), at most 256,
/// no composition rules, and nothing common or easily guessed (zxcvbn's dictionaries, with the
/// person's own name and email as extra words).
pub(crate) fn password_problem(password: &str, user_inputs: &[&str]) -> Option<String> {
    let n = password.chars().count();
    if n < 8 {
        return Some("Use at least 8 characters; a phrase of 15 or more is better.".into());
    }
    if n > 256 {
        return Some("Use at most 256 characters.".into());
    }
    let words: Vec<&str> = user_inputs.iter().flat_map(|s| s.split(['@', '.', ' '])).filter(|s| s.len() > 2).collect();
    let entropy = zxcvbn::zxcvbn(password, &words);
    if (entropy.score() as u8) < 3 {
        return Some(
            "This password is too common or too easy to guess. Try a phrase of several unrelated words.".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_failing_random_number_generator_makes_nothing() {
        // Review #24: a failed draw used to hand back zeros, a usable token.
        let failed = filled::<32>(|b| {
            b.fill(0);
            Err(())
        });
        assert!(matches!(failed, Err(AppError::Internal(_))));
        let ok = filled::<4>(|b| {
            b.copy_from_slice(&[1, 2, 3, 4]);
            Ok(())
        });
        assert_eq!(ok.unwrap(), [1, 2, 3, 4]);
        assert_ne!(random_bytes::<32>().unwrap(), [0; 32]);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(plausible_token(&a));
        assert!(!plausible_token(&a.to_uppercase()));
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn codes_are_random_grouped_and_forgiving_of_how_they_are_typed() {
        let a = new_code().unwrap();
        assert_eq!(a.len(), 19, "{a}");
        assert_eq!(a.matches('-').count(), 3, "{a}");
        assert!(a.split('-').all(|g| g.len() == 4), "{a}");
        assert_ne!(a, new_code().unwrap());
        let h = code_hash(&a).unwrap();
        assert_eq!(code_hash(&a.to_lowercase()), Some(h.clone()));
        assert_eq!(code_hash(&a.replace('-', " ")), Some(h.clone()));
        assert_eq!(code_hash(&format!("  {}  ", a.replace('-', ""))), Some(h.clone()));
        // Read off a screen: O for zero, I or L for one.
        assert_eq!(code_hash("0000-1111-ABCD-EFGH"), code_hash("OoOo-IiLl-abcd-efgh"));
        for bad in [
            "",
            "ABCD-EFGH-JKMN",
            "ABCD-EFGH-JKMN-PQRSX",
            "ABCD-EFGH-JKMN-PQRU",
            "ABCD-EFGH-JKMN-PQR!",
            "ÄBCD-EFGH-JKMN-PQRS",
        ] {
            assert_eq!(code_hash(bad), None, "{bad}");
        }
        assert_ne!(code_hash(&a), Some(token_hash(&a)), "a code's hash is not a token's");
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_cookie() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let t = csrf_token(&key, "cookie-a");
        assert!(csrf_ok(&key, "cookie-a", &t));
        assert!(!csrf_ok(&key, "cookie-b", &t));
        assert!(!csrf_ok(&key, "", &csrf_token(&key, "")));
        assert!(!csrf_ok(&key, "cookie-a", "zz"));
    }

    #[test]
    fn password_rules() {
        assert!(password_problem("short", &[]).is_some());
        assert!(password_problem("password123", &[]).is_some());
        assert!(password_problem("arohasmith1", &["aroha.smith@example.nz"]).is_some());
        assert!(password_problem("kettle orbit marram tide", &[]).is_none());
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_hash() {
        let h = hash_password("kettle orbit marram tide".into()).await.unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("kettle orbit marram tide".into(), Some(h.clone())).await);
        assert!(!verify_password("kettle orbit marram tidE".into(), Some(h)).await);
        assert!(!verify_password("anything".into(), None).await);
        assert!(!verify_password("anything".into(), Some("garbage".into())).await);
    }
}
