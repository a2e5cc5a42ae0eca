//! Input generators shared by the property modules.

use ibkr_agent_gateway::domain::money::Currency;
use proptest::prelude::*;
use rust_decimal::Decimal;

/// The largest mantissa a `Decimal` holds: 96 bits.
pub const MAX_MANTISSA: i128 = (1 << 96) - 1;

/// Any decimal: a full 96-bit mantissa of either sign with scale 0..=28, mixed with small values
/// (the realistic range) and the extremes (where overflow lives).
pub fn any_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        3 => (-MAX_MANTISSA..=MAX_MANTISSA, 0u32..=28)
            .prop_map(|(mantissa, scale)| decimal(mantissa, scale)),
        3 => (any::<i64>(), 0u32..=28)
            .prop_map(|(mantissa, scale)| decimal(mantissa.into(), scale)),
        2 => (-1_000_000i64..=1_000_000, 0u32..=8)
            .prop_map(|(mantissa, scale)| decimal(mantissa.into(), scale)),
        1 => prop::sample::select(vec![
            Decimal::ZERO,
            Decimal::ONE,
            Decimal::NEGATIVE_ONE,
            Decimal::MAX,
            Decimal::MIN,
            decimal(1, 28),
            decimal(-1, 28),
            decimal(MAX_MANTISSA, 28),
        ]),
    ]
}

/// A decimal from a mantissa within 96 bits and a scale of at most 28.
pub fn decimal(mantissa: i128, scale: u32) -> Decimal {
    Decimal::try_from_i128_with_scale(mantissa, scale).expect("mantissa and scale are in range")
}

/// A decimal small enough that exact results can be computed with `i128`, returned with its
/// mantissa and scale.
pub fn small_decimal(max_scale: u32) -> impl Strategy<Value = (Decimal, i128, u32)> {
    (any::<i32>(), 0..=max_scale).prop_map(|(mantissa, scale)| {
        (decimal(mantissa.into(), scale), i128::from(mantissa), scale)
    })
}

/// Any valid currency code.
pub fn any_currency() -> impl Strategy<Value = Currency> {
    "[A-Z]{3}".prop_map(|code| Currency::parse(&code).expect("three capitals"))
}

/// Hostile text: arbitrary unicode, control characters, very long inputs, and near misses of
/// every format the parsers accept (so the deeper branches run too).
pub fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<char>(), 0..2_000).prop_map(String::from_iter),
        prop::collection::vec(prop::char::range('\0', '\u{9f}'), 0..200)
            .prop_map(String::from_iter),
        (
            prop::sample::select(vec![
                "9",
                "0",
                "DU1",
                "k",
                " ",
                "\t",
                "\0",
                "\u{2022}",
                "é",
                "٣",
                "1.",
                "_",
                "ibkr:health:read ",
            ]),
            0usize..20_000,
        )
            .prop_map(|(chunk, count)| chunk.repeat(count)),
        "[ \t+\\-0-9._eE]{0,80}",
        "[A-Za-z]{0,4}[0-9]{0,16}",
        "[A-Za-z0-9._\\-/ ]{0,70}",
        "[0-9]{0,6}(min|h|d|w|m|y|x|MIN|)",
        "[a-z:]{0,30}( [a-z:]{0,30}){0,4}",
        "(STK|ETF|OPT|FUT|FOP|CASH|FX|IND|BOND|CRYPTO|LMT|MKT|STP LMT|TRAIL)[ a-z]{0,3}",
    ]
}
