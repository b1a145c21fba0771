//! Full-RNS CKKS homomorphic encryption.
