//! Rewrites `events/schemas/*.json` from the payload types
//! (`shequ_proto::schemas`): `make schemas`, after changing an event payload or
//! a vocabulary enum. Removes schema files of types the contract no longer has.

use std::collections::BTreeSet;
use std::path::Path;
use std::{fs, io};

fn main() -> io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/schemas");
    fs::create_dir_all(&dir)?;
    let files = shequ_proto::schemas::schema_files();
    let names: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        let stale = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.ends_with(".json") && !names.contains(name));
        if stale {
            fs::remove_file(&path)?;
            eprintln!("removed {}", path.display());
        }
    }
    for (name, text) in &files {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fs::write(&path, text)?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
