//! One function per subcommand, each thin: it checks what the subcommand needs, calls the
//! library and turns the result into output and an exit code. `main.rs` only dispatches.

pub mod daemon;
pub mod floor;
pub mod profiles;
pub mod record;
pub mod report;
pub mod run;
pub mod shell;
