//! Which files the dynamic loader opens for a guest executable, found the way `ld.so` finds
//! them, so Landlock can grant exactly those and nothing else.
//!
//! We read the ELF program headers (`PT_INTERP`, `PT_DYNAMIC`), the `DT_NEEDED` names and
//! `DT_RUNPATH`/`DT_RPATH` (with `$ORIGIN`), and search the standard x86_64 library
//! directories, transitively. We do **not** grant `/etc/ld.so.cache`: without it the loader
//! falls back to searching its built-in directories, which is what we mirror here, and
//! `EACCES` on a candidate it does not need only makes it move on (glibc `open_path`). Every
//! existing candidate in the first directory that has the library is granted, including
//! `glibc-hwcaps/x86-64-v{2,3,4}` variants, because the loader picks among those by CPU.
//!
//! Not supported (the library is then "not found" and `prepare` fails, naming it):
//! `ld.so.conf` directories outside the standard ones, `$LIB`/`$PLATFORM` tokens,
//! `LD_LIBRARY_PATH` (the guest's environment is empty anyway), and `dlopen` at run time.

use std::{
    collections::BTreeSet,
    fs::File,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use crate::platform::SandboxError;

/// Directories the loader searches when `/etc/ld.so.cache` is unreadable, for the Debian/
/// Ubuntu multiarch layout and the Fedora/Arch `lib64` layout.
pub(crate) const SYSTEM_LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Subdirectories glibc >= 2.33 tries first in each search directory, best first.
const HWCAPS_DIRS: &[&str] = &[
    "glibc-hwcaps/x86-64-v4",
    "glibc-hwcaps/x86-64-v3",
    "glibc-hwcaps/x86-64-v2",
];

/// Libraries pulled in transitively are capped so a malformed file cannot make us loop.
const MAX_OBJECTS: usize = 256;

/// The files a guest executable needs at load time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LoadSet {
    /// The ELF interpreter (`PT_INTERP`), canonical; `None` for a static executable.
    pub interpreter: Option<PathBuf>,
    /// Shared libraries, canonical, sorted.
    pub libraries: Vec<PathBuf>,
}

