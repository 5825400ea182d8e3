//! `/order` and `/catalogue` without the IO: the query turned into an `order`, and the
//! answer of `orders` turned into a reply. The formats are listed in the crate docs.

use crate::bindings::shop::example::shop::orders::{
    LineItem, Order, PricedLine, Receipt, Rejection,
};
use http_support::{Query, Reply};

/// `customer=C&items=sku:qty,...&coupon=X` as an `order`, or a 400 naming the problem.
pub fn parse(query: &Query) -> Result<Order, Reply> {
    let customer = match query.get("customer") {
        Some(customer) if !customer.is_empty() => customer.to_string(),
        _ => {
            return Err(Reply::bad_request(
                "query parameter 'customer' is required and must not be empty",
            ))
        }
    };
    let items = query.get("items").ok_or_else(|| {
        Reply::bad_request("query parameter 'items' is required (items=sku:quantity,...)")
    })?;
    let items = items
        .split(',')
        .filter(|item| !item.is_empty())
        .map(parse_item)
        .collect::<Result<_, _>>()?;
    let coupon = query
        .get("coupon")
        .filter(|coupon| !coupon.is_empty())
        .map(str::to_string);
    Ok(Order {
        customer,
        items,
        coupon,
    })
}

fn parse_item(item: &str) -> Result<LineItem, Reply> {
    let (sku, quantity) = item.split_once(':').ok_or_else(|| {
        Reply::bad_request(format!("item '{item}' in 'items' is not sku:quantity"))
    })?;
    if sku.is_empty() {
        return Err(Reply::bad_request(format!(
            "item '{item}' has an empty sku"
        )));
    }
    let quantity = quantity.parse().map_err(|_| {
        Reply::bad_request(format!(
            "quantity '{quantity}' of item '{item}' is not a whole number from 0 to {}",
            u32::MAX
        ))
    })?;
    Ok(LineItem {
        sku: sku.to_string(),
        quantity,
    })
}

/// The reply to `place-order`'s answer for `order`.
pub fn describe(order: &Order, answer: Result<Receipt, Rejection>) -> Reply {
    let receipt = match answer {
        Ok(receipt) => receipt,
        Err(Rejection::UnknownSku(sku)) => {
            return Reply::new(422, format!("rejected: unknown sku '{sku}'\n"))
        }
        Err(Rejection::OverLimit(total)) => {
            return Reply::new(
                422,
                format!("rejected: total {total} cents is over the order limit\n"),
            )
        }
        Err(Rejection::EmptyOrder) => return Reply::new(422, "rejected: empty order\n"),
        Err(Rejection::Unavailable(detail)) => {
            return Reply::new(503, format!("unavailable: {detail}\n"))
        }
    };
    if receipt.lines.len() != order.items.len() {
        return Reply::new(
            502,
            format!(
                "error: business priced {} lines for {} items\n",
                receipt.lines.len(),
                order.items.len()
            ),
        );
    }
    let lines: Vec<String> = receipt
        .lines
        .iter()
        .zip(&order.items)
        .map(|((sku, cents), item)| format!("{sku} x{} = {cents}", item.quantity))
        .collect();
    Reply::new(
        200,
        format!(
            "order {} for {}: {}; total {} cents (discount {}%)\n",
            receipt.order_id,
            receipt.customer,
            lines.join(", "),
            receipt.total_cents,
            receipt.discount_percent
        ),
    )
}

/// `sku cents` lines, in the order `catalogue` returns them (sorted by SKU).
pub fn describe_catalogue(catalogue: &[PricedLine]) -> Reply {
    let body: String = catalogue
        .iter()
        .map(|(sku, cents)| format!("{sku} {cents}\n"))
        .collect();
    Reply::new(200, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(raw: &str) -> Result<Order, Reply> {
        parse(&Query::parse(raw))
    }

    #[test]
    fn parses_orders() {
        let parsed = order("customer=ann&items=apple:2,pear:1&coupon=TENOFF").unwrap();
        assert_eq!(parsed.customer, "ann");
        let items: Vec<(&str, u32)> = parsed
            .items
            .iter()
            .map(|item| (item.sku.as_str(), item.quantity))
            .collect();
        assert_eq!(items, [("apple", 2), ("pear", 1)]);
        assert_eq!(parsed.coupon.as_deref(), Some("TENOFF"));

        let parsed = order("customer=ann&items=&coupon=").unwrap();
        assert!(parsed.items.is_empty());
        assert_eq!(parsed.coupon, None);
    }

    #[test]
    fn bad_queries_name_the_problem() {
        let cases = [
            (
                "items=apple:1",
                "query parameter 'customer' is required and must not be empty",
            ),
            (
                "customer=&items=apple:1",
                "query parameter 'customer' is required and must not be empty",
            ),
            (
                "customer=ann",
                "query parameter 'items' is required (items=sku:quantity,...)",
            ),
            (
                "customer=ann&items=apple",
                "item 'apple' in 'items' is not sku:quantity",
            ),
            ("customer=ann&items=:2", "item ':2' has an empty sku"),
            (
                "customer=ann&items=apple:-1",
                "quantity '-1' of item 'apple:-1' is not a whole number from 0 to 4294967295",
            ),
        ];
        for (raw, detail) in cases {
            let reply = order(raw).expect_err(raw);
            assert_eq!(reply, Reply::bad_request(detail), "{raw}");
        }
    }

    #[test]
    fn describes_answers() {
        let placed = order("customer=ann&items=apple:2,pear:1").unwrap();
        let receipt = Receipt {
            order_id: 42,
            customer: "ann".to_string(),
            lines: vec![("apple".to_string(), 100), ("pear".to_string(), 75)],
            total_cents: 175,
            discount_percent: 0,
        };
        let cases = [
            (
                Ok(receipt),
                200,
                "order 42 for ann: apple x2 = 100, pear x1 = 75; total 175 cents (discount 0%)\n",
            ),
            (
                Err(Rejection::UnknownSku("kiwi".to_string())),
                422,
                "rejected: unknown sku 'kiwi'\n",
            ),
            (
                Err(Rejection::OverLimit(101_250)),
                422,
                "rejected: total 101250 cents is over the order limit\n",
            ),
            (Err(Rejection::EmptyOrder), 422, "rejected: empty order\n"),
            (
                Err(Rejection::Unavailable("no instance".to_string())),
                503,
                "unavailable: no instance\n",
            ),
        ];
        for (answer, status, body) in cases {
            assert_eq!(describe(&placed, answer), Reply::new(status, body));
        }
    }

    #[test]
    fn describes_the_catalogue() {
        let catalogue = [("apple".to_string(), 50), ("pear".to_string(), 75)];
        assert_eq!(
            describe_catalogue(&catalogue),
            Reply::new(200, "apple 50\npear 75\n")
        );
    }
}
