use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn hint(timeout: u64) -> Evidence {
    Evidence::KeepAlive(KeepAlive {
        timeout: Some(secs(timeout)),
        max: None,
    })
}

fn closed(idle: Duration) -> Evidence {
    Evidence::Closed {
        idle_for: idle,
        kind: CloseKind::Fin,
    }
}

fn reset(idle: Duration) -> Evidence {
    Evidence::Closed {
        idle_for: idle,
        kind: CloseKind::Reset,
    }
}

fn tuning() -> Tuning {
    Tuning::default()
}

fn fresh() -> IdleEstimator {
    IdleEstimator::new(EstimatorConfig::default())
}

/// The retire time with 1 ms of measured scheduling slack.
fn retire(e: &IdleEstimator, now: Instant) -> Duration {
    e.retire_after(now, ms(1))
}

#[test]
fn margin_is_the_path_round_trip_and_slack_plus_a_share_of_learned_values() {
    let m = Margin::default();
    let learned = |t| Estimate {
        timeout: t,
        source: Source::Learned,
    };
    let header = |t| Estimate {
        timeout: t,
        source: Source::Header,
    };
    let path = Rtt {
        srtt: ms(40),
        rttvar: ms(5),
    };
    assert_eq!(path.bound(), ms(60));
    // A header value gets the path and the slack, nothing more.
    assert_eq!(m.for_estimate(header(secs(5)), Some(path), ms(2)), ms(62));
    assert_eq!(m.for_estimate(header(secs(60)), None, ms(2)), ms(2));
    // A learned value gets 1% and the slack again on top (the close was
    // read as late as the client runs).
    assert_eq!(m.for_estimate(learned(secs(5)), Some(path), ms(2)), ms(114));
    assert_eq!(m.for_estimate(learned(ms(200)), None, ms(1)), ms(4));
    assert_eq!(m.for_estimate(learned(ms(200)), None, ms(3)), ms(8));
    // The floor holds when the path and the slack are tiny, and the cap
    // holds over a slow path.
    assert_eq!(m.for_estimate(header(secs(5)), None, Duration::ZERO), ms(1));
    let slow = Rtt {
        srtt: secs(1),
        rttvar: secs(1),
    };
    assert_eq!(m.for_estimate(header(secs(30)), Some(slow), ms(1)), secs(2));
    // Absurd settings saturate instead of wrapping.
    let absurd = Margin {
        floor: Duration::MAX,
        learned_permille: u32::MAX,
        lone: Duration::MAX,
        cap: Duration::MAX,
    };
    assert_eq!(
        absurd.for_estimate(learned(Duration::MAX), Some(slow), Duration::MAX),
        Duration::MAX
    );
    assert_eq!(
        Margin::ZERO.for_estimate(learned(secs(8)), Some(path), ms(5)),
        Duration::ZERO
    );
    // A margin larger than the timeout retires at once; it does not wrap.
    let mut e = IdleEstimator::new(EstimatorConfig {
        margin: absurd,
        ..EstimatorConfig::default()
    });
    e.set_override(Some(secs(5)));
    assert_eq!(retire(&e, Instant::now()), Duration::ZERO);
}

