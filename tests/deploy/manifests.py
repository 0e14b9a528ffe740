"""Cross-checks of deploy/kubernetes that the JSON schemas cannot make:
the names one manifest gives and another uses (Services, selectors, ports,
Secrets, volumes), the kustomization's list of files, and the shape of the
ServiceMonitor (a CRD, so without a schema here).

Usage: manifests.py DIR. Prints one line per problem and exits 1, or
prints nothing and exits 0. Run by tests/tests/it/deploy.rs in
target/deploy-venv (PyYAML comes with kubernetes-validate).
"""

import pathlib
import sys

import yaml

problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


def subset(small, big):
    return all(big.get(k) == v for k, v in (small or {}).items())


def main(root):
    files = sorted(root.glob("*.yaml"))
    objects = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects.append((path.name, doc))

    def named(kind, name=None):
        return [d for _, d in objects if d.get("kind") == kind
                and (name is None or d.get("metadata", {}).get("name") == name)]

    # kustomization.yaml lists every manifest but itself and the example Secret.
    [kustomization] = named("Kustomization") or [{}]
    listed = set(kustomization.get("resources", []))
    wanted = {p.name for p in files} - {"kustomization.yaml", "secret.example.yaml"}
    check(listed == wanted, f"kustomization.yaml resources {sorted(listed)} != files {sorted(wanted)}")

    secrets = {d["metadata"]["name"]: set(d.get("stringData", {})) | set(d.get("data", {}))
               for d in named("Secret")}
    services = {d["metadata"]["name"]: d for d in named("Service")}

    def check_pod(where, pod, claims=()):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for v in volumes.values():
            if "secret" in v:
                check(v["secret"]["secretName"] in secrets, f"{where}: volume {v['name']} uses an unknown Secret")
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None:
                    check(port in ports, f"{where}: {c['name']} {probe} port {port} is not a container port")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    check(ref["key"] in secrets.get(ref["name"], ()),
                          f"{where}: {c['name']} env {e['name']} names {ref['name']}/{ref['key']}, not in secret.example.yaml")
            for m in c.get("volumeMounts", []):
                check(m["name"] in volumes or m["name"] in claims,
                      f"{where}: {c['name']} mounts unknown volume {m['name']}")

    for sts in named("StatefulSet"):
        where = f"StatefulSet {sts['metadata']['name']}"
        spec = sts["spec"]
        labels = spec["template"]["metadata"]["labels"]
        check(subset(spec["selector"]["matchLabels"], labels), f"{where}: selector does not match its pods")
        peer = services.get(spec["serviceName"])
        check(peer is not None, f"{where}: serviceName {spec['serviceName']} is not a Service here")
        if peer:
            check(peer["spec"].get("clusterIP") == "None", f"{where}: {spec['serviceName']} is not headless")
            check(peer["spec"].get("publishNotReadyAddresses") is True,
                  f"{where}: {spec['serviceName']} must publish not-ready addresses")
        check(spec["template"]["spec"].get("terminationGracePeriodSeconds", 30) >= 30,
              f"{where}: terminationGracePeriodSeconds under 30")
        claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
        check_pod(where, spec["template"]["spec"], claims)
        container_ports = {p["name"] for c in spec["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for name, svc in services.items():
            check(subset(svc["spec"]["selector"], labels), f"Service {name}: selector does not match the pods")
            for p in svc["spec"]["ports"]:
                check(p.get("targetPort") in container_ports, f"Service {name}: targetPort {p.get('targetPort')} is not a pod port")
        for pdb in named("PodDisruptionBudget"):
            check(subset(pdb["spec"]["selector"]["matchLabels"], labels), "PodDisruptionBudget: selector does not match the pods")

    for job in named("CronJob"):
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        claims = [d["metadata"]["name"] for d in named("PersistentVolumeClaim")]
        for v in pod.get("volumes", []):
            claim = v.get("persistentVolumeClaim", {}).get("claimName")
            if claim:
                check(claim in claims, f"CronJob: claim {claim} is not a PersistentVolumeClaim here")
        check_pod(f"CronJob {job['metadata']['name']}", pod)

    monitors = named("ServiceMonitor")
    check(len(monitors) == 1, "want one ServiceMonitor")
    for sm in monitors:
        check(sm.get("apiVersion") == "monitoring.coreos.com/v1", f"ServiceMonitor apiVersion {sm.get('apiVersion')}")
        check(set(sm) <= {"apiVersion", "kind", "metadata", "spec"}, "ServiceMonitor: unknown top-level field")
        check(set(sm["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"},
              f"ServiceMonitor: unknown spec fields {sorted(set(sm['spec']) - {'selector', 'endpoints', 'namespaceSelector', 'jobLabel'})}")
        matched = [s for s in services.values()
                   if subset(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))]
        check(len(matched) == 1, "ServiceMonitor: selector matches no Service (or several)")
        endpoint_fields = {"port", "path", "scheme", "interval", "scrapeTimeout", "tlsConfig", "relabelings"}
        for ep in sm["spec"].get("endpoints", []):
            check(set(ep) <= endpoint_fields, f"ServiceMonitor: unknown endpoint fields {sorted(set(ep) - endpoint_fields)}")
            for svc in matched:
                check(ep.get("port") in {p["name"] for p in svc["spec"]["ports"]},
                      f"ServiceMonitor: port {ep.get('port')} is not a port of Service {svc['metadata']['name']}")
            ca = ep.get("tlsConfig", {}).get("ca", {}).get("secret")
            if ca:
                check(ca["key"] in secrets.get(ca["name"], ()), "ServiceMonitor: CA Secret key not in secret.example.yaml")


main(pathlib.Path(sys.argv[1]))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
