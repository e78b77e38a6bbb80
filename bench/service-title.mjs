// Preloaded into the service process (node --import): renames it in ps and
// /proc/<pid>/cmdline, so that name-based clean-ups of dev servers on a shared
// machine (pkill -f src/server.ts) do not stop the bench's service mid-run.
process.title = "otp-bench-service";
