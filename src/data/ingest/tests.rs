use super::*;

fn classes(paths: &[&str]) -> Vec<String> {
    plan_folder(paths)
        .0
        .into_iter()
        .map(|p| match p {
            Placement::Class { class, name } => format!("{class} | {name}"),
            Placement::Zip => "zip".into(),
            Placement::Skip => "skip".into(),
            Placement::Refused(_) => "refused".into(),
        })
        .collect()
}

#[test]
fn a_long_folder_name_is_cut_with_one_warning() {
    let long = "x".repeat(70);
    let paths = [
        format!("{long}/a.jpg"),
        format!("{long}/b.jpg"),
        "short/c.jpg".to_string(),
    ];
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (plan, report) = plan_folder(&paths);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].problem.contains("longer than 64"),
        "{}",
        report.warnings[0]
    );
    assert!(matches!(&plan[0], Placement::Class { class, .. } if class.len() == 64));
}

#[test]
fn the_root_folder_is_recognised() {
    assert_eq!(
        classes(&["data/cats/a.jpg", "data/dogs/b.jpg"]),
        ["cats | a.jpg", "dogs | b.jpg"]
    );
    assert_eq!(classes(&["cats/a.jpg", "dogs/b.jpg"]), ["cats | a.jpg", "dogs | b.jpg"]);
    // One class folder dropped alone keeps its name.
    assert_eq!(classes(&["cats/a.jpg"]), ["cats | a.jpg"]);
    assert_eq!(
        classes(&["data/cats/a.jpg", "data/b.jpg", "x.zip"]),
        ["cats | a.jpg", "refused", "zip"]
    );
    // A note beside the dataset folder does not turn the dataset into one class.
    assert_eq!(classes(&["data/cats/a.jpg", "notes.txt"]), ["cats | a.jpg", "refused"]);
    assert_eq!(
        classes(&[
            ".DS_Store",
            "data/",
            "__MACOSX/data/._a.jpg",
            "/abs.jpg",
            "a/../../b.jpg"
        ]),
        ["skip", "skip", "skip", "refused", "refused"]
    );
}

#[test]
fn nested_folders_count_in_the_top_class_with_one_warning() {
    let paths = ["cats/in/a.jpg", "cats/out/a.jpg", "dogs/x/y/b.jpg", "dogs/c.jpg"];
    let (plan, report) = plan_folder(&paths);
    assert_eq!(
        classes(&paths),
        [
            "cats | in/a.jpg",
            "cats | out/a.jpg",
            "dogs | x/y/b.jpg",
            "dogs | c.jpg"
        ]
    );
    assert_eq!(plan.len(), 4);
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(report.warnings[0].problem.contains("“cats”, “dogs”"), "{report:?}");
}
