//! Order side and order type as the Client Portal spells them: the one mapping every order
//! answer (the live-order list, trades, one order's status) reads with, and the spellings
//! every order body is written with.
//!
//! # Reading
//!
//! Spellings are matched ignoring case and surrounding blanks; in types, `_` and blanks are the
//! same (`STOP_LIMIT`, `Stop Limit`).
//!
//! | Wire | Read as |
//! |---|---|
//! | `BUY`, `B`, `BOT` | buy |
//! | `SELL`, `S`, `SLD` | sell |
//! | `X` | an option that expired ([`ReportedSide::Expired`]) |
//! | any other side | nothing: the answer is invalid |
//! | `LIMIT`, `LMT` | [`OrderType::Limit`] |
//! | `MARKET`, `MKT` | [`OrderType::Market`] |
//! | `STOP`, `STP` | [`OrderType::Stop`] |
//! | `STOP LIMIT`, `STP LMT` | [`OrderType::StopLimit`] |
//! | `TRAILING STOP`, `TRAIL` | [`OrderType::TrailingStop`] |
//! | any other type | [`OrderType::Other`] |
//!
//! The list and the status answers spell sides differently (`BUY`/`SELL` against `B`/`S`), and
//! IBKR's own tools show filled sides as `BOT`/`SLD`; all of them are read everywhere, so no
//! answer depends on which endpoint it came from.
//!
//! An unknown type is kept as `Other`, so one odd order never fails a whole list. A side is
//! different: there are two, and a third spelling would be a change in the wire format that
//! no reading can guess at, so it stays an invalid response.
//!
//! # The expired side
//!
//! IBKR reports an option position closed by expiry with the side `X`. It is neither a buy
//! nor a sell, so the domain's writable [`OrderSide`] has no place for it. The live-order list
//! carries a [`ReportedSide`] instead, which keeps the entry and shows its side as reported.
//! Everything that must write or compare with a writable side (one order's status, an order
//! found by its client order id, a fill) asks [`WireSide::order_side`], which has no answer for
//! `X`: such an entry is an invalid answer there, never a guessed buy or sell.
//!
//! # Writing
//!
//! Bodies carry `BUY`/`SELL` and `LMT`, `MKT`, `STP`, [`STOP_LIMIT`], `TRAIL`. `Other` is a
//! type the broker reported, never one this gateway sends.

use crate::domain::order::{OrderSide, OrderType, ReportedSide};

/// The stop-limit spelling sent as `orderType`. The reference lists two (§13): `STOP_LIMIT`
/// (the original API spec, IBKR's bracket article, the documented `orderType` values) and
/// `STP LMT` (one cURL example on the Order Types page, and TWS's own spelling). `STOP_LIMIT`
/// is the one the request schema documents, so it is the one sent; both are read back.
pub(crate) const STOP_LIMIT: &str = "STOP_LIMIT";

/// A side as an answer spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireSide {
    /// `BUY`, `B`, `BOT`.
    Buy,
    /// `SELL`, `S`, `SLD`.
    Sell,
    /// `X`: an option that expired.
    Expired,
}

impl WireSide {
    /// The side `raw` spells, or `None` for a spelling outside the table above.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "BUY" | "B" | "BOT" => Some(Self::Buy),
            "SELL" | "S" | "SLD" => Some(Self::Sell),
            "X" => Some(Self::Expired),
            _ => None,
        }
    }

    /// The side as reported, for the read model of a listed order.
    pub(crate) fn reported(self) -> ReportedSide {
        match self {
            Self::Buy => ReportedSide::Buy,
            Self::Sell => ReportedSide::Sell,
            Self::Expired => ReportedSide::Expired,
        }
    }

    /// The writable side, or `None` for an expired option.
    pub(crate) fn order_side(self) -> Option<OrderSide> {
        self.reported().order_side()
    }

    /// The spelling a request body carries.
    pub(crate) fn write(side: OrderSide) -> &'static str {
        match side {
            OrderSide::Buy => "BUY",
            OrderSide::Sell => "SELL",
        }
    }
}

