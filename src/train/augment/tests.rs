use super::*;
use crate::options::Strength;

const N: usize = IMAGE_SIZE;

fn identity() -> AugmentOptions {
    AugmentOptions {
        enabled: true,
        crop_scale: [1.0, 1.0],
        crop_aspect: [1.0, 1.0],
        rotation_degrees: 0.0,
        brightness: 0.0,
        contrast: 0.0,
        horizontal_flip: false,
        ..AugmentOptions::default()
    }
}

/// Seeded noise image: every pixel different enough that any remapping shows.
fn noise(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..N * N * 3).map(|_| (rng.next_u64() >> 56) as u8).collect()
}

/// White image with a dark square of half-side `r` at (cx, cy).
fn blob(cx: usize, cy: usize, r: usize) -> Vec<u8> {
    let mut img = vec![255u8; N * N * 3];
    for y in cy - r..cy + r {
        for x in cx - r..cx + r {
            img[(y * N + x) * 3..(y * N + x) * 3 + 3].fill(0);
        }
    }
    img
}

/// Centroid of dark pixels (first channel < 128).
fn dark_centroid(img: &[u8]) -> (f32, f32) {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for (i, px) in img.chunks_exact(3).enumerate() {
        if px[0] < 128 {
            sx += (i % N) as f32;
            sy += (i / N) as f32;
            n += 1.0;
        }
    }
    assert!(n > 0.0, "no dark pixels left");
    (sx / n, sy / n)
}

#[test]
fn identity_options_and_disabled_give_the_input_back() {
    let img = noise(1);
    assert_eq!(augment(&img, &identity(), &mut Rng::new(3)), img);
    let off = AugmentOptions {
        enabled: false,
        ..AugmentOptions::default()
    };
    assert_eq!(augment(&img, &off, &mut Rng::new(3)), img);
    assert!(off.transform().is_none());
}

#[test]
fn deterministic_per_seed_and_varies_with_it() {
    let img = noise(2);
    let opts = AugmentOptions::default();
    let a = augment(&img, &opts, &mut Rng::new(7));
    let b = augment(&img, &opts, &mut Rng::new(7));
    let c = augment(&img, &opts, &mut Rng::new(8));
    assert_eq!(a.len(), N * N * 3);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, img);
    let transform = opts.transform().expect("enabled by default");
    assert_eq!(transform(&img, &mut Rng::new(7)), a);
    // Successive draws from one generator differ too (a new augmentation each epoch).
    let mut rng = Rng::new(7);
    assert_ne!(augment(&img, &opts, &mut rng), augment(&img, &opts, &mut rng));
}

#[test]
fn flip_off_never_mirrors() {
    // A dark blob on the left: mirrored it would land on the right half.
    let img = blob(50, 112, 20);
    let opts = AugmentOptions::default();
    let mut rng = Rng::new(11);
    for _ in 0..40 {
        let (x, _) = dark_centroid(&augment(&img, &opts, &mut rng));
        assert!(x < 100.0, "blob moved to x = {x}");
    }
    // With flip on, about half are mirrored: shows the check above can fail.
    let flip = AugmentOptions {
        horizontal_flip: true,
        ..identity()
    };
    let mirrored = (0..40)
        .filter(|_| dark_centroid(&augment(&img, &flip, &mut rng)).0 > 124.0)
        .count();
    assert!((8..=32).contains(&mirrored), "{mirrored} of 40 mirrored");
}

#[test]
fn crop_and_rotation_keep_a_centred_blob_near_the_centre() {
    let img = blob(112, 112, 16);
    let opts = AugmentOptions {
        brightness: 0.0,
        contrast: 0.0,
        ..AugmentOptions::default()
    };
    let mut rng = Rng::new(5);
    let mut moved = 0.0f32;
    for _ in 0..30 {
        let (x, y) = dark_centroid(&augment(&img, &opts, &mut rng));
        // Worst case: a 162 px wide crop (scale 0.7, aspect 3/4) pushed to one side puts the image centre
        // 31 px off the crop centre, magnified 224/162 ≈ 1.38× to ≈ 43 px; rotation keeps that distance.
        let d = ((x - 111.5).powi(2) + (y - 111.5).powi(2)).sqrt();
        assert!(d < 50.0, "blob centroid at ({x}, {y})");
        moved = moved.max(d);
    }
    assert!(moved > 2.0, "the crop never moved the blob");
}

