//! Arguments, help and errors: what a user sees before any scenario runs.

mod support;

use support::{poolbench, stderr};

#[test]
fn help_explains_every_scenario() {
    let output = poolbench(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for scenario in ["race", "throughput", "ablation", "discover", "restart"] {
        assert!(help.contains(scenario), "{scenario} missing from:\n{help}");
    }
    let output = poolbench(&["race", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--target"), "{help}");
    assert!(help.contains("x-request-id"), "{help}");
}

#[test]
fn bad_arguments_are_named_and_exit_with_2() {
    let cases: [(&[&str], &str); 11] = [
        (&["race", "--senders", "0"], "--senders"),
        (&["race", "--interval", "200"], "no unit"),
        (&["race", "--jitter", "3h"], "unknown unit"),
        (
            &["race", "--target", "https://127.0.0.1:1/"],
            "not supported",
        ),
        (&["discover"], "--target"),
        (&["sprint"], "sprint"),
        (&["race", "--gaps", "normal:1..2"], "not a distribution"),
        (
            &["race", "--gaps", "uniform:0.5..1.5", "--jitter", "1ms"],
            "--jitter",
        ),
        (
            &["race", "--slow-body", "100ms", "--idle", "1500ms"],
            "whole",
        ),
        (&["race", "--keep-alive", "--idle", "200ms"], "whole"),
        (&["restart", "--early", "5ms"], "--overload"),
    ];
    for (args, expected) in cases {
        let output = poolbench(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let err = stderr(&output);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn an_unreachable_target_is_one_clear_error() {
    // Bind, learn the port, close: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    for scenario in ["race", "throughput", "discover"] {
        let output = poolbench(&[scenario, "--target", &url]);
        assert_eq!(output.status.code(), Some(1), "{scenario}: {output:?}");
        let err = stderr(&output);
        assert!(
            err.contains("cannot reach") && err.contains(&url),
            "{scenario}: {err}"
        );
        assert!(
            output.stdout.is_empty(),
            "{scenario} printed a report anyway"
        );
    }
}