/// The order type `raw` spells; a type outside the table above is [`OrderType::Other`].
pub(crate) fn read_order_type(raw: &str) -> OrderType {
    let normalized: String = raw
        .trim()
        .to_ascii_uppercase()
        .chars()
        .map(|c| if c == '_' { ' ' } else { c })
        .collect();
    // Runs of blanks count as one (`STOP  LIMIT`).
    let normalized = normalized.split_whitespace().collect::<Vec<_>>().join(" ");
    match normalized.as_str() {
        "LIMIT" | "LMT" => OrderType::Limit,
        "MARKET" | "MKT" => OrderType::Market,
        "STOP" | "STP" => OrderType::Stop,
        "STOP LIMIT" | "STP LMT" => OrderType::StopLimit,
        "TRAILING STOP" | "TRAIL" => OrderType::TrailingStop,
        _ => OrderType::Other,
    }
}

/// The spelling a request body carries for `order_type`; `None` for [`OrderType::Other`],
/// which is never sent.
pub(crate) fn write_order_type(order_type: OrderType) -> Option<&'static str> {
    match order_type {
        OrderType::Limit => Some("LMT"),
        OrderType::Market => Some("MKT"),
        OrderType::Stop => Some("STP"),
        OrderType::StopLimit => Some(STOP_LIMIT),
        OrderType::TrailingStop => Some("TRAIL"),
        OrderType::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_side_spelling_is_read_ignoring_case() {
        for raw in ["BUY", "buy", " B ", "b", "BOT", "bot", "Bot"] {
            assert_eq!(WireSide::parse(raw), Some(WireSide::Buy), "{raw}");
        }
        for raw in ["SELL", "Sell", "S", "s", "SLD", "sld"] {
            assert_eq!(WireSide::parse(raw), Some(WireSide::Sell), "{raw}");
        }
        assert_eq!(WireSide::parse("x"), Some(WireSide::Expired));
        for raw in ["", "SHORT", "Q", "BUYSELL"] {
            assert_eq!(WireSide::parse(raw), None, "{raw}");
        }
    }

    #[test]
    fn an_expired_side_is_reported_but_never_writable() {
        assert_eq!(WireSide::Expired.reported(), ReportedSide::Expired);
        assert_eq!(WireSide::Expired.order_side(), None);
        assert_eq!(WireSide::Buy.order_side(), Some(OrderSide::Buy));
        assert_eq!(WireSide::Sell.reported(), ReportedSide::Sell);
    }

    #[test]
    fn every_documented_type_spelling_is_read_and_the_rest_is_other() {
        for (raw, expected) in [
            ("LIMIT", OrderType::Limit),
            ("Limit", OrderType::Limit),
            ("lmt", OrderType::Limit),
            ("MARKET", OrderType::Market),
            ("MKT", OrderType::Market),
            ("Stop", OrderType::Stop),
            ("STP", OrderType::Stop),
            ("STOP_LIMIT", OrderType::StopLimit),
            ("Stop Limit", OrderType::StopLimit),
            ("STP LMT", OrderType::StopLimit),
            ("stop  limit", OrderType::StopLimit),
            ("TRAIL", OrderType::TrailingStop),
            ("Trailing Stop", OrderType::TrailingStop),
            ("TRAILING_STOP", OrderType::TrailingStop),
            ("MIDPRICE", OrderType::Other),
            ("REL", OrderType::Other),
            ("", OrderType::Other),
        ] {
            assert_eq!(read_order_type(raw), expected, "{raw}");
        }
    }

    #[test]
    fn what_is_written_reads_back_as_itself() {
        for side in OrderSide::ALL {
            let read = WireSide::parse(WireSide::write(*side)).and_then(WireSide::order_side);
            assert_eq!(read, Some(*side));
        }
        for order_type in OrderType::ALL {
            match write_order_type(*order_type) {
                Some(code) => assert_eq!(read_order_type(code), *order_type),
                None => assert_eq!(*order_type, OrderType::Other),
            }
        }
    }
}