#[test]
fn retire_time_uses_the_kernels_rtt_or_the_shortest_measured_one() {
    let t = Instant::now();
    let mut e = fresh();
    e.observe(hint(5), t);
    assert_eq!(retire(&e, t), ms(4999), "1 ms of slack, no path known");
    // The first sample sets srtt, and rttvar to half of it (at most 1 ms).
    e.observe_round_trip(ms(8));
    assert_eq!(
        e.rtt(),
        Some(Rtt {
            srtt: ms(8),
            rttvar: ms(1)
        })
    );
    assert_eq!(retire(&e, t), ms(4987), "8 + 4 × 1 + 1 ms");
    // The shortest sample is the path; one at it lets the deviation decay
    // (¾·1 ms), and a slow response (the server's own time) adds at most
    // 1 ms of deviation: ¾·0.75 + ¼·1.
    e.observe_round_trip(ms(4));
    assert_eq!(e.rtt().map(|r| r.rttvar), Some(Duration::from_micros(750)));
    e.observe_round_trip(secs(2));
    assert_eq!(
        e.rtt(),
        Some(Rtt {
            srtt: ms(4),
            rttvar: Duration::from_nanos(812_500)
        })
    );
    // The kernel's figures and the measured ones: the longer bound counts.
    let kernel = Rtt {
        srtt: ms(2),
        rttvar: ms(1),
    };
    e.observe_rtt(kernel);
    assert_eq!(e.rtt().map(|r| r.bound()), Some(ms(7) + ms(1) / 4));
    let long = Rtt {
        srtt: ms(20),
        rttvar: ms(5),
    };
    e.observe_rtt(long);
    assert_eq!(e.rtt(), Some(long));
    assert_eq!(retire(&e, t), ms(4959), "20 + 4 × 5 + 1 ms");
}

#[test]
fn a_round_trip_is_news_outside_the_measured_band() {
    let us = Duration::from_micros;
    let mut e = fresh();
    assert!(e.round_trip_is_news(ms(3)), "nothing measured yet");
    e.observe_round_trip(ms(2));
    // srtt 2 ms, rttvar 1 ms (half the first sample): the band is 1..3 ms,
    // and with the jitter at its cap a longer one is no news either.
    assert!(!e.round_trip_is_news(ms(1)));
    assert!(!e.round_trip_is_news(ms(3)));
    assert!(e.round_trip_is_news(us(999)));
    assert!(!e.round_trip_is_news(ms(500)));
    // The jitter decays with samples at the path; then spikes are news.
    for _ in 0..4 {
        e.observe_round_trip(ms(2));
    }
    let rttvar = e.measured_rtt().expect("measured").rttvar;
    assert!(rttvar < tuning().max_deviation);
    assert!(!e.round_trip_is_news(ms(2) + rttvar));
    assert!(e.round_trip_is_news(ms(2) + rttvar + us(1)));
    assert!(e.round_trip_is_news(ms(500)));
}

#[test]
fn precedence_override_header_learned_default() {
    let t = Instant::now();
    let mut e = fresh();
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(90),
            source: Source::Default
        }
    );
    // Our own deadline: no margin.
    assert_eq!(retire(&e, t), secs(90));

    assert!(e.observe(closed(secs(30)), t).is_some());
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(30),
            source: Source::Learned
        }
    );
    // The header is below what was learned: it wins.
    e.observe(hint(10), t);
    assert_eq!(e.estimate(t).source, Source::Header);
    e.set_override(Some(secs(20)));
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(20),
            source: Source::Override
        }
    );
    e.set_override(None);
    // The latest header wins; a hint without timeout changes nothing.
    e.observe(hint(15), t);
    e.observe(
        Evidence::KeepAlive(KeepAlive {
            timeout: None,
            max: Some(3),
        }),
        t,
    );
    assert_eq!(
        e.estimate(t),
        Estimate {
            timeout: secs(15),
            source: Source::Header
        }
    );
}

#[test]
fn retire_after_never_exceeds_the_clients_own_timeout() {
    let t = Instant::now();
    let mut e = IdleEstimator::new(EstimatorConfig {
        default_timeout: secs(30),
        ..EstimatorConfig::default()
    });
    e.observe(hint(3600), t);
    assert_eq!(e.estimate(t).timeout, secs(3600));
    assert_eq!(retire(&e, t), secs(30));
}

