//! `emberline-deploy-check`: what the K3s manifests (`deploy/k3s`) must agree on with the
//! binaries, checked against the binaries' own definitions rather than a copied list.
//!
//! The manifests arrive rendered, as the JSON list `deploy/check/manifests.py render OVERLAY`
//! prints (kustomize's output). From them:
//! - [`containers`]: every container of every workload, with its image, args and env;
//! - [`Binary`]: which Emberline binary an image holds, and that binary's clap `Command`;
//! - [`env_problems`]: variables a container sets that its binary never reads — a typo such as
//!   `EMBERLINE_BRIDGE_LISTN` would otherwise be ignored silently and the default used;
//! - [`exported_series`] / [`unknown_metrics`]: the series the binaries export (from their own
//!   registries) and the `emberline_*` names in PromQL that none of them exports.
//!
//! `tests/manifests.rs` runs these over every overlay, and also parses each container's
//! configuration with the binary's own parser and `validate()`.
//!
//! Schema, security and resource rules are `deploy/check/manifests.py`'s (it needs the
//! Kubernetes schemas); this crate holds what needs the Rust definitions.

use std::collections::BTreeSet;

use clap::CommandFactory as _;
use serde_json::Value;

/// One container of a workload, as the cluster would start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// `Kind namespace/name container`, for messages.
    pub place: String,
    pub image: String,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    /// `containerPort`s.
    pub ports: Vec<u64>,
}

/// An environment variable with the value the process would see. Values only the cluster
/// knows (a Secret's key, the node's name) get a stand-in of the right shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// Every container (init containers too) of every Deployment, DaemonSet, StatefulSet, Job and
/// CronJob.
pub fn containers(objects: &[Value]) -> Vec<Container> {
    let mut found = Vec::new();
    for object in objects {
        let Some(pod) = pod_spec(object) else {
            continue;
        };
        let workload = format!(
            "{} {}/{}",
            text(&object["kind"]),
            text(&object["metadata"]["namespace"]),
            text(&object["metadata"]["name"])
        );
        for list in ["initContainers", "containers"] {
            for container in pod[list].as_array().into_iter().flatten() {
                found.push(Container {
                    place: format!("{workload} container {}", text(&container["name"])),
                    image: text(&container["image"]).to_owned(),
                    args: strings(&container["args"]),
                    env: env_of(&container["env"]),
                    ports: container["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|port| port["containerPort"].as_u64())
                        .collect(),
                });
            }
        }
    }
    found
}

fn pod_spec(object: &Value) -> Option<&Value> {
    let spec = match object["kind"].as_str()? {
        "Deployment" | "DaemonSet" | "StatefulSet" | "Job" => &object["spec"]["template"]["spec"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    Some(spec)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn strings(value: &Value) -> Vec<String> {
    let items = value.as_array().into_iter().flatten();
    items.map(|item| text(item).to_owned()).collect()
}

/// The env list in order, `$(NAME)` references expanded as Kubernetes does (only names defined
/// earlier in the list; anything else stays as written).
fn env_of(list: &Value) -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = Vec::new();
    for entry in list.as_array().into_iter().flatten() {
        let value = match entry.get("value") {
            Some(value) => expand(text(value), &env),
            None => stand_in(&entry["valueFrom"]),
        };
        env.push(EnvVar {
            name: text(&entry["name"]).to_owned(),
            value,
        });
    }
    env
}

fn expand(value: &str, earlier: &[EnvVar]) -> String {
    let mut expanded = value.to_owned();
    for var in earlier {
        expanded = expanded.replace(&format!("$({})", var.name), &var.value);
    }
    expanded
}

fn stand_in(value_from: &Value) -> String {
    if text(&value_from["fieldRef"]["fieldPath"]) == "spec.nodeName" {
        return "edge-node-1".into();
    }
    match text(&value_from["secretKeyRef"]["key"]) {
        "uri" => "postgresql://emberline:secret@emberline-db-rw:5432/emberline".into(),
        _ => "a-secret-value-from-the-cluster".into(),
    }
}

/// An Emberline binary, recognised by its image's repository (`…/emberline/<name>:<tag>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Agent,
    Bridge,
    Hub,
    Dashboard,
    /// `emberline-stack`, for the single-node topics Job. Its parser lives in its `main.rs`,
    /// so the test asks the binary itself.
    Stack,
}

impl Binary {
    pub fn of_image(image: &str) -> Option<Self> {
        let repository = image.split('@').next().unwrap_or(image);
        let repository = match repository.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => name,
            _ => repository,
        };
        let mut segments = repository.rsplit('/');
        let (name, owner) = (segments.next()?, segments.next()?);
        if owner != "emberline" {
            return None;
        }
        match name {
            "agent" => Some(Self::Agent),
            "bridge" => Some(Self::Bridge),
            "hub" => Some(Self::Hub),
            "dashboard" => Some(Self::Dashboard),
            "stack" => Some(Self::Stack),
            _ => None,
        }
    }

    pub fn file_name(self) -> &'static str {
        match self {
            Self::Agent => "emberline-agent",
            Self::Bridge => "emberline-bridge",
            Self::Hub => "emberline-hub",
            Self::Dashboard => "emberline-dashboard",
            Self::Stack => "emberline-stack",
        }
    }

    /// The binary's clap definition, the very one its `main` parses with.
    pub fn command(self) -> Option<clap::Command> {
        match self {
            Self::Agent => Some(emberline_agent::config::Cli::command()),
            Self::Bridge => Some(emberline_bridge::config::Config::command()),
            Self::Hub => Some(emberline_hub::config::Cli::command()),
            Self::Dashboard => Some(emberline_dashboard::config::Config::command()),
            Self::Stack => None,
        }
    }

    /// Variables the binary reads outside clap, with `std::env` or a logging filter.
    pub fn extra_env(self) -> &'static [&'static str] {
        match self {
            // `run.rs`: the agent's token when no --agent-token-file is given.
            Self::Agent => &["RUST_LOG", "EMBERLINE_AGENT_TOKEN"],
            _ => &["RUST_LOG"],
        }
    }
}

