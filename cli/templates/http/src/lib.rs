//! {{name}}: an HTTP component. Every request is answered with a greeting and the
//! path it asked for. Run `lattice dev` and edit the text below: each save is served.

use wasmcloud_component::http;

struct Component;

http::export!(Component);

impl http::Server for Component {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let path = request.uri().path().to_string();
        Ok(http::Response::new(format!("Hello from {{name}}! You asked for {path}\n")))
    }
}
