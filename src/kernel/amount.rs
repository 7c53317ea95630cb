//! Exact amounts (docs/design.md §3.6, §8 "Amounts").
//!
//! Storage is `i64` at a fixed scale per kind: every quantity at [`QTY_SCALE`] places whatever the
//! right type (a type allows at most its own places at the edge, so changing a type never rescales
//! stored data), unit prices at [`PRICE_SCALE`], money in fen ([`MONEY_SCALE`]). `Decimal` exists
//! only at the API edge, where an input with more places than allowed is rejected, never rounded.
//! Products are computed exactly in `i128` and rounded once, half-up (away from zero), to the fen.
//!
//! JSON carries decimals as strings. `rust_decimal`'s own `serde-str` deserializer does reject JSON
//! numbers with serde_json, but it also accepts `"1e3"`, `"1_000"`, `"+1"`, `".5"` and silently
//! rounds a string of more than 28 significant digits; [`decimal_str`] and [`opt_decimal_str`]
//! accept only the plain form `-?digits[.digits]`.

use rust_decimal::Decimal;

/// Places of every stored quantity.
pub const QTY_SCALE: u32 = 4;
/// Places of every stored unit price.
pub const PRICE_SCALE: u32 = 4;
/// Places of stored money (fen).
pub const MONEY_SCALE: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
    #[error("has more than {max} decimal places")]
    TooManyPlaces { max: u32 },
    #[error("is too large")]
    Overflow,
}

/// `d` as an integer count of `10^-scale` units, or `TooManyPlaces { max }` if `d` has more than
/// `max` places (`max <= scale`). Trailing zeros do not count: "1.50" has one place.
fn to_scaled(d: Decimal, max: u32, scale: u32) -> Result<i64, AmountError> {
    let d = d.normalize();
    if d.scale() > max {
        return Err(AmountError::TooManyPlaces { max });
    }
    // d.scale() <= max <= scale, so this is an exact multiplication.
    10i128
        .checked_pow(scale - d.scale())
        .and_then(|f| d.mantissa().checked_mul(f))
        .and_then(|v| i64::try_from(v).ok())
        .ok_or(AmountError::Overflow)
}

/// A quantity from the edge: > 0 and at most `max_places` places (the right type's own; capped at
/// [`QTY_SCALE`]).
pub fn qty_to_stored(d: Decimal, max_places: u32) -> Result<i64, AmountError> {
    if d <= Decimal::ZERO {
        return Err(AmountError::NotPositive);
    }
    to_scaled(d, max_places.min(QTY_SCALE), QTY_SCALE)
}

/// A stored quantity for the edge, trailing zeros trimmed: 4_852_000 → "485.2", 1_000_000 → "100".
pub fn stored_to_qty(v: i64) -> Decimal {
    Decimal::new(v, QTY_SCALE).normalize()
}

/// A unit price from the edge: > 0 and at most [`PRICE_SCALE`] places.
pub fn price_to_stored(d: Decimal) -> Result<i64, AmountError> {
    if d <= Decimal::ZERO {
        return Err(AmountError::NotPositive);
    }
    to_scaled(d, PRICE_SCALE, PRICE_SCALE)
}

/// A stored unit price for the edge, trailing zeros trimmed like [`stored_to_qty`]: 14_190_000 →
/// "1419".
pub fn stored_to_price(v: i64) -> Decimal {
    Decimal::new(v, PRICE_SCALE).normalize()
}

/// Money from the edge, in fen: not negative, zero only if `allow_zero`, at most two places.
pub fn money_to_fen(d: Decimal, allow_zero: bool) -> Result<i64, AmountError> {
    if d < Decimal::ZERO {
        return Err(AmountError::Negative);
    }
    if d.is_zero() && !allow_zero {
        return Err(AmountError::NotPositive);
    }
    to_scaled(d, MONEY_SCALE, MONEY_SCALE)
}

