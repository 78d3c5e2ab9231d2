//! `report`: the HTML page on a recorded container, made from its profile file and through a
//! daemon, loaded in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `cargo xtask setup`) logs no console message (no script error, nothing the page's
//! Content-Security-Policy blocked), its DOM has the curve and the tables, and its screenshot
//! shows the chart. Needs root, BPF, Docker and Chromium; fails (never skips) without them.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use e2e::{
    busybox, cleanup, docker, nr, preflight, target_status, tracer, workdir, Daemon, Recording,
};
use seccomp_tracer::page::{curve::CURVE_COLOUR, html::GENERATOR};

const CHROMIUM: &str = "chromium";

/// What Chromium made of a page.
struct Loaded {
    /// The DOM after loading (`--dump-dom`).
    dom: String,
    /// The console messages it logged (`:CONSOLE` lines; uncaught errors; CSP refusals).
    console: Vec<String>,
    screenshot: PathBuf,
}

/// Runs headless Chromium on `args` with a fresh profile directory; its stdout and stderr.
fn chromium_run(dir: &Path, args: &[&str]) -> (String, String) {
    let profile = tempfile_dir(dir);
    let out = Command::new("timeout")
        .args(["120", CHROMIUM])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=1",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {CHROMIUM} ({e}): `cargo xtask setup` installs Debian's chromium")
        });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{CHROMIUM} {args:?}: {}\n{stderr}",
        out.status
    );
    let _ = std::fs::remove_dir_all(&profile);
    (stdout, stderr)
}

/// A directory of its own under `dir`.
fn tempfile_dir(dir: &Path) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = dir.join(format!("chromium-profile-{n}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("chromium profile dir");
    d
}

fn console_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("Refused to"))
        .map(str::to_string)
        .collect()
}

/// Loads `page` twice: a screenshot, then the DOM.
fn load(page: &Path, dir: &Path) -> Loaded {
    let url = format!("file://{}", page.display());
    let screenshot = page.with_extension("png");
    let _ = std::fs::remove_file(&screenshot);
    let (_, err1) = chromium_run(
        dir,
        &[&format!("--screenshot={}", screenshot.display()), &url],
    );
    let (dom, err2) = chromium_run(dir, &["--dump-dom", &url]);
    let mut console = console_lines(&err1);
    console.extend(console_lines(&err2));
    Loaded {
        dom,
        console,
        screenshot,
    }
}

/// The screenshot's pixels: how many are not (nearly) white, how many are the curve's colour.
fn pixels(png_path: &Path) -> (usize, usize, usize) {
    let file = std::fs::File::open(png_path)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png_path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let bpp = info.line_size / info.width as usize;
    assert!(bpp >= 3, "{:?}", info.color_type);
    let hex = |i: usize| u8::from_str_radix(&CURVE_COLOUR[i..i + 2], 16).expect("colour");
    let curve = [hex(1), hex(3), hex(5)];
    let (mut total, mut ink, mut stroke) = (0, 0, 0);
    for row in buf[..info.buffer_size()].chunks(info.line_size) {
        for px in row.chunks(bpp) {
            total += 1;
            if px[..3].iter().any(|&c| c < 235) {
                ink += 1;
            }
            if px[..3].iter().zip(curve).all(|(&a, b)| a.abs_diff(b) <= 24) {
                stroke += 1;
            }
        }
    }
    (total, ink, stroke)
}

