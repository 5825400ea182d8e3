//! `lattice call APP COMPONENT FUNCTION ARGS...`: invoke an exported function of a
//! running component, with arguments and results written in WAVE (the WebAssembly
//! Value Encoding: `{sku: "ab", quantity: 2}`, `ok(7)`, `[1, 2]`).
//!
//! It travels the links' call path: the arguments are encoded as any caller's
//! (MessagePack, with the function's signature fingerprint), on the CLI's own
//! subject `lattice.<L>.rpcc.<app>.<component>.<ns>.<pkg>.<iface>.<fn>` (which
//! only the CLI's NATS user may publish), served in queue group `rpc` by a host
//! running the component, admitted, bounded and timed like a linked call. First the
//! CLI asks the component for the function's signature (header
//! `lattice-describe`), so it can read the arguments and print the results.

use crate::output::{print_json, Output};
use async_nats::HeaderMap;
use clap::Args;
use lattice_protocol::wire::rpc::{headers, CLI_CALLER};
use lattice_protocol::wire::{self, wave, CallErrorKind, CallHeader, CallTarget, Signature};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct CallArgs {
    /// The app the component belongs to.
    pub app: String,
    /// The component's name in the app's manifest.
    pub component: String,
    /// The function: `namespace:package/interface.function` (or `…#function`), e.g.
    /// `example:shop/orders.place-order`; a version (`@0.1.0`) may follow the
    /// interface.
    pub function: String,
    /// One WAVE value per parameter, e.g. '{sku: "ab", quantity: 2}' (quote each
    /// for the shell).
    pub args: Vec<String>,
    /// How long the call may take, e.g. 10s, 2m.
    #[arg(long, default_value = "10s", value_parser = crate::app::parse_duration)]
    pub timeout: Duration,
}

/// `example:shop/orders.place-order` as a target of `component` in `app`.
fn target(app: &str, component: &str, function: &str) -> anyhow::Result<CallTarget> {
    let bad = || {
        anyhow::anyhow!(
            "'{function}' is not a function of an interface: write namespace:package/interface.function, e.g. example:shop/orders.place-order"
        )
    };
    let (namespace, rest) = function.split_once(':').ok_or_else(bad)?;
    let (package, rest) = rest.split_once('/').ok_or_else(bad)?;
    let (interface, name) = rest
        .split_once('#')
        .or_else(|| rest.rsplit_once('.'))
        .ok_or_else(bad)?;
    // A version names the interface but is not part of the subject.
    let interface = interface.split_once('@').map_or(interface, |(i, _)| i);
    if [namespace, package, interface, name]
        .iter()
        .any(|p| p.is_empty())
    {
        return Err(bad());
    }
    Ok(CallTarget {
        app: app.into(),
        component: component.into(),
        namespace: namespace.into(),
        package: package.into(),
        interface: interface.into(),
        function: name.into(),
    })
}

