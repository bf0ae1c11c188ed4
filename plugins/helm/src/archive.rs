//! Chart archives (`charts/<name>-<version>.tgz`): a gzipped tar whose entries all sit under one
//! top-level directory, the chart's name. Pure Rust so it builds for wasm32-wasip2.

use crate::chart::ChartFile;
use std::io::Read;

/// The regular files of a chart archive, with the top-level directory stripped, in archive order.
pub fn unpack(data: &[u8]) -> Result<Vec<ChartFile>, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let mut files = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        // helm refuses archives escaping their root; an entry without a directory is not part of a chart.
        let Some((_, inner)) = path.split_once('/') else {
            continue;
        };
        if inner.split('/').any(|segment| segment == "..") {
            return Err(format!("entry `{path}` leaves the archive"));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("reading `{path}`: {e}"))?;
        files.push(ChartFile {
            name: inner.to_owned(),
            data,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}
