//! The checkpoint readers on files written by real PyTorch and MindSpore
//! (../shared/fixtures/), and on those files damaged: a truncation is
//! refused, a flipped bit is an error or a state dict of the original's
//! layout (names and shapes), never a panic.

use std::path::Path;

use backbone::checkpoint::{self, Kind, StateDict};
use backbone::resnet;
use testkit::shared_fixtures as fixtures;

fn read(path: &Path, kind: Kind) -> StateDict {
    checkpoint::read(path, kind).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
#[ignore = "needs ../shared/fixtures: scripts/test.sh runs it"]
fn both_pytorch_formats_hold_the_same_resnet50() {
    let Some(fx) = fixtures("torchvision-pth") else { return };
    let zip = read(&fx.join("resnet50-w8.pth"), Kind::Torch);
    let legacy = read(&fx.join("resnet50-w8-legacy.pth"), Kind::Torch);
    let names = |d: &StateDict| d.0.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&zip), names(&legacy));
    assert_eq!(zip.0, legacy.0, "the same tensors, value for value");
    // torchvision's keys, and one num_batches_tracked counter for each
    // BatchNorm (each one with a running mean), nothing else.
    let mut want = resnet::expected_keys();
    let counters: Vec<String> = want
        .iter()
        .filter_map(|k| k.strip_suffix(".running_mean"))
        .map(|bn| format!("{bn}.num_batches_tracked"))
        .collect();
    want.extend(counters);
    let (mut want, mut found) = (want, names(&zip));
    want.sort();
    found.sort();
    assert_eq!(found, want);
    assert_eq!(zip.get("layer1.0.bn1.num_batches_tracked").unwrap().dims, Vec::<usize>::new());
    assert_eq!(zip.get("layer3.5.conv2.weight").unwrap().dims, [32, 32, 3, 3]);
    resnet::check(&zip).unwrap();
}

#[test]
#[ignore = "needs ../shared/fixtures: scripts/test.sh runs it"]
fn the_mindspore_checkpoint_maps_onto_torchvisions_names() {
    let Some(fx) = fixtures("mindspore-ckpt") else { return };
    let raw = read(&fx.join("resnet50-w8.ckpt"), Kind::MindSpore);
    // PARAMS.txt, written beside the file by MindSpore: name, shape, dtype, in file order.
    let listed = std::fs::read_to_string(fx.join("PARAMS.txt")).unwrap();
    let names: Vec<&str> =
        listed.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| !n.starts_with('#')).collect();
    assert_eq!(raw.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), names);
    let (params, ignored) = resnet::from_mindspore(raw);
    assert!(ignored.is_empty(), "{ignored:?}");
    resnet::check(&params).unwrap();
}

#[test]
#[ignore = "needs ../shared/fixtures: scripts/test.sh runs it"]
fn truncated_and_flipped_checkpoints_are_errors_or_the_originals_layout() {
    let (Some(tv), Some(ms)) = (fixtures("torchvision-pth"), fixtures("mindspore-ckpt")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = testkit::Lcg(0xC0FFEE);
    for (file, kind) in [
        (tv.join("resnet50-w8.pth"), Kind::Torch),
        (tv.join("resnet50-w8-legacy.pth"), Kind::Torch),
        (ms.join("resnet50-w8.ckpt"), Kind::MindSpore),
    ] {
        let good = std::fs::read(&file).unwrap();
        let original = checkpoint::read(&file, kind).unwrap();
        let layout = |d: &checkpoint::StateDict| -> Vec<(String, Vec<usize>)> {
            d.0.iter().map(|(n, t)| (n.clone(), t.dims.clone())).collect()
        };
        let p = dir.path().join("m");
        for k in 0..100 {
            let cut = good.len() * k / 100 + rng.below(64);
            std::fs::write(&p, &good[..cut.min(good.len() - 1)]).unwrap();
            assert!(checkpoint::read(&p, kind).is_err(), "{}: cut at {cut} of {} was read", file.display(), good.len());
        }
        let mut read = 0;
        for _ in 0..150 {
            let mut m = good.clone();
            for _ in 0..1 + rng.below(4) {
                // Flips where the structure is (the first and last kilobytes
                // hold the pickle, the zip directory, the protobuf keys) as
                // often as anywhere.
                let at = match rng.below(3) {
                    0 => rng.below(4096.min(m.len())),
                    1 => m.len() - 1 - rng.below(4096.min(m.len())),
                    _ => rng.below(m.len()),
                };
                m[at] ^= 1 << rng.below(8);
            }
            std::fs::write(&p, &m).unwrap();
            // A flip the readers let through may change values, as it would
            // for PyTorch's own torch.load; what a run builds on (every
            // tensor's name and shape) is the original's, or refused.
            if let Ok(d) = checkpoint::read(&p, kind) {
                read += 1;
                match resnet::check(&d) {
                    Ok(()) => {
                        let (a, b) = (layout(&d), layout(&original));
                        let diff: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
                        assert_eq!(a.len(), b.len());
                        assert!(diff.is_empty(), "{}: a flip changed the layout: {diff:?}", file.display());
                    }
                    Err(e) => assert!(!e.to_string().contains('\n'), "{}: {e}", file.display()),
                }
                for (_, t) in &d.0 {
                    assert_eq!(t.values.len(), t.dims.iter().product::<usize>(), "{}: values and dims", file.display());
                }
            }
        }
        eprintln!("{}: {read} of 150 flipped files still read", file.display());
    }
}

/// A step counter is expected beside a BatchNorm of the network only: one
/// under another name (a flipped byte found it) is an unexpected key, as
/// torchvision's strict load_state_dict says.
#[test]
#[ignore = "needs ../shared/fixtures: scripts/test.sh runs it"]
fn a_batch_norm_counter_of_no_batch_norm_is_an_unexpected_key() {
    let Some(tv) = fixtures("torchvision-pth") else { return };
    let mut d = checkpoint::read(&tv.join("resnet50-w8.pth"), Kind::Torch).unwrap();
    resnet::check(&d).unwrap();
    let counter =
        d.0.iter_mut().find(|(n, _)| n == "layer1.0.downsample.1.num_batches_tracked").expect("torchvision saves it");
    counter.0 = "layer1.0.downsampLe.1.num_batches_tracked".into();
    let e = resnet::check(&d).unwrap_err().to_string();
    assert!(e.contains("1 unexpected keys (layer1.0.downsampLe.1.num_batches_tracked)"), "{e}");
}
