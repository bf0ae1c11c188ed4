//! Go text/template with Helm's and Sprig's functions, in Rust (being written).
