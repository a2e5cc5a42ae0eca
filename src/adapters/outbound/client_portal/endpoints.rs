//! The Client Portal endpoints this adapter may call, and nothing else.
//!
//! Every request passes [`GatewayClient::call`](super::client::GatewayClient::call) or
//! [`GatewayClient::exchange`](super::client::GatewayClient::exchange), and both look the
//! request up here first: a method and path that are not listed are refused before anything is
//! sent. Each entry is an endpoint the Client Portal Web API documents; the test below keeps
//! the documented list separately and checks this one against it, so an invented endpoint
//! (REST news, REST depth, a transfers endpoint) cannot be added by accident.
//!
//! A read endpoint may be sent by `call`; a write endpoint (orders, replies, cancels) only by
//! `exchange`, whose outcome is never mapped away.

use super::client::HttpMethod;

/// Whether an endpoint reads or changes broker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Reads (including the session keep-alive and the brokerage-session pre-flight).
    Read,
    /// Creates, changes, confirms or cancels orders.
    Write,
}

/// One allowed endpoint: a method and a path template below `/v1/api`, where `*` stands for
/// one identifier segment (an account id, an order id, a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The HTTP method.
    pub(crate) method: HttpMethod,
    /// The path template, e.g. `/portfolio/*/positions/*`.
    pub(crate) template: &'static str,
    /// Read or write.
    pub(crate) usage: Use,
}

const fn read(method: HttpMethod, template: &'static str) -> Endpoint {
    Endpoint {
        method,
        template,
        usage: Use::Read,
    }
}

const fn write(method: HttpMethod, template: &'static str) -> Endpoint {
    Endpoint {
        method,
        template,
        usage: Use::Write,
    }
}

use HttpMethod::{Delete, Get, PostEmpty, PostJson};

/// Every endpoint the adapter may call.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    // Session.
    read(PostEmpty, "/tickle"),
    read(PostEmpty, "/iserver/auth/status"),
    // Accounts and portfolio.
    read(Get, "/iserver/accounts"),
    read(Get, "/portfolio/accounts"),
    read(Get, "/portfolio/*/meta"),
    read(Get, "/portfolio/*/summary"),
    read(Get, "/portfolio/*/ledger"),
    read(Get, "/portfolio/*/positions/*"),
    read(Get, "/iserver/account/pnl/partitioned"),
    // Contracts, schedules, options.
    read(Get, "/iserver/secdef/search"),
    read(Get, "/iserver/secdef/strikes"),
    read(Get, "/iserver/secdef/info"),
    read(Get, "/trsrv/secdef"),
    read(Get, "/trsrv/secdef/schedule"),
    read(Get, "/contract/trading-schedule"),
    // Market data (depth is the WebSocket's `sbd` topic; there is no REST depth).
    read(Get, "/iserver/marketdata/snapshot"),
    read(Get, "/iserver/marketdata/history"),
    read(Get, "/ws"),
    // Scanners.
    read(Get, "/iserver/scanner/params"),
    read(PostJson, "/iserver/scanner/run"),
    // Notifications (there is no REST news).
    read(Get, "/fyi/notifications"),
    // Currency.
    read(Get, "/iserver/exchangerate"),
    read(Get, "/iserver/currency/pairs"),
    // Portfolio analyst (transactions; there is no transfers endpoint).
    read(PostJson, "/pa/transactions"),
    // Orders: reads.
    read(Get, "/iserver/account/orders"),
    read(Get, "/iserver/account/trades"),
    read(Get, "/iserver/account/order/status/*"),
    // Orders: the what-if creates no order; it is sent as a write so its outcome is kept whole.
    write(PostJson, "/iserver/account/*/orders/whatif"),
    write(PostJson, "/iserver/account/*/orders"),
    write(PostJson, "/iserver/account/*/order/*"),
    write(Delete, "/iserver/account/*/order/*"),
    write(PostJson, "/iserver/reply/*"),
];

/// The listed endpoint that `method` on `segments` (the path below `/v1/api`, split) is, if any.
/// A `*` in a template matches exactly one segment; every other segment must be equal.
pub(crate) fn find<S: AsRef<str>>(method: HttpMethod, segments: &[S]) -> Option<&'static Endpoint> {
    ENDPOINTS
        .iter()
        .find(|endpoint| endpoint.method == method && matches_template(endpoint.template, segments))
}