#[test]
fn a_real_idle_close_is_learned_at_once() {
    let t = Instant::now();
    let mut e = fresh();
    let learned = e.observe(closed(ms(200)), t).expect("the estimate changed");
    assert_eq!(
        learned,
        Estimate {
            timeout: ms(200),
            source: Source::Learned
        }
    );
    // 1 ms of slack, and for a learned value 2 ms (1%) and the slack
    // again; 10 ms more while this one close is all it rests on.
    assert_eq!(retire(&e, t), ms(186));
    assert_eq!(e.last_close(t), Some(CloseKind::Fin));
    // The timer's jitter: a slightly earlier close lowers it a little, and
    // agrees with the first, so the lone share goes.
    assert!(e.observe(reset(ms(198)), t + ms(300)).is_some());
    assert_eq!(e.learned(t + ms(300)), Some(ms(198)));
    assert_eq!(retire(&e, t + ms(300)), Duration::from_micros(194_020));
}

#[test]
fn a_lone_close_retires_early_and_connections_are_watched_past_their_retire_time() {
    let t = Instant::now();
    let watch = |e: &IdleEstimator, now| e.watch_after(now, ms(1));
    // The client's own default: retired at it, never watched.
    let mut e = fresh();
    assert_eq!(retire(&e, t), secs(90));
    assert_eq!(watch(&e, t), secs(90));
    // One close read 6 ms late: the lone share keeps the retire time below
    // the real timer (200 ms) even so. Watched until estimate + margin,
    // and a quarter of the estimate more: far enough to refute it.
    e.observe(closed(ms(206)), t);
    let lone = retire(&e, t);
    assert!(lone < ms(192), "{lone:?}");
    assert_eq!(watch(&e, t), ms(206) + (ms(206) - lone) + ms(206) / 4);
    // The watch sees the server close the next connection on time: the
    // two agree, and the estimate rests on the lower one.
    e.observe(closed(ms(200)), t + secs(1));
    assert_eq!(e.learned(t + secs(1)), Some(ms(200)));
    let agreed = retire(&e, t + secs(1));
    assert_eq!(agreed, ms(196));
    assert_eq!(watch(&e, t + secs(1)), ms(254));
    // A header gets the plain margin and is watched; an override is not.
    let mut e = fresh();
    e.observe(hint(5), t);
    assert_eq!(retire(&e, t), ms(4999));
    assert_eq!(watch(&e, t), ms(5001));
    e.set_override(Some(secs(5)));
    assert_eq!(watch(&e, t), retire(&e, t));
}

#[test]
fn one_early_close_of_an_unknown_server_is_not_its_idle_timeout() {
    // A deploy closed the only idle connection 2 ms after its response:
    // one such close must not stop all reuse.
    let t = Instant::now();
    let mut e = fresh();
    assert_eq!(e.observe(closed(ms(2)), t), None);
    assert_eq!(e.estimate(t).source, Source::Default);
    // A server that closes *every* connection right after its response
    // says so again at once, and is believed.
    let learned = e.observe(closed(ms(1)), t + ms(50));
    assert_eq!(
        learned,
        Some(Estimate {
            timeout: ms(1),
            source: Source::Learned
        })
    );
    assert_eq!(retire(&e, t + ms(50)), Duration::ZERO);
}

#[test]
fn an_early_close_after_a_learned_minute_changes_nothing() {
    let t = Instant::now();
    let mut e = fresh();
    e.observe(closed(secs(60)), t);
    assert_eq!(e.estimate(t).timeout, secs(60));
    // A 3 ms close, and even a 150 ms one: the connection that closed at
    // 60 s had survived that long, so these are not the timer.
    assert_eq!(e.observe(closed(ms(3)), t + secs(1)), None);
    assert_eq!(e.observe(reset(ms(150)), t + secs(2)), None);
    assert_eq!(e.estimate(t + secs(2)).timeout, secs(60));
    // 600 ms (1%), the slack twice, and 10 ms for the one close.
    assert_eq!(retire(&e, t + secs(2)), secs(60) - ms(612));
}

