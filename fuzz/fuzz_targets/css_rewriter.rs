//! The streaming CSS rewriter: no panic on any bytes, the output does not depend on chunk
//! boundaries, and rewriting is idempotent (a URL already under the prefix stays as it is, so
//! a second pass changes nothing).
#![no_main]

use bloud_proxy::embed::CssStream;
use bloud_proxy_fuzz::{assert_same, rewriter, run_stream, Chunked};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = Chunked::parse(data) else {
        return;
    };
    let rw = rewriter(input.flags & !4);
    let make = || CssStream::new(rw.clone());
    let write = |s: &mut CssStream, c: &[u8]| s.write(c).to_vec();
    let finish = |s: &mut CssStream| s.finish().to_vec();

    let one_shot = run_stream(make, write, finish, &[input.body]);
    let pieces = input.pieces();
    let chunked = run_stream(make, write, finish, &pieces);
    assert_same(&one_shot, &chunked, &pieces);

    let twice = run_stream(make, write, finish, &[&one_shot]);
    if twice != one_shot {
        panic!(
            "CSS rewrite is not idempotent\n once:  {:?}\n twice: {:?}",
            String::from_utf8_lossy(&one_shot),
            String::from_utf8_lossy(&twice)
        );
    }
});
