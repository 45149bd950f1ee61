//! MJPEG over HTTP: the response head parser, the boundary parameter and the incremental
//! multipart parser fed in arbitrary chunk sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spotter::capture::mjpeg::{
    boundary_from_content_type, parse_response_head, Event, MultipartParser,
};

fuzz_target!(|data: &[u8]| {
    let _ = parse_response_head(data);
    if let Ok(text) = std::str::from_utf8(&data[..data.len().min(200)]) {
        let _ = boundary_from_content_type(text);
    }
    // First byte: chunk size; the rest is the stream after the response head.
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut parser = MultipartParser::with_max_part("frame", 1 << 16);
    let mut consumed = 0usize;
    for piece in body.chunks(chunk) {
        parser.push(piece);
        while let Some(ev) = parser.next_event() {
            match ev {
                Event::Part(p) => consumed += p.body.len(),
                Event::Skipped { bytes, .. } => consumed += bytes,
                Event::End => {}
            }
        }
        assert!(parser.buffered() <= body.len());
    }
    assert!(consumed <= body.len());
});