/// Fen for the edge, always with two places: 344_329_880 → "3443298.80".
pub fn fen_to_money(v: i64) -> Decimal {
    Decimal::new(v, MONEY_SCALE)
}

/// A trade's amount in fen (R3): quantity × unit price × years (`years` = 1 for rights not
/// priced per year), exact in `i128`, rounded once, half away from zero, to the fen.
pub fn trade_amount_fen(
    qty_stored: i64,
    price_stored: i64,
    years: u32,
) -> Result<i64, AmountError> {
    // The exact product has QTY_SCALE + PRICE_SCALE places; dividing by this leaves MONEY_SCALE.
    const DIVISOR: i128 = 10i128.pow(QTY_SCALE + PRICE_SCALE - MONEY_SCALE);
    let exact = i128::from(qty_stored)
        .checked_mul(i128::from(price_stored))
        .and_then(|p| p.checked_mul(i128::from(years)))
        .ok_or(AmountError::Overflow)?;
    let (quot, rem) = (exact / DIVISOR, exact % DIVISOR);
    // `/` truncates toward zero; a remainder of half or more moves one fen away from zero.
    let rounded = if rem.abs() * 2 >= DIVISOR {
        quot + exact.signum()
    } else {
        quot
    };
    i64::try_from(rounded).map_err(|_| AmountError::Overflow)
}

/// Parses the plain decimal form `-?digits[.digits]` with at most 28 digits, which `Decimal` always
/// holds exactly. Anything else (exponent, '+', '_', whitespace, ".5", "5.") is `None`, so nothing
/// is ever rounded on the way in.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (unsigned, ""),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || int.len() + frac.len() > 28 {
        return None;
    }
    s.parse().ok()
}

/// `#[serde(with = "decimal_str")]` for a `Decimal`: written as a JSON string, read only from a
/// plain decimal string (see [`parse_decimal`]); a JSON number is rejected.
pub mod decimal_str {
    use rust_decimal::Decimal;
    use serde::{de, Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(d: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        deserializer.deserialize_str(PlainDecimal)
    }

    struct PlainDecimal;

    impl de::Visitor<'_> for PlainDecimal {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal as a string, such as \"123.45\"")
        }

        // Only strings: numbers, booleans etc. fall through to serde's "invalid type" error.
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Decimal, E> {
            super::parse_decimal(s).ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
        }
    }
}

/// `#[serde(default, with = "opt_decimal_str")]` for an `Option<Decimal>`: `null` is `None` (and so
/// is a missing field, given `default`, which serde requires with `with`); otherwise as
/// [`decimal_str`]. `""` is an error.
pub mod opt_decimal_str {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, serializer: S) -> Result<S::Ok, S::Error> {
        d.map(|d| d.to_string()).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct Plain(#[serde(with = "super::decimal_str")] Decimal);
        Ok(Option::<Plain>::deserialize(deserializer)?.map(|p| p.0))
    }
}

/// A decimal at the API edge: a JSON string both ways (plain form only), a string in the spec.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Dec(#[serde(with = "decimal_str")] pub Decimal);

impl utoipa::PartialSchema for Dec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("decimal".into())))
            .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$"))
            .description(Some("An exact decimal, as a string"))
            .examples(["485.2"])
            .into()
    }
}

impl utoipa::ToSchema for Dec {}

impl Dec {
    /// A stored quantity (scale 4) for output.
    pub fn qty(stored: i64) -> Dec {
        Dec(stored_to_qty(stored))
    }
    pub fn price(stored: i64) -> Dec {
        Dec(stored_to_price(stored))
    }
    pub fn money(fen: i64) -> Dec {
        Dec(fen_to_money(fen))
    }
}

