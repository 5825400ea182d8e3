//! An HTTP component calling the greeter through `{{name}}:greeter/greet`:
//! `GET /?name=N` answers the greeter's greeting for N (`world` without one).

wit_bindgen::generate!({ path: "../wit", world: "api" });

use wasmcloud_component::http;
use {{crate}}::greeter::greet;

struct Api;

http::export!(Api);

impl http::Server for Api {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let who = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
            .unwrap_or("world")
            .to_string();
        Ok(http::Response::new(format!("{}\n", greet::hello(&who))))
    }
}
