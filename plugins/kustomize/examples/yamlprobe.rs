//! Developer tool: print how the YAML parser reads a file, as JSON (to compare with kustomize's reading).
fn main() {
    let path = std::env::args().nth(1).expect("FILE");
    let text = std::fs::read_to_string(path).expect("read");
    let value = tether_kustomize::loader::parse_yaml(&text).expect("yaml");
    println!("{value}");
}
