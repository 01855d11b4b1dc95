//! Input and output: the only code that calls GDAL/OGR or touches files.
//! Rasters (`raster`), coordinate systems (`crs`), GeoJSON (`vector`), the
//! input files (manifest, rivers, chiefs, settings) and safe file writing.

pub mod crs;
pub mod gpkg;
pub mod raster;
pub mod vector;
pub mod vfs;

use crate::domain::chiefs::Registry;
use crate::domain::config::Config;
use crate::domain::manifest::Manifest;
use crate::error::{Error, Result};
use std::io::Write as _;
use std::path::Path;

/// Silences GDAL's own printing of errors: riverwatch reports them itself,
/// with the file and tile.
pub fn quiet_gdal() {
    gdal::config::set_error_handler(|_, _, _| {});
}

fn read_text(path: &Path) -> Result<String> {
    if !vfs::is_vsi(path) {
        return std::fs::read_to_string(path).map_err(|e| Error::io(path, e));
    }
    String::from_utf8(vfs::read(path)?).map_err(|_| Error::invalid(path, "is not UTF-8 text"))
}

/// Reads a manifest (see [`Manifest::from_json`]).
///
/// # Errors
/// Unreadable file, malformed JSON, broken tiles.
pub fn load_manifest(path: &Path) -> Result<Manifest> {
    let text = read_text(path)?;
    let mut m = Manifest::from_json(path, &text)?;
    crate::schema::check_file(crate::schema::Kind::Manifest, path, &text)?;
    expand_stac(&mut m)?;
    Ok(m)
}

/// Fills the dates given as STAC Items from the items (see
/// [`crate::domain::manifest::DateImage::apply_stac`]), then checks their dates.
fn expand_stac(m: &mut Manifest) -> Result<()> {
    let swir = m.sensor.has_swir();
    let mut problems = Vec::new();
    for t in &mut m.tiles {
        for (which, d) in [("before", &mut t.before), ("after", &mut t.after)] {
            let Some(item) = d.stac.clone() else {
                continue;
            };
            let v: serde_json::Value = read_json(&item)?;
            let base = item.parent().unwrap_or(Path::new("")).to_path_buf();
            if let Err(e) = d.apply_stac(&v, &base, swir) {
                problems.push(format!("{}: tile {:?} {which}: {e}", item.display(), t.id));
            } else if let Some(p) = crate::domain::manifest::date_problem(&d.date) {
                problems.push(format!("{}: tile {:?} {which}: {p}", item.display(), t.id));
            }
        }
        if problems.is_empty() && t.before.date >= t.after.date {
            problems.push(format!(
                "{}: tile {:?}: before date {} is not earlier than after date {}",
                m.path.display(),
                t.id,
                t.before.date,
                t.after.date
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Many(problems))
    }
}

/// Reads a chief registry (see [`Registry::from_json`]).
///
/// # Errors
/// Unreadable file, malformed JSON, broken chiefs.
pub fn load_registry(path: &Path) -> Result<Registry> {
    let text = read_text(path)?;
    let r = Registry::from_json(path, &text)?;
    crate::schema::check_file(crate::schema::Kind::Chiefs, path, &text)?;
    Ok(r)
}

/// Reads a TOML settings file over the defaults (see [`Config::from_toml`]).
///
/// # Errors
/// Unreadable file, unknown keys, values out of range.
pub fn load_config(path: &Path) -> Result<Config> {
    Config::from_toml(path, &read_text(path)?)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a
/// rename, so a reader never sees a half-written file and a crash never leaves
/// one behind.
///
/// # Errors
/// [`Error::Io`] naming `path` when the folder cannot be created or written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if vfs::is_vsi(path) {
        return vfs::write_atomic_vsi(path, bytes);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // A temporary file that removes itself if anything fails before persist.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(STALE_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    // Temporary files are private (0600); products are for the team, so
    // readable like any file the user creates (0644 under the usual umask).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Suffix of the temporary files [`write_atomic`] writes.
pub(crate) const STALE_SUFFIX: &str = ".rwtmp";

/// The temporary sibling used by raster writers (GDAL creates the file
/// itself) and the dispatch folder.
pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Removes what a killed run left half-written in `dir` (not recursive):
/// files of [`write_atomic`] (`*.rwtmp`), files named `*.tmp<pid>` (see
/// [`tmp_path`]) and `.dispatch.tmp<pid>` folders. Run before writing into an output folder again.
///
/// # Errors
/// An unreadable folder or a leftover that cannot be removed.
pub fn remove_stale_tmp(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = name.ends_with(STALE_SUFFIX)
            || name
                .rsplit_once(".tmp")
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if !stale {
            continue;
        }
        let p = e.path();
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|err| Error::io(&p, err))?;
    }
    Ok(())
}

/// Reads and parses a JSON file, naming the file and position on failure.
///
/// # Errors
/// [`Error::Io`] when unreadable, [`Error::Json`] when not valid JSON or not of
/// the expected shape.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    crate::domain::parse_json(path, &read_text(path)?)
}

/// Reads a change model (`riverwatch-change-model/1` JSON, as written by
/// `scripts/fit_change_model.py`) and checks it fits a 4-, 5- or 6-band
/// pair.
///
/// # Errors
/// Unreadable file, malformed JSON, a model that fits no band layout.
pub fn load_change_model(path: &Path) -> Result<crate::kernels::changeprob::TreeModel> {
    let m: crate::kernels::changeprob::TreeModel = read_json(path)?;
    let errs: Vec<String> = (4..=6).filter_map(|b| m.check(b).err()).collect();
    if errs.len() == 3 {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            msg: format!(
                "not a usable change model: {}; refit it with scripts/fit_change_model.py",
                errs[0]
            ),
        });
    }
    Ok(m)
}

/// Hands freed heap memory back to the system (glibc keeps freed blocks in
/// per-thread arenas; a streamed scene frees and reallocates the same block
/// buffers on every block, so without this the resident size creeps up to
/// the sum of the arenas' high-water marks).
#[allow(unsafe_code)]
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it does not
    // touch live allocations.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resident memory of this process in bytes, from `/proc/self/statm`
/// (`None` where that file does not exist).
#[allow(unsafe_code)]
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// [`release_memory`] only when the resident size has passed `budget`
/// bytes. Handing memory back costs a page fault per 4 KiB when it is used
/// again, so a streamed scene trims when it must, not after every block.
pub fn release_memory_above(budget: u64) {
    if resident_bytes().is_some_and(|r| r > budget) {
        release_memory();
    }
}