#[test]
fn one_early_reset_does_not_beat_a_keep_alive_header() {
    let t = Instant::now();
    let mut e = fresh();
    e.observe(hint(5), t);
    assert_eq!(e.observe(reset(ms(1)), t + ms(10)), None);
    assert_eq!(e.estimate(t + ms(10)).source, Source::Header);
    assert_eq!(retire(&e, t + ms(10)), ms(4999));
    // Two agreeing closes below the header do: the header was wrong.
    let learned = e.observe(closed(ms(2)), t + ms(500));
    assert_eq!(learned.map(|e| e.timeout), Some(ms(1)));
    assert_eq!(e.estimate(t + ms(500)).source, Source::Learned);
    // Agreeing closes of a header that was merely rounded down, too.
    let mut e = fresh();
    e.observe(hint(1), t);
    e.observe(closed(ms(700)), t);
    assert_eq!(
        e.estimate(t).source,
        Source::Header,
        "one close is not enough"
    );
    e.observe(closed(ms(705)), t + secs(1));
    assert_eq!(e.estimate(t + secs(1)).timeout, ms(700));
}

#[test]
fn a_close_below_a_proven_survival_is_ignored() {
    let t = Instant::now();
    let mut e = fresh();
    e.observe(Evidence::Survived(ms(900)), t);
    for (i, idle) in [ms(400), ms(500), ms(600)].into_iter().enumerate() {
        assert_eq!(e.observe(closed(idle), t + secs(i as u64)), None);
    }
    assert_eq!(e.estimate(t + secs(3)).source, Source::Default);
    // A close near the survival (within 5%) is the timer's jitter.
    assert!(e.observe(closed(ms(880)), t + secs(4)).is_some());
    assert_eq!(e.estimate(t + secs(4)).timeout, ms(880));
}

#[test]
fn a_low_estimate_recovers_as_soon_as_a_survival_contradicts_it() {
    let t = Instant::now();
    let mut e = fresh();
    e.observe(hint(5), t);
    e.observe(closed(secs(2)), t);
    e.observe(closed(ms(2050)), t + secs(1));
    assert_eq!(e.estimate(t + secs(1)).timeout, secs(2));
    // A reuse after 3 s succeeded: those closes were not the timer.
    let back = e.observe(Evidence::Survived(secs(3)), t + secs(2));
    assert_eq!(
        back,
        Some(Estimate {
            timeout: secs(5),
            source: Source::Header
        })
    );
}

#[test]
fn a_mass_close_is_not_learned() {
    // A restart: connections idle for 20, 90 and 160 ms all close within
    // a few milliseconds, long before their 200 ms timer.
    let t = Instant::now();
    let mut e = fresh();
    e.observe(closed(ms(160)), t);
    e.observe(closed(ms(90)), t + ms(1));
    e.observe(reset(ms(20)), t + ms(3));
    assert_eq!(e.estimate(t + ms(3)).source, Source::Default);
    assert_eq!(e.learned(t + ms(3)), None);
    // The timer itself closes connections at the same idle age, however
    // close together: those are learned.
    let mut e = fresh();
    e.observe(closed(ms(201)), t);
    e.observe(closed(ms(200)), t + ms(1));
    assert_eq!(e.estimate(t + ms(1)).timeout, ms(200));
}

#[test]
fn closes_below_a_survival_that_keep_agreeing_mean_the_timeout_went_down() {
    let t = Instant::now();
    let mut e = fresh();
    e.observe(Evidence::Survived(secs(2)), t);
    e.observe(closed(ms(200)), t + secs(1));
    e.observe(closed(ms(201)), t + secs(15));
    assert_eq!(e.estimate(t + secs(15)).source, Source::Default);
    // A new configuration keeps closing at 200 ms for longer than any
    // overload: it wins.
    let lower = e.observe(closed(ms(202)), t + secs(1) + tuning().change_span);
    assert_eq!(lower.map(|e| e.timeout), Some(ms(200)));
}

