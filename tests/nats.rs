//! Distributed experiments over NATS JetStream, across real processes: `twin worker`
//! processes, `twin experiment --nats` and Debian's `nats-server` (one node, and a
//! three-node cluster with replicated streams). The outputs must be byte-identical to
//! the local `--jobs` run, also when a worker or a NATS node is SIGKILLed mid-run.
//!
//! The single node is shared by the tests of this binary; each test uses its own queue
//! (`--queue`), i.e. its own streams, subjects and workers' consumer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use twin_e2e::nats::{NatsCluster, NatsNode};
use twin_e2e::{root, twin_binary};

fn node() -> &'static NatsNode {
    static NODE: OnceLock<NatsNode> = OnceLock::new();
    NODE.get_or_init(NatsNode::single)
}

fn twin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(twin_binary)
}

/// An experiment on the training line: 3 variants x `replications`, each replication
/// `until` long (longer runs make "mid-job" wide enough to hit).
fn experiment_file(dir: &Path, name: &str, until: &str, replications: u32, kpis: &str) -> PathBuf {
    let scene = root().join("scenes/training-line.ron");
    let text = format!(
        r#"Experiment(
    name: "{name}",
    scene: "{scene}",
    replications: {replications},
    seed: 11,
    run: (until: "{until}", warmup: "8h"),
    kpis: [{kpis}],
    variants: [
        (name: "baseline"),
        (name: "mill buffer 10", edits: [SetBuffer(station: "mill", capacity: 10)]),
    ],
    sweeps: [(axes: [(param: Servers("mill"), values: [2])])],
)
"#,
        scene = scene.display()
    );
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(&path, text).expect("write experiment file");
    path
}

const KPIS: &str = r#""complex.throughput_per_hour", "complex.lead_time_mean_s", "stations[mill].starved""#;

