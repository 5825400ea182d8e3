//! The edge half of the edge-plus-core shop example (`manifests/shop.yaml`): a
//! `wasi:http` front door (world `auth` of `wit/examples/shop.wit`, plus the
//! `wasi:http/incoming-handler` export of the `wasi` crate) that checks a bearer token
//! and calls `example:shop/orders`, which `shop-business` serves, across hosts when the
//! two run apart.
//!
//! Every answer is `text/plain`; query values are percent-decoded.
//!
//! | request | answer |
//! |---------|--------|
//! | `GET /order?customer=C&items=S:Q,...&coupon=X` | see below |
//! | `GET /catalogue` (no token needed) | `200`, one `<sku> <cents>\n` line per SKU, sorted by SKU |
//! | another method on those paths | `405 method not allowed: use GET\n` |
//! | any other path | `404 no such route\n` |
//!
//! `/order` first checks `authorization: Bearer <token>` (scheme case-insensitive, the
//! first such header). The token must equal config value `token`
//! (`wasi:config/store.get`); when that key is not set, any non-empty token passes.
//! Otherwise `401 unauthorized\n` (with `www-authenticate: Bearer`); a failing config
//! store gives `500 error: reading config key 'token': <detail>\n`.
//!
//! It then reads the query: `customer` (required, non-empty), `items` (required;
//! comma-separated `sku:quantity` with `quantity` a `u32`; empty pieces are skipped, so
//! `items=` is an empty order) and `coupon` (optional; empty means none). A bad query
//! gives `400 bad request: <detail>\n`, for example
//! `400 bad request: item 'apple' in 'items' is not sku:quantity\n`.
//!
//! Then it calls `place-order` and answers:
//!
//! | `place-order` result | answer |
//! |----------------------|--------|
//! | `ok(receipt)` | `200 order <order-id> for <customer>: <sku> x<qty> = <cents>, <sku> x<qty> = <cents>; total <total-cents> cents (discount <n>%)\n` |
//! | `err(unknown-sku(s))` | `422 rejected: unknown sku '<s>'\n` |
//! | `err(over-limit(t))` | `422 rejected: total <t> cents is over the order limit\n` |
//! | `err(empty-order)` | `422 rejected: empty order\n` |
//! | `err(unavailable(m))` | `503 unavailable: <m>\n` |
//!
//! In the `200` body, `<order-id>` is decimal, `<customer>` and each `<sku>`/`<cents>`
//! come from the receipt, `<qty>` from the request, lines in request order joined by
//! `, `. For example `order 1234 for ann: apple x2 = 100, pear x1 = 75; total 175
//! cents (discount 0%)\n`. A receipt with a different number of lines than the request
//! had items gives `502 error: business priced <n> lines for <m> items\n`.
//!
//! If the `place-order` call itself traps (the host traps the caller when a failure
//! cannot be mapped into `unavailable`), the request fails without a response.

mod bindings;
mod order;

use bindings::config::wasi::config::store as config;
use bindings::shop::example::shop::orders;
use http_support::{Query, Reply};
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

struct Auth;

wasi::http::proxy::export!(Auth);

impl wasi::exports::http::incoming_handler::Guest for Auth {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        route(&request).send(response_out);
    }
}

fn route(request: &IncomingRequest) -> Reply {
    let path_with_query = request.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((path_with_query.as_str(), ""));
    if !matches!(path, "/order" | "/catalogue") {
        return Reply::new(404, "no such route\n");
    }
    if !matches!(request.method(), Method::Get) {
        return Reply::new(405, "method not allowed: use GET\n");
    }
    if path == "/catalogue" {
        return order::describe_catalogue(&orders::catalogue());
    }
    let authorization = request.headers().get("authorization").into_iter().next();
    let expected = match config::get("token") {
        Ok(expected) => expected,
        Err(config::Error::Upstream(detail) | config::Error::Io(detail)) => {
            return Reply::new(
                500,
                format!("error: reading config key 'token': {detail}\n"),
            )
        }
    };
    if !authorized(expected.as_deref(), authorization.as_deref()) {
        return Reply::unauthorized();
    }
    match order::parse(&Query::parse(query)) {
        Ok(placed) => order::describe(&placed, orders::place_order(&placed)),
        Err(reply) => reply,
    }
}

/// Whether the `authorization` header value carries `Bearer <token>` with the expected
/// token, or any non-empty token when none is configured.
fn authorized(expected: Option<&str>, header: Option<&[u8]>) -> bool {
    let Some(header) = header.and_then(|value| std::str::from_utf8(value).ok()) else {
        return false;
    };
    let Some((scheme, token)) = header.trim().split_once(' ') else {
        return false;
    };
    let token = token.trim();
    scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && expected.is_none_or(|expected| token == expected)
}

#[cfg(test)]
mod tests {
    use super::authorized;

    #[test]
    fn checks_the_bearer_token() {
        let cases: &[(Option<&str>, Option<&str>, bool)] = &[
            (Some("s3cret"), Some("Bearer s3cret"), true),
            (Some("s3cret"), Some("bearer  s3cret "), true),
            (Some("s3cret"), Some("Bearer wrong"), false),
            (Some("s3cret"), Some("Basic s3cret"), false),
            (Some("s3cret"), Some("s3cret"), false),
            (Some("s3cret"), None, false),
            (None, Some("Bearer anything"), true),
            (None, Some("Bearer "), false),
            (None, None, false),
            (Some(""), Some("Bearer "), false),
        ];
        for &(expected, header, ok) in cases {
            assert_eq!(
                authorized(expected, header.map(str::as_bytes)),
                ok,
                "{expected:?} {header:?}"
            );
        }
    }
}
