//! The `agentry` binary: configuration, wiring and commands.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "agentry", version, about = "Run agentic AI workflows as States Language state machines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a state machine definition as AWS Step Functions would.
    Validate {
        file: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { file, json } => {
            let _ = (file, json);
            anyhow::bail!("validate: not yet wired")
        }
    }
}
