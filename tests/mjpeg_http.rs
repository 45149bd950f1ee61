//! MjpegSource against a tiny MJPEG server on 127.0.0.1: frames, a corrupt part, the server
//! dropping the connection (→ Disconnected), reconnection, and HTTP errors at open.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use spotter::capture::decode::encode_jpeg;
use spotter::capture::mjpeg::{MjpegConfig, MjpegSource};
use spotter::capture::{CaptureError, Source};
use spotter::vision::image::RgbImage;

fn solid(w: usize, h: usize, rgb: [u8; 3]) -> Vec<u8> {
    let img = RgbImage {
        width: w,
        height: h,
        data: rgb.iter().copied().cycle().take(w * h * 3).collect(),
    };
    encode_jpeg(&img, 95)
}

fn read_request(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 8192 {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Write `data` in awkward pieces so the client sees parts split across reads.
fn write_split(s: &mut TcpStream, data: &[u8]) {
    for piece in data.chunks(777) {
        if s.write_all(piece).is_err() {
            return;
        }
        let _ = s.flush();
    }
}

fn part(body: &[u8], with_len: bool) -> Vec<u8> {
    let mut v = b"--spotterframe\r\nContent-Type: image/jpeg\r\n".to_vec();
    if with_len {
        v.extend(format!("Content-Length: {}\r\n", body.len()).into_bytes());
    }
    v.extend(b"\r\n");
    v.extend(body);
    v.extend(b"\r\n");
    v
}

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=spotterframe\r\nCache-Control: no-cache\r\n\r\n";

fn assert_colour(img: &RgbImage, rgb: [u8; 3]) {
    let c = &img.data[(img.height / 2 * img.width + img.width / 2) * 3..][..3];
    for i in 0..3 {
        assert!(
            c[i].abs_diff(rgb[i]) <= 6,
            "pixel {c:?}, expected ≈ {rgb:?}"
        );
    }
}

#[test]
fn frames_corrupt_part_disconnect_and_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let red = solid(64, 48, [220, 20, 20]);
    let blue = solid(64, 48, [20, 20, 220]);
    let server = {
        let (red, blue) = (red.clone(), blue.clone());
        thread::spawn(move || {
            // Connection 1: three frames (with Content-Length), one corrupt part, then hang up.
            let (mut s, _) = listener.accept().expect("accept 1");
            let req = read_request(&mut s);
            assert!(req.starts_with("GET /stream HTTP/1.1\r\n"), "{req}");
            assert!(req.contains(&format!("Host: 127.0.0.1:{port}")), "{req}");
            let mut data = HEAD.to_vec();
            for _ in 0..3 {
                data.extend(part(&red, true));
            }
            data.extend(part(b"\xff\xd8 this is not a jpeg", true));
            write_split(&mut s, &data);
            thread::sleep(Duration::from_millis(100));
            drop(s);
            // Connection 2: frames without Content-Length (boundary scan), then close.
            let (mut s, _) = listener.accept().expect("accept 2");
            read_request(&mut s);
            let mut data = HEAD.to_vec();
            data.extend(b"preamble junk\r\n");
            for _ in 0..2 {
                data.extend(part(&blue, false));
            }
            data.extend(b"--spotterframe\r\n");
            write_split(&mut s, &data);
            thread::sleep(Duration::from_millis(300));
        })
    };

    let cfg = MjpegConfig {
        reconnect_delay: Duration::from_millis(50),
        ..MjpegConfig::default()
    };
    let url = format!("http://127.0.0.1:{port}/stream");
    let mut src = MjpegSource::open_with(&url, cfg).expect("open");
    assert_eq!(src.name(), url);
    for seq in 0..3 {
        let f = src.next_frame().expect("frame").expect("some");
        assert_eq!(f.seq, seq);
        assert_eq!((f.image.width, f.image.height), (64, 48));
        assert_colour(&f.image, [220, 20, 20]);
    }
    match src.next_frame() {
        Err(CaptureError::Corrupt { source_name, .. }) => assert_eq!(source_name, url),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match src.next_frame() {
        Err(CaptureError::Disconnected { what, .. }) => assert!(what.contains("closed"), "{what}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // The next call reconnects.
    for seq in 3..5 {
        let f = src
            .next_frame()
            .expect("frame after reconnect")
            .expect("some");
        assert_eq!(f.seq, seq, "sequence continues across reconnects");
        assert_colour(&f.image, [20, 20, 220]);
    }
    server.join().expect("server thread");
    // Server gone for good: reconnect attempts report Disconnected, not a panic or a hang.
    match src.next_frame() {
        Err(CaptureError::Disconnected { .. }) => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    match src.next_frame() {
        Err(CaptureError::Disconnected { what, .. }) => {
            assert!(what.contains("reconnect"), "{what}")
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

#[test]
fn http_errors_at_open_name_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let (mut s, _) = listener.accept().expect("accept");
        read_request(&mut s);
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8");
    });
    let url = format!("http://127.0.0.1:{port}/nope");
    let err = MjpegSource::open(&url).expect_err("404");
    assert!(matches!(err, CaptureError::Open { .. }));
    let text = err.to_string();
    assert!(text.contains(&url) && text.contains("404"), "{text}");
    let err = MjpegSource::open(&url).expect_err("not multipart");
    assert!(err.to_string().contains("multipart"), "{err}");
    server.join().expect("server");

    // Nothing listens on that port any more.
    let err = MjpegSource::open(&url).expect_err("refused");
    assert!(matches!(err, CaptureError::Open { .. }), "{err}");
}
