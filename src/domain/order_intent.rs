//! Order intents: what an agent proposes to place, checked for shape, and the canonical
//! encoding and digest that an approval binds to.
//!
//! The canonical encoding is one line per leg, `key=value` pairs separated by `;`, decimals
//! normalized (so `205.0` and `205.00` encode alike). It is also the stored form of a preview's
//! legs, so [`OrderIntent::from_canonical`] parses exactly what [`OrderIntent::canonical`]
//! writes. The digest is HMAC-SHA256 over the encoded legs joined by `\n`, keyed with a
//! [`DigestKey`] derived from the deployment's audit key: someone who can edit the workflow
//! database but does not hold the key cannot make a rewritten order match a stored digest.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rust_decimal::Decimal;
use sha2::Sha256;
use thiserror::Error;

use super::audit::chain::ChainKey;
use super::ids::{AccountId, ContractId};
use super::money::{Price, Quantity, parse_exact_decimal};
use super::order::{OrderSide, OrderType, TimeInForce};

/// The encoding's version tag; a change of format changes every digest, so it is versioned.
const ENCODING_TAG: &str = "order/v1";

/// How far a trailing stop trails the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrailingOffset {
    /// A fixed price distance.
    Amount(Price),
    /// A percentage of the price (e.g. `1.5` for 1.5 %).
    Percent(Decimal),
}

/// Why an intent is malformed. Messages name the field, never an account id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IntentError {
    /// The quantity is zero or negative.
    #[error("quantity: must be greater than zero")]
    NonPositiveQuantity,
    /// The order type cannot be placed through the gateway.
    #[error("order_type: {0} cannot be placed; use LMT, MKT, STP, STP LMT or TRAIL")]
    UnsupportedOrderType(OrderType),
    /// The time in force cannot be placed through the gateway.
    #[error("time_in_force: use DAY, GTC, IOC or OPG")]
    UnsupportedTimeInForce,
    /// A price the order type needs is missing.
    #[error("{field}: required for order type {order_type}")]
    MissingPrice {
        /// The missing field.
        field: &'static str,
        /// The order type.
        order_type: OrderType,
    },
    /// A price the order type does not use was given.
    #[error("{field}: not used by order type {order_type}")]
    UnexpectedPrice {
        /// The extra field.
        field: &'static str,
        /// The order type.
        order_type: OrderType,
    },
    /// A price or offset is zero or negative.
    #[error("{field}: must be greater than zero")]
    NonPositivePrice {
        /// The field.
        field: &'static str,
    },
    /// A stored encoding could not be parsed.
    #[error("the stored order encoding is malformed ({0})")]
    MalformedEncoding(&'static str),
}

/// One order as proposed, validated for shape: a positive quantity and exactly the prices its
/// type needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderIntent {
    account_id: AccountId,
    contract_id: ContractId,
    side: OrderSide,
    quantity: Quantity,
    order_type: OrderType,
    limit_price: Option<Price>,
    stop_price: Option<Price>,
    trailing: Option<TrailingOffset>,
    time_in_force: TimeInForce,
}

/// The parts of an intent, for construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentParts {
    /// The account.
    pub account_id: AccountId,
    /// The contract.
    pub contract_id: ContractId,
    /// Buy or sell.
    pub side: OrderSide,
    /// Units, greater than zero.
    pub quantity: Quantity,
    /// LMT, MKT, STP, STP LMT or TRAIL.
    pub order_type: OrderType,
    /// Limit price (LMT, STP LMT).
    pub limit_price: Option<Price>,
    /// Stop trigger (STP, STP LMT; optional initial stop for TRAIL).
    pub stop_price: Option<Price>,
    /// Trailing offset (TRAIL).
    pub trailing: Option<TrailingOffset>,
    /// Time in force.
    pub time_in_force: TimeInForce,
}

fn positive(field: &'static str, price: Option<Price>) -> Result<(), IntentError> {
    match price {
        Some(price) if price.value() <= Decimal::ZERO => {
            Err(IntentError::NonPositivePrice { field })
        }
        _ => Ok(()),
    }
}

