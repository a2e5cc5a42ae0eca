//! Fixtures shared by the contract tests, so each test module states only what it asserts:
//! the Client Portal gateway on wiremock and the adapters, writers and gateways built on it
//! ([`client_portal`]), and the binary run against a configuration file ([`cli`]).

pub(crate) mod cli;
pub(crate) mod client_portal;

/// Declares one `#[tokio::test]` per expectation of a shared contract suite, for one adapter:
/// `contract_suite!(adapter => first, second)` becomes `mod adapter` with a test `first` that
/// builds the fixture with `adapter().await` and runs `first(&fixture).await` on it, and so on.
macro_rules! contract_suite {
    ($adapter:ident => $($expectation:ident),+ $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test]
                async fn $expectation() {
                    let fixture = super::$adapter().await;
                    super::$expectation(&fixture).await;
                }
            )+
        }
    };
}

pub(crate) use contract_suite;
