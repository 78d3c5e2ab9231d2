//! The DaemonSet of contrib/kubernetes run as the kubelet would run it: its image built offline
//! by `contrib/kubernetes/image/build.sh` from the tracer under test and imported into the test
//! containerd, its pod created through the CRI from the manifest's own container (args,
//! security context, resources, volumes), and a pod of another namespace recorded through it
//! with the clients run by ExecSync in the daemon's container. Needs root, BPF, Docker and the
//! test containerd (`cargo xtask setup`); fails (never skips) without them.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use cri_client::{
    labels,
    runtime::v1::{
        security_profile::ProfileType, Capability, ContainerConfig, ContainerMetadata, ImageSpec,
        Int64Value, LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
        LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption,
        PodSandboxConfig, PodSandboxMetadata, SecurityProfile,
    },
};
use e2e::{
    allowed_names, nr, preflight, sh, tracer_bin, workdir, Cri, CriPod, Qos, CRI_ENDPOINT,
    POD_NAMESPACE,
};
use serde_json::Value;

/// The image the test builds, as Docker and as containerd name it.
const TAG: &str = "seccomp-tracer:e2e";
const CRI_IMAGE: &str = "docker.io/library/seccomp-tracer:e2e";
/// The daemon's pod (the manifest's namespace is kept; the name marks it as a test's).
const DAEMON_POD: &str = "st-e2e-daemonset";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The manifest's DaemonSet, as JSON.
fn daemonset() -> Value {
    let path = repo().join("contrib/kubernetes/seccomp-tracer.yaml");
    let text = std::fs::read_to_string(&path).expect("the manifest is readable");
    let ds = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml_ng::Value =
                serde::Deserialize::deserialize(d).expect("the manifest is YAML");
            serde_json::to_value(v).expect("YAML a JSON value can hold")
        })
        .find(|d| d["kind"] == "DaemonSet");
    ds.expect("a DaemonSet in the manifest")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `256Mi` and the like, in bytes (the suffixes the manifest uses).
fn quantity(q: &str) -> i64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: i64 = n.parse().unwrap_or_else(|_| panic!("quantity {q}"));
    match unit {
        "" => n,
        "Ki" => n << 10,
        "Mi" => n << 20,
        "Gi" => n << 30,
        _ => panic!("unit of {q} not handled"),
    }
}

/// The image: build.sh on the tracer under test, then imported into containerd's `k8s.io`
/// namespace as the kubelet's images are.
fn build_image() {
    let build = sh(
        Command::new(repo().join("contrib/kubernetes/image/build.sh"))
            .arg(tracer_bin())
            .arg(TAG),
    );
    assert!(build.status.success(), "build.sh: {build:?}");
    let mut save = Command::new("docker")
        .args(["save", TAG])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let import = sh(Command::new("ctr")
        .args(["--address", CRI_ENDPOINT.trim_start_matches("unix://")])
        .args(["-n", "k8s.io", "images", "import", "-"])
        .stdin(save.stdout.take().expect("a pipe")));
    assert!(save.wait().map(|s| s.success()).unwrap_or(false));
    assert!(import.status.success(), "ctr import: {import:?}");
}

/// The daemon's pod and its host directories; stopped, removed and its pins removed on drop.
struct DaemonPod {
    cri: Cri,
    pod: String,
    ctr: String,
    /// Host directories standing for the manifest's writable volumes, by volume name.
    dirs: HashMap<String, PathBuf>,
    /// The manifest's volume mounts: volume name -> container path.
    mounts: HashMap<String, String>,
    /// The control socket and the state directory, inside the container (from the args).
    socket: String,
    state: String,
    log: PathBuf,
    cgroup_parent: String,
}