/// The page rendered cleanly, with the curve and the tables, and the chart is in the picture.
fn assert_rendered(l: &Loaded, context: &str) {
    assert!(
        l.console.is_empty(),
        "console messages:\n{}\n{context}",
        l.console.join("\n")
    );
    let dom = &l.dom;
    assert!(dom.contains(GENERATOR), "not our page:\n{dom}");
    assert!(dom.contains("<svg class=\"curve\""), "no curve:\n{dom}");
    let path = dom
        .split("class=\"learned\" d=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap_or_else(|| panic!("no curve path:\n{dom}"));
    assert!(
        path.starts_with('M') && path.contains('V'),
        "a curve without steps: {path}"
    );
    assert!(
        dom.contains("class=\"sighting\""),
        "no first sighting marked:\n{dom}"
    );
    assert!(
        dom.contains("class=\"refused\""),
        "no refusal marked:\n{dom}"
    );
    assert!(dom.matches("<table class=\"calls\">").count() >= 3, "{dom}");
    assert!(dom.contains("<td class=\"call\">mbind</td>"), "{dom}");
    assert!(dom.contains("first by numa-probe at 20"), "{dom}");
    assert!(dom.contains("--cap-add SYS_NICE"), "{dom}");
    assert!(dom.contains("tracing began 20"), "{dom}");
    assert!(dom.contains("docker run --security-opt seccomp=/"), "{dom}");
    let (total, ink, stroke) = pixels(&l.screenshot);
    assert!(
        ink * 50 > total,
        "a blank screenshot: {ink} of {total} pixels not white"
    );
    assert!(
        stroke > 300,
        "the curve's colour is on {stroke} pixels only"
    );
}

/// A copy of the probe under a name of its own makes mbind, which Docker's default profile
/// refuses: a refused first sighting by `numa-probe`.
fn numa_probe(container: &str) {
    let script = format!(
        "cp /probe /tmp/numa-probe && /tmp/numa-probe direct {}",
        nr("mbind")
    );
    docker(&["exec", container, "sh", "-c", &script]);
}

#[test]
fn a_report_on_a_recorded_profile_renders_in_chromium_with_the_curve_and_the_tables() {
    preflight();
    let name = "st-e2e-report";
    let _c = cleanup(&[name]);
    let dir = workdir("report");
    let profile = dir.join("web.json");
    busybox(name, "while true; do sleep 0.2; done", None);
    let mut rec = Recording::start(&[name, "-o", profile.to_str().unwrap()], &dir);
    std::thread::sleep(Duration::from_secs(2));
    numa_probe(name);
    rec.wait_for("REFUSED mbind", Duration::from_secs(30));
    docker(&["restart", "-t", "1", name]);
    rec.wait_for("new instance", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let out = rec.stop();

    let page = dir.join("web.html");
    let r = tracer(
        &[
            "report",
            profile.to_str().unwrap(),
            "-o",
            page.to_str().unwrap(),
        ],
        &[],
    );
    assert!(r.status.success(), "{r:?}\n{out}");
    let l = load(&page, &dir);
    assert_rendered(&l, &out);
    assert!(
        l.dom.contains("class=\"instance\""),
        "no restart line:\n{}",
        l.dom
    );
    assert!(
        l.dom.contains(&format!("seccomp={}", profile.display())),
        "{}",
        l.dom
    );

    // Its own report is replaced; a file it did not write is not.
    let again = tracer(
        &[
            "report",
            profile.to_str().unwrap(),
            "-o",
            page.to_str().unwrap(),
        ],
        &[],
    );
    assert!(again.status.success(), "{again:?}");
    let notes = dir.join("notes.html");
    std::fs::write(&notes, "<html>mine</html>").unwrap();
    let refused = tracer(
        &[
            "report",
            profile.to_str().unwrap(),
            "-o",
            notes.to_str().unwrap(),
        ],
        &[],
    );
    e2e::assert_one_line_error(&refused, "is not a report seccomp-tracer wrote");
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "<html>mine</html>"
    );
}

#[test]
fn a_report_on_a_container_the_daemon_records_renders_in_chromium() {
    preflight();
    let name = "st-e2e-report-daemon";
    let _c = cleanup(&[name]);
    let dir = workdir("report-daemon");
    busybox(name, "while true; do sleep 0.2; done", None);
    let d = Daemon::start(&dir);
    d.ok(&["add", name]);
    std::thread::sleep(Duration::from_secs(2));
    numa_probe(name);
    d.wait_status("mbind not reported refused", Duration::from_secs(15), |s| {
        target_status(s, name)["refused"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c == "mbind"))
    });
    let page = dir.join("daemon.html");
    d.ok(&["report", name, "-o", page.to_str().unwrap()]);
    let l = load(&page, &dir);
    assert_rendered(&l, &d.text());
    assert!(
        l.dom
            .contains(&format!("seccomp-tracer export {name} -o /")),
        "no export line:\n{}",
        l.dom
    );
    // `-` is standard output.
    let stdout = d.ok(&["report", name, "-o", "-"]);
    assert!(stdout.starts_with("<!DOCTYPE html>") && stdout.contains(GENERATOR));
}

/// The console check can fail: a script error is caught, and so is a script the page's
/// Content-Security-Policy blocks.
#[test]
fn the_console_check_catches_a_script_error_and_a_blocked_script() {
    let dir = workdir("report-console");
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><p>x</p><script>console.error(\"st-marker\")</script>\
         </body></html>",
    )
    .unwrap();
    let l = load(&bad, &dir);
    assert!(
        l.console.iter().any(|c| c.contains("st-marker")),
        "console.error not seen: {:?}",
        l.console
    );
    let blocked = dir.join("blocked.html");
    std::fs::write(
        &blocked,
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'\"></head><body><p>x</p><script>var a = 1;</script>\
         </body></html>",
    )
    .unwrap();
    let l = load(&blocked, &dir);
    assert!(
        l.console
            .iter()
            .any(|c| c.contains("Content Security Policy")),
        "the blocked script not seen: {:?}",
        l.console
    );
    // And a blank page is told from a chart.
    let (total, ink, stroke) = pixels(&l.screenshot);
    assert!(ink * 50 < total && stroke == 0, "{ink} {stroke} of {total}");
}
