//! Fits the shell: the completion scripts as each shell reads them, the man pages as `man`
//! renders them, and `diff --json` as a script reads it. Needs neither Docker nor root. A
//! shell or `man` that is not installed fails its check, never skips it (`cargo xtask setup`,
//! which `cargo xtask test` runs, installs them all).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use e2e::{assert_one_line_error, sh, tracer, tracer_bin, workdir};

/// Fails (never skips) without the binary under test.
fn built() {
    assert!(
        tracer_bin().exists(),
        "{} is not built",
        tracer_bin().display()
    );
}

/// `tool` is installed (fails otherwise); true.
fn installed(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is not installed: run `cargo xtask setup`");
    found
}

/// `path` (a file a package installs) exists (fails otherwise); true.
fn installed_file(path: &str) -> bool {
    let found = Path::new(path).exists();
    assert!(found, "{path} is missing: run `cargo xtask setup`");
    found
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A temporary directory of its own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        built();
        Self(workdir(test))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// `seccomp-tracer completions SHELL` written to DIR/SHELL.
fn script(dir: &Path, shell: &str) -> PathBuf {
    let out = tracer(&["completions", shell], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let p = dir.join(shell);
    std::fs::write(&p, &out.stdout).expect("write the script");
    p
}

/// What bash completes after `line` (the last word being completed), with the script loaded.
fn bash_completes(script: &Path, line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let prog = format!(
        "source {s} && COMP_WORDS=({w}) && COMP_CWORD={c} && COMP_LINE='{line}' && \
         COMP_POINT=${{#COMP_LINE}} && spec=$(complete -p seccomp-tracer) && f=${{spec#*-F }} && f=${{f%% *}} && \
         \"$f\" seccomp-tracer '{cur}' '{prev}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        s = path_str(script),
        w = words.join(" "),
        c = words.len() - 1,
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = sh(Command::new("bash").args(["-c", &prog]));
    assert!(out.status.success(), "{line}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn bash_loads_the_completion_script_and_completes_subcommands_and_options() {
    let dir = Scratch::new("shell-bash");
    let script = script(&dir.0, "bash");
    let out = sh(Command::new("bash").args(["-n", path_str(&script)]));
    assert!(out.status.success(), "bash -n: {}", text(&out));
    let prog = format!("source {} && complete -p seccomp-tracer", path_str(&script));
    let out = sh(Command::new("bash").args(["-c", &prog]));
    assert!(out.status.success(), "complete -p: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("seccomp-tracer"),
        "{}",
        text(&out)
    );
    let subs = bash_completes(&script, "seccomp-tracer ");
    for sub in ["record", "run", "diff", "daemon", "completions", "man"] {
        assert!(subs.iter().any(|s| s == sub), "{sub} not in {subs:?}");
    }
    assert!(!subs.iter().any(|s| s == "floor"), "hidden: {subs:?}");
    assert_eq!(
        bash_completes(&script, "seccomp-tracer record --dur"),
        ["--duration"]
    );
    assert_eq!(
        bash_completes(&script, "seccomp-tracer completions f"),
        ["fish"]
    );
}

#[test]
fn zsh_and_fish_parse_their_completion_scripts() {
    let dir = Scratch::new("shell-zsh-fish");
    for (shell, check) in [("zsh", "-n"), ("fish", "--no-execute")] {
        let script = script(&dir.0, shell);
        let body = std::fs::read_to_string(&script).expect("read the script");
        assert!(body.contains("exclude-refused"), "{shell}: {body}");
        if installed(shell) {
            let out = sh(Command::new(shell).args([check, path_str(&script)]));
            assert!(out.status.success(), "{shell} {check}: {}", text(&out));
        }
    }
    let out = tracer(&["completions", "tcsh"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
}

/// The README's install lines put each script where its shell looks for a command's
/// completion on first use (bash-completion, zsh's compinit, fish): under a scratch root here.
#[test]
fn each_shell_loads_the_script_from_where_the_readme_installs_it() {
    let dir = Scratch::new("shell-installed");
    let install = |shell: &str, rel: &str| {
        let dest = dir.0.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::rename(script(&dir.0, shell), &dest).expect("install the script");
        path_str(dest.parent().expect("parent")).to_string()
    };
    let bash_dir = install(
        "bash",
        "usr/share/bash-completion/completions/seccomp-tracer",
    );
    if installed_file("/usr/share/bash-completion/bash_completion") {
        let share = bash_dir.trim_end_matches("/bash-completion/completions");
        let prog = format!(
            "source /usr/share/bash-completion/bash_completion && \
             XDG_DATA_DIRS={share} __load_completion seccomp-tracer && complete -p seccomp-tracer"
        );
        let out = sh(Command::new("bash").args(["--norc", "-c", &prog]));
        assert!(out.status.success(), "bash-completion: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("_seccomp__tracer"),
            "{}",
            text(&out)
        );
    }
    let zsh_dir = install("zsh", "usr/local/share/zsh/site-functions/_seccomp-tracer");
    if installed("zsh") {
        let prog = format!(
            "fpath=({zsh_dir} $fpath); autoload -Uz compinit; compinit -u -D; \
             print -r -- ${{_comps[seccomp-tracer]}}"
        );
        let out = sh(Command::new("zsh").args(["-f", "-c", &prog]));
        assert!(out.status.success(), "zsh: {}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "_seccomp-tracer",
            "{}",
            text(&out)
        );
    }
    let fish_dir = install(
        "fish",
        "usr/share/fish/vendor_completions.d/seccomp-tracer.fish",
    );
    if installed("fish") {
        let prog = format!(
            "set -p fish_complete_path {fish_dir}; complete -C 'seccomp-tracer rec'; \
             complete -C 'seccomp-tracer record --dur'"
        );
        // fish loads a command's completions only for a command it finds in PATH.
        let bin_dir = tracer_bin().parent().expect("bin dir").to_path_buf();
        let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .expect("PATH");
        let out = sh(Command::new("fish")
            .args(["--no-config", "-c", &prog])
            .env("PATH", path));
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "fish: {}", text(&out));
        assert!(
            got.lines().any(|l| l.starts_with("record\t")),
            "{}",
            text(&out)
        );
        assert!(
            got.lines().any(|l| l.starts_with("--duration\t")),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn man_writes_a_page_per_subcommand_that_man_renders_and_never_replaces_another_file() {
    let dir = Scratch::new("shell-man");
    let man1 = dir.0.join("share/man/man1");
    let out = tracer(&["man", path_str(&man1)], &[]);
    assert!(out.status.success(), "{}", text(&out));
    for page in [
        "seccomp-tracer.1",
        "seccomp-tracer-record.1",
        "seccomp-tracer-diff.1",
    ] {
        assert!(man1.join(page).is_file(), "{page}: {}", text(&out));
    }
    assert!(!man1.join("seccomp-tracer-floor.1").exists());
    if installed("man") {
        let out = sh(Command::new("man")
            .args(["-P", "cat", "-l"])
            .arg(man1.join("seccomp-tracer-record.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("LC_ALL", "C"));
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l: {}", text(&out));
        for needle in ["seccomp-tracer record", "--duration", "--exclude-refused"] {
            assert!(page.contains(needle), "{needle} not in:\n{page}");
        }
    }
    // Again over its own pages: fine. Over another program's page: refused, left as it was.
    let out = tracer(&["man", path_str(&man1)], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let foreign = man1.join("seccomp-tracer-run.1");
    std::fs::write(&foreign, ".TH RUN 1 \"other\"\n").expect("write");
    let out = tracer(&["man", path_str(&man1)], &[]);
    assert_one_line_error(&out, "is not a man page seccomp-tracer generated");
    assert_eq!(
        std::fs::read_to_string(&foreign).expect("read"),
        ".TH RUN 1 \"other\"\n"
    );
}

#[test]
fn diff_json_is_one_object_with_the_same_differences_and_exit_status_as_the_text() {
    let dir = Scratch::new("shell-diff-json");
    let write = |name: &str, doc: &str| {
        let p = dir.0.join(name);
        std::fs::write(&p, doc).expect("write a profile");
        p.to_str().expect("UTF-8").to_string()
    };
    let a = write(
        "a.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "mbind"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let b = write(
        "b.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "socket", "write"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    for (x, y) in [(&a, &b), (&a, &a)] {
        let json = tracer(&["diff", x, y, "--json"], &[]);
        let words = tracer(&["diff", x, y], &[]);
        assert_eq!(json.status.code(), words.status.code(), "{}", text(&json));
        assert_eq!(json.status.code(), Some(0), "{}", text(&json));
        let v: serde_json::Value =
            serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
        assert_eq!(v["a"], x.as_str());
        assert_eq!(v["b"], y.as_str());
        assert_eq!(v["identical"], x == y, "{v}");
    }
    let out = tracer(&["diff", &a, &b, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["only_in_a"], serde_json::json!(["mbind"]), "{v}");
    assert_eq!(v["only_in_b"], serde_json::json!(["write"]), "{v}");
    assert_eq!(v["allowed_by_both"], 2, "{v}");
    assert_eq!(
        v["argument_rules_differ"],
        serde_json::json!([{"name": "socket", "a": "only AF_UNIX", "b": "any arguments"}]),
        "{v}"
    );
    // A profile that cannot be read: the same one-line error and failure as the text.
    let out = tracer(
        &[
            "diff",
            &a,
            &dir.0.join("none.json").to_string_lossy(),
            "--json",
        ],
        &[],
    );
    assert_one_line_error(&out, "cannot read");
}