impl OrderIntent {
    /// Checks the parts and builds the intent.
    ///
    /// # Errors
    /// [`IntentError`] naming the first field that does not fit the order type.
    pub fn new(parts: IntentParts) -> Result<Self, IntentError> {
        if parts.quantity.value() <= Decimal::ZERO {
            return Err(IntentError::NonPositiveQuantity);
        }
        if parts.time_in_force == TimeInForce::Other {
            return Err(IntentError::UnsupportedTimeInForce);
        }
        positive("limit_price", parts.limit_price)?;
        positive("stop_price", parts.stop_price)?;
        match parts.trailing {
            Some(TrailingOffset::Amount(amount)) => positive("trailing_amount", Some(amount))?,
            Some(TrailingOffset::Percent(percent)) if percent <= Decimal::ZERO => {
                return Err(IntentError::NonPositivePrice {
                    field: "trailing_percent",
                });
            }
            _ => {}
        }
        let order_type = parts.order_type;
        let need = |field: &'static str, present: bool, wanted: bool| match (present, wanted) {
            (false, true) => Err(IntentError::MissingPrice { field, order_type }),
            (true, false) => Err(IntentError::UnexpectedPrice { field, order_type }),
            _ => Ok(()),
        };
        let (limit, stop, trail) = (
            parts.limit_price.is_some(),
            parts.stop_price.is_some(),
            parts.trailing.is_some(),
        );
        match order_type {
            OrderType::Limit => {
                need("limit_price", limit, true)?;
                need("stop_price", stop, false)?;
                need("trailing", trail, false)?;
            }
            OrderType::Market => {
                need("limit_price", limit, false)?;
                need("stop_price", stop, false)?;
                need("trailing", trail, false)?;
            }
            OrderType::Stop => {
                need("limit_price", limit, false)?;
                need("stop_price", stop, true)?;
                need("trailing", trail, false)?;
            }
            OrderType::StopLimit => {
                need("limit_price", limit, true)?;
                need("stop_price", stop, true)?;
                need("trailing", trail, false)?;
            }
            OrderType::TrailingStop => {
                need("limit_price", limit, false)?;
                need("trailing", trail, true)?;
            }
            OrderType::Other => return Err(IntentError::UnsupportedOrderType(order_type)),
        }
        Ok(Self {
            account_id: parts.account_id,
            contract_id: parts.contract_id,
            side: parts.side,
            quantity: parts.quantity,
            order_type,
            limit_price: parts.limit_price,
            stop_price: parts.stop_price,
            trailing: parts.trailing,
            time_in_force: parts.time_in_force,
        })
    }

    /// The parts, for building a changed copy.
    pub fn parts(&self) -> IntentParts {
        IntentParts {
            account_id: self.account_id.clone(),
            contract_id: self.contract_id,
            side: self.side,
            quantity: self.quantity,
            order_type: self.order_type,
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            trailing: self.trailing,
            time_in_force: self.time_in_force,
        }
    }

    /// The account.
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }

    /// The contract.
    pub fn contract_id(&self) -> ContractId {
        self.contract_id
    }

    /// Buy or sell.
    pub fn side(&self) -> OrderSide {
        self.side
    }

    /// Units.
    pub fn quantity(&self) -> Quantity {
        self.quantity
    }

    /// The order type.
    pub fn order_type(&self) -> OrderType {
        self.order_type
    }

    /// The limit price.
    pub fn limit_price(&self) -> Option<Price> {
        self.limit_price
    }

    /// The stop price.
    pub fn stop_price(&self) -> Option<Price> {
        self.stop_price
    }

    /// The trailing offset.
    pub fn trailing(&self) -> Option<TrailingOffset> {
        self.trailing
    }

    /// The time in force.
    pub fn time_in_force(&self) -> TimeInForce {
        self.time_in_force
    }

    /// The price the order commits to, if its type names one: the limit, else the stop.
    pub fn committed_price(&self) -> Option<Price> {
        self.limit_price.or(self.stop_price)
    }

    /// The canonical one-line encoding (see the module docs).
    pub fn canonical(&self) -> String {
        let decimal = |value: Decimal| value.normalize().to_string();
        let price = |price: Option<Price>| price.map(|p| decimal(p.value())).unwrap_or_default();
        let trail = match self.trailing {
            None => String::new(),
            Some(TrailingOffset::Amount(amount)) => format!("amt:{}", decimal(amount.value())),
            Some(TrailingOffset::Percent(percent)) => format!("pct:{}", decimal(percent)),
        };
        format!(
            "{ENCODING_TAG};account={};contract={};side={};quantity={};type={};limit={};stop={};trail={trail};tif={}",
            self.account_id.expose(),
            self.contract_id,
            self.side.code(),
            decimal(self.quantity.value()),
            self.order_type.code(),
            price(self.limit_price),
            price(self.stop_price),
            self.time_in_force.code(),
        )
    }

    /// Parses what [`OrderIntent::canonical`] wrote, re-checking the intent.
    ///
    /// # Errors
    /// [`IntentError::MalformedEncoding`] for text in another shape, or the shape check's error.
    pub fn from_canonical(text: &str) -> Result<Self, IntentError> {
        let malformed = IntentError::MalformedEncoding;
        let mut fields = text.split(';');
        if fields.next() != Some(ENCODING_TAG) {
            return Err(malformed("unknown version"));
        }
        let mut take = |key: &'static str| -> Result<&str, IntentError> {
            fields
                .next()
                .and_then(|field| field.strip_prefix(key))
                .and_then(|rest| rest.strip_prefix('='))
                .ok_or(malformed(key))
        };
        let account = take("account")?;
        let contract = take("contract")?;
        let side = take("side")?;
        let quantity = take("quantity")?;
        let order_type = take("type")?;
        let limit = take("limit")?;
        let stop = take("stop")?;
        let trail = take("trail")?;
        let tif = take("tif")?;
        if fields.next().is_some() {
            return Err(malformed("trailing fields"));
        }
        let price = |key: &'static str, raw: &str| -> Result<Option<Price>, IntentError> {
            if raw.is_empty() {
                Ok(None)
            } else {
                Price::parse(raw).map(Some).map_err(|_| malformed(key))
            }
        };
        let trailing = match trail.split_once(':') {
            None if trail.is_empty() => None,
            Some(("amt", value)) => Some(TrailingOffset::Amount(
                Price::parse(value).map_err(|_| malformed("trail"))?,
            )),
            Some(("pct", value)) => Some(TrailingOffset::Percent(
                parse_exact_decimal(value).map_err(|_| malformed("trail"))?,
            )),
            _ => return Err(malformed("trail")),
        };
        Self::new(IntentParts {
            account_id: AccountId::parse(account).map_err(|_| malformed("account"))?,
            contract_id: ContractId::parse(contract).map_err(|_| malformed("contract"))?,
            side: OrderSide::parse(side).map_err(|_| malformed("side"))?,
            quantity: Quantity::parse(quantity).map_err(|_| malformed("quantity"))?,
            order_type: OrderType::parse(order_type).map_err(|_| malformed("type"))?,
            limit_price: price("limit", limit)?,
            stop_price: price("stop", stop)?,
            trailing,
            time_in_force: TimeInForce::parse(tif).map_err(|_| malformed("tif"))?,
        })
    }
}

