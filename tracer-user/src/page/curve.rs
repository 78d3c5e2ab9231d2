//! Pure: the learning curve as an inline SVG drawn by hand: wall-clock time (UTC) across,
//! distinct calls learned up, one step per first sighting, refusals and new instances on the
//! same axis. Nothing here does I/O.

use std::fmt::Write as _;

use super::html;
use crate::profile::why::Timestamp;

/// One first sighting on the curve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub at: Timestamp,
    pub name: String,
    pub program: String,
    pub refused: bool,
    /// Whether the call is in the profile (a refused call left out by `--exclude-refused`
    /// is marked without a step).
    pub counted: bool,
}

/// What the curve shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Curve {
    /// Calls in the profile with no recorded first sighting: counted from the start.
    pub unrecorded: usize,
    pub sightings: Vec<Sighting>,
    /// When tracing began.
    pub since: Option<Timestamp>,
    /// When each instance traced from its creation began.
    pub instances: Vec<Timestamp>,
    /// Up to when it was recorded: the curve runs flat to here.
    pub until: Option<Timestamp>,
}

/// The stroke of the curve (the browser test looks for it in the screenshot).
pub const CURVE_COLOUR: &str = "#1565c0";
const REFUSED_COLOUR: &str = "#d32f2f";
const INSTANCE_COLOUR: &str = "#6d6d6d";

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 62.0;
/// The most ticks an axis gets.
const MAX_TICKS: u64 = 8;
/// The shortest time axis: one sighting, or all in one second, still gets a readable one.
const MIN_SPAN: u64 = 10;

/// Tick spacings on the time axis, in seconds: the first that gives at most [`MAX_TICKS`].
const TIME_STEPS: &[u64] = &[
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    2 * 60,
    5 * 60,
    10 * 60,
    15 * 60,
    30 * 60,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    28 * DAY,
    91 * DAY,
    182 * DAY,
    364 * DAY,
];
const DAY: u64 = 86_400;

/// The time axis's step for a span of `span` seconds.
pub fn time_step(span: u64) -> u64 {
    TIME_STEPS
        .iter()
        .copied()
        .find(|s| span / s < MAX_TICKS)
        .unwrap_or_else(|| (span / MAX_TICKS / (364 * DAY) + 1) * 364 * DAY)
}

/// The count axis's step up to `max`: 1, 2, 5, 10, 20, 50... with at most [`MAX_TICKS`] ticks.
pub fn count_step(max: usize) -> usize {
    let mut base = 1usize;
    loop {
        for m in [1, 2, 5] {
            let s = base.saturating_mul(m);
            if max / s < MAX_TICKS as usize {
                return s;
            }
        }
        base = base.saturating_mul(10);
    }
}

/// A tick's label at step `step`: the time of day, with seconds when steps are shorter than
/// a minute; the date when they are a day or more.
pub fn tick_label(t: Timestamp, step: u64) -> String {
    let dt = t.date_time();
    if step >= DAY {
        dt[..10].to_string()
    } else if step >= 60 {
        t.time()[..5].to_string()
    } else {
        t.time()
    }
}

/// The time domain: from tracing's start (or the first event) to the last event with a little
/// room after it, at least [`MIN_SPAN`] wide.
fn domain(c: &Curve) -> Option<(u64, u64)> {
    let times = c
        .sightings
        .iter()
        .map(|s| s.at.0)
        .chain(c.instances.iter().map(|t| t.0))
        .chain(c.since.map(|t| t.0))
        .chain(c.until.map(|t| t.0));
    let (lo, hi) = times.fold(None, |acc: Option<(u64, u64)>, t| match acc {
        None => Some((t, t)),
        Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
    })?;
    let hi = hi.saturating_add(((hi - lo) / 20).max(1));
    // From where tracing (or the story) began: nothing is drawn before it.
    Some((lo, hi.max(lo + MIN_SPAN)))
}

