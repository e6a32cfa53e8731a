"""`manifests.py self-test`: proves every rule of the checker fires.

Each case takes a correct rendered overlay, breaks one thing, and expects a problem naming it.
A rule that stays silent on its own mistake fails the run: a checker that passes everything
would otherwise look exactly like a good set of manifests.
"""

from __future__ import annotations

import copy
import sys
from typing import Callable

import manifests


def find(objects: list[dict], kind: str, name: str) -> dict:
    for obj in objects:
        if obj.get("kind") == kind and obj["metadata"]["name"] == name:
            return obj
    raise LookupError(f"{kind} {name} not in the rendered overlay")


def container(objects: list[dict], kind: str, name: str, index: int = 0) -> dict:
    return manifests.pod_spec(find(objects, kind, name))["containers"][index]


def drop(objects: list[dict], kind: str, name: str) -> None:
    objects.remove(find(objects, kind, name))


Break = Callable[[list[dict]], None]

CASES: list[tuple[str, str, Break, str]] = [
    ("single-node", "a container without limits",
     lambda o: container(o, "Deployment", "emberline-bridge")["resources"].pop("limits"), "no limits.cpu"),
    ("single-node", "an image tagged latest",
     lambda o: container(o, "Deployment", "emberline-dashboard").update(image="emberline/dashboard:latest"), "tagged latest"),
    ("single-node", "an image without a tag",
     lambda o: container(o, "StatefulSet", "emberline-db").update(image="postgres"), "has no tag"),
    ("single-node", "a service without a readiness probe",
     lambda o: container(o, "Deployment", "emberline-hub-write").pop("readinessProbe"), "no readinessProbe"),
    ("single-node", "a service without a liveness probe",
     lambda o: container(o, "DaemonSet", "emberline-agent").pop("livenessProbe"), "no livenessProbe"),
    ("single-node", "a container that may run as root",
     lambda o: container(o, "Deployment", "emberline-hub-detect")["securityContext"].update(runAsNonRoot=False), "non-root"),
    ("single-node", "a pod running as uid 0",
     lambda o: manifests.pod_spec(find(o, "Deployment", "emberline-bridge"))["securityContext"].update(runAsUser=0), "non-root"),
    ("single-node", "privilege escalation allowed",
     lambda o: container(o, "Deployment", "emberline-bridge")["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    ("single-node", "a writable root filesystem",
     lambda o: container(o, "StatefulSet", "emberline-kafka")["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
    ("single-node", "capabilities kept",
     lambda o: container(o, "Job", "emberline-topics")["securityContext"]["capabilities"].update(drop=[]), "drop must contain ALL"),
    ("single-node", "the root init container asking for more than CAP_CHOWN",
     lambda o: manifests.pod_spec(find(o, "DaemonSet", "emberline-agent"))["initContainers"][0]["securityContext"]["capabilities"]
     .update(add=["CHOWN", "SYS_ADMIN"]), "only with CAP_CHOWN"),
    ("single-node", "a committed Secret",
     lambda o: o.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "oops", "namespace": "emberline"},
                         "stringData": {"password": "hunter2"}}), "never committed"),
    ("single-node", "envFrom",
     lambda o: container(o, "Deployment", "emberline-bridge").update(envFrom=[{"configMapRef": {"name": "x"}}]), "envFrom"),
    ("single-node", "a Secret nothing creates",
     lambda o: container(o, "Deployment", "emberline-dashboard")["env"].append(
         {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "emberline-db-ap", "key": "uri"}}}), "nothing creates"),
    ("single-node", "a misspelt Kubernetes field",
     lambda o: find(o, "Deployment", "emberline-bridge")["spec"].update(replica=3), "schema"),
    ("single-node", "a wrong Kubernetes type",
     lambda o: find(o, "Service", "emberline-bridge")["spec"]["ports"][0].update(port="eighty"), "schema"),
    ("single-node", "a Deployment without a PodDisruptionBudget",
     lambda o: drop(o, "PodDisruptionBudget", "emberline-dashboard"), "no PodDisruptionBudget"),
    ("single-node", "the bridge without an autoscaler",
     lambda o: drop(o, "HorizontalPodAutoscaler", "emberline-bridge"), "no HorizontalPodAutoscaler"),
    ("single-node", "a Deployment without topology spread",
     lambda o: manifests.pod_spec(find(o, "Deployment", "emberline-hub-write")).pop("topologySpreadConstraints"), "topologySpreadConstraints"),
    ("single-node", "agents off the edge nodes",
     lambda o: manifests.pod_spec(find(o, "DaemonSet", "emberline-agent")).update(nodeSelector={"edge": "true"}), "emberline.io/edge=true"),
    ("production", "Kafka with min.insync.replicas 1",
     lambda o: find(o, "Kafka", "emberline")["spec"]["kafka"]["config"].update({"min.insync.replicas": 1}), "min.insync.replicas must be 2"),
    ("production", "two Kafka nodes",
     lambda o: find(o, "KafkaNodePool", "brokers")["spec"].update(replicas=2), "3 brokers"),
    ("production", "a missing dead-letter topic",
     lambda o: drop(o, "KafkaTopic", "raw-data-dlq"), "KafkaTopics"),
    ("production", "a topic with one replica",
     lambda o: find(o, "KafkaTopic", "anomaly-data")["spec"].update(replicas=1), "replicas 3"),
    ("production", "a misspelt KafkaTopic field",
     lambda o: find(o, "KafkaTopic", "raw-data")["spec"].update(partition=6), "Additional properties"),
    ("production", "a KafkaNodePool without roles",
     lambda o: find(o, "KafkaNodePool", "brokers")["spec"].pop("roles"), "'roles' is a required property"),
    ("production", "a listener of an unknown type",
     lambda o: find(o, "Kafka", "emberline")["spec"]["kafka"]["listeners"][0].update(type="internel"), "is not one of"),
    ("production", "a PostgreSQL cluster of one",
     lambda o: find(o, "Cluster", "emberline-db")["spec"].update(instances=1), "3 instances"),
    ("production", "a CloudNativePG cluster without storage",
     lambda o: find(o, "Cluster", "emberline-db")["spec"].pop("storage"), "storage"),
    ("production", "an alert without an expression",
     lambda o: find(o, "PrometheusRule", "emberline")["spec"]["groups"][0]["rules"][0].pop("expr"), "'expr' is a required property"),
    ("production", "a ServiceMonitor without endpoints",
     lambda o: find(o, "ServiceMonitor", "emberline")["spec"].pop("endpoints"), "'endpoints' is a required property"),
]


