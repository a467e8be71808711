//! `poolbench race` and `poolbench ablation`: set up, run, report.

use std::time::Duration;

use freshpool_origin::Advertise;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cli::{AblationArgs, Close, RaceArgs, Schedule};
use crate::clients::{Kind, Mechanisms};
use crate::gaps::Gaps;
use crate::oracle::Timeline;
use crate::origin::BuiltIn;
use crate::progress::Progress;
use crate::race::{self, Contender, Plan};
use crate::target::{self, Target};
use crate::{Failure, plot, table};

/// The clients of `poolbench race`, in table order.
pub(crate) fn race_contenders() -> Vec<Contender> {
    vec![
        Contender::new(Kind::HyperUtil, "hyper-util"),
        Contender::new(Kind::Adapter, "connector"),
        Contender::new(Kind::AdapterRetry, "retry-client"),
        Contender::new(Kind::Freshpool(Mechanisms::ALL), "freshpool"),
    ]
}

/// freshpool with each mechanism off in turn, and hyper-util for scale.
fn ablation_contenders() -> Vec<Contender> {
    let all = Mechanisms::ALL;
    let variants = [
        ("all mechanisms", "all", all),
        (
            "no probe",
            "no-probe",
            Mechanisms {
                probe: false,
                ..all
            },
        ),
        (
            "no Keep-Alive expiry",
            "no-header",
            Mechanisms {
                header: false,
                ..all
            },
        ),
        (
            "no learned expiry",
            "no-learn",
            Mechanisms {
                learn: false,
                ..all
            },
        ),
        (
            "no expiry at all",
            "no-expiry",
            Mechanisms {
                header: false,
                learn: false,
                ..all
            },
        ),
        (
            "no retry",
            "no-retry",
            Mechanisms {
                retry: false,
                ..all
            },
        ),
        (
            "nothing (all off)",
            "none",
            Mechanisms {
                probe: false,
                header: false,
                learn: false,
                retry: false,
            },
        ),
    ];
    let mut contenders = vec![Contender::new(Kind::HyperUtil, "hyper-util")];
    contenders.extend(variants.into_iter().map(|(label, slug, m)| Contender {
        label: format!("freshpool, {label}"),
        slug: slug.to_owned(),
        kind: Kind::Freshpool(m),
    }));
    contenders
}

/// `poolbench race`.
pub(crate) fn race(args: &RaceArgs) -> Result<(), Failure> {
    let slow_body = args.slow_body.unwrap_or_default();
    let slow = !slow_body.is_zero();
    let idle = args.idle.unwrap_or(if slow {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(200)
    });
    let keep_alive = args.keep_alive || (slow && args.target.is_none());
    if keep_alive && (idle < Duration::from_secs(1) || idle.subsec_nanos() != 0) {
        return Err(Failure::usage(format!(
            "--idle {} ms: a Keep-Alive header (--keep-alive, or --slow-body) only has whole \
             seconds; use an --idle of whole seconds, e.g. 1s",
            ms(idle)
        )));
    }
    let advertise = if keep_alive {
        Advertise::Truthful
    } else {
        Advertise::None
    };
    let (target, origin) = match &args.target {
        Some(url) => (target::parse(url)?, None),
        None => {
            let origin = BuiltIn::start(idle, args.close.into(), advertise)
                .map_err(|e| Failure::runtime(format!("cannot start the built-in origin: {e}")))?;
            (target::builtin(&origin)?, Some(origin))
        }
    };
    let header = if keep_alive {
        format!("Keep-Alive: timeout={}", idle.as_secs())
    } else {
        "no Keep-Alive header".to_owned()
    };
    let about = match &origin {
        Some(_) => format!(
            "built-in origin, idle {} ms, close {}, {header}",
            idle.as_millis(),
            close_name(args.close)
        ),
        None => format!("target {}", target.url),
    };
    let extra = match &origin {
        Some(_) => json!({
            "origin_idle_ms": ms(idle),
            "origin_close": close_name(args.close),
            "origin_keep_alive_timeout_s": keep_alive.then_some(idle.as_secs()),
        }),
        None => json!({}),
    };
    let schedule = &args.schedule;
    let plan = Plan {
        url: target.url.clone(),
        senders: schedule.senders,
        requests: schedule
            .requests
            .unwrap_or(if slow { 5 * schedule.senders } else { 600 }),
        interval: schedule.interval.unwrap_or(idle),
        gaps: gaps(
            schedule,
            if slow {
                Gaps::Uniform {
                    low: 0.9,
                    high: 1.1,
                }
            } else {
                Gaps::Jitter(DEFAULT_JITTER)
            },
        ),
        slow_body,
        seed: schedule.seed,
        cold: schedule.cold,
    };
    execute(
        "race",
        &about,
        extra,
        &target,
        origin,
        &plan,
        schedule,
        &race_contenders(),
    )
}