impl DaemonPod {
    /// Runs the manifest's container in a pod shaped like the DaemonSet's, the per-node
    /// directories (hostPath DirectoryOrCreate, emptyDir) in `work`.
    fn run(work: &Path) -> Self {
        let ds = daemonset();
        let pod_spec = &ds["spec"]["template"]["spec"];
        let c = &pod_spec["containers"][0];
        let cri = Cri::connect();
        let uid = format!("5e0c0000-0000-4000-8000-{:012x}", std::process::id());
        let ns = ds["metadata"]["namespace"].as_str().expect("a namespace");
        let pod_labels = HashMap::from([
            (labels::POD_NAME.to_string(), DAEMON_POD.to_string()),
            (labels::POD_NAMESPACE.to_string(), ns.to_string()),
            (labels::POD_UID.to_string(), uid.clone()),
        ]);
        remove_leftovers(&cri, &pod_labels);

        // hostPID as the manifest says; the host network only because there is no CNI here.
        assert_eq!(pod_spec["hostPID"], true);
        let namespaces = NamespaceOption {
            network: NamespaceMode::Node as i32,
            pid: NamespaceMode::Node as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        };
        // requests < limits: Burstable.
        let cgroup_parent = format!("/kubepods/burstable/pod{uid}");
        let log_dir = work.join("logs");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let sandbox = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: DAEMON_POD.into(),
                uid: uid.clone(),
                namespace: ns.into(),
                attempt: 0,
            }),
            log_directory: log_dir.display().to_string(),
            labels: pod_labels.clone(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = cri
            .block_on(cri.client.run_pod_sandbox(sandbox.clone()))
            .unwrap_or_else(|e| panic!("{e}"));

        // Volumes: a host path the node has is mounted as it is; what the kubelet creates per
        // node (DirectoryOrCreate, emptyDir) is a directory of this test's.
        let mut dirs = HashMap::new();
        let mut host: HashMap<String, String> = HashMap::new();
        for v in pod_spec["volumes"].as_array().expect("volumes") {
            let name = v["name"].as_str().expect("a volume name").to_string();
            let hp = &v["hostPath"];
            let path = if v.get("emptyDir").is_some() || hp["type"] == "DirectoryOrCreate" {
                let d = work.join(&name);
                std::fs::create_dir_all(&d).expect("volume dir");
                dirs.insert(name.clone(), d.clone());
                d.display().to_string()
            } else {
                let p = hp["path"].as_str().expect("a hostPath").to_string();
                assert!(Path::new(&p).exists(), "volume {name}: no {p} on this host");
                p
            };
            host.insert(name, path);
        }
        let mut mounts = HashMap::new();
        let cri_mounts: Vec<Mount> = c["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .map(|m| {
                let name = m["name"].as_str().expect("a mount's volume").to_string();
                let path = m["mountPath"].as_str().expect("a mountPath").to_string();
                mounts.insert(name.clone(), path.clone());
                Mount {
                    container_path: path,
                    host_path: host[&name].clone(),
                    readonly: m["readOnly"] == true,
                    ..Default::default()
                }
            })
            .collect();

        let sc = &c["securityContext"];
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        let security = LinuxContainerSecurityContext {
            // The kubelet passes the names as written (`BPF`); containerd adds `CAP_`.
            capabilities: Some(Capability {
                add_capabilities: strings(&sc["capabilities"]["add"]),
                drop_capabilities: strings(&sc["capabilities"]["drop"]),
                ..Default::default()
            }),
            privileged: sc["privileged"] == true,
            namespace_options: Some(namespaces),
            run_as_user: sc["runAsUser"].as_i64().map(|value| Int64Value { value }),
            readonly_rootfs: sc["readOnlyRootFilesystem"] == true,
            no_new_privs: sc["allowPrivilegeEscalation"] == false,
            seccomp: Some(SecurityProfile {
                profile_type: ProfileType::RuntimeDefault as i32,
                ..Default::default()
            }),
            // The kubelet's default masked and read-only paths (procMount Default).
            masked_paths: [
                "/proc/asound",
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
            ]
            .map(String::from)
            .to_vec(),
            readonly_paths: [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]
            .map(String::from)
            .to_vec(),
            ..Default::default()
        };
        let limits = &c["resources"]["limits"];
        let resources = LinuxContainerResources {
            memory_limit_in_bytes: limits["memory"].as_str().map(quantity).unwrap_or(0),
            ..Default::default()
        };
        let args = strings(&c["args"]);
        let arg = |flag: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(flag))
                .unwrap_or_else(|| panic!("{flag} in the args"))
                .to_string()
        };
        let socket = arg("--socket=");
        let state = arg("--state-dir=");
        let name = c["name"].as_str().expect("a container name");
        let mut ctr_labels = pod_labels;
        ctr_labels.insert(labels::CONTAINER_NAME.to_string(), name.to_string());
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: CRI_IMAGE.into(),
                ..Default::default()
            }),
            args,
            labels: ctr_labels,
            mounts: cri_mounts,
            log_path: format!("{name}/0.log"),
            linux: Some(LinuxContainerConfig {
                resources: Some(resources),
                security_context: Some(security),
            }),
            ..Default::default()
        };
        let mut d = DaemonPod {
            log: log_dir.join(format!("{name}/0.log")),
            cri,
            pod,
            ctr: String::new(),
            dirs,
            mounts,
            socket,
            state,
            cgroup_parent,
        };
        let client = &d.cri.client;
        d.ctr = d
            .cri
            .block_on(client.create_container(&d.pod, config, sandbox))
            .unwrap_or_else(|e| panic!("CreateContainer: {e}"));
        d.cri
            .block_on(client.start_container(&d.ctr))
            .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", d.text()));
        d.wait_ready();
        d
    }

    /// The daemon's output (CRI log lines).
    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(120) {
            if self.client(&["status"]).0 == 0 {
                return;
            }
            let st = self
                .cri
                .block_on(self.cri.client.container_status(&self.ctr));
            if st.as_ref().is_ok_and(|s| s.status.finished_at != 0) {
                panic!("the daemon's container exited:\n{}", self.text());
            }
            sleep(Duration::from_millis(500));
        }
        panic!("the daemon never answered:\n{}", self.text());
    }

    /// `seccomp-tracer ARGS --socket SOCKET` by ExecSync in the daemon's container: exit
    /// code, standard output, standard error.
    fn client(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = vec!["/usr/local/bin/seccomp-tracer"];
        cmd.extend(args);
        cmd.extend(["--socket", &self.socket]);
        match self
            .cri
            .block_on(self.cri.client.exec_sync(&self.ctr, &cmd, 10))
        {
            Ok(o) => (
                o.exit_code,
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ),
            Err(e) => (-1, String::new(), e.to_string()),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.client(args);
        assert_eq!(code, 0, "{args:?}: {err}\ndaemon log:\n{}", self.text());
        out
    }

    /// The daemon runs with what the manifest grants and nothing more: CAP_BPF and
    /// CAP_PERFMON only, a seccomp filter (RuntimeDefault), no new privileges.
    fn assert_confined(&self) {
        let info = self
            .cri
            .block_on(self.cri.client.container_status(&self.ctr));
        let pid = info
            .ok()
            .and_then(|i| i.verbose.pid)
            .expect("the daemon's pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(str::trim)
                .unwrap_or_else(|| panic!("no {k} in {status}"))
                .to_string()
        };
        const CAP_PERFMON: u32 = 38;
        const CAP_BPF: u32 = 39;
        let eff = u64::from_str_radix(&field("CapEff:"), 16).expect("hex CapEff");
        assert_eq!(eff, 1 << CAP_BPF | 1 << CAP_PERFMON, "{status}");
        assert_eq!(field("Seccomp:"), "2", "not under a seccomp filter");
        assert_eq!(field("NoNewPrivs:"), "1");
    }

    /// The host directory behind the container path `inside`, a writable volume's.
    fn on_host(&self, inside: &str) -> PathBuf {
        self.mounts
            .iter()
            .filter(|(_, m)| inside.starts_with(m.as_str()))
            .max_by_key(|(_, m)| m.len())
            .and_then(|(v, m)| {
                Some(
                    self.dirs
                        .get(v)?
                        .join(inside[m.len()..].trim_start_matches('/')),
                )
            })
            .unwrap_or_else(|| panic!("{inside} is on no writable volume"))
    }

    /// The bpffs directory of its pins (of its state directory), from its start-up line.
    fn pins(&self) -> Option<PathBuf> {
        let text = self.text();
        let rest = text
            .rsplit("(/sys/fs/bpf/")
            .next()
            .filter(|r| r.len() < text.len())?;
        let pins = Path::new("/sys/fs/bpf").join(rest.split(')').next()?);
        pins.parent().map(Path::to_path_buf)
    }
}

