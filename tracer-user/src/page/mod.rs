//! Pure: the `report` page, one self-contained HTML file (no script, no network: a strict
//! Content-Security-Policy says so to the browser): the learning curve, the calls by group with
//! their provenance and argument rules, what goes beyond Docker's default, the refused calls
//! and their fixes, and how to use the profile. Every string that came from a profile, a
//! provenance file or the daemon is escaped ([`html::text`]). Nothing here does I/O.

pub mod curve;
pub mod groups;
pub mod html;
pub mod usage;

use std::{collections::BTreeSet, fmt::Write as _};

use curve::{Curve, Sighting};
use groups::{group_of, Group};
use html::text;
use usage::Source;

use crate::{
    profile::{
        args::describe,
        formats::{arch_name, Profile},
        moby::{cap_add_name, refusal_hint, Host, MobyError, Verdict},
        why::{Timestamp, WhyFile, NOT_RECORDED},
    },
    profiles::explained,
};

/// What a page is made from.
pub struct Report<'a> {
    /// What it is about: the profile's path or the container's name.
    pub title: &'a str,
    pub source: Source,
    pub host: Host,
    pub profile: &'a Profile,
    /// The first sightings (`<stem>.why.json`, or the daemon's), when there are any.
    pub why: Option<&'a WhyFile>,
    /// When the page was made.
    pub generated: Timestamp,
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;\
margin:24px auto;max-width:1000px;color:#1b1b1b;padding:0 12px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}\
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;width:100%;margin:4px 0 8px}\
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}\
th{background:#f5f5f5}td.call{font-family:ui-monospace,monospace;white-space:nowrap}\
.refused{color:#b71c1c;font-weight:600}.muted{color:#666}.caption{color:#444;margin:4px 0 0}\
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:10px;overflow-x:auto}\
svg.curve{max-width:100%;height:auto;font-size:12px}svg .tick{fill:#333}\
svg .axis-title{fill:#1b1b1b;font-size:13px}svg .empty{fill:#666;font-size:15px}";

/// The whole page.
pub fn render(r: &Report) -> Result<String, MobyError> {
    let p = r.profile;
    let title = text(r.title);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">{}\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>seccomp profile report: {title}</title><style>{STYLE}</style></head><body>\n\
         <h1>seccomp profile report: {title}</h1>\n",
        html::GENERATOR
    );
    let rules = p.conditions.len();
    let _ = writeln!(
        out,
        "<p class=\"muted\">{} syscalls allowed on {}{}; generated {} UTC by seccomp-tracer {}.</p>",
        p.allowed.len(),
        arch_name(r.host.arch),
        if rules == 0 {
            String::new()
        } else {
            format!(", {rules} of them only with the argument values seen")
        },
        r.generated.date_time(),
        env!("CARGO_PKG_VERSION"),
    );
    if p.permissive {
        out.push_str(
            "<p class=\"refused\">This profile allows every call it does not list \
             (defaultAction SCMP_ACT_ALLOW): the calls below are not all it allows.</p>\n",
        );
    }
    if p.complain {
        out.push_str(
            "<p>Complain mode: calls not allowed are logged (SCMP_ACT_LOG), not refused.</p>\n",
        );
    }
    learning_curve(&mut out, r);
    by_group(&mut out, r);
    beyond_default(&mut out, r)?;
    refused(&mut out, r);
    how_to_use(&mut out, r);
    out.push_str("</body></html>\n");
    Ok(out)
}

/// The curve's input: a sighting per call of the profile that has one, the rest counted from
/// the start; refusals of calls left out of the profile marked without a step.
pub fn curve_of(p: &Profile, why: Option<&WhyFile>) -> Curve {
    let mut c = Curve::default();
    let Some(w) = why else {
        c.unrecorded = p.allowed.len();
        return c;
    };
    c.since = w.recorded_since;
    c.instances = w.instances.clone();
    c.until = w.recorded_until;
    let sighting = |name: &str, counted| {
        w.first(name).map(|e| Sighting {
            at: e.first_seen,
            name: name.into(),
            program: e.program.clone(),
            refused: e.refused,
            counted,
        })
    };
    for name in &p.allowed {
        match sighting(name, true) {
            Some(s) => c.sightings.push(s),
            None => c.unrecorded += 1,
        }
    }
    let names: BTreeSet<&String> = w.calls.keys().chain(w.compat_calls.keys()).collect();
    for name in names {
        if !p.allowed.contains(name.as_str()) {
            c.sightings
                .extend(sighting(name, false).filter(|s| s.refused));
        }
    }
    c
}

fn learning_curve(out: &mut String, r: &Report) {
    let c = curve_of(r.profile, r.why);
    out.push_str("<h2 id=\"curve\">Learning curve</h2>\n<figure>");
    out.push_str(&curve::svg(&c));
    out.push_str("<figcaption class=\"caption\">Each step is a call made for the first time");
    if let Some(s) = c.since {
        let _ = write!(out, "; tracing began {} UTC", s.date_time());
    }
    if let Some(u) = c.until {
        let _ = write!(out, " and this record runs to {} UTC", u.date_time());
    }
    let _ = write!(
        out,
        ". {} recorded, {} traced from creation (dashed lines).",
        plural(
            c.sightings.iter().filter(|s| s.counted).count(),
            "first sighting"
        ),
        plural(c.instances.len(), "new instance")
    );
    if r.why.is_none() {
        out.push_str(
            " No provenance file (&lt;stem&gt;.why.json) came with this profile, so no call has \
             a recorded first sighting.",
        );
    }
    if c.unrecorded > 0 {
        let _ = write!(
            out,
            " {} of the profile {} no recorded first sighting (made before tracing attached, \
             added as the container runtime's baseline, or their event was dropped): counted \
             at the start of the curve.",
            plural(c.unrecorded, "call"),
            if c.unrecorded == 1 { "has" } else { "have" }
        );
    }
    let left_out = c.sightings.iter().filter(|s| !s.counted).count();
    if left_out > 0 {
        let _ = write!(
            out,
            " {} left out of the profile: marked without a step.",
            plural(left_out, "refused call")
        );
    }
    out.push_str(
        " A curve that has stayed flat for long means learning has converged.</figcaption>\
         </figure>\n",
    );
}

/// `1 call`, `2 calls`.
fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `any arguments`, or the rule.
fn rule(p: &Profile, name: &str) -> String {
    match p.conditions.get(name) {
        Some(c) => format!("only {}", describe(name, c)),
        None => "any arguments".into(),
    }
}

fn provenance(why: Option<&WhyFile>, name: &str) -> String {
    let d = why.map_or_else(|| NOT_RECORDED.to_string(), |w| w.describe(name, true));
    let class = if d.ends_with(", refused)") {
        "refused"
    } else if d == NOT_RECORDED {
        "muted"
    } else {
        ""
    };
    format!("<td class=\"{class}\">{}</td>", text(&d))
}

fn by_group(out: &mut String, r: &Report) {
    let p = r.profile;
    out.push_str("<h2 id=\"calls\">Calls by what they do</h2>\n");
    if p.allowed.is_empty() {
        out.push_str("<p>The profile allows no call by name.</p>\n");
    }
    for g in Group::ALL {
        let names: Vec<&String> = p.allowed.iter().filter(|n| group_of(n) == g).collect();
        if names.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<h3>{} ({})</h3>\n<table class=\"calls\"><thead><tr><th>call</th>\
             <th>first sighting</th><th>arguments</th></tr></thead><tbody>",
            g.title(),
            names.len()
        );
        for n in names {
            let _ = writeln!(
                out,
                "<tr><td class=\"call\">{}</td>{}<td>{}</td></tr>",
                text(n),
                provenance(r.why, n),
                text(&rule(p, n))
            );
        }
        out.push_str("</tbody></table>\n");
    }
}

fn beyond_default(out: &mut String, r: &Report) -> Result<(), MobyError> {
    let e = explained(r.profile, r.host, r.title)?;
    let _ = writeln!(
        out,
        "<h2 id=\"beyond\">Beyond Docker's default</h2>\n<p>Docker's default profile allows {} \
         calls with any arguments on {} (Linux {}, default capabilities); this profile refuses \
         {} of them.</p>",
        e.default_allows, e.arch, e.kernel, e.narrower_than_default
    );
    if e.beyond_default.is_empty() {
        out.push_str("<p>Everything this profile allows, Docker's default allows too.</p>\n");
    } else {
        out.push_str(
            "<table class=\"beyond\"><thead><tr><th>call</th><th>verdict</th>\
             <th>what would make Docker's default allow it</th><th>first sighting</th></tr>\
             </thead><tbody>\n",
        );
        for b in &e.beyond_default {
            let (verdict, why) = match &b.verdict {
                Verdict::Capability { capabilities } => {
                    let caps: Vec<String> = capabilities
                        .iter()
                        .map(|c| format!("--cap-add {}", cap_add_name(c)))
                        .collect();
                    let why = match caps.split_first() {
                        Some((first, [])) => first.clone(),
                        Some((first, rest)) => {
                            format!("{first} (least privilege), or {}", rest.join(", "))
                        }
                        None => String::new(),
                    };
                    ("capability", why)
                }
                Verdict::Never => ("never", "no capability does".to_string()),
                Verdict::Arguments => (
                    "arguments",
                    "nothing: it allows only some argument values, fewer than here".to_string(),
                ),
            };
            let _ = writeln!(
                out,
                "<tr><td class=\"call\">{}</td><td>{verdict}</td><td>{}</td>{}</tr>",
                text(&b.name),
                text(&why),
                provenance(r.why, &b.name)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    let json = serde_json::to_string_pretty(&e).unwrap_or_default();
    let _ = writeln!(
        out,
        "<details><summary>The same, as <code>seccomp-tracer explain --json</code> prints \
         it</summary><pre>{}</pre></details>",
        text_block(&json)
    );
    Ok(())
}

/// A block of lines for `<pre>`: each line escaped, newlines kept.
fn text_block(s: &str) -> String {
    s.lines().map(text).collect::<Vec<_>>().join("\n")
}

/// The calls refused while recording: in the provenance file (refused first sightings) or
/// marked so in the profile.
pub fn refused_names(p: &Profile, why: Option<&WhyFile>) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = p.refused.iter().cloned().collect();
    if let Some(w) = why {
        names.extend(
            w.calls
                .iter()
                .chain(&w.compat_calls)
                .filter(|(_, e)| e.refused)
                .map(|(n, _)| n.clone()),
        );
    }
    names
}

fn refused(out: &mut String, r: &Report) {
    let names = refused_names(r.profile, r.why);
    out.push_str("<h2 id=\"refused\">Refused while recording</h2>\n");
    if names.is_empty() {
        out.push_str(
            "<p>No call was refused while recording (by the profile the target ran under).</p>\n",
        );
        return;
    }
    out.push_str(
        "<p>Calls the profile in force refused: the program asked for them and got an error. \
         Enforcing a profile that leaves them out keeps them failing.</p>\n\
         <table class=\"refusals\"><thead><tr><th>call</th><th>in this profile</th>\
         <th>first sighting</th><th>fix</th></tr></thead><tbody>\n",
    );
    for n in &names {
        let in_profile = r.profile.allowed.contains(n);
        let fix = if in_profile {
            refusal_hint(n, r.host, None)
        } else {
            format!(
                "left out of this profile (--exclude-refused): add it to the profile if the \
                 program needs it; {}",
                refusal_hint(n, r.host, None)
            )
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"call refused\">{}</td><td>{}</td>{}<td>{}</td></tr>",
            text(n),
            if in_profile { "yes" } else { "no" },
            provenance(r.why, n),
            text(&fix)
        );
    }
    out.push_str("</tbody></table>\n");
}

fn how_to_use(out: &mut String, r: &Report) {
    out.push_str("<h2 id=\"use\">How to use it</h2>\n");
    for s in usage::steps(&r.source) {
        let _ = write!(out, "<h3>{}</h3>", text(s.title));
        if let Some(note) = &s.note {
            let _ = write!(out, "<p>{}</p>", text(note));
        }
        let _ = writeln!(out, "<pre>{}</pre>", text_block(&s.lines.join("\n")));
    }
}

#[cfg(test)]
mod tests;