/// Numbers written with at most one decimal.
fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// The SVG of the curve, with its own `<title>`.
pub fn svg(c: &Curve) -> String {
    let mut sorted: Vec<&Sighting> = c.sightings.iter().collect();
    sorted.sort_by(|a, b| a.at.cmp(&b.at).then(a.name.cmp(&b.name)));
    let total = c.unrecorded + sorted.iter().filter(|s| s.counted).count();
    let ystep = count_step(total.max(1));
    let ymax = total.max(1).div_ceil(ystep) * ystep;
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let y = |v: usize| TOP + ph - ph * v as f64 / ymax as f64;

    let mut s = format!(
        "<svg class=\"curve\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" \
         width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"curve-title\">\
         <title id=\"curve-title\">Learning curve: distinct calls learned over time</title>\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>",
        w = WIDTH,
        h = HEIGHT
    );
    legend(&mut s);
    // The count axis: gridlines and integer ticks.
    let mut v = 0;
    while v <= ymax {
        let yy = n(y(v));
        let _ = write!(
            s,
            "<line x1=\"{l}\" x2=\"{r}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#e6e6e6\"/>\
             <text x=\"{tx}\" y=\"{yy}\" dy=\"4\" text-anchor=\"end\" class=\"tick\">{v}</text>",
            l = LEFT,
            r = n(LEFT + pw),
            tx = n(LEFT - 8.0),
        );
        v += ystep;
    }
    let _ = write!(
        s,
        "<text class=\"axis-title\" transform=\"translate(18 {my}) rotate(-90)\" \
         text-anchor=\"middle\">distinct calls learned (count)</text>",
        my = n(TOP + ph / 2.0)
    );
    let Some((lo, hi)) = domain(c) else {
        let _ = write!(
            s,
            "{}<text x=\"{cx}\" y=\"{cy}\" text-anchor=\"middle\" class=\"empty\">no first \
             sighting recorded: no time axis to draw</text></svg>",
            axes(pw, ph),
            cx = n(LEFT + pw / 2.0),
            cy = n(TOP + ph / 2.0)
        );
        return s;
    };
    let x = |t: u64| LEFT + pw * (t.saturating_sub(lo)) as f64 / (hi - lo) as f64;
    // The time axis: ticks aligned to whole steps (UTC midnight for days).
    let step = time_step(hi - lo);
    let mut t = lo.div_ceil(step) * step;
    while t <= hi {
        let xx = n(x(t));
        let _ = write!(
            s,
            "<line x1=\"{xx}\" x2=\"{xx}\" y1=\"{top}\" y2=\"{bot}\" stroke=\"#f0f0f0\"/>\
             <line x1=\"{xx}\" x2=\"{xx}\" y1=\"{bot}\" y2=\"{tick}\" stroke=\"#333\"/>\
             <text x=\"{xx}\" y=\"{ty}\" text-anchor=\"middle\" class=\"tick\">{label}</text>",
            top = TOP,
            bot = n(TOP + ph),
            tick = n(TOP + ph + 5.0),
            ty = n(TOP + ph + 19.0),
            label = tick_label(Timestamp(t), step),
        );
        t += step;
    }
    let _ = write!(
        s,
        "<text class=\"axis-title\" x=\"{mx}\" y=\"{ay}\" text-anchor=\"middle\">wall-clock \
         time, UTC ({} to {}; ticks every {})</text>",
        Timestamp(lo).date_time(),
        Timestamp(hi).date_time(),
        duration(step),
        mx = n(LEFT + pw / 2.0),
        ay = n(HEIGHT - 14.0),
    );
    // New instances: dashed verticals.
    for i in &c.instances {
        let xx = n(x(i.0));
        let _ = write!(
            s,
            "<line class=\"instance\" x1=\"{xx}\" x2=\"{xx}\" y1=\"{top}\" y2=\"{bot}\" \
             stroke=\"{INSTANCE_COLOUR}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\">\
             <title>new instance traced from creation at {} UTC</title></line>",
            i.date_time(),
            top = TOP,
            bot = n(TOP + ph),
        );
    }
    // The step line, then the marks on it.
    let mut count = c.unrecorded;
    let mut path = format!("M{} {}", n(LEFT), n(y(count)));
    let mut marks = String::new();
    for sg in &sorted {
        let xx = x(sg.at.0);
        if sg.counted {
            count += 1;
            let _ = write!(path, "H{}V{}", n(xx), n(y(count)));
        }
        let tip = format!(
            "{}: first by {} at {} UTC{}",
            html::text(&sg.name),
            html::text(&sg.program),
            sg.at.date_time(),
            if sg.refused { ", refused" } else { "" }
        );
        let yy = y(count);
        if sg.refused {
            let _ = write!(
                marks,
                "<path class=\"refused\" d=\"M{} {}l5 9h-10z\" fill=\"{REFUSED_COLOUR}\" \
                 stroke=\"#7f0000\"><title>{tip}</title></path>",
                n(xx),
                n(yy - 6.0),
            );
        } else {
            let _ = write!(
                marks,
                "<circle class=\"sighting\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{CURVE_COLOUR}\">\
                 <title>{tip}</title></circle>",
                n(xx),
                n(yy),
            );
        }
    }
    let _ = write!(path, "H{}", n(LEFT + pw));
    let _ = write!(
        s,
        "<path class=\"learned\" d=\"{path}\" fill=\"none\" stroke=\"{CURVE_COLOUR}\" \
         stroke-width=\"3\" stroke-linejoin=\"miter\"/>{marks}{}</svg>",
        axes(pw, ph)
    );
    s
}

