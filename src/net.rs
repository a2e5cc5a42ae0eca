//! Network-address rules shared by the layers that need them: the config loader in `app` and
//! the Client Portal adapter both decide whether a URL names this machine.
//!
//! It sits outside the hexagon's layers because it needs the `url` crate (which the domain does
//! not take) and because an adapter must not import the app. It imports nothing from the crate.

use std::net::IpAddr;

use url::{Host, Url};

/// True when `url` names this machine: the host `localhost` (any case), an address in
/// `127.0.0.0/8`, or `::1`. Any other host, or no host, is not loopback.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(address)) => IpAddr::V4(address).is_loopback(),
        Some(Host::Ipv6(address)) => IpAddr::V6(address).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(raw: &str) -> bool {
        is_loopback(&Url::parse(raw).unwrap())
    }

    #[test]
    fn this_machine_is_loopback() {
        assert!(loopback("https://localhost:5000/v1/api"));
        assert!(loopback("http://LocalHost/"));
        assert!(loopback("https://127.0.0.1:5000/"));
        assert!(loopback("https://127.8.9.10/"));
        assert!(loopback("https://[::1]:5000/"));
    }

    #[test]
    fn other_hosts_are_not() {
        assert!(!loopback("https://gateway.example:5000/v1/api"));
        assert!(!loopback("https://localhost.example/"));
        assert!(!loopback("https://10.0.0.1/"));
        assert!(!loopback("https://[::2]/"));
        assert!(!loopback("data:text/plain,localhost"));
    }
}
