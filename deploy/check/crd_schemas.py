"""JSON schemas for the operators' objects Emberline's overlays use.

The operators' CRDs cannot be downloaded here, and no third-party schema is vendored: these
are written from the operators' API references (Strimzi `kafka.strimzi.io/v1`, Strimzi 0.49+;
CloudNativePG `postgresql.cnpg.io/v1`; prometheus-operator `monitoring.coreos.com/v1`). They
cover what matters to Emberline: every required field, the types and enums of the fields the
manifests use, and `additionalProperties: false` where the reference lists every property, so
that a misspelt key is an error rather than silently ignored by the operator.
"""

from __future__ import annotations

QUANTITY = {"type": ["string", "integer"]}
DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "limits": {"type": "object", "additionalProperties": QUANTITY},
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "claims": {"type": "array"},
    },
}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": LABELS,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def resource(api_version: str, kind: str, spec: dict, metadata: dict | None = None) -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": metadata or {"type": "object", "required": ["name"]},
            "spec": spec,
        },
    }


# Strimzi: a KafkaNodePool and a KafkaTopic belong to a cluster by this label.
STRIMZI_METADATA = {
    "type": "object",
    "required": ["name", "labels"],
    "properties": {
        "name": {"type": "string"},
        "labels": {"type": "object", "required": ["strimzi.io/cluster"], "additionalProperties": {"type": "string"}},
    },
}

LISTENER = {
    "type": "object",
    "required": ["name", "port", "type", "tls"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]{1,25}$"},
        # 9404 (metrics) and 9999 (JMX) are Strimzi's own.
        "port": {"type": "integer", "minimum": 9092, "not": {"enum": [9404, 9999]}},
        "type": {"enum": ["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"]},
        "tls": {"type": "boolean"},
        "authentication": {"type": "object", "required": ["type"]},
        "configuration": {"type": "object"},
        "networkPolicyPeers": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "podSelector": LABEL_SELECTOR,
                    "namespaceSelector": LABEL_SELECTOR,
                    "ipBlock": {"type": "object"},
                },
            },
        },
    },
}

KAFKA = resource("kafka.strimzi.io/v1", "Kafka", {
    "type": "object",
    "required": ["kafka"],
    "additionalProperties": False,
    "properties": {
        "kafka": {
            "type": "object",
            "required": ["listeners"],
            "additionalProperties": False,
            "properties": {
                "version": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
                "metadataVersion": {"type": "string"},
                "image": {"type": "string"},
                "listeners": {"type": "array", "minItems": 1, "items": LISTENER},
                "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean", "number"]}},
                "authorization": {"type": "object", "required": ["type"]},
                "rack": {"type": "object", "required": ["topologyKey"]},
                "brokerRackInitImage": {"type": "string"},
                "livenessProbe": {"type": "object"},
                "readinessProbe": {"type": "object"},
                "jvmOptions": {"type": "object"},
                "jmxOptions": {"type": "object"},
                "metricsConfig": {"type": "object", "required": ["type"]},
                "logging": {"type": "object", "required": ["type"]},
                "template": {"type": "object"},
                "tieredStorage": {"type": "object"},
                "quotas": {"type": "object"},
            },
        },
        "entityOperator": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "topicOperator": {"type": "object"},
                "userOperator": {"type": "object"},
                "template": {"type": "object"},
            },
        },
        "clusterCa": {"type": "object"},
        "clientsCa": {"type": "object"},
        "cruiseControl": {"type": "object"},
        "kafkaExporter": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "image": {"type": "string"},
                "groupRegex": {"type": "string"},
                "topicRegex": {"type": "string"},
                "groupExcludeRegex": {"type": "string"},
                "topicExcludeRegex": {"type": "string"},
                "resources": RESOURCES,
                "logging": {"type": "string"},
                "livenessProbe": {"type": "object"},
                "readinessProbe": {"type": "object"},
                "enableSaramaLogging": {"type": "boolean"},
                "showAllOffsets": {"type": "boolean"},
                "template": {"type": "object"},
            },
        },
        "maintenanceTimeWindows": {"type": "array", "items": {"type": "string"}},
    },
})

VOLUME = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "type": {"enum": ["persistent-claim", "ephemeral"]},
        "size": {"type": "string", "pattern": "^[0-9]+([KMGTPE]i?)?$"},
        "sizeLimit": {"type": "string"},
        "class": {"type": "string"},
        "selector": {"type": "object"},
        "deleteClaim": {"type": "boolean"},
        "kraftMetadata": {"enum": ["shared"]},
    },
    "if": {"properties": {"type": {"const": "persistent-claim"}}},
    "then": {"required": ["type", "size"]},
}

