//! Limits of one synchronisation, the same as GitLab kas's. Over a limit is a user error that names the
//! limit and the file; a partial set of files is never sent or applied.

/// Largest file of a manifest project.
pub const MAX_FILE_SIZE: u64 = 5 * 1024 * 1024;
/// All files of one sync together.
pub const MAX_TOTAL_SIZE: u64 = 20 * 1024 * 1024;
/// Files in one sync.
pub const MAX_FILES: usize = 1000;
/// Path globs per manifest project.
pub const MAX_PATHS: usize = 100;
/// An agent's config.yaml.
pub const MAX_CONFIG_FILE_SIZE: u64 = 128 * 1024;
/// Bytes of file content per `File` message.
pub const MAX_CHUNK_SIZE: usize = 128 * 1024;

/// Human-readable size for limit errors: `5 MiB`, `128 KiB`, `312 bytes`.
pub fn format_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}
