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