/// A measure kept at two places (area in mu, stock volume in m³): same rules as money.
pub fn hundredths(d: Decimal, allow_zero: bool) -> Result<i64, AmountError> {
    money_to_fen(d, allow_zero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::RoundingStrategy;
    use serde::{Deserialize, Serialize};
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn fujian_2014_emission_right() {
        // R11: 485.2 t × 1,419 yuan per ton-year × 5 years.
        let qty = qty_to_stored(dec("485.2"), 4).unwrap();
        let price = price_to_stored(dec("1419")).unwrap();
        assert_eq!((qty, price), (4_852_000, 14_190_000));
        let fen = trade_amount_fen(qty, price, 5).unwrap();
        assert_eq!(fen, 344_249_400);
        assert_eq!(fen_to_money(fen).to_string(), "3442494.00");
    }

    #[test]
    fn quantities() {
        assert_eq!(qty_to_stored(dec("1.50"), 1), Ok(15_000));
        assert_eq!(qty_to_stored(dec("2"), 0), Ok(20_000));
        assert_eq!(qty_to_stored(dec("0.0001"), 4), Ok(1));
        assert_eq!(
            qty_to_stored(dec("1.25"), 1),
            Err(AmountError::TooManyPlaces { max: 1 })
        );
        assert_eq!(
            qty_to_stored(dec("0.00001"), 9),
            Err(AmountError::TooManyPlaces { max: 4 })
        );
        assert_eq!(qty_to_stored(dec("0"), 4), Err(AmountError::NotPositive));
        assert_eq!(qty_to_stored(dec("-1"), 4), Err(AmountError::NotPositive));
        assert_eq!(
            qty_to_stored(Decimal::from(i64::MAX), 4),
            Err(AmountError::Overflow)
        );
        assert_eq!(stored_to_qty(4_852_000).to_string(), "485.2");
        assert_eq!(stored_to_qty(1_000_000).to_string(), "100");
        assert_eq!(stored_to_price(14_190_000).to_string(), "1419");
        assert_eq!(price_to_stored(dec("8011.69")), Ok(80_116_900));
        assert_eq!(
            price_to_stored(dec("0.00001")),
            Err(AmountError::TooManyPlaces { max: 4 })
        );
        assert_eq!(price_to_stored(dec("0")), Err(AmountError::NotPositive));
    }

    #[test]
    fn money() {
        assert_eq!(money_to_fen(dec("3443298.8"), false), Ok(344_329_880));
        assert_eq!(fen_to_money(344_329_880).to_string(), "3443298.80");
        assert_eq!(fen_to_money(0).to_string(), "0.00");
        assert_eq!(money_to_fen(dec("0.00"), true), Ok(0));
        assert_eq!(money_to_fen(dec("-0"), true), Ok(0));
        assert_eq!(money_to_fen(dec("0"), false), Err(AmountError::NotPositive));
        assert_eq!(money_to_fen(dec("-0.01"), true), Err(AmountError::Negative));
        assert_eq!(
            money_to_fen(dec("1.005"), true),
            Err(AmountError::TooManyPlaces { max: 2 })
        );
    }

    #[test]
    fn trade_rounding_is_half_up_once() {
        // 0.0001 t × 0.0050 = 0.000_000_5 yuan → 0.00; × 10_000 years would be 0.005 → 0.01.
        assert_eq!(trade_amount_fen(1, 50, 1), Ok(0));
        assert_eq!(trade_amount_fen(1, 50, 10_000), Ok(1));
        assert_eq!(trade_amount_fen(1, 49, 10_000), Ok(0));
        assert_eq!(trade_amount_fen(-1, 50, 10_000), Ok(-1));
        assert_eq!(
            trade_amount_fen(i64::MAX, i64::MAX, 1),
            Err(AmountError::Overflow)
        );
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Body {
        #[serde(with = "decimal_str")]
        qty: Decimal,
        #[serde(default, with = "opt_decimal_str")]
        price: Option<Decimal>,
    }

    #[test]
    fn json_decimals_are_plain_strings() {
        let body: Body = serde_json::from_str(r#"{"qty":"485.20","price":"1419"}"#).unwrap();
        assert_eq!(
            body,
            Body {
                qty: dec("485.20"),
                price: Some(dec("1419"))
            }
        );
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"qty":"485.20","price":"1419"}"#
        );
        let body: Body = serde_json::from_str(r#"{"qty":"-1","price":null}"#).unwrap();
        assert_eq!(body.price, None);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"qty":"-1","price":null}"#
        );
        assert_eq!(
            serde_json::from_str::<Body>(r#"{"qty":"1"}"#)
                .unwrap()
                .price,
            None
        );
        for bad in [
            r#"{"qty":1.5}"#,
            r#"{"qty":2}"#,
            r#"{"qty":"1","price":1.5}"#,
            r#"{"qty":"1","price":""}"#,
            r#"{"qty":"1e3"}"#,
            r#"{"qty":" 1"}"#,
            r#"{"qty":"1 "}"#,
            r#"{"qty":"+1"}"#,
            r#"{"qty":"1_000"}"#,
            r#"{"qty":".5"}"#,
            r#"{"qty":"5."}"#,
            r#"{"qty":"-"}"#,
            r#"{"qty":""}"#,
            r#"{"qty":"0.12345678901234567890123456789"}"#,
        ] {
            assert!(serde_json::from_str::<Body>(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn rust_decimal_serde_str_also_rejects_numbers() {
        // True of rust_decimal 1.43 with serde_json; decimal_str exists for its laxity with strings
        // instead ("1e3", "+1", "1_000", and silent rounding past 28 digits).
        #[derive(Deserialize)]
        struct Lax(#[serde(with = "rust_decimal::serde::str")] Decimal);
        assert!(serde_json::from_str::<Lax>("1.5").is_err());
        assert!(serde_json::from_str::<Lax>("2").is_err());
        assert_eq!(
            serde_json::from_str::<Lax>(r#""1.5""#).unwrap().0,
            dec("1.5")
        );
    }

    proptest! {
        #[test]
        fn qty_round_trips(v in 1..=i64::MAX) {
            let d = stored_to_qty(v);
            prop_assert_eq!(qty_to_stored(d, QTY_SCALE), Ok(v));
            let places = d.scale();
            prop_assert_eq!(qty_to_stored(d, places), Ok(v));
            if places > 0 {
                let max = places - 1;
                prop_assert_eq!(qty_to_stored(d, max), Err(AmountError::TooManyPlaces { max }));
            }
        }

        #[test]
        fn parse_round_trips(v in any::<i64>(), scale in 0u32..=18) {
            let d = Decimal::new(v, scale);
            prop_assert_eq!(parse_decimal(&d.to_string()), Some(d));
        }

        #[test]
        fn too_many_places_is_never_rounded(
            m in 1i64..1_000_000_000_000,
            extra in 1u32..=8,
            max in 0u32..=4,
        ) {
            // Last digit nonzero, so the value really has `max + extra` places after normalising.
            let places = max + extra;
            let d = Decimal::new(m * 10 + 7, places);
            prop_assert_eq!(qty_to_stored(d, max), Err(AmountError::TooManyPlaces { max }));
            if places > PRICE_SCALE {
                let want = Err(AmountError::TooManyPlaces { max: PRICE_SCALE });
                prop_assert_eq!(price_to_stored(d), want);
            }
            if places > MONEY_SCALE {
                let want = Err(AmountError::TooManyPlaces { max: MONEY_SCALE });
                prop_assert_eq!(money_to_fen(d, true), want);
            }
        }

        #[test]
        fn trade_amount_matches_decimal(
            qty in 1i64..=1_000_000_000_000,
            price in 1i64..=10_000_000_000,
            years in 1u32..=30,
        ) {
            let exact = Decimal::new(qty, QTY_SCALE)
                * Decimal::new(price, PRICE_SCALE)
                * Decimal::from(years);
            let want =
                exact.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero);
            let got = fen_to_money(trade_amount_fen(qty, price, years).unwrap());
            prop_assert_eq!(got, want);
        }
    }
}
