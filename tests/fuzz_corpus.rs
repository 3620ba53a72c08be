//! Replays the fuzz corpora under `fuzz/corpus/` through the same checks as
//! the fuzz targets, so that every input found there keeps being tested on
//! stable Rust, without cargo-fuzz.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

/// Every decode input is refused or read, never a panic; what is read has ids.
#[test]
fn decode_corpus_replays() {
    let files = corpus("decode");
    assert!(files.len() >= 5, "{files:?}");
    let mut read = 0;
    for file in files {
        let body = std::fs::read(&file).expect("corpus file");
        let _ = dbss_exporter::api::decode_error_body(&body);
        if let Ok(answer) = dbss_exporter::api::decode(&body) {
            assert!(answer.instances.iter().all(|i| !i.instance_id.is_empty()));
            read += 1;
        }
    }
    assert!(read >= 3, "the corpus should hold readable answers too");
}

/// Every config input loads or lists problems that name a key.
#[test]
fn config_corpus_replays() {
    let mut loaded = 0;
    for file in corpus("config") {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        match dbss_exporter::config::load_str(&text, "fuzz.toml") {
            Ok(_) => loaded += 1,
            Err(e) => assert!(e.problems.iter().all(|p| !p.key.is_empty())),
        }
    }
    assert!(loaded >= 1, "the corpus should hold a valid configuration");
}
