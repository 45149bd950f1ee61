fn main() {
    eprintln!("spotter-calibrate: not implemented yet");
    std::process::exit(2);
}
