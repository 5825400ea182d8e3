//! `/fetch?url=U`: an outgoing `wasi:http` GET. Answers `status=<code>\n<body>`, or
//! `502 error: <detail>\n` when the host refuses the request or it fails.

use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, IncomingBody, Method, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

use http_support::{Query, Reply};

pub fn fetch(query: &Query) -> Reply {
    let url = match query.required("url") {
        Ok(url) => url,
        Err(reply) => return reply,
    };
    match get(url) {
        Ok((status, body)) => {
            let mut answer = format!("status={status}\n").into_bytes();
            answer.extend(body);
            Reply::ok(answer)
        }
        Err(detail) => Reply::new(502, format!("error: {detail}\n")),
    }
}

fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("url {url:?} has no scheme"))?;
    let (authority, path_with_query) = match rest.find(['/', '?']) {
        Some(at) if rest[at..].starts_with('/') => (&rest[..at], rest[at..].to_string()),
        Some(at) => (&rest[..at], format!("/{}", &rest[at..])),
        None => (rest, "/".to_string()),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };

    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&Method::Get)
        .map_err(|()| "method refused")?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "scheme refused")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("authority {authority:?} refused"))?;
    request
        .set_path_with_query(Some(&path_with_query))
        .map_err(|()| format!("path {path_with_query:?} refused"))?;

    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("response not ready after its pollable fired")?
        .map_err(|()| "response already taken")?
        .map_err(|e| format!("{e:?}"))?;

    let status = response.status();
    let body = response.consume().map_err(|()| "body already taken")?;
    let stream = body.stream().map_err(|()| "body stream already taken")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading body: {}", e.to_debug_string()))
            }
        }
    }
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok((status, bytes))
}
