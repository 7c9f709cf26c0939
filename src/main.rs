//! authbridge: parse the command line, load settings, start logging, run the command.

use clap::Parser;

use authbridge::{
    cli::{self, Cli, Command},
    config::Settings,
    telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log_format);
    cli::run(cli.command.unwrap_or(Command::Serve), settings).await
}