/// The two axis lines.
fn axes(pw: f64, ph: f64) -> String {
    format!(
        "<path class=\"axes\" d=\"M{l} {t}V{b}H{r}\" fill=\"none\" stroke=\"#333\"/>",
        l = LEFT,
        t = TOP,
        b = n(TOP + ph),
        r = n(LEFT + pw)
    )
}

fn legend(s: &mut String) {
    let y = 20.0;
    let _ = write!(
        s,
        "<g class=\"legend\">\
         <line x1=\"{a}\" x2=\"{b}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{CURVE_COLOUR}\" stroke-width=\"3\"/>\
         <text x=\"{at}\" y=\"{ty}\">calls learned</text>\
         <circle cx=\"{c}\" cy=\"{y}\" r=\"3\" fill=\"{CURVE_COLOUR}\"/>\
         <text x=\"{ct}\" y=\"{ty}\">first sighting</text>\
         <path d=\"M{d} {dy}l5 9h-10z\" fill=\"{REFUSED_COLOUR}\" stroke=\"#7f0000\"/>\
         <text x=\"{dt}\" y=\"{ty}\">refused (first sighting)</text>\
         <line x1=\"{e}\" x2=\"{e}\" y1=\"{ey0}\" y2=\"{ey1}\" stroke=\"{INSTANCE_COLOUR}\" \
         stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\
         <text x=\"{et}\" y=\"{ty}\">new instance (restart)</text></g>",
        a = LEFT,
        b = LEFT + 24.0,
        at = LEFT + 30.0,
        ty = y + 4.0,
        c = LEFT + 150.0,
        ct = LEFT + 158.0,
        d = LEFT + 270.0,
        dy = y - 6.0,
        dt = LEFT + 280.0,
        e = LEFT + 460.0,
        ey0 = y - 10.0,
        ey1 = y + 10.0,
        et = LEFT + 468.0,
    );
}

