//! The claims docs/benchmarks.md makes, asserted on the simulation's output (never on timing).

use boltensor_compare::{run, Config, Report, COLLUSION_PAYS};

fn small() -> Config {
    Config {
        epochs: 60,
        zero_demand_epochs: 10,
        collusion_sweep: vec![0.2, 0.4, 0.6],
        ..Config::default()
    }
}

fn report() -> Report {
    run(&small())
}

#[test]
fn same_seed_same_report_other_seed_other_report() {
    let a = serde_json::to_string(&report()).expect("json");
    let b = serde_json::to_string(&report()).expect("json");
    assert_eq!(a, b);
    let c = serde_json::to_string(&run(&Config { seed: 7, ..small() })).expect("json");
    assert_ne!(a, c);
}

#[test]
fn lightning_every_client_sat_ends_at_a_miner_a_fee_the_pool_or_a_refund() {
    let r = report();
    let a = &r.lightning_accounts;
    assert_eq!(
        a.client_held_msat,
        a.client_settled_msat + a.client_refunded_msat
    );
    assert_eq!(
        a.client_settled_msat + a.challenge_settled_msat,
        a.miners_per_request_msat + a.coordinator_fees_msat + a.pool_in_msat
    );
    assert_eq!(
        a.pool_in_msat,
        a.pool_to_miners_msat + a.pool_to_validators_msat + a.pool_left_msat
    );
    assert!(a.client_refunded_msat > 0, "failed requests are refunded");
    assert_eq!(
        (r.lightning.client_spend_sats * 1000.0).round() as u64,
        a.client_settled_msat
    );
}

#[test]
fn token_emission_and_pool_are_accounted() {
    let r = report();
    let a = &r.token_accounts;
    let paid = a.alpha_to_owner
        + a.alpha_to_miners
        + a.alpha_to_validators
        + a.alpha_to_root
        + a.alpha_burned_by_owner
        + a.alpha_unallocated;
    assert!((a.alpha_minted - paid).abs() < 1e-6 * a.alpha_minted);
    assert!(
        a.alpha_unallocated.abs() < 1e-3 * a.alpha_minted,
        "{}",
        a.alpha_unallocated
    );
    // 60 epochs of 360 blocks of 1 alpha: 18 % to the owner.
    assert!((a.alpha_minted - 60.0 * 360.0).abs() < 1e-6);
    assert!((a.alpha_to_owner / a.alpha_minted - 11_796.0 / 65_535.0).abs() < 1e-9);
    let tao = a.pool_tao_start
        + a.tao_injected
        + a.tao_excess_buys
        + a.tao_burned_for_registration
        + a.tao_buybacks
        - a.tao_sold_out
        - a.tao_to_root;
    assert!((tao - a.pool_tao_end).abs() < 1e-6 * a.pool_tao_end);
}

#[test]
fn bad_miner_earns_less_than_honest_ones_in_both_designs() {
    let r = report();
    for m in [&r.token, &r.lightning] {
        assert!(m.bad_miner_income_vs_honest_after_switch < 0.2, "{m:?}");
        assert!(
            m.epochs_to_punish_bad_miner.is_some_and(|e| e <= 2),
            "{m:?}"
        );
        assert!(m.quality_income_spearman > 0.5, "{m:?}");
    }
}

#[test]
fn commit_reveal_makes_weight_copying_earn_less_than_honest_validation() {
    let r = report();
    let point = |on: bool| {
        r.copier
            .iter()
            .find(|p| p.commit_reveal == on)
            .expect("both runs")
            .clone()
    };
    let (off, on) = (point(false), point(true));
    println!("copier per stake vs honest: off {off:?}, on {on:?}");
    // Copying this epoch's public weights earns what honest validation earns (or more); copying only
    // last epoch's consensus earns less, in both designs.
    for (off, on) in [(off.token, on.token), (off.lightning, on.lightning)] {
        assert!(on < off, "off {off}, on {on}");
        assert!(on < 1.0 && off > 0.95, "off {off}, on {on}");
    }
    // In the Lightning design honest validators pay for challenges; the copier does not.
    assert!(r.lightning.copier_net_per_pct_stake_sats > r.lightning.honest_net_per_pct_stake_sats);
}

#[test]
fn collusion_pays_only_with_a_stake_majority() {
    let r = report();
    for p in &r.collusion {
        let pays = [p.token_gain, p.lightning_gain].map(|g| g > COLLUSION_PAYS);
        if p.stake < 0.5 {
            assert_eq!(pays, [false, false], "{p:?}");
        } else {
            assert_eq!(pays, [true, true], "{p:?}");
        }
    }
}

#[test]
fn money_flows_as_each_design_says() {
    let r = report();
    // Lightning: clients' sats reach miners, less the routing fee; the token design pays miners
    // by emission whether or not anyone pays, and clients' money barely reaches them.
    assert!(
        r.lightning.client_to_miners_share > 0.85,
        "{}",
        r.lightning.client_to_miners_share
    );
    assert!(
        r.token.client_to_miners_share < 0.1,
        "{}",
        r.token.client_to_miners_share
    );
    assert!(
        r.token.miner_income_zero_demand_sats > 10.0 * r.lightning.miner_income_zero_demand_sats
    );
    assert!(r.lightning_spendable.p50_s < 1.0);
    assert!(r.token_spendable.p50_s > 600.0);
    assert!(r.token.emission_value_sats > 0.0 && r.lightning.emission_value_sats == 0.0);
    assert!(r.token.entry_returned_mean_sats == 0.0 && r.lightning.entry_returned_mean_sats > 0.0);
    assert!(r.token.income_cv_median < r.lightning.income_cv_median);
}