#[test]
fn rotation_alone_turns_about_the_centre() {
    // An off-centre blob on a pure rotation stays at the same distance from the centre.
    let img = blob(152, 112, 8);
    let opts = AugmentOptions {
        rotation_degrees: 10.0,
        ..identity()
    };
    let mut rng = Rng::new(9);
    let mut angles = Vec::new();
    for _ in 0..20 {
        let (x, y) = dark_centroid(&augment(&img, &opts, &mut rng));
        let (dx, dy) = (x - 111.5, y - 111.5);
        assert!(((dx * dx + dy * dy).sqrt() - 40.5).abs() < 1.5, "({x}, {y})");
        angles.push(dy.atan2(dx).to_degrees());
    }
    assert!(angles.iter().all(|a| a.abs() <= 10.5), "{angles:?}");
    assert!(angles.iter().any(|a| a.abs() > 3.0), "{angles:?}");
}

#[test]
fn jitter_stays_in_range_and_changes_levels() {
    let img = noise(4);
    let opts = AugmentOptions {
        brightness: 1.0,
        contrast: 1.0,
        ..identity()
    };
    let mut rng = Rng::new(6);
    let mut saturated = false;
    for _ in 0..20 {
        let out = augment(&img, &opts, &mut rng);
        assert_eq!(out.len(), img.len());
        // u8 cannot leave 0..=255; what can go wrong is wrapping instead of clamping: the order of
        // values must be kept (a monotone map per image).
        let mut pairs: Vec<(u8, u8)> = img.iter().copied().zip(out.iter().copied()).collect();
        pairs.sort();
        assert!(pairs.windows(2).all(|w| w[0].1 <= w[1].1), "jitter is not monotone");
        saturated |= out.iter().filter(|&&v| v == 255).count() > img.len() / 100;
    }
    assert!(saturated, "strong jitter never clipped at 255");
}

#[test]
fn strengths_set_crop_rotation_and_jitter_and_keep_the_rest() {
    let flip = AugmentOptions {
        horizontal_flip: true,
        ..AugmentOptions::default()
    };
    assert_eq!(
        flip.clone().with_strength(Strength::Medium),
        flip,
        "medium is the default recipe"
    );
    let light = flip.clone().with_strength(Strength::Light);
    let strong = flip.clone().with_strength(Strength::Strong);
    assert!(light.horizontal_flip && strong.horizontal_flip);
    assert!(light.crop_scale[0] > flip.crop_scale[0] && strong.crop_scale[0] < flip.crop_scale[0]);
    assert!(light.rotation_degrees < 10.0 && strong.rotation_degrees > 10.0);
    assert!(light.validate().is_ok() && strong.validate().is_ok());
    for s in Strength::ALL {
        assert_eq!(Strength::from_name(s.name()), Some(s));
    }
    let json = serde_json::to_string(&strong).unwrap();
    assert!(json.contains(r#""strength":"strong""#), "{json}");
    // Options saved before these fields existed still read, as the default.
    let old: AugmentOptions = serde_json::from_str(r#"{"enabled":false}"#).unwrap();
    assert_eq!((old.strength, old.views, old.enabled), (Strength::Medium, 8, false));
}

#[test]
fn validate_rejects_out_of_range_options() {
    assert!(AugmentOptions::default().validate().is_ok());
    let bad = AugmentOptions {
        crop_scale: [0.9, 0.5],
        rotation_degrees: -1.0,
        brightness: 2.0,
        ..AugmentOptions::default()
    };
    let err = bad.validate().unwrap_err();
    assert!(
        err.contains("crop scale") && err.contains("rotation") && err.contains("brightness"),
        "{err}"
    );
}
