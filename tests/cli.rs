//! The command line as an operator meets it, through the real binary: strict configuration in
//! `check-config`, `--help`, `demo --config` and port-in-use (the dead-letter commands are in
//! cli_dead_letters.rs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_freshtap");
const TOKEN: &str = "cli-token";

/// A temporary directory (the working directory of each run) with a configuration file.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("freshtap.toml");
        std::fs::write(&config, toml).expect("write config");
        Self { dir, config }
    }

    /// A relay on a free port delivering to `simulator_url`, plus `extra` TOML.
    fn relay(port: u16, simulator_url: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("freshtap.db");
        let toml = format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\ndrain_secs = 0\n\
             [queue]\nurl = \"sqlite://{}\"\n\
             [clevertap.accounts.main]\naccount_id = \"CLI-ACC\"\npasscode = \"cli-pass\"\n\
             base_url = \"{simulator_url}\"\n\
             [auth]\ntoken = \"{TOKEN}\"\n[log]\nlevel = \"warn\"\n{extra}",
            db.display()
        );
        let config = dir.path().join("freshtap.toml");
        std::fs::write(&config, toml).expect("write config");
        Self { dir, config }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("FRESHTAP_CONFIG")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("binary runs")
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn check_config_names_every_unknown_key_its_source_and_the_nearest_key() {
    let setup = Setup::new("[server]\nbnd = \"0.0.0.0:9\"\n[atuh]\ntoken = \"t\"\n");
    let output = setup
        .command(&["check-config"])
        .env("FRESHTAP__SERVR__BIND", "0.0.0.0:9")
        .output()
        .expect("runs");
    assert!(!output.status.success(), "a misspelled key is refused");
    let text = stderr(&output);
    assert!(
        text.contains("freshtap.toml: `server.bnd`: unknown key; did you mean `server.bind`?"),
        "{text}"
    );
    assert!(
        text.contains("`atuh`: unknown key; did you mean `auth`?"),
        "{text}"
    );
    assert!(
        text.contains(
            "FRESHTAP__SERVR__BIND: `servr`: unknown key; did you mean `server` \
             (FRESHTAP__SERVER__BIND)?"
        ),
        "{text}"
    );
    // serve refuses the same file.
    let serve = setup.run(&["serve"]);
    assert!(!serve.status.success());
    assert!(stderr(&serve).contains("`server.bnd`: unknown key"));
}

