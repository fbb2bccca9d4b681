//! Tenants and the AWS-style accounts their resources live in.

use std::collections::BTreeMap;

/// The tenant of development tokens and of the development access key.
pub const DEFAULT_TENANT: &str = "default";

/// The default tenant's account: the one AWS examples and local tools use.
pub const DEFAULT_ACCOUNT: &str = "000000000000";

/// Who made a request: set by authentication, read by every handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub user: String,
    /// The 12-digit account all of the tenant's resources belong to.
    pub account: String,
}

/// Maps tenants to accounts: configured ones as given, others derived from the name.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    configured: BTreeMap<String, String>,
}

impl Accounts {
    pub fn new(configured: BTreeMap<String, String>) -> Result<Self, String> {
        for (tenant, account) in &configured {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "auth.accounts.{tenant}: \"{account}\" is not a 12-digit account id"
                ));
            }
        }
        Ok(Self { configured })
    }

    /// The account of `tenant`. Unconfigured tenants get the first 12 decimal digits of the
    /// SHA-256 of their name, so every node maps a tenant to the same account.
    pub fn account_of(&self, tenant: &str) -> String {
        if let Some(a) = self.configured.get(tenant) {
            return a.clone();
        }
        if tenant == DEFAULT_TENANT {
            return DEFAULT_ACCOUNT.into();
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, tenant.as_bytes());
        let mut n = u128::from_be_bytes(digest.as_ref()[..16].try_into().expect("16 bytes"));
        let mut digits = String::with_capacity(12);
        for _ in 0..12 {
            digits.push(char::from(b'0' + (n % 10) as u8));
            n /= 10;
        }
        digits
    }

    pub fn principal(&self, tenant: &str, user: &str) -> Principal {
        Principal {
            tenant: tenant.to_string(),
            user: user.to_string(),
            account: self.account_of(tenant),
        }
    }
}

/// Tenant names: what a token's tenant claim may hold.
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tenant {tenant:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_stable_twelve_digits_and_distinct() {
        let a = Accounts::default();
        let acme = a.account_of("acme");
        assert_eq!(acme.len(), 12);
        assert!(acme.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(acme, a.account_of("acme"));
        assert_ne!(acme, a.account_of("globex"));
        assert_eq!(a.account_of(DEFAULT_TENANT), DEFAULT_ACCOUNT);
        let c = Accounts::new([("acme".to_string(), "123456789012".to_string())].into()).unwrap();
        assert_eq!(c.account_of("acme"), "123456789012");
        assert!(Accounts::new([("x".to_string(), "12".to_string())].into()).is_err());
        assert!(check_tenant("acme-1").is_ok());
        assert!(check_tenant("a b").is_err());
    }
}
