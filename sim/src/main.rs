//! The `avs-sim` binary: everything lives in the library; see `avs_sim::cli`.

/// mimalloc instead of glibc malloc: the event path allocates and frees many
/// small blocks across worker threads, where glibc spent ~45% of the CPU
/// time in malloc, free and consolidation (perf; see bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    avs_sim::cli::main()
}
