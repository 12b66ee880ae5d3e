use super::*;

fn dataset(counts: &[(&str, usize)]) -> Dataset {
    let classes = counts
        .iter()
        .map(|(name, n)| {
            ClassData::new(
                *name,
                (0..*n)
                    .map(|i| Sample::new(format!("{i}.jpg"), vec![i as u8; 3]))
                    .collect(),
            )
        })
        .collect();
    Dataset { classes }
}

#[test]
fn labels_counts_and_checks() {
    let d = dataset(&[("a", 2), ("b", 1), ("c", 0)]);
    assert_eq!(d.labels(), [0, 0, 1]);
    assert_eq!(d.num_images(), 3);
    let problems = d.check_trainable().unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("“b” has 1 image;") && problems[1].contains("“c” has 0 images"));
    assert!(dataset(&[("a", 2), ("b", 2)]).check_trainable().is_ok());
    let one = dataset(&[("cats", 5)]).check_trainable().unwrap_err();
    assert!(one[0].contains("cats") && one[0].contains("2 classes"), "{one:?}");
    assert!(Dataset::default().check_trainable().is_err());
}

#[test]
fn rename_refuses_bad_names_and_keeps_the_old_one() {
    let mut d = dataset(&[("a", 2), ("b", 2)]);
    for bad in ["", "   ", "b", "x\u{7}y", "evil\u{202E}gpj", &"x".repeat(65)] {
        assert!(d.rename_class(0, bad).is_err(), "{bad:?} accepted");
        assert_eq!(d.classes[0].name, "a");
    }
    assert!(d.rename_class(5, "z").is_err());
    d.rename_class(0, "  big cats ").unwrap();
    assert_eq!(d.class_names(), ["big cats", "b"]);
    d.rename_class(0, "big cats").unwrap();
    let before = d.fingerprint();
    d.rename_class(0, "big cats").unwrap();
    assert_eq!(d.fingerprint(), before, "same name, same fingerprint");
    d.rename_class(0, "cats").unwrap();
    assert_ne!(d.fingerprint(), before, "a rename changes it");
    let mut moved = d.clone();
    let s = moved.classes[0].samples.pop().unwrap();
    moved.classes[1].samples.push(s);
    assert_ne!(
        moved.fingerprint(),
        d.fingerprint(),
        "an image in another class changes it"
    );
    d.rename_class(0, "big cats").unwrap();
    let b = d.classes[1].id();
    assert_eq!(d.index_of(b), Some(1));
    d.remove_class(7);
    d.remove_class(0);
    assert_eq!(d.class_names(), ["b"]);
    assert_eq!(d.index_of(b), Some(0), "the id follows the class");
    assert_ne!(ClassData::new("b", vec![]).id(), b, "ids are never reused");
}

#[test]
fn move_sample_relabels_one_image() {
    let mut d = dataset(&[("a", 2), ("b", 1)]);
    // A same-named image already in "b": the moved one gets a suffix.
    d.classes[1].samples[0].name = d.classes[0].samples[1].name.clone();
    let key = d.classes[0].samples[1].key();
    let before = d.fingerprint();
    d.move_sample(key, 0, 1).unwrap();
    assert_eq!(d.labels(), [0, 1, 1]);
    assert_eq!(d.keys()[2], key);
    assert!(
        d.classes[1].samples[1].name.ends_with(" (2)"),
        "{}",
        d.classes[1].samples[1].name
    );
    assert_ne!(d.fingerprint(), before);
    assert!(d.move_sample(key, 0, 1).unwrap_err().contains("no longer in “a”"));
    assert!(d.move_sample(key, 1, 1).is_err());
    assert!(d.move_sample(key, 1, 9).is_err());
}

#[test]
fn sample_key_is_the_pixels_identity() {
    let a = Sample::new("a.jpg", vec![1, 2, 3]);
    assert_eq!(a.key(), Sample::new("other name.png", vec![1, 2, 3]).key());
    assert_ne!(a.key(), Sample::new("a.jpg", vec![1, 2, 4]).key());
    assert_eq!(a.key(), pixel_key(&[1, 2, 3]));
}

#[test]
fn samples_kept_elsewhere_keep_their_keys() {
    let mut d = dataset(&[("a", 3)]);
    let full = d.clone();
    for s in &mut d.classes[0].samples[1..] {
        *s = Sample::stored(s.name.clone(), s.key());
    }
    assert_eq!(d.fingerprint(), full.fingerprint(), "the keys stay");
    assert_eq!(d.keys(), full.keys());
}

#[test]
fn class_names_are_cleaned() {
    assert_eq!(clean_class_name("  big\u{7}  cats\t").as_deref(), Some("big cats"));
    assert_eq!(clean_class_name("ab\u{202E}cd\u{200B}").as_deref(), Some("ab cd"));
    assert_eq!(clean_class_name("👨\u{200D}👩").as_deref(), Some("👨\u{200D}👩"));
    assert_eq!(clean_class_name("\u{1}\u{2} \u{FEFF}"), None);
    assert_eq!(clean_class_name(&"é".repeat(100)).unwrap().chars().count(), 64);
    assert!(class_name_is_cut(&"é".repeat(65)));
    assert!(
        !class_name_is_cut(&format!("  {}   \u{7} ", "é".repeat(64))),
        "spacing removed is not a cut"
    );
    assert_eq!(clean_file_name("a\u{0}b\u{202E}.jpg"), "ab.jpg");
}
