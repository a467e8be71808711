use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn hint(timeout: u64) -> KeepAlive {
    KeepAlive {
        timeout: Some(secs(timeout)),
        max: None,
    }
}

#[test]
fn margin_rule_at_200ms_5s_and_60s() {
    let margin = Margin::default();
    // 10% of 200 ms is 20 ms, equal to the floor.
    assert_eq!(margin.for_timeout(ms(200), None), ms(20));
    assert_eq!(margin.for_timeout(ms(100), None), ms(20), "floor");
    assert_eq!(margin.for_timeout(secs(5), None), ms(500));
    assert_eq!(margin.for_timeout(secs(60), None), secs(2), "cap");
    // A slow connect raises the margin, up to the cap.
    assert_eq!(margin.for_timeout(ms(200), Some(ms(45))), ms(45));
    assert_eq!(margin.for_timeout(secs(5), Some(secs(3))), secs(2));

    let t = Instant::now();
    let mut e = IdleEstimator::new(EstimatorConfig::default());
    e.set_override(Some(ms(200)));
    assert_eq!(e.retire_after(t), ms(180));
    e.set_override(Some(secs(5)));
    assert_eq!(e.retire_after(t), ms(4500));
    e.set_override(Some(secs(60)));
    assert_eq!(e.retire_after(t), secs(58));
    e.observe_rtt(ms(700));
    e.set_override(Some(secs(5)));
    assert_eq!(e.retire_after(t), ms(4300), "the 700 ms RTT beats 10%");
}

#[test]
fn margin_is_configurable_and_never_panics() {
    let custom = Margin {
        fraction_permille: 250,
        floor: ms(5),
        cap: secs(10),
    };
    assert_eq!(custom.for_timeout(secs(8), None), secs(2));
    assert_eq!(
        Margin::ZERO.for_timeout(secs(8), Some(ms(30))),
        Duration::ZERO
    );
    let absurd = Margin {
        fraction_permille: u32::MAX,
        floor: Duration::MAX,
        cap: Duration::MAX,
    };
    assert_eq!(absurd.for_timeout(Duration::MAX, None), Duration::MAX);
    // A margin larger than the timeout retires immediately, it does not wrap.
    let config = EstimatorConfig {
        margin: absurd,
        ..EstimatorConfig::default()
    };
    let mut e = IdleEstimator::new(config);
    e.set_override(Some(secs(5)));
    assert_eq!(e.retire_after(Instant::now()), Duration::ZERO);
}

#[test]
fn precedence_override_header_learned_default() {
    let t = Instant::now();
    let mut e = IdleEstimator::new(EstimatorConfig::default());
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(90),
            source: Source::Default
        }
    );
    // Our own deadline: no margin.
    assert_eq!(e.retire_after(t), secs(90));

    assert!(e.observe_close(secs(30), CloseKind::Fin, false, t));
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(30),
            source: Source::Learned
        }
    );

    e.observe_keep_alive(hint(10), t);
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(10),
            source: Source::Header
        }
    );

    e.set_override(Some(secs(20)));
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(20),
            source: Source::Override
        }
    );
    e.set_override(None);
    assert_eq!(e.estimate(t).source, Source::Header);

    // The latest header wins, and a hint without timeout changes nothing.
    e.observe_keep_alive(hint(15), t);
    e.observe_keep_alive(
        KeepAlive {
            timeout: None,
            max: Some(3),
        },
        t,
    );
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(15),
            source: Source::Header
        }
    );

    // A close below the advertised timeout proves the header wrong.
    assert!(e.observe_close(secs(4), CloseKind::Reset, false, t));
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(4),
            source: Source::Learned
        }
    );
}

#[test]
fn retire_after_never_exceeds_the_clients_own_timeout() {
    let t = Instant::now();
    let config = EstimatorConfig {
        default_timeout: secs(30),
        ..EstimatorConfig::default()
    };
    let mut e = IdleEstimator::new(config);
    e.observe_keep_alive(hint(3600), t);
    assert_eq!(e.estimate(t).timeout, secs(3600));
    assert_eq!(e.retire_after(t), secs(30));
}

#[test]
fn one_close_lowers_the_estimate() {
    let t = Instant::now();
    let mut e = IdleEstimator::new(EstimatorConfig::default());
    assert!(e.observe_close(ms(200), CloseKind::Fin, false, t));
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: ms(200),
            source: Source::Learned
        }
    );
    assert_eq!(e.retire_after(t), ms(180));
    assert_eq!(e.last_close(t), Some(CloseKind::Fin));
    // A later, larger close does not raise it; a smaller one lowers it.
    assert!(!e.observe_close(ms(900), CloseKind::Unexpected, false, t + ms(1)));
    assert_eq!(e.learned(t + ms(1)), Some(ms(200)));
    assert_eq!(e.last_close(t + ms(1)), Some(CloseKind::Unexpected));
    assert!(e.observe_close(ms(150), CloseKind::Reset, false, t + ms(2)));
    assert_eq!(e.learned(t + ms(2)), Some(ms(150)));
}