/// The key order digests are computed with: a sub-key of the deployment's audit key, derived
/// as `HMAC(audit key, DIGEST_KEY_LABEL)`, so it never equals the chain key itself.
#[derive(Clone)]
pub struct DigestKey {
    keyed: Hmac<Sha256>,
}

/// The label the digest sub-key is derived under; a new label is a new key, so it is versioned.
pub const DIGEST_KEY_LABEL: &[u8] = b"ibkr-agent-gateway order-digest v2";

impl fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigestKey(<redacted>)")
    }
}

impl DigestKey {
    /// The digest key of the deployment whose audit key is `chain`.
    pub fn derive(chain: &ChainKey) -> Self {
        let sub_key = chain.tag(DIGEST_KEY_LABEL);
        // HMAC pads a key shorter than its block with zeros, so a zero-padded block is the
        // same key; the fixed-size constructor cannot fail.
        let mut block = hmac::digest::Key::<Hmac<Sha256>>::default();
        block[..sub_key.len()].copy_from_slice(&sub_key);
        Self {
            keyed: <Hmac<Sha256> as KeyInit>::new(&block),
        }
    }
}

/// HMAC-SHA256 (under a [`DigestKey`]) over the canonical encoding of an order or an order
/// group.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderDigest([u8; 32]);

impl OrderDigest {
    /// The digest of `legs`, in order, under `key`.
    pub fn keyed(key: &DigestKey, legs: &[OrderIntent]) -> Self {
        let mut mac = key.keyed.clone();
        for (index, leg) in legs.iter().enumerate() {
            if index > 0 {
                mac.update(b"\n");
            }
            mac.update(leg.canonical().as_bytes());
        }
        Self(mac.finalize().into_bytes().into())
    }

