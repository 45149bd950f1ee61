fn main() {
    println!("spotter");
}
