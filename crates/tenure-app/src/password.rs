//! Staff passwords: argon2id hashes in PHC form.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// Hashes a password with argon2id and a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the stored `phc` hash.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Minimum length of a staff password.
pub const MIN_LEN: usize = 10;

/// Passwords anyone tries first, whatever their length.
const COMMON: &[&str] = &[
    "1234567890",
    "12345678910",
    "0123456789",
    "9876543210",
    "1111111111",
    "qwertyuiop",
    "password123",
    "password1234",
    "passwordpassword",
    "iloveyou123",
    "abcdefghij",
    "abc1234567",
    "qwerty12345",
    "1q2w3e4r5t",
    "letmein1234",
    "welcome123",
    "admin12345",
    "administrator",
    "changeme123",
    "tenure12345",
    "woaini1314",
    "5201314520",
];

/// Why a password would be refused for the staff member with `email`, if it would: it must
/// be long, not a well-known one, not one character repeated, and not the email's name.
pub fn weakness(password: &str, email: &str) -> Option<String> {
    let length = password.chars().count();
    if length < MIN_LEN {
        return Some(format!("must be at least {MIN_LEN} characters"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Some("is one of the passwords tried first; choose another".into());
    }
    let mut chars = lower.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Some("must not be one character repeated".into());
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if local.chars().count() >= 4 && lower.contains(&local) {
        return Some("must not contain your email address".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let Ok(a) = hash("correct horse battery") else {
            panic!("hash failed")
        };
        let Ok(b) = hash("correct horse battery") else {
            panic!("hash failed")
        };
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(weakness("short", "a@b.c").is_some());
        assert!(weakness("Password123", "a@b.c").is_some());
        assert!(weakness("aaaaaaaaaaaa", "a@b.c").is_some());
        assert!(weakness("mia.chen-2026!", "mia.chen@shop.example").is_some());
        assert!(weakness("a long enough password", "mia@shop.example").is_none());
        assert!(verify("correct horse battery", &a));
        assert!(!verify("wrong", &a));
    }
}