#[test]
fn check_config_lists_global_mapping_enum_template_and_queue_problems_together() {
    let setup = Setup::new(
        "[queue]\nurl = \"mysql://db/x\"\n\
         [mapping]\ndefault_region = \"UK\"\n\
         [clevertap.accounts.main]\naccount_id = \"A\"\npasscode = \"p\"\n\
         [auth]\ntoken = \"t\"\n\
         [routes.contacts]\naccount = \"main\"\ntemplate = \"broken.json\"\n\
         [routes.extra]\naccount = \"nobody\"\nmode = \"passthrough\"\n",
    );
    setup.file(
        "broken.json",
        "{\"d\":[{\"type\":\"profile\",\n \"identity\":\"{{ contact_email ~ }}\"}]}",
    );
    let output = setup.run(&["check-config"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    for expected in [
        "mapping.default_region = \"UK\" is not an ISO 3166 alpha-2 region \
         (FRESHTAP__MAPPING__DEFAULT_REGION); did you mean \"GB\"?",
        "queue.url (FRESHTAP__QUEUE__URL) must start with sqlite:// or postgres://",
        "routes.extra.account = \"nobody\" names no [clevertap.accounts.nobody] table",
        "broken.json:2: d[0].identity: cannot compile expression",
        "in \"{{ contact_email ~ }}\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("route main"), "{text}");

    let enum_setup = Setup::new("[log]\nformat = \"jsn\"\n");
    let text = stderr(&enum_setup.run(&["check-config"]));
    assert!(
        text.contains("`log.format` = \"jsn\": not one of \"json\", \"pretty\""),
        "{text}"
    );
}

#[test]
fn help_names_the_environment_and_every_option_says_what_it_does() {
    let setup = Setup::new("");
    let top = String::from_utf8_lossy(&setup.run(&["--help"]).stdout).into_owned();
    assert!(top.contains("FRESHTAP_CONFIG"), "{top}");
    assert!(top.contains("FRESHTAP__SERVER__BIND"), "{top}");
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["demo"],
        &["check-config"],
        &["render"],
        &["healthcheck"],
        &["simulate-clevertap"],
        &["dead-letters", "list"],
        &["dead-letters", "show"],
        &["dead-letters", "fix"],
        &["dead-letters", "replay"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let help = String::from_utf8_lossy(&setup.run(&args).stdout).into_owned();
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let option = line.trim_start();
            if option.starts_with('-') || (option.starts_with('<') && line.starts_with("  ")) {
                // clap puts the text after the option, or on the next line when it is long.
                let inline = option
                    .split_once("  ")
                    .is_some_and(|(_, text)| !text.trim().is_empty());
                let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
                let below = !next.is_empty() && !next.starts_with('-') && !next.starts_with('<');
                assert!(inline || below, "{command:?}: `{line}` has no help text");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_with_a_config_file_serves_its_routes_against_the_simulator() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routes.example.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let child = Command::new(BIN)
        .args([
            "demo",
            "--bind",
            "127.0.0.1:0",
            "--simulator-bind",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&example)
        .current_dir(dir.path())
        .env_remove("FRESHTAP_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let mut demo = Running(child);
    let stdout = demo.0.stdout.take().expect("stdout");
    // The banner is read to its end (the demo must never write to a closed pipe); the two
    // URLs come back as soon as they are printed.
    let (urls, found) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut deals = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let url = line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(str::to_owned);
            if line.contains("/webhooks/deals") {
                deals = url.clone();
            }
            if line.contains("/_sim/stats") {
                let _ = urls.send((deals.clone(), url));
            }
        }
    });
    let (deals, stats) = match found.recv_timeout(Duration::from_secs(20)) {
        Ok((Some(deals), Some(stats))) => (deals, stats),
        other => panic!("the demo's banner lists no deals route or simulator: {other:?}"),
    };
    let client = reqwest::Client::new();
    // A US-account deal (month first, as the example's deals route says), won.
    let deal = r#"{"id":"88","name":"Fleet renewal","deal_stage_name":"Won","amount":"1200",
        "contact_email":"Buyer@Example.com","updated_at":"11-26-2026 09:14:33"}"#;
    let response = client
        .post(&deals)
        .header("X-Freshtap-Token", "demo-token")
        .header("Content-Type", "application/json")
        .body(deal)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let profile_url = stats.replace("/_sim/stats", "/_sim/profiles/buyer@example.com");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = client.get(&profile_url).send().await.expect("sim answers");
        if found.status().is_success() {
            let profile: Value = found.json().await.expect("json");
            assert!(
                profile.to_string().contains("Fleet renewal"),
                "the deal reached CleverTap's profile: {profile}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deal never reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_port_in_use_names_the_key_variable_or_flag_that_moves_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let setup = Setup::relay(port, "http://127.0.0.1:9", "");
    let output = setup.run(&["serve"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(
        text.contains("server.bind") && text.contains("FRESHTAP__SERVER__BIND"),
        "{text}"
    );

    let taken = format!("127.0.0.1:{port}");
    let demo = demo_output(&["--simulator-bind", "127.0.0.1:0", "--bind", &taken]);
    assert!(!demo.status.success());
    assert!(stderr(&demo).contains("--bind"), "{}", stderr(&demo));
    let sim_taken = demo_output(&["--bind", "127.0.0.1:0", "--simulator-bind", &taken]);
    assert!(!sim_taken.status.success());
    assert!(
        stderr(&sim_taken).contains("--simulator-bind"),
        "{}",
        stderr(&sim_taken)
    );
}

/// `freshtap demo ARGS` run to its end, in a temporary directory.
fn demo_output(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    Command::new(BIN)
        .arg("demo")
        .args(args)
        .current_dir(dir.path())
        .env_remove("FRESHTAP_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

#[test]
fn numeric_secrets_and_numbers_from_the_environment_are_read() {
    let setup = Setup::new("");
    let output = setup
        .command(&["check-config"])
        .env("FRESHTAP__AUTH__TOKEN", "123456")
        .env("FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__ACCOUNT_ID", "1234")
        .env("FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASSCODE", "987")
        .env("FRESHTAP__DELIVERY__MAX_IN_FLIGHT", "0")
        .output()
        .expect("runs");
    let text = stderr(&output);
    // The digits-only token and passcode load; the number is read and checked.
    assert!(
        text.contains("delivery.max_in_flight must be at least 1"),
        "{text}"
    );
    assert!(text.contains("(1 problem)"), "{text}");
}
