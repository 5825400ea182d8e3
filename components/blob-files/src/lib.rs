//! A small HTTP file store on `wasi:blobstore@0.2.0-draft`, for the built-in
//! blobstores (`manifests/files.yaml`) and their tests. Names in the path are
//! percent-decoded; every answer is `text/plain`.
//!
//! | request | answer |
//! |---------|--------|
//! | `PUT /<container>/<object>` with a body | creates the container if needed, stores the body: `201 stored <n> bytes\n` |
//! | `PUT ...?style=wasmcloud` | the same, written as wasmCloud's blobstore example writes: `finish` while the body's output stream is still alive |
//! | `PUT ...?style=twice` | the same, the first half of the body written through one `write-body` stream and the rest through a second `write-body` of the same value, as wasmCloud's host allows |
//! | `PUT ...?style=unnamed` | writes the body and finishes the value without `write-data` naming an object (wasmCloud's host answers `ok`): `201 finished unnamed\n`, nothing stored |
//! | `PUT ...?style=abandon` | writes the body, then drops the value (stream still alive) without `finish`: `201 abandoned\n`, nothing stored |
//! | `GET /<container>/<object>` | `200` with the object's bytes; `?start=S&end=E` reads bytes `S..=E` |
//! | `GET /<container>/<object>?info` | `200 <container>/<object> <size> bytes\n` |
//! | `GET /<container>` | `200`, the object names sorted, one per line |
//! | `POST /<container>/<object>?copy-to=<c>/<o>` (or `move-to`) | `200 copied\n` / `200 moved\n` |
//! | `DELETE /<container>/<object>` | `200 deleted\n` |
//! | `DELETE /<container>` | deletes the container and its objects: `200 deleted\n` |
//!
//! A missing container or object is `404 missing: <the store's message>\n`; any
//! other failure of the store is `500 error: <message>\n`.

mod bindings {
    #![allow(missing_docs, clippy::all)]
    wit_bindgen::generate!({
        inline: "
            package lattice:blob-files;
            world blob-files {
                import wasi:blobstore/blobstore@0.2.0-draft;
            }
        ",
        path: ["../../wit/deps/io-0.2.1", "../../wit/deps/blobstore"],
        world: "lattice:blob-files/blob-files",
        generate_all,
    });
}

use bindings::wasi::blobstore::blobstore;
use bindings::wasi::blobstore::container::Container;
use bindings::wasi::blobstore::types::{IncomingValue, ObjectId, OutgoingValue};
use bindings::wasi::io::streams::OutputStream;
use http_support::{decode, Query, Reply};
use wasi::http::types::{IncomingBody, IncomingRequest, Method, ResponseOutparam};

/// The largest body `PUT` accepts.
const MAX_BODY: usize = 16 << 20;

struct Files;

wasi::http::proxy::export!(Files);

impl wasi::exports::http::incoming_handler::Guest for Files {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let reply = route(&request).unwrap_or_else(|reply| reply);
        reply.send(response_out);
    }
}

fn route(request: &IncomingRequest) -> Result<Reply, Reply> {
    let path_query = request.path_with_query().unwrap_or_default();
    let (path, query) = path_query.split_once('?').unwrap_or((&path_query, ""));
    let query = Query::parse(query);
    let parts: Vec<String> = path
        .trim_start_matches('/')
        .splitn(2, '/')
        .filter(|p| !p.is_empty())
        .map(decode)
        .collect();
    match (request.method(), parts.as_slice()) {
        (Method::Put, [container, object]) => {
            let body = read_body(request)?;
            let c = match blobstore::container_exists(container).map_err(Reply::error)? {
                true => blobstore::get_container(container),
                false => blobstore::create_container(container),
            }
            .map_err(Reply::error)?;
            match query.get("style") {
                Some("wasmcloud") => write_wasmcloud_style(&c, object, &body)?,
                Some("twice") => write_through_two_streams(&c, object, &body)?,
                Some("unnamed") => {
                    finish_unnamed(&body)?;
                    return Ok(Reply::new(201, "finished unnamed\n"));
                }
                Some("abandon") => {
                    abandon(&c, object, &body)?;
                    return Ok(Reply::new(201, "abandoned\n"));
                }
                _ => write(&c, object, &body)?,
            }
            Ok(Reply::new(201, format!("stored {} bytes\n", body.len())))
        }
        (Method::Get, [container, object]) => {
            let c = open(container)?;
            if query.get("info").is_some() {
                let info = c.object_info(object).map_err(store_error)?;
                return Ok(Reply::ok(format!(
                    "{}/{} {} bytes\n",
                    info.container, info.name, info.size
                )));
            }
            let number = |name: &str, default: u64| match query.get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| Reply::bad_request(format!("`{name}` must be a number"))),
            };
            let (start, end) = (number("start", 0)?, number("end", u64::MAX)?);
            let value = c.get_data(object, start, end).map_err(store_error)?;
            let data = IncomingValue::incoming_value_consume_sync(value).map_err(Reply::error)?;
            Ok(Reply::ok(data))
        }
        (Method::Get, [container]) => {
            let c = open(container)?;
            let names = c.list_objects().map_err(Reply::error)?;
            let mut all = Vec::new();
            loop {
                let (page, done) = names.read_stream_object_names(100).map_err(Reply::error)?;
                all.extend(page);
                if done {
                    break;
                }
            }
            all.sort();
            Ok(Reply::ok(
                all.iter().map(|n| format!("{n}\n")).collect::<String>(),
            ))
        }
        (Method::Post, [container, object]) => {
            let (dest, moving) = match (query.get("copy-to"), query.get("move-to")) {
                (Some(dest), None) => (dest, false),
                (None, Some(dest)) => (dest, true),
                _ => return Err(Reply::bad_request("give one of `copy-to` or `move-to`")),
            };
            let Some((dest_container, dest_object)) = dest.split_once('/') else {
                return Err(Reply::bad_request(
                    "the destination is <container>/<object>",
                ));
            };
            let src = ObjectId {
                container: container.clone(),
                object: object.clone(),
            };
            let dest = ObjectId {
                container: dest_container.to_string(),
                object: dest_object.to_string(),
            };
            if moving {
                blobstore::move_object(&src, &dest).map_err(store_error)?;
                Ok(Reply::ok("moved\n"))
            } else {
                blobstore::copy_object(&src, &dest).map_err(store_error)?;
                Ok(Reply::ok("copied\n"))
            }
        }
        (Method::Delete, [container, object]) => {
            open(container)?
                .delete_object(object)
                .map_err(Reply::error)?;
            Ok(Reply::ok("deleted\n"))
        }
        (Method::Delete, [container]) => {
            blobstore::delete_container(container).map_err(Reply::error)?;
            Ok(Reply::ok("deleted\n"))
        }
        _ => Err(Reply::not_found()),
    }
}

