use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = metarl::cli::Cli::parse();
    let mut logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(cli.log_filter()));
    logger.format_timestamp(None).init();
    if !metarl_plugin_kit::process::keep_freed_memory() {
        log::debug!("malloc left at its defaults (METARL_MALLOC=system, or not glibc)");
    }
    match metarl::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the chain of causes joined by ": ".
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
