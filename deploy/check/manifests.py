#!/usr/bin/env python3
"""Static checks of Emberline's K3s manifests (no cluster needed).

    manifests.py check           render every overlay with kustomize and check it (exit 1 on any problem)
    manifests.py render OVERLAY  print one overlay's objects as a JSON list (used by the Rust test
                                 deploy/check/tests/manifests.rs, which checks flags and env vars)
    manifests.py self-test       feed known-bad objects to every rule; fail if one stays silent

`check` does, for each overlay under deploy/k3s/overlays:
  1. `kubectl kustomize` (kubectl's built-in kustomize; scripts/install-tools provides one);
  2. Kubernetes' own objects against the Kubernetes JSON schemas (kubernetes-validate, strict:
     unknown fields are errors), for the oldest and the newest Kubernetes we claim;
  3. the operators' objects (Strimzi, CloudNativePG, prometheus-operator) against the schemas in
     crd_schemas.py, written from the operators' API references: required fields, types, enums;
  4. the house rules in `policy_problems`: limits, probes, non-root, no `latest`, no Secret
     objects, no envFrom, PDBs, HPAs, and production's replication settings;
  5. and once for all overlays: every emberline/* image they use is built by a Dockerfile target
     that runs as the manifests' user, from pinned base images, without HEALTHCHECK.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "deploy" / "k3s" / "overlays"
CACHE = Path(os.environ.get("EMBERLINE_CACHE", Path.home() / ".cache" / "emberline"))
# kubernetes-validate and PyYAML live here (scripts/install-tools), not in the system Python.
sys.path.insert(0, str(CACHE / "tools" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The Kubernetes versions validated against: K3s releases we support, oldest and newest.
KUBERNETES_VERSIONS = ("1.30", "1.37")

WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob"}
LONG_RUNNING = {"Deployment", "DaemonSet", "StatefulSet"}
TOPICS = {"raw-data", "anomaly-data", "agent-status", "raw-data.dlq", "anomaly-data.dlq"}
# Deployments that must scale on their own (design §8): the bridge and the hub's roles.
AUTOSCALED = {"emberline-bridge", "emberline-hub-detect", "emberline-hub-write"}
# Secrets the manifests may reference: made by deploy/k3s/create-secrets, or by CloudNativePG.
SECRETS = {"emberline-agent-tokens", "emberline-bridge-tokens", "emberline-device-tokens", "emberline-db-app"}

# Containers allowed to start as root, each with the reason. Nothing else may.
ROOT_ALLOWED = {
    ("DaemonSet", "emberline-agent", "buffer-dir"):
        "gives the hostPath buffer directory to the agent's user; CAP_CHOWN only",
}


def kubectl() -> str:
    for candidate in (os.environ.get("EMBERLINE_KUBECTL"), str(CACHE / "tools" / "bin" / "kubectl")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("kubectl")
    if not found:
        sys.exit("kubectl not found: run scripts/install-tools (it installs a pinned one into the tool cache)")
    return found


def overlays() -> list[Path]:
    return sorted(p for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())


def render(overlay: Path) -> list[dict]:
    import yaml

    result = subprocess.run([kubectl(), "kustomize", str(overlay)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"kustomize failed for {overlay.name}:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def name_of(obj: dict) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')} {meta.get('namespace', '-')}/{meta.get('name')}"


# --- 2. Kubernetes schemas ----------------------------------------------------------------------

# Validating is slow (the schemas are loaded per call); the self-test validates the same
# objects many times over.
_validated: dict[str, list[str]] = {}


def schema_problems(objects: list[dict]) -> list[str]:
    from crd_schemas import CUSTOM_KINDS

    problems = []
    for obj in objects:
        if (obj.get("apiVersion"), obj.get("kind")) in CUSTOM_KINDS:
            continue
        key = json.dumps(obj, sort_keys=True)
        if key not in _validated:
            _validated[key] = [p for version in KUBERNETES_VERSIONS for p in validate_builtin(obj, version)]
        problems += _validated[key]
    return problems


def validate_builtin(obj: dict, version: str) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.path)
        return [f"{name_of(obj)}: Kubernetes {version} schema: {path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name_of(obj)}: no Kubernetes {version} schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    return []


# --- 3. the operators' objects ------------------------------------------------------------------

def custom_problems(objects: list[dict]) -> list[str]:
    import jsonschema
    from crd_schemas import CUSTOM_KINDS

    problems = []
    for obj in objects:
        schema = CUSTOM_KINDS.get((obj.get("apiVersion"), obj.get("kind")))
        if schema is None:
            continue
        validator = jsonschema.Draft202012Validator(schema)
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
            path = "/".join(str(p) for p in error.path)
            problems.append(f"{name_of(obj)}: {path}: {error.message}")
    return problems


# --- 4. house rules -----------------------------------------------------------------------------

def pod_spec(obj: dict) -> dict | None:
    spec = obj.get("spec", {})
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec") if obj.get("kind") in WORKLOADS else None


def container_problems(obj: dict, pod: dict) -> list[str]:
    problems = []
    kind, name = obj["kind"], obj["metadata"]["name"]
    pod_context = pod.get("securityContext", {})
    for init, containers in ((True, pod.get("initContainers", [])), (False, pod.get("containers", []))):
        for c in containers:
            where = f"{name_of(obj)} container {c.get('name')}"
            image = c.get("image", "")
            last = image.rsplit("/", 1)[-1]
            if "@" not in last and ":" not in last:
                problems.append(f"{where}: image {image!r} has no tag (that means latest)")
            elif last.endswith(":latest"):
                problems.append(f"{where}: image {image!r} is tagged latest")
            resources = c.get("resources", {})
            for field in ("limits", "requests"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(field, {}):
                        problems.append(f"{where}: no {field}.{resource}")
            if kind in LONG_RUNNING and not init:
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in c:
                        problems.append(f"{where}: no {probe}")
            if c.get("envFrom"):
                problems.append(f"{where}: envFrom hides variable names from the flag check; list env one by one")
            problems += security_problems(where, (kind, name, c.get("name")), pod_context, c.get("securityContext", {}))
    return problems


def security_problems(where: str, key: tuple, pod_context: dict, context: dict) -> list[str]:
    problems = []
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
    if "ALL" not in context.get("capabilities", {}).get("drop", []):
        problems.append(f"{where}: securityContext.capabilities.drop must contain ALL")
    if context.get("privileged"):
        problems.append(f"{where}: privileged")
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    user = context.get("runAsUser", pod_context.get("runAsUser"))
    if key in ROOT_ALLOWED:
        added = set(context.get("capabilities", {}).get("add", []))
        if not added <= {"CHOWN"}:
            problems.append(f"{where}: may run as root only with CAP_CHOWN, has {sorted(added)}")
    elif non_root is not True or user == 0:
        problems.append(f"{where}: must run as non-root (runAsNonRoot: true, runAsUser not 0)")
    elif context.get("capabilities", {}).get("add"):
        problems.append(f"{where}: adds capabilities {context['capabilities']['add']}")
    return problems


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels", {})
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, op = labels.get(expression["key"]), expression["operator"]
        if op == "In" and value not in expression["values"]:
            return False
        if op == "NotIn" and value in expression["values"]:
            return False
    return bool(match or selector.get("matchExpressions"))


def policy_problems(objects: list[dict], overlay: str) -> list[str]:
    problems = []
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append(obj)
        if obj.get("kind") == "Secret":
            problems.append(f"{name_of(obj)}: Secrets are never committed; deploy/k3s/create-secrets makes them")
        pod = pod_spec(obj)
        if pod is not None:
            problems += container_problems(obj, pod)
            problems += secret_reference_problems(obj, pod)
    for deployment in by_kind.get("Deployment", []):
        name, labels = deployment["metadata"]["name"], deployment["spec"]["template"]["metadata"].get("labels", {})
        if not any(selects(pdb["spec"].get("selector", {}), labels) for pdb in by_kind.get("PodDisruptionBudget", [])):
            problems.append(f"{name_of(deployment)}: no PodDisruptionBudget selects it")
        if not deployment["spec"]["template"]["spec"].get("topologySpreadConstraints"):
            problems.append(f"{name_of(deployment)}: no topologySpreadConstraints")
        if name in AUTOSCALED and not any(
            hpa["spec"]["scaleTargetRef"].get("name") == name for hpa in by_kind.get("HorizontalPodAutoscaler", [])
        ):
            problems.append(f"{name_of(deployment)}: no HorizontalPodAutoscaler")
    daemonsets = [d for d in by_kind.get("DaemonSet", []) if d["metadata"]["name"] == "emberline-agent"]
    if len(daemonsets) != 1:
        problems.append(f"{overlay}: expected one DaemonSet emberline-agent")
    elif daemonsets[0]["spec"]["template"]["spec"].get("nodeSelector") != {"emberline.io/edge": "true"}:
        problems.append(f"{name_of(daemonsets[0])}: must run exactly on nodes labelled emberline.io/edge=true")
    if overlay == "production":
        problems += production_problems(by_kind)
    return problems


def secret_reference_problems(obj: dict, pod: dict) -> list[str]:
    names = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
    return [f"{name_of(obj)}: references Secret {n}, which nothing creates" for n in sorted(names - SECRETS)]


def production_problems(by_kind: dict[str, list[dict]]) -> list[str]:
    problems = []
    kafkas = by_kind.get("Kafka", [])
    if len(kafkas) != 1:
        return problems + [f"production: expected one Kafka, found {len(kafkas)}"]
    config = kafkas[0]["spec"]["kafka"].get("config", {})
    for key, wanted in (("default.replication.factor", 3), ("min.insync.replicas", 2), ("offsets.topic.replication.factor", 3)):
        if config.get(key) != wanted:
            problems.append(f"{name_of(kafkas[0])}: {key} must be {wanted}, is {config.get(key)}")
    pools = [p["spec"] for p in by_kind.get("KafkaNodePool", [])]
    brokers = sum(p.get("replicas", 0) for p in pools if "broker" in p.get("roles", []))
    controllers = sum(p.get("replicas", 0) for p in pools if "controller" in p.get("roles", []))
    if brokers < 3 or controllers < 3:
        problems.append(f"production: KRaft needs 3 brokers and 3 controllers, has {brokers} and {controllers}")
    topics = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in by_kind.get("KafkaTopic", [])}
    if set(topics) != TOPICS:
        problems.append(f"production: KafkaTopics {sorted(topics)}, expected {sorted(TOPICS)}")
    for name, topic in topics.items():
        if topic["spec"].get("replicas") != 3 or topic["spec"].get("config", {}).get("min.insync.replicas") != 2:
            problems.append(f"{name_of(topic)}: topic {name} needs replicas 3 and min.insync.replicas 2")
    clusters = by_kind.get("Cluster", [])
    if len(clusters) != 1 or clusters[0]["spec"].get("instances") != 3:
        problems.append("production: expected one CloudNativePG Cluster of 3 instances")
    return problems


# --- 5. the images ------------------------------------------------------------------------------

DOCKER = ROOT / "deploy" / "docker"
IMAGE_USER = "65532"


def docker_problems(objects_by_overlay: dict[str, list[dict]]) -> list[str]:
    """The Dockerfiles build every image the manifests name, as the user the manifests expect."""
    problems = []
    stages: dict[str, list[str]] = {}
    for dockerfile in (DOCKER / "Dockerfile", DOCKER / "tansu.Dockerfile"):
        current = dockerfile.name
        for line in dockerfile.read_text().splitlines():
            words = line.split()
            if words[:1] == ["FROM"]:
                base = words[1]
                pinned = ":" in base.rsplit("/", 1)[-1] and not base.endswith(":latest")
                if base not in stages and "${" not in base and not pinned:
                    problems.append(f"{dockerfile.name}: FROM {base} is not pinned to a tag")
                current = words[3] if len(words) > 3 and words[2].upper() == "AS" else dockerfile.name
                stages[current] = list(stages.get(words[1], []))  # a stage inherits its base's lines
            elif words:
                stages.setdefault(current, []).append(line.strip())
            if words[:1] == ["HEALTHCHECK"]:
                problems.append(f"{dockerfile.name}: HEALTHCHECK (Kubernetes probes do that)")
    images = set()
    for objects in objects_by_overlay.values():
        for obj in objects:
            pod = pod_spec(obj)
            for c in (pod or {}).get("containers", []) + (pod or {}).get("initContainers", []):
                repository = c.get("image", "").split("@")[0].rsplit(":", 1)[0]
                if repository.rsplit("/", 2)[-2:-1] == ["emberline"]:
                    images.add(repository.rsplit("/", 1)[-1])
    for image in sorted(images):
        lines = stages.get(image) or stages.get("tansu.Dockerfile" if image == "tansu" else image)
        if not lines:
            problems.append(f"image emberline/{image}: no Dockerfile target builds it")
        elif f"USER {IMAGE_USER}:{IMAGE_USER}" not in lines:
            problems.append(f"image emberline/{image}: does not run as {IMAGE_USER}, the manifests' runAsUser")
    return problems


# --- commands -----------------------------------------------------------------------------------

def check() -> int:
    failures = 0
    rendered = {}
    for overlay in overlays():
        try:
            objects = render(overlay)
        except RuntimeError as error:
            print(error, file=sys.stderr)
            failures += 1
            continue
        rendered[overlay.name] = objects
        problems = schema_problems(objects) + custom_problems(objects) + policy_problems(objects, overlay.name)
        kinds = sorted({o["kind"] for o in objects})
        if problems:
            failures += len(problems)
            print(f"{overlay.name}: {len(problems)} problem(s)", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
        else:
            print(f"{overlay.name}: {len(objects)} objects ({', '.join(kinds)}) — kustomize, Kubernetes "
                  f"{' and '.join(KUBERNETES_VERSIONS)} schemas, operator schemas and policy: ok")
    problems = docker_problems(rendered)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    if not problems:
        print(f"images: every emberline/* image the manifests use is a Dockerfile target running as {IMAGE_USER}: ok")
    return 1 if failures or problems else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        return check()
    if argv[:1] == ["render"] and len(argv) == 2:
        print(json.dumps(render(OVERLAYS / argv[1])))
        return 0
    if argv[:1] == ["self-test"]:
        from self_test import run

        return run()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