    /// The digest of `context` and then `legs`, in order, under `key`. The context is
    /// separated from the legs by a NUL byte, which no canonical leg contains, so no choice of
    /// legs gives the same input as a digest with another context, or with none.
    pub fn keyed_in_context(key: &DigestKey, context: &str, legs: &[OrderIntent]) -> Self {
        let mut mac = key.keyed.clone();
        mac.update(context.as_bytes());
        mac.update(b"\0");
        for (index, leg) in legs.iter().enumerate() {
            if index > 0 {
                mac.update(b"\n");
            }
            mac.update(leg.canonical().as_bytes());
        }
        Self(mac.finalize().into_bytes().into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        super::audit::chain::to_hex(&self.0)
    }

    /// Parses 64 lower-case hex digits.
    ///
    /// # Errors
    /// [`IntentError::MalformedEncoding`] for anything else.
    pub fn from_hex(raw: &str) -> Result<Self, IntentError> {
        let malformed = IntentError::MalformedEncoding("digest");
        if raw.len() != 64
            || !raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(malformed);
        }
        let mut bytes = [0_u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&raw[index * 2..index * 2 + 2], 16)
                .map_err(|_| malformed.clone())?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Debug for OrderDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderDigest({})", self.to_hex())
    }
}

impl fmt::Display for OrderDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Why a bracket's legs do not make sense together.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BracketError {
    /// The entry must be a limit order.
    #[error("entry: a bracket's entry must be a limit order")]
    EntryNotLimit,
    /// The prices are not ordered stop < entry < take-profit (buy) or the reverse (sell).
    #[error(
        "prices: for a {side} bracket the prices must be ordered {order}",
        order = if *side == OrderSide::Buy { "stop_loss < entry < take_profit" } else { "take_profit < entry < stop_loss" }
    )]
    PricesOutOfOrder {
        /// The entry's side.
        side: OrderSide,
    },
    /// A leg failed its own shape check.
    #[error(transparent)]
    Leg(#[from] IntentError),
}

/// A bracket: a limit entry, a take-profit limit and a stop-loss stop on the other side, for the
/// same quantity. The legs are placed together so the broker sees one bracket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BracketIntent {
    legs: [OrderIntent; 3],
}

impl BracketIntent {
    /// Builds the three legs from a limit entry and the two exit prices, checking their order.
    ///
    /// # Errors
    /// [`BracketError`] when the entry is not a limit order or the prices are out of order.
    pub fn new(
        entry: OrderIntent,
        take_profit: Price,
        stop_loss: Price,
    ) -> Result<Self, BracketError> {
        let Some(entry_price) = entry
            .limit_price()
            .filter(|_| entry.order_type() == OrderType::Limit)
        else {
            return Err(BracketError::EntryNotLimit);
        };
        let ordered = match entry.side() {
            OrderSide::Buy => stop_loss < entry_price && entry_price < take_profit,
            OrderSide::Sell => take_profit < entry_price && entry_price < stop_loss,
        };
        if !ordered {
            return Err(BracketError::PricesOutOfOrder { side: entry.side() });
        }
        let exit_side = match entry.side() {
            OrderSide::Buy => OrderSide::Sell,
            OrderSide::Sell => OrderSide::Buy,
        };
        let base = entry.parts();
        let take_profit_leg = OrderIntent::new(IntentParts {
            side: exit_side,
            order_type: OrderType::Limit,
            limit_price: Some(take_profit),
            stop_price: None,
            trailing: None,
            ..base.clone()
        })?;
        let stop_loss_leg = OrderIntent::new(IntentParts {
            side: exit_side,
            order_type: OrderType::Stop,
            limit_price: None,
            stop_price: Some(stop_loss),
            trailing: None,
            ..base
        })?;
        Ok(Self {
            legs: [entry, take_profit_leg, stop_loss_leg],
        })
    }

    /// Re-forms a bracket from stored legs (entry, take-profit, stop-loss), re-checking it.
    ///
    /// # Errors
    /// [`BracketError`] when the legs are not a well-formed bracket.
    pub fn from_legs(legs: &[OrderIntent]) -> Result<Self, BracketError> {
        let [entry, take_profit, stop_loss] = legs else {
            return Err(BracketError::Leg(IntentError::MalformedEncoding(
                "bracket legs",
            )));
        };
        let (Some(tp), Some(sl)) = (take_profit.limit_price(), stop_loss.stop_price()) else {
            return Err(BracketError::Leg(IntentError::MalformedEncoding(
                "bracket legs",
            )));
        };
        let rebuilt = Self::new(entry.clone(), tp, sl)?;
        if rebuilt.legs() != legs {
            return Err(BracketError::Leg(IntentError::MalformedEncoding(
                "bracket legs",
            )));
        }
        Ok(rebuilt)
    }