#[test]
fn an_overload_costs_no_reuse_after_it_ends() {
    // Apache's event MPM under load: every idle connection closed 5 ms
    // after its response, for three seconds, twenty closes.
    let t = Instant::now();
    let mut e = fresh();
    e.observe(closed(ms(200)), t);
    e.observe(Evidence::Survived(ms(150)), t + secs(1));
    for i in 0..20 {
        e.observe(closed(ms(5)), t + secs(2) + ms(150 * i));
        assert_eq!(e.estimate(t + secs(2) + ms(150 * i)).timeout, ms(200));
    }
    // The close that told the real timeout was kept through the burst.
    assert_eq!(e.learned(t + secs(6)), Some(ms(200)));
}

#[test]
fn an_upper_bound_is_used_until_a_close_is_measured() {
    let t = Instant::now();
    let mut e = fresh();
    let found = Evidence::ClosedWithin {
        idle_for: secs(10),
        kind: CloseKind::Fin,
    };
    e.observe(found, t);
    assert_eq!(e.estimate(t).timeout, secs(10), "better than the default");
    // A close seen as it happened replaces the bound, even a longer one.
    e.observe(closed(secs(12)), t + secs(20));
    assert_eq!(e.estimate(t + secs(20)).timeout, secs(12));
}

#[test]
fn a_crossing_refines_an_agreeing_close_read_late_but_a_probe_does_not() {
    let t = Instant::now();
    let crossed = |idle| Evidence::Crossed {
        idle_for: idle,
        kind: CloseKind::Fin,
    };
    let within = |idle| Evidence::ClosedWithin {
        idle_for: idle,
        kind: CloseKind::Fin,
    };
    // The one close this client saw was read 6 ms after a 200 ms timer
    // fired; a request then met the timer at 199 ms.
    let mut e = fresh();
    e.observe(closed(ms(206)), t);
    assert_eq!(e.learned(t), Some(ms(206)));
    assert!(e.observe(crossed(ms(199)), t + ms(500)).is_some());
    assert_eq!(e.learned(t + ms(500)), Some(ms(199)));
    // It counts as long as other upper bounds: then the close read late
    // is the estimate again.
    assert_eq!(
        e.learned(t + tuning().bound_memory + ms(500)),
        Some(ms(206))
    );
    // A crossing far below the close is no refinement (a restart, say),
    // and a close a probe found later is still only an upper bound.
    let mut e = fresh();
    e.observe(closed(ms(206)), t);
    assert_eq!(e.observe(crossed(ms(120)), t + ms(500)), None);
    assert_eq!(e.observe(within(ms(199)), t + ms(600)), None);
    assert_eq!(e.learned(t + ms(600)), Some(ms(206)));
}

