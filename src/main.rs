//! authbridge: parse the command line, load settings, start logging, run the command.

use clap::Parser;

/// mimalloc instead of glibc's allocator: a request allocates and frees small buffers on several
/// threads (runtime workers, database workers), where glibc's per-thread arenas cost time and
/// keep freed memory resident.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
