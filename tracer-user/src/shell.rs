//! Pure: shell completion scripts and man pages, generated from the clap definitions in
//! [`crate::cli`] (clap_complete, clap_mangen), and the test that tells a man page this tool
//! generated from any other file; nothing here does I/O (`commands::shell` writes them).

use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell as Generator;

use crate::cli::Cli;

/// The program's name: the completion scripts complete it, the man pages are named after it.
pub const BIN_NAME: &str = "seccomp-tracer";

/// The shells `completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn generator(self) -> Generator {
        match self {
            Self::Bash => Generator::Bash,
            Self::Zsh => Generator::Zsh,
            Self::Fish => Generator::Fish,
        }
    }
}

/// The completion script for `shell`: every visible subcommand and option.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(
        shell.generator(),
        &mut visible_command(),
        BIN_NAME,
        &mut out,
    );
    match shell {
        Shell::Bash => bash_states_fixed(&out),
        Shell::Zsh | Shell::Fish => out,
    }
}

/// clap_complete's bash script (4.6.11) with the names of its states spelled one way. For a
/// program whose name has a hyphen, its loop over the words sets `seccomp__tracer__subcmd__run`
/// but the cases it then matches are spelled `seccomp__subcmd__tracer__subcmd__run`, so no
/// option after a subcommand would ever complete (clap-rs/clap#6421, open).
fn bash_states_fixed(script: &[u8]) -> Vec<u8> {
    let wrong = format!("{}__subcmd__", BIN_NAME.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", BIN_NAME.replace('-', "__"));
    String::from_utf8_lossy(script)
        .replace(&wrong, &right)
        .into_bytes()
}

/// The command line without its hidden subcommands: clap_complete's scripts would offer them
/// (clap has no way to remove a subcommand, so the top level is built again around the
/// visible ones).
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new(BIN_NAME)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}

/// A man page: its file name (`seccomp-tracer-record.1`) and its roff source.
#[derive(Debug, PartialEq, Eq)]
pub struct ManPage {
    pub file_name: String,
    pub roff: Vec<u8>,
}

/// `seccomp-tracer.1`, then one page per visible subcommand (`seccomp-tracer-record.1`...);
/// hidden subcommands get none.
pub fn man_pages() -> Result<Vec<ManPage>, std::io::Error> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Names each subcommand `seccomp-tracer-<sub>` (its title) and `seccomp-tracer <sub>`
    // (its synopsis).
    cmd.build();
    let subs = cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned();
    std::iter::once(cmd.clone())
        .chain(subs)
        .map(|c| {
            // Every page's footer names the program and its version, not the subcommand.
            let man = clap_mangen::Man::new(c)
                .source(format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION")))
                .manual("seccomp-tracer manual");
            let mut roff = Vec::new();
            man.render(&mut roff)?;
            Ok(ManPage {
                file_name: man.get_filename(),
                roff,
            })
        })
        .collect()
}

/// Whether `contents` (the start of a file is enough) is a man page this tool generated: its
/// first `.TH` line's title is [`BIN_NAME`] or `seccomp-tracer-<sub>`. Anything else (another
/// program's page, a file that is no man page) is not ours to replace.
pub fn is_our_man_page(contents: &[u8]) -> bool {
    let text = String::from_utf8_lossy(contents);
    let Some(th) = text.lines().find_map(|l| l.strip_prefix(".TH ")) else {
        return false;
    };
    let title = th.split_whitespace().next().unwrap_or_default();
    let title = title.trim_matches('"');
    title == BIN_NAME
        || title
            .strip_prefix(BIN_NAME)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|sub| !sub.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subcommands a user sees in `--help`.
    fn visible() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect()
    }

    fn hidden() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|s| s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect()
    }

    #[test]
    fn every_script_completes_every_visible_subcommand_and_no_hidden_one() {
        let subs = visible();
        assert!(
            subs.len() >= 10 && subs.iter().any(|s| s == "record"),
            "{subs:?}"
        );
        assert_eq!(hidden(), ["floor"]);
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completion_script(shell)).unwrap();
            assert!(script.contains(BIN_NAME), "{shell:?}");
            for sub in &subs {
                assert!(script.contains(sub.as_str()), "{shell:?} misses {sub}");
            }
            // An option of a subcommand, not only the names.
            assert!(script.contains("exclude-refused"), "{shell:?}");
            assert!(
                !script.contains("floor"),
                "{shell:?} offers a hidden subcommand"
            );
        }
        let bash = String::from_utf8(completion_script(Shell::Bash)).unwrap();
        assert!(bash.contains("complete -F _seccomp__tracer"), "{bash}");
        // Every state the loop over the words sets has its case (clap-rs/clap#6421).
        for sub in &subs {
            let state = format!("seccomp__tracer__subcmd__{sub}");
            assert!(bash.contains(&format!("cmd=\"{state}\"")), "{sub}");
            assert!(
                bash.contains(&format!("\n        {state})\n")),
                "no case for {sub}"
            );
        }
    }

    #[test]
    fn one_man_page_per_visible_subcommand_each_with_its_options() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|p| p.file_name.as_str()).collect();
        let mut expected = vec![format!("{BIN_NAME}.1")];
        expected.extend(visible().iter().map(|s| format!("{BIN_NAME}-{s}.1")));
        assert_eq!(names, expected);
        for page in &pages {
            assert!(is_our_man_page(&page.roff), "{}", page.file_name);
        }
        let record = pages
            .iter()
            .find(|p| p.file_name == "seccomp-tracer-record.1")
            .unwrap();
        let roff = String::from_utf8_lossy(&record.roff);
        assert!(roff.starts_with(".ie") || roff.contains("\n.TH seccomp-tracer-record 1"));
        assert!(
            roff.contains("duration") && roff.contains("exclude"),
            "{roff}"
        );
        assert!(roff.contains("seccomp\\-tracer record"), "synopsis: {roff}");
        let top = String::from_utf8_lossy(&pages[0].roff);
        assert!(top.contains("record") && !top.contains("floor"), "{top}");
    }

    #[test]
    fn only_our_own_man_pages_count_as_ours() {
        assert!(is_our_man_page(
            b".TH seccomp-tracer 1  \"seccomp-tracer 0.1.0\"\n"
        ));
        assert!(is_our_man_page(
            b".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n.TH seccomp-tracer-diff 1\n"
        ));
        assert!(!is_our_man_page(
            b".TH LS 1 \"March 2024\" \"GNU coreutils\"\n"
        ));
        assert!(!is_our_man_page(b".TH seccomp-tracerx 1\n"));
        assert!(!is_our_man_page(b".TH seccomp-tracer- 1\n"));
        assert!(!is_our_man_page(b"seccomp-tracer\n"));
        assert!(!is_our_man_page(b""));
        assert!(!is_our_man_page(b"\x7fELF\x02\x01"));
    }
}
