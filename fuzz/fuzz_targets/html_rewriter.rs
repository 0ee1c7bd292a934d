//! The streaming HTML rewriter: no panic on any bytes, and the output does not depend on where
//! the body is cut into chunks (an upstream decides the chunking, not the page).
#![no_main]

use bloud_proxy::embed::HtmlStream;
use bloud_proxy_fuzz::{assert_same, origins, rewriter, run_stream, Chunked};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = Chunked::parse(data) else {
        return;
    };
    let rw = rewriter(input.flags);
    let origins = origins(input.flags);
    let charset = match (input.flags >> 4) & 3 {
        0 => None,
        1 => Some("utf-8"),
        2 => Some("iso-8859-1"),
        _ => Some("utf-16"),
    };
    let make = || HtmlStream::new(&rw, &origins, charset);
    let write = |s: &mut HtmlStream, c: &[u8]| s.write(c).to_vec();
    let finish = |s: &mut HtmlStream| s.finish().to_vec();

    let one_shot = run_stream(make, write, finish, &[input.body]);
    let pieces = input.pieces();
    let chunked = run_stream(make, write, finish, &pieces);
    assert_same(&one_shot, &chunked, &pieces);
});
