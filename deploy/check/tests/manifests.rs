#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The rendered K3s manifests against the binaries: every variable and flag a container sets is
//! one its binary reads, the configuration parses and passes the binary's own `validate()`,
//! listen addresses match the declared ports, the alerts and the Grafana dashboard use only
//! exported metrics, and production's KafkaTopics are the topics the local stack creates.
//!
//! Rendering needs kubectl (kustomize) and PyYAML: `scripts/install-tools` installs both.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use emberline_deploy_check::{
    Binary, Container, accepted_env, all_exported_series, containers, env_problems, unknown_metrics,
};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn overlays() -> Vec<String> {
    let dir = root().join("deploy/k3s/overlays");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "overlays in {}: {names:?}", dir.display());
    names
}

fn render(overlay: &str) -> Vec<Value> {
    let script = root().join("deploy/check/manifests.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["render", overlay])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "rendering {overlay} failed (run scripts/install-tools?):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every container of every overlay that runs an Emberline binary.
fn emberline_containers() -> Vec<(String, Binary, Container)> {
    let mut found = Vec::new();
    for overlay in overlays() {
        for container in containers(&render(&overlay)) {
            if let Some(binary) = Binary::of_image(&container.image) {
                found.push((overlay.clone(), binary, container));
            }
        }
    }
    let binaries: BTreeSet<&str> = found.iter().map(|(_, b, _)| b.file_name()).collect();
    assert_eq!(
        binaries.len(),
        5,
        "every Emberline binary is deployed: {binaries:?}"
    );
    found
}

#[test]
fn every_variable_is_one_the_binary_reads() {
    let mut problems = Vec::new();
    for (overlay, binary, container) in emberline_containers() {
        let accepted = match binary.command() {
            Some(command) => accepted_env(&command, &container.args),
            None => env_from_help(binary, &container.args),
        };
        let found = env_problems(&container, binary, &accepted);
        problems.extend(found.into_iter().map(|p| format!("{overlay}: {p}")));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// A binary whose parser is not in a library (emberline-stack): its flags and variables as
/// `--help` lists them, and a failure if its arguments are not accepted.
fn env_from_help(binary: Binary, args: &[String]) -> BTreeSet<String> {
    let output = Command::new(binary_path(binary))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} {args:?} is refused:\n{}",
        binary.file_name(),
        String::from_utf8_lossy(&output.stderr)
    );
    let names = help.split("[env: ").skip(1);
    names
        .filter_map(|rest| rest.split('=').next())
        .map(str::to_owned)
        .collect()
}

/// The workspace's binaries sit next to this test's directory (`target/debug/deps/..`);
/// `scripts/test` builds them first.
fn binary_path(binary: Binary) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(binary.file_name());
    assert!(
        path.is_file(),
        "{} is not built: cargo build --workspace",
        path.display()
    );
    path
}

/// Parses each container's configuration exactly as its binary would — the same clap
/// definition reading the same environment — and runs the binary's own `validate()`, so a bad
/// value (`10 s`, a port out of range, a limit too small for another) fails here, not at 3 a.m.
#[test]
#[allow(unsafe_code)]
fn every_configuration_parses_and_validates() {
    let mut problems = Vec::new();
    for (overlay, binary, container) in emberline_containers() {
        if binary == Binary::Stack {
            continue; // args checked by `every_variable_is_one_the_binary_reads`; it has no env here
        }
        for (name, _) in std::env::vars() {
            if name.starts_with("EMBERLINE_") || name == "DATABASE_URL" || name == "RUST_LOG" {
                // SAFETY: nextest (scripts/test) runs every test in a process of its own; under
                // `cargo test` the other tests here only spawn processes, which read the
                // environment through std's own lock, and no C code runs. clap reads env twins
                // from the process environment only, so this is the faithful way to parse.
                unsafe { std::env::remove_var(&name) };
            }
        }
        for var in &container.env {
            // SAFETY: as above.
            unsafe { std::env::set_var(&var.name, &var.value) };
        }
        let argv = std::iter::once(binary.file_name().to_owned()).chain(container.args.clone());
        if let Err(error) = parse_and_validate(binary, argv.collect()) {
            problems.push(format!("{overlay}: {}: {error}", container.place));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

fn parse_and_validate(binary: Binary, argv: Vec<String>) -> Result<(), String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match binary {
        Binary::Agent => {
            let cli = emberline_agent::config::Cli::try_parse_from(argv).map_err(|e| text(&e))?;
            match cli.command {
                emberline_agent::config::Command::Run(args) => {
                    emberline_core::AgentId::parse(args.agent_id).map(drop)
                }
                other => Err(format!("the agent's pods must `run`, not {other:?}")),
            }
        }
        Binary::Bridge => {
            let config =
                emberline_bridge::config::Config::try_parse_from(argv).map_err(|e| text(&e))?;
            config.validate().map_err(|e| text(&e))
        }
        Binary::Hub => {
            use emberline_hub::config::{Cli, Command};
            match Cli::try_parse_from(argv).map_err(|e| text(&e))?.command {
                Command::Detect(config) => config.validate().map_err(|e| text(&e)),
                Command::Write(config) => config.validate().map_err(|e| text(&e)),
                Command::Migrate(_) => Ok(()),
            }
        }
        Binary::Dashboard => {
            let config =
                emberline_dashboard::config::Config::try_parse_from(argv).map_err(|e| text(&e))?;
            config.validate().map_err(|e| text(&e))
        }
        Binary::Stack => Ok(()),
    }
}

/// A service listening on one port while the Pod declares (and probes) another would never
/// become ready; a `127.0.0.1` listen address would be unreachable from the probes.
#[test]
fn listen_addresses_match_the_declared_ports() {
    let mut problems = Vec::new();
    for (overlay, _, container) in emberline_containers() {
        let listening: Vec<&str> = container
            .env
            .iter()
            .filter(|var| var.name.ends_with("_LISTEN"))
            .map(|var| var.value.as_str())
            .collect();
        let mut ports = Vec::new();
        for address in &listening {
            let (host, port) = address.rsplit_once(':').unwrap();
            if host != "0.0.0.0" {
                problems.push(format!(
                    "{overlay}: {}: listens on {address}, unreachable from outside the pod",
                    container.place
                ));
            }
            ports.push(port.parse::<u64>().unwrap());
        }
        ports.sort_unstable();
        let mut declared = container.ports.clone();
        declared.sort_unstable();
        if ports != declared {
            problems.push(format!(
                "{overlay}: {}: listens on {ports:?}, declares {declared:?}",
                container.place
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn alerts_and_the_grafana_dashboard_use_exported_metrics() {
    let exported = all_exported_series().unwrap();
    assert!(
        exported.contains("emberline_agent_buffer_readings"),
        "{exported:?}"
    );
    let objects = render("production");
    let mut expressions = Vec::new();
    for object in &objects {
        match object["kind"].as_str() {
            Some("PrometheusRule") => {
                for group in object["spec"]["groups"].as_array().unwrap() {
                    for rule in group["rules"].as_array().unwrap() {
                        expressions.push(rule["expr"].as_str().unwrap().to_owned());
                    }
                }
            }
            Some("ConfigMap") if object["metadata"]["name"] == "emberline-grafana-dashboard" => {
                let json = object["data"]["emberline.json"].as_str().unwrap();
                let dashboard: Value = serde_json::from_str(json).unwrap();
                for panel in dashboard["panels"].as_array().unwrap() {
                    for target in panel["targets"].as_array().into_iter().flatten() {
                        expressions.push(target["expr"].as_str().unwrap().to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    assert!(
        expressions.len() > 20,
        "rules and panels found: {}",
        expressions.len()
    );
    let unknown: BTreeSet<String> = expressions
        .iter()
        .flat_map(|expr| unknown_metrics(expr, &exported))
        .collect();
    assert!(
        unknown.is_empty(),
        "not exported by any binary: {unknown:?}"
    );
}

#[test]
fn production_topics_are_the_topics_of_the_local_stack() {
    let objects = render("production");
    let mut topics: Vec<(String, i64)> = objects
        .iter()
        .filter(|object| object["kind"] == "KafkaTopic")
        .map(|t| {
            (
                t["spec"]["topicName"].as_str().unwrap().to_owned(),
                t["spec"]["partitions"].as_i64().unwrap(),
            )
        })
        .collect();
    topics.sort();
    let mut expected: Vec<(String, i64)> = emberline_stack::STANDARD_TOPICS
        .iter()
        .map(|(name, partitions)| ((*name).to_owned(), i64::from(*partitions)))
        .collect();
    expected.sort();
    assert_eq!(topics, expected);
}