impl Drop for DaemonPod {
    fn drop(&mut self) {
        let client = &self.cri.client;
        let _ = self.cri.block_on(client.stop_container(&self.ctr, 30));
        let _ = self.cri.block_on(client.stop_pod_sandbox(&self.pod));
        let _ = self.cri.block_on(client.remove_pod_sandbox(&self.pod));
        // The pins keep the programs attached after the pod stops (by design): remove them, as
        // a user uninstalling would.
        if let Some(p) = self.pins() {
            let _ = std::fs::remove_dir_all(p);
        }
        // The image was built for this run only.
        let _ = sh(Command::new("ctr")
            .args(["--address", CRI_ENDPOINT.trim_start_matches("unix://")])
            .args(["-n", "k8s.io", "images", "rm", CRI_IMAGE]));
        let _ = sh(Command::new("docker").args(["rmi", TAG]));
        let rel = self.cgroup_parent.trim_start_matches('/');
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(rel));
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let _ = std::fs::remove_dir(d.path().join(rel));
            }
        }
    }
}

/// Pods of an earlier run with the same labels.
fn remove_leftovers(cri: &Cri, sel: &HashMap<String, String>) {
    let mut sel = sel.clone();
    sel.remove(labels::POD_UID);
    if let Ok(pods) = cri.block_on(cri.client.list_pod_sandboxes(&sel)) {
        for p in pods {
            let _ = cri.block_on(cri.client.stop_pod_sandbox(&p.id));
            let _ = cri.block_on(cri.client.remove_pod_sandbox(&p.id));
        }
    }
}