fn matches_template<S: AsRef<str>>(template: &str, segments: &[S]) -> bool {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| *part == "*" || *part == segment.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented Client Portal Web API endpoints this product may use, as the reference
    /// lists them (method and path). Kept here, apart from [`ENDPOINTS`], on purpose: adding an
    /// endpoint to the adapter means finding it in the documentation and adding it here too.
    const DOCUMENTED: &[(&str, &str)] = &[
        ("POST", "/tickle"),
        ("POST", "/iserver/auth/status"),
        ("GET", "/iserver/accounts"),
        ("GET", "/portfolio/accounts"),
        ("GET", "/portfolio/subaccounts"),
        ("GET", "/portfolio/{accountId}/meta"),
        ("GET", "/portfolio/{accountId}/summary"),
        ("GET", "/portfolio/{accountId}/ledger"),
        ("GET", "/portfolio/{accountId}/positions/{pageId}"),
        ("GET", "/portfolio/{accountId}/position/{conid}"),
        ("GET", "/iserver/account/pnl/partitioned"),
        ("GET", "/iserver/secdef/search"),
        ("GET", "/iserver/secdef/strikes"),
        ("GET", "/iserver/secdef/info"),
        ("GET", "/iserver/contract/{conid}/info"),
        ("GET", "/trsrv/stocks"),
        ("GET", "/trsrv/secdef"),
        ("GET", "/trsrv/secdef/schedule"),
        ("GET", "/contract/trading-schedule"),
        ("POST", "/iserver/contract/rules"),
        ("GET", "/iserver/marketdata/snapshot"),
        ("GET", "/iserver/marketdata/history"),
        ("GET", "/iserver/marketdata/unsubscribeall"),
        ("GET", "/ws"),
        ("GET", "/iserver/scanner/params"),
        ("POST", "/iserver/scanner/run"),
        ("GET", "/fyi/notifications"),
        ("GET", "/fyi/unreadnumber"),
        ("GET", "/iserver/exchangerate"),
        ("GET", "/iserver/currency/pairs"),
        ("POST", "/pa/performance"),
        ("POST", "/pa/summary"),
        ("POST", "/pa/transactions"),
        ("GET", "/iserver/account/orders"),
        ("GET", "/iserver/account/order/status/{orderId}"),
        ("GET", "/iserver/account/trades"),
        ("POST", "/iserver/account/{accountId}/orders"),
        ("POST", "/iserver/account/{accountId}/orders/whatif"),
        ("POST", "/iserver/account/{accountId}/order/{orderId}"),
        ("DELETE", "/iserver/account/{accountId}/order/{orderId}"),
        ("POST", "/iserver/reply/{replyId}"),
    ];

    fn method_name(method: HttpMethod) -> &'static str {
        match method {
            Get => "GET",
            PostEmpty | PostJson => "POST",
            Delete => "DELETE",
        }
    }

    /// `{name}` placeholders written as the adapter's `*`.
    fn as_template(path: &str) -> String {
        path.split('/')
            .map(|part| if part.starts_with('{') { "*" } else { part })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn every_endpoint_the_adapter_can_call_is_documented() {
        let documented: Vec<(&str, String)> = DOCUMENTED
            .iter()
            .map(|(method, path)| (*method, as_template(path)))
            .collect();
        for endpoint in ENDPOINTS {
            let entry = (method_name(endpoint.method), endpoint.template.to_owned());
            assert!(
                documented.contains(&entry),
                "{} {} is not a documented Client Portal endpoint",
                entry.0,
                entry.1
            );
        }
    }

    #[test]
    fn endpoints_the_reference_says_do_not_exist_are_not_callable() {
        for (method, path) in [
            (Get, "/iserver/news"),
            (Get, "/iserver/marketdata/depth"),
            (Get, "/iserver/fundamentals"),
            (Get, "/iserver/account/transfers"),
            (Get, "/iserver/account/U1/transfers"),
            (Get, "/iserver/account/pnl"),
        ] {
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            assert!(find(method, &segments).is_none(), "{path}");
        }
    }

    #[test]
    fn templates_match_one_identifier_per_star_and_the_method() {
        assert!(find(Get, &["portfolio", "DU123", "positions", "0"]).is_some());
        assert!(find(Get, &["portfolio", "DU123", "positions"]).is_none());
        assert!(find(Get, &["portfolio", "DU123", "positions", "0", "x"]).is_none());
        assert!(find(PostJson, &["iserver", "reply", "abcdef"]).is_some());
        assert!(find(Get, &["iserver", "reply", "abcdef"]).is_none());
        assert_eq!(
            find(Delete, &["iserver", "account", "U1", "order", "7"]).map(|e| e.usage),
            Some(Use::Write)
        );
        assert_eq!(
            find(PostJson, &["iserver", "scanner", "run"]).map(|e| e.usage),
            Some(Use::Read)
        );
    }

    #[test]
    fn every_write_endpoint_is_an_order_endpoint() {
        for endpoint in ENDPOINTS.iter().filter(|e| e.usage == Use::Write) {
            assert!(
                endpoint.template.starts_with("/iserver/account/*/order")
                    || endpoint.template.starts_with("/iserver/reply/"),
                "{}",
                endpoint.template
            );
        }
    }
}
