//! Decoded pixels (and the resized model input) equal PIL's, so LiteRT goldens made from
//! PIL-decoded images apply to spotter's own decode path. JPEG is the interesting case: the
//! `image` crate's decoder differs from libjpeg-turbo by up to 3 levels; ours must not.

mod common;

use common::*;
use spotter::vision::image::{decode, Resizer};

#[test]
fn decode_and_resize_match_pil_for_every_golden_image() {
    let golden = read_json(&repo().join("tests/goldens/coral/decode.json"));
    let mut checked = 0;
    let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
    for (_, v) in golden["images"].as_object().unwrap() {
        entries.push((v["path"].as_str().unwrap().to_string(), v.clone()));
    }
    for (_, v) in golden["shared_only"].as_object().unwrap() {
        let rel = v["path"]
            .as_str()
            .unwrap()
            .trim_start_matches("shared/")
            .to_string();
        entries.push((shared().join(rel).display().to_string(), v.clone()));
    }
    for (path, v) in entries {
        let path = if path.starts_with('/') || path.starts_with("..") {
            std::path::PathBuf::from(path)
        } else {
            repo().join(path)
        };
        let img = decode(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sha256_hex(&img.data),
            v["rgb8_sha256"].as_str().unwrap(),
            "{}",
            path.display()
        );
        let r = Resizer::new(img.width, img.height, 300, 300).unwrap();
        let mut out = vec![0u8; 300 * 300 * 3];
        r.resize(&img.data, &mut out);
        assert_eq!(
            sha256_hex(&out),
            v["resized_300x300_sha256"].as_str().unwrap(),
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} images checked");
}

#[test]
fn truncated_jpeg_is_an_error_not_a_gray_image() {
    let bytes = std::fs::read(repo().join("models/samples/rocket.jpg")).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let e = spotter::vision::image::decode_bytes(cut).unwrap_err();
    assert!(e.contains("truncated"), "{e}");
    for garbage in [&b"\xff\xd8\xff\xe0garbage"[..], &[0xff, 0xd8], &[]] {
        assert!(spotter::vision::image::decode_bytes(garbage).is_err());
    }
}