/// A tick step in words: `30 s`, `5 min`, `6 h`, `7 days`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s % DAY == 0 => match s / DAY {
            1 => "1 day".into(),
            d => format!("{d} days"),
        },
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-27T09:41:07Z
    const T: u64 = 1_795_772_467;

    fn sighting(at: u64, name: &str, refused: bool) -> Sighting {
        Sighting {
            at: Timestamp(at),
            name: name.into(),
            program: "sh".into(),
            refused,
            counted: true,
        }
    }

    #[test]
    fn the_time_step_gives_few_ticks_from_seconds_to_years() {
        assert_eq!(time_step(0), 1);
        assert_eq!(time_step(7), 1);
        assert_eq!(time_step(10), 2);
        assert_eq!(time_step(60), 10);
        assert_eq!(time_step(3600), 10 * 60);
        assert_eq!(time_step(DAY), 6 * 3600);
        assert_eq!(time_step(3 * DAY), 12 * 3600);
        assert_eq!(time_step(10 * DAY), 2 * DAY);
        assert_eq!(time_step(60 * DAY), 14 * DAY);
        let decade = 3650 * DAY;
        assert!(decade / time_step(decade) < MAX_TICKS);
        for span in [1, 59, 61, 3599, 86_399, 86_401, 1_000_000, 100_000_000] {
            assert!(span / time_step(span) < MAX_TICKS, "{span}");
        }
    }

    #[test]
    fn count_ticks_are_integers_and_few() {
        assert_eq!(count_step(1), 1);
        assert_eq!(count_step(7), 1);
        assert_eq!(count_step(8), 2);
        assert_eq!(count_step(40), 10);
        assert_eq!(count_step(5000), 1000);
        assert!(usize::MAX / count_step(usize::MAX) < MAX_TICKS as usize);
    }

    #[test]
    fn labels_fit_the_step() {
        assert_eq!(tick_label(Timestamp(T), 5), "09:41:07");
        assert_eq!(tick_label(Timestamp(T), 300), "09:41");
        assert_eq!(tick_label(Timestamp(T), DAY), "2026-11-27");
        assert_eq!(duration(30), "30 s");
        assert_eq!(duration(300), "5 min");
        assert_eq!(duration(6 * 3600), "6 h");
        assert_eq!(duration(DAY), "1 day");
        assert_eq!(duration(7 * DAY), "7 days");
    }

    #[test]
    fn the_curve_steps_once_per_call_from_the_unrecorded_ones() {
        let c = Curve {
            unrecorded: 2,
            sightings: vec![
                sighting(T + 10, "openat", false),
                sighting(T, "read", false),
                sighting(T + 10, "mbind", true),
            ],
            since: Some(Timestamp(T - 5)),
            instances: vec![Timestamp(T + 4)],
            until: None,
        };
        let s = svg(&c);
        // 5 calls: ticks 0..5 by 1.
        assert!(s.contains(">5</text>") && !s.contains(">6</text>"), "{s}");
        assert_eq!(s.matches("class=\"sighting\"").count(), 2, "{s}");
        assert_eq!(s.matches("class=\"refused\"").count(), 1, "{s}");
        assert_eq!(s.matches("class=\"instance\"").count(), 1, "{s}");
        let path = s.split("class=\"learned\" d=\"").nth(1).unwrap();
        let path = &path[..path.find('"').unwrap()];
        // Starts at 2 (the unrecorded ones), three steps up.
        assert_eq!(path.matches('V').count(), 3, "{path}");
        assert!(path.starts_with("M70 "), "{path}");
        assert!(
            s.contains("wall-clock time, UTC (2026-11-27 09:41:02"),
            "{s}"
        );
        assert!(s.contains("distinct calls learned (count)"));
    }

    #[test]
    fn degenerate_inputs_draw_a_readable_chart() {
        // Nothing at all.
        let s = svg(&Curve::default());
        assert!(s.contains("no first sighting recorded"), "{s}");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        // Only calls without a sighting.
        let s = svg(&Curve {
            unrecorded: 40,
            ..Default::default()
        });
        assert!(s.contains(">40</text>"), "{s}");
        // One sighting, or several in one second: a span of MIN_SPAN.
        for c in [
            Curve {
                sightings: vec![sighting(T, "read", false)],
                ..Default::default()
            },
            Curve {
                sightings: (0..5)
                    .map(|i| sighting(T, &format!("c{i}"), false))
                    .collect(),
                ..Default::default()
            },
        ] {
            let s = svg(&c);
            let (lo, hi) = domain(&c).unwrap();
            assert_eq!((lo, hi), (T, T + MIN_SPAN));
            assert!(s.contains("ticks every 2 s"), "{s}");
            assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
        }
        // Days: day ticks labelled with dates.
        let c = Curve {
            sightings: vec![
                sighting(T, "read", false),
                sighting(T + 9 * DAY, "write", false),
            ],
            ..Default::default()
        };
        let s = svg(&c);
        assert!(
            s.contains("ticks every 2 days") && s.contains(">2026-11-29<"),
            "{s}"
        );
        // Thousands of calls: few count ticks, one mark each.
        let c = Curve {
            sightings: (0..3000)
                .map(|i| sighting(T + i, &format!("c{i}"), i % 500 == 0))
                .collect(),
            ..Default::default()
        };
        let s = svg(&c);
        assert!(s.contains(">3000</text>") && !s.contains(">100</text>"));
        assert_eq!(s.matches("class=\"refused\"").count(), 6);
        assert_eq!(s.matches("class=\"sighting\"").count(), 2994);
    }

    #[test]
    fn an_uncounted_refusal_is_marked_without_a_step() {
        let mut r = sighting(T + 3, "mbind", true);
        r.counted = false;
        let s = svg(&Curve {
            sightings: vec![sighting(T, "read", false), r],
            ..Default::default()
        });
        let path = s.split("class=\"learned\" d=\"").nth(1).unwrap();
        let path = &path[..path.find('"').unwrap()];
        assert_eq!(path.matches('V').count(), 1, "{path}");
        assert_eq!(s.matches("class=\"refused\"").count(), 1);
    }

    #[test]
    fn names_in_tooltips_are_escaped() {
        let mut sg = sighting(T, "<script>alert(1)</script>", true);
        sg.program = "\"><img src=x onerror=alert(1)>".into();
        let s = svg(&Curve {
            sightings: vec![sg],
            ..Default::default()
        });
        assert!(!s.contains("<script") && !s.contains("<img"), "{s}");
        assert!(s.contains("&lt;script&gt;"), "{s}");
    }
}
