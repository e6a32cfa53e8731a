//! `emberline-sim`.
fn main() {}