#[test]
fn the_daemonsets_pod_run_through_the_cri_records_a_pod_and_exports_its_kubelet_profile() {
    preflight();
    build_image();
    let work = workdir("daemonset");
    let d = DaemonPod::run(&work);
    d.assert_confined();

    let pod = CriPod::run("st-e2e-ds-work", Qos::BestEffort);
    let script = format!(
        "while true; do /probe direct {} direct {}; sleep 0.2; done",
        nr("getcpu"),
        nr("sysinfo")
    );
    pod.start("work", &["sh", "-c", &script], 0, None)
        .expect("the workload starts");
    let target = format!("{POD_NAMESPACE}/{}/work", pod.name);
    let added = d.ok(&["add", "--engine", "cri", &target]);
    assert!(added.contains("recording"), "{added}\n{}", d.text());
    // The daemon names what it records `<pod>-<container>`.
    let name = format!("{}-work", pod.name);
    let t0 = Instant::now();
    loop {
        let status: Value = serde_json::from_str(&d.ok(&["status", "--json"])).expect("JSON");
        let t = status["targets"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name.as_str()).cloned())
            .unwrap_or_else(|| panic!("{name} not in {status}"));
        if t["running"] == true && t["syscalls"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "nothing recorded: {status}\n{}",
            d.text()
        );
        sleep(Duration::from_millis(500));
    }
    sleep(Duration::from_secs(2));

    let kubelet_dir = d.mounts["kubelet-seccomp"].clone();
    let out = format!("{kubelet_dir}/{name}.json");
    let (code, _, err) = d.client(&["export", &name, "--format", "kubernetes", "-o", &out]);
    assert_eq!(code, 0, "export: {err}\n{}", d.text());
    let written = d.on_host(&out);
    assert!(
        written.is_file(),
        "{} not written: {err}",
        written.display()
    );
    let kubelet = written.with_file_name(format!("{name}.kubelet.json"));
    let allowed = allowed_names(&kubelet);
    for call in ["getcpu", "sysinfo", "nanosleep", "execve"] {
        assert!(allowed.contains(call), "{call} missing: {allowed:?}");
    }

    // SIGTERM from StopContainer: the daemon saves its state and exits 0.
    let state_dir = d.on_host(&d.state);
    d.cri
        .block_on(d.cri.client.stop_container(&d.ctr, 30))
        .unwrap_or_else(|e| panic!("{e}"));
    let st = d
        .cri
        .block_on(d.cri.client.container_status(&d.ctr))
        .expect("status");
    assert_eq!(st.status.exit_code, 0, "{}", d.text());
    let state = std::fs::read_to_string(state_dir.join("state.json")).expect("state saved");
    assert!(state.contains(&name), "{state}");
}
