//! The real `qstash` binary: flags and their spellings, the environment, the startup output
//! the JS SDK parses, failures, and shutdown on signals.

use std::time::Duration;

use crate::common::binary::{Dev, WAIT, accept_within, free_port, http};
use qstash::users::USERS;

fn keys_of_user_1(port: u16) -> String {
    let (status, body) = http(port, "GET", "/v2/keys", 0, &[]);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn port_0_prints_readiness_then_the_credentials_of_all_four_users() {
    let mut dev = Dev::spawn(&["dev", "-port", "0"], &[]);
    let port = dev.wait_ready();
    assert_ne!(port, 0);
    // The readiness line comes only once the port accepts requests.
    let keys = keys_of_user_1(port);
    assert!(
        keys.contains(USERS[0].current_signing_key) && keys.contains(USERS[0].next_signing_key),
        "{keys}"
    );
    let mut wanted: Vec<String> = USERS
        .iter()
        .flat_map(|u| {
            [
                format!("QSTASH_TOKEN={}", u.token),
                format!("QSTASH_CURRENT_SIGNING_KEY={}", u.current_signing_key),
                format!("QSTASH_NEXT_SIGNING_KEY={}", u.next_signing_key),
            ]
        })
        .collect();
    wanted.retain(|w| !dev.stdout.contains(w));
    while !wanted.is_empty() {
        let line = dev.wait_line("credentials", |l| wanted.iter().any(|w| w == l.trim()));
        wanted.retain(|w| w != line.trim());
    }
    let url_line = dev
        .stdout
        .iter()
        .find(|l| l.starts_with("QSTASH_URL="))
        .unwrap();
    assert_eq!(url_line, &format!("QSTASH_URL=http://127.0.0.1:{port}"));
}

#[test]
fn every_port_flag_spelling_works() {
    for spelling in ["-port N", "-port=N", "--port N", "--port=N"] {
        let port = free_port();
        let args: Vec<String> = spelling
            .replace('N', &port.to_string())
            .split(' ')
            .map(String::from)
            .collect();
        let mut all = vec!["dev"];
        all.extend(args.iter().map(String::as_str));
        let mut dev = Dev::spawn(&all, &[]);
        assert_eq!(dev.wait_ready(), port, "{spelling}");
        keys_of_user_1(port);
    }
}

#[test]
fn the_port_comes_from_the_environment_unless_the_flag_says_otherwise() {
    let from_env = free_port();
    let env_port = from_env.to_string();
    let mut dev = Dev::spawn(&["dev"], &[("QSTASH_DEV_PORT", &env_port)]);
    assert_eq!(dev.wait_ready(), from_env);
    keys_of_user_1(from_env);
    drop(dev);

    let from_flag = free_port();
    let mut dev = Dev::spawn(
        &["dev", "--port", &from_flag.to_string()],
        &[("QSTASH_DEV_PORT", &env_port)],
    );
    assert_eq!(dev.wait_ready(), from_flag, "the flag beats the env var");
    keys_of_user_1(from_flag);
}

#[test]
fn quota_pro_is_accepted_and_raises_the_limits() {
    let publish = |port: u16| {
        http(
            port,
            "POST",
            "/v2/publish/http://127.0.0.1:9/x",
            0,
            &["Upstash-Retries: 20", "Upstash-Delay: 1h"],
        )
    };
    let mut pro = Dev::spawn(&["dev", "-port", "0", "-quota", "pro"], &[]);
    let port = pro.wait_ready();
    let (status, body) = publish(port);
    assert_eq!(status, 200, "pro allows 20 retries: {body}");
    let mut payg = Dev::spawn(&["dev", "-port", "0"], &[]);
    let port = payg.wait_ready();
    let (status, body) = publish(port);
    assert_eq!(status, 412, "payg allows 5 retries (a quota error): {body}");
}

#[test]
fn invalid_flags_exit_non_zero_with_a_one_line_reason_on_stderr() {
    for (args, needle) in [
        (&["dev", "-quota", "gold"][..], "gold"),
        (&["dev", "-quota=gold"][..], "gold"),
        (&["dev", "-port", "abc"][..], "abc"),
        (&["dev", "--port=99999"][..], "99999"),
    ] {
        let mut dev = Dev::spawn(args, &[]);
        let status = dev.wait_exit(WAIT);
        assert!(!status.success(), "{args:?}: {status}");
        let stderr = dev.stderr.lock().unwrap().clone();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr:?}");
        assert!(lines[0].contains(needle), "{args:?}: {stderr:?}");
    }
}