/// A `twin worker` killed (SIGKILL) when dropped; its stderr goes to a file.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(url: &str, queue: &str, jobs: usize, replicas: usize, dir: &Path, tag: &str) -> Worker {
        let log = dir.join(format!("worker-{tag}.log"));
        let child = Command::new(twin())
            .args(["worker", "--nats", url, "--queue", queue, "--log-jobs"])
            .args(["--jobs", &jobs.to_string(), "--replicas", &replicas.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("worker log"))
            .spawn()
            .expect("start twin worker");
        Worker { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the worker is connected and its streams and consumer exist.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log().contains("job(s) from") {
            assert!(Instant::now() < deadline, "worker not ready:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the worker has started `n` jobs.
    fn wait_for_jobs(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.log().matches(" replication ").count() < n {
            assert!(Instant::now() < deadline, "worker started no job:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local_run(file: &Path, out: &Path) -> Output {
    let output = Command::new(twin())
        .args(["experiment", "--jobs", "2", "--out"])
        .arg(out)
        .arg(file)
        .output()
        .expect("run twin experiment");
    assert!(output.status.success(), "local run failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn nats_run(file: &Path, out: &Path, url: &str, queue: &str, replicas: usize) -> Child {
    Command::new(twin())
        .args(["experiment", "--nats", url, "--queue", queue, "--replicas", &replicas.to_string(), "--out"])
        .arg(out)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run twin experiment --nats")
}

/// Waits for the collector, failing (and killing it) after `patience`.
fn finish(mut child: Child, patience: Duration) -> Output {
    let deadline = Instant::now() + patience;
    while child.try_wait().expect("poll collector").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collector output");
            panic!("the collector did not finish: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collector output")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("output folder")
        .map(|e| {
            let e = e.expect("dir entry");
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read output"))
        })
        .collect()
}

/// Every output file, and the printed tables, byte for byte.
fn assert_same(local: &Output, local_out: &Path, remote: &Output, remote_out: &Path) {
    assert!(remote.status.success(), "distributed run failed: {}", String::from_utf8_lossy(&remote.stderr));
    let (a, b) = (files(local_out), files(remote_out));
    assert!(a.len() >= 4, "outputs: {:?}", a.keys());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between the local and the distributed run");
    }
    assert_eq!(local.stdout, remote.stdout, "printed tables differ");
}

#[test]
fn outputs_through_nats_are_byte_identical_to_the_local_run_with_one_or_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path(), "ident", "2d", 4, KPIS);
    let url = node().url();
    let local_out = dir.path().join("local");
    let local = local_run(&file, &local_out);

    let one = Worker::start(&url, "ident", 1, 1, dir.path(), "a");
    let out1 = dir.path().join("one");
    let remote = finish(nats_run(&file, &out1, &url, "ident", 1), Duration::from_secs(120));
    assert_same(&local, &local_out, &remote, &out1);

    let _two = Worker::start(&url, "ident", 1, 1, dir.path(), "b");
    let out2 = dir.path().join("two");
    let remote = finish(nats_run(&file, &out2, &url, "ident", 1), Duration::from_secs(120));
    assert_same(&local, &local_out, &remote, &out2);
    drop(one);
}

#[test]
fn a_worker_killed_mid_job_loses_nothing_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Long replications, so that the first worker is surely inside one when killed.
    let file = experiment_file(dir.path(), "killworker", "60d", 2, KPIS);
    let url = node().url();
    let local_out = dir.path().join("local");
    let local = local_run(&file, &local_out);

    let mut victim = Worker::start(&url, "killworker", 1, 1, dir.path(), "victim");
    let collector = nats_run(&file, &dir.path().join("remote"), &url, "killworker", 1);
    // The line is printed as the replication starts, which takes ~0.5 s: kill at once.
    victim.wait_for_jobs(1);
    victim.child.kill().expect("SIGKILL the worker");
    let _ = victim.child.wait();
    let survivor = Worker::start(&url, "killworker", 2, 1, dir.path(), "survivor");
    let remote = finish(collector, Duration::from_secs(180));
    assert_same(&local, &local_out, &remote, &dir.path().join("remote"));
    assert!(
        survivor.log().contains("(delivery 2)"),
        "the killed worker's job was not redelivered:\n{}",
        survivor.log()
    );
}

#[test]
fn a_killed_nats_node_does_not_stop_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path(), "killnode", "20d", 3, KPIS);
    let mut cluster = NatsCluster::start();
    let local_out = dir.path().join("local");
    let local = local_run(&file, &local_out);

    let urls = cluster.urls();
    let worker = Worker::start(&urls, "killnode", 2, 3, dir.path(), "a");
    let collector = nats_run(&file, &dir.path().join("remote"), &urls, "killnode", 3);
    worker.wait_for_jobs(2);
    cluster.nodes[0].kill();
    let remote = finish(collector, Duration::from_secs(180));
    assert_same(&local, &local_out, &remote, &dir.path().join("remote"));
}

#[test]
fn a_replication_a_worker_cannot_finish_ends_the_experiment_with_its_error() {
    // The training line has no due dates: its on-time share is null in every run.
    let dir = tempfile::tempdir().unwrap();
    let kpis = r#""complex.throughput_per_hour", "complex.on_time_share""#;
    let file = experiment_file(dir.path(), "nullkpi", "1d", 2, kpis);
    let url = node().url();
    let _worker = Worker::start(&url, "nullkpi", 1, 1, dir.path(), "a");
    let remote =
        finish(nats_run(&file, &dir.path().join("remote"), &url, "nullkpi", 1), Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&remote.stderr);
    assert!(!remote.status.success(), "{stderr}");
    assert!(stderr.contains("failed on variant") && stderr.contains("on_time_share"), "{stderr}");
}

#[test]
fn a_scene_a_worker_cannot_parse_is_reported_once_not_retried() {
    use futures_util::StreamExt;
    use twin_lab::bundle::{Bundle, Job, JobResult, Outcome, WIRE_VERSION};

    let dir = tempfile::tempdir().unwrap();
    let file = experiment_file(dir.path(), "poison", "1d", 2, KPIS);
    let url = node().url();
    let worker = Worker::start(&url, "poison", 1, 1, dir.path(), "a");
    let mut bundle = Bundle::read(&file, None).unwrap();
    bundle.scene = "Scene(\n  stations: [ (id: \"mill\", \n".into();
    let hash = bundle.hash();
    let job = Job {
        v: WIRE_VERSION,
        experiment: "poison-1".into(),
        bundle: hash.clone(),
        variant: 0,
        variant_name: "baseline".into(),
        replication: 0,
        seed: 1,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client.clone());
        // The worker creates the streams when it starts.
        worker.wait_ready();
        let mut results = client.subscribe("poison.result.poison-1").await.unwrap();
        js.publish(format!("poison.scene.{hash}"), bundle.to_bytes().into()).await.unwrap().await.unwrap();
        js.publish("poison.job.poison-1", job.to_bytes().into()).await.unwrap().await.unwrap();
        let message = tokio::time::timeout(Duration::from_secs(30), results.next()).await;
        let message = message.expect("an error result within 30 s").expect("subscription open");
        // The job is gone from the work queue (acked), not waiting for redelivery.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut jobs = js.get_stream("POISON_JOBS").await.unwrap();
        assert_eq!(jobs.info().await.unwrap().state.messages, 0, "the poison job is still queued");
        JobResult::from_bytes(&message.payload).unwrap()
    });
    let Outcome::Failed { message } = &result.outcome else { panic!("expected an error, got {result:?}") };
    assert!(message.contains("does not rebuild") && message.contains("line"), "{message}");
    assert_eq!((result.variant, result.replication), (Some(0), Some(0)));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(worker.log().matches(" replication ").count(), 0, "{}", worker.log());
}

// --- Programme: complexes registered on NATS (issue 15) ---------------------------------

/// A `twin serve --nats --complex` process, SIGKILLed when dropped.
struct Complex {
    child: Child,
    addr: String,
}