#[test]
fn a_close_read_late_does_not_outrank_the_timer_seen_on_time() {
    let t = Instant::now();
    let crossed = |idle| Evidence::Crossed {
        idle_for: idle,
        kind: CloseKind::Fin,
    };
    // A 200 ms timer whose one close was read 12 ms late: a request then
    // met the timer at 201 ms, more than the early tolerance (5%) below
    // the close's reading.
    let mut e = fresh();
    e.observe(closed(ms(212)), t);
    assert!(e.observe(crossed(ms(201)), t + ms(500)).is_some());
    assert_eq!(e.learned(t + ms(500)), Some(ms(201)));
    // A later close read on time is learned as well.
    let mut e = fresh();
    e.observe(closed(ms(212)), t);
    assert!(e.observe(closed(ms(200)), t + secs(1)).is_some());
    assert_eq!(e.learned(t + secs(1)), Some(ms(200)));
    // A request that got its answer after 212 ms is a survival no read
    // stretched, but a loaded server's timer fires that late: the close at
    // 200 ms agrees with it, and is the one that would fail a request.
    let mut e = fresh();
    e.observe(closed(ms(212)), t);
    e.observe(Evidence::Survived(ms(212)), t + ms(500));
    assert!(e.observe(closed(ms(200)), t + secs(1)).is_some());
    assert_eq!(e.learned(t + secs(1)), Some(ms(200)));
    // So does a crossing just below such a survival, however many
    // survivals repeat it: the same client must not fail again there.
    let mut e = fresh();
    e.observe(closed(ms(212)), t);
    e.observe(Evidence::Survived(ms(214)), t + ms(500));
    assert!(e.observe(crossed(ms(199)), t + secs(1)).is_some());
    e.observe(Evidence::Survived(ms(214)), t + secs(3));
    assert_eq!(e.learned(t + secs(3)), Some(ms(199)));
    // A close that disagrees with the survival (more than 10 ms and 10%
    // below it) is early, as a restart's is.
    let mut e = fresh();
    e.observe(closed(ms(212)), t);
    e.observe(Evidence::Survived(ms(230)), t + ms(500));
    assert_eq!(e.observe(closed(ms(200)), t + secs(1)), None);
    assert_eq!(e.learned(t + secs(1)), Some(ms(212)));
    // And a close far below the reading (a deploy) is no timer either.
    let mut e = fresh();
    e.observe(closed(ms(2000)), t);
    assert_eq!(e.observe(closed(ms(300)), t + secs(1)), None);
    assert_eq!(e.learned(t + secs(1)), Some(ms(2000)));
}

#[test]
fn a_close_crossing_a_request_counts_only_after_real_idleness() {
    let t = Instant::now();
    let crossed = |idle, kind| Evidence::Crossed {
        idle_for: idle,
        kind,
    };
    for (idle, kind, counts) in [
        (ms(200), CloseKind::Fin, true),
        (ms(200), CloseKind::Reset, true),
        (tuning().min_crossed_idle, CloseKind::Fin, true),
        // A 100 ms timer, seen by a client whose idle clock started late.
        (ms(99), CloseKind::Fin, true),
        (ms(89), CloseKind::Fin, false),
        (ms(5), CloseKind::Reset, false),
        (ms(200), CloseKind::Unexpected, false),
    ] {
        let mut e = fresh();
        e.observe(crossed(idle, kind), t);
        assert_eq!(e.learned(t).is_some(), counts, "{idle:?} {kind:?}");
    }
}

#[test]
fn quick_crossed_closes_that_agree_are_learned_for_a_while() {
    let t = Instant::now();
    let quick = Evidence::Crossed {
        idle_for: Duration::from_micros(300),
        kind: CloseKind::Fin,
    };
    let mut e = fresh();
    e.observe(quick, t);
    assert_eq!(e.estimate(t).source, Source::Default, "one: nothing");
    // A server that closes every connection right after its response.
    let learned = e.observe(quick, t + ms(50));
    assert_eq!(learned.map(|e| e.timeout), Some(Duration::from_micros(300)));
    // Not seen as they arrived, they may be a server failing requests for
    // its own reasons: they are forgotten after tuning().change_span.
    assert_eq!(
        e.estimate(t + tuning().bound_memory).source,
        Source::Default
    );
}

#[test]
fn evidence_ages_out() {
    let t = Instant::now();
    let ttl = EstimatorConfig::default().observation_ttl;
    let mut e = fresh();
    e.observe(hint(5), t);
    e.observe(closed(ms(300)), t);
    e.observe(closed(ms(305)), t + secs(1));
    assert_eq!(e.estimate(t + secs(1)).timeout, ms(300));
    // The closes age out; the header, repeated, is trusted again.
    let later = t + secs(1) + ttl;
    e.observe(hint(5), later);
    assert_eq!(
        e.estimate(later),
        Estimate {
            timeout: secs(5),
            source: Source::Header
        }
    );
    // A header nobody repeats ages out as well, and so do survivals.
    e.observe(Evidence::Survived(secs(4)), later);
    assert_eq!(e.survived(later), Some(secs(4)));
    let much_later = later + ttl;
    assert_eq!(e.estimate(much_later).source, Source::Default);
    assert_eq!(e.survived(much_later), None);
}

