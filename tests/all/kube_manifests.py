"""What tests/all/kubernetes.rs checks in a shape of deploy/kubernetes/.

Usage: kube_manifests.py SHAPE_DIR

Prints one JSON object: the files its kustomization.yaml lists, the
sluice.toml of its ConfigMap, and the pod template of its workload (the
StatefulSet or Deployment). Needs PyYAML (in the kubernetes-validate venv).
"""

import json
import os
import sys

import yaml


def main():
    shape = sys.argv[1]
    with open(os.path.join(shape, "kustomization.yaml")) as f:
        resources = yaml.safe_load(f)["resources"]
    toml, workload, policies = None, None, []
    for name in resources:
        with open(os.path.join(shape, name)) as f:
            for doc in yaml.safe_load_all(f):
                if doc is None:
                    continue
                kind = doc["kind"]
                if kind == "ConfigMap" and "sluice.toml" in doc.get("data", {}):
                    toml = doc["data"]["sluice.toml"]
                elif kind in ("StatefulSet", "Deployment"):
                    workload = doc
                elif kind == "NetworkPolicy":
                    policies.append(doc)
    json.dump(
        {
            "resources": resources,
            "sluice_toml": toml,
            "workload_kind": workload and workload["kind"],
            "pod": workload and workload["spec"]["template"]["spec"],
            "network_policies": policies,
        },
        sys.stdout,
    )


main()
