//! The checked-in CRD YAML under `crds/yaml/` is exactly what the Rust types generate.

use std::path::Path;

#[test]
fn checked_in_crd_yaml_matches_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yaml");
    let fix = "run `cargo run -p tandem-crds --bin crdgen` and commit crds/yaml/";
    let mut expected = Vec::new();
    for crd in tandem_crds::crd::all() {
        let name = tandem_crds::crd::file_name(&crd);
        let generated = tandem_crds::crd::to_yaml(&crd).expect("a CRD serialises to YAML");
        let checked_in = std::fs::read_to_string(dir.join(&name))
            .unwrap_or_else(|e| panic!("crds/yaml/{name}: {e}; {fix}"));
        assert!(
            checked_in == generated,
            "crds/yaml/{name} differs from what the types generate; {fix}"
        );
        expected.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/yaml exists")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(
        present, expected,
        "files in crds/yaml/ that no kind generates; {fix}"
    );
}