#[test]
fn a_taken_port_is_reported_on_stdout_the_way_the_js_sdk_parses_it() {
    let holder = std::net::TcpListener::bind("0.0.0.0:0").expect("hold a port");
    let port = holder.local_addr().unwrap().port();
    let mut dev = Dev::spawn(&["dev", "-port", &port.to_string()], &[]);
    let status = dev.wait_exit(WAIT);
    assert!(!status.success(), "{status}");
    let last = dev
        .stdout
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| panic!("nothing on stdout; {}", dev.output()));
    // The SDK searches the output for this exact text, then reads the port from a `:(\d+)`
    // at the very end.
    assert!(last.contains("address already in use"), "{last:?}");
    assert!(last.trim_end().ends_with(&format!(":{port}")), "{last:?}");
    drop(holder);
}

#[test]
fn help_lists_every_flag() {
    for help in ["--help", "-help", "-h"] {
        let mut dev = Dev::spawn(&["dev", help], &[]);
        let status = dev.wait_exit(WAIT);
        assert!(status.success(), "{help}: {status}");
        let text = dev.stdout.join("\n");
        for flag in [
            "-port",
            "-quota",
            "-clock-control",
            "QSTASH_DEV_PORT",
            "payg",
            "pro",
        ] {
            assert!(
                text.contains(flag),
                "{help} does not mention {flag}: {text}"
            );
        }
    }
}

#[test]
fn sigterm_and_sigint_stop_it_with_exit_code_0() {
    for signal in ["TERM", "INT"] {
        let mut dev = Dev::spawn(&["dev", "-port", "0"], &[]);
        let port = dev.wait_ready();
        // A delivery that never gets an answer must not hold up the shutdown.
        let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hang_port = hang.local_addr().unwrap().port();
        let (status, body) = http(
            port,
            "POST",
            &format!("/v2/publish/http://127.0.0.1:{hang_port}/hang"),
            0,
            &["Upstash-Timeout: 1h"],
        );
        assert_eq!(status, 200, "{body}");
        let accepted = accept_within(&hang, WAIT);
        dev.signal(signal);
        let status = dev.wait_exit(Duration::from_secs(5));
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{signal}: {status}; {}",
            dev.output()
        );
        drop(accepted);
    }
}

#[test]
fn help_and_version_subcommands_name_this_server() {
    let mut dev = Dev::spawn(&["version"], &[]);
    assert!(dev.wait_exit(WAIT).success());
    let line = dev.stdout.join("\n");
    assert!(line.starts_with("qstash 0."), "{line}");
    let mut dev = Dev::spawn(&["--version"], &[]);
    assert!(dev.wait_exit(WAIT).success());
    assert_eq!(dev.stdout.join("\n"), line);
    let mut dev = Dev::spawn(&["help"], &[]);
    assert!(dev.wait_exit(WAIT).success());
    let help = dev.stdout.join("\n");
    assert!(help.contains("dev") && help.contains("version"), "{help}");
    // The banner says which server answers, with the same version text.
    let mut dev = Dev::spawn(&["dev", "-port", "0"], &[]);
    dev.wait_ready();
    let served = dev
        .stdout
        .iter()
        .find(|l| l.starts_with("Served by"))
        .cloned()
        .unwrap_or_default();
    assert!(
        served.contains(line.trim_start_matches("qstash ")),
        "{served}"
    );
}

#[test]
fn boolean_env_values_and_bad_env_values_are_named() {
    for on in ["1", "true", "yes", "on", "TRUE"] {
        let mut dev = Dev::spawn(&["dev", "-port", "0"], &[("QSTASH_DEV_CLOCK_CONTROL", on)]);
        let port = dev.wait_ready();
        let (status, body) = http(port, "GET", "/__qstash/clock", 0, &[]);
        assert_eq!(status, 200, "QSTASH_DEV_CLOCK_CONTROL={on}: {body}");
    }
    for off in ["0", "false", "no", "off"] {
        let mut dev = Dev::spawn(&["dev", "-port", "0"], &[("QSTASH_DEV_CLOCK_CONTROL", off)]);
        let port = dev.wait_ready();
        let (status, _) = http(port, "GET", "/__qstash/clock", 0, &[]);
        assert_eq!(status, 404, "QSTASH_DEV_CLOCK_CONTROL={off}");
    }
    for (name, value) in [
        ("QSTASH_DEV_CLOCK_CONTROL", "maybe"),
        ("QSTASH_DEV_PORT", "http"),
        ("QSTASH_DEV_HOST", "nowhere"),
    ] {
        let mut dev = Dev::spawn(&["dev"], &[(name, value)]);
        let status = dev.wait_exit(WAIT);
        assert_eq!(status.code(), Some(2));
        let stderr = dev.stderr.lock().unwrap().clone();
        assert!(
            stderr.contains(&format!("{name}=\"{value}\"")) && !stderr.contains("'--"),
            "the variable, not a flag the user never typed: {stderr}"
        );
    }
}