#[test]
fn closes_with_a_request_in_flight_are_ignored() {
    let t = Instant::now();
    let mut e = IdleEstimator::new(EstimatorConfig::default());
    assert!(!e.observe_close(ms(10), CloseKind::Reset, true, t));
    assert_eq!(e.learned(t), None);
    assert_eq!(e.estimate(t).source, Source::Default);
}

#[test]
fn observations_age_out_and_the_estimate_recovers() {
    let t = Instant::now();
    let ttl = EstimatorConfig::default().observation_ttl;
    let mut e = IdleEstimator::new(EstimatorConfig::default());
    e.observe_keep_alive(hint(5), t);
    assert!(e.observe_close(ms(300), CloseKind::Fin, false, t));
    assert!(
        !e.observe_close(secs(2), CloseKind::Fin, false, t + secs(60)),
        "not lower"
    );
    assert_eq!(e.estimate(t + secs(60)).timeout, ms(300));
    // The 300 ms close ages out first; the 2 s one is still remembered.
    e.observe_keep_alive(hint(5), t + ttl);
    assert_eq!(
        e.estimate(t + ttl),
        Estimate {
            timeout: secs(2),
            source: Source::Learned
        }
    );
    // Then it ages out too, and the header is trusted again.
    let later = t + ttl + secs(60);
    e.observe_keep_alive(hint(5), later);
    assert_eq!(
        e.estimate(later),
        Estimate {
            timeout: secs(5),
            source: Source::Header
        }
    );
    // A header nobody repeats ages out as well.
    let much_later = later + ttl;
    assert_eq!(e.estimate(much_later).source, Source::Default);
}

#[test]
fn only_the_most_recent_observations_are_kept() {
    let t = Instant::now();
    let config = EstimatorConfig {
        max_observations: 2,
        ..EstimatorConfig::default()
    };
    let mut e = IdleEstimator::new(config);
    e.observe_close(ms(100), CloseKind::Fin, false, t);
    e.observe_close(ms(500), CloseKind::Fin, false, t);
    assert_eq!(e.learned(t), Some(ms(100)));
    // The third pushes out the oldest (the 100 ms one).
    assert!(e.observe_close(ms(400), CloseKind::Fin, false, t));
    assert_eq!(e.learned(t), Some(ms(400)));

    let off = EstimatorConfig {
        max_observations: 0,
        ..EstimatorConfig::default()
    };
    let mut e = IdleEstimator::new(off);
    assert!(!e.observe_close(ms(100), CloseKind::Fin, false, t));
    assert_eq!(e.estimate(t).source, Source::Default);
}

#[test]
fn rtt_is_smoothed() {
    let mut e = IdleEstimator::new(EstimatorConfig::default());
    assert_eq!(e.rtt(), None);
    e.observe_rtt(ms(80));
    assert_eq!(e.rtt(), Some(ms(80)));
    e.observe_rtt(ms(0));
    assert_eq!(e.rtt(), Some(ms(70)));
}

#[test]
fn source_names() {
    let names: Vec<String> = [
        Source::Override,
        Source::Header,
        Source::Learned,
        Source::Default,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(names, ["override", "header", "learned", "default"]);
}

#[test]
fn lifetime_jitter_stays_in_range() {
    let created = Instant::now();
    let lifetime = Lifetime {
        max: secs(300),
        jitter: secs(30),
    };
    let mut seen = std::collections::HashSet::new();
    for entropy in (0..1000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
        let d = lifetime.deadline(created, entropy);
        assert!(d <= created + secs(300) && d >= created + secs(270));
        assert_eq!(d, lifetime.deadline(created, entropy), "deterministic");
        seen.insert(d);
    }
    assert!(seen.len() > 900, "jitter spreads deadlines");

    let none = Lifetime {
        max: secs(60),
        jitter: Duration::ZERO,
    };
    assert_eq!(none.deadline(created, u64::MAX), created + secs(60));
    // Jitter larger than the lifetime cannot go before `created`.
    let wide = Lifetime {
        max: secs(1),
        jitter: secs(10),
    };
    assert!(wide.deadline(created, 12345) >= created);
    // An unrepresentable deadline does not panic.
    let forever = Lifetime {
        max: Duration::MAX,
        jitter: Duration::ZERO,
    };
    assert!(forever.deadline(created, 0) > created);
}

#[test]
fn a_close_crossing_a_request_counts_only_after_real_idleness() {
    let ms = Duration::from_millis;
    assert!(IdleEstimator::crossed_close_counts(ms(200), CloseKind::Fin));
    assert!(IdleEstimator::crossed_close_counts(
        ms(200),
        CloseKind::Reset
    ));
    assert!(IdleEstimator::crossed_close_counts(
        MIN_CROSSED_IDLE,
        CloseKind::Fin
    ));
    assert!(!IdleEstimator::crossed_close_counts(ms(99), CloseKind::Fin));
    assert!(!IdleEstimator::crossed_close_counts(
        ms(5),
        CloseKind::Reset
    ));
    assert!(!IdleEstimator::crossed_close_counts(
        ms(200),
        CloseKind::Unexpected
    ));
}
