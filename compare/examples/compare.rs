//! `cargo run --release -p boltensor-compare --example compare -- [OUT_DIR] [SEED] [DOCS_MD] [CLAIMS_MD]`:
//! the comparison, with the demand sweep, without building the whole `boltensor` binary.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "target/bench-compare".into());
    let mut config = boltensor_compare::Config::default();
    if let Some(seed) = args.next().and_then(|s| s.parse().ok()) {
        config.seed = seed;
    }
    let report = boltensor_compare::run(&config);
    let sweep =
        boltensor_compare::sweep::sweep(&config, &boltensor_compare::sweep::SweepConfig::default());
    boltensor_compare::report::write(&report, Some(&sweep), std::path::Path::new(&out))?;
    if let Some(docs) = args.next() {
        boltensor_compare::report::write_docs(&report, Some(&sweep), std::path::Path::new(&docs))?;
    }
    if let Some(claims) = args.next() {
        boltensor_compare::report::write_claims(
            &sweep,
            config.demand_rps,
            std::path::Path::new(&claims),
        )?;
    }
    print!("{}", boltensor_compare::report::markdown(&report, "img"));
    Ok(())
}
