//! Account identity in outputs: the one place raw account ids become references, masked
//! displays and aliases, and where selectors from callers become account ids again.
//!
//! A reference is `acct_` followed by 16 lower-case hex characters of
//! HMAC-SHA256(key, domain-separation prefix ‖ account id). It is stable for one key, opaque
//! without it, and cannot be mistaken for a raw id (ADR 0006).

use std::collections::BTreeMap;

use crate::app::config::AccountAlias;
use crate::app::error::GatewayError;
use crate::app::input::AccountSelector;
use crate::domain::account::Account;
use crate::domain::audit::chain::{ChainKey, to_hex};
use crate::domain::ids::AccountId;

/// Separates account references from every other use of the same key.
const REFERENCE_CONTEXT: &[u8] = b"ibkr-agent-gateway/account-ref/v1:";

/// Turns account ids into output identities and caller selectors back into ids.
#[derive(Clone)]
pub struct AccountDirectory {
    key: ChainKey,
    aliases: BTreeMap<AccountId, AccountAlias>,
}

impl std::fmt::Debug for AccountDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountDirectory")
            .field("aliases", &self.aliases.len())
            .finish_non_exhaustive()
    }
}

/// How an account is named in every output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIdentity {
    /// Opaque, stable reference.
    pub account_ref: String,
    /// Masked id, e.g. `DU•••4567`.
    pub display: String,
    /// Operator alias, when configured.
    pub alias: Option<String>,
}

impl AccountDirectory {
    /// A directory keyed by `key` with the operator's aliases.
    pub fn new(key: ChainKey, aliases: BTreeMap<AccountId, AccountAlias>) -> Self {
        Self { key, aliases }
    }

    /// The opaque reference of `id`.
    pub fn reference(&self, id: &AccountId) -> String {
        let mut message = Vec::with_capacity(REFERENCE_CONTEXT.len() + 16);
        message.extend_from_slice(REFERENCE_CONTEXT);
        message.extend_from_slice(id.expose().as_bytes());
        let digest = self.key.tag(&message);
        format!("acct_{}", to_hex(&digest[..8]))
    }

    /// The audit hash of `id`: HMAC-SHA256 of the raw id under the audit key, in hex. Audit
    /// rows and redacted metadata carry this instead of the id.
    pub fn audit_hash(&self, id: &str) -> String {
        to_hex(&self.key.tag(id.as_bytes()))
    }

    /// The identity of `id` for outputs.
    pub fn identity(&self, id: &AccountId) -> AccountIdentity {
        AccountIdentity {
            account_ref: self.reference(id),
            display: id.masked(),
            alias: self.aliases.get(id).map(|alias| alias.as_str().to_owned()),
        }
    }

    /// Finds the account a caller means by `selector`: a reference, an alias or a raw id.
    ///
    /// # Errors
    /// [`GatewayError::UnknownAccount`] when no visible account matches.
    pub fn select<'a>(
        &self,
        selector: &AccountSelector,
        accounts: &'a [Account],
    ) -> Result<&'a Account, GatewayError> {
        let selector = selector.as_str();
        accounts
            .iter()
            .find(|account| {
                let id = &account.id;
                id.expose() == selector
                    || self.reference(id) == selector
                    || self
                        .aliases
                        .get(id)
                        .is_some_and(|alias| alias.as_str() == selector)
            })
            .ok_or(GatewayError::UnknownAccount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::{AccountKind, AccountMode};
    use crate::domain::money::Currency;
    use crate::domain::secret::SecretBytes;

    fn directory(key: &[u8]) -> AccountDirectory {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            AccountId::parse("DU1234567").unwrap(),
            AccountAlias::parse("main").unwrap(),
        );
        AccountDirectory::new(
            ChainKey::new(&SecretBytes::new(key.to_vec())).unwrap(),
            aliases,
        )
    }

    fn accounts() -> Vec<Account> {
        ["DU1234567", "U7654321"]
            .into_iter()
            .map(|raw| Account {
                id: AccountId::parse(raw).unwrap(),
                mode: if raw.starts_with("DU") {
                    AccountMode::Paper
                } else {
                    AccountMode::Live
                },
                base_currency: Currency::parse("USD").unwrap(),
                kind: AccountKind::Individual,
            })
            .collect()
    }

    #[test]
    fn references_are_stable_per_key_and_opaque() {
        let id = AccountId::parse("DU1234567").unwrap();
        let first = directory(&[7; 32]).reference(&id);
        assert_eq!(first, directory(&[7; 32]).reference(&id));
        assert_ne!(first, directory(&[8; 32]).reference(&id));
        assert!(first.starts_with("acct_") && first.len() == 21);
        assert!(!first.contains("1234567"));
        let hash = directory(&[7; 32]).audit_hash(id.expose());
        assert_eq!(hash.len(), 64);
        assert!(
            !hash.starts_with(&first[5..]),
            "reference and audit hash use separate contexts"
        );
    }

    #[test]
    fn selectors_accept_reference_alias_and_raw_id() {
        let directory = directory(&[1; 32]);
        let accounts = accounts();
        let reference = directory.reference(&accounts[1].id);
        let select = |raw: &str| {
            directory
                .select(&AccountSelector::parse(raw).unwrap(), &accounts)
                .map(|a| a.id.clone())
        };
        assert_eq!(select(&reference).unwrap(), accounts[1].id);
        assert_eq!(select("main").unwrap(), accounts[0].id);
        assert_eq!(select("U7654321").unwrap(), accounts[1].id);
        assert!(matches!(
            select("DU0000000"),
            Err(GatewayError::UnknownAccount)
        ));
        assert!(AccountSelector::parse("").is_err());
    }

    #[test]
    fn identities_mask_and_alias() {
        let identity = directory(&[1; 32]).identity(&AccountId::parse("DU1234567").unwrap());
        assert_eq!(identity.display, "DU\u{2022}\u{2022}\u{2022}4567");
        assert_eq!(identity.alias.as_deref(), Some("main"));
    }
}