pub async fn run(
    args: CallArgs,
    client: async_nats::Client,
    lattice: &str,
    output: Output,
) -> anyhow::Result<()> {
    let target = target(&args.app, &args.component, &args.function)?;
    let subject = wire::cli_call_subject(lattice, &target);
    let call = format!(
        "{}:{}/{}.{}",
        target.namespace, target.package, target.interface, target.function
    );
    let header = |signature: &str| {
        let mut h = HeaderMap::new();
        let caller = CallHeader {
            host: CLI_CALLER.into(),
            app: args.app.clone(),
            component: CLI_CALLER.into(),
            link: CLI_CALLER.into(),
            signature: signature.into(),
            timeout_ms: args.timeout.as_millis().try_into().unwrap_or(u64::MAX),
            trace: None,
        };
        h.insert(headers::CALL, caller.encode().as_str());
        h
    };
    let (app, component) = (args.app.clone(), args.component.clone());
    let request = |h: HeaderMap, payload: Vec<u8>| {
        send(
            &client,
            subject.clone(),
            h,
            payload,
            args.timeout,
            &app,
            &component,
        )
    };
    let failed = |reply: &async_nats::Message| {
        let kind = reply
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::ERROR))
            .map(|k| k.as_str().to_owned())?;
        let text = String::from_utf8_lossy(&reply.payload).into_owned();
        let kind = CallErrorKind::parse(&kind).map_or(kind, |k| k.as_str().to_owned());
        Some(anyhow::anyhow!("{call} failed ({kind}): {text}"))
    };

    // The function's types, from the component itself.
    let mut describe = header("-");
    describe.insert(headers::DESCRIBE, "1");
    let reply = request(describe, Vec::new()).await?;
    if let Some(e) = failed(&reply) {
        return Err(e);
    }
    let signature: Signature = serde_json::from_slice(&reply.payload).map_err(|e| {
        anyhow::anyhow!("the host described {call} in a form this CLI cannot read: {e}")
    })?;

    let params: Vec<_> = signature.params.iter().map(|(_, t)| t.clone()).collect();
    if args.args.len() != params.len() {
        let names: Vec<String> = signature
            .params
            .iter()
            .map(|(n, t)| {
                format!(
                    "{n}: {}",
                    wire::signature(std::slice::from_ref(t), &[])
                        .trim_start_matches("func(")
                        .trim_end_matches(')')
                )
            })
            .collect();
        anyhow::bail!(
            "{call} takes {} argument{} ({}), {} given",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            names.join(", "),
            args.args.len()
        );
    }
    let values = signature
        .params
        .iter()
        .zip(&args.args)
        .map(|((name, ty), text)| {
            wave::parse(ty, text).map_err(|e| anyhow::anyhow!("argument '{name}': {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let payload = wire::encode_args(&params, &values)?;
    let fingerprint = wire::signature_fingerprint(&params, &signature.results);
    let reply = request(header(&fingerprint), payload).await?;
    if let Some(e) = failed(&reply) {
        return Err(e);
    }
    let results = wire::decode_results(&signature.results, &reply.payload)
        .map_err(|e| anyhow::anyhow!("the results of {call} did not decode: {e}"))?;
    let texts = signature
        .results
        .iter()
        .zip(&results)
        .map(|(ty, v)| wave::print(ty, v).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if output == Output::Json {
        return print_json(&texts);
    }
    for text in texts {
        outln!("{text}");
    }
    Ok(())
}

/// One request to the component; the error says what to do when nobody answers.
async fn send(
    client: &async_nats::Client,
    subject: String,
    h: HeaderMap,
    payload: Vec<u8>,
    timeout: Duration,
    app: &str,
    component: &str,
) -> anyhow::Result<async_nats::Message> {
    // A little longer than the callee's own deadline, so its answer arrives.
    let wait = timeout + Duration::from_secs(2);
    let sent = client.request_with_headers(subject, h, payload.into());
    match tokio::time::timeout(wait, sent).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
            anyhow::bail!(
                "no host runs component '{component}' of app '{app}' (see `lattice app status {app}`)"
            )
        }
        Ok(Err(e)) => anyhow::bail!("the call failed: {e}"),
        Err(_) => anyhow::bail!("no answer within {wait:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_named_with_their_interface() {
        for text in [
            "example:shop/orders.place-order",
            "example:shop/orders#place-order",
            "example:shop/orders@0.1.0.place-order",
            "example:shop/orders@0.1.0#place-order",
        ] {
            let t = target("shop", "business", text).unwrap();
            assert_eq!(
                (
                    t.namespace.as_str(),
                    t.package.as_str(),
                    t.interface.as_str()
                ),
                ("example", "shop", "orders"),
                "{text}"
            );
            assert_eq!(t.function, "place-order", "{text}");
        }
        for bad in [
            "place-order",
            "example:shop/orders",
            "example:shop/.f",
            ":a/b.c",
        ] {
            let e = target("shop", "business", bad).unwrap_err().to_string();
            assert!(
                e.contains("namespace:package/interface.function"),
                "{bad}: {e}"
            );
        }
    }
}