impl Complex {
    fn start(url: &str, scene: &str, id: &str, dir: &Path) -> Complex {
        let child = Command::new(twin())
            .args(["serve", scene, "--addr", "127.0.0.1:0", "--speed", "3600", "--log", "warn"])
            .args(["--nats", url, "--complex", id, "--scenes"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join(format!("{id}.log"))).expect("server log"))
            .spawn()
            .expect("start twin serve");
        let mut child = child;
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read stdout");
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| {
            panic!(
                "{id}: no address ({line:?}): {}",
                std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap_or_default()
            )
        });
        Complex { addr: addr.to_string(), child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Complex {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `twin complexes ARGS --json`, parsed.
fn complexes(args: &[&str]) -> serde_json::Value {
    let out =
        Command::new(twin()).arg("complexes").args(args).arg("--json").output().expect("run twin complexes");
    assert!(out.status.success(), "twin complexes failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("twin complexes prints JSON")
}

fn ids(list: &serde_json::Value) -> Vec<String> {
    list["complexes"]
        .as_array()
        .expect("complexes")
        .iter()
        .map(|c| c["complex_id"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `twin complexes` until `ok` holds.
fn complexes_until(args: &[&str], what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = complexes(args);
        if ok(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "{what}: last list {list:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn complexes_register_on_nats_list_with_their_kpis_and_vanish_when_their_server_dies() {
    let url = node().url();
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = |id: &str| root().join(format!("scenes/programme/{id}.ron")).display().to_string();
    let mut servers: Vec<Complex> =
        ["c08", "c11", "c17"].iter().map(|id| Complex::start(&url, &scene(id), id, dir.path())).collect();

    // Straight from NATS: all three, with KPIs once past the scenes' 30-minute warm-up.
    let nats = ["--nats", url.as_str()];
    let list = complexes_until(&nats, "three complexes with KPIs", |l| {
        ids(l) == ["c08", "c11", "c17"]
            && l["complexes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| !c["warming_up"].as_bool().unwrap() && c["value_added_rate"].is_number())
    });
    assert_eq!(list["targets"]["value_added_rate"], 0.30, "targets from the scenes: {list:#}");
    assert_eq!(list["targets"]["labour_productivity_gain"], 0.40);
    for (c, server) in list["complexes"].as_array().unwrap().iter().zip(&servers) {
        let id = c["complex_id"].as_str().unwrap();
        assert_eq!(c["endpoint"], format!("http://{}", server.addr), "{id}");
        let text = std::fs::read_to_string(scene(id)).unwrap();
        assert!(
            text.contains(&format!("name: \"{}\"", c["name"].as_str().unwrap())),
            "{id}: name from the scene"
        );
        assert!(
            text.contains(&format!("industry: \"{}\"", c["industry"].as_str().unwrap())),
            "{id}: industry"
        );
        let base = c["labour_productivity_baseline"].as_f64().expect("baseline from the scene");
        assert!(
            text.contains(&format!("baseline_labour_productivity: Some({base:.3})")),
            "{id}: baseline {base}"
        );
        let va = c["value_added_rate"].as_f64().unwrap();
        assert!(va > 0.0 && va < 1.0, "{id}: value-added rate {va}");
        assert!(c["labour_productivity"].as_f64().unwrap() > 0.0, "{id}: staff are modelled");
        assert!(c["throughput_per_hour"].as_f64().unwrap() > 0.0, "{id}");
        assert!(c["report_age_s"].as_f64().unwrap() < 10.0, "{id}: fresh figures");
    }

    // Through a server's ListComplexes RPC: the same complexes, and who it is.
    let via_rpc = complexes(&["--server", &format!("http://{}", servers[0].addr)]);
    assert_eq!(ids(&via_rpc), ["c08", "c11", "c17"]);
    assert_eq!(via_rpc["self_complex_id"], "c08");
    assert_eq!(via_rpc["targets"], list["targets"]);

    // A second server under a live complex's id is refused.
    let dup = Command::new(twin())
        .args(["serve", &scene("c11"), "--addr", "127.0.0.1:0", "--nats", &url, "--complex", "c11"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("run twin serve");
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already registered"),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );
    // --complex must match the scene's programme block.
    let other = Command::new(twin())
        .args(["serve", &scene("c11"), "--addr", "127.0.0.1:0", "--nats", &url, "--complex", "c99"])
        .stdin(Stdio::null())
        .output()
        .expect("run twin serve");
    assert!(!other.status.success());
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("programme.complex_id `c11`"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );

    // SIGKILL one server: it is gone from the next list, from NATS and through the RPC.
    servers[1].kill();
    complexes_until(&nats, "c11 gone after SIGKILL", |l| ids(l) == ["c08", "c17"]);
    let via_rpc = complexes(&["--server", &format!("http://{}", servers[0].addr)]);
    assert_eq!(ids(&via_rpc), ["c08", "c17"]);
}

/// A server without --nats answers ListComplexes with FAILED_PRECONDITION.
#[test]
fn list_complexes_without_nats_is_a_failed_precondition() {
    let mut child = Command::new(twin())
        .args([
            "serve",
            &root().join("scenes/training-line.ron").display().to_string(),
            "--addr",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start twin serve");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
        .unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("address").to_string();
    let out = Command::new(twin())
        .args(["complexes", "--server", &format!("http://{addr}")])
        .output()
        .expect("run twin complexes");
    let _ = child.kill();
    let _ = child.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FAILED_PRECONDITION") && err.contains("--nats"), "{err}");
}