/// The jitter of the seed's exact interval.
pub(crate) const DEFAULT_JITTER: Duration = Duration::from_millis(2);

/// The schedule's pauses: `--gaps`, else `--jitter`, else the scenario's
/// default.
pub(crate) fn gaps(schedule: &Schedule, default: Gaps) -> Gaps {
    match (schedule.gaps, schedule.jitter) {
        (Some(gaps), _) => gaps,
        (None, Some(jitter)) => Gaps::Jitter(jitter),
        (None, None) => default,
    }
}

/// `poolbench ablation`.
pub(crate) fn ablation(args: &AblationArgs) -> Result<(), Failure> {
    let origin = BuiltIn::start(args.idle, args.close.into(), Advertise::Truthful)
        .map_err(|e| Failure::runtime(format!("cannot start the built-in origin: {e}")))?;
    let target = target::builtin(&origin)?;
    let about = format!(
        "built-in origin, idle {} ms, close {}, Keep-Alive: timeout={}",
        args.idle.as_millis(),
        close_name(args.close),
        args.idle.as_secs(),
    );
    let extra = json!({
        "origin_idle_ms": ms(args.idle),
        "origin_close": close_name(args.close),
        "origin_keep_alive_timeout_s": args.idle.as_secs(),
    });
    let schedule = &args.schedule;
    let plan = Plan {
        url: target.url.clone(),
        senders: schedule.senders,
        requests: schedule.requests.unwrap_or(600),
        interval: schedule.interval.unwrap_or(args.idle),
        gaps: gaps(schedule, Gaps::Jitter(DEFAULT_JITTER)),
        slow_body: Duration::ZERO,
        seed: schedule.seed,
        cold: schedule.cold,
    };
    execute(
        "ablation",
        &about,
        extra,
        &target,
        Some(origin),
        &plan,
        schedule,
        &ablation_contenders(),
    )
}

/// Where the oracle's server timeout came from.
struct Reference {
    /// What the server did to idle connections.
    timeline: Timeline,
    /// How it is known, for the output.
    source: &'static str,
}

/// Says how `timeline`'s timeout is known, in the text output.
const ESTIMATED: &str = "estimated: the gap below which hyper-util's reuse less its errors fell";

