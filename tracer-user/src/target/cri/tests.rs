//! Unit tests of the CRI engine's pure parts.
use super::*;

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn row(id: &str, pod: &str, container: &str, attempt: u32, running: bool) -> Row {
    Row {
        id: id.into(),
        namespace: "default".into(),
        pod: pod.into(),
        container: container.into(),
        attempt,
        running,
        created_at: attempt as i64,
        labels: HashMap::new(),
    }
}

#[test]
fn cgroup_directories_of_both_drivers() {
    assert_eq!(
        cgroup_dir("/kubepods/besteffort/pod1/abc").as_deref(),
        Some("/kubepods/besteffort/pod1/abc")
    );
    assert_eq!(
        cgroup_dir("kubepods-besteffort-pod1_2.slice:cri-containerd:abc").as_deref(),
        Some("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-abc.scope")
    );
    assert_eq!(
        cgroup_dir("kubepods-pod9.slice:crio:abc").as_deref(),
        Some("/kubepods.slice/kubepods-pod9.slice/crio-abc.scope")
    );
    assert_eq!(cgroup_dir("nonsense"), None);
}

#[test]
fn owners_as_the_operator_names_them() {
    assert_eq!(owner_of("x", &labels(&[("app", "web")])), "web");
    assert_eq!(
        owner_of(
            "x",
            &labels(&[("app", "web"), ("app.kubernetes.io/name", "shop")])
        ),
        "shop"
    );
    assert_eq!(
        owner_of(
            "web-7d9f8c6b5-x2x9z",
            &labels(&[("pod-template-hash", "7d9f8c6b5")])
        ),
        "web"
    );
    assert_eq!(owner_of("node-agent-x2x9z", &HashMap::new()), "node-agent");
    assert_eq!(
        owner_of(
            "db-12",
            &labels(&[("statefulset.kubernetes.io/pod-name", "db-12")])
        ),
        "db"
    );
    // A hand-made pod keeps its name (no generated suffix: vowels, length).
    assert_eq!(owner_of("debug-shell", &HashMap::new()), "debug-shell");
    assert_eq!(owner_of("db-12", &HashMap::new()), "db-12");
}

#[test]
fn profile_names_are_file_names() {
    let mut r = row("1", "web-abcde", "nginx", 0, true);
    r.labels = labels(&[("app", "we/b")]);
    assert_eq!(r.profile_name(), "we_b-nginx");
    assert_eq!(r.full_name(), "default/web-abcde/nginx");
}

#[test]
fn references() {
    assert_eq!(
        parse_ref("ns/p/c"),
        CriRef::Container {
            namespace: "ns",
            pod: "p",
            container: "c"
        }
    );
    assert_eq!(
        parse_ref("ns/p"),
        CriRef::Pod {
            namespace: "ns",
            pod: "p"
        }
    );
    assert_eq!(parse_ref("web-nginx"), CriRef::Other("web-nginx"));
    assert!(check_ref("kube-system/coredns-5d78c9869d-abcde/coredns").is_ok());
    assert!(check_ref("a/b/c/d").is_err());
    assert!(check_ref("ns//c").is_err());
    assert!(check_ref("ns/p;rm").is_err());
    assert!(check_ref("../x").is_err() && check_ref("ns/../c").is_err());
    assert!(check_ref("ns/.hidden/c").is_err());
}

#[test]
fn the_running_container_and_the_latest_attempt_come_first() {
    let rows = vec![
        row("old", "p", "c", 0, false),
        row("new", "p", "c", 1, true),
        row("side", "p", "s", 0, true),
    ];
    let r = CriRef::Container {
        namespace: "default",
        pod: "p",
        container: "c",
    };
    let ids: Vec<&str> = matching(&rows, &r).iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["new", "old"]);
    let pod = matching(
        &rows,
        &CriRef::Pod {
            namespace: "default",
            pod: "p",
        },
    );
    assert_eq!(pod.len(), 3);
    assert_eq!(matching(&rows, &CriRef::Other("p-c"))[0].id, "new");
    assert_eq!(matching(&rows, &CriRef::Other("side"))[0].id, "side");
    assert!(
        matching(&rows, &CriRef::Other("sid")).is_empty(),
        "ids need 4 characters"
    );
}

#[test]
fn listings_become_create_and_destroy_events() {
    let before: HashMap<String, Row> = [row("a", "web-bcdfg", "c", 0, true)]
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let now = vec![row("b", "web-fghjk", "c", 0, true)];
    let evs = changes(&before, &now);
    let got: Vec<(&str, &str, &str)> = evs
        .iter()
        .map(|e| (e.action.as_str(), e.id.as_str(), e.name.as_str()))
        .collect();
    // A pod re-created by its controller: the same profile name.
    assert_eq!(got, [("create", "b", "web-c"), ("destroy", "a", "web-c")]);
    assert!(changes(&before, &[row("a", "web-bcdfg", "c", 0, false)]).is_empty());
}
