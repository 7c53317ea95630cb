use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = registry::config::Cli::parse();
    registry::telemetry::init(cli.common.log_format);
    match registry::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