/// The CI check: docs/benchmarks.md's generated sections (the default run and the demand sweep), its
/// docs/img plots and docs/counterargument.md's per-claim figures are what the default parameters give from the committed inputs
/// (docs/data/bench-paid.json included). Regenerate them with
/// `boltensor bench compare --sweep --docs docs/benchmarks.md`.
#[test]
fn the_committed_comparison_is_what_the_default_run_gives() {
    let docs = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/benchmarks.md"
    ));
    let config = Config::default();
    let sweep = boltensor_compare::sweep::sweep(&config, &Default::default());
    let mut differ = boltensor_compare::report::check_docs(&run(&config), Some(&sweep), docs)
        .expect("docs/benchmarks.md is readable");
    let claims = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/counterargument.md"
    ));
    differ.extend(
        boltensor_compare::report::check_claims(&sweep, config.demand_rps, claims)
            .expect("docs/counterargument.md is readable"),
    );
    assert!(
        differ.is_empty(),
        "the committed figures are not the default run's; regenerate with \
         `boltensor bench compare --sweep --docs docs/benchmarks.md --claims docs/counterargument.md`:\n{}",
        differ.join("\n")
    );
}

/// Every input is a parameter: a config file's or `--set`'s names are checked, values applied.
#[test]
fn parameters_load_by_name_and_unknown_ones_are_refused() {
    let c = Config::load(None, &["demand_rps=40".into(), "price_sats=5".into()]).expect("loads");
    assert_eq!((c.demand_rps, c.price_sats), (40.0, 5.0));
    assert_eq!(c.seed, Config::default().seed);
    let e = Config::load(None, &["demand=40".into()]).expect_err("unknown");
    assert!(
        e.contains("unknown parameter `demand`") && e.contains("demand_rps"),
        "{e}"
    );
    let e = Config::load(None, &["demand_rps=lots".into()]).expect_err("not a number");
    assert!(e.contains("the parameters"), "{e}");
    // The Lightning inputs come from bench paid's JSON, not from code.
    let m = boltensor_compare::Measured::committed();
    assert!(m.settled_rps_one_miner > 0.0 && m.payment_p50_ms > 0.0);
    assert_eq!(
        Config::default().miner_capacity_rps,
        m.settled_rps_one_miner
    );
}

#[test]
fn subtensor_mechanisms_move_the_token_side_the_way_subtensor_says() {
    let base = small();
    let r = run(&Config {
        collusion_sweep: Vec::new(),
        ..base.clone()
    });
    let a = &r.token_accounts;
    // Root proportion: its part of the validators' half goes to root stakers.
    assert!(a.root_proportion_start > 0.0 && a.root_proportion_start < 0.2);
    let validators_half = (a.alpha_minted - a.alpha_to_owner) / 2.0;
    let root_share = a.alpha_to_root / validators_half;
    assert!(
        (root_share - a.root_proportion_start).abs() < 0.01,
        "{root_share} vs {}",
        a.root_proportion_start
    );
    // The injection cap: with root proportion ~6 % of 1 alpha, most TAO emission buys alpha.
    assert!(a.tao_excess_buys > a.tao_injected, "{a:?}");
    // Variants, one mechanism at a time.
    let by = |set: &str| {
        r.token_variants
            .iter()
            .find(|v| v.set == set)
            .unwrap_or_else(|| panic!("variant {set}"))
    };
    let burn = by("owner_burn_share=0.5");
    let ratio = burn.metrics.miner_income_sats / r.token.miner_income_sats;
    assert!((0.45..0.55).contains(&ratio), "owner burn: {ratio}");
    assert!(
        (burn.accounts.emission_share_end / a.emission_share_end - 0.5).abs() < 0.01,
        "MinerBurned halves the weight: {} vs {}",
        burn.accounts.emission_share_end,
        a.emission_share_end
    );
    let no_root = by("root_tao=0");
    assert_eq!(no_root.accounts.alpha_to_root, 0.0);
    assert!(no_root.metrics.validator_income_sats > r.token.validator_income_sats);
    let new = by("subnet_age_blocks=0");
    assert_eq!(new.accounts.emission_share_start, 0.0);
    assert!(new.accounts.emission_share_end < a.emission_share_end / 10.0);
}

#[test]
fn capital_servers_and_channels_are_costed() {
    let c = Config {
        collusion_sweep: Vec::new(),
        // A window as long as the zero-demand phase.
        quit_window_epochs: 10,
        ..small()
    };
    let r = run(&c);
    let years = boltensor_compare::costs::run_years(&c);
    let bonds = c.validator_bond_sats * c.capital_cost_per_year * years;
    let l = &r.lightning_costs;
    assert!((l.validator_capital_cost_sats - bonds).abs() < 1e-6 * bonds);
    assert!(l.honest_net_after_capital_per_pct_sats < r.lightning.honest_net_per_pct_stake_sats);
    // No client for the first epochs: every Lightning miner earns less than its server costs.
    assert_eq!(l.miners_below_cost, l.miners_counted);
    assert!(l.miners_counted > 0);
    assert_eq!(r.token_costs.miners_below_cost, 0);
    // Inbound capital: at least the largest window of income any miner took.
    assert!(l.channel_capital_per_miner_max_sats >= l.channel_capital_per_miner_p50_sats);
    assert!(l.channel_capital_per_miner_p50_sats > 0.0);
    assert_eq!(r.token_costs.channel_capital_total_sats, 0.0);
}
