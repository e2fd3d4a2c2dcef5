//! Writes the dapr.io CustomResourceDefinitions to `crds/yaml/`, one file per kind:
//! `cargo run -p tandem-crds --bin crdgen`. A test fails when the checked-in files differ.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
    std::fs::create_dir_all(&dir)?;
    for crd in tandem_crds::crd::all() {
        let path = dir.join(tandem_crds::crd::file_name(&crd));
        std::fs::write(&path, tandem_crds::crd::to_yaml(&crd)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