#[test]
fn only_the_most_recent_closes_are_kept() {
    let t = Instant::now();
    let mut e = IdleEstimator::new(EstimatorConfig {
        max_observations: 2,
        ..EstimatorConfig::default()
    });
    e.observe(closed(ms(400)), t);
    e.observe(closed(ms(410)), t + secs(1));
    assert_eq!(e.learned(t + secs(1)), Some(ms(400)));
    // A third that agrees replaces the newest it agrees with: the first of
    // a run of agreeing closes stays.
    e.observe(closed(ms(420)), t + secs(2));
    assert_eq!(e.learned(t + secs(2)), Some(ms(400)));
    // One that agrees with none pushes out the oldest (the 400 ms one);
    // the 900 ms close also proves 420 ms early.
    e.observe(closed(ms(900)), t + secs(3));
    assert_eq!(e.learned(t + secs(3)), Some(ms(900)));

    let mut off = IdleEstimator::new(EstimatorConfig {
        max_observations: 0,
        ..EstimatorConfig::default()
    });
    assert_eq!(off.observe(closed(ms(100)), t), None);
    assert_eq!(off.estimate(t).source, Source::Default);
}

#[test]
fn agreement_is_ten_ms_or_ten_percent() {
    assert!(tuning().agree(ms(1), ms(11)));
    assert!(!tuning().agree(ms(1), ms(12)));
    assert!(tuning().agree(secs(2), ms(2200)));
    assert!(!tuning().agree(secs(2), ms(2300)));
    assert!(tuning().agree(ms(5), ms(5)));
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
fn a_recent_confirmation_is_not_news_and_observing_it_changes_nothing() {
    let mut e = fresh();
    let t0 = Instant::now();
    assert!(e.is_news(&Evidence::Survived(ms(300)), t0));
    e.observe(Evidence::Survived(ms(300)), t0);
    e.observe(hint(5), t0);

    // Within `tuning().confirm_refresh`: a shorter or equal survival and the same
    // header are confirmations; a longer survival or another timeout is news.
    let soon = t0 + ms(500);
    assert!(!e.is_news(&Evidence::Survived(ms(300)), soon));
    assert!(!e.is_news(&Evidence::Survived(ms(100)), soon));
    assert!(!e.is_news(&hint(5), soon));
    assert!(e.is_news(&Evidence::Survived(ms(301)), soon));
    assert!(e.is_news(&hint(4), soon));
    assert!(e.is_news(&closed(ms(250)), soon));
    let no_timeout = Evidence::KeepAlive(KeepAlive {
        timeout: None,
        max: Some(3),
    });
    assert!(!e.is_news(&no_timeout, soon));
    assert_eq!(e.observe(Evidence::Survived(ms(300)), soon), None);

    // Past it, a survival near the longest refreshes it again; one far
    // below it never does.
    let later = t0 + tuning().confirm_refresh + ms(1);
    assert!(e.is_news(&Evidence::Survived(ms(299)), later));
    assert!(!e.is_news(&Evidence::Survived(ms(100)), later));
    assert!(e.is_news(&hint(5), later));
    e.observe(Evidence::Survived(ms(299)), later);
    assert_eq!(e.survived(later + secs(299)), Some(ms(300)));
}

/// The remembered retire time is the one computed afresh at every moment:
/// as evidence arrives, as each piece of it ages out (header, survival,
/// exact and crossing closes have their own times to live), and for
/// another slack.
#[test]
fn the_remembered_retire_time_is_always_the_fresh_one() {
    let t0 = Instant::now();
    let mut e = fresh();
    let mut now = t0;
    let check = |e: &IdleEstimator, now: Instant| {
        assert_eq!(
            (e.retire_after(now, ms(1)), e.watch_after(now, ms(1))),
            e.compute(now, ms(1)),
            "at {:?}",
            now - t0
        );
    };
    let evidence = [
        hint(10),
        Evidence::Survived(secs(3)),
        closed(ms(2500)),
        closed(ms(2510)),
        Evidence::Crossed {
            idle_for: ms(900),
            kind: CloseKind::Reset,
        },
        hint(4),
    ];
    for (i, piece) in evidence.into_iter().enumerate() {
        e.observe(piece, now);
        check(&e, now);
        now += secs(40 * (i as u64 + 1));
        check(&e, now);
    }
    // Past every time to live, in steps that cross each one.
    for _ in 0..40 {
        now += secs(17);
        check(&e, now);
    }
    assert_eq!(
        (e.retire_after(now, ms(40)), e.watch_after(now, ms(40))),
        e.compute(now, ms(40))
    );
    e.set_override(Some(secs(2)));
    check(&e, now);
    e.observe_round_trip(ms(30));
    check(&e, now);
}

/// `is_news` for a survival, from its precomputed marks, says what the
/// rule says worked out afresh: news unless a fresh longest survival is
/// well above it, or it is near that longest and the longest was confirmed
/// within the last second.
#[test]
fn a_survival_is_news_exactly_as_the_rule_says() {
    let t0 = Instant::now();
    let mut e = fresh();
    let ttl = e.config().observation_ttl;
    let rule = |e: &IdleEstimator, idle_for: Duration, now: Instant| match e.survived {
        None => true,
        Some((longest, at)) => {
            let age = now.saturating_duration_since(at);
            let fresh = age < ttl;
            let below = idle_for.saturating_add(tuning().confirm_tolerance(longest)) < longest;
            let recent = fresh && age < tuning().confirm_refresh;
            !(fresh && below) && (idle_for > longest || !recent)
        }
    };
    let idles = [0, 1, 4, 5, 50, 94, 95, 96, 99, 100, 101, 2000, 2100, 5000];
    let ages = [0, 1, 999, 1000, 1001, 60_000, 299_999, 300_000, 400_000];
    for longest in [3, 100, 2000] {
        e.observe(Evidence::Survived(ms(longest)), t0);
        for &idle in &idles {
            for &age in &ages {
                let now = t0 + ms(age);
                let evidence = Evidence::Survived(ms(idle));
                assert_eq!(
                    e.is_news(&evidence, now),
                    rule(&e, ms(idle), now),
                    "longest {longest} ms, survival {idle} ms, {age} ms later"
                );
            }
        }
    }
}

#[test]
fn an_estimate_below_the_real_timeout_is_refuted_by_the_first_watch() {
    // A 2 s server, a client sending every 300 ms: a restart closed its
    // connection idle for 285 ms, within agreement of its longest
    // survival (299 ms), so 285 ms is learned.
    let t = Instant::now();
    let mut e = fresh();
    e.observe(Evidence::Survived(ms(299)), t);
    e.observe(closed(ms(285)), t + secs(1));
    assert_eq!(e.learned(t + secs(1)), Some(ms(285)));
    let retire_at = retire(&e, t + secs(1));
    assert!(retire_at < ms(285), "{retire_at:?}");
    // Every connection is now retired before the next request, so no
    // request proves the estimate wrong; the watch of the first one does.
    // Its end is the stated bound: estimate + margin + a quarter.
    let watch = e.watch_after(t + secs(1), ms(1));
    assert_eq!(watch, ms(285) + (ms(285) - retire_at) + ms(285) / 4);
    let back = e.observe(Evidence::Survived(watch), t + secs(2));
    assert_eq!(back.map(|e| e.source), Some(Source::Default));
    assert_eq!(retire(&e, t + secs(2)), secs(90));
}