/// What one ELF file says about loading.
#[derive(Debug, Default)]
struct Dynamic {
    interp: Option<String>,
    needed: Vec<String>,
    runpath: Vec<String>,
    rpath: Vec<String>,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const EM_X86_64: u16 = 62;

fn invalid(path: &Path, problem: &'static str) -> SandboxError {
    SandboxError::InvalidElf {
        path: path.to_owned(),
        problem,
    }
}

fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, SandboxError> {
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|source| SandboxError::ReadExecutable {
            path: path.to_owned(),
            source,
        })?;
    Ok(buf)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut w = [0; 2];
    w.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(w)
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether `path` is a 64-bit little-endian x86_64 ELF file (the loader skips others).
fn is_x86_64_elf(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut h = [0u8; 20];
    file.read_exact_at(&mut h, 0).is_ok()
        && h[..4] == *b"\x7fELF"
        && h[4] == 2
        && h[5] == 1
        && u16_at(&h, 18) == EM_X86_64
}

fn parse(path: &Path) -> Result<Dynamic, SandboxError> {
    let file = File::open(path).map_err(|source| SandboxError::ReadExecutable {
        path: path.to_owned(),
        source,
    })?;
    let h = read_at(&file, path, 0, 64)?;
    if h[..4] != *b"\x7fELF" {
        return Err(invalid(path, "not an ELF file"));
    }
    if h[4] != 2 || h[5] != 1 || u16_at(&h, 18) != EM_X86_64 {
        return Err(invalid(path, "not a 64-bit little-endian x86_64 ELF file"));
    }
    let phoff = u64_at(&h, 0x20);
    let phentsize = usize::from(u16_at(&h, 0x36));
    let phnum = usize::from(u16_at(&h, 0x38));
    if phentsize < 56 || phnum > 512 {
        return Err(invalid(path, "implausible program header table"));
    }
    let ph = read_at(&file, path, phoff, phentsize * phnum)?;

    // (vaddr, filesz, offset) of each PT_LOAD, to map DT_STRTAB's address to a file offset.
    let mut loads = Vec::new();
    let (mut interp, mut dynamic) = (None, None);
    for i in 0..phnum {
        let p = &ph[i * phentsize..(i + 1) * phentsize];
        let (offset, vaddr, filesz) = (u64_at(p, 8), u64_at(p, 16), u64_at(p, 32));
        match u32_at(p, 0) {
            PT_LOAD => loads.push((vaddr, filesz, offset)),
            PT_INTERP => interp = Some((offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let mut out = Dynamic::default();
    if let Some((offset, size)) = interp {
        if size == 0 || size > 4096 {
            return Err(invalid(path, "implausible PT_INTERP"));
        }
        let raw = read_at(&file, path, offset, size as usize)?;
        out.interp = Some(c_string(&raw).ok_or_else(|| invalid(path, "PT_INTERP is not text"))?);
    }
    let Some((offset, size)) = dynamic else {
        return Ok(out);
    };
    if size > 1 << 20 {
        return Err(invalid(path, "implausible PT_DYNAMIC"));
    }
    let dynamic = read_at(&file, path, offset, size as usize)?;
    let (mut strtab, mut strsz) = (None, None);
    let mut entries = Vec::new();
    for e in dynamic.chunks_exact(16) {
        let (tag, val) = (u64_at(e, 0), u64_at(e, 8));
        match tag {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(val),
            DT_STRSZ => strsz = Some(val),
            DT_NEEDED | DT_RPATH | DT_RUNPATH => entries.push((tag, val)),
            _ => {}
        }
    }
    if entries.is_empty() {
        return Ok(out);
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return Err(invalid(path, "dynamic section without a string table"));
    };
    if strsz > 16 << 20 {
        return Err(invalid(path, "implausible DT_STRSZ"));
    }
    let str_offset = loads
        .iter()
        .find(|&&(vaddr, filesz, _)| strtab >= vaddr && strtab - vaddr < filesz)
        .map(|&(vaddr, _, offset)| offset + (strtab - vaddr))
        .ok_or_else(|| invalid(path, "DT_STRTAB outside every PT_LOAD segment"))?;
    let strings = read_at(&file, path, str_offset, strsz as usize)?;
    for (tag, val) in entries {
        let s = usize::try_from(val)
            .ok()
            .and_then(|at| strings.get(at..))
            .and_then(c_string)
            .ok_or_else(|| invalid(path, "dynamic string outside DT_STRTAB"))?;
        match tag {
            DT_NEEDED => out.needed.push(s),
            DT_RUNPATH => out.runpath.extend(s.split(':').map(str::to_owned)),
            _ => out.rpath.extend(s.split(':').map(str::to_owned)),
        }
    }
    Ok(out)
}

fn c_string(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&b| b == 0)?;
    String::from_utf8(raw[..end].to_vec()).ok()
}

/// Expands `$ORIGIN` in a search-path entry; `None` for entries we cannot expand.
fn expand(entry: &str, origin: &Path) -> Option<PathBuf> {
    let origin = origin.to_str()?;
    let e = entry
        .replace("${ORIGIN}", origin)
        .replace("$ORIGIN", origin);
    (!e.is_empty() && !e.contains('$') && e.starts_with('/')).then(|| PathBuf::from(e))
}

/// Finds `name` as the loader would for an object in `origin` with these search paths.
fn find(name: &str, dirs: &[PathBuf]) -> Vec<PathBuf> {
    for dir in dirs {
        let mut found = Vec::new();
        for sub in HWCAPS_DIRS {
            let p = dir.join(sub).join(name);
            if is_x86_64_elf(&p) {
                found.push(p);
            }
        }
        let p = dir.join(name);
        if is_x86_64_elf(&p) {
            found.push(p);
        }
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// Resolves the interpreter and every shared library `guest` needs, transitively.
///
/// # Errors
/// [`SandboxError::ReadExecutable`] if a file cannot be read, [`SandboxError::InvalidElf`]
/// if it is not an x86_64 ELF file we understand, [`SandboxError::LibraryNotFound`] if a
/// `DT_NEEDED` name is in none of the directories the loader would search.
pub(crate) fn load_set(guest: &Path) -> Result<LoadSet, SandboxError> {
    let top = parse(guest)?;
    let mut set = LoadSet::default();
    if let Some(interp) = &top.interp {
        let p = Path::new(interp);
        set.interpreter =
            Some(
                p.canonicalize()
                    .map_err(|source| SandboxError::ReadExecutable {
                        path: p.to_owned(),
                        source,
                    })?,
            );
    }
    let mut libraries = BTreeSet::new();
    let mut queue = vec![(guest.to_owned(), top)];
    let mut visited = BTreeSet::new();
    while let Some((object, dynamic)) = queue.pop() {
        let origin = object.parent().unwrap_or(Path::new("/"));
        // DT_RUNPATH wins over DT_RPATH when both exist (glibc).
        let own = if dynamic.runpath.is_empty() {
            &dynamic.rpath
        } else {
            &dynamic.runpath
        };
        let mut dirs: Vec<PathBuf> = own.iter().filter_map(|e| expand(e, origin)).collect();
        dirs.extend(SYSTEM_LIBRARY_DIRS.iter().map(PathBuf::from));
        for name in &dynamic.needed {
            let candidates = if name.contains('/') {
                vec![PathBuf::from(name)]
            } else {
                find(name, &dirs)
            };
            if candidates.is_empty() {
                return Err(SandboxError::LibraryNotFound {
                    name: name.clone(),
                    needed_by: object.clone(),
                });
            }
            for c in candidates {
                let canonical =
                    c.canonicalize()
                        .map_err(|source| SandboxError::ReadExecutable {
                            path: c.clone(),
                            source,
                        })?;
                if !visited.insert(canonical.clone()) {
                    continue;
                }
                if visited.len() > MAX_OBJECTS {
                    return Err(invalid(guest, "more than 256 shared libraries"));
                }
                let dynamic = parse(&canonical)?;
                libraries.insert(canonical.clone());
                queue.push((canonical, dynamic));
            }
        }
    }
    // The interpreter is granted separately (it also needs EXECUTE).
    if let Some(interp) = &set.interpreter {
        libraries.remove(interp);
    }
    set.libraries = libraries.into_iter().collect();
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_this_test_binary() {
        let exe = std::env::current_exe().expect("current_exe");
        let set = load_set(&exe).expect("load set");
        let interp = set
            .interpreter
            .expect("the test binary is dynamically linked");
        assert!(
            interp.to_string_lossy().contains("ld-linux-x86-64"),
            "{interp:?}"
        );
        assert!(
            set.libraries
                .iter()
                .any(|l| l.file_name() == Some("libc.so.6".as_ref())),
            "{:?}",
            set.libraries
        );
    }

    #[test]
    fn rejects_non_elf() {
        assert!(matches!(
            load_set(Path::new("/etc/passwd")),
            Err(SandboxError::InvalidElf { .. })
        ));
        assert!(matches!(
            load_set(Path::new("/nonexistent/guest")),
            Err(SandboxError::ReadExecutable { .. })
        ));
    }
}
