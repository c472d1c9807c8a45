//! The Kubernetes manifests in `deploy/k8s/` parse, refer to each other consistently,
//! cover exactly the complexes in `scenes/programme/`, and pass the real `twin` binary
//! only flags it has. YAML is read by PyYAML (Debian's `python3-yaml`, installed by
//! `scripts/system-deps.sh --yaml`); no cluster is needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use twin_e2e::{root, twin_binary};

/// Every YAML document of `file`, as JSON values.
fn documents(file: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
                  print(json.dumps(docs))";
    let out = Command::new("python3").args(["-c", script]).arg(file).output().expect("run python3");
    assert!(
        out.status.success(),
        "{} does not parse (or PyYAML is missing: scripts/system-deps.sh --yaml): {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("JSON from python")
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_else(|| panic!("no metadata.name: {doc}"))
}

/// `selector` (a map of labels) is a subset of `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("selector is a map");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn twin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(twin_binary)
}

/// The `--flag` names of `twin SUBCOMMAND --help`.
fn flags_of(subcommand: &str) -> BTreeSet<String> {
    let out = Command::new(twin()).args([subcommand, "--help"]).output().expect("run twin --help");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.trim_end_matches([',', '=', '.']).split(['=', '<', ' ']).next().unwrap().to_string())
        .collect()
}

/// Every `--flag=value` argument of a container is a flag the subcommand knows.
fn check_args(what: &str, args: &[Value], known: &BTreeSet<String>) {
    for arg in args.iter().map(|a| a.as_str().expect("args are strings")) {
        if let Some(flag) = arg.strip_prefix("--") {
            let flag = flag.split('=').next().unwrap();
            assert!(known.contains(flag), "{what}: `--{flag}` is not a flag of twin (known: {known:?})");
        }
    }
}

#[test]
fn kubernetes_manifests_parse_and_cover_the_programme() {
    let k8s = root().join("deploy/k8s");
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(&k8s).expect("deploy/k8s") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "yaml") && path.file_name().unwrap() != "nats-values.yaml" {
            for doc in documents(&path) {
                assert!(doc["apiVersion"].is_string(), "{}: apiVersion in {doc}", path.display());
                let kind = doc["kind"].as_str().expect("kind").to_string();
                if kind != "Namespace" {
                    assert_eq!(doc["metadata"]["namespace"], "twin", "{}: {}", path.display(), name(&doc));
                }
                kinds.insert(kind);
            }
        }
    }
    assert_eq!(
        kinds,
        ["Deployment", "Namespace", "Service", "StatefulSet"].map(String::from).into_iter().collect()
    );

    // One Service and one StatefulSet per scene in scenes/programme/, consistent.
    let scenes: BTreeSet<String> = std::fs::read_dir(root().join("scenes/programme"))
        .expect("scenes/programme")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(scenes.len(), 20, "twenty complexes: {scenes:?}");
    let docs = documents(&k8s.join("complexes.yaml"));
    let serve_flags = flags_of("serve");
    let mut covered = BTreeSet::new();
    for set in docs.iter().filter(|d| d["kind"] == "StatefulSet") {
        let app = name(set);
        let id = app.strip_prefix("twin-").expect("twin-<complex>");
        let spec = &set["spec"];
        assert_eq!(spec["replicas"], 1, "{app}: one twin per complex");
        let labels = &spec["template"]["metadata"]["labels"];
        assert!(selects(&spec["selector"]["matchLabels"], labels), "{app}: selector matches the pod");
        let service = docs
            .iter()
            .find(|d| d["kind"] == "Service" && name(d) == spec["serviceName"])
            .unwrap_or_else(|| panic!("{app}: no Service {}", spec["serviceName"]));
        assert_eq!(service["spec"]["clusterIP"], "None", "{app}: headless service for stable pod names");
        assert!(selects(&service["spec"]["selector"], labels), "{app}: the service selects the pod");
        let pod = &spec["template"]["spec"];
        let container = &pod["containers"][0];
        let args = container["args"].as_array().expect("args");
        assert_eq!(args[0], "serve");
        assert_eq!(args[1], format!("/opt/twin/scenes/programme/{id}.ron"), "{app}: its own scene");
        check_args(app, &args[2..], &serve_flags);
        let has = |a: &str| args.iter().any(|x| x == a);
        assert!(has(&format!("--complex={id}")), "{app}: --complex {id}");
        assert!(args.iter().any(|a| a.as_str().unwrap().starts_with("--nats=nats://")), "{app}: --nats");
        assert!(
            has(&format!("--advertise=http://{app}-0.{app}.twin.svc.cluster.local:50051")),
            "{app}: advertises its stable DNS name"
        );
        // Its data volume: claimed per pod and mounted where --data points.
        assert!(has("--data=/var/lib/twin"));
        let claim = &spec["volumeClaimTemplates"][0]["metadata"]["name"];
        let mounts = container["volumeMounts"].as_array().expect("volumeMounts");
        assert!(
            mounts.iter().any(|m| &m["name"] == claim && m["mountPath"] == "/var/lib/twin"),
            "{app}: data volume mounted at /var/lib/twin"
        );
        // Every other volume it mounts is declared in the pod.
        for m in mounts.iter().filter(|m| &m["name"] != claim) {
            let declared =
                pod["volumes"].as_array().is_some_and(|v| v.iter().any(|v| v["name"] == m["name"]));
            assert!(declared, "{app}: volume {} declared", m["name"]);
        }
        assert!(covered.insert(id.to_string()), "{app} twice");
    }
    assert_eq!(covered, scenes, "a StatefulSet for every complex, and no other");

    // Workers: a Deployment whose selector matches and whose flags exist.
    let workers = documents(&k8s.join("workers.yaml"));
    let worker_flags = flags_of("worker");
    for deploy in &workers {
        let spec = &deploy["spec"];
        assert!(selects(&spec["selector"]["matchLabels"], &spec["template"]["metadata"]["labels"]));
        let args = spec["template"]["spec"]["containers"][0]["args"].as_array().expect("args");
        assert_eq!(args[0], "worker");
        check_args(name(deploy), &args[1..], &worker_flags);
    }

    // NATS's chart values: JetStream on, three nodes (the queue asks for 3 replicas).
    let values = documents(&k8s.join("nats-values.yaml"));
    assert_eq!(values[0]["config"]["jetstream"]["enabled"], true);
    assert_eq!(values[0]["config"]["cluster"]["replicas"], 3);
}
