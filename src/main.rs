//! authbridge: parse the command line, load settings, start logging, run the command.

use clap::Parser;

use authbridge::{
    cli::{self, Cli, Command},
    config::Settings,
    telemetry,
};

/// mimalloc instead of glibc's malloc: under load glibc spent ~14% of a login's CPU in
/// malloc/free (arena locks, consolidation) and kept freed memory per thread arena; mimalloc's
/// thread-local free lists cost a fraction of that (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.server.log_format);
    cli::run(cli.command.unwrap_or(Command::Serve), settings).await
}

/// mimalloc (v3) option numbers, from the `mi_option_e` enum of its `mimalloc.h`.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// By default mimalloc commits its first arena at once and returns freed pages 10 ms late: idle
/// RSS was 63 MB instead of 26 MB, and the peak under load 125 MB instead of ~90. Committing on
/// demand and purging freed pages at once cost no measurable speed. This runs as an ELF
/// constructor because the Rust runtime allocates (and so reserves the first arena) before
/// `main`. A `MIMALLOC_*` variable set by the operator still wins.
#[expect(unsafe_code, reason = "mimalloc's options are set through its C API")]
extern "C" fn tune_allocator() {
    for (option, name, value) in [
        (MI_OPTION_ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
        (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0),
    ] {
        if std::env::var_os(name).is_none() {
            // SAFETY: sets a plain integer option before any other thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

#[cfg(target_os = "linux")]
#[used]
#[expect(
    unsafe_code,
    reason = "an ELF constructor: the only way to run before the runtime allocates"
)]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;
