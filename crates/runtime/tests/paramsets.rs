//! One source of truth for parameter sets: the compiler's view of every
//! engine set is built from the engine (levels after bootstrapping, primes,
//! slots), plans compiled from it pass the runtime's checks, and the
//! compiler's built-in description of `n16-boot` agrees with the engine.

#[test]
fn compiler_view_matches_engine_for_every_named_set() {
    for lit in ckks::PARAM_SETS {
        let p = ckks::Params::named(lit.name).unwrap();
        let s = runtime::paramset::param_set(&p);
        assert_eq!(s.name, lit.name);
        assert_eq!(s.slots(), p.max_slots(), "{}", lit.name);
        assert_eq!(s.q_primes as usize, p.q.len(), "{}", lit.name);
        assert_eq!(s.p_primes as usize, p.p.len(), "{}", lit.name);
        match ckks::bootstrap::config_for(&p) {
            Some(cfg) => assert_eq!(
                s.l_eff as usize,
                ckks::bootstrap::levels_after(&p, &cfg),
                "{}",
                lit.name
            ),
            None => assert_eq!(s.l_eff as usize, p.max_level(), "{}", lit.name),
        }
        assert!((s.log_qp as f64 - p.log_qp()).abs() < 1.0, "{}", lit.name);
    }
}

#[test]
fn compiler_builtin_n16_boot_agrees_with_engine() {
    let engine = runtime::paramset::param_set(&ckks::Params::named("n16-boot").unwrap());
    let builtin = compiler::params::ParamSet::n16_estimate(9);
    assert_eq!(builtin.name, engine.name);
    assert_eq!(builtin.l_eff, engine.l_eff);
    assert_eq!(builtin.q_primes, engine.q_primes);
    assert_eq!(builtin.p_primes, engine.p_primes);
    assert_eq!(builtin.log_n, engine.log_n);
}

#[test]
fn auto_chooses_only_buildable_secure_sets() {
    let sets = runtime::paramset::bootstrappable_sets();
    assert!(!sets.is_empty());
    for s in &sets {
        let p = ckks::Params::named(&s.name).unwrap();
        assert!(p.security_bits().is_some_and(|b| b >= 128), "{}", s.name);
        assert!(ckks::bootstrap::config_for(&p).is_some());
    }
    // Committed measurements, not placeholders, for n16-boot.
    let n16 = sets.iter().find(|s| s.name == "n16-boot").unwrap();
    assert_ne!(n16.costs.source, "estimate");
}

/// The compiler prices rotation keys with `ParamSet::galois_key_bytes_at`
/// (it cannot depend on the engine); the engine's keys restricted to a
/// level must hold exactly that many bytes, at every level of a small set
/// (leveled and bootstrappable), so `residue analyze`'s key memory is the
/// runtime's.
#[test]
fn compiler_key_bytes_equal_engine_key_sizes_at_every_level() {
    for name in ["insecure-n12", "insecure-boot-n12-l9"] {
        let p = ckks::Params::named(name).unwrap();
        let s = runtime::paramset::param_set(&p);
        let mut kg = ckks::KeyGenerator::with_seed(p.clone(), [3u8; 32]);
        let sk = kg.secret_key();
        let g = ckks::keys::rotation_element(&p, 1);
        for level in 0..=p.max_level() {
            let keys = kg.galois_keys_at_levels(&sk, &[(g, level)]).unwrap();
            assert_eq!(keys.level_of(g), Some(level), "{name} level {level}");
            assert_eq!(
                keys.size_bytes() as u64,
                s.galois_key_bytes_at(level as u32),
                "{name}: a rotation key at level {level}"
            );
        }
        assert_eq!(
            s.galois_key_bytes(),
            s.galois_key_bytes_at(p.max_level() as u32),
            "{name}"
        );
    }
}