/// The variables `command` reads for the subcommands `args` name: the root's arguments, then
/// each subcommand's along the way.
pub fn accepted_env(command: &clap::Command, args: &[String]) -> BTreeSet<String> {
    let mut names = env_names(command);
    let mut current = command;
    for arg in args {
        if let Some(sub) = current.find_subcommand(arg) {
            names.extend(env_names(sub));
            current = sub;
        }
    }
    names
}

fn env_names(command: &clap::Command) -> BTreeSet<String> {
    let envs = command.get_arguments().filter_map(clap::Arg::get_env);
    envs.map(|name| name.to_string_lossy().into_owned())
        .collect()
}

/// One line per variable `container` sets that its binary does not read, with the nearest
/// name it does read.
pub fn env_problems(
    container: &Container,
    binary: Binary,
    accepted: &BTreeSet<String>,
) -> Vec<String> {
    let known = |name: &str| accepted.contains(name) || binary.extra_env().contains(&name);
    let unknown = container.env.iter().filter(|var| !known(&var.name));
    unknown
        .map(|var| {
            let nearest = accepted
                .iter()
                .min_by_key(|name| edit_distance(name, &var.name));
            format!(
                "{}: {} is not read by {} (nearest: {})",
                container.place,
                var.name,
                binary.file_name(),
                nearest.map_or("none", String::as_str)
            )
        })
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The series names a text exposition offers, from its `# TYPE` lines (families with no
/// samples yet included): counters as `_total`, histograms as `_bucket`, `_sum`, `_count`.
pub fn exported_series(exposition: &str) -> BTreeSet<String> {
    let mut series = BTreeSet::new();
    for line in exposition.lines() {
        let mut words = line
            .strip_prefix("# TYPE ")
            .into_iter()
            .flat_map(str::split_whitespace);
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => series.extend([format!("{name}_total"), format!("{name}_created")]),
            "histogram" => series.extend(["bucket", "sum", "count"].map(|s| format!("{name}_{s}"))),
            "info" => series.extend([format!("{name}_info")]),
            _ => series.extend([name.to_owned()]),
        }
    }
    series
}

/// Every series the four services export, read from their own metric registries. A labelled
/// family appears only once it has a child, so each gets one through the services' own calls.
pub fn all_exported_series() -> Result<BTreeSet<String>, std::fmt::Error> {
    let agent_metrics = emberline_agent::metrics::Metrics::default();
    agent_metrics.reading("http", "accepted", 1);
    agent_metrics.batch("delivered");
    let agent_registry = agent_metrics.registry(&emberline_agent::buffer::Gauges::default());
    let mut agent = String::new();
    prometheus_client::encoding::text::encode(&mut agent, &agent_registry)?;
    let bridge = emberline_bridge::metrics::Metrics::new();
    bridge.reject("example");
    let hub = emberline_hub::metrics::Metrics::new();
    hub.records_done("raw-data", 1);
    hub.dead_letter("raw-data", "example");
    hub.retry("kafka");
    hub.reload("applied");
    hub.rules_version("example");
    hub.set_lags(&[("raw-data".to_owned(), 0, 1)]);
    let dashboard = emberline_dashboard::metrics::Metrics::new();
    dashboard.request("/", 200, 0.01);
    dashboard.live_record("pushed");
    let texts = [
        agent,
        bridge.render(0, 0)?,
        hub.render()?,
        dashboard.render()?,
    ];
    Ok(texts
        .iter()
        .flat_map(|text| exported_series(text))
        .collect())
}

/// The `emberline_*` names in `promql` that are not in `exported`.
pub fn unknown_metrics(promql: &str, exported: &BTreeSet<String>) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut unknown = Vec::new();
    let mut rest = promql;
    while let Some(start) = rest.find("emberline_") {
        let boundary = rest[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_name(c));
        let tail = &rest[start..];
        let end = tail.find(|c: char| !is_name(c)).unwrap_or(tail.len());
        if boundary && !exported.contains(&tail[..end]) {
            unknown.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_name_their_binary() {
        assert_eq!(
            Binary::of_image("emberline/agent:0.1.0"),
            Some(Binary::Agent)
        );
        let pushed = "registry.example:5000/emberline/hub:0.1.0";
        assert_eq!(Binary::of_image(pushed), Some(Binary::Hub));
        assert_eq!(
            Binary::of_image("ghcr.io/x/emberline/stack@sha256:ab"),
            Some(Binary::Stack)
        );
        assert_eq!(Binary::of_image("postgres:17.6-bookworm"), None);
        assert_eq!(Binary::of_image("emberline/tansu:0.6.0"), None);
    }

    #[test]
    fn env_references_expand_like_kubernetes() {
        let list = serde_json::json!([
            {"name": "EMBERLINE_AGENT_ID", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "EMBERLINE_AGENT_TOKEN_FILE", "value": "/t/$(EMBERLINE_AGENT_ID)"},
            {"name": "X", "value": "$(LATER)"},
            {"name": "LATER", "value": "1"},
        ]);
        let env = env_of(&list);
        assert_eq!(env[1].value, "/t/edge-node-1");
        assert_eq!(env[2].value, "$(LATER)");
    }

    #[test]
    fn a_misspelt_variable_is_named_with_the_right_one() {
        let container = Container {
            place: "Deployment emberline/emberline-bridge container bridge".into(),
            image: "emberline/bridge:0.1.0".into(),
            args: vec![],
            env: vec![
                EnvVar {
                    name: "EMBERLINE_BRIDGE_LISTN".into(),
                    value: "0.0.0.0:8081".into(),
                },
                EnvVar {
                    name: "RUST_LOG".into(),
                    value: "info".into(),
                },
            ],
            ports: vec![8081],
        };
        let command = Binary::Bridge.command().unwrap();
        let accepted = accepted_env(&command, &container.args);
        let problems = env_problems(&container, Binary::Bridge, &accepted);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("nearest: EMBERLINE_BRIDGE_LISTEN"),
            "{problems:?}"
        );
    }

    #[test]
    fn subcommands_bring_their_own_variables() {
        let command = Binary::Hub.command().unwrap();
        let detect = accepted_env(&command, &["detect".into()]);
        assert!(detect.contains("EMBERLINE_DETECT_PROFILE"));
        assert!(
            detect.contains("EMBERLINE_LOG_FORMAT"),
            "the root's global flag"
        );
        assert!(
            !detect.contains("EMBERLINE_WRITE_MIGRATE"),
            "another role's flag"
        );
    }

    #[test]
    fn series_come_from_type_lines() {
        let text = "# HELP a_b x\n# TYPE a_b counter\n# TYPE c histogram\n# TYPE d gauge\nd 1\n";
        let series = exported_series(text);
        assert!(
            series.contains("a_b_total") && series.contains("c_bucket") && series.contains("d")
        );
        let used = "sum(rate(emberline_x_total[5m])) / emberline_y and not my_emberline_z";
        let exported = BTreeSet::from(["emberline_x_total".to_owned()]);
        assert_eq!(
            unknown_metrics(used, &exported),
            vec!["emberline_y".to_owned()]
        );
    }
}
