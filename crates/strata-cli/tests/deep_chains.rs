//! Deep stacks: a 200-layer chain where every layer adds, overwrites and deletes files through
//! the real mount, checked against a model of the union; and the kernel's 500-layer limit.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::{Root, visible};
use strata::layer::{CreateOptions, LayerStore};
use strata::{Error, LayerId, Store};

fn layers(root: &Root) -> LayerStore {
    Store::open(root.path()).unwrap().layers()
}

fn child(layers: &LayerStore, parent: &LayerId) -> LayerId {
    layers.create(&CreateOptions { parent: Some(parent.clone()), ..Default::default() }).unwrap()
}

/// A small deterministic generator, so a failure replays.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn a_200_layer_chain_shows_the_expected_union() {
    let root = Root::new();
    let layers = layers(&root);
    let mut rng = Lcg(0x5eed);
    let mut model: BTreeMap<String, String> = BTreeMap::new();

    // The base layer is written directly: it is never mounted.
    let base = layers.create(&CreateOptions::default()).unwrap();
    let diff = layers.diff_dir(&base);
    fs::create_dir(diff.join("dir")).unwrap();
    model.insert("dir".into(), "/".into());
    for i in 0..20 {
        fs::write(diff.join(format!("dir/f{i}")), format!("base {i}")).unwrap();
        model.insert(format!("dir/f{i}"), format!("base {i}"));
    }
    fs::write(diff.join("shared"), "base").unwrap();
    model.insert("shared".into(), "base".into());

    let mut top = base;
    for n in 1..200 {
        top = child(&layers, &top);
        let merged = layers.mount(&top).unwrap();
        // Add a file of its own.
        fs::write(merged.join(format!("added-{n}")), format!("layer {n}")).unwrap();
        model.insert(format!("added-{n}"), format!("layer {n}"));
        // Overwrite one shared file and one random file.
        fs::write(merged.join("shared"), format!("layer {n}")).unwrap();
        model.insert("shared".into(), format!("layer {n}"));
        let files: Vec<String> = model.iter().filter(|(_, v)| *v != "/").map(|(k, _)| k.clone()).collect();
        let victim = &files[rng.below(files.len())];
        fs::write(merged.join(victim), format!("overwritten in {n}")).unwrap();
        model.insert(victim.clone(), format!("overwritten in {n}"));
        // Delete a random file (never `shared`).
        let files: Vec<String> =
            model.iter().filter(|(k, v)| *v != "/" && *k != "shared").map(|(k, _)| k.clone()).collect();
        if !files.is_empty() {
            let gone = &files[rng.below(files.len())];
            fs::remove_file(merged.join(gone)).unwrap();
            model.remove(gone);
        }
        // Every 25 layers, replace the whole directory: an opaque dir hides everything below.
        if n % 25 == 0 {
            fs::remove_dir_all(merged.join("dir")).unwrap();
            model.retain(|k, _| !k.starts_with("dir/"));
            fs::create_dir(merged.join("dir")).unwrap();
            fs::write(merged.join("dir/fresh"), format!("fresh in {n}")).unwrap();
            model.insert("dir/fresh".into(), format!("fresh in {n}"));
        }
        layers.unmount(&top).unwrap();
    }

    // 199 ancestors through l/ links are far more than one page of mount options.
    let info = layers.info(&top).unwrap();
    assert_eq!(info.lowers.len(), 199);
    let merged = layers.mount(&top).unwrap();
    assert_eq!(visible(&merged), model);
    layers.unmount(&top).unwrap();

    // The same union, read-only, from a fresh child.
    let leaf = child(&layers, &top);
    let merged = layers.mount(&leaf).unwrap();
    assert_eq!(visible(&merged), model);
    layers.unmount(&leaf).unwrap();
}

#[test]
fn five_hundred_lower_layers_mount_and_one_more_is_refused() {
    let root = Root::new();
    let layers = layers(&root);
    let base = layers.create(&CreateOptions::default()).unwrap();
    fs::write(layers.diff_dir(&base).join("bottom"), "base").unwrap();
    let mut chain = vec![base];
    for i in 1..=500 {
        let id = child(&layers, chain.last().unwrap());
        fs::write(layers.diff_dir(&id).join(format!("l{i}")), "").unwrap();
        chain.push(id);
    }
    let top = chain.last().unwrap().clone();
    assert_eq!(layers.info(&top).unwrap().lowers.len(), 500);

    // 500 lowers plus an upper: the kernel's maximum.
    let merged = layers.mount(&top).unwrap();
    assert_eq!(fs::read_to_string(merged.join("bottom")).unwrap(), "base");
    assert!(merged.join("l500").exists() && merged.join("l1").exists());
    layers.unmount(&top).unwrap();

    // The layer below it is committed: read-only, its own diff plus 499 lowers = 500.
    let below = &chain[499];
    let merged = layers.mount(below).unwrap();
    assert!(merged.join("l499").exists() && !merged.join("l500").exists());
    layers.unmount(below).unwrap();

    // A 501st layer could never be mounted: refused at create, and nothing is written.
    let before = fs::read_dir(layers.store().home()).unwrap().count();
    match layers.create(&CreateOptions { parent: Some(top.clone()), ..Default::default() }) {
        Err(Error::TooDeep { lowers: 501, max: 500, .. }) => {}
        other => panic!("expected TooDeep, got {other:?}"),
    }
    assert_eq!(fs::read_dir(layers.store().home()).unwrap().count(), before);
    assert!(!layers.store().home().join(top.as_str()).join("committed").exists());

    // A top layer marked committed by hand would need 501 lowers read-only: a clear error.
    fs::write(layers.store().home().join(top.as_str()).join("committed"), "").unwrap();
    match layers.mount(&top) {
        Err(e @ Error::TooDeep { lowers: 501, .. }) => assert!(e.to_string().contains("at most 500"), "{e}"),
        other => panic!("expected TooDeep, got {other:?}"),
    }
    assert!(strata::mount::overlay_mounts_under(layers.store().home()).unwrap().is_empty());
    assert_eq!(layers.info(&top).unwrap().mounts, 0, "a failed mount leaves no reference");
}
