//! `cargo xtask syscall-tables CSV`: tracer-user/src/syscalls/{x86_64,aarch64,i386}.rs from
//! libseccomp's `src/syscalls.csv` (one row per call, one column of numbers per architecture,
//! `PNR` where the architecture has no such call).

use std::{collections::BTreeMap, path::Path};

use anyhow::{bail, Context, Result};

/// (our table, its column in the csv)
const TABLES: [(&str, &str); 3] = [
    ("x86_64", "x86_64"),
    ("aarch64", "aarch64"),
    ("i386", "x86"),
];

/// number -> name for `column` of the csv `text`.
pub fn table(text: &str, column: &str) -> Result<BTreeMap<u32, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty csv")?.split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == column)
        .with_context(|| format!("no column {column} in the csv header"))?;
    let mut out = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(name), Some(nr)) = (fields.first(), fields.get(col)) else {
            bail!("short row: {line}");
        };
        if *nr == "PNR" {
            continue;
        }
        let nr: u32 = nr.parse().with_context(|| format!("row {line}"))?;
        if let Some(other) = out.insert(nr, name.to_string()) {
            bail!("{column}: {nr} is both {other} and {name}");
        }
    }
    Ok(out)
}

/// Writes the three table files under `root` from the csv at `csv`.
pub fn generate(root: &Path, csv: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    for (ours, column) in TABLES {
        let t = table(&text, column)?;
        let body: String = t
            .iter()
            .map(|(nr, n)| format!("    ({nr}, \"{n}\"),\n"))
            .collect();
        let file = format!(
            "//! Syscall numbers of the {ours} ABI, generated from libseccomp's `src/syscalls.csv`\n\
             //! (column `{column}`) by `cargo xtask syscall-tables CSV`. Do not edit by hand.\n\n\
             pub const TABLE: &[(u32, &str)] = &[\n{body}];\n"
        );
        let out = root.join(format!("tracer-user/src/syscalls/{ours}.rs"));
        std::fs::write(&out, file).with_context(|| format!("writing {}", out.display()))?;
        println!("{}: {} calls", out.display(), t.len());
    }
    Ok(())
}