    /// Entry, take-profit, stop-loss.
    pub fn legs(&self) -> &[OrderIntent; 3] {
        &self.legs
    }
}

/// Why a live writer must not send `legs`, or `None` when it may: a market order, or any
/// order without a limit price, is refused, with one exception. A bracket's third leg, its
/// stop-loss, is a plain stop: it only ever closes the position the entry opened, it is
/// triggered at its own stop price (checked against the entry when the bracket was built), and
/// a limit on it could leave the position unprotected in a fast market. So `bracket` exempts
/// that one leg; its entry and take-profit still need their limit prices. This is the second
/// lock behind the gateway's live gates, shared by every live writer.
pub fn live_writer_refusal(legs: &[OrderIntent], bracket: bool) -> Option<String> {
    let several = legs.len() > 1;
    legs.iter().enumerate().find_map(|(index, leg)| {
        let which = if several {
            format!("leg {} of {}", index + 1, legs.len())
        } else {
            "the order".to_owned()
        };
        let protective_stop = bracket && index == 2 && leg.order_type() == OrderType::Stop;
        if leg.order_type() == OrderType::Market {
            Some(format!(
                "{which} is a market order; a live writer sends only orders with a limit price"
            ))
        } else if leg.limit_price().is_none() && !protective_stop {
            Some(format!(
                "{which} ({}) has no limit price; a live writer sends only orders with a limit price",
                leg.order_type()
            ))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::SecretBytes;

    fn key_from(byte: u8) -> DigestKey {
        DigestKey::derive(&ChainKey::new(&SecretBytes::new(vec![byte; 32])).unwrap())
    }

    fn key() -> DigestKey {
        key_from(42)
    }

    #[test]
    fn the_digest_is_keyed_with_a_sub_key_of_the_audit_key() {
        let order = [limit(OrderSide::Buy, "205")];
        let digest = OrderDigest::keyed(&key(), &order);
        // Another deployment's key gives another digest.
        assert_ne!(OrderDigest::keyed(&key_from(43), &order), digest);
        // Not the plain SHA-256 of the encoding, which anyone can recompute.
        let plain: [u8; 32] =
            <Sha256 as sha2::Digest>::digest(order[0].canonical().as_bytes()).into();
        assert_ne!(digest.to_hex(), crate::domain::audit::chain::to_hex(&plain));
        // Exactly HMAC(HMAC(audit key, label), encoding): the padded-block constructor is the
        // same key as the slice constructor.
        let chain = ChainKey::new(&SecretBytes::new(vec![42; 32])).unwrap();
        let mut expected = Hmac::<Sha256>::new_from_slice(&chain.tag(DIGEST_KEY_LABEL)).unwrap();
        expected.update(order[0].canonical().as_bytes());
        let expected: [u8; 32] = expected.finalize().into_bytes().into();
        assert_eq!(
            digest.to_hex(),
            crate::domain::audit::chain::to_hex(&expected)
        );
        assert_eq!(format!("{:?}", key()), "DigestKey(<redacted>)");
    }

    fn limit(side: OrderSide, price: &str) -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse("DU1234567").unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            side,
            quantity: Quantity::parse("100").unwrap(),
            order_type: OrderType::Limit,
            limit_price: Some(Price::parse(price).unwrap()),
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    #[test]
    fn the_encoding_round_trips_and_normalizes_decimals() {
        let a = limit(OrderSide::Buy, "205.00");
        let b = limit(OrderSide::Buy, "205");
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(
            OrderDigest::keyed(&key(), std::slice::from_ref(&a)),
            OrderDigest::keyed(&key(), &[b])
        );
        assert_eq!(OrderIntent::from_canonical(&a.canonical()).unwrap(), a);
        let digest = OrderDigest::keyed(&key(), &[a]);
        assert_eq!(OrderDigest::from_hex(&digest.to_hex()).unwrap(), digest);
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = limit(OrderSide::Buy, "205");
        let digest = OrderDigest::keyed(&key(), std::slice::from_ref(&base));
        let mut changed = Vec::new();
        let mut parts = base.parts();
        parts.side = OrderSide::Sell;
        changed.push(parts);
        let mut parts = base.parts();
        parts.quantity = Quantity::parse("101").unwrap();
        changed.push(parts);
        let mut parts = base.parts();
        parts.limit_price = Some(Price::parse("205.01").unwrap());
        changed.push(parts);
        let mut parts = base.parts();
        parts.time_in_force = TimeInForce::GoodTillCancelled;
        changed.push(parts);
        let mut parts = base.parts();
        parts.contract_id = ContractId::new(1).unwrap();
        changed.push(parts);
        let mut parts = base.parts();
        parts.account_id = AccountId::parse("DU7654320").unwrap();
        changed.push(parts);
        for parts in changed {
            let other = OrderIntent::new(parts).unwrap();
            assert_ne!(OrderDigest::keyed(&key(), &[other]), digest);
        }
    }

    #[test]
    fn each_type_needs_exactly_its_prices() {
        let mut parts = limit(OrderSide::Buy, "1").parts();
        parts.limit_price = None;
        assert!(matches!(
            OrderIntent::new(parts.clone()),
            Err(IntentError::MissingPrice {
                field: "limit_price",
                ..
            })
        ));
        parts.order_type = OrderType::Market;
        assert!(OrderIntent::new(parts.clone()).is_ok());
        parts.stop_price = Some(Price::parse("1").unwrap());
        assert!(matches!(
            OrderIntent::new(parts.clone()),
            Err(IntentError::UnexpectedPrice {
                field: "stop_price",
                ..
            })
        ));
        parts.order_type = OrderType::Stop;
        assert!(OrderIntent::new(parts.clone()).is_ok());
        parts.quantity = Quantity::parse("0").unwrap();
        assert_eq!(
            OrderIntent::new(parts),
            Err(IntentError::NonPositiveQuantity)
        );
    }

    #[test]
    fn bracket_prices_must_make_sense() {
        let entry = limit(OrderSide::Buy, "100");
        let p = |raw: &str| Price::parse(raw).unwrap();
        let bracket = BracketIntent::new(entry.clone(), p("110"), p("95")).unwrap();
        assert_eq!(bracket.legs()[1].side(), OrderSide::Sell);
        assert_eq!(bracket.legs()[2].order_type(), OrderType::Stop);
        assert_eq!(BracketIntent::from_legs(bracket.legs()).unwrap(), bracket);
        assert!(BracketIntent::new(entry.clone(), p("95"), p("110")).is_err());
        assert!(BracketIntent::new(entry, p("110"), p("100")).is_err());
        let sell = limit(OrderSide::Sell, "100");
        assert!(BracketIntent::new(sell.clone(), p("90"), p("105")).is_ok());
        assert!(BracketIntent::new(sell, p("105"), p("90")).is_err());
    }

    #[test]
    fn a_live_writer_refuses_unpriced_orders_but_not_a_brackets_protective_stop() {
        let entry = limit_buy_for_live_rule();
        let bracket = BracketIntent::new(
            entry.clone(),
            Price::new(Decimal::from(210)).unwrap(),
            Price::new(Decimal::from(180)).unwrap(),
        )
        .unwrap();
        assert_eq!(live_writer_refusal(bracket.legs(), true), None);
        // The same three legs sent as anything but a bracket: the stop needs a limit.
        let refusal = live_writer_refusal(bracket.legs(), false).unwrap();
        assert!(refusal.starts_with("leg 3 of 3"), "{refusal}");
        assert_eq!(
            live_writer_refusal(std::slice::from_ref(&entry), false),
            None
        );
        let stop = bracket.legs()[2].clone();
        assert!(live_writer_refusal(std::slice::from_ref(&stop), false).is_some());
        // A stop alone in a bracket's place is no excuse: only the third leg is exempt.
        assert!(live_writer_refusal(&[stop.clone(), entry.clone(), stop], true).is_some());
    }

    fn limit_buy_for_live_rule() -> OrderIntent {
        OrderIntent::new(IntentParts {
            account_id: AccountId::parse("U7654321").unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            side: OrderSide::Buy,
            quantity: Quantity::new(Decimal::ONE),
            order_type: OrderType::Limit,
            limit_price: Some(Price::new(Decimal::from(190)).unwrap()),
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }
}