#[expect(
    clippy::too_many_arguments,
    reason = "one private call site per scenario; a struct would only rename them"
)]
fn execute(
    scenario: &str,
    about: &str,
    extra: Value,
    target: &Target,
    origin: Option<BuiltIn>,
    plan: &Plan,
    schedule: &Schedule,
    contenders: &[Contender],
) -> Result<(), Failure> {
    let runtime = crate::client_runtime()?;
    let total = u64::from(plan.requests) * contenders.len() as u64;
    let mut outcomes = runtime.block_on(async {
        target::check_reachable(target).await?;
        let progress = Progress::start(scenario, total);
        let outcomes = race::run(plan, contenders, &progress.counter(), Instant::now())
            .await
            .map_err(Failure::runtime);
        progress.finish();
        outcomes
    })?;
    let processed = origin.as_ref().map(BuiltIn::processed);
    let reference = match &origin {
        Some(origin) => Some(Reference {
            timeline: Timeline::steady(origin.idle_timeout()),
            source: "origin",
        }),
        None => outcomes
            .iter()
            .find(|o| o.contender.kind == Kind::HyperUtil)
            .map(|hyper_util| Reference {
                timeline: Timeline::steady(table::estimate_timeout(hyper_util)),
                source: ESTIMATED,
            }),
    };
    let timeline = reference.as_ref().map(|r| &r.timeline);
    if let Some(origin) = origin {
        let duplicates = origin.duplicates_by_client();
        for outcome in &mut outcomes {
            outcome.duplicates = Some(
                duplicates
                    .get(&outcome.contender.slug)
                    .copied()
                    .unwrap_or(0),
            );
        }
        origin.shutdown();
    }

    if let Some(path) = &schedule.plot {
        let title = format!("poolbench {scenario}: {about}");
        std::fs::write(path, plot::svg(&title, &outcomes)).map_err(|e| {
            Failure::runtime(format!("cannot write the plot to {}: {e}", path.display()))
        })?;
    }
    if schedule.json {
        let mut settings = settings_json(plan);
        if let (Some(settings), Value::Object(extra)) = (settings.as_object_mut(), extra) {
            settings.extend(extra);
        }
        let doc = json!({
            "scenario": scenario,
            "target": target.url.to_string(),
            "builtin_origin": processed.is_some(),
            "settings": settings,
            "origin_processed": processed,
            "server_timeout_ms": timeline.map(|t| ms(t.idle)),
            "oracle_source": reference.as_ref().map(|r| r.source),
            "clients": outcomes.iter().map(|o| table::client_json(o, timeline)).collect::<Vec<_>>(),
        });
        println!("{doc:#}");
    } else {
        println!(
            "poolbench {scenario}: {about}\n{}\n",
            describe(plan, outcomes.len())
        );
        print!("{}", table::render(&outcomes, timeline));
        if let Some(reference) = reference.as_ref().filter(|r| r.source != "origin") {
            println!(
                "\nthe server's idle timeout is not known: {:.0} ms, {}",
                ms(reference.timeline.idle),
                reference.source
            );
        }
        if let Some(path) = &schedule.plot {
            println!("\nplot: {}", path.display());
        }
    }
    Ok(())
}

/// The plan's settings, for JSON.
pub(crate) fn settings_json(plan: &Plan) -> Value {
    let (jitter, gaps) = match plan.gaps {
        Gaps::Jitter(jitter) => (Some(ms(jitter)), None),
        Gaps::Uniform { low, high } => (None, Some(json!({"uniform": [low, high]}))),
    };
    json!({
        "senders_per_client": plan.senders,
        "requests_per_client": plan.requests,
        "interval_ms": ms(plan.interval),
        "jitter_ms": jitter,
        "gaps": gaps,
        "slow_body_ms": ms(plan.slow_body),
        "seed": plan.seed,
        "cold": plan.cold,
    })
}

/// One line on who sends what, when.
pub(crate) fn describe(plan: &Plan, clients: usize) -> String {
    let gaps = match plan.gaps {
        Gaps::Jitter(jitter) => format!("every {} ms ± {} ms", ms(plan.interval), ms(jitter)),
        gaps @ Gaps::Uniform { .. } => {
            format!("every {} ms on average, gaps {gaps}", ms(plan.interval))
        }
    };
    let slow = if plan.slow_body.is_zero() {
        String::new()
    } else {
        format!(
            ", each response's body read {} ms after its head (gaps count from the head)",
            ms(plan.slow_body)
        )
    };
    format!(
        "{clients} clients side by side, each with {} senders (own pool each), {} POSTs per client, \
         {gaps}{slow}, seed {}",
        plan.senders, plan.requests, plan.seed,
    )
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn close_name(close: Close) -> &'static str {
    freshpool_origin::CloseMode::from(close).as_str()
}
