#!/usr/bin/env python3
"""Fast checks of the deployment files (CI runs them; the image smoke is too slow for CI).

  python deploy/lint.py --keycard target/debug/keycard

Run with the Python of a venv holding deploy/requirements.txt; its tools are found beside
that interpreter. Checks:
  * deploy/Containerfile: hadolint.
  * deploy/compose.yaml: the Compose Specification's JSON schema (check-jsonschema),
    podman-compose's own resolution of it with the files deploy/compose-secrets writes
    (in a scratch copy), and that every service, secret, volume and file it names exists.
  * deploy/kubernetes/: every manifest against the Kubernetes schemas (kubernetes-validate,
    --strict, oldest and newest supported version), and that names agree across them:
    Secret keys, ConfigMaps, labels and selectors, port names, the kustomization's files.
  * The keycard.toml of both (the ConfigMap's and deploy/compose/keycard.toml) passes
    `keycard check-config --offline`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
BIN = Path(sys.executable).parent
# The oldest Kubernetes minor still in upstream support when this was written, and the
# newest kubernetes-validate knows.
K8S_VERSIONS = ["1.31.0", "1.37.0"]

problems: list[str] = []


def problem(message: str) -> None:
    problems.append(message)
    print(f"  FAIL {message}")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        sys.exit(f"{name} is not installed beside {sys.executable} (deploy/requirements.txt)")
    return str(path)


def check_containerfile() -> None:
    print("Containerfile: hadolint")
    out = run([tool("hadolint"), "--no-color", str(DEPLOY / "Containerfile")])
    if out.returncode != 0:
        problem(f"hadolint:\n{out.stdout}{out.stderr}")


def check_config(keycard: str, toml_text: str, env: dict[str, str], label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keycard.toml"
        path.write_text(toml_text)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYCARD_")}
        out = run([keycard, "check-config", "--offline", "--config", str(path)], env={**clean, **env})
        if out.returncode != 0:
            problem(f"{label}: keycard check-config: {out.stderr.strip()}")


def check_compose(keycard: str) -> None:
    compose = DEPLOY / "compose.yaml"
    print("compose.yaml: schema, podman-compose config, references, keycard.toml")
    out = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)])
    if out.returncode != 0:
        problem(f"compose schema:\n{out.stdout}{out.stderr}")

    doc = yaml.safe_load(compose.read_text())
    services = doc.get("services", {})
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}) or {}:
            if dep not in services:
                problem(f"compose: {name} depends on unknown service {dep}")
        for ref in svc.get("secrets", []) or []:
            source = ref if isinstance(ref, str) else ref.get("source")
            if source not in (doc.get("secrets") or {}):
                problem(f"compose: {name} uses undeclared secret {source}")
        for volume in svc.get("volumes", []) or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith("."):
                if not (DEPLOY / source).exists():
                    problem(f"compose: {name} bind-mounts missing {source}")
            elif source and not source.startswith("/") and source not in (doc.get("volumes") or {}):
                problem(f"compose: {name} mounts undeclared volume {source}")
        if svc.get("configs"):
            problem(f"compose: {name} uses configs:, which podman-compose ignores; bind-mount the file")
        build = svc.get("build")
        if isinstance(build, dict):
            dockerfile = (DEPLOY / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
            if not dockerfile.is_file():
                problem(f"compose: {name} builds from missing {dockerfile}")

    keycard_env: dict[str, str] = {}
    # The way a user runs it: in a scratch copy, write the secrets, let podman-compose
    # resolve the file (interpolation from .env, profiles, paths).
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(DEPLOY, Path(tmp) / "deploy", ignore=shutil.ignore_patterns("secrets", ".env"))
        shutil.copytree(ROOT / "config", Path(tmp) / "config")
        work = Path(tmp) / "deploy"
        out = run([str(work / "compose-secrets"), "--trial"], cwd=work)
        if out.returncode != 0:
            problem(f"compose-secrets --trial: {out.stderr.strip()}")
            return
        for name, decl in (doc.get("secrets") or {}).items():
            if not (work / decl["file"]).is_file():
                problem(f"compose: compose-secrets does not write secret {name} ({decl['file']})")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEYCARD_", "COMPOSE_"))}
        out = run([tool("podman-compose"), "-f", "compose.yaml", "config"], cwd=work, env=clean)
        if out.returncode != 0:
            problem(f"podman-compose config: {out.stderr.strip()}")
        else:
            resolved = yaml.safe_load(out.stdout)
            keycard_svc = resolved["services"]["keycard"]
            env = keycard_svc.get("environment", {})
            if isinstance(env, list):
                env = dict(item.split("=", 1) for item in env)
            if env.get("KEYCARD_ADMIN_API_BASE_URL") != "http://127.0.0.1:8787":
                problem(f"compose: the trial's .env does not point Keycard at the simulator: {env}")
            if "admin-sim" not in resolved["services"]:
                problem("compose: the trial profile does not start admin-sim")
            # Every key can come from the environment: check the config under the
            # KEYCARD_* variables compose gives the service, not the file alone.
            keycard_env = {k: str(v) for k, v in env.items() if k.startswith("KEYCARD_") and k != "KEYCARD_CONFIG"}
        # Keycard's own validation of its config, with the secrets where compose mounts them.
        toml_text = (DEPLOY / "compose" / "keycard.toml").read_text()
        toml_text = toml_text.replace("/run/secrets/", f"{work / 'secrets'}/")
        check_config(keycard, toml_text, keycard_env, "compose/keycard.toml")


def check_kubernetes(keycard: str) -> None:
    print("kubernetes/: schemas, references, keycard.toml")
    manifests = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    for version in K8S_VERSIONS:
        out = run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *map(str, manifests)])
        if out.returncode != 0:
            problem(f"kubernetes-validate {version}:\n{out.stdout}{out.stderr}")

    docs: dict[tuple[str, str], dict] = {}
    for path in manifests:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc["metadata"]["name"])] = doc

    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        if not (K8S / resource).is_file():
            problem(f"kustomization: missing resource {resource}")

    deployment = docs[("Deployment", "keycard")]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    selected = lambda selector: all(labels.get(k) == v for k, v in selector.items())  # noqa: E731
    if not selected(deployment["spec"]["selector"]["matchLabels"]):
        problem("deployment: selector does not match its pod labels")
    secret = docs[("Secret", "keycard")]
    configmaps = {name for kind, name in docs if kind == "ConfigMap"}
    container = pod["spec"]["containers"][0]
    images = {image["name"] for image in kustomization.get("images", [])}
    if container["image"] not in images:
        problem(f"kustomization: no image override for {container['image']}")
    ports = {p["name"] for p in container["ports"]}
    env: dict[str, str] = {}
    for var in container["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            if ref["name"] != "keycard" or ref["key"] not in secret["stringData"]:
                problem(f"deployment: {var['name']} reads {ref}, which secret.example.yaml lacks")
            env[var["name"]] = secret["stringData"].get(ref["key"], "")
        else:
            env[var["name"]] = var.get("value", "")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = container[probe]["httpGet"]["port"]
        if port not in ports:
            problem(f"deployment: {probe} uses unknown port {port}")
    for volume in pod["spec"]["volumes"]:
        cm = volume.get("configMap")
        if cm and not cm.get("optional") and cm["name"] not in configmaps:
            problem(f"deployment: volume {volume['name']} needs ConfigMap {cm['name']}")
    service = docs[("Service", "keycard")]
    if not selected(service["spec"]["selector"]):
        problem("service: selector does not match the deployment's pods")
    for port in service["spec"]["ports"]:
        if port["targetPort"] not in ports:
            problem(f"service: targetPort {port['targetPort']} is not a container port")
    if not selected(docs[("PodDisruptionBudget", "keycard")]["spec"]["selector"]["matchLabels"]):
        problem("pdb: selector does not match the deployment's pods")
    monitor = docs[("ServiceMonitor", "keycard")]
    if monitor["spec"]["selector"]["matchLabels"].items() - service["metadata"]["labels"].items():
        problem("servicemonitor: selector does not match the service")
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        if endpoint["port"] not in service_ports:
            problem(f"servicemonitor: unknown service port {endpoint['port']}")
    for rule in docs[("Ingress", "keycard")]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            if backend["name"] != "keycard" or backend["port"]["name"] not in service_ports:
                problem(f"ingress: {path['path']} routes to an unknown service or port")
            if path["path"].startswith("/api"):
                problem("ingress: the ops API must not be public")
            if backend["port"]["name"] == "ops":
                problem("ingress: the ops port (ops API, metrics) must not be public")

    config_path = container["env"][0]["value"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == config_path)
    toml_text = docs[("ConfigMap", "keycard")]["data"][mount["subPath"]]
    check_config(keycard, toml_text, env, "kubernetes/configmap.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keycard", required=True, help="the keycard binary to check configs with")
    args = parser.parse_args()
    check_containerfile()
    check_compose(args.keycard)
    check_kubernetes(args.keycard)
    if problems:
        print(f"deploy lint: {len(problems)} problem(s)")
        return 1
    print("deploy lint: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
