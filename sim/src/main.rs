//! The `avs-sim` binary: everything lives in the library; see `avs_sim::cli`.

fn main() -> std::process::ExitCode {
    avs_sim::cli::main()
}
