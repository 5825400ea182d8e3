//! The core half of the edge-plus-core shop example (`manifests/shop.yaml`): exports
//! `example:shop/orders` (world `business` of `wit/examples/shop.wit`) and prices
//! orders from a fixed catalogue. The edge's `shop-auth` calls it, across hosts when the
//! two run apart; the host's cross-host call tests call it too.
//!
//! It is a library component: it exports `orders` and imports only the `wasi:cli`
//! interfaces Rust std brings, never `wasi:http`. It writes one line per order to
//! stdout (`order ID for CUSTOMER: TOTAL cents` or `order rejected: WHY`), which the
//! host logs and adds to the invocation's span.
//!
//! `place-order` checks, in this order:
//! 1. no items: `err(empty-order)`;
//! 2. the first SKU (in request order) not in [`CATALOGUE`]: `err(unknown-sku(sku))`;
//! 3. `total > 100_000` cents ([`ORDER_LIMIT_CENTS`]): `err(over-limit(total))`.
//!
//! Otherwise it answers a receipt whose `lines` are `(sku, quantity * unit cents)` in
//! request order, `discount-percent` is 10 for coupon `TENOFF` (exactly) and 0 for any
//! other or none, and `total-cents` is `subtotal - subtotal * discount / 100` (integer
//! division, so the discount rounds down). `order-id` is the 64-bit FNV-1a hash of the
//! UTF-8 text `customer`, then for each item `"\n" + sku + ":" + quantity` (decimal);
//! for example customer `alice` with `apple:2,pear:1` hashes `"alice\napple:2\npear:1"`,
//! giving `5595653295556370804`. The coupon is not part of the id. Arithmetic
//! saturates, so no order traps.

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/examples/shop.wit",
        world: "example:shop/business",
    });
}

use bindings::exports::example::shop::orders::{Guest, Order, PricedLine, Receipt, Rejection};

/// Every SKU with its unit price in cents, sorted by SKU.
const CATALOGUE: &[(&str, u64)] = &[
    ("apple", 50),
    ("coffee", 1250),
    ("melon", 320),
    ("pear", 75),
    ("tea", 900),
];

/// The most (in cents, after the discount) a single order may total.
const ORDER_LIMIT_CENTS: u64 = 100_000;

/// The one coupon there is, and what it takes off.
const COUPON: (&str, u8) = ("TENOFF", 10);

struct Business;

bindings::export!(Business with_types_in bindings);

impl Guest for Business {
    fn place_order(order: Order) -> Result<Receipt, Rejection> {
        let placed = place_order(order);
        match &placed {
            Ok(r) => println!(
                "order {} for {}: {} cents",
                r.order_id, r.customer, r.total_cents
            ),
            Err(why) => println!("order rejected: {why:?}"),
        }
        placed
    }

    fn catalogue() -> Vec<PricedLine> {
        CATALOGUE
            .iter()
            .map(|&(sku, cents)| (sku.to_string(), cents))
            .collect()
    }
}

fn place_order(order: Order) -> Result<Receipt, Rejection> {
    if order.items.is_empty() {
        return Err(Rejection::EmptyOrder);
    }
    let mut lines = Vec::with_capacity(order.items.len());
    for item in &order.items {
        let unit = unit_price(&item.sku).ok_or_else(|| Rejection::UnknownSku(item.sku.clone()))?;
        lines.push((
            item.sku.clone(),
            unit.saturating_mul(u64::from(item.quantity)),
        ));
    }
    let subtotal = lines
        .iter()
        .fold(0u64, |sum, (_, cents)| sum.saturating_add(*cents));
    let discount_percent = match order.coupon.as_deref() {
        Some(code) if code == COUPON.0 => COUPON.1,
        _ => 0,
    };
    let total_cents = subtotal - subtotal.saturating_mul(u64::from(discount_percent)) / 100;
    if total_cents > ORDER_LIMIT_CENTS {
        return Err(Rejection::OverLimit(total_cents));
    }
    Ok(Receipt {
        order_id: order_id(&order),
        customer: order.customer,
        lines,
        total_cents,
        discount_percent,
    })
}

fn unit_price(sku: &str) -> Option<u64> {
    CATALOGUE
        .iter()
        .find(|(known, _)| *known == sku)
        .map(|&(_, cents)| cents)
}

/// FNV-1a (64-bit) over `customer` and `"\n" + sku + ":" + quantity` per item.
fn order_id(order: &Order) -> u64 {
    let mut text = order.customer.clone();
    for item in &order.items {
        text.push_str(&format!("\n{}:{}", item.sku, item.quantity));
    }
    fnv1a(text.as_bytes())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindings::exports::example::shop::orders::LineItem;

    fn order(items: &[(&str, u32)], coupon: Option<&str>) -> Order {
        Order {
            customer: "alice".to_string(),
            items: items
                .iter()
                .map(|&(sku, quantity)| LineItem {
                    sku: sku.to_string(),
                    quantity,
                })
                .collect(),
            coupon: coupon.map(str::to_string),
        }
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Items, coupon, and the expected `(total-cents, discount-percent)` or rejection.
    type Case = (
        &'static [(&'static str, u32)],
        Option<&'static str>,
        Result<(u64, u8), Rejection>,
    );

    #[test]
    fn prices_orders() {
        let cases: &[Case] = &[
            (&[("apple", 2), ("pear", 1)], None, Ok((175, 0))),
            (&[("coffee", 3)], Some("TENOFF"), Ok((3375, 10))),
            (&[("tea", 1)], Some("tenoff"), Ok((900, 0))),
            (&[("apple", 3)], Some("TENOFF"), Ok((135, 10))),
            (&[], None, Err(Rejection::EmptyOrder)),
            (
                &[("apple", 1), ("kiwi", 1), ("fig", 1)],
                None,
                Err(Rejection::UnknownSku("kiwi".to_string())),
            ),
            (&[("coffee", 81)], None, Err(Rejection::OverLimit(101_250))),
            (&[("coffee", 81)], Some("TENOFF"), Ok((91_125, 10))),
            (
                &[("coffee", u32::MAX)],
                None,
                Err(Rejection::OverLimit(5_368_709_118_750)),
            ),
        ];
        for (items, coupon, expected) in cases {
            let got = place_order(order(items, *coupon))
                .map(|receipt| (receipt.total_cents, receipt.discount_percent));
            assert_eq!(
                format!("{got:?}"),
                format!("{expected:?}"),
                "{items:?} {coupon:?}"
            );
        }
    }

    #[test]
    fn receipt_lines_follow_request_order_and_id_is_deterministic() {
        let receipt = place_order(order(&[("pear", 2), ("apple", 1)], None)).unwrap();
        assert_eq!(
            receipt.lines,
            vec![("pear".to_string(), 150), ("apple".to_string(), 50)]
        );
        assert_eq!(receipt.customer, "alice");
        assert_eq!(receipt.order_id, fnv1a(b"alice\npear:2\napple:1"));
        let documented = place_order(order(&[("apple", 2), ("pear", 1)], None)).unwrap();
        assert_eq!(documented.order_id, 5_595_653_295_556_370_804);
        let with_coupon = place_order(order(&[("pear", 2), ("apple", 1)], Some("TENOFF")));
        assert_eq!(with_coupon.unwrap().order_id, receipt.order_id);
    }

    #[test]
    fn catalogue_is_sorted() {
        let skus: Vec<String> = Business::catalogue().into_iter().map(|(s, _)| s).collect();
        let mut sorted = skus.clone();
        sorted.sort();
        assert_eq!(skus, sorted);
    }
}