KAFKA_NODE_POOL = resource("kafka.strimzi.io/v1", "KafkaNodePool", {
    "type": "object",
    "required": ["replicas", "roles", "storage"],
    "additionalProperties": False,
    "properties": {
        "replicas": {"type": "integer", "minimum": 0},
        "roles": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": ["controller", "broker"]}},
        "storage": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"enum": ["jbod", "persistent-claim", "ephemeral"]},
                "volumes": {"type": "array", "minItems": 1, "items": {**VOLUME, "required": ["type", "id"]}},
            },
            "if": {"properties": {"type": {"const": "jbod"}}},
            "then": {"required": ["type", "volumes"]},
        },
        "resources": RESOURCES,
        "jvmOptions": {"type": "object"},
        "template": {"type": "object"},
    },
}, STRIMZI_METADATA)

KAFKA_TOPIC = resource("kafka.strimzi.io/v1", "KafkaTopic", {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "topicName": {"type": "string", "pattern": "^[a-zA-Z0-9._-]{1,249}$"},
        "partitions": {"type": "integer", "minimum": 1},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
        "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean", "number"]}},
    },
}, STRIMZI_METADATA)

CNPG_CLUSTER = resource("postgresql.cnpg.io/v1", "Cluster", {
    "type": "object",
    # Without a storage size there is nothing to put the database on.
    "required": ["instances", "storage"],
    "properties": {
        "instances": {"type": "integer", "minimum": 1},
        "imageName": {"type": "string"},
        "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
        "storage": {
            "type": "object",
            "anyOf": [{"required": ["size"]}, {"required": ["pvcTemplate"]}],
            "additionalProperties": False,
            "properties": {
                "size": {"type": "string"},
                "storageClass": {"type": "string"},
                "resizeInUseVolumes": {"type": "boolean"},
                "pvcTemplate": {"type": "object"},
            },
        },
        "bootstrap": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "initdb": {
                    "type": "object",
                    "properties": {
                        "database": {"type": "string"},
                        "owner": {"type": "string"},
                        "secret": {"type": "object", "required": ["name"]},
                    },
                    "dependentRequired": {"database": ["owner"], "owner": ["database"]},
                },
                "recovery": {"type": "object"},
                "pg_basebackup": {"type": "object"},
            },
        },
        "resources": RESOURCES,
        "affinity": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enablePodAntiAffinity": {"type": "boolean"},
                "topologyKey": {"type": "string"},
                "podAntiAffinityType": {"enum": ["preferred", "required"]},
                "nodeSelector": LABELS,
                "nodeAffinity": {"type": "object"},
                "tolerations": {"type": "array"},
                "additionalPodAntiAffinity": {"type": "object"},
                "additionalPodAffinity": {"type": "object"},
            },
        },
        "monitoring": {"type": "object"},
        "postgresql": {"type": "object"},
    },
})

RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "modulus": {"type": "integer"},
        "replacement": {"type": "string"},
        "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod",
                            "labelmap", "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep",
                            "lowercase", "Lowercase", "uppercase", "Uppercase", "keepequal", "KeepEqual",
                            "dropequal", "DropEqual"]},
    },
}
ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "anyOf": [{"required": ["port"]}, {"required": ["targetPort"]}],
    "properties": {
        "port": {"type": "string"},
        "targetPort": {"type": ["string", "integer"]},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https"]},
        "interval": DURATION,
        "scrapeTimeout": DURATION,
        "honorLabels": {"type": "boolean"},
        "relabelings": {"type": "array", "items": RELABELING},
        "metricRelabelings": {"type": "array", "items": RELABELING},
    },
}
MONITORING_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"labels": LABELS},
}

SERVICE_MONITOR = resource("monitoring.coreos.com/v1", "ServiceMonitor", {
    "type": "object",
    "required": ["selector", "endpoints"],
    "properties": {
        "selector": LABEL_SELECTOR,
        "namespaceSelector": {"type": "object"},
        "jobLabel": {"type": "string"},
        "endpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
    },
}, MONITORING_METADATA)

POD_MONITOR = resource("monitoring.coreos.com/v1", "PodMonitor", {
    "type": "object",
    "required": ["selector", "podMetricsEndpoints"],
    "properties": {
        "selector": LABEL_SELECTOR,
        "namespaceSelector": {"type": "object"},
        "jobLabel": {"type": "string"},
        "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
    },
}, MONITORING_METADATA)

RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
        "record": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "expr": {"type": ["string", "integer"], "minLength": 1},
        "for": DURATION,
        "keep_firing_for": DURATION,
        "labels": LABELS,
        "annotations": LABELS,
    },
}
PROMETHEUS_RULE = resource("monitoring.coreos.com/v1", "PrometheusRule", {
    "type": "object",
    "required": ["groups"],
    "additionalProperties": False,
    "properties": {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "rules"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": DURATION,
                    "rules": {"type": "array", "minItems": 1, "items": RULE},
                },
            },
        },
    },
}, MONITORING_METADATA)

CUSTOM_KINDS = {
    ("kafka.strimzi.io/v1", "Kafka"): KAFKA,
    ("kafka.strimzi.io/v1", "KafkaNodePool"): KAFKA_NODE_POOL,
    ("kafka.strimzi.io/v1", "KafkaTopic"): KAFKA_TOPIC,
    ("postgresql.cnpg.io/v1", "Cluster"): CNPG_CLUSTER,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PodMonitor"): POD_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}
