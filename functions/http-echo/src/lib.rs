//! The `echo` handler as a `wasi:http/proxy` component, so that
//! `scripts/bench-http.sh` can run the same job under `wasmtime serve`:
//! it takes a binary-mode CloudEvent (`ce-*` headers and the data as the
//! body), checks the required attributes, and answers with the same event,
//! its `type` suffixed with `.echoed`, in binary mode. Anything else gets
//! 400 (structured and batched modes are not handled: the bench sends
//! binary mode only).

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Echo;

/// The attributes a CloudEvent must carry (CloudEvents 1.0 §3.1.1).
const REQUIRED: [&str; 4] = ["ce-specversion", "ce-id", "ce-source", "ce-type"];

/// Most bytes one `blocking-write-and-flush` takes.
const WRITE_CHUNK: usize = 4096;

impl Guest for Echo {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let (status, headers, body) = match echo(&request) {
            Ok((headers, body)) => (200, headers, body),
            Err(reason) => (
                400,
                vec![("content-type".to_owned(), b"text/plain".to_vec())],
                reason.into_bytes(),
            ),
        };
        respond(out, status, &headers, &body);
    }
}

type Headers = Vec<(String, Vec<u8>)>;

fn echo(request: &IncomingRequest) -> Result<(Headers, Vec<u8>), String> {
    let mut headers: Headers = Vec::new();
    let mut seen = [false; REQUIRED.len()];
    for (name, value) in request.headers().entries() {
        let name = name.to_ascii_lowercase();
        if let Some(i) = REQUIRED.iter().position(|r| *r == name) {
            seen[i] = true;
        }
        match name.as_str() {
            "ce-specversion" if value != b"1.0" => {
                return Err("unsupported ce-specversion".into())
            }
            "ce-type" => {
                let mut ty = value;
                ty.extend_from_slice(b".echoed");
                headers.push((name, ty));
            }
            n if n.starts_with("ce-") || n == "content-type" => headers.push((name, value)),
            _ => {}
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!("missing {}", REQUIRED[i]));
    }
    Ok((headers, read_body(request)?))
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|()| "body already taken")?;
    let stream = body.stream().map_err(|()| "body stream already taken")?;
    let mut data = Vec::new();
    // Ends with `closed` at the end of the body.
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        data.extend_from_slice(&chunk);
    }
    drop(stream);
    drop(body);
    Ok(data)
}

fn respond(out: ResponseOutparam, status: u16, headers: &Headers, body: &[u8]) {
    let Ok(fields) = Fields::from_list(headers) else {
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

wasi::http::proxy::export!(Echo);