def problems(objects: list[dict], overlay: str) -> list[str]:
    return (manifests.schema_problems(objects) + manifests.custom_problems(objects)
            + manifests.policy_problems(objects, overlay))


def run() -> int:
    rendered = {o.name: manifests.render(o) for o in manifests.overlays()}
    failed = 0
    for overlay, objects in rendered.items():
        found = problems(objects, overlay)
        if found:
            failed += 1
            print(f"the committed {overlay} overlay is not clean: {found}", file=sys.stderr)
    for overlay, what, breaks, expected in CASES:
        objects = copy.deepcopy(rendered[overlay])
        breaks(objects)
        found = problems(objects, overlay)
        if not any(expected in p for p in found):
            failed += 1
            print(f"not caught: {what} ({overlay}); expected a problem with {expected!r}, got {found}", file=sys.stderr)
    # The images: a manifest naming an image no Dockerfile target builds.
    broken = copy.deepcopy(rendered)
    container(broken["single-node"], "Deployment", "emberline-bridge").update(image="emberline/brigde:0.1.0")
    if not any("emberline/brigde: no Dockerfile target" in p for p in manifests.docker_problems(broken)):
        failed += 1
        print("not caught: an image no Dockerfile builds", file=sys.stderr)
    if manifests.docker_problems(rendered):
        failed += 1
        print(f"the committed Dockerfiles are not clean: {manifests.docker_problems(rendered)}", file=sys.stderr)
    print(f"{len(CASES) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0
