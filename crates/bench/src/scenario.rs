//! `poolbench race` and `poolbench ablation`: set up, run, report.

use std::time::Duration;

use freshpool_origin::Advertise;
use serde_json::{Value, json};

use crate::cli::{AblationArgs, Close, RaceArgs, Schedule};
use crate::clients::{Kind, Mechanisms};
use crate::origin::BuiltIn;
use crate::progress::Progress;
use crate::race::{self, Contender, Outcome, Plan};
use crate::target::{self, Target};
use crate::{Failure, plot, table};

/// The clients of `poolbench race`, in table order.
fn race_contenders() -> Vec<Contender> {
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
    let (target, origin) = match &args.target {
        Some(url) => (target::parse(url)?, None),
        None => {
            let origin = BuiltIn::start(args.idle, args.close.into(), Advertise::None)
                .map_err(|e| Failure::runtime(format!("cannot start the built-in origin: {e}")))?;
            (target::builtin(&origin)?, Some(origin))
        }
    };
    let interval = args.schedule.interval.unwrap_or(args.idle);
    let about = match &origin {
        Some(_) => format!(
            "built-in origin, idle {} ms, close {}, no Keep-Alive header",
            args.idle.as_millis(),
            close_name(args.close)
        ),
        None => format!("target {}", target.url),
    };
    let extra = match &origin {
        Some(_) => json!({
            "origin_idle_ms": ms(args.idle),
            "origin_close": close_name(args.close),
        }),
        None => json!({}),
    };
    execute(
        "race",
        &about,
        extra,
        &target,
        origin,
        interval,
        &args.schedule,
        &race_contenders(),
    )
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
    execute(
        "ablation",
        &about,
        extra,
        &target,
        Some(origin),
        args.schedule.interval.unwrap_or(args.idle),
        &args.schedule,
        &ablation_contenders(),
    )
}

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
    interval: Duration,
    schedule: &Schedule,
    contenders: &[Contender],
) -> Result<(), Failure> {
    let plan = Plan {
        url: target.url.clone(),
        senders: schedule.senders,
        requests: schedule.requests,
        interval,
        jitter: schedule.jitter,
        seed: schedule.seed,
        cold: schedule.cold,
    };
    let runtime = crate::client_runtime()?;
    let total = u64::from(plan.requests) * contenders.len() as u64;
    let mut outcomes = runtime.block_on(async {
        target::check_reachable(target).await?;
        let progress = Progress::start(scenario, total);
        let outcomes = race::run(&plan, contenders, &progress.counter())
            .await
            .map_err(Failure::runtime);
        progress.finish();
        outcomes
    })?;
    let processed = origin.as_ref().map(BuiltIn::processed);
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
        let mut settings = json!({
            "senders_per_client": plan.senders,
            "requests_per_client": plan.requests,
            "interval_ms": ms(plan.interval),
            "jitter_ms": ms(plan.jitter),
            "seed": plan.seed,
            "cold": plan.cold,
        });
        if let (Some(settings), Value::Object(extra)) = (settings.as_object_mut(), extra) {
            settings.extend(extra);
        }
        let doc = json!({
            "scenario": scenario,
            "target": target.url.to_string(),
            "builtin_origin": processed.is_some(),
            "settings": settings,
            "origin_processed": processed,
            "clients": outcomes.iter().map(table::client_json).collect::<Vec<_>>(),
        });
        println!("{doc:#}");
    } else {
        print_text(scenario, about, &plan, &outcomes, schedule);
    }
    Ok(())
}

fn print_text(scenario: &str, about: &str, plan: &Plan, outcomes: &[Outcome], schedule: &Schedule) {
    println!(
        "poolbench {scenario}: {about}\n{} clients side by side, each with {} senders (own pool each), \
         {} POSTs per client, every {} ms ± {} ms, seed {}\n",
        outcomes.len(),
        plan.senders,
        plan.requests,
        ms(plan.interval),
        ms(plan.jitter),
        plan.seed,
    );
    print!("{}", table::render(outcomes));
    if let Some(path) = &schedule.plot {
        println!("\nplot: {}", path.display());
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn close_name(close: Close) -> &'static str {
    freshpool_origin::CloseMode::from(close).as_str()
}
