//! `residue`: one binary for every step of encrypted CNN inference.

fn main() {}