fn open(container: &str) -> Result<Container, Reply> {
    blobstore::get_container(container).map_err(store_error)
}

/// "does not exist" is a 404, anything else a 500.
fn store_error(message: String) -> Reply {
    if message.contains("does not exist") {
        Reply::new(404, format!("missing: {message}\n"))
    } else {
        Reply::error(message)
    }
}

/// Store `body` as `object`, the way wasmCloud's examples do: name the object with
/// `write-data`, write the body, then `finish`.
fn write(container: &Container, object: &str, body: &[u8]) -> Result<(), Reply> {
    let value = OutgoingValue::new_outgoing_value();
    container.write_data(object, &value).map_err(Reply::error)?;
    let stream = value
        .outgoing_value_write_body()
        .map_err(|()| Reply::error("the value's body was already taken"))?;
    for chunk in body.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| Reply::error(format!("writing the value: {e:?}")))?;
    }
    drop(stream);
    OutgoingValue::finish(value).map_err(Reply::error)
}

/// Store `body` as wasmCloud's own blobstore example does: `write-body`, then
/// `write-data`, write, and `finish` while the output stream is still alive (it is
/// dropped only after).
fn write_wasmcloud_style(container: &Container, object: &str, body: &[u8]) -> Result<(), Reply> {
    let value = OutgoingValue::new_outgoing_value();
    let stream = value
        .outgoing_value_write_body()
        .map_err(|()| Reply::error("the value's body was already taken"))?;
    container.write_data(object, &value).map_err(Reply::error)?;
    for chunk in body.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| Reply::error(format!("writing the value: {e:?}")))?;
    }
    OutgoingValue::finish(value).map_err(Reply::error)?;
    drop(stream);
    Ok(())
}

/// Store `body` through two `write-body` streams of one value: the first half
/// through the first (dropped), the rest through the second, still alive at
/// `finish`.
fn write_through_two_streams(
    container: &Container,
    object: &str,
    body: &[u8],
) -> Result<(), Reply> {
    let value = OutgoingValue::new_outgoing_value();
    container.write_data(object, &value).map_err(Reply::error)?;
    let (first, rest) = body.split_at(body.len() / 2);
    let stream = write_body(&value, first)?;
    drop(stream);
    let stream = write_body(&value, rest)?;
    OutgoingValue::finish(value).map_err(Reply::error)?;
    drop(stream);
    Ok(())
}

/// Write `body` into a value and finish it without naming an object.
fn finish_unnamed(body: &[u8]) -> Result<(), Reply> {
    let value = OutgoingValue::new_outgoing_value();
    let stream = write_body(&value, body)?;
    drop(stream);
    OutgoingValue::finish(value).map_err(Reply::error)
}

/// Ask `value` for a body stream and write `data` through it.
fn write_body(value: &OutgoingValue, data: &[u8]) -> Result<OutputStream, Reply> {
    let stream = value
        .outgoing_value_write_body()
        .map_err(|()| Reply::error("the value's body was already taken"))?;
    for chunk in data.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| Reply::error(format!("writing the value: {e:?}")))?;
    }
    Ok(stream)
}

/// Write `body` for `object`, then drop the value while its stream is alive, never
/// calling `finish`.
fn abandon(container: &Container, object: &str, body: &[u8]) -> Result<(), Reply> {
    let value = OutgoingValue::new_outgoing_value();
    let stream = value
        .outgoing_value_write_body()
        .map_err(|()| Reply::error("the value's body was already taken"))?;
    container.write_data(object, &value).map_err(Reply::error)?;
    stream
        .blocking_write_and_flush(body)
        .map_err(|e| Reply::error(format!("writing the value: {e:?}")))?;
    drop(value);
    drop(stream);
    Ok(())
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Reply> {
    let body = request
        .consume()
        .map_err(|()| Reply::error("the request body was already taken"))?;
    let stream = body
        .stream()
        .map_err(|()| Reply::error("the request body stream was already taken"))?;
    let mut data = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                data.extend_from_slice(&chunk);
                if data.len() > MAX_BODY {
                    return Err(Reply::new(413, "the body is over 16 MiB\n"));
                }
            }
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(e) => return Err(Reply::error(format!("reading the body: {e:?}"))),
        }
    }
    drop(stream);
    IncomingBody::finish(body);
    Ok(data)
}
